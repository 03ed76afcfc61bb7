"""Spill models (subdivide.analysis.spill): closed forms, invariants, exposure, areal weighting,
raster population and the fit of L — on exact geometries where the answer is known."""
from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings, strategies as st

from subdivide.analysis import spill
from subdivide.core.errors import UserError
from subdivide.model.plan import Plan

KM = 1000.0
CRS = "EPSG:6678"


# ---------------------------------------------------------------- helpers (own fixtures)
def grid_blocks(nx, ny, size=1000.0, *, population=None, seed=0, x0=0.0, y0=0.0):
    """Canonical town-blocks on a regular grid of squares (metres, EPSG:6678)."""
    rng = np.random.default_rng(seed)
    xs, ys = np.meshgrid(np.arange(nx), np.arange(ny))
    xs, ys = xs.ravel(), ys.ravel()
    geoms = shapely.box(x0 + xs * size, y0 + ys * size, x0 + (xs + 1) * size, y0 + (ys + 1) * size)
    n = nx * ny
    pop = rng.integers(0, 800, n) if population is None else np.asarray(population)
    return gpd.GeoDataFrame({
        "key": [f"03205{i:06d}" for i in range(n)], "name": [f"町{i}" for i in range(n)],
        "muni_code": "03205", "population": pop, "households": pop // 2,
        "area_official_m2": size * size, "island": False, "enclave": False, "multipart": False,
        "repaired": False, "col": xs, "row": ys}, geometry=geoms, crs=CRS)


def column_plan(blocks, edges, **kw):
    """Sub-areas by column ranges: edges [10, 20] → cols <10, 10–19, ≥20."""
    lab = np.searchsorted(np.asarray(edges), blocks["col"].to_numpy(), side="right")
    return Plan.from_assignment(blocks, pd.Series([f"区{i}" for i in lab], index=blocks["key"]), **kw)


def star(radii, scale):
    ang = np.linspace(0, 2 * np.pi, len(radii), endpoint=False)
    r = np.asarray(radii) * scale
    return shapely.Polygon(np.column_stack([r * np.cos(ang), r * np.sin(ang)]))


# ---------------------------------------------------------------- closed forms
@pytest.mark.parametrize("area_km2", [146.5, 300.0, 908.0])
@pytest.mark.parametrize("L", [2.0, 2.5, 3.0])
def test_circle_exact_matches_closed_form(area_km2, L):
    r = math.sqrt(area_km2 * 1e6 / math.pi)
    circle = shapely.Point(0, 0).buffer(r, quad_segs=256)
    closed = (r - L * KM) ** 2 / r**2
    assert spill.circle_unreached_share(area_km2 * 1e6, L * KM) == pytest.approx(closed, rel=1e-12)
    exact = spill.core_share([circle], L * KM, quad_segs=64)[0]
    assert exact == pytest.approx(closed, rel=0.005)


def test_square_and_rectangle_cores_match_closed_forms():
    S = 146.5e6
    s = math.sqrt(S)
    square = shapely.box(0, 0, s, s)
    a, b = math.sqrt(4 * S), math.sqrt(S / 4)          # 4:1 rectangle of the same area
    rect = shapely.box(0, 0, a, b)
    got = spill.core_share([square, rect], 2 * KM)
    assert got[0] == pytest.approx((s - 4 * KM) ** 2 / S, rel=0.005)
    assert got[0] == pytest.approx(0.448, abs=0.0005)          # DOMAIN §3: 44.8 %
    assert got[1] == pytest.approx((a - 4 * KM) * (b - 4 * KM) / S, rel=0.005)
    assert round(got[1], 2) == 0.28                             # DOMAIN §3: 28 %
    # both below the circle bound for the same area
    assert (got < spill.circle_unreached_share(S, 2 * KM)).all()


