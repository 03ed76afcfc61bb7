"""The planner's objective: residents spared an alert (subdivide.make.regionalize.objective,
subdivide.model.scenarios). Hand-computable strips, invariants with hypothesis, agreement
of the population-point reach with the exact areal model, the river-corridor hazard
layer, and the ranking on real polygons (鳥取市)."""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from subdivide.make.regionalize import AlertModel, regionalize
from subdivide.model.areal import zone_population
from subdivide.model.reach import core_share, spill_territory
from subdivide.model.scenarios import (
    Scenarios,
    block_scenarios,
    disc_scenarios,
    polygon_scenarios,
    population_points,
)

CRS = "EPSG:6674"   # JGD2011 plane-rectangular V (鳥取)


def strip(n=10, size=1000.0, pop=100):
    """n square blocks of size×size metres in a row, ``pop`` residents each."""
    geoms = [shapely.box(i * size, 0, (i + 1) * size, size) for i in range(n)]
    return gpd.GeoDataFrame({"key": [f"{i:03d}" for i in range(n)], "population": [pop] * n},
                            geometry=geoms, crs=CRS)


def one_event(geom) -> Scenarios:
    return Scenarios(np.asarray([geom], dtype=object), np.ones(1), ("event",), "test")


def test_strip_spared_count_by_hand():
    """10 blocks of 1 km, 100 residents each, split 5|5; an event inside block 0.
    Sub-area 1 (blocks 0–4) is sent: 500 residents; spill L reaches into block 5 over
    the first L metres: at L = 0.5 km the 5 of 10 grid columns (100 m) whose centres lie
    within 0.5 km, at L = 1 km all of block 5 and none of block 6."""
    b = strip()
    m = AlertModel.build(b, one_event(shapely.box(100, 100, 400, 400)), band_km=(0.5, 1.0), spacing_m=100)
    labels = np.r_[np.zeros(5, int), np.ones(5, int)]
    s = m.score(labels, 2)
    assert s.recipients == pytest.approx([550.0, 600.0])
    assert s.spared_share == pytest.approx([450 / 1000, 400 / 1000])
    assert s.over_alert == pytest.approx([550 - 9.0, 600 - 9.0])      # 0.3 × 0.3 km² of block 0's 1 km²
    assert s.missed == pytest.approx([0.0, 0.0])
    assert s.mean == pytest.approx(0.425) and s.worst == pytest.approx(0.4)
    # an event on the boundary touches both sub-areas: everyone is alerted
    both = AlertModel.build(b, one_event(shapely.box(4900, 100, 5100, 200)), band_km=(1.0,), spacing_m=100)
    assert both.score(labels, 2).spared_share == pytest.approx([0.0])
    # whole-municipality delivery spares nobody
    assert m.whole_municipality().spared_share == pytest.approx([0.0, 0.0])


def test_send_share_rule_and_missed_residents():
    """With --send-share 0.8 an event holding 90 % of its residents in sub-area 1 goes
    to sub-area 1 only; the 10 % in sub-area 2 beyond the spill are missed."""
    b = strip()
    ev = one_event(shapely.box(0, 0, 1000, 1000).union(shapely.box(9000, 0, 9111.111, 1000)))
    labels = np.r_[np.zeros(5, int), np.ones(5, int)]
    touch = AlertModel.build(b, ev, band_km=(1.0,), spacing_m=100).score(labels, 2)
    share = AlertModel.build(b, ev, band_km=(1.0,), spacing_m=100, send_share=0.8).score(labels, 2)
    assert touch.spared_share == pytest.approx([0.0]) and touch.missed == pytest.approx([0.0])
    assert share.spared_share == pytest.approx([0.4])
    assert share.missed == pytest.approx([100 * 0.1111111], rel=1e-4)


def test_incremental_moves_equal_a_fresh_evaluation(synthetic_blocks):
    b = synthetic_blocks(200, seed=3)
    m = AlertModel.build(b, disc_scenarios(b, per_radius=12, seed=1))
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, len(b))
    st_ = m.state(labels, 5)
    for _ in range(40):
        blk, dest = int(rng.integers(len(b))), int(rng.integers(5))
        st_.move([blk], dest)
        labels[blk] = dest
    fresh = m.state(labels, 5)
    assert st_.value() == pytest.approx(fresh.value(), abs=1e-12)
    assert np.allclose(st_.recipients(), fresh.recipients())


