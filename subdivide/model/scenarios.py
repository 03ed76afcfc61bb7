"""Hazard scenarios and the population they concern: what a plan is judged on.

An event *s* has a footprint H_s (the area that must be warned) and a weight w_s (its
relative frequency). The planner (``subdivide.make.regionalize``) asks, for each event,
which sub-areas are sent the alert and how many residents receive it; this module holds
the pure, geometry-side pieces:

- scenario families: :func:`disc_scenarios` (the documented default: discs of several
  radii centred on populated town-blocks drawn in proportion to population, seeded),
  :func:`block_scenarios` (town-block-sized events), :func:`polygon_scenarios` (hazard
  layers: 浸水想定区域, 土砂災害警戒区域, tsunami zones) and :func:`raster_scenarios`
  (depth > threshold), one scenario per feature, per connected zone or per layer;
- :func:`footprint_matrix`: the population of every town-block inside every footprint,
  by the one areal-weighting primitive (:func:`subdivide.model.areal.weighted_population`);
- :func:`population_points`: town-block population spread over a square grid (again by
  :mod:`~subdivide.model.areal`), so that reach can be tested point by point;
- :func:`reach_pairs`: which population points lie within L of which town-block. A
  point is within L of a sub-area A exactly when it lies in ``A ⊕ L``, the reach of the
  spill model (:mod:`subdivide.model.reach`); filling holes (``spill_territory``) does not
  change this for any point outside the hole, and unoccupied holes hold nobody.

Distances are metres in the blocks' projected CRS.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely
from scipy import sparse

from subdivide.core.errors import UserError
from subdivide.model.areal import weighted_population

#: spill distances over which a plan is judged (km): the 2016–17 trial's observed range
DEFAULT_ALERT_BAND_KM = (1.6, 2.0, 2.5, 3.0, 3.3)
#: radii (km) of the default disc scenarios
DEFAULT_DISC_RADII_KM = (1.0, 3.0, 5.0)
#: centres drawn per radius for the default disc scenarios
DEFAULT_DISCS_PER_RADIUS = 48


@dataclass(frozen=True)
class Scenarios:
    """A weighted set of event footprints (polygons in the blocks' CRS)."""

    footprints: np.ndarray            # shapely geometries
    weights: np.ndarray               # relative frequency, > 0
    labels: tuple[str, ...]
    source: str                       # how they were made (for reports)
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if len(self.footprints) != len(self.weights) or len(self.labels) != len(self.weights):
            raise ValueError("footprints, weights and labels must have the same length")

    def __len__(self) -> int:
        return len(self.weights)


def _populated(blocks) -> tuple[np.ndarray, np.ndarray]:
    pop = blocks["population"].to_numpy(dtype="float64")
    idx = np.flatnonzero(pop > 0)
    if not len(idx):
        raise UserError("no town-block has residents: there is nobody to spare an alert",
                        fix="check the population column (JINKO) of the town-block file")
    return idx, pop


def disc_scenarios(blocks, *, radii_km=DEFAULT_DISC_RADII_KM, per_radius: int = DEFAULT_DISCS_PER_RADIUS,
                   seed: int = 0) -> Scenarios:
    """The default family: for each radius, ``per_radius`` centres drawn (with
    replacement, ``numpy`` Generator from ``seed``) among populated town-blocks with
    probability ∝ population; a centre drawn twice is one disc of double weight. Each
    radius carries the same total weight. The centre is the block's point on surface."""
    radii = [float(r) for r in radii_km]
    if not radii or any(not np.isfinite(r) or r <= 0 for r in radii) or per_radius < 1:
        raise UserError(f"disc scenarios need positive radii and ≥ 1 disc per radius (got {radii_km}, "
                        f"{per_radius})", fix="e.g. --scenario-radii 1,3,5")
    idx, pop = _populated(blocks)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 12]))
    centres = shapely.point_on_surface(blocks.geometry.values[idx])
    keys = blocks["key"].to_numpy()[idx]
    geoms, weights, labels = [], [], []
    for r in radii:
        draw = rng.choice(len(idx), size=int(per_radius), replace=True, p=pop[idx] / pop[idx].sum())
        uniq, count = np.unique(draw, return_counts=True)
        geoms.append(shapely.buffer(centres[uniq], r * 1000.0, quad_segs=16))
        weights.append(count / count.sum())
        labels += [f"disc {r:g} km @ {keys[u]}" for u in uniq]
    return Scenarios(np.concatenate(geoms), np.concatenate(weights), tuple(labels),
                     f"discs {','.join(f'{r:g}' for r in radii)} km × {per_radius} (seed {seed})",
                     {"radii_km": radii, "per_radius": int(per_radius), "seed": int(seed)})