def test_minimum_areas_146_and_329_km2():
    # the trial report quotes them truncated: 146.48 → 146, 329.59 → 329
    assert math.floor(float(spill.min_area_for_share(0.5, 2 * KM)) / 1e6) == 146
    assert math.floor(float(spill.min_area_for_share(0.5, 3 * KM)) / 1e6) == 329
    # and the circle of that area keeps exactly p
    S = spill.min_area_for_share(0.5, 2.5 * KM)
    assert float(spill.circle_unreached_share(S, 2.5 * KM)) == pytest.approx(0.5, rel=1e-9)


def test_tolerated_distance_and_same_shape_area_for_squares():
    p = 0.5
    sides = np.array([8.0, 12.0, 20.0]) * KM
    squares = shapely.box(0, 0, sides, sides)
    Lp = spill.core_distance_for_share(squares, p, tol_m=0.5)
    assert Lp == pytest.approx(sides * (1 - math.sqrt(p)) / 2, abs=1.0)   # (s − 2L)² = p s²
    # a square needs 4/π times the circle's minimum area
    need = sides**2 * (2 * KM / Lp) ** 2
    assert need == pytest.approx(4 / math.pi * spill.min_area_for_share(p, 2 * KM), rel=0.002)


# ---------------------------------------------------------------- invariants (hypothesis)
radii = st.lists(st.floats(0.25, 1.0), min_size=5, max_size=24)


@settings(max_examples=60, deadline=None)
@given(radii=radii, scale=st.floats(2 * KM, 25 * KM), L1=st.floats(0.1 * KM, 5 * KM),
       dL=st.floats(0.0, 3 * KM))
def test_core_never_exceeds_circle_bound_and_falls_with_L(radii, scale, L1, dL):
    g = star(radii, scale)
    S = g.area
    for L in (L1, L1 + dL):
        assert spill.core_share([g], L)[0] <= float(spill.circle_unreached_share(S, L)) + 1e-9
    assert spill.core_share([g], L1 + dL)[0] <= spill.core_share([g], L1)[0] + 1e-9
    assert float(spill.circle_unreached_share(S, L1 + dL)) <= float(spill.circle_unreached_share(S, L1)) + 1e-12


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), L=st.floats(0.3, 4.0))
def test_report_shares_fall_as_L_grows_and_respect_the_bound(seed, L):
    b = grid_blocks(14, 8, seed=seed)
    plan = column_plan(b, [5, 9])
    rep = spill.spill_report(plan, distances_km=(L, L + 0.7), target_share=0.5)
    sa = rep.subareas
    assert (sa["core_share"] <= sa["circle_unreached_share"] + 1e-9).all()
    w = sa.pivot(index="subarea", columns="distance_km", values=["core_share", "core_population_share"])
    for col in ("core_share", "core_population_share"):
        lo, hi = w[col].iloc[:, 0], w[col].iloc[:, 1]
        assert (hi <= lo + 1e-9).all()
    assert (sa["core_population"] <= sa["population"] + 1e-6).all()


# ---------------------------------------------------------------- exposure
def test_exposure_strips_are_exact_and_only_within_L():
    # three 10 km × 10 km sub-areas side by side, 1 km blocks, uniform 100 people per block
    b = grid_blocks(30, 10, population=np.full(300, 100))
    plan = column_plan(b, [10, 20])
    rep = spill.spill_report(plan, distances_km=(2.0, 3.0, 11.0))
    ex = rep.exposure.set_index(["distance_km", "from_subarea", "to_subarea"])
    for L in (2.0, 3.0):
        assert ex.loc[(L, 1, 2), "area_km2"] == pytest.approx(10 * L, rel=1e-9)   # strip 10 km × L
        assert ex.loc[(L, 2, 1), "area_km2"] == pytest.approx(10 * L, rel=1e-9)
        assert ex.loc[(L, 1, 2), "population"] == pytest.approx(100 * 10 * L, rel=1e-9)
        assert ex.loc[(L, 2, 3), "population"] == pytest.approx(100 * 10 * L, rel=1e-9)
    # A → C only when L exceeds the 10 km gap
    assert (2.0, 1, 3) not in ex.index and (3.0, 1, 3) not in ex.index
    assert ex.loc[(11.0, 1, 3), "area_km2"] == pytest.approx(10 * 1.0, rel=0.01)
    # the exact core of each 10 × 10 square at 2 km: 6 × 6 km
    core = rep.subareas.set_index(["distance_km", "subarea"])["core_share"]
    assert core.loc[(2.0, 2)] == pytest.approx(36 / 100, rel=1e-9)
    # totals: what 2 sends out at 2 km = both strips
    t = rep.totals.set_index(["distance_km", "subarea"])
    assert t.loc[(2.0, 2), "out_area_km2"] == pytest.approx(40.0, rel=1e-9)
    assert t.loc[(2.0, 2), "subareas_reached"] == 2


