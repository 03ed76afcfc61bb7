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
    circle_unreached_share, core_distance_for_share, core_share, min_area_for_share, parallel_buffer,
    spill_territory,
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
def parse_distances(value) -> tuple[float, ...]:
    """'2,2.5,3' or a sequence of numbers → sorted unique distances in km (each > 0, ≤ 50)."""
    if isinstance(value, str):
        parts = [p.strip() for p in value.replace(";", ",").split(",") if p.strip()]
    else:
        parts = list(value)
    if not parts:
        raise UserError("no spill distance given", where="--distances",
                        fix="give distances in km, e.g. --distances 2,2.5,3")
    out = []
    for p in parts:
        try:
            v = float(p)
        except (TypeError, ValueError):
            raise UserError(f"spill distance {p!r} is not a number", where="--distances",
                            fix="give distances in km, e.g. --distances 2,2.5,3") from None
        if not math.isfinite(v) or v <= 0 or v > 50:
            raise UserError(f"spill distance {p!r} km is out of range (0, 50]", where="--distances",
                            fix="the trial measured 1.6–3.3 km; give e.g. --distances 2,2.5,3")
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
@dataclass
class SpillReport:
    """Every spill figure for one plan (DataFrames; see docs/spill.md for the columns)."""

    subareas: pd.DataFrame
    exposure: pd.DataFrame
    municipalities: pd.DataFrame
    totals: pd.DataFrame
    parameters: dict
    extra: dict = field(default_factory=dict)     # name → DataFrame (offices, observations)
    coverage: dict = field(default_factory=dict)  # name → DataFrame from coverage.footprint_report
    fit: dict | None = None

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
                 population_raster=None, quad_segs: int = 16, progress: Progress = silent) -> SpillReport:
    """The full spill report of a plan (DOMAIN.md §3 models 1–3, thresholds).

    plan: a :class:`~subdivide.model.plan.Plan` (uses ``plan.dissolved`` and its blocks).
    distances_km: spill distances L (km). target_share: policy share of unreached core.
    neighbours: outlines of neighbouring municipalities (path or GeoDataFrame) or None.
    water_distance_km: a longer L across water, used from and to island blocks
    (``island`` flag, or detached blocks near ``water`` polygons when given).
    population_raster: a GeoTIFF of people per cell (path) or a :class:`PopulationGrid`;
    its figures are added as rows with ``population_source = "raster"``.
    """
    dist = parse_distances(distances_km)
    p = check_share(target_share, where="target_share")
    if water_distance_km is not None:
        water_distance_km = float(water_distance_km)
        if not math.isfinite(water_distance_km) or water_distance_km <= 0:
            raise UserError(f"water distance {water_distance_km} km must be positive",
                            where="--water-distance", fix="give e.g. --water-distance 5")
    crs = plan.crs
    blocks = plan.blocks
    dis = plan.dissolved
    sub_ids = dis["subarea"].to_numpy()
    k, nL = len(dis), len(dist)
    A = spill_territory(dis.geometry.values)
    area = shapely.area(A)
    bgeom = np.asarray(blocks.geometry.values, dtype=object)
    bsub = blocks["subarea"].to_numpy()
    bpop = blocks["population"].to_numpy(dtype=float)
    pos_of = {s: i for i, s in enumerate(sub_ids)}
    bidx = np.array([pos_of[s] for s in bsub], dtype=np.int64) if len(bsub) else np.zeros(0, np.int64)
    sub_pop = np.bincount(bidx, weights=bpop, minlength=k)

    grid = None
    if population_raster is not None:
        grid = population_raster if isinstance(population_raster, PopulationGrid) \
            else read_population_raster(population_raster, crs)

    # islands: part of each sub-area that is island, for the water distance
    isl = None
    if water_distance_km is not None:
        mask = island_blocks(blocks, water, adjacency=plan.adjacency if water is not None else None)
        isl = mask if mask.any() else None

    progress("spill: cores", 0, nL)
    # ---------------- cores: zone z = l * k + i
    cores = np.empty(k * nL, dtype=object)
    reach = np.empty(k * nL, dtype=object)
    if isl is not None:
        Lw = water_distance_km * 1000.0
        main = _union_by(bgeom[~isl], bidx[~isl], k)
        isle = _union_by(bgeom[isl], bidx[isl], k)
        isle_core = shapely.buffer(isle, -Lw, quad_segs=quad_segs)
        # messages cross water to islands, and island parts send across water, up to Lw
        far = shapely.union(shapely.intersection(shapely.buffer(A, Lw, quad_segs=quad_segs),
                                                 shapely.union_all(bgeom[isl])),
                            shapely.buffer(isle, Lw, quad_segs=quad_segs))
    Lz = np.repeat(np.asarray(dist) * 1000.0, k)            # zone z = l * k + i
    inner = np.tile(main if isl is not None else A, nL)
    buf = parallel_buffer(np.concatenate([inner, np.tile(A, nL)]), np.concatenate([-Lz, Lz]),
                          quad_segs=quad_segs)
    cores[:], reach[:] = buf[:k * nL], buf[k * nL:]
    if isl is not None:
        cores[:] = shapely.union(cores, np.tile(isle_core, nL))
        reach[:] = shapely.union(reach, np.tile(far, nL))
    progress("spill: cores", nL, nL)
    zone_sub = np.tile(np.arange(k), nL)
    zone_L = np.repeat(np.arange(nL), k)

    # ---------------- core population (own blocks only)
    progress("spill: core population", 0, 1)
    zi, pj, _, pop = weighted_population(cores, bgeom, bpop, pair_filter=lambda z, b: bidx[b] == zone_sub[z])
    core_pop = np.bincount(zi, weights=pop, minlength=k * nL)
    progress("spill: core population", 1, 1)

    # ---------------- exposure A → B from blocks of other sub-areas
    progress("spill: exposure", 0, 1)
    zi, pj, ar, pop = weighted_population(reach, bgeom, bpop, pair_filter=lambda z, b: bidx[b] != zone_sub[z])
    key = zi * k + bidx[pj]
    exp_area = np.bincount(key, weights=ar, minlength=k * nL * k).reshape(k * nL, k)
    exp_pop = np.bincount(key, weights=pop, minlength=k * nL * k).reshape(k * nL, k)
    progress("spill: exposure", 1, 1)

    core_area = shapely.area(cores)
    rows = []
    for li, L in enumerate(dist):
        sl = slice(li * k, (li + 1) * k)
        rows.append(pd.DataFrame({
            "subarea": sub_ids, "name": dis["name"].to_numpy(), "code": dis["code"].to_numpy(),
            "distance_km": L, "area_km2": area / 1e6,
            "equal_circle_radius_km": np.sqrt(area / np.pi) / 1e3,
            "circle_unreached_share": circle_unreached_share(area, L * 1e3),
            "core_area_km2": core_area[sl] / 1e6,
            "core_share": np.where(area > 0, core_area[sl] / np.where(area > 0, area, 1), 0.0),
            "population": sub_pop, "core_population": core_pop[sl],
        }))
    sa = pd.concat(rows, ignore_index=True)
    sa["population_source"] = SOURCE_BLOCKS

    # ---------------- exposure rows (pairs with any overlap)
    ez, eb = np.nonzero(exp_area > 0)
    exposure = pd.DataFrame({
        "distance_km": np.asarray(dist)[zone_L[ez]],
        "from_subarea": sub_ids[zone_sub[ez]], "from_name": dis["name"].to_numpy()[zone_sub[ez]],
        "to_subarea": sub_ids[eb], "to_name": dis["name"].to_numpy()[eb],
        "area_km2": exp_area[ez, eb] / 1e6,
        "to_area_share": exp_area[ez, eb] / np.where(area[eb] > 0, area[eb], 1),
        "population": exp_pop[ez, eb],
        "to_population_share": np.where(sub_pop[eb] > 0, exp_pop[ez, eb] / np.where(sub_pop[eb] > 0, sub_pop[eb], 1), 0.0),
        "population_source": SOURCE_BLOCKS,
    })

    # ---------------- raster figures
    if grid is not None:
        progress("spill: raster population", 0, 1)
        gz, _, _, gpop = weighted_population(np.concatenate([A, cores]), grid.cells, grid.population)
        tot = np.bincount(gz, weights=gpop, minlength=k + k * nL)
        r_sub, r_core = tot[:k], tot[k:]
        ra = sa[sa["population_source"] == SOURCE_BLOCKS].copy()
        ra["population"] = np.tile(r_sub, nL)
        ra["core_population"] = r_core
        ra["population_source"] = SOURCE_RASTER
        sa = pd.concat([sa, ra], ignore_index=True)
        if len(ez):
            pieces = shapely.intersection(reach[ez], A[eb])
            pz, _, _, ppop = weighted_population(pieces, grid.cells, grid.population)
            rpop = np.bincount(pz, weights=ppop, minlength=len(ez))
            er = exposure.copy()
            er["population"] = rpop
            er["to_population_share"] = np.where(r_sub[eb] > 0, rpop / np.where(r_sub[eb] > 0, r_sub[eb], 1), 0.0)
            er["population_source"] = SOURCE_RASTER
            exposure = pd.concat([exposure, er], ignore_index=True)
        progress("spill: raster population", 1, 1)

    sa["core_population_share"] = np.where(sa["population"] > 0,
                                           sa["core_population"] / sa["population"].where(sa["population"] > 0, 1), np.nan)
    # ---------------- thresholds
    Lm_rows = sa["distance_km"].to_numpy() * 1e3
    tol = core_distance_for_share(A, p, quad_segs=quad_segs)
    tol_rows = np.tile(tol, len(sa) // k)
    sa["target_share"] = p
    sa["circle_min_area_km2"] = min_area_for_share(p, Lm_rows) / 1e6
    sa["circle_below_target"] = sa["circle_unreached_share"] < p
    sa["below_target"] = sa["core_share"] < p
    sa["tolerated_distance_km"] = tol_rows / 1e3
    sa["area_needed_same_shape_km2"] = np.where(
        tol_rows > 0, sa["area_km2"] * (Lm_rows / np.where(tol_rows > 0, tol_rows, 1)) ** 2, np.inf)
    sa["area_shortfall_km2"] = np.maximum(
        np.maximum(sa["circle_min_area_km2"], sa["area_needed_same_shape_km2"]) - sa["area_km2"], 0.0)
    sa["area_shortfall_km2"] = np.where(sa["below_target"] | sa["circle_below_target"], sa["area_shortfall_km2"], 0.0)
    sa["water_distance_km"] = water_distance_km if water_distance_km is not None else np.nan
    sa = sa.sort_values(["population_source", "distance_km", "subarea"],
                        key=lambda s: s.map({SOURCE_BLOCKS: 0, SOURCE_RASTER: 1}) if s.name == "population_source" else s,
                        kind="stable").reset_index(drop=True)
    exposure = exposure.sort_values(["population_source", "distance_km", "from_subarea", "to_subarea"],
                                    key=lambda s: s.map({SOURCE_BLOCKS: 0, SOURCE_RASTER: 1}) if s.name == "population_source" else s,
                                    kind="stable").reset_index(drop=True)

    # ---------------- neighbouring municipalities
    munis = _municipality_exposure(plan, reach, zone_sub, zone_L, dist, sub_ids, dis, neighbours, grid, progress)

    totals = _totals(sa, exposure, munis)
    params = {
        "muni_code": plan.muni_code, "crs": crs.to_string() if crs is not None else None,
        "distances_km": list(dist), "target_share": p,
        "water_distance_km": water_distance_km, "quad_segs": quad_segs,
        "n_subareas": int(k), "n_townblocks": int(len(blocks)),
        "population_sources": [SOURCE_BLOCKS] + ([f"{SOURCE_RASTER}:{grid.name}"] if grid is not None else []),
        "neighbours": None if neighbours is None else (str(neighbours) if isinstance(neighbours, (str, Path))
                                                       else "GeoDataFrame"),
        "models": {
            "circle": "(r - L)^2 / r^2, r = sqrt(S / pi); min area pi (L / (1 - sqrt p))^2",
            "core": "area(A.buffer(-L)) / area(A); population areal-weighted where a block is cut",
            "exposure": "B within L of A: B ∩ A.buffer(L); population areal-weighted",
            "area_needed_same_shape": "S (L / L_p)^2 with L_p the distance at which the shape keeps share p",
        },
    }
    return SpillReport(subareas=sa, exposure=exposure, municipalities=munis, totals=totals, parameters=params)


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
    to) and ``received`` (yes/no, true/false, 1/0). Extra columns are kept."""
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
    「●●地域」 form of the label (「花巻市(旧)」 matches 「花巻地域」).
    """
    from subdivide.model.plan import default_subarea_name

    obs = read_observations(observations)
    muni = getattr(areas, "muni_code", None)
    if muni and "city_code" in obs.columns:   # a multi-city file (e.g. the trial's): this plan's rows
        codes = obs["city_code"].astype(str).str.strip().str.zfill(5).str[:5]
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


