#!/usr/bin/env python
"""Build the bundled 花巻市 (03205) sample in ``data/hanamaki_03205/``.

    python data/build_sample.py [--force] [--shared DIR] [--out DIR] [--cell M] [--simplify M]

THE GEOMETRY IS APPROXIMATE (推定形状, 公式の境界ではない): no public e-Stat town-block
polygons for 03205 could be obtained, so every polygon is derived from the e-Stat 2015
representative points (X_CODE / Y_CODE) and official areas (AREA) of the 479 records,
inside the coarse N03-2021 outline. The attributes are the real e-Stat 2015 values.

Method (JGD2011 plane-rectangular zone X, EPSG:6678, metres; raster of ``--cell`` m):

1. 旧市町村 regions: a multiplicatively weighted Voronoi diagram of 1,823 labelled seeds
   (the 479 e-Stat points + 1,344 ISJ address points) with one scale per 旧市町村,
   fitted so each region gets the 旧市町村's official area (scaled to the outline);
   islands holding no e-Stat point of their own 旧市町村 go to the neighbours.
2. Town blocks: a multiplicatively weighted Voronoi diagram of the 479 e-Stat points —
   each raster cell goes to argmin_i |x − p_i| / s_i, the distance doubled
   (``GROUP_PENALTY``) where the cell lies outside the record's 旧市町村 region — with the
   scales s_i fitted so every cell's area matches the record's official AREA scaled to
   the outline's area (targets below one raster cell are raised to one cell). Unlike a
   power diagram (tried first: 200 of 479 points fell outside their own cell, up to
   2.7 km away), a point always lies in its own cell (its distance is 0), and small
   town blocks next to big rural ones get round cells instead of being swallowed.
   The scales are found by a damped Newton method whose Hessian is the boundary
   integral of 1/|∇f| estimated from the raster (cf. Kitagawa, Mérigot & Thibert 2019
   for the power-diagram analogue), first on a grid twice as coarse, then refined.
   Only the sites that can win somewhere in a 32×32-cell tile are evaluated there
   (exact bound), so one assignment of 1.45 M cells takes ~0.1 s.
3. Clean-up on the raster: the cells of a record not connected to its own cell (the
   cell holding its point, else its largest piece) and 旧市町村 islands holding none of
   their own points are handed to 4-neighbours, preferring the same 旧市町村.
4. Polygons: labels extended 3 cells beyond the outline (nearest labelled cell),
   polygonised (rasterio.features.shapes), segmentized and snapped to a 1 mm grid so
   shared edges carry identical vertices, clipped to the outline on that grid, then
   smoothed with shapely.coverage_simplify (shared edges stay shared, the outline is
   kept as is). The build fails unless the result is a valid coverage whose union is
   the outline.

The run is deterministic: same inputs and library versions → byte-identical files.
The .dbf header date and the GeoPackage timestamps are pinned to the census reference
date ``FIXED_DATE`` (layer option DBF_DATE_LAST_UPDATE, config option OGR_CURRENT_DATE)
and the GeoPackage is VACUUMed.
"""
from __future__ import annotations

import argparse
import hashlib
import math
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import rasterio.features
import scipy.sparse as sp
import scipy.sparse.csgraph as csgraph
import scipy.sparse.linalg as spl
import shapely
from affine import Affine
from pyproj import Transformer
from scipy import ndimage

from subdivide.core.errors import UserError

MUNI_CODE = "03205"
PLANE_EPSG = 6678            # JGD2011 / Japan Plane Rectangular CS X (岩手)
SHP_EPSG = 4612              # JGD2000 geographic, as the real e-Stat 2015 files
LONLAT_EPSG = 6668           # JGD2011 geographic (N03, P34 sources)
FIXED_DATE = "2015-10-01"    # census reference date, used for every embedded timestamp
OUT_NAME = "hanamaki_03205"
#: raster cell (m) and coverage_simplify tolerance (m); 20 m removes the 25 m steps
DEFAULT_CELL_M = 25.0
DEFAULT_SIMPLIFY_M = 20.0
#: precision grid (m) for the clipped polygons
GRID_SIZE_M = 0.001
#: distance factor for a town block reaching into another 旧市町村's region
GROUP_PENALTY = 2.0
SHP_NAME = "h27ka03205"

#: the 30 e-Stat 2015 legacy columns, in file order
ESTAT_COLUMNS = [
    "AREA", "PERIMETER", "H27KA03_", "H27KA03_ID", "KEN", "CITY", "KEN_NAME", "SITYO_NAME",
    "GST_NAME", "CSS_NAME", "HCODE", "KIHON1", "DUMMY1", "KIHON2", "KEYCODE1", "KEYCODE2",
    "AREA_MAX_F", "KIGO_D", "N_KEN", "N_CITY", "KIGO_E", "KIGO_I", "MOJI", "KBSUM", "JINKO",
    "SETAI", "X_CODE", "Y_CODE", "KCODE1", "KEY_CODE",
]
FLOAT_COLUMNS = ["AREA", "PERIMETER", "X_CODE", "Y_CODE"]
INT_COLUMNS = ["H27KA03_", "H27KA03_ID", "HCODE", "KBSUM", "JINKO", "SETAI"]
#: trial sub-area label → display order (the trial's order: 花巻, 大迫, 石鳥谷, 東和)
OLD_MUNI_ORDER = ["花巻", "大迫", "石鳥谷", "東和"]

APPROX_NOTE = ("APPROXIMATE geometry derived from e-Stat 2015 points and areas, NOT official "
               "boundaries / 推定形状（公式の境界ではない）")