def test_exposure_positive_iff_within_L(sample_plan):
    rep = spill.spill_report(sample_plan, distances_km=(2.0, 3.0))
    dis = sample_plan.dissolved
    g = dis.geometry.values
    got = set(zip(rep.exposure["distance_km"], rep.exposure["from_subarea"], rep.exposure["to_subarea"]))
    for L in (2.0, 3.0):
        for i, a in enumerate(dis["subarea"]):
            for j, b_ in enumerate(dis["subarea"]):
                if a == b_:
                    continue
                near = shapely.distance(g[i], g[j]) < L * KM
                assert ((L, a, b_) in got) == near
    assert len(rep.subareas) == 2 * len(dis) == 8
    assert (rep.subareas["core_share"] <= rep.subareas["circle_unreached_share"] + 1e-9).all()


def test_areal_weighting_conserves_population():
    b = grid_blocks(12, 12, size=700.0, seed=3)
    blocks = b.geometry.values
    pop = b["population"].to_numpy(float)
    whole = shapely.union_all(blocks)
    zone = shapely.Point(4000, 4500).buffer(3100.0)             # cuts many blocks
    pieces = np.array([shapely.intersection(whole, zone), shapely.difference(whole, zone)], dtype=object)
    zi, _, area, wp = spill.weighted_population(pieces, blocks, pop)
    per_zone = np.bincount(zi, weights=wp, minlength=2)
    assert per_zone.sum() == pytest.approx(pop.sum(), rel=1e-9)
    assert np.bincount(zi, weights=area, minlength=2).sum() == pytest.approx(whole.area, rel=1e-9)
    assert 0 < per_zone[0] < pop.sum()
    # a zone covering everything takes every block whole
    big = np.array([shapely.box(-1e5, -1e5, 1e5, 1e5)], dtype=object)
    _, _, _, wp = spill.weighted_population(big, blocks, pop)
    assert wp.sum() == pytest.approx(pop.sum())


def test_core_plus_reached_ring_is_the_whole_population():
    b = grid_blocks(16, 10, size=800.0, seed=5)
    plan = column_plan(b, [8])
    rep = spill.spill_report(plan, distances_km=(1.0, 2.0))
    # the complement of the core inside each sub-area, weighted the same way
    dis = plan.dissolved
    for L in (1.0, 2.0):
        ring = shapely.difference(dis.geometry.values, shapely.buffer(dis.geometry.values, -L * KM, quad_segs=16))
        zi, pj, _, wp = spill.weighted_population(ring, plan.blocks.geometry.values,
                                                  plan.blocks["population"].to_numpy(float))
        own = (plan.blocks["subarea"].to_numpy()[pj] - 1) == zi
        ring_pop = np.bincount(zi[own], weights=wp[own], minlength=2)
        sa = rep.subareas[rep.subareas["distance_km"] == L].sort_values("subarea")
        assert (sa["core_population"].to_numpy() + ring_pop) == pytest.approx(sa["population"].to_numpy(), rel=1e-9)
        assert 0 < ring_pop.sum() < sa["population"].sum()


def test_holes_slivers_are_filled_but_enclosed_subareas_stay_open():
    outer = shapely.box(0, 0, 20 * KM, 20 * KM)
    sliver = shapely.box(5 * KM, 5 * KM, 5 * KM + 1, 5 * KM + 1)        # a 1 m² gap
    inner = shapely.box(8 * KM, 8 * KM, 12 * KM, 12 * KM)                # another sub-area
    a = outer.difference(sliver).difference(inner)
    t = spill.spill_territory(np.array([a, inner], dtype=object))
    assert t[0].area == pytest.approx(outer.area - inner.area)
    assert shapely.get_num_interior_rings(t[0]) == 1
    assert t[1].equals(inner)