def block_scenarios(blocks) -> Scenarios:
    """Town-block-sized events: each populated block is an event, weight ∝ population."""
    idx, pop = _populated(blocks)
    keys = blocks["key"].to_numpy()[idx]
    return Scenarios(blocks.geometry.values[idx], pop[idx] / pop[idx].sum(),
                     tuple(f"block {k}" for k in keys), "town-block events (weight ∝ population)")


def _split(geoms: np.ndarray, weights: np.ndarray, names: list[str], split: str):
    """'feature' keeps the features; 'zones' = connected zones of their union; 'layer' =
    one event. Returns (footprints, weights, labels)."""
    geoms = shapely.make_valid(np.asarray(geoms, dtype=object))
    geoms = np.asarray([shapely.union_all(shapely.get_parts(g)[shapely.area(shapely.get_parts(g)) > 0])
                        if shapely.get_num_geometries(g) > 1 else g for g in geoms], dtype=object)
    keep = shapely.area(geoms) > 0
    geoms, weights, names = geoms[keep], np.asarray(weights, float)[keep], [n for n, k in zip(names, keep) if k]
    if not len(geoms):
        raise UserError("the hazard layer has no polygon with an area", fix="give polygons (or depth > threshold)")
    if split == "feature":
        return geoms, weights, names
    union = shapely.union_all(geoms)
    if split == "layer":
        return np.asarray([union], dtype=object), np.ones(1), ["layer"]
    if split != "zones":
        raise UserError(f"scenario split {split!r} is not one of feature, zones, layer",
                        fix="--scenario-split zones (one event per connected zone)")
    parts = shapely.get_parts(union)
    parts = parts[np.lexsort((shapely.get_y(shapely.centroid(parts)), shapely.get_x(shapely.centroid(parts))))]
    return parts, np.ones(len(parts)), [f"zone {i + 1}" for i in range(len(parts))]


def polygon_scenarios(layer, crs, *, split: str = "feature", weight_column: str | None = None,
                      name_column: str | None = None, where: str = "--scenarios") -> Scenarios:
    """Footprints from a hazard polygon layer (a GeoDataFrame, or a path read by
    :func:`subdivide.io.readers.read_polygons`), reprojected to ``crs``."""
    if not hasattr(layer, "geometry"):
        from subdivide.io.readers import read_polygons

        layer = read_polygons(layer, what="hazard layer", where=where)
    gdf = layer.to_crs(crs) if layer.crs is not None else layer.set_crs(crs)
    w = np.ones(len(gdf))
    if weight_column:
        if weight_column not in gdf.columns:
            raise UserError(f"weight column {weight_column!r} is not in the hazard layer", where=where,
                            fix=f"use one of {[c for c in gdf.columns if c != 'geometry'][:20]}")
        w = np.asarray(gdf[weight_column], dtype=float)
        if not np.all(np.isfinite(w) & (w > 0)):
            raise UserError(f"weights in {weight_column!r} must be positive numbers", where=where,
                            fix="give a relative frequency > 0 for every feature")
    names = [str(v) for v in (gdf[name_column] if name_column else range(1, len(gdf) + 1))]
    geoms, weights, labels = _split(gdf.geometry.values, w, names, split)
    return Scenarios(geoms, weights / weights.sum(), tuple(labels), f"hazard polygons ({split})")


