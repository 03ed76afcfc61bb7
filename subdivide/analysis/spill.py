"""Spill: how much of a sub-area its neighbours' broadcasts do not reach (DOMAIN.md §3).

Symbols: S = sub-area area (m²), L = spill distance (m), r = sqrt(S/π).

The trial measured out-of-area reception 1.6–3.3 km past the sending area's boundary,
so the report is computed for a band of spill distances (2.0, 2.5 and 3.0 km by default):

- **circle model** (the trial report's): unreached share ``(r − L)²/r²`` and the minimum
  area for a target share p, ``π (L / (1 − √p))²`` (146 km² for p = 0.5 at 2 km);
- **exact polygon model**: the unreached core is the inward buffer ``A ⊖ L``; its area
  share and its population share (town-block population, areal-weighted where the core
  boundary cuts a block; optionally from a population raster as well);
- **neighbour exposure**: for each ordered pair (A, B), the area and population of B
  within L of A (reached by A's messages); the same for neighbouring municipalities;
- **thresholds**: sub-areas whose unreached core is below the target share, with the
  area they would need (circle model, and the same shape scaled up);
- **advice that is possible** (:func:`spill_advice`): whether a shape of the needed size
  fits at all (the circle's area is a lower bound for every shape, by Brunn–Minkowski),
  inside the municipality or inside the sub-area and all its neighbours, and what would
  help: merging with the neighbour that gains the most core share, or accepting
  L ≤ the distance this shape tolerates;
- **checks against observations**: distances from points (the trial's offices) to every
  sub-area, predicted reception at each L, and a maximum-likelihood fit of L.

All geometry work is vectorised (STRtree queries and shapely array operations).
Distances in the API are kilometres unless a name ends in ``_m``.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from subdivide.core.constants import DEFAULT_DISTANCES_KM, DEFAULT_TARGET_SHARE
from subdivide.core.errors import UserError
from subdivide.model.areal import overlap_areas, weighted_population  # noqa: F401 (re-export)
from subdivide.model.reach import (  # noqa: F401 (re-export: the spill model's geometry)
    BufferLadder, circle_unreached_share, core_distance_for_share, core_share, ladder_buffer,
    min_area_for_share, parallel_buffer, simplified, spill_buffers, spill_territory,
)
from subdivide.io.readers import read_points, read_vector  # noqa: F401 (read_points: re-export)
from subdivide.io.tables import read_text_table
from subdivide.core.progress import Progress, silent

#: population sources named in the outputs
SOURCE_BLOCKS = "townblocks"
SOURCE_RASTER = "raster"
SOURCE_NONE = "none"
SOURCE_UNIFORM = "neighbours_uniform"

OUTPUT_FILES = ("spill_subareas.csv", "spill_exposure.csv", "spill_totals.csv", "spill.json")


# ====================================================================== parsing
def parse_distances(value, *, where: str = "--distances") -> tuple[float, ...]:
    """'2,2.5,3', a sequence of numbers or one number → sorted unique distances in km
    (each > 0, ≤ 50)."""
    if isinstance(value, str):
        parts = [p.strip() for p in value.replace(";", ",").split(",") if p.strip()]
    else:
        try:
            parts = list(value)
        except TypeError:   # one number
            parts = [value]
    if not parts:
        raise UserError("no spill distance given", where=where,
                        fix=f"give distances in km, e.g. {where} 2,2.5,3")
    out = []
    for p in parts:
        try:
            v = float(p)
        except (TypeError, ValueError):
            raise UserError(f"spill distance {p!r} is not a number", where=where,
                            fix=f"give distances in km, e.g. {where} 2,2.5,3") from None
        if not math.isfinite(v) or v <= 0 or v > 50:
            raise UserError(f"spill distance {p!r} km is out of range (0, 50]", where=where,
                            fix=f"the trial measured 1.6–3.3 km; give e.g. {where} 2,2.5,3")
        out.append(v)
    return tuple(sorted(set(out)))


def check_share(value, *, where: str = "--target") -> float:
    try:
        p = float(value)
    except (TypeError, ValueError):
        raise UserError(f"target share {value!r} is not a number", where=where,
                        fix="give a share between 0 and 1, e.g. 0.5") from None
    if not (0.0 < p < 1.0):
        raise UserError(f"target share {value!r} must lie strictly between 0 and 1", where=where,
                        fix="give a share such as 0.5 (50 %)")
    return p


# ====================================================================== population raster
@dataclass(frozen=True)
class PopulationGrid:
    """Raster cells with population > 0 as polygons in a projected CRS."""

    cells: np.ndarray          # shapely polygons
    population: np.ndarray     # float per cell
    name: str                  # file name (for the outputs)


def read_population_raster(path, crs) -> PopulationGrid:
    """Read a population GeoTIFF (people per cell, band 1) with rasterio; cells become
    polygons reprojected to ``crs``. Nodata and non-positive cells are dropped."""
    import rasterio
    from rasterio.errors import RasterioIOError

    p = Path(path)
    if not p.exists():
        raise UserError(f"population raster {p} does not exist", where="--population-raster",
                        fix="give a GeoTIFF of people per cell (e.g. a 500 m mesh)")
    try:
        with rasterio.open(p) as src:
            band = src.read(1, masked=True).astype(float)
            transform = src.transform
            rcrs = src.crs
    except RasterioIOError as exc:
        raise UserError(f"{p} is not a raster rasterio can read ({exc})", where="--population-raster",
                        fix="give a GeoTIFF") from None
    if rcrs is None:
        raise UserError(f"population raster {p} has no CRS", where="--population-raster",
                        fix="assign one, e.g. gdal_edit.py -a_srs EPSG:6668 FILE")
    values = band.filled(0.0)
    rows, cols = np.nonzero(np.isfinite(values) & (values > 0))
    corners = []
    for dr, dc in ((0, 0), (0, 1), (1, 1), (1, 0)):
        c, r = cols + dc, rows + dr
        xs = transform.a * c + transform.b * r + transform.c
        ys = transform.d * c + transform.e * r + transform.f
        corners.append(np.column_stack([xs, ys]))
    ring = np.stack(corners + [corners[0]], axis=1)  # (n, 5, 2)
    polys = shapely.polygons(ring) if len(rows) else np.zeros(0, dtype=object)
    cells = gpd.GeoSeries(polys, crs=rcrs.to_wkt())
    if not cells.crs.equals(gpd.GeoSeries([], crs=crs).crs):
        cells = cells.to_crs(crs)
    return PopulationGrid(np.asarray(cells.values, dtype=object), values[rows, cols], p.name)


def _check_raster_covers(grid: PopulationGrid, plan, min_share: float = 0.5) -> None:
    """A population raster must hold people over most of the municipality: at least
    ``min_share`` of the town-blocks must sit on a populated cell (else it is another place,
    a wrong CRS, or empty)."""
    pts = shapely.point_on_surface(np.asarray(plan.blocks.geometry.values, dtype=object))
    populated = plan.blocks["population"].to_numpy(float) > 0
    pts = pts[populated] if populated.any() else pts
    hit = np.zeros(len(pts), bool)
    if len(grid.cells):
        pi, _ = shapely.STRtree(grid.cells).query(pts, predicate="within")
        hit[pi] = True
    if hit.mean() < min_share if len(hit) else True:
        raise UserError(f"population raster {grid.name} covers only {hit.mean():.0%} of the municipality's "
                        "populated town-blocks with populated cells", where=f"--population-raster {grid.name}",
                        fix="give a raster of this municipality in its own CRS (check the extent, the CRS "
                            "and the nodata value)")


def write_synthetic_population_raster(path, bounds, crs, *, cell_m: float = 500.0, seed: int = 0,
                                      total: float = 90_000.0, centres: int = 4) -> Path:
    """A seeded synthetic population grid (GeoTIFF, people per cell) covering ``bounds``
    (minx, miny, maxx, maxy in ``crs``): a few Gaussian towns on a rural background.
    For tests, benchmarks and the demo only; never real data."""
    import rasterio
    from affine import Affine

    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = map(float, bounds)
    ncol = max(1, int(math.ceil((maxx - minx) / cell_m)))
    nrow = max(1, int(math.ceil((maxy - miny) / cell_m)))
    xs = minx + (np.arange(ncol) + 0.5) * cell_m
    ys = maxy - (np.arange(nrow) + 0.5) * cell_m
    X, Y = np.meshgrid(xs, ys)
    dens = np.full(X.shape, 0.05)
    for _ in range(centres):
        cx, cy = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        sd = rng.uniform(0.05, 0.15) * max(maxx - minx, maxy - miny)
        dens += rng.uniform(0.5, 2.0) * np.exp(-((X - cx) ** 2 + (Y - cy) ** 2) / (2 * sd**2))
    dens *= rng.uniform(0.7, 1.3, size=dens.shape)
    grid = np.round(dens / dens.sum() * total).astype("float32")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(out, "w", driver="GTiff", height=nrow, width=ncol, count=1, dtype="float32",
                       crs=crs, transform=Affine(cell_m, 0.0, minx, 0.0, -cell_m, maxy), nodata=-1.0) as dst:
        dst.write(grid, 1)
    return out


# ====================================================================== islands / neighbours
def island_blocks(blocks: gpd.GeoDataFrame, water=None, *, adjacency=None, near_m: float = 200.0) -> np.ndarray:
    """Boolean mask of island town-blocks.

    Without a water layer: the KIGO_I flag (canonical column ``island``). With a water
    layer (polygons): groups of blocks detached from the municipality's main body (block
    graph) with at least one block within ``near_m`` of water, plus the flagged ones.
    """
    flag = blocks["island"].to_numpy(dtype=bool)
    if water is None:
        return flag
    from subdivide.model.contiguity import block_adjacency, components, disconnected_blocks

    adj = adjacency if adjacency is not None else block_adjacency(blocks)
    detached = disconnected_blocks(adj)
    comp = components(adj)
    if getattr(water, "crs", None) is not None:
        water = water.to_crs(blocks.crs)
        water = water.geometry.values if hasattr(water, "geometry") else water.values
    wat = np.asarray(water, dtype=object)
    tree = shapely.STRtree(wat)
    bi, _ = tree.query(blocks.geometry.values, predicate="dwithin", distance=near_m)
    near = np.zeros(len(blocks), bool)
    near[bi] = True
    # a detached group of blocks is an island when any of its blocks lies by the water
    wet = np.isin(comp, np.unique(comp[near & detached]))
    return flag | (detached & wet)


def read_neighbours(path_or_gdf, crs, *, exclude_code: str | None = None, name_column: str | None = None,
                    own=None) -> gpd.GeoDataFrame:
    """Neighbouring municipalities' outlines → GeoDataFrame(name, population, density, geometry)
    in ``crs``.

    The name comes from ``name_column`` or the first of name / N03_004 / CITY_NAME
    (case-insensitive); a population / pop / jinko column is summed when features are
    dissolved by name (NaN when absent); density is people per m² of the whole outline.
    The plan's own municipality is dropped (N03_007 == ``exclude_code``), and when
    ``own`` (the municipality's geometry) is given every outline loses the part inside it;
    outlines left with less than 1 % of their area are dropped.
    """
    if isinstance(path_or_gdf, (str, Path)):
        gdf = read_vector(path_or_gdf, what="neighbours file", where="--neighbours")
    else:
        gdf = path_or_gdf
    if not isinstance(gdf, gpd.GeoDataFrame) or gdf.crs is None:
        raise UserError("neighbour outlines have no CRS", where="--neighbours",
                        fix="give a file with a declared CRS (e.g. GeoJSON in lon/lat)")
    cols = {str(c).lower(): c for c in gdf.columns}
    if exclude_code and "n03_007" in cols:
        gdf = gdf[gdf[cols["n03_007"]].astype(str) != str(exclude_code)]
    col = name_column or next((cols[c] for c in ("name", "n03_004", "city_name", "muni_name") if c in cols), None)
    if col is None or col not in gdf.columns:
        raise UserError("neighbour outlines have no name column", where="--neighbours",
                        fix="add a 'name' column (or N03_004) with the municipality names")
    pcol = next((cols[c] for c in ("population", "pop", "jinko") if c in cols), None)
    df = gpd.GeoDataFrame({
        "name": gdf[col].astype(str).to_numpy(object),
        "population": pd.to_numeric(gdf[pcol], errors="coerce").to_numpy(float) if pcol else np.nan,
    }, geometry=gdf.geometry.to_crs(crs).values, crs=crs)
    out = df.dissolve("name", as_index=False, aggfunc={"population": lambda s: s.sum(min_count=1)})
    out = out.sort_values("name", kind="stable").reset_index(drop=True)
    full = shapely.area(np.asarray(out.geometry.values, dtype=object))
    out["density"] = out["population"].to_numpy(float) / np.where(full > 0, full, np.nan)
    if own is not None:
        rest = shapely.difference(np.asarray(out.geometry.values, dtype=object), own)
        keep = shapely.area(rest) > 0.01 * full
        out = out.set_geometry(rest)[keep].reset_index(drop=True)
    return out[["name", "population", "density", "geometry"]]


# ====================================================================== the report
@dataclass(frozen=True, eq=False)
class SpillGeometry:
    """The shapes a report's figures were measured on (projected CRS of the plan, metres),
    for drawing them: nothing recomputes them. Zone ``z = l · k + i`` is sub-area
    ``subarea[i]`` at ``distances_km[l]``.

    ``territory``: each sub-area as the radio sees it (:func:`spill_territory`, the A of
    docs/domain.md §3); ``core``: ``A ⊖ L``, the unreached core whose area gives
    ``core_share``; ``reach``: ``A ⊕ L``, where A's messages are received (its part in
    sub-area B is the exposure A → B). Across water (``water_distance_km``) both include
    the island parts the report used.
    """

    crs: object
    subarea: np.ndarray
    distances_km: tuple
    territory: np.ndarray
    core: np.ndarray
    reach: np.ndarray

    def at(self, distance_km) -> tuple[np.ndarray, np.ndarray]:
        """(cores, reaches) at one of the report's distances, in ``subarea`` order."""
        dist = [float(L) for L in self.distances_km]
        L = float(distance_km)
        hit = [i for i, d in enumerate(dist) if abs(d - L) < 1e-9]
        if not hit:
            raise KeyError(f"the spill report has no distance {L:g} km (it has {dist})")
        k = len(self.subarea)
        sl = slice(hit[0] * k, (hit[0] + 1) * k)
        return self.core[sl], self.reach[sl]