def fit_spill_distance(observations, *, distance_column: str = "distance_km", received_column: str = "received",
                       confidence: float = 0.95, min_scale_km: float = 0.05, max_scale_km: float = 5.0,
                       step_km: float = 0.01) -> dict:
    """Fit the spill distance L (km) that best explains reception observations.

    Model: P(received | d) = 1 / (1 + exp((d − L) / s)) for a point at distance d (km)
    beyond the boundary of the sub-area sent to; L and the softness s are fitted by
    maximum likelihood on a grid (L in ``step_km`` steps, s log-spaced in
    [``min_scale_km``, ``max_scale_km``]). The interval is the profile-likelihood one:
    every L whose best log-likelihood lies within χ²₁(confidence)/2 of the maximum.
    With cleanly separated data (every "yes" closer than every "no") s sits at its lower
    bound and the interval is about the gap between the farthest yes and the nearest no;
    ``min_scale_km`` (default 50 m) stands for the positional error of the inputs.

    Returns dict(L_km, interval=(lo, hi), scale_km, n, n_received, misclassified,
    loglik, method).
    """
    from scipy.stats import chi2

    d = pd.to_numeric(pd.Series(observations[distance_column]), errors="coerce").to_numpy(float)
    y = pd.Series(observations[received_column]).astype(bool).to_numpy()
    ok = np.isfinite(d)
    d, y = d[ok], y[ok]
    if len(d) < 2 or y.all() or not y.any():
        raise UserError(f"{len(d)} observations with {int(y.sum())} received: L cannot be fitted",
                        where="observations", fix="give observations with both received and not received")
    cut = chi2.ppf(confidence, 1) / 2
    ss = np.geomspace(min_scale_km, max_scale_km, 80)

    def profile(Ls):
        z = (Ls[:, None, None] - d[None, None, :]) / ss[None, :, None]       # (nL, ns, n)
        # log σ(z) for received, log σ(−z) otherwise, computed stably
        ll = -np.logaddexp(0.0, np.where(y[None, None, :], -z, z)).sum(axis=2)  # (nL, ns)
        return ll

    # a coarse pass over [0, max d + 1 km], then a fine one around the interval
    coarse = np.arange(0.0, max(d.max(), 1.0) + 1.0 + 1e-9, 0.1)
    pc = profile(coarse).max(axis=1)
    near = coarse[pc >= pc.max() - cut - 1.0]
    Ls = np.arange(max(near.min() - 0.2, 0.0), near.max() + 0.2 + step_km / 2, step_km)
    ll = profile(Ls)
    prof = ll.max(axis=1)
    best = prof.max()
    at_best = np.flatnonzero(prof >= best - 1e-9)
    li = at_best[len(at_best) // 2]   # the middle of a flat optimum (separated data)
    L = float(Ls[li])
    s = float(ss[int(np.argmax(ll[li]))])
    inside = np.flatnonzero(prof >= best - cut)
    lo, hi = float(Ls[inside.min()]), float(Ls[inside.max()])
    mis = int(((d <= L) != y).sum())
    return {"L_km": round(L, 4), "interval": (round(lo, 4), round(hi, 4)), "confidence": confidence,
            "scale_km": round(s, 4), "n": int(len(d)), "n_received": int(y.sum()),
            "misclassified": mis, "loglik": float(best),
            "method": "logistic reception model P = 1/(1+exp((d-L)/s)), grid maximum likelihood, "
                      "profile-likelihood interval"}


def simulate_observations(L_km: float, *, n: int = 300, scale_km: float = 0.3, max_km: float = 8.0,
                          seed: int = 0) -> pd.DataFrame:
    """Seeded synthetic observations from the logistic reception model (for tests)."""
    rng = np.random.default_rng(seed)
    d = rng.uniform(0.0, max_km, n)
    p = 1.0 / (1.0 + np.exp((d - L_km) / scale_km))
    return pd.DataFrame({"distance_km": d, "received": rng.uniform(size=n) < p})


# ====================================================================== the trial
def trial_observations() -> pd.DataFrame:
    """The 2016–17 trial as observations (DOMAIN.md §2): every (sending area, office)
    pair within each city, received yes/no. The report lists only the spill pairs; every
    other pair between different areas is a 'no' (花巻: each message reached only its own
    area). Own-area pairs are 'yes' (the office sits inside the area) with own_area=True."""
    path = Path(__file__).resolve().parents[1] / "assets" / "trial_observations.csv"
    df = pd.read_csv(path, dtype=str, encoding="utf-8-sig", keep_default_na=False)
    df["received"] = _parse_bool(df["received"], where="trial_observations.csv")
    df["own_area"] = _parse_bool(df["own_area"], where="trial_observations.csv")
    df["trial_km"] = pd.to_numeric(df["trial_km"].replace("", np.nan))
    return df


def trial_office_check(polygons, offices, *, cities=("23211", "35204", "03205"),
                       area_name: str = "old_muni_name", point_name: str = "office_name",
                       observations: pd.DataFrame | None = None) -> tuple[pd.DataFrame, dict]:
    """Distances from the trial offices to the (approximate) 旧市町村 polygons for every
    trial pair, and L fitted per city on the pairs between different areas.

    polygons: GeoDataFrame with ``city_code`` and ``area_name`` columns (e.g.
    ../shared/data/derived_approx_old_municipalities/approx_old_municipalities_voronoi.geojson).
    offices: points (path or GeoDataFrame) with ``point_name``.
    Returns (observations with distance_km, {city_code: fit dict or error text}).
    """
    obs = trial_observations() if observations is None else observations
    pts = read_points(offices, name_column=point_name) if isinstance(offices, (str, Path)) else offices
    if "point" not in pts.columns:
        pts = pts.copy()
        pts.insert(0, "point", pts[point_name].astype(str))
    from subdivide.core.crs import crs_for_municipality

    out, fits = [], {}
    for city in cities:
        polys = polygons[polygons["city_code"].astype(str) == city]
        o = obs[obs["city_code"] == city]
        if not len(polys) or not len(o):
            continue
        o2 = observation_distances(polys, pts, o[["point", "subarea", "received"]], area_name=area_name,
                                   crs=crs_for_municipality(city))
        o = o.assign(distance_km=o2["distance_km"].to_numpy())
        out.append(o)
        off = o[~o["own_area"]]
        try:
            fits[city] = fit_spill_distance(off)
        except UserError as exc:
            fits[city] = {"error": exc.what}
    res = pd.concat(out, ignore_index=True) if out else pd.DataFrame()
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
            flag = (f"below {p:.0%} from {below['distance_km'].min():g} km; at {worst['distance_km']:g} km "
                    f"needs {worst['area_needed_same_shape_km2']:.0f} km² (this shape), "
                    f"{worst['circle_min_area_km2']:.0f} (circle)")
        lines.append(f"{sub:>2} {str(name)[:11]:<11} {g['area_km2'].iloc[0]:>7.1f}  {circ:>22}  {core:>18}  "
                     f"{cpop:>18}  {flag}")
    ex = report.exposure[report.exposure["population_source"] == SOURCE_BLOCKS]
    if len(ex):
        L0 = dist[len(dist) // 2]
        e = ex[ex["distance_km"] == L0].sort_values("population", ascending=False).head(5)
        lines.append(f"largest exposures at L = {L0:g} km (people of B within L of A):")
        for r in e.itertuples():
            lines.append(f"  {r.from_name} → {r.to_name}: {r.area_km2:.1f} km², {r.population:,.0f} people")
    if report.fit is not None and "L_km" in report.fit:
        lo, hi = report.fit["interval"]
        lines.append(f"fitted spill distance L = {report.fit['L_km']:.2f} km "
                     f"({report.fit['confidence']:.0%} interval {lo:.2f}–{hi:.2f} km, n = {report.fit['n']})")
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
