"""Site lists → coverage: path-loss models against textbook values, the §3.6 margin,
wedges, the best-server partition, the synthetic generator and site-list errors."""
import math
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings, strategies as st
from pyproj import Transformer

from subdivide.core.errors import UserError
from subdivide.analysis.sites import (
    PropagationRangeWarning, cell_radius_km, cost231_hata_loss, coverage_from_sites, hysteresis_margin_km,
    okumura_hata_loss, path_loss_db, read_sites, sector_wedges, synthetic_sites,
)

CRS = "EPSG:6678"
TO_GEO = Transformer.from_crs(CRS, "EPSG:6668", always_xy=True)


def site_rows(xy, az=(0.0, 120.0, 240.0), bw=65.0, carrier="A", band=800.0, height=40.0):
    """Sector rows at projected points ``xy`` (metres, zone X)."""
    rows = []
    for k, (x, y) in enumerate(xy):
        lon, lat = TO_GEO.transform(x, y)
        for j, a in enumerate(az):
            rows.append(dict(carrier=carrier, site_id=f"S{k}", cell_id=f"S{k}-{j}", lat=lat, lon=lon,
                             azimuth_deg=a, beamwidth_deg=bw, height_m=height, band_mhz=band))
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def square_outline():
    return gpd.GeoSeries([shapely.box(20_000, -80_000, 50_000, -50_000)], crs=CRS)


# ---------------------------------------------------------------------- path loss
def test_okumura_hata_textbook_values():
    # Hata (1980), small/medium city, f 900 MHz, hb 30 m, hm 1.5 m: 126.4 dB at 1 km,
    # + (44.9 − 6.55 log 30) = 35.22 dB per decade → 161.6 dB at 10 km
    assert okumura_hata_loss(900, 30, 1.5, 1) == pytest.approx(126.40, abs=0.01)
    assert okumura_hata_loss(900, 30, 1.5, 10) == pytest.approx(161.63, abs=0.01)
    # suburban: − 2 (log(900/28))² − 5.4 = − 9.94 dB; open: − 28.51 dB
    assert okumura_hata_loss(900, 30, 1.5, 1, environment="suburban") == pytest.approx(116.46, abs=0.01)
    assert okumura_hata_loss(900, 30, 1.5, 1, environment="open") == pytest.approx(97.90, abs=0.01)


def test_cost231_textbook_values():
    assert cost231_hata_loss(1800, 30, 1.5, 1) == pytest.approx(136.20, abs=0.01)
    assert cost231_hata_loss(1800, 30, 1.5, 1, metropolitan=True) == pytest.approx(139.20, abs=0.01)
    # the two models nearly meet at 1500 MHz: 46.3 − 69.55 + (33.9 − 26.16)·log 1500 = 1.33 dB
    gap = cost231_hata_loss(1500, 50, 1.5, 5) - okumura_hata_loss(1500, 50, 1.5, 5)
    assert gap == pytest.approx(1.333, abs=0.001)


def test_path_loss_is_vectorised_and_picks_the_model_by_frequency():
    f = np.array([800.0, 1800.0])
    loss = path_loss_db(f, 40.0, 1.5, np.array([2.0, 2.0]), environment="urban")
    assert loss[0] == pytest.approx(okumura_hata_loss(800, 40, 1.5, 2))
    assert loss[1] == pytest.approx(cost231_hata_loss(1800, 40, 1.5, 2))
    d = np.linspace(1, 20, 50)
    assert np.all(np.diff(okumura_hata_loss(800, 40, 1.5, d)) > 0)


@pytest.mark.parametrize("call", [
    lambda: okumura_hata_loss(2100, 40, 1.5, 2),        # frequency above 1500 MHz
    lambda: okumura_hata_loss(800, 15, 1.5, 2),         # base below 30 m
    lambda: okumura_hata_loss(800, 40, 1.5, 0.3),       # distance below 1 km
    lambda: cost231_hata_loss(3500, 40, 1.5, 2),        # frequency above 2000 MHz
    lambda: cost231_hata_loss(1800, 40, 12, 2),         # mobile above 10 m
])
def test_out_of_range_use_warns(call):
    with pytest.warns(PropagationRangeWarning, match="outside"):
        call()