@dataclass
class SpillReport:
    """Every spill figure for one plan (DataFrames; see docs/spill.md for the columns),
    and the shapes they were measured on (``geometry``, :class:`SpillGeometry`; not
    written out)."""

    subareas: pd.DataFrame
    exposure: pd.DataFrame
    municipalities: pd.DataFrame
    totals: pd.DataFrame
    parameters: dict
    extra: dict = field(default_factory=dict)     # name → DataFrame (offices, observations)
    coverage: dict = field(default_factory=dict)  # name → DataFrame from coverage.footprint_report
    fit: dict | None = None
    geometry: SpillGeometry | None = field(default=None, repr=False, compare=False)

    def tables(self) -> dict[str, pd.DataFrame]:
        """Every table by output name (``spill_<name>.csv``)."""
        t = {"subareas": self.subareas, "exposure": self.exposure, "totals": self.totals}
        if len(self.municipalities):
            t["municipalities"] = self.municipalities
        t.update(self.extra)
        t.update({f"coverage_{k}": v for k, v in self.coverage.items()})
        return t

    def to_dict(self) -> dict:
        d = {"parameters": _jsonable(self.parameters)}
        for name, df in self.tables().items():
            if not name.startswith("coverage_"):
                d[name] = _records(df)
        if self.coverage:
            d["coverage"] = {k: _records(v) for k, v in self.coverage.items()}
        if self.fit is not None:
            d["fit"] = _jsonable(self.fit)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2, allow_nan=False) + "\n"

    def write(self, directory, *, force: bool = False, encoding: str = "utf-8-sig") -> list[Path]:
        """Write spill_<table>.csv for every table and spill.json into ``directory``.

        Every file is rendered first, then all are checked for overwriting, then each is
        written atomically: a bad encoding or an existing file leaves nothing behind.
        """
        from subdivide.io.output import atomic_path, check_can_write, csv_bytes

        d = Path(directory)
        payload: dict[str, bytes] = {}
        for name, df in self.tables().items():
            fname = f"spill_{name}.csv"
            payload[fname] = csv_bytes(df, encoding=encoding, where=str(d / fname))
        payload["spill.json"] = self.to_json().encode("utf-8")
        for fname in payload:
            check_can_write(d / fname, force)
        written = []
        for fname, data in payload.items():
            with atomic_path(d / fname, force=force) as tmp:
                tmp.write_bytes(data)
            written.append(d / fname)
        return written


