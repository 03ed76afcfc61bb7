"""`subdivide spill` end to end, the trial office check on the shared real data, and the
coverage wiring — on the bundled 花巻 sample plan and small seeded inputs."""
from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from subdivide.analysis import spill
from subdivide.cli.main import main

OUTLINES = "municipal_outlines_n03_2021/n03_2021_s0010_hanamaki_toyota_hagi.geojson"
APPROX = "derived_approx_old_municipalities/approx_old_municipalities_voronoi.geojson"
OFFICES = "offices/p34_offices_hanamaki_toyota_hagi.geojson"


@pytest.fixture(scope="module")
def plan_file(sample_plan, tmp_path_factory):
    p = tmp_path_factory.mktemp("plan") / "hanamaki.plan.gpkg"
    sample_plan.save(p)
    return p


@pytest.fixture(scope="module")
def cli_run(plan_file, sample_shp, tmp_path_factory):
    """One full CLI run on the sample plan with points and observations."""
    out = tmp_path_factory.mktemp("spill") / "out"
    obs = spill.trial_observations()
    obs = obs[obs["city_code"] == "03205"][["point", "subarea", "received"]]
    obs_csv = out.parent / "obs.csv"
    obs.assign(received=np.where(obs["received"], "yes", "no")).to_csv(obs_csv, index=False)
    offices = sample_shp.parent / "offices.geojson"
    rc = main(["spill", str(plan_file), "--out", str(out), "--points", str(offices),
               "--point-name", "office_name", "--observations", str(obs_csv)])
    return rc, out