def test_in_range_use_is_silent_and_flags_are_returned():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        okumura_hata_loss(800, 40, 1.5, np.array([1.0, 5.0, 20.0]))
    with pytest.warns(PropagationRangeWarning):
        _, flags = okumura_hata_loss(800, 40, 1.5, np.array([0.5, 5.0, 25.0]), return_flags=True)
    assert flags.tolist() == [True, False, True]


@given(f=st.floats(150, 2000), hb=st.floats(30, 200), eirp=st.floats(40, 65), rx=st.floats(-110, -80))
@settings(max_examples=60, deadline=None)
def test_cell_radius_inverts_the_path_loss(f, hb, eirp, rx):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PropagationRangeWarning)
        r = float(cell_radius_km(f, hb, eirp_dbm=eirp, min_rx_dbm=rx, max_km=1e6))
        loss = float(path_loss_db(f, hb, 1.5, r, environment="suburban"))
    assert loss == pytest.approx(eirp - rx, abs=1e-6)


def test_radius_shrinks_with_frequency_and_warns_beyond_20_km():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PropagationRangeWarning)
        r = cell_radius_km(np.array([800.0, 1800.0]), 40.0)
    assert r[0] > 2 * r[1] > 0
    with pytest.warns(PropagationRangeWarning, match="d_km"):
        cell_radius_km(800, 60, environment="open")


@given(d=st.floats(0.5, 30), delta=st.floats(0, 30), n=st.floats(2, 5))
@settings(max_examples=60, deadline=None)
def test_margin_balances_the_two_sites(d, delta, n):
    """At x past the midpoint, the serving site is Δ dB weaker than the other one."""
    x = float(hysteresis_margin_km(d, delta, n))
    assert 0 <= x < d / 2
    diff = 10 * n * math.log10((d / 2 + x) / (d / 2 - x))
    assert diff == pytest.approx(delta, abs=1e-6)


def test_margin_matches_the_domain_brief_range():
    # DOMAIN §3.6: D = 7–14 km, Δ 12–20 dB, n 3.4 gives roughly 1.3–4 km
    assert 1.2 < hysteresis_margin_km(7, 12) < 1.5
    assert 3.5 < hysteresis_margin_km(14, 20) < 4.2


# ---------------------------------------------------------------------- wedges
def test_sector_wedges_area_and_orientation():
    sites = site_rows([(30_000.0, -60_000.0)], az=(90.0,), bw=60.0)
    w = sector_wedges(sites, crs=CRS, radius_km=5.0, n_arc=64)
    g = w.geometry.iloc[0]
    assert g.is_valid
    assert g.area == pytest.approx(math.pi * 5000 ** 2 / 6, rel=0.01)
    c = g.centroid
    assert c.x > 30_000 + 2000 and abs(c.y + 60_000) < 1.0  # points east


def test_omni_wedge_is_a_disc():
    sites = site_rows([(30_000.0, -60_000.0)], az=(0.0,), bw=360.0)
    g = sector_wedges(sites, crs=CRS, radius_km=2.0).geometry.iloc[0]
    assert g.is_valid and g.area == pytest.approx(math.pi * 2000 ** 2, rel=0.01)


# ---------------------------------------------------------------------- partition
def test_partition_tiles_the_plane_without_overlap(square_outline):
    sites = synthetic_sites(square_outline, isd_km=6, seed=3, jitter=0.3)
    cov = coverage_from_sites(sites, crs=CRS, widen=False)
    g = np.asarray(cov["nominal"].values)
    union = shapely.union_all(g)
    assert shapely.area(g).sum() == pytest.approx(union.area, rel=1e-6)   # no overlap
    assert square_outline.iloc[0].difference(union).area < 1.0              # no gap inside
    # every sector's polygon holds its own site's best-served direction
    assert cov["margin_km"].eq(0).all()