def raster_scenarios(path, crs, *, threshold: float, split: str = "zones", band: int = 1) -> Scenarios:
    """Footprints from a hazard raster: pixels with value > ``threshold`` (e.g. flood
    depth 0.5 m), polygonised, reprojected to ``crs``; nodata pixels never count."""
    import geopandas as gpd
    import rasterio
    from rasterio import features

    p = Path(path)
    if not p.exists():
        raise UserError(f"hazard raster {p} does not exist", where=str(p), fix="check the --scenarios path")
    if not np.isfinite(threshold):
        raise UserError(f"hazard threshold {threshold} is not a number", fix="e.g. --hazard-threshold 0.5")
    with rasterio.open(p) as src:
        data = src.read(band, masked=True)
        mask = (np.asarray(data.filled(-np.inf)) > float(threshold)).astype("uint8")
        shapes = [shapely.geometry.shape(g) for g, v in features.shapes(mask, mask=mask.astype(bool),
                                                                         transform=src.transform) if v == 1]
        rcrs = src.crs
    if not shapes:
        raise UserError(f"no pixel of {p.name} exceeds {threshold:g}", where=str(p),
                        fix="lower --hazard-threshold or check the raster")
    gdf = gpd.GeoDataFrame(geometry=shapes, crs=rcrs)
    sc = polygon_scenarios(gdf, crs, split="zones" if split == "feature" else split)
    return Scenarios(sc.footprints, sc.weights, sc.labels, f"hazard raster {p.name} > {threshold:g} ({split})")


@dataclass(frozen=True)
class Footprints:
    """Per scenario × town-block: residents in danger and whether the footprint touches."""

    endangered: sparse.csr_matrix     # (S, n) areal-weighted population inside H_s
    touched: sparse.csr_matrix        # (S, n) 1 where H_s overlaps the block (area > 0)
    weights: np.ndarray               # (S,) normalised to sum 1


def footprint_matrix(scenarios: Scenarios, blocks, *, simplify_m: float = 10.0) -> Footprints:
    """Endangered population and touched blocks of every scenario (areal weighting;
    block outlines simplified by ``simplify_m`` first, topology kept). Footprints
    touching no town-block are dropped from the weights (they concern nobody here)."""
    geoms = _simplified(blocks, simplify_m)
    pop = blocks["population"].to_numpy(dtype="float64")
    zi, pj, _, ppl = weighted_population(scenarios.footprints, geoms, pop)
    shape = (len(scenarios), len(geoms))
    end = sparse.csr_matrix((ppl, (zi, pj)), shape=shape)
    touch = sparse.csr_matrix((np.ones(len(zi)), (zi, pj)), shape=shape)
    w = np.where(np.asarray(touch.sum(axis=1)).ravel() > 0, scenarios.weights, 0.0)
    if w.sum() <= 0:
        raise UserError("no hazard footprint overlaps the municipality's town-blocks",
                        fix="check the hazard layer's extent and CRS")
    return Footprints(end, touch, w / w.sum())


def _simplified(blocks, tol_m: float) -> np.ndarray:
    g = blocks.geometry.values
    return shapely.simplify(g, float(tol_m), preserve_topology=True) if tol_m > 0 else np.asarray(g)


@dataclass(frozen=True)
class PopulationPoints:
    """Residents placed on grid points: ``xy`` (P, 2) and ``weight`` (P,) per point, and
    the share of each block at each point (``member_point``, ``member_block``,
    ``member_weight``)."""

    xy: np.ndarray
    weight: np.ndarray
    member_point: np.ndarray
    member_block: np.ndarray
    member_weight: np.ndarray

    def __len__(self) -> int:
        return len(self.weight)