def test_cli_writes_bom_crlf_csv_and_json(cli_run, capsys):
    rc, out = cli_run
    assert rc == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["spill.json", "spill_exposure.csv", "spill_observations.csv", "spill_points.csv",
                     "spill_subareas.csv", "spill_totals.csv"]
    raw = (out / "spill_subareas.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    sa = pd.read_csv(out / "spill_subareas.csv", encoding="utf-8-sig", dtype={"code": str})
    assert len(sa) == 4 * 3
    assert sorted(set(sa["name"])) == sorted(["花巻地域", "大迫地域", "石鳥谷地域", "東和地域"])
    assert set(sa["code"]) == {"0320501", "0320502", "0320503", "0320504"}
    d = json.loads((out / "spill.json").read_text("utf-8"))
    assert d["parameters"]["distances_km"] == [2.0, 2.5, 3.0]
    assert len(d["subareas"]) == 12 and len(d["exposure"]) > 0
    # the fit sees the 12 between-area pairs only (own-area pairs never count); 花巻 saw no
    # spill, so L is reported as not identifiable, with only an upper bound
    assert d["fit"]["n"] == 12 and d["fit"]["n_received"] == 0
    assert d["fit"]["identified"] is False and d["fit"]["L_km"] is None
    assert d["fit"]["interval"][0] is None and 0 < d["fit"]["interval"][1] < 3
    obs = pd.read_csv(out / "spill_observations.csv", encoding="utf-8-sig")
    assert (obs["pair"] == "own").sum() == 4 and (obs.loc[obs["pair"] == "own", "distance_km"] == 0).all()
    # the JSON holds the same figures as the CSV
    js = pd.DataFrame(d["subareas"])
    assert js["core_share"].to_numpy() == pytest.approx(sa["core_share"].to_numpy(), rel=1e-12)


def test_cli_sample_figures_are_consistent(cli_run):
    _, out = cli_run
    sa = pd.read_csv(out / "spill_subareas.csv", encoding="utf-8-sig")
    assert (sa["core_share"] <= sa["circle_unreached_share"] + 1e-9).all()
    assert (sa["below_target"] == (sa["core_share"] < 0.5)).all()
    w = sa.pivot(index="subarea", columns="distance_km", values="core_share")
    assert (w.diff(axis=1).iloc[:, 1:] <= 1e-12).all().all()
    pts = pd.read_csv(out / "spill_points.csv", encoding="utf-8-sig")
    assert len(pts) == 4 * 4
    inside = pts[pts["inside"]]
    # each trial office lies in its own sub-area of the sample plan
    assert dict(zip(inside["point"], inside["area"])) == {
        "花巻市役所": "花巻地域", "大迫総合支所": "大迫地域", "石鳥谷総合支所": "石鳥谷地域", "東和総合支所": "東和地域"}


def test_cli_refuses_overwrite_and_bad_inputs(cli_run, plan_file, tmp_path, capsys):
    _, out = cli_run
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert main(["spill", str(plan_file), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert main(["spill", str(tmp_path / "nope.gpkg"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    for bad in ("abc", "0", "-2", "2,,x"):
        assert main(["spill", str(plan_file), "--out", str(tmp_path / "o"), "--distances", bad]) == 2
        err = capsys.readouterr().err
        assert "--distances" in err and "Traceback" not in err
    assert main(["spill", str(plan_file), "--out", str(tmp_path / "o"), "--target", "1.5"]) == 2
    assert main(["spill", str(plan_file), "--out", str(tmp_path / "o"), "--observations", "x.csv"]) == 2
    assert "needs --points" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_cli_cp932_and_force(plan_file, tmp_path, capsys):
    out = tmp_path / "cp"
    assert main(["spill", str(plan_file), "--out", str(out), "--encoding", "cp932", "--distances", "2"]) == 0
    text = (out / "spill_subareas.csv").read_bytes().decode("cp932")
    assert "石鳥谷地域" in text
    summary = capsys.readouterr().out
    assert "花巻地域" in summary and "L = 2 km" in summary
    assert main(["spill", str(plan_file), "--out", str(out), "--distances", "2", "--force"]) == 0
    assert (out / "spill_subareas.csv").read_bytes().startswith(b"\xef\xbb\xbf")


def test_help_has_example(capsys):
    with pytest.raises(SystemExit):
        main(["spill", "--help"])
    h = capsys.readouterr().out
    assert "example:" in h and "subdivide spill" in h and "--coverage" in h


def test_cli_neighbours_and_raster(plan_file, sample_plan, tmp_path):
    """A synthetic neighbour ring and a seeded raster: municipality rows and raster rows."""
    outline = shapely.union_all(sample_plan.dissolved.geometry.values)
    ring = shapely.difference(shapely.buffer(outline, 6000.0), outline)
    x0, y0, x1, y1 = shapely.bounds(ring)
    nb = gpd.GeoDataFrame({"name": ["北町", "南町"], "population": [30000, 10000]},
                          geometry=[shapely.intersection(ring, shapely.box(x0, (y0 + y1) / 2, x1, y1)),
                                    shapely.intersection(ring, shapely.box(x0, y0, x1, (y0 + y1) / 2))],
                          crs=sample_plan.crs).to_crs("EPSG:6668")
    nb_file = tmp_path / "nb.geojson"
    nb.to_file(nb_file)
    tif = spill.write_synthetic_population_raster(tmp_path / "pop.tif", shapely.bounds(ring), sample_plan.crs,
                                                  seed=3, total=100_000)
    out = tmp_path / "o"
    assert main(["spill", str(plan_file), "--out", str(out), "--neighbours", str(nb_file),
                 "--population-raster", str(tif), "--distances", "2.5"]) == 0
    m = pd.read_csv(out / "spill_municipalities.csv", encoding="utf-8-sig")
    assert set(m["municipality"]) <= {"北町", "南町"} and len(m) > 0
    assert (m["population_source"] == "raster").all()
    sa = pd.read_csv(out / "spill_subareas.csv", encoding="utf-8-sig")
    assert sorted(set(sa["population_source"])) == ["raster", "townblocks"]
    # every figure says its source; area figures agree between the two sets of rows
    a = sa[sa["population_source"] == "raster"]["core_share"].to_numpy()
    b = sa[sa["population_source"] == "townblocks"]["core_share"].to_numpy()
    assert a == pytest.approx(b)


def test_cli_coverage_tables(plan_file, sample_plan, tmp_path):
    # a seeded hexagon-ish grid of 4 km cells over the municipality: one carrier
    x0, y0, x1, y1 = shapely.bounds(shapely.union_all(sample_plan.dissolved.geometry.values))
    xs, ys = np.meshgrid(np.arange(x0, x1, 4000.0), np.arange(y0, y1, 4000.0))
    cells = shapely.box(xs.ravel(), ys.ravel(), xs.ravel() + 4000.0, ys.ravel() + 4000.0)
    cov = gpd.GeoDataFrame({"carrier": "A", "cell_id": [f"c{i:04d}" for i in range(len(cells))]},
                           geometry=cells, crs=sample_plan.crs)
    f = tmp_path / "cov.gpkg"
    cov.to_file(f, driver="GPKG")
    out = tmp_path / "o"
    assert main(["spill", str(plan_file), "--out", str(out), "--coverage", str(f), "--selection", "share",
                 "--min-share", "0.5", "--distances", "2"]) == 0
    names = {p.name for p in out.iterdir()}
    assert "spill_coverage_footprints.csv" in names
    d = json.loads((out / "spill.json").read_text("utf-8"))
    assert "footprints" in d["coverage"] and len(d["coverage"]["footprints"]) >= 4


# ---------------------------------------------------------------- the trial, on shared data
def test_trial_observations_asset_matches_domain_table():
    obs = spill.trial_observations()
    assert len(obs) == 16 + 49 + 49
    spills = obs[obs["received"] & ~obs["own_area"]]
    assert len(spills) == 9
    assert sorted(spills["trial_km"]) == sorted([2.1, 1.9, 3.3, 2.0, 2.6, 1.6, 2.4, 2.8, 2.3])
    assert obs[obs["own_area"]]["received"].all()
    assert not obs[(obs["city_code"] == "03205") & ~obs["own_area"]]["received"].any()


def test_trial_office_check_on_approximate_old_municipalities(shared_data):
    polys = gpd.read_file(shared_data / APPROX)
    obs, fits = spill.trial_office_check(polys, shared_data / OFFICES)
    # the two 豊田 spill pairs agree with the published comparison (trial 2.1 / 1.9 km)
    sp = obs[(obs["city_code"] == "23211") & obs["trial_km"].notna()].set_index("point")["distance_km"]
    assert sp["藤岡支所"] == pytest.approx(1.87, abs=0.02)
    assert sp["旭支所"] == pytest.approx(1.82, abs=0.02)
    # fitted on 豊田: L inside the trial's 1.6–3.3 km band; no pair misclassified
    t = fits["23211"]
    assert 1.6 <= t["L_km"] <= 3.3 and t["misclassified"] == 0
    assert t["interval"][0] <= 1.87 and t["interval"][1] >= 2.1
    # 萩's polygons are poor: the same model misclassifies pairs there
    assert fits["35204"]["misclassified"] > 0
    assert "error" in fits["03205"]           # 花巻: no spill observed, L has no lower bound


def test_office_check_on_polygons_with_name_column(shared_data):
    polys = gpd.read_file(shared_data / APPROX)
    toyota = polys[polys["city_code"] == "23211"]
    offices = spill.read_points(shared_data / OFFICES, name_column="office_name")
    offices = offices[offices["city"] == "豊田市"]
    chk = spill.office_check(toyota, offices, (2.0, 2.5, 3.0), area_name="old_muni_name")
    assert len(chk) == len(offices) * 7
    row = chk[(chk["point"] == "藤岡支所") & (chk["area"] == "豊田市(旧)")].iloc[0]
    assert not row["inside"] and row["reached_2km"] and row["reached_3km"]
    own = chk[(chk["point"] == "稲武支所") & (chk["area"] == "稲武町")].iloc[0]
    assert own["inside"] and own["distance_km"] == 0


def test_demo_helper_writes_report_with_office_check(sample_plan, sample_shp, tmp_path):
    from subdivide.cli.commands.spill import write_demo

    text = write_demo(sample_plan, tmp_path / "spill", offices=sample_shp.parent / "offices.geojson")
    assert "花巻地域" in text and "東和総合支所" in text
    assert (tmp_path / "spill" / "spill_points.csv").exists()


def test_points_from_csv_match_geojson_and_unknown_observations_fail(shared_data, sample_plan):
    from subdivide.core.errors import UserError

    a = spill.office_check(sample_plan, shared_data / "offices/p34_offices_hanamaki_toyota_hagi.csv",
                           point_name="office_name")
    b = spill.office_check(sample_plan, shared_data / OFFICES, point_name="office_name")
    assert len(a) == 34 * 4
    assert a["distance_km"].to_numpy() == pytest.approx(b["distance_km"].to_numpy(), abs=1e-3)
    bad = pd.DataFrame({"point": ["花巻市役所"], "subarea": ["どこか"], "received": ["yes"]})
    with pytest.raises(UserError, match="not in the plan"):
        spill.observation_distances(sample_plan, shared_data / OFFICES, bad, point_name="office_name")
    bad = pd.DataFrame({"point": ["花巻市役所"], "subarea": ["花巻"], "received": ["maybe"]})
    with pytest.raises(UserError, match="yes/no"):
        spill.observation_distances(sample_plan, shared_data / OFFICES, bad, point_name="office_name")


def test_multi_city_observation_file_is_filtered_to_the_plan(sample_plan, sample_shp, tmp_path):
    """The shipped trial file (three cities) works as-is for the 花巻 plan."""
    from subdivide.core.errors import UserError

    obs = spill.trial_observations()
    csv_path = tmp_path / "trial.csv"
    obs.assign(received=np.where(obs["received"], "yes", "no")).to_csv(csv_path, index=False)
    offices = sample_shp.parent / "offices.geojson"
    got = spill.observation_distances(sample_plan, offices, csv_path, point_name="office_name")
    assert len(got) == int((obs["city_code"] == "03205").sum()) and got["distance_km"].notna().all()
    other = obs[obs["city_code"] != "03205"]
    with pytest.raises(UserError, match="city_code 03205"):
        spill.observation_distances(sample_plan, offices, other, point_name="office_name")