# ---------------------------------------------------------------- neighbours, islands
def test_neighbouring_municipality_exposure_uniform_density():
    b = grid_blocks(10, 10, population=np.full(100, 50))
    plan = column_plan(b, [5])
    west = gpd.GeoDataFrame({"name": ["西町"], "population": [20_000]},
                            geometry=[shapely.box(-20 * KM, 0, 0, 10 * KM)], crs=CRS)
    rep = spill.spill_report(plan, distances_km=(2.0,), neighbours=west)
    m = rep.municipalities
    row = m[(m["from_subarea"] == 1)].iloc[0]
    assert row["municipality"] == "西町"
    assert row["area_km2"] == pytest.approx(2 * 10, rel=1e-9)     # the 2 km strip along the 10 km edge
    assert row["population"] == pytest.approx(row["area_km2"] * 20_000 / 200, rel=1e-9)
    assert row["population_source"] == spill.SOURCE_UNIFORM
    assert 2 not in set(m["from_subarea"])                      # sub-area 2 is 5 km away
    t = rep.totals.set_index(["distance_km", "subarea"])
    assert t.loc[(2.0, 1), "municipalities_area_km2"] == pytest.approx(row["area_km2"])


def test_water_distance_reaches_islands_across_water():
    # mainland 10 × 6 km (sub-area 1: x < 5 km, sub-area 2: x ≥ 5 km) and a 5 × 5 km island
    # of sub-area 1, 4 km of water east of the mainland
    main = grid_blocks(10, 6)
    isl = grid_blocks(5, 5, x0=14 * KM, seed=1)
    isl["key"] = [f"03205{900000 + i}" for i in range(len(isl))]
    isl["island"] = True
    isl["col"] = -1
    b = pd.concat([main, isl], ignore_index=True)
    plan = column_plan(b, [5], island_exceptions=isl["key"])
    dry = spill.spill_report(plan, distances_km=(2.0,))
    wet = spill.spill_report(plan, distances_km=(2.0,), water_distance_km=5.0)
    dx = dry.exposure.set_index(["from_subarea", "to_subarea"])["area_km2"]
    wx = wet.exposure.set_index(["from_subarea", "to_subarea"])["area_km2"]
    assert dx.loc[(1, 2)] == pytest.approx(12.0) and dx.loc[(2, 1)] == pytest.approx(12.0)
    # 2's messages cross 4 km of water and reach 1 km of the island (5 km − 4 km) …
    assert wx.loc[(2, 1)] == pytest.approx(12.0 + 5.0, rel=1e-3)
    # … and the island's messages reach the mainland's last km of sub-area 2
    island = shapely.box(14 * KM, 0, 19 * KM, 5 * KM)
    tail = shapely.box(9 * KM, 0, 10 * KM, 6 * KM).intersection(island.buffer(5 * KM, quad_segs=64)).area / 1e6
    assert wx.loc[(1, 2)] == pytest.approx(12.0 + tail, rel=1e-3)
    dc = dry.subareas.set_index("subarea")
    wc = wet.subareas.set_index("subarea")
    assert dc.loc[1, "core_area_km2"] == pytest.approx(2.0 + 1.0)      # 1 × 2 mainland + 1 × 1 island
    assert wc.loc[1, "core_area_km2"] == pytest.approx(2.0)            # the island is reached throughout
    assert wc.loc[1, "water_distance_km"] == 5.0
    with pytest.raises(UserError):
        spill.spill_report(plan, water_distance_km=-1)