def population_points(blocks, spacing_m: float, *, simplify_m: float = 10.0) -> PopulationPoints:
    """Town-block population spread over a square grid: each block's residents go to the
    centres of the cells it overlaps, in proportion to the overlap's share of the block's
    area (:func:`~subdivide.model.areal.weighted_population`, outlines simplified by
    ``simplify_m``); a block no cell overlaps measurably goes to its point on surface.
    Points are ordered by x, then y."""
    if not np.isfinite(spacing_m) or spacing_m <= 0:
        raise ValueError("spacing_m must be positive")
    geoms = _simplified(blocks, simplify_m)
    pop = blocks["population"].to_numpy(dtype="float64")
    idx = np.flatnonzero(pop > 0)
    minx, miny, maxx, maxy = shapely.total_bounds(geoms[idx])
    xs = np.arange(minx, maxx + spacing_m, spacing_m)
    ys = np.arange(miny, maxy + spacing_m, spacing_m)
    gx, gy = np.meshgrid(xs[:-1] if len(xs) > 1 else xs, ys[:-1] if len(ys) > 1 else ys)
    cells = shapely.box(gx.ravel(), gy.ravel(), gx.ravel() + spacing_m, gy.ravel() + spacing_m)
    zi, pj, _, ppl = weighted_population(cells, geoms[idx], pop[idx])
    blk = idx[pj]
    # each populated block keeps exactly its population (slivers lost to rounding): rescale
    got = np.bincount(blk, weights=ppl, minlength=len(pop))
    with np.errstate(invalid="ignore", divide="ignore"):
        ppl = ppl * np.where(got[blk] > 0, pop[blk] / got[blk], 0.0)
    missing = idx[got[idx] <= 0]
    cx = gx.ravel()[zi] + spacing_m / 2
    cy = gy.ravel()[zi] + spacing_m / 2
    if len(missing):
        rp = shapely.point_on_surface(geoms[missing])
        cx, cy = np.r_[cx, shapely.get_x(rp)], np.r_[cy, shapely.get_y(rp)]
        ppl, blk = np.r_[ppl, pop[missing]], np.r_[blk, missing]
    xy, point = np.unique(np.column_stack([cx, cy]), axis=0, return_inverse=True)
    point = point.ravel()
    return PopulationPoints(xy, np.bincount(point, weights=ppl, minlength=len(xy)), point, blk, ppl)


#: population points whose candidate block pairs are measured at a time (memory bound)
REACH_POINT_CHUNK = 4096


def reach_pairs(blocks, points: PopulationPoints, max_distance_m: float, *,
                simplify_m: float = 40.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(block i, point p, distance) for every population point within ``max_distance_m``
    of a town-block: one STRtree query of the points' L-boxes, then one vectorised
    distance per candidate pair. Block outlines are simplified by ``simplify_m`` (a
    distance moves by at most that much). A point is always related to the blocks whose
    residents it carries, at distance 0. Sorted by block, then distance."""
    L = float(max_distance_m)
    xy = points.xy
    geoms = shapely.simplify(blocks.geometry.values, float(simplify_m), preserve_topology=True)
    tree = shapely.STRtree(geoms)
    found = []
    for a in range(0, len(xy), REACH_POINT_CHUNK):   # points a:b: bounds the candidate pairs held at once
        c = xy[a:a + REACH_POINT_CHUNK]
        pi, bi = tree.query(shapely.box(c[:, 0] - L, c[:, 1] - L, c[:, 0] + L, c[:, 1] + L))
        d = shapely.distance(geoms[bi], shapely.points(c)[pi])
        near = d <= L
        found.append((bi[near].astype(np.int32), (pi[near] + a).astype(np.int32), d[near]))
    # int32 indices (blocks and points are fewer than 2³¹): 16 bytes a pair, not 24
    bi = np.concatenate([f[0] for f in found] + [np.asarray(points.member_block, dtype=np.int32)])
    pi = np.concatenate([f[1] for f in found] + [np.asarray(points.member_point, dtype=np.int32)])
    d = np.concatenate([f[2] for f in found] + [np.zeros(len(points.member_point))])
    del found
    order = np.lexsort((d, pi, bi))
    bi = bi[order]
    pi = pi[order]
    d = d[order]
    del order
    first = np.r_[True, (bi[1:] != bi[:-1]) | (pi[1:] != pi[:-1])]
    return bi[first], pi[first], d[first]