# --------------------------------------------------------------------------- inputs

def default_shared_dir() -> Path:
    """../shared/data next to the checkout (data/ → repo → parent)."""
    return Path(__file__).resolve().parents[2] / "shared" / "data"


def read_estat_records(shared: Path) -> pd.DataFrame:
    """The 479 e-Stat 2015 records, every column as text exactly as in the CSV."""
    path = shared / "hanamaki_03205" / "estat2015_town_blocks_hanamaki.csv"
    df = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8")
    missing = [c for c in ESTAT_COLUMNS + ["trial_subarea", "old_muni_code_2000"] if c not in df.columns]
    if missing:
        raise UserError(f"missing columns {missing}", where=str(path),
                        fix="use the estat2015_town_blocks_hanamaki.csv described in its SOURCES.md")
    return df


def read_outline(shared: Path) -> gpd.GeoDataFrame:
    """N03-2021 outline of 花巻市 (1 row, lon/lat, labelled EPSG:6668)."""
    path = shared / "municipal_outlines_n03_2021" / "n03_2021_s0010_hanamaki_toyota_hagi.geojson"
    gdf = pyogrio.read_dataframe(path)
    gdf = gdf[gdf["N03_007"] == MUNI_CODE].reset_index(drop=True)
    if len(gdf) != 1:
        raise UserError(f"expected one feature with N03_007={MUNI_CODE}, got {len(gdf)}", where=str(path),
                        fix="use the N03-2021 outline file described in its SOURCES.md")
    # CRS84 (the file) and JGD2011 agree to well under a metre: relabel, do not transform.
    gdf = gdf.set_crs(LONLAT_EPSG, allow_override=True)
    gdf["geometry"] = shapely.make_valid(gdf.geometry.values)
    return gdf[["N03_001", "N03_004", "N03_007", "geometry"]]


def read_offices(shared: Path) -> gpd.GeoDataFrame:
    """P34-2014 offices located in 花巻市 (lon/lat, EPSG:6668), sorted by name."""
    path = shared / "offices" / "p34_offices_hanamaki_toyota_hagi.csv"
    df = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    df = df[df["city"] == "花巻市"].copy()
    df["latitude"] = df["latitude"].astype(float)
    df["longitude"] = df["longitude"].astype(float)
    df["src_type"] = df["src_type"].astype("int32")
    df["named_in_trial"] = df["named_in_trial"].str.lower().eq("true")
    df = df.sort_values(["src_type", "office_name"], kind="stable").reset_index(drop=True)
    geom = gpd.points_from_xy(df["longitude"], df["latitude"], crs=LONLAT_EPSG)
    return gpd.GeoDataFrame(df, geometry=geom, crs=LONLAT_EPSG)


