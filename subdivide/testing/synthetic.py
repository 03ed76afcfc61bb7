"""Seeded synthetic municipalities in e-Stat 小地域 layout, for tests and benchmarks.

No public source gives town-block polygons for the trial cities (DOMAIN.md §5), so the
test suite and the benchmarks run on municipalities generated here:

- :func:`synthetic_estat` — raw records exactly as an e-Stat file holds them (one of the
  three layouts, multi-part units split into KIGO_E rows, water rows, a placeholder for
  another municipality's enclave), geometry in lat/lon by default;
- :func:`synthetic_townblocks` — the same run through the reader's normalisation: the
  canonical town-block schema (``subdivide.core.schema``), projected and dissolved;
- :func:`write_estat_shapefile` — writes raw records as a CP932 Shapefile the way
  e-Stat does (no .cpg for 2015, LDID 0x13 for 2020) so tests exercise real decoding.

How a municipality is built (all vectorised, deterministic for a given seed):

1. an irregular star-shaped outline of 300–3000 km² (about 900 km² at 463 blocks,
   like 花巻市), the sea on its east side;
2. seed points, dense around the main core and the 旧市町村 centres, sparse in the
   mountains; one ``shapely.voronoi_polygons`` call, clipped to the outline, gives
   blocks of roughly 0.05–10 km² at a few hundred blocks;
3. 旧市町村 (OLD_MUNI / OLD_CODE): additively weighted nearest centre, so each is a
   contiguous group;
4. codes: blocks sorted by 旧市町村 then Morton order, cut into 町・字 runs (KIHON1) of
   丁目/地割 (KIHON2), KEY_CODE = prefecture + city + KIHON1 (+ KIHON2);
5. islands offshore (KIGO_I), multi-part units (KIGO_E; some detached, KIGO_D),
   two water rows (HCODE 8154), one other-municipality placeholder (KEY_CODE = the
   2-digit prefecture, S_AREA 000000);
6. hazard attributes from smooth fields (FLOOD_M near the river, SLOPE_DEG and
   LANDSLIDE in the mountains) and population from a density surface.

Geometry is synthetic: anything shipped from it must be labelled as such.
"""
from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from scipy.spatial import cKDTree

from subdivide.core.codes import normalize_municipality_code
from subdivide.core.crs import PREF_NAMES, crs_for_municipality
from subdivide.core.errors import UserError
from subdivide.io.estat import HCODE_TOWNBLOCK, HCODE_WATER, LAYOUTS, detect_layout, field_kind, field_names

#: 旧市町村 names used in order (the first is the main, pre-merger city)
OLD_MUNI_NAMES = (
    "旧本郷市", "旧東山町", "旧西沢町", "旧南川村", "旧北原村", "旧中野町", "旧高森村",
    "旧大谷町", "旧小松村", "旧新田町", "旧若葉村", "旧青葉町", "旧緑川村", "旧朝日町",
)
_KANJI_A = "松園本館上下東西南北大小川田沢山野宮原新高中若青緑朝日月星石岩森林竹梅桜杉"
_KANJI_B = "町田川沢野原山台森谷口平崎島浜岡坂井村里根木"
_FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")

#: fixed e-Stat centre for Iwate (花巻市 area) in zone X metres; other prefectures use
#: their zone origin
_CENTRES = {"03": (23_000.0, -67_000.0)}


def _fw(n) -> str:
    return str(int(n)).translate(_FULLWIDTH)


def _total_area_km2(n_blocks: int) -> float:
    """Municipal area in km²: ~900 km² at 463 blocks, denser (not larger) as n grows."""
    return float(np.clip(900.0 * (max(n_blocks, 1) / 463.0) ** 0.3, 300.0, 3000.0))


def _outline(rng: np.random.Generator, centre, area_m2: float) -> shapely.Polygon:
    """Irregular star-shaped polygon of the given area around ``centre``."""
    theta = np.linspace(0.0, 2 * np.pi, 361)[:-1]
    r = np.ones_like(theta)
    for k in range(2, 8):
        r += rng.uniform(0.0, 0.22 / k) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    r += rng.normal(0.0, 0.01, theta.size)
    unit = shapely.Polygon(np.c_[r * np.cos(theta), r * np.sin(theta)])
    scale = np.sqrt(area_m2 / unit.area)
    return shapely.Polygon(np.c_[centre[0] + scale * r * np.cos(theta), centre[1] + scale * r * np.sin(theta)])