def test_slot_layout_is_the_same_whatever_the_chunk(synthetic_blocks, monkeypatch):
    """The (block, point, L) slots are built and counted in chunks (memory at 50,000 blocks,
    issue 19): tiny chunks give the same layout, the same counts and the same moves."""
    import subdivide.make.regionalize.objective as obj

    b = synthetic_blocks(300, seed=5)
    scen = disc_scenarios(b, per_radius=12, seed=2)
    labels = np.random.default_rng(1).integers(0, 6, len(b))
    whole = AlertModel.build(b, scen)
    ref = whole.state(labels, 6)
    monkeypatch.setattr(obj, "SLOT_CHUNK", 97)
    chunked = AlertModel.build(b, scen)
    ptr, lp = chunked._slot_layout
    assert np.array_equal(ptr, whole._slot_layout[0]) and np.array_equal(lp, whole._slot_layout[1])
    # every pair counts once at each L from its level on: lp decodes to (L, point) pairs in range
    P, nl = whole.n_points, len(whole.band_km)
    assert len(lp) == int(np.sum(nl - whole.reach.data)) and lp.min() >= 0 and lp.max() < nl * P
    st_ = chunked.state(labels, 6)
    assert np.array_equal(st_.count, ref.count) and np.array_equal(st_.popm, ref.popm)
    for blk, dest in ((3, 0), (150, 5), (299, 2)):
        st_.move([blk], dest)
        ref.move([blk], dest)
    assert np.array_equal(st_.popm, ref.popm) and st_.value() == ref.value()


def test_reach_pairs_are_the_same_whatever_the_chunk(sample_blocks, monkeypatch):
    """Points are related to blocks a chunk at a time (memory): the same pairs, distances and
    order as in one go, on the 花巻 sample."""
    import subdivide.model.scenarios as sc

    pts = population_points(sample_blocks, 400.0)
    whole = sc.reach_pairs(sample_blocks, pts, 3300.0, simplify_m=40.0)
    monkeypatch.setattr(sc, "REACH_POINT_CHUNK", 37)
    chunked = sc.reach_pairs(sample_blocks, pts, 3300.0, simplify_m=40.0)
    assert len(whole[0]) > 100_000
    assert all(np.array_equal(a, b) for a, b in zip(whole, chunked))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), k=st.integers(2, 8), send=st.sampled_from([0.0, 0.3]))
def test_invariants(synthetic_blocks, seed, k, send):
    """Under any labelling: nobody in danger is missed when every touched sub-area is
    sent; recipients ≥ residents in danger (spared ≤ population − endangered), ≤ the
    population, and grow with L; refining a plan (splitting a sub-area) never alerts
    more people for any event, and alerts exactly as many for an event touching every
    part of the split sub-area."""
    b = synthetic_blocks(150, seed=seed % 7)
    rng = np.random.default_rng(seed)
    m = AlertModel.build(b, disc_scenarios(b, radii_km=(1, 3), per_radius=10, seed=seed),
                         band_km=(1.6, 2.5, 3.3), send_share=send)
    coarse = rng.integers(0, k, len(b))
    split = int(rng.integers(k))
    fine = np.where((coarse == split) & (rng.random(len(b)) < 0.5), k, coarse)
    pop = m.population
    endangered = np.asarray(m.footprints.endangered.sum(axis=1)).ravel()
    rc, rf = m.state(coarse, k).recipients(), m.state(fine, k + 1).recipients()
    assert (rc <= pop + 1e-6).all() and (np.diff(rc, axis=0) >= -1e-6).all()
    if send == 0:
        assert (rc >= endangered[None, :] - 1e-6).all() and (rf >= endangered[None, :] - 1e-6).all()
        assert np.allclose(m.score(coarse, k).missed, 0.0, atol=1e-6)
        assert (rf <= rc + 1e-6).all()
        t = m.footprints.touched
        both = (np.asarray(t[:, fine == split].sum(axis=1)).ravel() > 0) & \
               (np.asarray(t[:, fine == k].sum(axis=1)).ravel() > 0)
        assert np.allclose(rf[:, both], rc[:, both])
    else:
        s = m.score(coarse, k)
        assert (s.missed >= -1e-9).all() and (s.spared_share <= 1 - endangered @ m.footprints.weights / pop + 1e-9).all()