def test_widening_moves_the_border_by_the_margin():
    """Two omni sites 10 km apart: the widened cell of A reaches D/2 + x towards B."""
    x0, y0, d = 30_000.0, -60_000.0, 10_000.0
    sites = site_rows([(x0, y0), (x0 + d, y0)], az=(0.0,), bw=360.0)
    cov = coverage_from_sites(sites, crs=CRS, hysteresis_db=4, shadow_db=12, radius_km=30.0)
    a = cov[cov["site_id"] == "S0"].iloc[0]
    x = hysteresis_margin_km(10.0, 16.0) * 1000
    reach = shapely.intersection(a.geometry, shapely.LineString([(x0, y0), (x0 + d, y0)])).length
    assert reach == pytest.approx(d / 2 + x, abs=1.0)
    assert a["nearest_site_km"] == pytest.approx(10.0, abs=1e-3)
    assert a["margin_km"] == pytest.approx(x / 1000)
    # the nominal (un-widened) border is the bisector
    nom = shapely.intersection(a["nominal"], shapely.LineString([(x0, y0), (x0 + d, y0)])).length
    assert nom == pytest.approx(d / 2, abs=1.0)


def test_sectors_split_the_site_cell_by_bisectors():
    sites = site_rows([(30_000.0, -60_000.0)], az=(0.0, 120.0, 240.0))
    cov = coverage_from_sites(sites, crs=CRS, radius_km=3.0, widen=False)
    areas = shapely.area(np.asarray(cov["nominal"].values))
    assert areas == pytest.approx([math.pi * 3000 ** 2 / 3] * 3, rel=0.02)
    north = cov[cov["cell_id"] == "S0-0"]["nominal"].iloc[0]
    assert north.contains(shapely.Point(30_000, -58_000))


def test_layers_are_partitioned_separately():
    """800 and 2100 MHz sectors at the same sites overlap: each band is its own layer."""
    a = site_rows([(30_000.0, -60_000.0), (37_000.0, -60_000.0)], band=800.0)
    b = site_rows([(30_000.0, -60_000.0), (37_000.0, -60_000.0)], band=2100.0)
    b["cell_id"] = b["cell_id"] + "h"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PropagationRangeWarning)
        cov = coverage_from_sites(pd.concat([a, b]), crs=CRS)
    lo = cov[cov["band"] == 800.0].union_all()
    hi = cov[cov["band"] == 2100.0].union_all()
    assert lo.intersection(hi).area > 0.9 * hi.area
    assert hi.area < lo.area  # the 2.1 GHz layer reaches less far


# ---------------------------------------------------------------------- synthetic
def test_synthetic_sites_are_a_seeded_hex_grid(square_outline):
    a = synthetic_sites(square_outline, isd_km=5, seed=7, carriers=("A", "B"))
    b = synthetic_sites(square_outline, isd_km=5, seed=7, carriers=("A", "B"))
    c = synthetic_sites(square_outline, isd_km=5, seed=8, carriers=("A", "B"))
    pd.testing.assert_frame_equal(a, b)
    assert not a[["lat", "lon"]].equals(c[["lat", "lon"]])
    one = a[a["carrier"] == "A"]
    per_site = one.groupby("site_id")["azimuth_deg"].apply(tuple)
    assert set(per_site) == {(0.0, 120.0, 240.0)}
    x, y = Transformer.from_crs("EPSG:6668", CRS, always_xy=True).transform(
        one["lon"].to_numpy()[::3], one["lat"].to_numpy()[::3])
    from scipy.spatial import cKDTree

    d, _ = cKDTree(np.column_stack([x, y])).query(np.column_stack([x, y]), k=2)
    assert d[:, 1] == pytest.approx(5000.0, abs=0.05)
    # the outline is covered: every point of it is within ISD/√3 of a site
    pts = shapely.get_coordinates(square_outline.iloc[0].segmentize(500))
    dp, _ = cKDTree(np.column_stack([x, y])).query(pts)
    assert dp.max() <= 5000 / math.sqrt(3) + 1