def _sample_inside(rng, poly, n, centres, sigmas, weights):
    """``n`` points inside ``poly`` from a mixture of Gaussians around ``centres`` and a
    uniform background (share ``1 - sum(weights)``), by vectorised rejection."""
    minx, miny, maxx, maxy = poly.bounds
    shapely.prepare(poly)
    out = np.empty((0, 2))
    probs = np.r_[weights, 1.0 - np.sum(weights)]
    while len(out) < n:
        m = int((n - len(out)) * 1.6) + 64
        comp = rng.choice(len(probs), size=m, p=probs)
        pts = rng.uniform([minx, miny], [maxx, maxy], size=(m, 2))
        g = comp < len(centres)
        if g.any():
            c = np.asarray(centres)[comp[g]]
            s = np.asarray(sigmas)[comp[g]][:, None]
            pts[g] = c + rng.normal(size=(g.sum(), 2)) * s
        keep = shapely.contains_xy(poly, pts[:, 0], pts[:, 1])
        out = np.vstack([out, pts[keep]])
    return out[:n]


def _morton(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Z-order key of coordinates quantised to 16 bits (spatially coherent sort)."""
    def q(v):
        lo, hi = v.min(), v.max()
        return ((v - lo) / (hi - lo + 1e-9) * 65535).astype(np.uint64)

    def spread(v):
        v = (v | (v << np.uint64(8))) & np.uint64(0x00FF00FF)
        v = (v | (v << np.uint64(4))) & np.uint64(0x0F0F0F0F)
        v = (v | (v << np.uint64(2))) & np.uint64(0x33333333)
        v = (v | (v << np.uint64(1))) & np.uint64(0x55555555)
        return v

    return spread(q(x)) | (spread(q(y)) << np.uint64(1))


def _far_points(rng, poly, k, first, min_sep):
    """``k`` centres inside ``poly``: ``first`` then greedy farthest-point picks."""
    cand = _sample_inside(rng, poly, 600, [], [], [])
    chosen = [np.asarray(first, float)]
    for _ in range(k - 1):
        d = np.min(np.linalg.norm(cand[:, None, :] - np.asarray(chosen)[None], axis=2), axis=1)
        d = d + rng.uniform(0, min_sep * 0.3, d.size)
        chosen.append(cand[int(np.argmax(d))])
    return np.asarray(chosen)


def _island_polys(rng, poly, n, R):
    """``n`` small irregular islands offshore east of ``poly`` (non-overlapping)."""
    minx, miny, maxx, maxy = poly.bounds
    if n == 0:
        return np.empty(0, dtype=object), np.empty((0, 2))
    rows = int(np.ceil(np.sqrt(n)))
    spacing = max(2500.0, (maxy - miny) * 0.6 / rows)
    i = np.arange(n)
    cx = maxx + 3000.0 + (i // rows) * spacing + rng.uniform(0, spacing * 0.3, n)
    cy = (miny + maxy) / 2 + (i % rows - rows / 2) * spacing + rng.uniform(0, spacing * 0.3, n)
    radius = np.minimum(rng.uniform(0.12, 0.45, n) * spacing / 2, rng.uniform(250.0, 900.0, n))
    theta = np.linspace(0, 2 * np.pi, 13)[:-1]
    wob = 1 + 0.25 * rng.uniform(-1, 1, (n, theta.size))
    xs = cx[:, None] + radius[:, None] * wob * np.cos(theta)
    ys = cy[:, None] + radius[:, None] * wob * np.sin(theta)
    rings = np.stack([xs, ys], axis=2)
    polys = shapely.polygons(np.concatenate([rings, rings[:, :1]], axis=1))
    return polys, np.c_[cx, cy]


def _hazard(rng, xy, core, R, mountains):
    """FLOOD_M (m), SLOPE_DEG (°), LANDSLIDE (0/1): smooth, spatially correlated fields."""
    # river: west–east line through the core, meandering
    x, y = xy[:, 0], xy[:, 1]
    river_y = core[1] + 0.08 * R * np.sin((x - core[0]) / (0.35 * R))
    d_river = np.abs(y - river_y)
    m = np.zeros(len(xy))
    for (mx, my, s) in mountains:
        m += np.exp(-((x - mx) ** 2 + (y - my) ** 2) / (2 * s * s))
    m = np.clip(m, 0, 1.2)
    slope = np.round(np.clip(3 + 38 * m + 10 * np.clip(d_river / R - 0.15, 0, 1) + rng.normal(0, 2.5, len(xy)), 0, 55), 1)
    flood = np.clip(5.5 * (1 - d_river / (0.07 * R)) + rng.normal(0, 0.4, len(xy)), 0, None)
    flood[slope > 15] = 0.0
    landslide = ((slope > 35) | ((slope > 25) & (rng.random(len(xy)) < 0.6))).astype("int64")
    return np.round(flood, 1), slope, landslide, m


def synthetic_estat(
    n_blocks: int,
    *,
    seed: int = 0,
    muni_code: str = "03901",
    layout: str = "2015_current",
    n_old: int = 4,
    island_share: float = 0.01,
    multipart_share: float = 0.03,
    crs="EPSG:6668",
    city_name: str = "試験市",
    offset_m: tuple[float, float] = (0.0, 0.0),
) -> gpd.GeoDataFrame:
    """A synthetic municipality as raw e-Stat records (see the module docstring).

    Parameters
    ----------
    n_blocks: number of town-blocks (distinct KEY_CODE, water and placeholder excluded)
        after dissolving; the file holds more records (KIGO_E parts, water, placeholder).
    seed: generator seed; same arguments → identical frame.
    muni_code: 5-digit municipality code (prefecture 2 + city 3).
    layout: ``2015_legacy``, ``2015_current`` or ``2020`` (columns in file order).
    n_old: number of 旧市町村 (OLD_MUNI / OLD_CODE columns), 1–14.
    island_share: share of town-blocks that are offshore islands (KIGO_I).
    multipart_share: share of mainland town-blocks split into KIGO_E parts.
    crs: CRS of the returned geometry (default JGD2011 lat/lon, EPSG:6668).
    city_name: GST_NAME / CITY_NAME value.
    offset_m: shift (east, north) in metres of the plane-rectangular zone, to place
        several municipalities side by side in one prefecture file.

    Returns a GeoDataFrame with the layout's fields (AREA m², PERIMETER m computed in
    the plane-rectangular zone) plus OLD_MUNI, OLD_CODE, FLOOD_M, SLOPE_DEG, LANDSLIDE.
    """
    muni = normalize_municipality_code(muni_code)
    if layout not in LAYOUTS:
        raise UserError(f"unknown layout {layout!r}", fix=f"use one of {', '.join(LAYOUTS)}")
    n_blocks = int(n_blocks)
    if n_blocks < 4:
        raise UserError(f"n_blocks={n_blocks} is too small", fix="use at least 4 blocks")
    town = _Town(muni, n_blocks, seed=seed, n_old=n_old, offset_m=offset_m)
    town.outline_and_centres()
    town.count_units(island_share, multipart_share)
    town.voronoi_cells()
    town.assign_roles()
    town.add_islands()
    town.assign_old_municipalities()
    town.cut_codes()
    town.name_blocks()
    town.special_rows()
    town.kigo_flags()
    town.population()
    return town.frame(layout, crs, city_name)


class _Town:
    """The state of one synthetic municipality while it is built, stage by stage (the
    stages draw from one generator in a fixed order, so a seed gives one municipality)."""

    def __init__(self, muni: str, n_blocks: int, *, seed: int, n_old: int, offset_m):
        self.muni, self.n_blocks = muni, n_blocks
        self.n_old = int(np.clip(n_old, 1, len(OLD_MUNI_NAMES)))
        self.pref, self.city = muni[:2], muni[2:]
        self.rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(muni)]))
        self.plane = crs_for_municipality(muni)
        self.offset_m = offset_m

    def outline_and_centres(self) -> None:
        rng, n_blocks = self.rng, self.n_blocks
        base = _CENTRES.get(self.pref, (0.0, 0.0))
        self.centre = (base[0] + self.offset_m[0], base[1] + self.offset_m[1])
        area_m2 = _total_area_km2(n_blocks) * 1e6
        self.outline = _outline(rng, self.centre, area_m2)
        R = self.R = float(np.sqrt(area_m2 / np.pi))
        self.core = np.array([self.centre[0] + 0.25 * R, self.centre[1] + 0.05 * R])  # towards the coast
        self.centres = _far_points(rng, self.outline, self.n_old, self.core, R)
        self.mountains = [(*p, 0.25 * R) for p in _far_points(rng, self.outline, 6, self.centres[-1], R)[1:]]

    def count_units(self, island_share: float, multipart_share: float) -> None:
        n_blocks = self.n_blocks
        extra_small = n_blocks >= 20
        n_isl = int(round(island_share * n_blocks))
        if island_share > 0 and n_blocks >= 30:
            n_isl = max(n_isl, 2)
        self.n_isl = n_isl = min(n_isl, n_blocks // 4, 40)   # a few islands, not an archipelago
        n_units_main = n_blocks - n_isl
        n_multi = int(round(multipart_share * n_units_main))
        if multipart_share > 0 and n_blocks >= 30:
            n_multi = max(n_multi, 3)
        self.n_multi = n_multi = min(n_multi, n_units_main // 4)
        self.n_three = n_multi // 5                       # units with E1, E2, E3
        self.n_detached = min(2, n_multi - self.n_three) if n_multi >= 3 else 0   # KIGO_D units
        n_extra = n_multi + self.n_three
        self.n_water = 2 if extra_small else 0
        self.n_ph = 1 if extra_small else 0
        self.n_cells = n_units_main + n_extra + self.n_water + self.n_ph

    def voronoi_cells(self) -> None:
        R, outline = self.R, self.outline
        k = len(self.centres)
        sig = np.r_[0.07 * R, np.full(k - 1, 0.045 * R)]
        w = np.r_[0.38, np.full(k - 1, 0.22 / max(k - 1, 1))] if k > 1 else np.r_[0.5]
        self.seeds = _sample_inside(self.rng, outline, self.n_cells, self.centres, sig, w)
        cells = shapely.get_parts(
            shapely.voronoi_polygons(shapely.multipoints(self.seeds), extend_to=outline.buffer(R), ordered=True)
        )
        shapely.prepare(outline)
        inside = shapely.contains(outline, cells)
        cells = cells.copy()
        cells[~inside] = shapely.intersection(cells[~inside], outline)
        self.cells = cells

    def assign_roles(self) -> None:
        """Water, placeholder and extra-part cells; the rest are units."""
        rng, seeds, n_cells, R = self.rng, self.seeds, self.n_cells, self.R
        tree = cKDTree(seeds)
        dist_core = np.linalg.norm(seeds - self.core, axis=1)
        role = np.zeros(n_cells, dtype=np.int8)          # 0 unit, 1 extra part, 2 water, 3 placeholder
        owner = np.arange(n_cells)                       # unit cell index each cell belongs to
        order = rng.permutation(n_cells)
        if self.n_water:
            rural = order[dist_core[order] > 0.4 * R]
            role[rural[:self.n_water]] = 2
        if self.n_ph:
            edge = np.argsort(-np.linalg.norm(seeds - np.asarray(self.centre), axis=1), kind="stable")
            ph = next(i for i in edge if role[i] == 0)
            role[ph] = 3
        _, nn = tree.query(seeds, k=min(12, n_cells))
        self.multi_units, self.detached_units = self._multipart_units(order, nn, role, owner)
        self.role, self.owner = role, owner

    def _multipart_units(self, order, nn, role, owner) -> tuple[list, list]:
        n_multi, n_three, n_detached = self.n_multi, self.n_three, self.n_detached
        used = role != 0
        multi_units, detached_units = [], []
        for y in order:
            if len(multi_units) >= n_multi:
                break
            if used[y]:
                continue
            want = 2 if len(multi_units) < n_three else 1
            detached = n_three <= len(multi_units) < n_three + n_detached
            cand = nn[y, -1:] if detached else nn[y, 1:1 + want]
            if len(cand) < want and not detached or used[cand].any():
                continue
            used[y] = True
            used[cand] = True
            role[cand] = 1
            owner[cand] = y
            multi_units.append(y)
            if detached:
                detached_units.append(y)
        return multi_units, detached_units

    def add_islands(self) -> None:
        n_isl, n_cells = self.n_isl, self.n_cells
        isl_polys, isl_xy = _island_polys(self.rng, self.outline, n_isl + (1 if n_isl >= 2 else 0), self.R)
        n_isl_cells = len(isl_polys)
        self.geoms = np.concatenate([self.cells, isl_polys])
        self.xy = np.vstack([self.seeds, isl_xy]) if n_isl_cells else self.seeds
        self.role = np.r_[self.role, np.zeros(n_isl_cells, np.int8)]
        self.owner = np.r_[self.owner, n_cells + np.arange(n_isl_cells)]
        self.is_island = np.r_[np.zeros(n_cells, bool), np.ones(n_isl_cells, bool)]
        if n_isl >= 2:   # last island is the E2 part of the one before
            self.role[-1] = 1
            self.owner[-1] = len(self.owner) - 2
            self.multi_units.append(len(self.owner) - 2)
        self.n_all = len(self.geoms)

    def assign_old_municipalities(self) -> None:
        k = len(self.centres)
        wts = np.r_[0.18 * self.R, np.zeros(k - 1)]
        d_c = np.linalg.norm(self.xy[:, None, :] - self.centres[None], axis=2) - wts
        self.old = np.argmin(d_c, axis=1)[self.owner]                    # parts follow their unit

    def cut_codes(self) -> None:
        """Units sorted by 旧市町村 then Morton order, cut into 町・字 runs (KIHON1/KIHON2)."""
        rng, old, city, n_all = self.rng, self.old, self.city, self.n_all
        unit_idx = np.flatnonzero(self.role == 0)
        mort = _morton(self.xy[:, 0], self.xy[:, 1])
        srt = unit_idx[np.lexsort((mort[unit_idx], old[unit_idx]))]
        n_units = len(srt)
        mean_size = max(3.0, n_units / 6000.0)
        sizes = np.where(rng.random(n_units) < 0.3, 1,
                         rng.integers(2, int(min(99, 2 * mean_size)) + 1, n_units))
        # restart runs at each 旧市町村 boundary
        starts = np.r_[0, np.cumsum(sizes)[:-1]]
        pos = np.arange(n_units)
        run_of = np.searchsorted(starts, pos, side="right") - 1
        new_old = np.r_[True, old[srt][1:] != old[srt][:-1]]
        brk = np.r_[True, run_of[1:] != run_of[:-1]] | new_old
        group = np.cumsum(brk) - 1
        n_groups = int(group[-1]) + 1
        step = int(max(1, min(10, 9800 // max(n_groups, 1))))
        kihon1_g = (np.arange(n_groups) + 1) * step
        first_of_group = np.flatnonzero(brk)
        gsize = np.diff(np.r_[first_of_group, n_units])
        rank = pos - first_of_group[group]               # 0-based position in its group
        single = gsize[group] == 1
        kihon1 = np.empty(n_all, dtype=object)
        kihon2 = np.empty(n_all, dtype=object)
        kihon1[srt] = [f"{v:04d}" for v in kihon1_g[group]]
        kihon2[srt] = np.where(single, "00", [f"{r + 1:02d}" for r in rank])
        keycode2 = np.empty(n_all, dtype=object)
        keycode2[srt] = np.where(single, [city + k1 for k1 in kihon1[srt]],
                                 [city + a + b for a, b in zip(kihon1[srt], kihon2[srt])])
        self.srt, self.group, self.rank, self.single = srt, group, rank, single
        self.n_groups, self.first_of_group = n_groups, first_of_group
        self.kihon1, self.kihon2, self.keycode2 = kihon1, kihon2, keycode2

    def name_blocks(self) -> None:
        """Names per 町・字 run: 丁目 in the urban core, 地割 or bare names elsewhere."""
        rng, srt, group, n_groups = self.rng, self.srt, self.group, self.n_groups
        ga = rng.integers(0, len(_KANJI_A), (n_groups, 2))
        gb = rng.integers(0, len(_KANJI_B), n_groups)
        base = np.array([_KANJI_A[a] + _KANJI_A[b] + (_KANJI_B[c] if c % 3 == 0 else "")
                         for (a, b), c in zip(ga, gb)], dtype=object)
        gx = self.xy[srt[self.first_of_group]]
        urban_g = (self.old[srt[self.first_of_group]] == 0) & (np.linalg.norm(gx - self.core, axis=1) < 0.22 * self.R)
        style = rng.random(n_groups)
        paren = rng.random(n_groups) < 0.03
        other = np.array([_KANJI_A[a] + _KANJI_B[b % len(_KANJI_B)] for a, b in zip(ga[:, 1], ga[:, 0])],
                         dtype=object)
        names_sorted = [_block_name(base[g], r, s, urban_g[g], style[g], other[g] if paren[g] else None)
                        for g, r, s in zip(group, self.rank, self.single)]
        names = np.full(self.n_all, "", dtype=object)
        names[srt] = names_sorted
        isl_units = srt[self.is_island[srt]]
        names[isl_units] = [f"{base[g]}島" for g in group[np.isin(srt, isl_units)]]
        n_units = len(srt)
        if n_units >= 100:   # a few empty names, as in real files
            names[srt[rng.choice(n_units, size=max(1, n_units // 400), replace=False)]] = ""
        self.names = names

    def special_rows(self) -> None:
        """Parts inherit their unit's codes; water and the placeholder get their own."""
        role, owner, city = self.role, self.owner, self.city
        parts = self.parts = np.flatnonzero(role == 1)
        for arr in (self.kihon1, self.kihon2, self.keycode2, self.names):
            arr[parts] = arr[owner[parts]]
        for j, i in enumerate(np.flatnonzero(role >= 2)):
            if role[i] == 2:
                self.kihon1[i], self.kihon2[i] = f"{9900 + j:04d}", "00"
                self.keycode2[i] = city + self.kihon1[i]
                self.names[i] = "水面"
            else:
                self.kihon1[i], self.kihon2[i] = "0000", "00"
                self.keycode2[i] = ""
                self.names[i] = ""
        self.key = np.array([self.pref + k2 for k2 in self.keycode2], dtype=object)

    def kigo_flags(self) -> None:
        role, owner, parts, n_all = self.role, self.owner, self.parts, self.n_all
        kigo_e = np.full(n_all, "", dtype=object)
        kigo_e[np.asarray(self.multi_units, dtype=np.int64)] = "E1"
        part_idx = parts[np.lexsort((parts, owner[parts]))]
        part_rank = pd.Series(owner[part_idx]).groupby(owner[part_idx]).cumcount().to_numpy() + 2
        kigo_e[part_idx] = [f"E{r}" for r in part_rank]
        self.kigo_e = kigo_e
        self.kigo_i = np.where(self.is_island, "1", "").astype(object)
        self.kigo_d = np.where(np.isin(owner, self.detached_units), "1", "").astype(object)
        self.n_ken = np.where(role == 3, self.pref, "").astype(object)
        self.n_city = np.where(role == 3, f"{(int(self.city) % 999) + 1:03d}", "").astype(object)

    def population(self) -> None:
        """Hazard fields and population from a density surface; statistics on E1 rows."""
        rng, xy, owner, n_all, R = self.rng, self.xy, self.owner, self.n_all, self.R
        self.area = area = shapely.area(self.geoms)
        self.perim = shapely.length(self.geoms)
        self.flood, self.slope, self.landslide, mtn = _hazard(rng, xy, self.core, R, self.mountains)
        dens = 25.0 + 4500.0 * np.exp(-np.sum((xy - self.core) ** 2, axis=1) / (2 * (0.07 * R) ** 2))
        for c in self.centres[1:]:
            dens += 1400.0 * np.exp(-np.sum((xy - c) ** 2, axis=1) / (2 * (0.045 * R) ** 2))
        dens *= 1.0 - 0.85 * np.clip(mtn, 0, 1)
        raw = dens * area / 1e6 * rng.lognormal(0.0, 0.5, n_all)
        unit_raw = np.bincount(owner, weights=raw, minlength=n_all)
        unit_mask = self.role == 0
        scale = 211.0 / max(unit_raw[unit_mask].mean(), 1e-9)
        jinko_u = np.round(unit_raw * scale).astype("int64")
        jinko_u[(jinko_u < 8) | (rng.random(n_all) < 0.03)] = 0
        setai_u = np.where(jinko_u > 0, np.maximum(1, np.round(jinko_u / rng.uniform(2.2, 3.4, n_all))),
                           0).astype("int64")
        kbsum_u = np.where(jinko_u > 0, np.maximum(1, np.round(np.sqrt(jinko_u) / 2.5)), 0).astype("int64")
        # E1 rows and single units carry the statistics
        self.jinko = np.where(unit_mask, jinko_u, 0)
        self.setai = np.where(unit_mask, setai_u, 0)
        self.kbsum = np.where(unit_mask, kbsum_u, 0)

    def _columns(self, city_name: str, rep_ll: gpd.GeoSeries, ids: np.ndarray) -> dict[str, object]:
        role, pref, city, kihon1, kihon2 = self.role, self.pref, self.city, self.kihon1, self.kihon2
        # AREA_MAX_F: 'M' on the largest part of each unit
        biggest = pd.Series(self.area).groupby(self.owner).idxmax().to_numpy()
        area_max_f = np.full(self.n_all, "", dtype=object)
        area_max_f[biggest] = "M"
        area_max_f[role >= 2] = "M"
        return {
            "KEY_CODE": self.key, "PREF": pref, "CITY": city,
            "S_AREA": np.where(role == 3, "000000", [a + b for a, b in zip(kihon1, kihon2)]),
            "PREF_NAME": PREF_NAMES[int(pref) - 1], "CITY_NAME": city_name, "S_NAME": self.names,
            "KIGO_E": self.kigo_e, "HCODE": np.where(role == 2, HCODE_WATER, HCODE_TOWNBLOCK).astype("int64"),
            "AREA": np.round(self.area, 3), "PERIMETER": np.round(self.perim, 3),
            "{PP}_": ids, "{PP}_ID": ids - 1,
            "KEN": pref, "KEN_NAME": PREF_NAMES[int(pref) - 1], "SITYO_NAME": "", "GST_NAME": city_name,
            "CSS_NAME": "", "KIHON1": kihon1, "DUMMY1": "-", "KIHON2": kihon2,
            "KEYCODE1": np.where(role == 3, "", [city + a + b for a, b in zip(kihon1, kihon2)]),
            "KEYCODE2": self.keycode2, "AREA_MAX_F": area_max_f, "KIGO_D": self.kigo_d,
            "N_KEN": self.n_ken, "N_CITY": self.n_city, "KIGO_I": self.kigo_i, "MOJI": self.names,
            "KBSUM": self.kbsum, "JINKO": self.jinko, "SETAI": self.setai,
            "X_CODE": np.round(rep_ll.x.to_numpy(), 5), "Y_CODE": np.round(rep_ll.y.to_numpy(), 5),
            "KCODE1": np.where(role == 3, "", [f"{a}-{b}" for a, b in zip(kihon1, kihon2)]),
        }

    def frame(self, layout: str, crs, city_name: str) -> gpd.GeoDataFrame:
        """The records in the layout's field order, plus OLD_MUNI/OLD_CODE and hazards."""
        plane, owner, old, pref, muni = self.plane, self.owner, self.old, self.pref, self.muni
        gs = gpd.GeoSeries(self.geoms, crs=plane)
        rep_ll = gpd.GeoSeries(shapely.point_on_surface(self.geoms), crs=plane).to_crs("EPSG:6668")
        rep_ll = rep_ll.iloc[owner].reset_index(drop=True)
        ids = self.rng.permutation(self.n_all) + 1
        cols = self._columns(city_name, rep_ll, ids)
        k = len(self.centres)
        old_codes = [muni] + [f"{pref}{300 + 11 * i:03d}" for i in range(1, k)]
        fields = field_names(layout, pref)
        data = {}
        for f, g in zip(fields, LAYOUTS[layout]):
            v = cols[g.replace("H27KA", "").replace("R2KA", "")]
            data[f] = np.asarray(v, dtype=object) if field_kind(f) == "str" and not np.isscalar(v) else v
        df = pd.DataFrame(data, index=pd.RangeIndex(self.n_all))
        for f in fields:
            if field_kind(f) == "str":
                df[f] = df[f].astype(object)
        df["OLD_MUNI"] = np.array(OLD_MUNI_NAMES, dtype=object)[old]
        df["OLD_CODE"] = np.array(old_codes, dtype=object)[old]
        df["FLOOD_M"] = self.flood[owner]
        df["SLOPE_DEG"] = self.slope[owner]
        df["LANDSLIDE"] = self.landslide[owner]
        out = gpd.GeoDataFrame(df, geometry=gs.to_crs(crs).to_numpy() if crs is not None else gs.to_numpy(),
                               crs=crs if crs is not None else plane)
        sort_e = pd.Series(self.kigo_e).str.slice(1).replace("", "0").astype(int).to_numpy()
        return out.iloc[np.lexsort((sort_e, self.key))].reset_index(drop=True)