def test_population_points_keep_every_resident(sample_blocks):
    pts = population_points(sample_blocks, 400.0)
    got = np.bincount(pts.member_block, weights=pts.member_weight, minlength=len(sample_blocks))
    assert np.allclose(got, sample_blocks["population"].to_numpy())
    assert pts.weight.sum() == pytest.approx(sample_blocks["population"].sum())


def test_point_reach_agrees_with_the_exact_areal_model(sample_plan):
    """For each sub-area of the trial's 花巻 plan: residents within L of it from the
    population points vs the exact model (spill territory ⊕ L, areal weighting)."""
    blocks = sample_plan.blocks
    lab = blocks["subarea"].to_numpy() - 1
    k = sample_plan.k
    m = AlertModel.build(blocks, block_scenarios(blocks), band_km=(2.0, 3.0))
    st_ = m.state(lab, k)
    terr = spill_territory(sample_plan.dissolved.geometry.values)
    for li, L in enumerate((2000.0, 3000.0)):
        for a in range(k):
            points = st_.popm[li][np.flatnonzero(np.arange(1 << k) & (1 << a))].sum()
            exact = zone_population(shapely.buffer(terr[a:a + 1], L), blocks.geometry.values,
                                    blocks["population"].to_numpy())[0]
            assert points == pytest.approx(exact, rel=0.02, abs=0.005 * m.population), (L, a)


def test_scenario_families_are_seeded(sample_blocks):
    a = disc_scenarios(sample_blocks, seed=4)
    b = disc_scenarios(sample_blocks, seed=4)
    c = disc_scenarios(sample_blocks, seed=5)
    assert a.labels == b.labels and np.allclose(a.weights, b.weights)
    assert a.labels != c.labels
    assert len(a) <= 3 * 48 and np.isclose(a.weights.sum(), 3.0)     # each radius weighs 1
    blk = block_scenarios(sample_blocks)
    assert np.isclose(blk.weights.sum(), 1.0) and len(blk) == int((sample_blocks["population"] > 0).sum())


def grid(nx=20, ny=12, size=500.0, pop=50):
    geoms, keys = [], []
    for j in range(ny):
        for i in range(nx):
            geoms.append(shapely.box(i * size, j * size, (i + 1) * size, (j + 1) * size))
            keys.append(f"31201{j:02d}{i:02d}")
    n = len(keys)
    return gpd.GeoDataFrame({"key": keys, "name": [f"川沿{k[-4:]}" for k in keys], "muni_code": "31201",
                             "population": pop, "households": pop // 2, "area_official_m2": np.nan,
                             "island": False, "enclave": False, "multipart": False, "repaired": False,
                             "population_unknown": False, "households_unknown": False},
                            index=range(n), geometry=geoms, crs=CRS)


@pytest.mark.slow
def test_river_corridor_gets_its_own_subarea():
    """A flood zone along a river (x < 1.5 km of a 10 km × 6 km grid): the best k = 2
    plan puts the corridor in a sub-area of its own, its boundary on the zone's edge, and
    spares more residents than the compactness plan."""
    b = grid()
    flood = gpd.GeoDataFrame(geometry=[shapely.box(-200, -200, 1500, 6200)], crs=CRS)
    scen = polygon_scenarios(flood, CRS, split="zones")
    res = regionalize(b, k=2, seed=0, restarts=4, scenarios=scen, alert_band_km=(2.0,))
    plan = res.best
    x = shapely.get_x(shapely.centroid(plan.blocks.geometry.values))
    sub = plan.blocks["subarea"].to_numpy()
    west = sub[np.argmin(x)]
    assert x[sub == west].max() < 1500 < x[sub != west].min()
    c = res.candidates[0]
    assert c.spared == pytest.approx(1 - 3500 / 10000, abs=0.03)       # 1.5 km + L = 2 km of 10 km
    comp = regionalize(b, k=2, seed=0, restarts=4, objective="compactness").best
    comp_score = AlertModel.build(b, scen, band_km=(2.0,)).score(comp.blocks["subarea"].to_numpy() - 1, 2)
    assert c.spared > comp_score.mean + 0.05