def spill_report(plan, *, distances_km=DEFAULT_DISTANCES_KM, target_share: float = DEFAULT_TARGET_SHARE,
                 neighbours=None, water_distance_km: float | None = None, water=None,
                 population_raster=None, quad_segs: int = 16, advice: bool = True,
                 progress: Progress = silent) -> SpillReport:
    """The full spill report of a plan (docs/domain.md §3 models 1–3, thresholds).

    plan: a :class:`~subdivide.model.plan.Plan` (uses ``plan.dissolved`` and its blocks).
    distances_km: spill distances L (km). target_share: policy share of unreached core.
    neighbours: outlines of neighbouring municipalities (path or GeoDataFrame) or None.
    water_distance_km: a longer L across water, used from and to island blocks
    (``island`` flag, or detached blocks near ``water`` polygons when given).
    population_raster: a GeoTIFF of people per cell (path) or a :class:`PopulationGrid`;
    its figures are added as rows with ``population_source = "raster"``.

    advice: False leaves out what only the written report and its summary read — the
    tolerated distance, the areas needed and the merge advice (:func:`spill_advice`), a
    third of the cost on real outlines — for a caller that draws the shares and the
    exposure (the map computing its own report). Every other figure is the same.

    The report carries the shapes it measured (``geometry``: territories, cores and
    reaches, :class:`SpillGeometry`), so that a map draws them instead of buffering again.
    """
    dist = parse_distances(distances_km)
    p = check_share(target_share, where="target_share")
    water_distance_km = _check_water_distance(water_distance_km)
    grid = None
    if population_raster is not None:
        grid = population_raster if isinstance(population_raster, PopulationGrid) \
            else read_population_raster(population_raster, plan.crs)
        _check_raster_covers(grid, plan)
    z = _Zones(plan, dist)
    isl = None
    if water_distance_km is not None:  # islands: part of each sub-area that is island, for the water distance
        mask = island_blocks(plan.blocks, water, adjacency=plan.adjacency if water is not None else None)
        isl = mask if mask.any() else None
    progress("spill: cores", 0, len(dist))
    z.buffer(isl, water_distance_km, quad_segs)
    progress("spill: cores", len(dist), len(dist))
    progress("spill: core population", 0, 1)
    sa = z.subarea_rows()
    progress("spill: core population", 1, 1)
    progress("spill: exposure", 0, 1)
    exposure = z.exposure_rows()
    progress("spill: exposure", 1, 1)
    if grid is not None:
        progress("spill: raster population", 0, 1)
        sa, exposure = z.add_raster_rows(sa, exposure, grid)
        progress("spill: raster population", 1, 1)
    sa["core_population_share"] = np.where(sa["population"] > 0,
                                           sa["core_population"] / sa["population"].where(sa["population"] > 0, 1), np.nan)
    sa = _thresholds(sa, z.A, p, quad_segs, ladder=z.territory_ladder, advice=advice)
    sa["water_distance_km"] = water_distance_km if water_distance_km is not None else np.nan
    sa = _by_source(sa, ["population_source", "distance_km", "subarea"])
    exposure = _by_source(exposure, ["population_source", "distance_km", "from_subarea", "to_subarea"])
    munis = _municipality_exposure(plan, z.reach, z.zone_sub, z.zone_L, dist, z.sub_ids, z.dis, neighbours,
                                   grid, progress)
    params = _parameters(plan, dist, p, water_distance_km, quad_segs, neighbours, grid)
    if not advice:
        params["advice"] = False
    shapes = SpillGeometry(crs=plan.crs, subarea=z.sub_ids, distances_km=tuple(dist), territory=z.A,
                           core=z.cores, reach=z.reach)
    return SpillReport(subareas=sa, exposure=exposure, municipalities=munis, totals=_totals(sa, exposure, munis),
                       parameters=params, geometry=shapes)


def _check_water_distance(water_distance_km):
    if water_distance_km is None:
        return None
    water_distance_km = float(water_distance_km)
    if not math.isfinite(water_distance_km) or water_distance_km <= 0:
        raise UserError(f"water distance {water_distance_km} km must be positive",
                        where="--water-distance", fix="give e.g. --water-distance 5")
    return water_distance_km