# ---------------------------------------------------------------- raster population
def test_raster_population_equals_block_population_on_aligned_cells(tmp_path):
    import rasterio

    tif = spill.write_synthetic_population_raster(tmp_path / "pop.tif", (0, 0, 16 * KM, 8 * KM), CRS,
                                                  cell_m=500.0, seed=7, total=50_000)
    with rasterio.open(tif) as src:
        grid = src.read(1)
    # blocks = the raster cells, population = the cell values (row 0 is the top)
    b = grid_blocks(32, 16, size=500.0, population=grid[::-1].ravel().astype(int))
    plan = column_plan(b, [11, 22])
    rep = spill.spill_report(plan, distances_km=(1.0, 2.0), population_raster=tif)
    sa = rep.subareas
    blk = sa[sa["population_source"] == "townblocks"].set_index(["distance_km", "subarea"])
    ras = sa[sa["population_source"] == "raster"].set_index(["distance_km", "subarea"])
    assert ras["population"].to_numpy() == pytest.approx(blk["population"].to_numpy(), rel=1e-6)
    assert ras["core_population"].to_numpy() == pytest.approx(blk["core_population"].to_numpy(), rel=1e-6)
    ex = rep.exposure
    eb = ex[ex["population_source"] == "townblocks"].set_index(["distance_km", "from_subarea", "to_subarea"])
    er = ex[ex["population_source"] == "raster"].set_index(["distance_km", "from_subarea", "to_subarea"])
    assert er["population"].to_numpy() == pytest.approx(eb["population"].reindex(er.index).to_numpy(), rel=1e-6)
    assert rep.parameters["population_sources"] == ["townblocks", "raster:pop.tif"]
    assert grid.sum() == pytest.approx(50_000, abs=600)


def test_raster_in_lonlat_is_reprojected(tmp_path):
    tif = spill.write_synthetic_population_raster(tmp_path / "ll.tif", (141.0, 39.3, 141.2, 39.5), "EPSG:6668",
                                                  cell_m=0.01, seed=1, total=10_000)
    g = spill.read_population_raster(tif, CRS)
    assert g.population.sum() == pytest.approx(10_000, abs=300)
    area = shapely.area(g.cells)
    assert area.min() > 0.5e6 and area.max() < 1.5e6            # ~0.01° ≈ 0.9 × 1.1 km cells in metres


# ---------------------------------------------------------------- thresholds
def test_flags_and_area_needed():
    b = grid_blocks(30, 10)
    plan = column_plan(b, [10, 20])                              # three 100 km² squares
    rep = spill.spill_report(plan, distances_km=(2.0,), target_share=0.5)
    sa = rep.subareas.set_index("subarea")
    assert sa["below_target"].all()                              # 36 % < 50 %
    assert sa["circle_below_target"].all()                       # 100 < 146 km²
    assert sa.loc[1, "circle_min_area_km2"] == pytest.approx(146.48, abs=0.01)
    assert sa.loc[1, "area_needed_same_shape_km2"] == pytest.approx(4 / math.pi * 146.48, rel=0.003)
    assert sa.loc[1, "area_shortfall_km2"] == pytest.approx(sa.loc[1, "area_needed_same_shape_km2"] - 100)
    ok = spill.spill_report(plan, distances_km=(1.0,), target_share=0.3).subareas
    assert not ok["below_target"].any() and (ok["area_shortfall_km2"] == 0).all()


@pytest.mark.parametrize("bad", ["", "abc", "-1", "0", "2,x", "60", "nan"])
def test_bad_distances_are_user_errors(bad):
    with pytest.raises(UserError):
        spill.parse_distances(bad)


@pytest.mark.parametrize("bad", ["0", "1", "1.5", "x", "-0.2"])
def test_bad_target_is_user_error(bad):
    with pytest.raises(UserError):
        spill.check_share(bad)


# ---------------------------------------------------------------- fitting L
@pytest.mark.parametrize("L,seed", [(2.5, 0), (1.6, 1), (3.3, 2)])
def test_fit_recovers_known_L(L, seed):
    obs = spill.simulate_observations(L, n=400, scale_km=0.3, seed=seed)
    fit = spill.fit_spill_distance(obs)
    lo, hi = fit["interval"]
    assert lo <= L <= hi
    assert abs(fit["L_km"] - L) < 0.2
    assert hi - lo < 0.6