def test_same_seed_same_candidates(synthetic_blocks):
    b = synthetic_blocks(200, seed=9)
    r1 = regionalize(b, k=[1, 3, 4], seed=2, restarts=2)
    r2 = regionalize(b, k=[1, 3, 4], seed=2, restarts=2)
    assert r1.table.equals(r2.table) and r1.summary == r2.summary
    for c1, c2 in zip(r1.candidates, r2.candidates):
        assert (c1.plan.blocks["subarea"].to_numpy() == c2.plan.blocks["subarea"].to_numpy()).all()
    k1 = r1.table.set_index("k").loc[1]
    assert k1["spared_share_mean"] == 0 and k1["feasible"]


@pytest.mark.slow
def test_tottori_city_ranking_follows_the_objective(shared_data):
    """鳥取市 (666 blocks, 765 km²), 50 km² floor: the recommended plan is the smallest k
    within 2 points of the best expected spared share, spares at least as many residents
    as the plan the compactness ranking puts first, and the table reports core shares."""
    from subdivide.io.townblocks import read_townblocks

    b, _ = read_townblocks(shared_data / "tottori_31_estat2015" / "h27ka31.shp", muni_code="31201")
    res = regionalize(b, k=range(1, 15), min_area_km2=50, seed=0)
    t = res.table[res.table["feasible"]]
    rec = t[t["recommended"]].iloc[0]
    best = t["spared_share_mean"].max()
    assert rec["rank"] == 1 and rec["spared_share_mean"] >= best - 0.02
    assert (t[t["k"] < rec["k"]]["spared_share_mean"] < best - 0.02).all()
    old = regionalize(b, k=range(2, 15), min_area_km2=50, seed=0, objective="compactness").best
    old_score = AlertModel.build(b, disc_scenarios(b, seed=0)).score(old.blocks["subarea"].to_numpy() - 1, old.k)
    assert rec["spared_share_mean"] >= old_score.mean - 0.02
    shares = core_share(res.best.dissolved.geometry.values, 2000)
    assert rec["min_core_share"] == pytest.approx(shares.min(), abs=0.02)
    assert "spares" in res.summary and f"k = {int(rec['k'])}" in res.summary


def test_hazard_layer_scenarios_from_polygons_and_rasters(sample_blocks, tmp_path):
    """Polygons: one event per feature / connected zone / layer, weights from a column;
    rasters (subdivide.model.hazard's seeded synthetic depth): pixels above the threshold,
    polygonised; every footprint lies within the raster and exceeds the threshold."""
    import rasterio

    from subdivide.core.errors import UserError
    from subdivide.model.hazard import write_synthetic_hazard_raster
    from subdivide.model.scenarios import footprint_matrix, raster_scenarios

    crs = sample_blocks.crs
    x0, y0, x1, y1 = sample_blocks.total_bounds
    a, b_, c = shapely.box(x0, y0, x0 + 3000, y1), shapely.box(x0 + 2000, y0, x0 + 5000, y1), shapely.box(x1 - 3000, y0, x1, y1)
    layer = gpd.GeoDataFrame({"freq": [1.0, 1.0, 2.0]}, geometry=[a, b_, c], crs=crs)
    feat = polygon_scenarios(layer, crs, split="feature", weight_column="freq")
    zones = polygon_scenarios(layer, crs, split="zones")
    whole = polygon_scenarios(layer, crs, split="layer")
    assert len(feat) == 3 and np.allclose(feat.weights, [0.25, 0.25, 0.5])
    assert len(zones) == 2 and len(whole) == 1      # a and b overlap: one zone
    with pytest.raises(UserError, match="freq2"):
        polygon_scenarios(layer, crs, weight_column="freq2")
    tif = write_synthetic_hazard_raster(tmp_path / "depth.tif", tuple(sample_blocks.total_bounds), crs,
                                        resolution_m=500, seed=3)
    with rasterio.open(tif) as src:
        depth = src.read(1)
    thr = float(np.quantile(depth, 0.8))
    sc = raster_scenarios(tif, crs, threshold=thr)
    assert len(sc) >= 1 and np.isclose(sc.weights.sum(), 1.0)
    flooded = shapely.area(shapely.union_all(sc.footprints))
    assert flooded == pytest.approx((depth > thr).sum() * 500.0 ** 2, rel=1e-6)
    fp = footprint_matrix(sc, sample_blocks)
    assert fp.endangered.sum() > 0 and (fp.endangered.data >= 0).all()
    with pytest.raises(UserError, match="exceeds"):
        raster_scenarios(tif, crs, threshold=float(depth.max()) + 1)