class _Zones:
    """The sub-areas' cores and reaches at every L of one report: zone z = l * k + i."""

    def __init__(self, plan, dist):
        self.dis = dis = plan.dissolved
        self.dist = dist
        self.sub_ids = dis["subarea"].to_numpy()
        self.k, self.nL = k, nL = len(dis), len(dist)
        self.A = spill_territory(dis.geometry.values)
        self.area = shapely.area(self.A)
        blocks = plan.blocks
        self.bgeom = np.asarray(blocks.geometry.values, dtype=object)
        self.bpop = blocks["population"].to_numpy(dtype=float)
        bsub = blocks["subarea"].to_numpy()
        pos_of = {s: i for i, s in enumerate(self.sub_ids)}
        self.bidx = np.array([pos_of[s] for s in bsub], dtype=np.int64) if len(bsub) else np.zeros(0, np.int64)
        self.sub_pop = np.bincount(self.bidx, weights=self.bpop, minlength=k)
        self.zone_sub = np.tile(np.arange(k), nL)
        self.zone_L = np.repeat(np.arange(nL), k)

    def buffer(self, isl, water_distance_km, quad_segs: int) -> None:
        """Cores (inward buffers) and reaches (outward), through the buffer ladder
        (:func:`~subdivide.model.reach.spill_buffers`); across water, Lw to and from islands.
        The inward ladder of the territories is kept (``territory_ladder``) for the
        tolerated distance, so both measure the same cores."""
        k, nL, A, bgeom, bidx = self.k, self.nL, self.A, self.bgeom, self.bidx
        self.territory_ladder = BufferLadder(A, sign=-1, quad_segs=quad_segs)
        dist_m = np.asarray(self.dist) * 1000.0
        if isl is None:
            self.cores, self.reach = spill_buffers(A, dist_m, quad_segs=quad_segs, core_ladder=self.territory_ladder)
            return
        Lw = water_distance_km * 1000.0
        main = _union_by(bgeom[~isl], bidx[~isl], k)
        isle = _union_by(bgeom[isl], bidx[isl], k)
        isle_core, A_far, isle_far = np.split(
            ladder_buffer(np.concatenate([isle, A, isle]), np.repeat([-Lw, Lw, Lw], k), quad_segs=quad_segs), 3)
        # messages cross water to islands, and island parts send across water, up to Lw
        far = shapely.union(shapely.intersection(A_far, shapely.union_all(bgeom[isl])), isle_far)
        # cores of the parts on the main body, reaches of the whole territories
        self.cores, _ = spill_buffers(main, dist_m, quad_segs=quad_segs, reaches=False)
        _, self.reach = spill_buffers(A, dist_m, quad_segs=quad_segs, cores=False)
        self.cores = shapely.union(self.cores, np.tile(isle_core, nL))
        self.reach = shapely.union(self.reach, np.tile(far, nL))

    def subarea_rows(self) -> pd.DataFrame:
        """One row per sub-area and L: areas, circle and core shares, core population (own blocks)."""
        k, area, bidx, zone_sub = self.k, self.area, self.bidx, self.zone_sub
        zi, _, _, pop = weighted_population(self.cores, self.bgeom, self.bpop,
                                            pair_filter=lambda z, b: bidx[b] == zone_sub[z])
        core_pop = np.bincount(zi, weights=pop, minlength=k * self.nL)
        core_area = shapely.area(self.cores)
        rows = []
        for li, L in enumerate(self.dist):
            sl = slice(li * k, (li + 1) * k)
            rows.append(pd.DataFrame({
                "subarea": self.sub_ids, "name": self.dis["name"].to_numpy(), "code": self.dis["code"].to_numpy(),
                "distance_km": L, "area_km2": area / 1e6,
                "equal_circle_radius_km": np.sqrt(area / np.pi) / 1e3,
                "circle_unreached_share": circle_unreached_share(area, L * 1e3),
                "core_area_km2": core_area[sl] / 1e6,
                "core_share": np.where(area > 0, core_area[sl] / np.where(area > 0, area, 1), 0.0),
                "population": self.sub_pop, "core_population": core_pop[sl],
            }))
        sa = pd.concat(rows, ignore_index=True)
        sa["population_source"] = SOURCE_BLOCKS
        return sa

    def exposure_rows(self) -> pd.DataFrame:
        """Exposure A → B (pairs with any overlap) from the blocks of the other sub-areas."""
        k, nL, bidx, zone_sub, area, sub_pop = self.k, self.nL, self.bidx, self.zone_sub, self.area, self.sub_pop
        zi, pj, ar, pop = weighted_population(self.reach, self.bgeom, self.bpop,
                                              pair_filter=lambda z, b: bidx[b] != zone_sub[z])
        key = zi * k + bidx[pj]
        exp_area = np.bincount(key, weights=ar, minlength=k * nL * k).reshape(k * nL, k)
        exp_pop = np.bincount(key, weights=pop, minlength=k * nL * k).reshape(k * nL, k)
        ez, eb = self.ez, self.eb = np.nonzero(exp_area > 0)
        names = self.dis["name"].to_numpy()
        return pd.DataFrame({
            "distance_km": np.asarray(self.dist)[self.zone_L[ez]],
            "from_subarea": self.sub_ids[zone_sub[ez]], "from_name": names[zone_sub[ez]],
            "to_subarea": self.sub_ids[eb], "to_name": names[eb],
            "area_km2": exp_area[ez, eb] / 1e6,
            "to_area_share": exp_area[ez, eb] / np.where(area[eb] > 0, area[eb], 1),
            "population": exp_pop[ez, eb],
            "to_population_share": _share(exp_pop[ez, eb], sub_pop[eb]),
            "population_source": SOURCE_BLOCKS,
        })

    def add_raster_rows(self, sa: pd.DataFrame, exposure: pd.DataFrame, grid) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The same rows with population from the raster (``population_source = "raster"``)."""
        k, nL, A, ez, eb = self.k, self.nL, self.A, self.ez, self.eb
        gz, _, _, gpop = weighted_population(np.concatenate([A, self.cores]), grid.cells, grid.population)
        tot = np.bincount(gz, weights=gpop, minlength=k + k * nL)
        r_sub, r_core = tot[:k], tot[k:]
        ra = sa[sa["population_source"] == SOURCE_BLOCKS].copy()
        ra["population"] = np.tile(r_sub, nL)
        ra["core_population"] = r_core
        ra["population_source"] = SOURCE_RASTER
        sa = pd.concat([sa, ra], ignore_index=True)
        if len(ez):
            pieces = shapely.intersection(self.reach[ez], A[eb])
            pz, _, _, ppop = weighted_population(pieces, grid.cells, grid.population)
            rpop = np.bincount(pz, weights=ppop, minlength=len(ez))
            er = exposure.copy()
            er["population"] = rpop
            er["to_population_share"] = _share(rpop, r_sub[eb])
            er["population_source"] = SOURCE_RASTER
            exposure = pd.concat([exposure, er], ignore_index=True)
        return sa, exposure


def _share(part, whole) -> np.ndarray:
    """part / whole, 0 where whole is 0."""
    whole = np.asarray(whole, dtype=float)
    return np.where(whole > 0, np.asarray(part, dtype=float) / np.where(whole > 0, whole, 1), 0.0)


def _thresholds(sa: pd.DataFrame, A, p: float, quad_segs: int, *, ladder=None, advice: bool = True) -> pd.DataFrame:
    """Which sub-areas fall below the target share p, and (``advice``) the area they would
    need. ``ladder``: the report's inward :class:`BufferLadder` of ``A`` (the tolerated
    distance is then the one at which the report's own cores keep p)."""
    Lm_rows = sa["distance_km"].to_numpy() * 1e3
    sa["target_share"] = p
    sa["circle_min_area_km2"] = min_area_for_share(p, Lm_rows) / 1e6
    sa["circle_below_target"] = sa["circle_unreached_share"] < p
    sa["below_target"] = sa["core_share"] < p
    if not advice:
        return sa
    tol = core_distance_for_share(A, p, quad_segs=quad_segs, ladder=ladder)
    tol_rows = np.tile(tol, len(sa) // len(A))
    sa["tolerated_distance_km"] = tol_rows / 1e3
    sa["area_needed_same_shape_km2"] = np.where(
        tol_rows > 0, sa["area_km2"] * (Lm_rows / np.where(tol_rows > 0, tol_rows, 1)) ** 2, np.inf)
    sa["area_shortfall_km2"] = np.maximum(
        np.maximum(sa["circle_min_area_km2"], sa["area_needed_same_shape_km2"]) - sa["area_km2"], 0.0)
    sa["area_shortfall_km2"] = np.where(sa["below_target"] | sa["circle_below_target"], sa["area_shortfall_km2"], 0.0)
    return spill_advice(sa, A, p, quad_segs)


#: DE-9IM: the two boundaries meet in a line (a stretch of shared border, not a lone point)
SHARED_BORDER_PATTERN = "****1****"


def subarea_neighbours(A) -> list[np.ndarray]:
    """Positions of the sub-areas sharing a stretch of border (not a lone point) with each:
    the boundaries' intersection has dimension 1 (:data:`SHARED_BORDER_PATTERN`), a
    predicate, so no intersection is built (on 鳥取市's real outlines 2.3× cheaper than
    measuring the shared length)."""
    A = np.asarray(A, dtype=object)
    i, j = shapely.STRtree(A).query(A, predicate="intersects")
    i, j = i[i != j], j[i != j]
    shared = shapely.relate_pattern(A[i], A[j], SHARED_BORDER_PATTERN)
    i, j = i[shared], j[shared]
    return [np.sort(j[i == a]) for a in range(len(A))]


#: outline simplification (m) for the merge advice's buffers: on 鳥取市's real 旧市町村 the
#: merged core shares move by < 0.1 % against the exact outline, five times faster
MERGE_SIMPLIFY_M = 50.0


def _merge_shares(A, nb, wanted: dict, quad_segs: int) -> dict:
    """(position, L km) → (best neighbour position, core share of the union) for each wanted
    pair: the neighbour whose union with the sub-area keeps the largest core at L. Each union
    (of an unordered pair) is made once, simplified at :data:`MERGE_SIMPLIFY_M` and buffered
    through one inward :class:`BufferLadder` (its rungs serve every L)."""
    pairs = sorted({(min(a, int(b)), max(a, int(b))) for a, _ in wanted for b in nb[a]})
    if not pairs:
        return {}
    lo, hi = np.array(pairs).T
    unions = shapely.union(A[lo], A[hi])
    area = shapely.area(unions)
    ladder = BufferLadder(simplified(unions, MERGE_SIMPLIFY_M), sign=-1, quad_segs=min(quad_segs, 8))
    out = {}
    for L in sorted({L for _, L in wanted}):
        subs = [a for a, LL in wanted if LL == L]
        rows = np.flatnonzero(np.isin(lo, subs) | np.isin(hi, subs))
        core = shapely.area(ladder.buffer(-L * 1e3, rows=rows))
        share = np.where(area[rows] > 0, core / np.where(area[rows] > 0, area[rows], 1.0), 0.0)
        for pos in sorted(subs):
            m = np.flatnonzero((lo[rows] == pos) | (hi[rows] == pos))
            if len(m) == 0:
                continue
            other = np.where(lo[rows][m] == pos, hi[rows][m], lo[rows][m])
            order = np.lexsort((other, -share[m]))       # the largest share; ties: the lowest position
            best = order[0]
            out[(int(pos), L)] = (int(other[best]), float(share[m][best]))
    return out


def spill_advice(sa: pd.DataFrame, A, p: float, quad_segs: int = 16) -> pd.DataFrame:
    """Advice that is possible, for each sub-area row below the target share p.

    Adds ``municipality_area_km2``, ``area_with_neighbours_km2`` (the sub-area and every
    sub-area bordering it), ``fits_municipality`` / ``fits_with_neighbours`` (whether a shape
    of the needed size can exist there: the circle's minimum area is the least any shape
    needs, since Brunn–Minkowski gives area(T ⊖ L) ≤ (√area(T) − √π L)²),
    ``merge_with_subarea`` / ``merge_with`` / ``merged_core_share`` (the neighbour giving the
    largest core share once merged, :func:`~subdivide.model.reach.core_share` of the union)
    and ``advice`` (one sentence, :func:`advice_text`)."""
    A = np.asarray(A, dtype=object)
    k = len(A)
    pos = np.arange(len(sa)) % k
    area = shapely.area(A)
    nb = subarea_neighbours(A)
    with_nb = np.array([area[i] + area[nb[i]].sum() for i in range(k)])
    need = sa["circle_min_area_km2"].to_numpy() * 1e6
    sa["municipality_area_km2"] = area.sum() / 1e6
    sa["area_with_neighbours_km2"] = with_nb[pos] / 1e6
    sa["fits_municipality"] = need <= area.sum()
    sa["fits_with_neighbours"] = need <= with_nb[pos]
    below = sa["below_target"].to_numpy()
    Ls = sa["distance_km"].to_numpy()
    best = _merge_shares(A, nb, {(int(pos[r]), float(Ls[r])) for r in np.flatnonzero(below)}, quad_segs)
    found = [best.get((int(pos[r]), float(Ls[r]))) if below[r] else None for r in range(len(sa))]
    sub_ids, names = sa["subarea"].to_numpy()[:k], sa["name"].to_numpy()[:k]
    sa["merge_with_subarea"] = pd.array([sub_ids[f[0]] if f else None for f in found], dtype="Int64")
    sa["merge_with"] = [str(names[f[0]]) if f else "" for f in found]
    sa["merged_core_share"] = [f[1] if f else np.nan for f in found]
    # (the CSV column in characters every list encoding has, CP932 included: km2, <=)
    sa["advice"] = [advice_text(r, p, plain=True) if b else "" for r, b in zip(sa.to_dict("records"), below)]
    return sa


def advice_text(row: dict, p: float, *, plain: bool = False) -> str:
    """One sentence for a sub-area below the target at ``row['distance_km']``: whether a shape
    of the needed size fits, and what would help (merge with a named neighbour, accept a
    shorter L). ``plain``: "km2" and "<=" instead of "km²" and "≤" (encodable in CP932)."""
    text = _advice_sentence(row, p)
    return text.replace("km²", "km2").replace("≤", "<=") if plain else text


def _advice_sentence(row: dict, p: float) -> str:
    L, need = row["distance_km"], row["circle_min_area_km2"]
    if not row["fits_municipality"]:
        head = (f"no shape fits: at {L:g} km even a circle needs {need:,.0f} km², more than the "
                f"municipality's {row['municipality_area_km2']:,.0f} km²")
    elif not row["fits_with_neighbours"]:
        head = (f"no shape fits here: at {L:g} km even a circle needs {need:,.0f} km², more than this "
                f"sub-area and all its neighbours ({row['area_with_neighbours_km2']:,.0f} km²)")
    else:
        same = row["area_needed_same_shape_km2"]
        shape = (f"{same:,.0f} km² in this shape, " if np.isfinite(same) and same <= row["municipality_area_km2"]
                 else "")
        head = f"at {L:g} km needs {shape}at least {need:,.0f} km² (a circle)"
    helps = ["send to the whole municipality (no subdivision)"] if not row["fits_municipality"] else []
    if row.get("merge_with") and row["merged_core_share"] > row["core_share"] + 0.005:   # a real gain
        got = row["merged_core_share"]
        helps.append(f"merge with {row['merge_with']} (core {got:.0%}" +
                     (f", meets {p:.0%})" if got >= p else f", still below {p:.0%})"))
    tol = row["tolerated_distance_km"]
    if np.isfinite(tol) and tol > 0:
        helps.append(f"accept L ≤ {tol:.1f} km")
    return head + ("; " + " or ".join(helps) if helps else "")


def _by_source(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Sorted by ``columns``, town-block rows before raster rows."""
    order = {SOURCE_BLOCKS: 0, SOURCE_RASTER: 1}
    return df.sort_values(columns, key=lambda s: s.map(order) if s.name == "population_source" else s,
                          kind="stable").reset_index(drop=True)


def _parameters(plan, dist, p, water_distance_km, quad_segs, neighbours, grid) -> dict:
    crs = plan.crs
    return {
        "muni_code": plan.muni_code, "crs": crs.to_string() if crs is not None else None,
        "distances_km": list(dist), "target_share": p,
        "water_distance_km": water_distance_km, "quad_segs": quad_segs,
        "n_subareas": int(len(plan.dissolved)), "n_townblocks": int(len(plan.blocks)),
        "population_sources": [SOURCE_BLOCKS] + ([f"{SOURCE_RASTER}:{grid.name}"] if grid is not None else []),
        "neighbours": None if neighbours is None else (str(neighbours) if isinstance(neighbours, (str, Path))
                                                       else "GeoDataFrame"),
        "models": {
            "circle": "(r - L)^2 / r^2, r = sqrt(S / pi); min area pi (L / (1 - sqrt p))^2",
            "core": "area(A.buffer(-L)) / area(A); population areal-weighted where a block is cut",
            "exposure": "B within L of A: B ∩ A.buffer(L); population areal-weighted",
            "area_needed_same_shape": "S (L / L_p)^2 with L_p the distance at which the shape keeps share p",
            "buffers": "A.buffer(±L) built as a chain of shorter buffers through 50, 200, 800, 3200 m "
                       "(subdivide.model.reach.BufferLadder), quad_segs per buffer",
        },
    }


def _union_by(geoms, group, k) -> np.ndarray:
    """Union of geoms per group 0..k-1 (empty polygon where a group has none)."""
    out = np.empty(k, dtype=object)
    for i in range(k):
        sel = geoms[group == i]
        out[i] = shapely.union_all(sel) if len(sel) else shapely.Polygon()
    return out


def _municipality_exposure(plan, reach, zone_sub, zone_L, dist, sub_ids, dis, neighbours, grid, progress):
    cols = ["distance_km", "from_subarea", "from_name", "municipality", "area_km2", "population",
            "population_source"]
    if neighbours is None:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in cols})
    progress("spill: neighbouring municipalities", 0, 1)
    own = shapely.union_all(np.asarray(dis.geometry.values, dtype=object))
    nb = read_neighbours(neighbours, plan.crs, exclude_code=plan.muni_code, own=own)
    ng = np.asarray(nb.geometry.values, dtype=object)
    zi, mj = shapely.STRtree(ng).query(reach, predicate="intersects")
    pieces = shapely.intersection(reach[zi], ng[mj])
    ar = shapely.area(pieces)
    keep = ar > 0
    zi, mj, pieces, ar = zi[keep], mj[keep], pieces[keep], ar[keep]
    df = pd.DataFrame({
        "distance_km": np.asarray(dist)[zone_L[zi]], "from_subarea": sub_ids[zone_sub[zi]],
        "from_name": dis["name"].to_numpy()[zone_sub[zi]], "municipality": nb["name"].to_numpy()[mj],
        "area_km2": ar / 1e6,
    })
    if grid is not None:
        pz, _, _, ppop = weighted_population(pieces, grid.cells, grid.population)
        df["population"] = np.bincount(pz, weights=ppop, minlength=len(pieces))
        df["population_source"] = SOURCE_RASTER
    else:
        dens = nb["density"].to_numpy(float)[mj]
        df["population"] = ar * dens
        df["population_source"] = np.where(np.isfinite(dens), SOURCE_UNIFORM, SOURCE_NONE)
    progress("spill: neighbouring municipalities", 1, 1)
    return df.sort_values(["distance_km", "from_subarea", "municipality"], kind="stable").reset_index(drop=True)


def _totals(sa: pd.DataFrame, exposure: pd.DataFrame, munis: pd.DataFrame) -> pd.DataFrame:
    """Per sub-area × L × population source: what A's messages reach (other sub-areas,
    neighbouring municipalities) and what the other sub-areas' messages reach of A."""
    base = sa[["population_source", "distance_km", "subarea", "name", "area_km2", "population"]].copy()
    g_out = exposure.groupby(["population_source", "distance_km", "from_subarea"])[["area_km2", "population"]].sum()
    g_in = exposure.groupby(["population_source", "distance_km", "to_subarea"])[["area_km2", "population"]].sum()
    n_out = exposure.groupby(["population_source", "distance_km", "from_subarea"]).size()
    idx = pd.MultiIndex.from_frame(base[["population_source", "distance_km", "subarea"]])
    base["subareas_reached"] = n_out.reindex(idx).fillna(0).astype("int64").to_numpy()
    base["out_area_km2"] = g_out["area_km2"].reindex(idx).fillna(0.0).to_numpy()
    base["out_population"] = g_out["population"].reindex(idx).fillna(0.0).to_numpy()
    base["in_area_sum_km2"] = g_in["area_km2"].reindex(idx).fillna(0.0).to_numpy()
    base["in_population_sum"] = g_in["population"].reindex(idx).fillna(0.0).to_numpy()
    if len(munis):
        m = munis.groupby(["distance_km", "from_subarea"])[["area_km2", "population"]].sum(min_count=1)
        midx = pd.MultiIndex.from_frame(base[["distance_km", "subarea"]])
        base["municipalities_area_km2"] = m["area_km2"].reindex(midx).fillna(0.0).to_numpy()
        base["municipalities_population"] = m["population"].reindex(midx).to_numpy()
        base["municipalities_population_source"] = ",".join(sorted(set(munis["population_source"])))
    return base.reset_index(drop=True)


# ====================================================================== points and observations
def _projected(gdf: gpd.GeoDataFrame, crs=None, *, where: str) -> gpd.GeoDataFrame:
    if gdf.crs is None:
        raise UserError("layer has no CRS", where=where, fix="declare a CRS (e.g. EPSG:6668 for lon/lat)")
    if crs is not None:
        return gdf.to_crs(crs)
    if gdf.crs.is_projected:
        return gdf
    for col in ("city_code", "muni_code", "N03_007"):
        if col in gdf.columns:
            codes = sorted(set(gdf[col].astype(str)))
            if len(codes) == 1:
                from subdivide.core.crs import crs_for_municipality

                return gdf.to_crs(crs_for_municipality(codes[0]))
    return gdf.to_crs(gdf.estimate_utm_crs())


def _areas_frame(areas, name_column: str | None, crs=None) -> gpd.GeoDataFrame:
    """A Plan or a GeoDataFrame of polygons → GeoDataFrame(area, geometry) projected."""
    if hasattr(areas, "dissolved"):
        d = areas.dissolved
        return gpd.GeoDataFrame({"area": d["name"].astype(str).to_numpy(), "subarea": d["subarea"].to_numpy()},
                                geometry=d.geometry.values, crs=d.crs)
    col = name_column or next((c for c in ("name", "old_muni_name") if c in areas.columns), None)
    if col is None or col not in areas.columns:
        raise UserError(f"polygons have no name column {name_column!r}", where="areas",
                        fix=f"choose one of {list(areas.columns.drop('geometry'))}")
    g = _projected(areas, crs, where="areas")
    return gpd.GeoDataFrame({"area": g[col].astype(str).to_numpy(), "subarea": np.arange(1, len(g) + 1)},
                            geometry=g.geometry.values, crs=g.crs)


def office_check(areas, points, distances_km=DEFAULT_DISTANCES_KM, *, area_name: str | None = None,
                 point_name: str | None = None, crs=None) -> pd.DataFrame:
    """Distance (km) from every point to every area, and the predicted reception of that
    area's messages at each spill distance L (received when distance ≤ L; 0 inside).

    areas: a Plan (its sub-areas) or a GeoDataFrame of polygons with a name column
    (e.g. the approximate 旧市町村 polygons). points: GeoDataFrame (with ``point``, or
    ``point_name`` naming the column) or a path for :func:`read_points`.
    Returns one row per point × area, sorted by point then area.
    """
    dist = parse_distances(distances_km)
    a = _areas_frame(areas, area_name, crs)
    if isinstance(points, (str, Path)):
        pts = read_points(points, name_column=point_name)
    else:
        pts = points.copy()
        if "point" not in pts.columns:
            col = point_name or next((c for c in ("name", "office_name") if c in pts.columns), None)
            if col is None:
                raise UserError("points have no name column", where="points", fix="pass point_name")
            pts.insert(0, "point", pts[col].astype(str))
    if pts.crs is None:
        raise UserError("points have no CRS", where="points", fix="declare one (EPSG:6668 for lon/lat)")
    pg = np.asarray(pts.to_crs(a.crs).geometry.values, dtype=object)
    ag = np.asarray(a.geometry.values, dtype=object)
    pi, ai = np.meshgrid(np.arange(len(pg)), np.arange(len(ag)), indexing="ij")
    pi, ai = pi.ravel(), ai.ravel()
    d = shapely.distance(pg[pi], ag[ai]) / 1e3
    out = pd.DataFrame({"point": pts["point"].to_numpy()[pi], "area": a["area"].to_numpy()[ai],
                        "subarea": a["subarea"].to_numpy()[ai], "distance_km": d, "inside": d == 0})
    for L in dist:
        out[f"reached_{L:g}km"] = d <= L
    return out.sort_values(["point", "subarea"], kind="stable").reset_index(drop=True)


def read_observations(path_or_df) -> pd.DataFrame:
    """Observations: columns ``point``, ``subarea`` (name or number the message was sent
    to) and ``received`` (yes/no, true/false, 1/0); optionally ``technology`` (3G/LTE/5G),
    ``city_code`` (several cities in one file), ``date`` and ``own_area``. Extra columns are
    kept. Files are read through the one table reader (UTF-8 / CP932 CSV, XLSX)."""
    from subdivide.analysis.reception import normalise_technology

    if isinstance(path_or_df, pd.DataFrame):
        df = path_or_df.copy()
        where = "observations"
    else:
        p = Path(path_or_df)
        where = str(p)
        if not p.exists():
            raise UserError(f"observations file {p} does not exist", where="--observations",
                            fix="give a CSV with columns point, subarea, received")
        df = read_text_table(p, what="observations file")
    missing = [c for c in ("point", "subarea", "received") if c not in df.columns]
    if missing:
        raise UserError(f"observations lack columns {missing}", where=where,
                        fix="give columns point, subarea (sent to), received (yes/no)")
    df["received"] = _parse_bool(df["received"], where=where)
    if "own_area" in df.columns:
        df["own_area"] = _parse_bool(df["own_area"], where=where)
    if "technology" in df.columns:
        df["technology"] = normalise_technology(df["technology"]).to_numpy()
    if "city_code" in df.columns:
        df["city_code"] = df["city_code"].astype(str).str.strip().str.zfill(5).str[:5]
    return df


def _parse_bool(s: pd.Series, *, where: str) -> pd.Series:
    if s.dtype == bool:
        return s
    m = {"yes": True, "y": True, "true": True, "1": True, "受信": True, "○": True,
         "no": False, "n": False, "false": False, "0": False, "不受信": False, "×": False}
    v = s.astype(str).str.strip().str.lower().map(m)
    if v.isna().any():
        bad = sorted(set(s[v.isna()].astype(str)))[:5]
        raise UserError(f"received values {bad} are not yes/no", where=where, fix="use yes or no")
    return v.astype(bool)


def observation_distances(areas, points, observations, *, area_name: str | None = None,
                          point_name: str | None = None, crs=None) -> pd.DataFrame:
    """Add ``distance_km`` (point to the sub-area the message was sent to) to observations.

    The observation's ``subarea`` matches an area's name, its number, or (for plans) the
    「●●地域」 form of the label (「花巻市(旧)」 matches 「花巻地域」). Which of the rows
    a reception model uses is decided by :func:`subdivide.analysis.reception.between_area_pairs`.
    """
    from subdivide.model.plan import default_subarea_name

    obs = read_observations(observations)
    muni = getattr(areas, "muni_code", None)
    if muni and "city_code" in obs.columns:   # a multi-city file (e.g. the trial's): this plan's rows
        codes = obs["city_code"]
        if not (codes == str(muni)).any():
            raise UserError(f"no observation has city_code {muni} (the plan's municipality)", where="observations",
                            fix=f"the file holds {sorted(set(codes))[:5]}; give this municipality's observations")
        obs = obs[(codes == str(muni)).to_numpy()].reset_index(drop=True)
    chk = office_check(areas, points, (1.0,), area_name=area_name, point_name=point_name, crs=crs)
    key_area = {}
    for a, s in zip(chk["area"], chk["subarea"]):
        key_area[str(a)] = a
        key_area[str(s)] = a
        key_area.setdefault(default_subarea_name(a), a)
    target = [key_area.get(str(v).strip(), key_area.get(default_subarea_name(str(v).strip()))) for v in obs["subarea"]]
    unknown = sorted({str(v) for v, t in zip(obs["subarea"], target) if t is None})
    if unknown:
        raise UserError(f"observed sub-areas {unknown[:5]} are not in the plan/polygons", where="observations",
                        fix=f"use one of {sorted(set(chk['area']))}")
    dmap = chk.set_index(["point", "area"])["distance_km"]
    missing = sorted({p for p in obs["point"] if p not in set(chk["point"])})
    if missing:
        raise UserError(f"observed points {missing[:5]} are not in the points file", where="observations",
                        fix="check the point names against --point-name")
    obs = obs.copy()
    obs["area"] = target
    obs["distance_km"] = dmap.reindex(pd.MultiIndex.from_arrays([obs["point"], obs["area"]])).to_numpy()
    return obs


def observation_pairs(polygons, points, observations=None, *, area_name: str | None = None,
                      point_name: str | None = None, cities=None) -> pd.DataFrame:
    """Observations of one or several cities with ``distance_km`` and ``pair`` (own /
    between): the input of a reception model.

    polygons: sending areas (GeoDataFrame; with a ``city_code`` column when the
    observations cover several cities, e.g. the approximate 旧市町村 polygons).
    observations: path or DataFrame (default: the shipped trial). cities: restrict to
    these city codes. Each city is measured in its own plane-rectangular CRS.
    """
    from subdivide.analysis.reception import own_area_mask
    from subdivide.core.crs import crs_for_municipality

    obs = read_observations(trial_observations() if observations is None else observations)
    pts = read_points(points, name_column=point_name) if isinstance(points, (str, Path)) else points
    if "point" not in pts.columns:
        col = point_name or next((c for c in ("name", "office_name") if c in pts.columns), None)
        if col is None:
            raise UserError("points have no name column", where="--points", fix="pass --point-name COL")
        pts = pts.copy()
        pts.insert(0, "point", pts[col].astype(str))
    multi = "city_code" in obs.columns and "city_code" in polygons.columns
    if not multi:
        out = observation_distances(polygons, pts, obs, area_name=area_name, crs=None)
    else:
        codes = polygons["city_code"].astype(str).str.zfill(5)
        wanted = sorted(set(obs["city_code"])) if cities is None else [str(c).zfill(5) for c in cities]
        absent = [c for c in wanted if not (codes == c).any()]
        if absent:
            raise UserError(f"no polygons for city_code {absent[:5]}", where="--polygons",
                            fix="give polygons with a city_code column covering every observed city")
        parts = []
        for city in wanted:
            o = obs[(obs["city_code"] == city).to_numpy()]
            if len(o):
                parts.append(observation_distances(polygons[(codes == city).to_numpy()], pts, o,
                                                   area_name=area_name, crs=crs_for_municipality(city)))
        out = pd.concat(parts, ignore_index=True) if parts else obs.iloc[:0].assign(area=[], distance_km=[])
    out["pair"] = np.where(own_area_mask(out), "own", "between")
    return out


def fit_summary(model) -> dict:
    """The threshold view of a fitted :class:`~subdivide.analysis.reception.ReceptionModel`:
    L (the distance at which P = 0.5) with its interval, or why it cannot be identified."""
    e = model.estimates_
    L, s = e["L_km"], e["scale_km"]
    d = model._X[:, 1]
    y = model._y.astype(bool)
    out = {"L_km": L["estimate"], "interval": tuple(L["interval"]), "confidence": model.confidence,
           "scale_km": s["estimate"], "scale_interval": tuple(s["interval"]),
           "n": model.n_, "n_received": model.n_received_,
           "misclassified": None if L["estimate"] is None else int(((d <= L["estimate"]) != y).sum()),
           "loglik": float(model.loglik_), "status": L["status"], "identified": L["status"] == "identified",
           "parameters": e,
           "method": "logistic reception model P = 1/(1+exp(-(L-d)/s)), maximum likelihood on between-area "
                     "pairs, profile-likelihood intervals (subdivide.analysis.reception)"}
    if not out["identified"]:
        out["error"] = f"L cannot be identified: {L['note']}"
    return out


def fit_spill_distance(observations, *, distance_column: str = "distance_km", received_column: str = "received",
                       confidence: float = 0.95, min_scale_km: float = 0.05, max_scale_km: float = 20.0) -> dict:
    """Fit the spill distance L (km) that best explains reception observations.

    The threshold view of the reception model (:mod:`subdivide.analysis.reception`):
    P(received | d) = 1 / (1 + exp((d − L) / s)) for a point at distance d (km) beyond the
    boundary of the sub-area sent to, fitted by maximum likelihood on the between-area
    pairs only (own-area pairs, flagged ``own_area`` or at distance 0, are dropped). The
    interval is the profile-likelihood one. With cleanly separated data s sits at
    ``min_scale_km`` (50 m: the positional error of the inputs).

    Raises UserError when L cannot be identified (no received pair, or all received).
    Returns :func:`fit_summary`'s dict (L_km, interval, scale_km, n, misclassified, …).
    """
    from subdivide.analysis.reception import ReceptionModel

    df = pd.DataFrame({"distance_km": pd.to_numeric(pd.Series(observations[distance_column]), errors="coerce"),
                       "received": pd.Series(observations[received_column]).astype(bool).to_numpy()})
    if "own_area" in getattr(observations, "columns", ()):
        df["own_area"] = pd.Series(observations["own_area"]).to_numpy()
    model = ReceptionModel(confidence=confidence, min_scale_km=min_scale_km, max_scale_km=max_scale_km).fit(df)
    out = fit_summary(model)
    if not out["identified"]:
        raise UserError(f"{out['n']} between-area observations with {out['n_received']} received: {out['error']}",
                        where="observations", fix="give observations with both received and not received")
    return out


def simulate_observations(L_km: float, *, n: int = 300, scale_km: float = 0.3, max_km: float = 8.0,
                          seed: int = 0, technology_shift_km: dict | None = None) -> pd.DataFrame:
    """Seeded synthetic observations from the logistic reception model (for tests).

    technology_shift_km: {technology: km added to L}; rows are spread evenly over them
    (a ``technology`` column is added)."""
    rng = np.random.default_rng(seed)
    d = rng.uniform(0.0, max_km, n)
    shift = np.zeros(n)
    tech = None
    if technology_shift_km:
        names = list(technology_shift_km)
        tech = np.array(names, dtype=object)[np.arange(n) % len(names)]
        shift = np.array([technology_shift_km[t] for t in tech], float)
    p = 1.0 / (1.0 + np.exp((d - L_km - shift) / scale_km))
    out = pd.DataFrame({"distance_km": d, "received": rng.uniform(size=n) < p})
    if tech is not None:
        out["technology"] = tech
    return out


def expected_exposure(plan, model, *, intervals: bool = True, progress: Progress = silent) -> pd.DataFrame:
    """Expected population of every other sub-area B that receives A's messages under a
    fitted reception model: Σ over B's town-blocks of population × P(d), d the distance
    from the block (a point on its surface) to A, with the profile-likelihood interval
    from the parameter uncertainty. The average technology and city are used.

    Returns one row per ordered pair (A, B), A ≠ B: from_subarea, from_name, to_subarea,
    to_name, to_population, expected_population, expected_population_lo/_hi,
    expected_share; ``figure`` = "expected (fitted reception model)".
    """
    dis = plan.dissolved
    A = spill_territory(dis.geometry.values)
    sub_ids = dis["subarea"].to_numpy()
    names = dis["name"].to_numpy()
    blocks = plan.blocks
    pts = shapely.point_on_surface(np.asarray(blocks.geometry.values, dtype=object))
    bsub = blocks["subarea"].to_numpy()
    bpop = blocks["population"].to_numpy(dtype=float)
    k = len(sub_ids)
    rows = []
    for i in range(k):
        progress("spill: expected population", i, k)
        d = shapely.distance(A[i], pts) / 1e3
        for j in range(k):
            if i == j:
                continue
            m = bsub == sub_ids[j]
            if intervals:
                est, lo, hi = model.expected_total(d[m], bpop[m])
            else:
                est, lo, hi = float(np.sum(bpop[m] * model.predict_proba(d[m]))), None, None
            tot = float(bpop[m].sum())
            rows.append({"from_subarea": sub_ids[i], "from_name": names[i], "to_subarea": sub_ids[j],
                         "to_name": names[j], "to_population": tot, "expected_population": est,
                         "expected_population_lo": lo, "expected_population_hi": hi,
                         "expected_share": est / tot if tot > 0 else 0.0,
                         "figure": "expected (fitted reception model)"})
    progress("spill: expected population", k, k)
    cols = ["from_subarea", "from_name", "to_subarea", "to_name", "to_population", "expected_population",
            "expected_population_lo", "expected_population_hi", "expected_share", "figure"]
    return pd.DataFrame(rows, columns=cols)


def add_reception_probability(points: pd.DataFrame, model, *, intervals: bool = True) -> pd.DataFrame:
    """office_check's table with ``p_receive`` (and its interval) from a reception model,
    next to the threshold columns: P for a point outside the area, 1 for a point inside."""
    out = points.copy()
    d = out["distance_km"].to_numpy(float)
    inside = out["inside"].to_numpy(bool)
    p = np.where(inside, 1.0, model.predict_proba(d))
    lo, hi = p.copy(), p.copy()
    if intervals:
        for r in np.flatnonzero(~inside):
            _, lo[r], hi[r] = model.expected_total(d[r:r + 1], [1.0])
    out["p_receive"] = p
    out["p_receive_lo"] = lo
    out["p_receive_hi"] = hi
    return out


# ====================================================================== the trial
#: quality of the derived approximate 旧市町村 polygons per trial city (data SOURCES.md):
#: a label, the typical error of an office-to-polygon distance (km), and why
TRIAL_POLYGON_QUALITY = {
    "03205": ("fair", 1.5, "areas within a few % of e-Stat; boundaries off by up to 1–2 km where seeds are sparse"),
    "23211": ("good", 0.2, "dense seeds; both spill pairs within 0.25 km of the trial's figures"),
    "35204": ("poor", 3.0, "whole 大字 seeds, 川上 from 2 seeds; spill pairs off by 1.7–2.9 km"),
}


def trial_observations() -> pd.DataFrame:
    """The 2016–17 trial as observations (DOMAIN.md §2): every (sending area, office)
    pair within each city, received yes/no. The report lists only the spill pairs; every
    other pair between different areas is a 'no' (花巻: each message reached only its own
    area). Own-area pairs are 'yes' (the office sits inside the area) with own_area=True.
    The trial did not record which handset (3G or LTE) received, so there is no
    technology column. ``polygon_quality`` / ``position_error_km`` describe the
    approximate polygons the distances are measured on (:data:`TRIAL_POLYGON_QUALITY`)."""
    path = Path(__file__).resolve().parents[1] / "assets" / "trial_observations.csv"
    df = pd.read_csv(path, dtype=str, encoding="utf-8-sig", keep_default_na=False)
    df["received"] = _parse_bool(df["received"], where="trial_observations.csv")
    df["own_area"] = _parse_bool(df["own_area"], where="trial_observations.csv")
    df["trial_km"] = pd.to_numeric(df["trial_km"].replace("", np.nan))
    q = df["city_code"].map(TRIAL_POLYGON_QUALITY)
    df["polygon_quality"] = [v[0] for v in q]
    df["position_error_km"] = [v[1] for v in q]
    return df


def trial_office_check(polygons, offices, *, cities=("23211", "35204", "03205"),
                       area_name: str = "old_muni_name", point_name: str = "office_name",
                       observations: pd.DataFrame | None = None) -> tuple[pd.DataFrame, dict]:
    """Distances from the trial offices to the (approximate) 旧市町村 polygons for every
    trial pair, and the reception model fitted per city on the pairs between different
    areas (the same pairs as `subdivide calibrate` and `subdivide spill --observations`).

    polygons: GeoDataFrame with ``city_code`` and ``area_name`` columns (e.g.
    ../shared/data/derived_approx_old_municipalities/approx_old_municipalities_voronoi.geojson).
    offices: points (path or GeoDataFrame) with ``point_name``.
    Returns (observations with distance_km, {city_code: :func:`fit_summary` dict; with
    ``error`` when L cannot be identified}).
    """
    from subdivide.analysis.reception import ReceptionModel

    obs = trial_observations() if observations is None else observations
    have = set(polygons["city_code"].astype(str)) & set(obs["city_code"].astype(str))
    cities = [c for c in cities if c in have]
    if not cities:
        return pd.DataFrame(), {}
    res = observation_pairs(polygons, offices, obs, area_name=area_name, point_name=point_name, cities=cities)
    fits = {c: fit_summary(ReceptionModel().fit(res[res["city_code"] == c])) for c in cities}
    return res, fits


# ====================================================================== summary text
def format_summary(report: SpillReport) -> str:
    """A readable per-sub-area summary (town-block population figures)."""
    sa = report.subareas[report.subareas["population_source"] == SOURCE_BLOCKS]
    dist = report.parameters["distances_km"]
    p = report.parameters["target_share"]
    Ls = "/".join(f"{L:g}" for L in dist)
    lines = [f"spill report: {report.parameters['n_subareas']} sub-areas, L = {Ls} km, "
             f"target unreached share {p:.0%}",
             f"{'sub-area':<14} {'km²':>7}  {'circle % (' + Ls + ')':>22}  {'exact core %':>18}  "
             f"{'core pop %':>18}  flag"]
    for (sub, name), g in sa.groupby(["subarea", "name"], sort=True):
        g = g.sort_values("distance_km")
        circ = "/".join(f"{v:.0%}" for v in g["circle_unreached_share"]).replace("%", "")
        core = "/".join(f"{v:.0%}" for v in g["core_share"]).replace("%", "")
        cpop = "/".join("–" if pd.isna(v) else f"{v:.0%}" for v in g["core_population_share"]).replace("%", "")
        below = g[g["below_target"]]
        flag = ""
        if len(below):
            worst = below.iloc[-1]
            flag = f"below {p:.0%} from {below['distance_km'].min():g} km; " + (
                advice_text(worst.to_dict(), p) if "advice" in below.columns else
                f"at {worst['distance_km']:g} km needs {worst['circle_min_area_km2']:.0f} km² (circle)")
        lines.append(f"{sub:>2} {str(name)[:11]:<11} {g['area_km2'].iloc[0]:>7.1f}  {circ:>22}  {core:>18}  "
                     f"{cpop:>18}  {flag}")
    ex = report.exposure[report.exposure["population_source"] == SOURCE_BLOCKS]
    if len(ex):
        L0 = dist[len(dist) // 2]
        e = ex[ex["distance_km"] == L0].sort_values("population", ascending=False).head(5)
        lines.append(f"largest exposures at L = {L0:g} km (people of B within L of A):")
        for r in e.itertuples():
            lines.append(f"  {r.from_name} → {r.to_name}: {r.area_km2:.1f} km², {r.population:,.0f} people")
    if report.fit is not None and report.fit.get("L_km") is not None:
        lo, hi = report.fit["interval"]
        lo_s = "−∞" if lo is None else f"{lo:.2f}"
        hi_s = "+∞" if hi is None else f"{hi:.2f}"
        lines.append(f"fitted reception model: P(receive) = 0.5 at L = {report.fit['L_km']:.2f} km "
                     f"({report.fit['confidence']:.0%} interval {lo_s}–{hi_s} km), softness s = "
                     f"{report.fit['scale_km']:.2f} km; {report.fit['n']} between-area pairs, "
                     f"{report.fit['n_received']} received")
    elif report.fit is not None and "error" in report.fit:
        up = report.fit["interval"][1]
        lines.append(f"fitted reception model: {report.fit['error']} ({report.fit['n']} between-area pairs, "
                     f"{report.fit['n_received']} received" + ("" if up is None else f"; L < {up:.2f} km") + ")")
    return "\n".join(lines)


# ====================================================================== JSON helpers
def _jsonable(v):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return f if math.isfinite(f) else None
    if v is None or isinstance(v, (str, int)):
        return v
    if v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    return str(v)


def _records(df: pd.DataFrame) -> list[dict]:
    cols = list(df.columns)
    return [{c: _jsonable(v) for c, v in zip(cols, row)} for row in df.itertuples(index=False, name=None)]