def _block_name(base: str, rank: int, single: bool, urban: bool, style: float, other: str | None) -> str:
    if single:
        nm = base if not urban else base + "町"
    elif urban:
        nm = f"{base}町{_fw(rank + 1)}丁目"
    elif style < 0.5:
        nm = f"{base}第{_fw(rank + 1)}地割"
    else:
        nm = base
    return f"{nm}（{other}）" if other is not None else nm


def synthetic_townblocks(n_blocks: int, *, seed: int = 0, target_crs=None, **kw) -> gpd.GeoDataFrame:
    """Canonical town-blocks of a synthetic municipality (the common test fixture).

    Runs :func:`synthetic_estat` through the reader's normalisation
    (:func:`subdivide.io.townblocks.normalize_townblocks`): projected to the prefecture's
    plane-rectangular zone, multi-part units dissolved, water and placeholder rows
    dropped. Exactly ``n_blocks`` rows; OLD_MUNI, OLD_CODE, FLOOD_M, SLOPE_DEG and
    LANDSLIDE stay as extra columns.
    """
    from subdivide.io.townblocks import normalize_townblocks

    raw = synthetic_estat(n_blocks, seed=seed, **kw)
    muni = normalize_municipality_code(kw.get("muni_code", "03901"))
    blocks, _ = normalize_townblocks(raw, muni_code=muni, target_crs=target_crs, source="synthetic")
    return blocks