def test_jitter_moves_sites_within_bounds(square_outline):
    base = synthetic_sites(square_outline, isd_km=5, seed=1)
    jit = synthetic_sites(square_outline, isd_km=5, seed=1, jitter=0.2)
    assert not base[["lat", "lon"]].equals(jit[["lat", "lon"]])
    assert len(jit) > 0 and set(jit["azimuth_deg"]) == {0.0, 120.0, 240.0}


@pytest.mark.parametrize("kw, msg", [({"isd_km": 0}, "positive"), ({"isd_km": 5, "jitter": 2}, "jitter")])
def test_synthetic_sites_bad_arguments(square_outline, kw, msg):
    with pytest.raises(UserError, match=msg):
        synthetic_sites(square_outline, **kw)


def test_synthetic_sites_refuse_lonlat_outline():
    with pytest.raises(UserError, match="projected"):
        synthetic_sites(gpd.GeoSeries([shapely.box(141, 39, 141.2, 39.2)], crs=6668), isd_km=5)


# ---------------------------------------------------------------------- reading
def test_read_sites_round_trips_the_generator(tmp_path, square_outline):
    s = synthetic_sites(square_outline, isd_km=8, seed=2, carriers=("A", "B"))
    p = tmp_path / "sites.csv"
    s.to_csv(p, index=False)
    back = read_sites(p)
    for c in ("lat", "lon", "azimuth_deg", "height_m", "band_mhz"):
        np.testing.assert_allclose(back[c].to_numpy(), s[c].to_numpy())
    assert back["cell_id"].tolist() == s["cell_id"].tolist()
    cov1 = coverage_from_sites(s, crs=CRS)
    cov2 = coverage_from_sites(back, crs=CRS)
    assert shapely.equals_exact(np.asarray(cov1.geometry.values), np.asarray(cov2.geometry.values), 1e-6).all()


def test_read_sites_numbers_cells_when_ids_are_absent(tmp_path):
    s = site_rows([(30_000.0, -60_000.0), (36_000.0, -60_000.0)]).drop(columns=["cell_id", "site_id", "carrier"])
    p = tmp_path / "s.csv"
    s.to_csv(p, index=False)
    back = read_sites(p)
    assert back["carrier"].unique().tolist() == ["A"]
    assert back["cell_id"].is_unique and len(back) == 6


@pytest.mark.parametrize("mutate, msg", [
    (lambda d: d.drop(columns=["azimuth_deg"]), "lacks the columns"),
    (lambda d: d.rename(columns={"lat": "lon", "lon": "lat"}), "swapped"),
    (lambda d: d.assign(height_m=["x"] + ["40"] * (len(d) - 1)), "non-numeric"),
    (lambda d: d.assign(cell_id="same"), "duplicate cell ids"),
    (lambda d: d.assign(band_mhz=19), "frequency in MHz"),
    (lambda d: d.assign(azimuth_deg=400), "azimuth"),
    (lambda d: d.assign(beamwidth_deg=0), "beamwidth"),
    (lambda d: d.iloc[0:0], "empty"),
])
def test_read_sites_bad_input(tmp_path, mutate, msg):
    s = mutate(site_rows([(30_000.0, -60_000.0)]))
    p = tmp_path / "bad.csv"
    s.to_csv(p, index=False)
    with pytest.raises(UserError, match=msg) as e:
        read_sites(p)
    assert e.value.fix