def project_lonlat(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """(lon, lat) in degrees → (easting, northing) metres in EPSG:6678.

    JGD2000 points are treated as JGD2011: the shift in 花巻 is a few metres, far below
    the error of the approximation (and pyproj has no grid for it offline either)."""
    tr = Transformer.from_crs(LONLAT_EPSG, PLANE_EPSG, always_xy=True)
    x, y = tr.transform(np.asarray(lon, float), np.asarray(lat, float))
    return np.column_stack([x, y])


# --------------------------------------------------------------------------- raster

class Grid:
    """A north-up raster of square cells (``cell`` metres) aligned to multiples of ``cell``."""

    def __init__(self, bounds, cell: float, pad_cells: int):
        minx, miny, maxx, maxy = bounds
        self.cell = float(cell)
        self.x0 = math.floor(minx / cell) * cell - pad_cells * cell
        self.y1 = math.ceil(maxy / cell) * cell + pad_cells * cell
        self.nx = int(math.ceil((maxx - self.x0) / cell)) + pad_cells
        self.ny = int(math.ceil((self.y1 - miny) / cell)) + pad_cells
        self.transform = Affine(self.cell, 0.0, self.x0, 0.0, -self.cell, self.y1)

    @property
    def shape(self):
        return (self.ny, self.nx)

    def rasterize(self, geom) -> np.ndarray:
        """Boolean mask of the cells whose centre lies in ``geom``."""
        return rasterio.features.rasterize([geom], out_shape=self.shape, transform=self.transform,
                                           fill=0, default_value=1, dtype="uint8").astype(bool)

    def centres(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return np.column_stack([self.x0 + (cols + 0.5) * self.cell, self.y1 - (rows + 0.5) * self.cell])

    def cell_of(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cols = np.floor((xy[:, 0] - self.x0) / self.cell).astype(np.int64)
        rows = np.floor((self.y1 - xy[:, 1]) / self.cell).astype(np.int64)
        return rows, cols


class SiteTiles:
    """Inside cells grouped in square tiles, with per-tile distance bounds to every site,
    so an assignment only evaluates the sites that can win somewhere in the tile."""

    def __init__(self, grid: Grid, inside: np.ndarray, sites: np.ndarray, tile: int = 32,
                 cell_group: np.ndarray | None = None, site_group: np.ndarray | None = None,
                 penalty: float = 1.0):
        rows, cols = np.nonzero(inside)
        key = (rows // tile) * (grid.nx // tile + 1) + cols // tile
        order = np.argsort(key, kind="stable")
        self.rows, self.cols, key = rows[order], cols[order], key[order]
        self.xy = grid.centres(self.rows, self.cols)
        tiles, self.start = np.unique(key, return_index=True)
        self.stop = np.r_[self.start[1:], len(key)]
        tr, tc = np.divmod(tiles, grid.nx // tile + 1)
        x0 = grid.x0 + tc * tile * grid.cell
        x1 = x0 + tile * grid.cell
        y1 = grid.y1 - tr * tile * grid.cell
        y0 = y1 - tile * grid.cell
        sx, sy = sites[:, 0], sites[:, 1]
        dx_min = np.maximum(0.0, np.maximum(x0[:, None] - sx, sx - x1[:, None]))
        dy_min = np.maximum(0.0, np.maximum(y0[:, None] - sy, sy - y1[:, None]))
        dx_max = np.maximum(np.abs(x0[:, None] - sx), np.abs(sx - x1[:, None]))
        dy_max = np.maximum(np.abs(y0[:, None] - sy), np.abs(sy - y1[:, None]))
        self.dmin2 = dx_min ** 2 + dy_min ** 2      # (tiles, sites) m²
        self.dmax2 = dx_max ** 2 + dy_max ** 2
        self.sites = sites
        self.grid = grid
        # squared distance factor where a cell's 旧市町村 differs from the site's
        self.penalty2 = float(penalty) ** 2
        if cell_group is None or site_group is None:
            self.cell_group = np.zeros(len(self.rows), dtype=np.int64)
            self.site_group = np.zeros(len(sites), dtype=np.int64)
        else:
            self.cell_group = cell_group[self.rows, self.cols]
            self.site_group = np.asarray(site_group)
        self.group_image = cell_group if self.penalty2 != 1.0 else None

    def assign_mw(self, log_scale: np.ndarray) -> np.ndarray:
        """Multiplicatively weighted Voronoi: the site minimising |x − p_i| / s_i per cell
        (s_i = exp(log_scale_i)), the distance multiplied by ``penalty`` where the cell's
        旧市町村 differs from the site's. A site is evaluated in a tile only if its least
        possible value there does not exceed the tile's bound min_j(penalty · max
        distance_j / s_j), so the result equals the full argmin (lowest index on ties).
        A site always wins its own point (distance 0)."""
        inv = np.array([math.exp(-2.0 * v) for v in log_scale])   # libm, platform-stable
        bound = (self.dmax2 * inv).min(axis=1) * self.penalty2
        cand = self.dmin2 * inv <= bound[:, None]
        lab = np.empty(len(self.xy), dtype=np.int64)
        for k in range(len(self.start)):
            idx = np.flatnonzero(cand[k])
            a, b = self.start[k], self.stop[k]
            x = self.xy[a:b]
            p = self.sites[idx]
            d2 = ((x[:, 0:1] - p[:, 0]) ** 2 + (x[:, 1:2] - p[:, 1]) ** 2) * inv[idx]
            if self.penalty2 != 1.0:
                foreign = self.cell_group[a:b, None] != self.site_group[idx][None, :]
                d2 = np.where(foreign, d2 * self.penalty2, d2)
            lab[a:b] = idx[d2.argmin(axis=1)]
        return lab


def mw_hessian(img: np.ndarray, grid: Grid, sites: np.ndarray, fallback: np.ndarray,
               cell_group: np.ndarray | None = None) -> sp.csc_matrix:
    """dA_i/d(log s_j) of multiplicatively weighted Voronoi cells (m²).

    On the boundary of i and j, f = log|x − p_i| − log s_i − log|x − p_j| + log s_j = 0;
    raising log s_i by δ moves it outwards by δ / |∇f|, so the derivative is the boundary
    integral of 1 / |∇f|, estimated from 4-adjacent cell pairs (× cell × π/4, the mean
    length of a straight line per staircase step). Where the boundary runs along a
    旧市町村 border (``cell_group`` differs across it) the penalty jump pins it: such pairs
    count 1 %. Rows without neighbours get ``fallback`` (2 × target: the value for an
    isolated round cell)."""
    n = len(sites)
    ny, nx = img.shape
    flat = img.ravel()
    idx = np.arange(ny * nx).reshape(ny, nx)
    ia = np.concatenate([idx[:, :-1].ravel(), idx[:-1, :].ravel()])
    ib = np.concatenate([idx[:, 1:].ravel(), idx[1:, :].ravel()])
    a, b = flat[ia], flat[ib]
    keep = (a >= 0) & (b >= 0) & (a != b)
    ia, ib, a, b = ia[keep], ib[keep], a[keep], b[keep]
    ra, ca = np.divmod(ia, nx)
    rb, cb = np.divmod(ib, nx)
    mx = grid.x0 + ((ca + cb) / 2 + 0.5) * grid.cell
    my = grid.y1 - ((ra + rb) / 2 + 0.5) * grid.cell
    va = np.column_stack([mx - sites[a, 0], my - sites[a, 1]])
    vb = np.column_stack([mx - sites[b, 0], my - sites[b, 1]])
    da = np.maximum(np.hypot(va[:, 0], va[:, 1]), 1.0)
    db = np.maximum(np.hypot(vb[:, 0], vb[:, 1]), 1.0)
    g = va / da[:, None] ** 2 - vb / db[:, None] ** 2
    h = grid.cell * math.pi / 4 / np.maximum(np.hypot(g[:, 0], g[:, 1]), 1e-9)
    if cell_group is not None:
        cg = cell_group.ravel()
        h = np.where(cg[ia] != cg[ib], 0.01 * h, h)
    off = sp.coo_matrix((h, (a, b)), shape=(n, n)).tocsr()
    off = (off + off.T).tocsr()
    diag = np.asarray(off.sum(axis=1)).ravel()
    diag = np.where(diag > 0, diag, fallback) * (1.0 + 1e-6)
    return (sp.diags(diag) - off).tocsc()


def solve_weighted_voronoi(tiles: SiteTiles, targets: np.ndarray, *, membership=None, theta0=None,
                           max_iter: int = 40, log=print, what: str = "blocks"):
    """Scales θ (log s) of the multiplicatively weighted Voronoi diagram of ``tiles.sites``
    whose cells have the ``targets`` areas (m²). Returns (labels per tile cell, θ).

    ``membership`` (sites × parameters, sparse 0/1) ties several sites to one parameter:
    site i uses θ[parameter of i] and a parameter's area is that of all its sites (the
    旧市町村 regions: many seeds per town). Without it every site is its own parameter.
    Labels are parameter indices.

    Damped Newton on θ (Hessian Mᵀ·H·M from :func:`mw_hessian`), falling back to the
    diagonal step ½·log(target / area). A step is accepted only if no more parameters
    get empty cells and the L2 area error drops by (1 − α/8). Stops when every area is
    within one raster cell of its target, after ``max_iter`` steps, or when no step helps."""
    grid = tiles.grid
    n_sites = len(tiles.sites)
    member = sp.identity(n_sites, format="csr") if membership is None else sp.csr_matrix(membership)
    site_param = member.indices                  # one parameter per site
    n = member.shape[1]
    ca = grid.cell ** 2
    img = np.full(grid.shape, -1, dtype=np.int64)
    per_site_target = np.asarray(member @ targets).ravel()

    def evaluate(theta):
        site_lab = tiles.assign_mw(theta[site_param])
        areas = np.bincount(site_param[site_lab], minlength=n) * ca
        return site_lab, areas, targets - areas

    if theta0 is not None:
        theta = np.array(theta0, dtype=float)
    elif membership is None:
        theta = 0.5 * np.log(targets / math.pi)  # radius of the equal-area disc
    else:
        theta = np.zeros(n)
    site_lab, areas, err = evaluate(theta)
    it = 0
    for it in range(max_iter):
        if np.abs(err).max() <= ca * 1.01:
            break
        norm = float(np.linalg.norm(err))
        img[tiles.rows, tiles.cols] = site_lab
        h = mw_hessian(img, grid, tiles.sites, 2 * per_site_target, tiles.group_image)
        newton = spl.spsolve((member.T @ h @ member).tocsc(), err)
        diagonal = 0.5 * np.log(np.maximum(targets, ca) / np.maximum(areas, ca))
        accepted = None
        for step in (newton, diagonal):
            step = step - np.median(step)            # the common scale of s is free
            alpha = 1.0
            while alpha >= 1 / 256 and accepted is None:
                trial = theta + alpha * step
                t_lab, t_areas, t_err = evaluate(trial)
                if (t_areas == 0).sum() <= (areas == 0).sum() and \
                        np.linalg.norm(t_err) <= (1 - alpha / 8) * norm:
                    accepted = (trial, t_lab, t_areas, t_err)
                alpha /= 2
            if accepted is not None:
                break
        if accepted is None:
            break
        theta, site_lab, areas, err = accepted
    log(f"  {what} at {grid.cell:g} m: {it} Newton steps, max |area error| {np.abs(err).max() / ca:.1f} cells, "
        f"median {np.median(np.abs(err) / targets) * 100:.2f} %")
    return site_param[site_lab], theta


def paint(tiles: SiteTiles, labels: np.ndarray) -> np.ndarray:
    """Label raster (−1 outside) from labels per tile cell."""
    img = np.full(tiles.grid.shape, -1, dtype=np.int64)
    img[tiles.rows, tiles.cols] = labels
    return img


def area_targets(official: np.ndarray, total: float, cell_area: float) -> np.ndarray:
    """Official areas scaled to ``total`` (m²), each at least one raster cell."""
    t = np.maximum(official / official.sum() * total, cell_area)
    return t * (total / t.sum())


# --------------------------------------------------------------------------- clean-up

def components(img: np.ndarray) -> np.ndarray:
    """Connected-component id (4-connectivity, same label) per cell; −1 where img < 0."""
    ny, nx = img.shape
    idx = np.arange(ny * nx).reshape(ny, nx)
    ra = np.concatenate([idx[:, :-1].ravel(), idx[:-1, :].ravel()])
    rb = np.concatenate([idx[:, 1:].ravel(), idx[1:, :].ravel()])
    la, lb = img.ravel()[ra], img.ravel()[rb]
    keep = (la >= 0) & (la == lb)
    g = sp.coo_matrix((np.ones(keep.sum(), np.int8), (ra[keep], rb[keep])), shape=(ny * nx, ny * nx))
    _, comp = csgraph.connected_components(g, directed=False)
    comp = comp.reshape(ny, nx)
    return np.where(img >= 0, comp, -1)


def home_components(img: np.ndarray, comp: np.ndarray, site_rc, n: int) -> np.ndarray:
    """For each label: the component holding its site's cell if that cell carries the
    label, else its largest component (lowest id on ties)."""
    rows, cols = site_rc
    ny, nx = img.shape
    own = np.full(n, -1, dtype=np.int64)
    idx = np.flatnonzero((rows >= 0) & (rows < ny) & (cols >= 0) & (cols < nx))
    idx = idx[img[rows[idx], cols[idx]] == idx]
    own[idx] = comp[rows[idx], cols[idx]]
    # largest component per label
    m = img >= 0
    lab, cm = img[m], comp[m]
    pairs = pd.DataFrame({"lab": lab, "comp": cm}).value_counts().reset_index(name="size")
    pairs = pairs.sort_values(["lab", "size", "comp"], ascending=[True, False, True], kind="stable")
    largest = pairs.drop_duplicates("lab").set_index("lab")["comp"].reindex(range(n), fill_value=-1).to_numpy()
    return np.where(own >= 0, own, largest)


def refill(img: np.ndarray, holes: np.ndarray, group: np.ndarray, prev: np.ndarray) -> np.ndarray:
    """Give every hole cell the label of a 4-neighbour, growing inwards from the kept
    cells; prefer a neighbour of the same group as the cell's previous label, then the
    most frequent neighbour label, then the lowest label."""
    img = img.copy()
    img[holes] = -2
    ny, nx = img.shape
    while (img == -2).any():
        pad = np.pad(img, 1, constant_values=-1)
        nb = np.stack([pad[:-2, 1:-1], pad[2:, 1:-1], pad[1:-1, :-2], pad[1:-1, 2:]], axis=-1)
        r, c = np.nonzero(img == -2)
        cand = nb[r, c]                                   # (k, 4)
        valid = cand >= 0
        if not valid.any():
            raise RuntimeError("holes not reachable from any labelled cell")
        pg = group[np.maximum(prev[r, c], 0)][:, None]
        same = valid & (group[np.maximum(cand, 0)] == pg)
        count = (cand[:, :, None] == cand[:, None, :]).sum(axis=2)
        score = np.where(valid, same * 10 + count, -1) * 1_000_000 - np.where(valid, cand, 0)
        best = cand[np.arange(len(r)), score.argmax(axis=1)]
        take = valid.any(axis=1)
        img[r[take], c[take]] = best[take]
    return img


def clean_labels(img: np.ndarray, site_rc, group: np.ndarray, n: int, log=print) -> np.ndarray:
    """Make every record one connected piece holding its point where possible and drop
    旧市町村 islands that hold no record's point (cells handed to neighbours)."""
    for _ in range(5):
        comp = components(img)
        home = home_components(img, comp, site_rc, n)
        stray = (img >= 0) & (comp != home[np.maximum(img, 0)])
        gimg = np.where(img >= 0, group[np.maximum(img, 0)], -1)
        gcomp = components(gimg)
        rows, cols = site_rc
        idx = np.flatnonzero((rows >= 0) & (rows < img.shape[0]) & (cols >= 0) & (cols < img.shape[1]))
        idx = idx[gimg[rows[idx], cols[idx]] == group[idx]]
        gkeep = np.zeros(gcomp.max() + 2, bool)
        gkeep[gcomp[rows[idx], cols[idx]] + 1] = True
        gstray = (img >= 0) & ~gkeep[gcomp + 1]
        holes = stray | gstray
        if not holes.any():
            break
        log(f"  clean-up: {int(stray.sum())} stray record cells, {int(gstray.sum())} 旧市町村-island cells")
        img = refill(img, holes, group, img)
    return img


def extend_labels(img: np.ndarray, extent: np.ndarray) -> np.ndarray:
    """Labels for the cells of ``extent`` outside the labelled area: nearest labelled cell."""
    _, (ri, ci) = ndimage.distance_transform_edt(img < 0, return_indices=True)
    out = img[ri, ci]
    return np.where(extent | (img >= 0), out, -1)


# --------------------------------------------------------------------------- vector

def polygonise(img: np.ndarray, grid: Grid, n: int) -> np.ndarray:
    """One (Multi)Polygon per label 0..n−1 from the label raster (exact shared edges)."""
    shapes = rasterio.features.shapes(img.astype(np.int32), mask=img >= 0, transform=grid.transform,
                                      connectivity=4)
    geoms, labs = [], []
    for geom, value in shapes:
        geoms.append(shapely.geometry.shape(geom))
        labs.append(int(value))
    gdf = gpd.GeoDataFrame({"lab": labs}, geometry=geoms)
    dissolved = gdf.dissolve(by="lab", sort=True)
    out = dissolved.geometry.reindex(range(n))
    if out.isna().any():
        raise RuntimeError(f"labels without cells: {list(np.flatnonzero(out.isna()))[:10]}")
    return np.asarray(out.values)


def clip_coverage(geoms: np.ndarray, outline, cell: float, simplify_m: float) -> np.ndarray:
    """Clip the raster coverage to the outline and smooth its staircase edges.

    1. segmentize at the cell size and snap to 1 mm, so both sides of every shared edge
       carry the same vertices (a valid coverage in the GEOS sense);
    2. clip to the outline on the same 1 mm grid (neighbours get identical cut points);
    3. shapely.coverage_simplify (Visvalingam–Whyatt; tolerance = sqrt of the removed
       triangle's area, so ≥ cell/√2 removes single raster steps) keeps shared edges
       shared and leaves the outline untouched (simplify_boundary=False)."""
    geoms = shapely.set_precision(shapely.segmentize(geoms, cell), GRID_SIZE_M)
    clipped = shapely.intersection(geoms, outline, grid_size=GRID_SIZE_M)
    parts, index = shapely.get_parts(clipped, return_index=True)
    poly = shapely.get_type_id(parts) == 3
    out = shapely.multipolygons(parts[poly], indices=index[poly])
    if len(out) != len(geoms):
        raise RuntimeError("a town block vanished when clipped to the outline")
    single = shapely.get_num_geometries(out) == 1
    out[single] = shapely.get_geometry(out[single], 0)
    if simplify_m > 0:
        out = shapely.coverage_simplify(out, simplify_m, simplify_boundary=False)
    return out


def check_coverage(geoms: np.ndarray, outline) -> None:
    """Fail the build unless the polygons are valid, non-empty, form a valid coverage (no
    overlaps, matching shared edges) and their union is the outline (< 0.01 % apart)."""
    if shapely.is_empty(geoms).any() or not shapely.is_valid(geoms).all():
        raise RuntimeError("empty or invalid town-block polygons")
    if not shapely.coverage_is_valid(geoms):
        raise RuntimeError("town-block polygons do not form a valid coverage")
    union = shapely.union_all(geoms)
    gap = shapely.symmetric_difference(union, outline).area
    if gap > 1e-4 * outline.area:
        raise RuntimeError(f"union differs from the outline by {gap:.0f} m²")


# --------------------------------------------------------------------------- build

def read_group_seeds(shared: Path, recs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Seeds for the 旧市町村 regions: the e-Stat points plus the ISJ address points
    (Geolonia, CC BY 4.0), each with its trial sub-area label. Returns (xy m, label)."""
    path = shared / "hanamaki_03205" / "isj_address_points_hanamaki.geojson"
    isj = pyogrio.read_dataframe(path, columns=["trial_subarea"], read_geometry=True)
    lon = np.concatenate([recs["X_CODE"].astype(float).to_numpy(), shapely.get_x(isj.geometry.values)])
    lat = np.concatenate([recs["Y_CODE"].astype(float).to_numpy(), shapely.get_y(isj.geometry.values)])
    labels = np.concatenate([recs["trial_subarea"].to_numpy(dtype=object), isj["trial_subarea"].to_numpy(dtype=object)])
    return project_lonlat(lon, lat), labels


def in_grid(grid: Grid, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    return (rows >= 0) & (rows < grid.ny) & (cols >= 0) & (cols < grid.nx)


def clean_groups(gimg: np.ndarray, grid: Grid, sites: np.ndarray, site_group: np.ndarray) -> np.ndarray:
    """Force the cell of every e-Stat point to its 旧市町村; hand 旧市町村 islands that hold
    no e-Stat point of their own 旧市町村 to the neighbours."""
    rows, cols = grid.cell_of(sites)
    ok = in_grid(grid, rows, cols)
    ok[ok] = gimg[rows[ok], cols[ok]] >= 0
    gimg = gimg.copy()
    gimg[rows[ok], cols[ok]] = site_group[ok]
    comp = components(gimg)
    keep = np.zeros(comp.max() + 2, bool)
    keep[comp[rows[ok], cols[ok]] + 1] = True
    holes = (gimg >= 0) & ~keep[comp + 1]
    ident = np.arange(int(site_group.max()) + 1)
    return refill(gimg, holes, ident, gimg) if holes.any() else gimg


class Raster:
    """A grid, its inside mask (cell centres in the outline) and the area to fill (m²)."""

    def __init__(self, outline, cell: float):
        self.grid = Grid(outline.bounds, cell, pad_cells=4)
        self.inside = self.grid.rasterize(outline)
        self.cell_area = cell * cell
        self.total = float(self.inside.sum()) * self.cell_area


def build_blocks(shared: Path, cell: float, simplify_m: float, log=print):
    """Approximate town-block polygons (EPSG:6678) for the 479 records + inputs.

    Every fit runs first on a grid twice as coarse, then is refined on the final grid
    from the coarse scales (θ does not depend on the cell size)."""
    t0 = time.perf_counter()

    def tlog(msg):
        log(f"{msg}  [{time.perf_counter() - t0:.1f} s]")

    recs = read_estat_records(shared)
    outline_ll = read_outline(shared)
    outline = outline_ll.to_crs(PLANE_EPSG).geometry.iloc[0]
    sites = project_lonlat(recs["X_CODE"].astype(float), recs["Y_CODE"].astype(float))
    n = len(recs)
    names = sorted(recs["trial_subarea"].unique(), key=lambda s: (OLD_MUNI_ORDER + [s]).index(s))
    code = {s: i for i, s in enumerate(names)}
    group = recs["trial_subarea"].map(code).to_numpy()
    official = recs["AREA"].astype(float).to_numpy()
    group_official = np.bincount(group, weights=official, minlength=len(names))

    coarse, fine = Raster(outline, 2 * cell), Raster(outline, cell)
    tlog(f"  grid {fine.grid.nx}×{fine.grid.ny} at {cell:g} m, {int(fine.inside.sum())} cells inside "
         f"({fine.total / 1e6:.1f} km²; outline {outline.area / 1e6:.1f} km², e-Stat AREA {official.sum() / 1e6:.1f} km²)")

    # 1. 旧市町村 regions from all seeds (e-Stat + ISJ points), one scale per 旧市町村
    seeds, seed_names = read_group_seeds(shared, recs)
    seed_group = np.array([code[s] for s in seed_names])
    member = sp.csr_matrix((np.ones(len(seeds)), (np.arange(len(seeds)), seed_group)),
                           shape=(len(seeds), len(names)))
    theta_g = None
    gimgs = {}
    for r, iters in ((coarse, 30), (fine, 4)):
        tiles = SiteTiles(r.grid, r.inside, seeds)
        lab, theta_g = solve_weighted_voronoi(tiles, group_official / official.sum() * r.total,
                                              membership=member, theta0=theta_g, max_iter=iters,
                                              log=tlog, what="旧市町村 regions")
        gimgs[r.grid.cell] = clean_groups(paint(tiles, lab), r.grid, sites, group)

    # 2. town blocks: weighted Voronoi, distance × GROUP_PENALTY outside the own region
    theta = None
    for r, iters in ((coarse, 40), (fine, 8)):
        tiles = SiteTiles(r.grid, r.inside, sites, cell_group=gimgs[r.grid.cell], site_group=group,
                          penalty=GROUP_PENALTY)
        lab, theta = solve_weighted_voronoi(tiles, area_targets(official, r.total, r.cell_area),
                                            theta0=theta, max_iter=iters, log=tlog, what="town blocks")
    grid = fine.grid
    img = clean_labels(paint(tiles, lab), grid.cell_of(sites), group, n, log=tlog)

    # 3. polygons: extend past the outline, polygonise, smooth, clip
    img = extend_labels(img, grid.rasterize(outline.buffer(3 * cell)))
    geoms = polygonise(img, grid, n)
    geoms = clip_coverage(geoms, outline, cell, simplify_m)
    check_coverage(geoms, outline)
    tlog("  polygonised, clipped, simplified, checked")
    return recs, outline_ll, outline, sites, geoms


def estat_frame(recs: pd.DataFrame, geoms, crs) -> gpd.GeoDataFrame:
    """The 30 e-Stat columns (typed like the e-Stat .dbf) + OLD_MUNI + OLD_CODE."""
    out = pd.DataFrame(index=recs.index)
    for c in ESTAT_COLUMNS:
        if c in FLOAT_COLUMNS:
            out[c] = recs[c].astype(float)
        elif c in INT_COLUMNS:
            out[c] = recs[c].astype("int64")
        else:
            out[c] = recs[c].astype(object)
    out["OLD_MUNI"] = recs["trial_subarea"].astype(object)
    out["OLD_CODE"] = recs["old_muni_code_2000"].astype(object)
    return gpd.GeoDataFrame(out, geometry=gpd.GeoSeries(geoms, crs=crs), crs=crs)


def dissolve_old_munis(blocks: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The 4 旧市町村 (approximate) dissolved from the blocks, in trial order."""
    g = blocks[["OLD_MUNI", "OLD_CODE", "AREA", "JINKO", "SETAI", "geometry"]].copy()
    d = g.dissolve(by=["OLD_MUNI", "OLD_CODE"], aggfunc={"AREA": "sum", "JINKO": "sum", "SETAI": "sum"},
                   sort=True).reset_index()
    d["order"] = d["OLD_MUNI"].map({s: i for i, s in enumerate(OLD_MUNI_ORDER)})
    d = d.sort_values("order", kind="stable").drop(columns="order").reset_index(drop=True)
    d = d.rename(columns={"AREA": "estat_area_m2"})
    d["approx_area_m2"] = d.geometry.area.round(1)
    d["estat_area_m2"] = d["estat_area_m2"].round(1)
    d["APPROXIMATE"] = APPROX_NOTE
    return d[["OLD_MUNI", "OLD_CODE", "JINKO", "SETAI", "estat_area_m2", "approx_area_m2",
              "APPROXIMATE", "geometry"]]


def area_check(blocks: gpd.GeoDataFrame, sites: np.ndarray, outline_area: float) -> pd.DataFrame:
    """Per 旧市町村 and overall: approximate vs official area (km²; |%| and signed %), per-block error
    stats (median, P95 |%| error against the scaled target) and point-to-polygon distances."""
    area = blocks.geometry.area.to_numpy()
    official = blocks["AREA"].to_numpy()
    scale = outline_area / official.sum()
    block_err = np.abs(area / (official * scale) - 1) * 100
    pts = shapely.points(sites)
    dist = shapely.distance(pts, blocks.geometry.values)
    rows = []
    for name in OLD_MUNI_ORDER + ["合計 total"]:
        m = np.ones(len(blocks), bool) if name.startswith("合計") else (blocks["OLD_MUNI"] == name).to_numpy()
        a, o = area[m].sum(), official[m].sum()
        rows.append({
            "old_muni": name,
            "records": int(m.sum()),
            "official_km2": round(o / 1e6, 2),
            "approx_km2": round(a / 1e6, 2),
            "diff_pct": round(abs(a / o - 1) * 100, 2),
            "signed_diff_pct": round((a / o - 1) * 100, 2),
            "block_median_abs_err_pct": round(float(np.median(block_err[m])), 2),
            "block_p95_abs_err_pct": round(float(np.percentile(block_err[m], 95)), 2),
            "points_outside_own_polygon": int((dist[m] > 0).sum()),
            "max_point_distance_m": round(float(dist[m].max()), 1),
        })
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- writers

def write_shapefile(blocks_ll: gpd.GeoDataFrame, folder: Path) -> Path:
    """e-Stat 2015 legacy layout: CP932 .dbf, no .cpg, LDID 0, JGD2000 .prj."""
    path = folder / f"{SHP_NAME}.shp"
    pyogrio.write_dataframe(blocks_ll, path, driver="ESRI Shapefile", encoding="cp932",
                            layer_options={"RESIZE": "YES", "DBF_DATE_LAST_UPDATE": FIXED_DATE})
    cpg = path.with_suffix(".cpg")
    if cpg.exists():
        cpg.unlink()
    dbf = path.with_suffix(".dbf")
    with open(dbf, "r+b") as f:          # language driver id byte: 0 = not declared
        f.seek(29)
        f.write(b"\x00")
    return path


def write_geojson(gdf: gpd.GeoDataFrame, path: Path) -> Path:
    pyogrio.write_dataframe(gdf, path, driver="GeoJSON", layer_options={"COORDINATE_PRECISION": "7"})
    return path


def write_gpkg(layers: dict[str, gpd.GeoDataFrame], path: Path) -> Path:
    """GeoPackage with timestamps pinned (OGR_CURRENT_DATE) and the SQLite file vacuumed."""
    with pyogrio_config({"OGR_CURRENT_DATE": f"{FIXED_DATE}T00:00:00.000Z"}):
        for name, gdf in layers.items():
            pyogrio.write_dataframe(gdf, path, layer=name, driver="GPKG",
                                    layer_options={"SPATIAL_INDEX": "YES"})
    con = sqlite3.connect(path)
    try:
        con.execute("VACUUM")
    finally:
        con.close()
    return path


class pyogrio_config:
    """Temporarily set GDAL config options."""

    def __init__(self, options: dict[str, str]):
        self.options = options

    def __enter__(self):
        self.saved = {k: pyogrio.get_gdal_config_option(k) for k in self.options}
        pyogrio.set_gdal_config_options(self.options)

    def __exit__(self, *exc):
        pyogrio.set_gdal_config_options(self.saved)


def to_lonlat(gdf: gpd.GeoDataFrame, epsg: int) -> gpd.GeoDataFrame:
    """Project to JGD2011 lon/lat and label it ``epsg`` (4612 or 6668: same numbers here)."""
    out = gdf.to_crs(LONLAT_EPSG)
    return out.set_crs(epsg, allow_override=True) if epsg != LONLAT_EPSG else out


def markdown_table(df: pd.DataFrame) -> str:
    head = "| " + " | ".join(df.columns) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, sep, *body])


def update_readme(readme: Path, table_md: str) -> bool:
    """Replace the text between the area-table markers of data/README.md."""
    begin, end = "<!-- BEGIN area_check (generated by build_sample.py) -->", "<!-- END area_check -->"
    if not readme.exists():
        return False
    text = readme.read_text(encoding="utf-8")
    if begin not in text or end not in text:
        return False
    pre, rest = text.split(begin, 1)
    _, post = rest.split(end, 1)
    readme.write_text(f"{pre}{begin}\n{table_md}\n{end}{post}", encoding="utf-8")
    return True


def build(shared: Path, out: Path, *, cell: float = DEFAULT_CELL_M, simplify_m: float = DEFAULT_SIMPLIFY_M, force: bool = False,
          readme: Path | None = None, log=print) -> pd.DataFrame:
    """Build every output into ``out`` (a folder, replaced atomically). Returns area_check."""
    if out.exists() and any(out.iterdir()) and not force:
        raise UserError(f"output folder {out} already exists", where=str(out),
                        fix="pass --force to rebuild it, or choose another --out")
    for sub in ("hanamaki_03205", "municipal_outlines_n03_2021", "offices"):
        if not (shared / sub).is_dir():
            raise UserError(f"shared data folder {shared / sub} not found", where="--shared",
                            fix="point --shared at the shared/data folder (it holds hanamaki_03205/)")
    t0 = time.perf_counter()
    recs, outline_ll, outline, sites, geoms = build_blocks(shared, cell, simplify_m, log=log)
    blocks = estat_frame(recs, geoms, PLANE_EPSG)
    check = area_check(blocks, sites, outline.area)
    old = dissolve_old_munis(blocks)
    offices = read_offices(shared)

    blocks_shp = to_lonlat(blocks, SHP_EPSG)
    blocks_ll = to_lonlat(blocks, LONLAT_EPSG)
    old_ll = to_lonlat(old, LONLAT_EPSG)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    os.chmod(tmp, 0o755)
    try:
        write_shapefile(blocks_shp, tmp)
        write_gpkg({"townblocks_estat": blocks_ll, "offices": offices, "outline": outline_ll,
                    "old_municipalities_approx": old_ll}, tmp / "hanamaki_sample.gpkg")
        write_geojson(offices, tmp / "offices.geojson")
        write_geojson(outline_ll, tmp / "outline.geojson")
        write_geojson(old_ll, tmp / "old_municipalities_approx.geojson")
        (tmp / "area_check.csv").write_bytes(check.to_csv(index=False, lineterminator="\n").encode("utf-8"))
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    if readme is not None and update_readme(readme, markdown_table(check)):
        log(f"  updated the area table in {readme}")
    log(f"built {out} in {time.perf_counter() - t0:.1f} s")
    return check


def file_digests(folder: Path) -> dict[str, str]:
    """sha256 of every file in ``folder`` (for reproducibility checks)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def main(argv=None) -> int:
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=default_shared_dir(), help="the shared data folder")
    ap.add_argument("--out", type=Path, default=here / OUT_NAME, help="output folder (replaced)")
    ap.add_argument("--cell", type=float, default=DEFAULT_CELL_M,
                    help=f"raster cell size in metres (default {DEFAULT_CELL_M:g})")
    ap.add_argument("--simplify", type=float, default=DEFAULT_SIMPLIFY_M,
                    help=f"coverage_simplify tolerance in metres (default {DEFAULT_SIMPLIFY_M:g}; 0 keeps the staircase)")
    ap.add_argument("--readme", type=Path, default=None,
                    help="README whose area table to refresh (default: data/README.md when --out is the default)")
    ap.add_argument("--force", action="store_true", help="replace an existing output folder")
    args = ap.parse_args(argv)
    readme = args.readme
    if readme is None and args.out.resolve() == (here / OUT_NAME).resolve():
        readme = here / "README.md"
    try:
        check = build(args.shared, args.out, cell=args.cell, simplify_m=args.simplify, force=args.force,
                      readme=readme)
    except UserError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    print(markdown_table(check))
    return 0


if __name__ == "__main__":
    sys.exit(main())