def synthetic_prefecture(sizes, *, pref: str = "03", seed: int = 0, layout: str = "2015_current",
                         crs="EPSG:6668") -> gpd.GeoDataFrame:
    """A prefecture-wide e-Stat file: one synthetic municipality per entry of ``sizes``
    (town-blocks each), codes ``{pref}201``, ``{pref}202``, … side by side on a grid, in
    one frame as e-Stat ships a prefecture. Seeded: same arguments, same file."""
    sizes = [int(n) for n in sizes]
    if not sizes or len(sizes) > 899:
        raise UserError(f"{len(sizes)} municipalities: give 1–899 sizes", fix="e.g. sizes=[40, 60, 300]")
    spacing = 3.2 * float(np.sqrt(_total_area_km2(max(sizes)) * 1e6 / np.pi))
    cols = int(np.ceil(np.sqrt(len(sizes))))
    frames = []
    for i, n in enumerate(sizes):
        r, c = divmod(i, cols)
        code = f"{pref}{201 + i:03d}"
        frames.append(synthetic_estat(n, seed=seed + i, muni_code=code, layout=layout, crs=crs,
                                      city_name=f"試験{i + 1}市", offset_m=(c * spacing, -r * spacing)))
    out = pd.concat(frames, ignore_index=True)
    return gpd.GeoDataFrame(out, geometry=out.geometry.name, crs=frames[0].crs)