def test_fit_on_separated_data_sits_in_the_gap():
    obs = pd.DataFrame({"distance_km": [0.0, 1.8, 1.9, 2.3, 3.0, 5.0, 9.0],
                        "received": [True, True, True, False, False, False, False]})
    fit = spill.fit_spill_distance(obs)
    assert 1.9 < fit["L_km"] < 2.3
    lo, hi = fit["interval"]
    assert lo <= 1.95 and hi >= 2.25 and hi < 2.8
    assert fit["misclassified"] == 0


def test_fit_needs_both_outcomes():
    with pytest.raises(UserError):
        spill.fit_spill_distance(pd.DataFrame({"distance_km": [1.0, 2.0], "received": [False, False]}))


# ---------------------------------------------------------------- report object
def test_report_json_and_write_are_deterministic(tmp_path):
    b = grid_blocks(12, 6, seed=2)
    plan = column_plan(b, [6])
    rep = spill.spill_report(plan)
    d = rep.to_dict()
    assert set(d) >= {"parameters", "subareas", "exposure", "totals"}
    assert d["parameters"]["distances_km"] == [2.0, 2.5, 3.0]
    assert len(d["subareas"]) == 6
    a = rep.write(tmp_path / "a")
    b2 = spill.spill_report(plan).write(tmp_path / "b")
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b2]
    with pytest.raises(UserError):
        rep.write(tmp_path / "a")                       # never overwrite without force
    rep.write(tmp_path / "a", force=True)


def test_parallel_buffer_does_not_depend_on_workers():
    rng = np.random.default_rng(11)
    geoms = np.array([star(rng.uniform(0.3, 1.0, 30), 8 * KM) for _ in range(9)], dtype=object)
    d = np.repeat([-2 * KM, 2 * KM, -3 * KM], 3)
    one = spill.parallel_buffer(geoms, d, workers=1)
    two = spill.parallel_buffer(geoms, d, workers=2)
    assert all(a.equals_exact(b, 0.0) for a, b in zip(one, two))
    assert shapely.area(one) == pytest.approx(shapely.area(shapely.buffer(geoms, d, quad_segs=16)))


def test_islands_from_a_water_layer():
    main = grid_blocks(10, 6)
    isl = grid_blocks(3, 3, x0=14 * KM, seed=1)                     # unflagged, 4 km offshore
    isl["key"] = [f"03205{900000 + i}" for i in range(len(isl))]
    lake = grid_blocks(2, 2, x0=-30 * KM, seed=2)                   # detached but far from water
    lake["key"] = [f"03205{800000 + i}" for i in range(len(lake))]
    b = pd.concat([main, isl, lake], ignore_index=True)
    sea = gpd.GeoDataFrame(geometry=[shapely.box(10 * KM, -5 * KM, 40 * KM, 10 * KM).difference(
        shapely.box(14 * KM, 0, 17 * KM, 3 * KM))], crs=CRS).to_crs("EPSG:6668")
    mask = spill.island_blocks(b, sea)
    assert mask.sum() == 9 and mask[len(main):len(main) + 9].all()
    assert not spill.island_blocks(b).any()                         # no KIGO_I flag set


def test_observations_and_points_saved_by_excel_in_cp932_are_read(tmp_path):
    from subdivide.analysis.spill import read_observations, read_points

    obs = tmp_path / "obs.csv"
    obs.write_bytes("point,subarea,received\n石鳥谷総合支所,花巻地域,no\n".encode("cp932"))
    assert read_observations(obs)["received"].tolist() == [False]
    pts = tmp_path / "pts.csv"
    pts.write_bytes("name,latitude,longitude\n花巻市役所,39.388609,141.116854\n".encode("cp932"))
    got = read_points(pts)
    assert got.geometry.x.round(4).tolist() == [141.1169]