def test_read_sites_missing_file(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_sites(tmp_path / "nope.csv")


# ---------------------------------------------------------------------- command
def _run_coverage_command(argv):
    import argparse

    from subdivide.cli.commands import coverage as cmd

    p = argparse.ArgumentParser()
    cmd.add_arguments(p)
    return cmd.run(p.parse_args(argv))


def test_coverage_command_synthetic_and_site_list_agree(tmp_path, square_outline, capsys):
    from subdivide.analysis.coverage import read_coverage

    outline = tmp_path / "outline.geojson"
    square_outline.to_crs(6668).to_frame("geometry").to_file(outline, driver="GeoJSON")
    a, sites = tmp_path / "a.gpkg", tmp_path / "sites.csv"
    assert _run_coverage_command(["--synthetic", "--isd-km", "6", "--carriers", "A,B", "--outline", str(outline),
                                  "--crs", CRS, "--out", str(a), "--sites-out", str(sites)]) == 0
    b = tmp_path / "b.gpkg"
    assert _run_coverage_command([str(sites), "--crs", CRS, "--outline", str(outline), "--out", str(b)]) == 0
    assert a.read_bytes() == b.read_bytes()
    out = capsys.readouterr().out
    assert "wrote" in out and "margin_km" in out
    cov = read_coverage(a, CRS, outline=square_outline)
    assert set(cov["carrier"]) == {"A", "B"} and "nominal" in cov.columns
    assert (shapely.area(np.asarray(cov["nominal"].values)) <= shapely.area(np.asarray(cov.geometry.values)) + 1).all()
    with pytest.raises(UserError, match="already exists"):
        _run_coverage_command([str(sites), "--crs", CRS, "--out", str(b)])


@pytest.mark.parametrize("argv, msg", [
    (["--synthetic", "--isd-km", "5", "--out", "x.gpkg", "--crs", CRS], "needs --outline"),
    (["s.csv", "--synthetic", "--out", "x.gpkg"], "either a site list or --synthetic"),
    (["s.csv", "--out", "x.gpkg"], "no output CRS"),
    (["s.csv", "--out", "x.gpkg", "--crs", "EPSG:6668"], "not projected"),
])
def test_coverage_command_errors(tmp_path, argv, msg, monkeypatch):
    monkeypatch.chdir(tmp_path)
    site_rows([(30_000.0, -60_000.0)]).to_csv(tmp_path / "s.csv", index=False)
    with pytest.raises(UserError, match=msg):
        _run_coverage_command(argv)
    assert not (tmp_path / "x.gpkg").exists()


@pytest.mark.parametrize("kw, option", [
    ({"min_rx_dbm": 100.0}, "--min-rx-dbm"), ({"min_rx_dbm": float("nan")}, "--min-rx-dbm"),
    ({"path_loss_exponent": 0.0}, "--exponent"), ({"path_loss_exponent": 100.0}, "--exponent"),
    ({"hysteresis_db": -1.0}, "--hysteresis-db"), ({"shadow_db": float("inf")}, "--shadow-db"),
])
def test_physically_meaningless_propagation_options_are_refused(square_outline, kw, option):
    sites = synthetic_sites(square_outline, isd_km=5, seed=1)
    with pytest.raises(UserError, match=option) as ei:
        coverage_from_sites(sites, crs=square_outline.crs, **kw)
    assert ei.value.where == option and ei.value.fix


@pytest.mark.parametrize("kw, option", [({"isd_km": float("nan")}, "--isd-km"), ({"isd_km": 5, "band_mhz": 0}, "--band"),
                                        ({"isd_km": 5, "height_m": -5}, "--height"),
                                        ({"isd_km": 5, "jitter": float("nan")}, "--jitter")])
def test_synthetic_sites_refuse_meaningless_numbers(square_outline, kw, option):
    with pytest.raises(UserError) as ei:
        synthetic_sites(square_outline, **kw)
    assert ei.value.where == option


def test_default_propagation_options_are_accepted():
    from subdivide.analysis.sites import (DEFAULT_HYSTERESIS_DB, DEFAULT_MIN_RX_DBM, DEFAULT_PATH_LOSS_EXPONENT,
                                          DEFAULT_SHADOW_DB, check_propagation_options)

    check_propagation_options(min_rx_dbm=DEFAULT_MIN_RX_DBM, hysteresis_db=DEFAULT_HYSTERESIS_DB,
                              shadow_db=DEFAULT_SHADOW_DB, path_loss_exponent=DEFAULT_PATH_LOSS_EXPONENT)