#: how each .cpg value is written
_CPG_TEXT = {"CP932": "CP932", "UTF-8": "UTF-8"}
#: default LDID byte per layout (2020 files carry 0x13 = Shift-JIS)
_DEFAULT_LDID = {"2015_legacy": 0x00, "2015_current": 0x00, "2020": 0x13}


def _shapefile_frame(gdf: gpd.GeoDataFrame, layout: str, path: Path) -> gpd.GeoDataFrame:
    """Layout fields first, in file order, then extra columns; text columns as str."""
    pref = next((c[-3:-1] for c in gdf.columns if c.upper().endswith("_") and "KA" in c.upper()), "03")
    fields = field_names(layout, pref)
    extra = [c for c in gdf.columns if c not in fields and c != gdf.geometry.name]
    too_long = [c for c in fields + extra if len(c.encode("ascii", "replace")) > 10]
    if too_long:
        raise UserError(f"field names longer than 10 bytes: {too_long}", where=str(path))
    out = gdf[fields + extra + [gdf.geometry.name]].copy()
    for c in fields + extra:
        if out[c].dtype == object or pd.api.types.is_string_dtype(out[c]):
            out[c] = out[c].fillna("").astype(str).astype(object)
    return out


def write_estat_shapefile(gdf: gpd.GeoDataFrame, path, *, layout: str | None = None,
                          cpg: str | None = None, ldid: int | None = None) -> Path:
    """Write raw e-Stat records as a Shapefile the way e-Stat ships them.

    Text is encoded CP932 (UTF-8 when ``cpg="UTF-8"``). ``cpg=None`` writes no .cpg
    (as 2015 re-exports); ``"CP932"`` / ``"UTF-8"`` writes that .cpg. ``ldid`` is the
    DBF language-driver byte (offset 29): default 0x13 for the 2020 layout, 0 for
    2015. Layout fields first, in file order, then any extra columns. Returns the path.
    """
    path = Path(path)
    layout = layout or detect_layout(gdf.columns)
    if layout is None:
        raise UserError("the frame is not in an e-Stat layout", fix="build it with synthetic_estat")
    if cpg is not None and cpg not in _CPG_TEXT:
        raise UserError(f"cpg={cpg!r} is not supported", fix="use None, 'CP932' or 'UTF-8'")
    out = _shapefile_frame(gdf, layout, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pyogrio.write_dataframe(out, path, driver="ESRI Shapefile", encoding="utf-8" if cpg == "UTF-8" else "cp932",
                            layer_options={"RESIZE": "YES"})
    cpg_path = path.with_suffix(".cpg")
    if cpg is None:
        cpg_path.unlink(missing_ok=True)
    else:
        cpg_path.write_text(_CPG_TEXT[cpg], encoding="ascii")
    byte = _DEFAULT_LDID[layout] if ldid is None else int(ldid)
    with open(path.with_suffix(".dbf"), "r+b") as fh:
        fh.seek(29)
        fh.write(bytes([byte & 0xFF]))
    return path