# ---------------------------------------------------------------- the shapes behind the figures
def test_report_carries_the_shapes_its_figures_were_measured_on(sample_plan, tmp_path):
    """SpillReport.geometry: the territories, cores and reaches (zone l·k + i). The core
    shares are their areas; the exposure areas are the reaches' parts in the other
    sub-areas' blocks; the tolerated distance is where these cores keep the target. Not
    written anywhere."""
    from subdivide.model.reach import BufferLadder

    rep = spill.spill_report(sample_plan, distances_km=(2.0, 3.0))
    geo = rep.geometry
    k = len(sample_plan.dissolved)
    assert list(geo.subarea) == list(sample_plan.dissolved["subarea"]) and geo.distances_km == (2.0, 3.0)
    assert len(geo.core) == len(geo.reach) == 2 * k
    sa = rep.subareas[rep.subareas["population_source"] == "townblocks"]
    for li, L in enumerate(geo.distances_km):
        core, reach = geo.at(L)
        assert len(core) == k and all(a is b for a, b in zip(core, geo.core[li * k:(li + 1) * k]))
        rows = sa[sa["distance_km"] == L].set_index("subarea").loc[geo.subarea]
        assert rows["core_share"].to_numpy() == pytest.approx(shapely.area(core) / shapely.area(geo.territory),
                                                              rel=1e-12)
        assert np.all(shapely.within(shapely.buffer(core, -1.0), geo.territory))
        ex = rep.exposure[(rep.exposure["population_source"] == "townblocks") & (rep.exposure["distance_km"] == L)]
        pos = {s: i for i, s in enumerate(geo.subarea)}
        d = sample_plan.dissolved.geometry.values
        pieces = shapely.intersection(reach[[pos[s] for s in ex["from_subarea"]]], d[[pos[s] for s in ex["to_subarea"]]])
        assert shapely.area(pieces) / 1e6 == pytest.approx(ex["area_km2"].to_numpy(), rel=1e-9)
    with pytest.raises(KeyError):
        geo.at(2.5)
    tol = sa[sa["distance_km"] == 2.0].set_index("subarea").loc[geo.subarea, "tolerated_distance_km"].to_numpy()
    kept = shapely.area(BufferLadder(geo.territory, sign=-1).buffer(-tol * 1e3)) / shapely.area(geo.territory)
    assert kept == pytest.approx(rep.parameters["target_share"], abs=2e-3)
    assert "geometry" not in rep.to_dict() and "POLYGON" not in rep.to_json()
    assert sorted(p.name for p in rep.write(tmp_path)) == sorted(
        [f"spill_{n}.csv" for n in rep.tables()] + ["spill.json"])


def test_merge_advice_is_the_same_union_seen_from_both_sides():
    """The union of two neighbours is made once: its core share is the same whichever of
    the two is below the target."""
    b = grid_blocks(17, 12, seed=3)
    plan = column_plan(b, [5, 9, 13])                  # strips 5, 4, 4, 4 km wide: all below 50 % at 2 km
    sa = spill.spill_report(plan, distances_km=(2.0,)).subareas
    sa = sa[sa["population_source"] == "townblocks"].set_index("subarea")
    assert sa["below_target"].all() and (sa["merged_core_share"] > sa["core_share"] + 0.1).all()
    mutual = 0
    for s, r in sa.iterrows():
        other = sa.loc[r["merge_with_subarea"]]
        if other["merge_with_subarea"] == s:
            mutual += 1
            assert other["merged_core_share"] == r["merged_core_share"]
    assert mutual >= 2


def test_report_without_advice_has_the_same_figures(sample_plan):
    full = spill.spill_report(sample_plan, distances_km=(2.0,))
    lean = spill.spill_report(sample_plan, distances_km=(2.0,), advice=False)
    cols = [c for c in lean.subareas.columns]
    assert "tolerated_distance_km" not in cols and "advice" not in cols and "below_target" in cols
    pd.testing.assert_frame_equal(lean.subareas, full.subareas[cols])
    pd.testing.assert_frame_equal(lean.exposure, full.exposure)
    assert lean.parameters["advice"] is False and "advice" not in full.parameters
    assert "below" in spill.format_summary(lean)
