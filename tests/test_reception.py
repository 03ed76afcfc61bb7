"""The reception model P(receive | distance outside the sending sub-area): recovery of
known parameters on seeded simulated data, interval coverage, honest non-identifiability
(花巻), leave-one-city-out on the trial against the trivial answers, one rule for which
pairs count (CLI = API), `subdivide calibrate` and `subdivide spill --model`."""
from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from conftest import need
from hypothesis import given, settings
from hypothesis import strategies as st

from subdivide.analysis import spill
from subdivide.analysis.reception import (
    BASELINE,
    MODEL,
    ReceptionModel,
    between_area_pairs,
    evaluate,
    format_evaluation,
    reliability,
    scores,
)
from subdivide.cli.main import main
from subdivide.core.errors import UserError

APPROX = "derived_approx_old_municipalities/approx_old_municipalities_voronoi.geojson"
OFFICES = "offices/p34_offices_hanamaki_toyota_hagi.geojson"


@pytest.fixture(scope="module")
def trial_pairs(shared_data):
    """The trial's observations with distances to the approximate 旧市町村 polygons."""
    polys = gpd.read_file(shared_data / APPROX)
    return spill.observation_pairs(polys, shared_data / OFFICES, area_name="old_muni_name",
                                   point_name="office_name")


@pytest.fixture(scope="module")
def trial_evaluation(trial_pairs):
    return evaluate(trial_pairs, thresholds_km=(2.0,))


# ---------------------------------------------------------------- which pairs count
def test_between_area_pairs_is_the_one_rule():
    flagged = pd.DataFrame({"distance_km": [0.0, 0.0, 1.2, np.nan], "received": [True, False, True, False],
                            "own_area": [True, False, False, False]})
    got = between_area_pairs(flagged)
    # the flag decides when present: a between-area pair at distance 0 stays (poor polygons)
    assert got["distance_km"].tolist() == [0.0, 1.2]
    unflagged = flagged.drop(columns="own_area")
    assert between_area_pairs(unflagged)["distance_km"].tolist() == [1.2]


def test_own_area_pairs_do_not_move_the_fit():
    """The CLI once fitted own-area pairs at distance 0 (萩 4.10 vs 2.66 km): now they are dropped."""
    obs = spill.simulate_observations(2.0, n=200, scale_km=0.5, seed=4)
    own = pd.DataFrame({"distance_km": np.zeros(40), "received": True})
    a = spill.fit_spill_distance(obs)
    b = spill.fit_spill_distance(pd.concat([obs, own], ignore_index=True))
    assert a["L_km"] == b["L_km"] and a["interval"] == b["interval"] and a["n"] == b["n"] == 200


# ---------------------------------------------------------------- recovery and coverage
@pytest.mark.slow
def test_recovers_known_parameters_within_intervals_in_90_percent_of_replicates():
    L, s = 2.5, 0.4
    hits, close = 0, 0
    for seed in range(100):
        m = ReceptionModel().fit(spill.simulate_observations(L, n=300, scale_km=s, seed=seed))
        e = m.estimates_
        (llo, lhi), (slo, shi) = e["L_km"]["interval"], e["scale_km"]["interval"]
        hits += (llo <= L <= lhi) and (slo <= s <= shi)
        close += abs(e["L_km"]["estimate"] - L) < 0.3
    assert hits >= 90
    assert close >= 95


def test_intervals_shrink_with_more_data_and_contain_the_estimate():
    widths = []
    for n in (100, 1600):
        e = ReceptionModel().fit(spill.simulate_observations(2.0, n=n, scale_km=0.4, seed=7)).estimates_
        lo, hi = e["L_km"]["interval"]
        assert lo < e["L_km"]["estimate"] < hi and e["L_km"]["status"] == "identified"
        widths.append(hi - lo)
    assert widths[1] < widths[0] / 2       # ~ 1/sqrt(n): 4× narrower for 16× the data


def test_technology_term_recovers_the_shift():
    obs = spill.simulate_observations(2.0, n=600, scale_km=0.3, seed=3, technology_shift_km={"3G": 0.0, "LTE": 1.0})
    m = ReceptionModel(technology=True).fit(obs)
    e = m.estimates_
    for tech, L in (("3G", 2.0), ("LTE", 3.0)):
        lo, hi = e[f"L_km[technology={tech}]"]["interval"]
        assert lo <= L <= hi
    assert m.predict_proba(2.5, technology="LTE")[0] > m.predict_proba(2.5, technology="3G")[0]
    # an unknown technology gets the average term
    assert m.predict_proba(2.5)[0] == pytest.approx(float(1 / (1 + np.exp(-(e["L_km"]["estimate"] - 2.5)
                                                                        / e["scale_km"]["estimate"]))), abs=2e-3)
    with pytest.raises(UserError, match="technology"):
        ReceptionModel(technology=True).fit(obs.drop(columns="technology"))
    with pytest.raises(UserError, match="3G/LTE/5G"):
        ReceptionModel(technology=True).fit(obs.assign(technology="WiMAX"))


@settings(max_examples=15, deadline=None)
@given(L=st.floats(0.5, 4.0), s=st.floats(0.1, 1.5), seed=st.integers(0, 10_000))
def test_predictions_are_probabilities_decreasing_with_distance(L, s, seed):
    obs = spill.simulate_observations(L, n=120, scale_km=s, seed=seed)
    if obs["received"].all() or not obs["received"].any():
        return
    m = ReceptionModel().fit(obs)
    p = m.predict_proba(np.linspace(0.0, 20.0, 81))
    assert np.all((p >= 0) & (p <= 1)) and np.all(np.diff(p) <= 1e-12)
    sc = m.score(obs)
    assert 0 <= sc["brier"] <= 1 and sc["tp"] + sc["fp"] + sc["fn"] + sc["tn"] == sc["n"] == 120


# ---------------------------------------------------------------- honesty
def test_no_spill_is_reported_as_not_identifiable(trial_pairs):
    hanamaki = trial_pairs[trial_pairs["city_code"] == "03205"]
    m = ReceptionModel().fit(hanamaki)
    e = m.estimates_["L_km"]
    assert m.n_ == 12 and m.n_received_ == 0
    assert e["status"] == "not identifiable" and e["estimate"] is None
    lo, hi = e["interval"]
    assert lo is None and 0 < hi < hanamaki.loc[hanamaki["pair"] == "between", "distance_km"].min() + 1.0
    assert "NOT IDENTIFIABLE" in m.summary()
    assert m.predict_proba(0.5)[0] < 0.01
    with pytest.raises(UserError, match="cannot be identified"):
        spill.fit_spill_distance(hanamaki)


def test_separated_data_hold_the_softness_at_its_bound(trial_pairs):
    toyota = trial_pairs[trial_pairs["city_code"] == "23211"]
    e = ReceptionModel().fit(toyota).estimates_
    assert e["scale_km"]["status"] == "at lower bound"
    b = between_area_pairs(toyota)
    yes, no = b.loc[b["received"], "distance_km"], b.loc[~b["received"], "distance_km"]
    assert yes.max() < no.min()                                   # the data are separated
    assert yes.max() < e["L_km"]["estimate"] < no.min()
    assert e["L_km"]["interval"][0] <= yes.max() and e["L_km"]["interval"][1] >= no.min()


def test_trial_office_check_and_calibrate_cli_fit_the_same_pairs(trial_pairs, shared_data, tmp_path, capsys):
    _, fits = spill.trial_office_check(gpd.read_file(shared_data / APPROX), shared_data / OFFICES)
    out = tmp_path / "cal"
    assert main(["calibrate", "--trial", "--polygons", str(shared_data / APPROX), "--area-name", "old_muni_name",
                 "--points", str(shared_data / OFFICES), "--point-name", "office_name", "--out", str(out),
                 "--no-evaluate"]) == 0
    printed = capsys.readouterr().out
    assert "NOT IDENTIFIABLE" in printed
    table = pd.read_csv(out / "calibration_fits.csv", encoding="utf-8-sig", dtype={"fit": str})
    for city, f in fits.items():
        row = table[(table["fit"] == city) & (table["parameter"] == "L_km")].iloc[0]
        assert int(row["n"]) == f["n"]
        if f["identified"]:
            assert row["estimate"] == pytest.approx(f["L_km"], abs=1e-9)
            assert (row["lo"], row["hi"]) == pytest.approx(tuple(f["interval"]), abs=1e-9)
        else:
            assert pd.isna(row["estimate"]) and pd.isna(row["lo"]) and row["hi"] == pytest.approx(f["interval"][1])
    pooled = table[(table["fit"] == "pooled") & (table["parameter"] == "L_km")].iloc[0]
    assert pooled["estimate"] == pytest.approx(ReceptionModel().fit(trial_pairs).estimates_["L_km"]["estimate"])


@pytest.mark.slow
def test_spill_cli_and_api_fit_the_same_pairs(sample_plan, sample_shp, tmp_path):
    offices = sample_shp.parent / "offices.geojson"
    obs = spill.trial_observations()
    f = tmp_path / "obs.csv"
    obs.assign(received=np.where(obs["received"], "yes", "no")).to_csv(f, index=False)
    plan_file = tmp_path / "p.gpkg"
    sample_plan.save(plan_file)
    assert main(["spill", str(plan_file), "--out", str(tmp_path / "s"), "--points", str(offices),
                 "--point-name", "office_name", "--observations", str(f), "--distances", "2"]) == 0
    cli = json.loads((tmp_path / "s" / "spill.json").read_text("utf-8"))["fit"]
    api = spill.fit_summary(ReceptionModel().fit(
        spill.observation_distances(sample_plan, offices, f, point_name="office_name")))
    assert cli["n"] == api["n"] == 12
    assert cli["interval"][1] == pytest.approx(api["interval"][1]) and cli["L_km"] is api["L_km"] is None


# ---------------------------------------------------------------- scores
def test_scores_by_hand():
    s = scores([True, False, False], [0.8, 0.3, 0.0])
    assert s["brier"] == pytest.approx((0.04 + 0.09 + 0.0) / 3)
    assert s["log_loss"] == pytest.approx(-(np.log(0.8) + np.log(0.7) + np.log(1 - 1e-3)) / 3)
    assert (s["tp"], s["fp"], s["fn"], s["tn"], s["accuracy"]) == (1, 0, 0, 2, 1.0)
    r = reliability([True, False, False, True], [0.05, 0.05, 0.55, 0.95])
    assert r["n"].tolist() == [2, 1, 1] and r["observed_frequency"].tolist() == [0.5, 0.0, 1.0]


def test_leave_one_city_out_on_the_trial(trial_evaluation):
    ev = trial_evaluation
    s = ev.scores
    held = s[s["scheme"] == "held_out"].set_index(["city", "predictor"])
    # pooled over the held-out cities the fitted model beats "own area only" on Brier and log loss
    for metric in ("brier", "log_loss"):
        v = ev.verdict(metric)
        assert v["model_beats_baseline"] and v["model"] < v["baseline"]
        assert v["model"] == pytest.approx(held.loc[("pooled", MODEL), metric])
        every = held.loc["pooled"][metric]
        assert v["best"] == every.idxmin()               # the report names the real winner
    # 花巻 saw no spill: the baseline is perfect there and any model can only lose
    assert held.loc[("03205", BASELINE), "brier"] == 0.0
    assert held.loc[("03205", MODEL), "brier"] > 0.0
    # pooled figures are the pair-weighted means of the per-city ones
    per_city = held.drop(index="pooled", level="city").xs(MODEL, level="predictor")
    assert (per_city["brier"] * per_city["n"]).sum() / per_city["n"].sum() == pytest.approx(
        held.loc[("pooled", MODEL), "brier"])
    text = format_evaluation(ev)
    assert "BEATS the baseline" in text and "DOES NOT BEAT" not in text
    assert ev.reliability.groupby("scheme")["n"].sum().tolist() == [96, 96]


def test_evaluation_needs_two_cities(trial_pairs):
    with pytest.raises(UserError, match="two or more cities"):
        evaluate(trial_pairs[trial_pairs["city_code"] == "23211"])


# ---------------------------------------------------------------- the model as a file
def test_save_load_round_trip_and_expected_interval(tmp_path):
    m = ReceptionModel().fit(spill.simulate_observations(2.0, n=200, scale_km=0.5, seed=9))
    path = m.save(tmp_path / "m.json")
    with pytest.raises(UserError, match="already exists"):
        m.save(path)
    back = ReceptionModel.load(path)
    d = np.linspace(0, 6, 25)
    assert back.predict_proba(d) == pytest.approx(m.predict_proba(d), abs=1e-12)
    w = np.full(len(d), 100.0)
    est, lo, hi = back.expected_total(d, w)
    assert est == pytest.approx(float(np.sum(w * m.predict_proba(d))))
    assert lo < est < hi <= w.sum()
    far = back.expected_total(np.full(5, 30.0), np.full(5, 100.0))
    assert far[0] < 1e-6 and far[2] < 1.0
    (tmp_path / "bad.json").write_text("{}", encoding="utf-8")
    with pytest.raises(UserError, match="not a reception model"):
        ReceptionModel.load(tmp_path / "bad.json")


# ---------------------------------------------------------------- the calibrate CLI
@pytest.fixture(scope="module")
def two_city_file(tmp_path_factory):
    """Two seeded 'cities' with distances given (no geometry needed)."""
    a = spill.simulate_observations(2.0, n=150, scale_km=0.4, seed=1).assign(city_code="11111")
    b = spill.simulate_observations(2.6, n=150, scale_km=0.4, seed=2).assign(city_code="22222")
    df = pd.concat([a, b], ignore_index=True).assign(point="p", subarea="a")
    df["received"] = np.where(df["received"], "yes", "no")
    f = tmp_path_factory.mktemp("obs") / "obs.csv"
    df.to_csv(f, index=False)
    return f


def test_calibrate_cli_outputs_are_complete_and_deterministic(two_city_file, tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["calibrate", str(two_city_file), "--out", str(a), "--thresholds", "2,3"]) == 0
    printed = capsys.readouterr().out
    assert "leave-one-city-out" in printed and "threshold_3km" in printed
    assert main(["calibrate", str(two_city_file), "--out", str(b), "--thresholds", "2,3"]) == 0
    names = sorted(p.name for p in a.iterdir())
    assert names == ["calibration.json", "calibration_fits.csv", "calibration_model.json", "calibration_pairs.csv",
                     "calibration_reliability.csv", "calibration_scores.csv"]
    assert all((a / n).read_bytes() == (b / n).read_bytes() for n in names)
    d = json.loads((a / "calibration.json").read_text("utf-8"))
    assert set(d["fits"]) == {"pooled", "11111", "22222"}
    assert d["evaluation"]["verdict"]["brier"]["model_beats_baseline"] is True
    sc = pd.read_csv(a / "calibration_scores.csv", encoding="utf-8-sig")
    assert {"accuracy", "brier", "log_loss", "tp", "fp", "fn", "tn"} <= set(sc.columns)
    # the saved model is the pooled fit
    m = ReceptionModel.load(a / "calibration_model.json")
    assert m.estimates_["L_km"]["estimate"] == d["fits"]["pooled"]["parameters"]["L_km"]["estimate"]


def test_calibrate_cli_refuses_bad_input_without_partial_output(two_city_file, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["calibrate", "--out", str(out)]) == 2
    assert "no observations" in capsys.readouterr().err
    assert main(["calibrate", str(tmp_path / "nope.csv"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["calibrate", str(two_city_file), "--out", str(out), "--exclude-quality", "poor"]) == 2
    assert "polygon_quality" in capsys.readouterr().err
    assert main(["calibrate", str(two_city_file), "--out", str(out), "--technology"]) == 2
    err = capsys.readouterr().err
    assert "technology" in err and "Traceback" not in err
    assert main(["calibrate", str(two_city_file), "--out", str(out), "--confidence", "1.5"]) == 2
    assert "--confidence" in capsys.readouterr().err
    nodist = tmp_path / "nodist.csv"
    nodist.write_text("point,subarea,received\np,a,yes\n", encoding="utf-8")
    assert main(["calibrate", str(nodist), "--out", str(out)]) == 2
    assert "--polygons and --points" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("point,subarea,received\np,a,maybe\n", encoding="utf-8")
    assert main(["calibrate", str(bad), "--out", str(out)]) == 2
    assert "yes/no" in capsys.readouterr().err
    assert not out.exists()
    # one city: the fit, but no leave-one-city-out
    one = tmp_path / "one.csv"
    pd.read_csv(two_city_file, dtype=str).query("city_code == '11111'").to_csv(one, index=False)
    assert main(["calibrate", str(one), "--out", str(out)]) == 0
    assert "no leave-one-city-out" in capsys.readouterr().out
    before = (out / "calibration.json").read_bytes()
    assert main(["calibrate", str(one), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (out / "calibration.json").read_bytes() == before
    assert main(["calibrate", str(one), "--out", str(out), "--force"]) == 0
    # an output is never an input, even with --force
    capsys.readouterr()
    pairs = out / "calibration_pairs.csv"
    before = pairs.read_bytes()
    assert main(["calibrate", str(pairs), "--out", str(out), "--force"]) == 2
    assert "input" in capsys.readouterr().err and pairs.read_bytes() == before


def test_calibrate_help_has_example(capsys):
    with pytest.raises(SystemExit):
        main(["calibrate", "--help"])
    h = capsys.readouterr().out
    assert "example:" in h and "subdivide calibrate --trial" in h


# ---------------------------------------------------------------- expected figures for a plan
@pytest.mark.slow
def test_spill_with_a_model_reports_expected_population(sample_plan, sample_shp, trial_pairs, tmp_path, capsys):
    model_file = ReceptionModel().fit(trial_pairs).save(tmp_path / "model.json")
    plan_file = tmp_path / "p.gpkg"
    sample_plan.save(plan_file)
    out = tmp_path / "s"
    assert main(["spill", str(plan_file), "--out", str(out), "--distances", "2", "--model", str(model_file),
                 "--points", str(sample_shp.parent / "offices.geojson"), "--point-name", "office_name"]) == 0
    printed = capsys.readouterr().out
    assert "expected view (fitted reception model)" in printed and "policy view (fixed L)" in printed
    ex = pd.read_csv(out / "spill_expected.csv", encoding="utf-8-sig")
    assert len(ex) == 4 * 3 and (ex["figure"] == "expected (fitted reception model)").all()
    assert (ex["expected_population_lo"] <= ex["expected_population"] + 1e-9).all()
    assert (ex["expected_population"] <= ex["expected_population_hi"] + 1e-9).all()
    assert (ex["expected_population_hi"] <= ex["to_population"] + 1e-6).all()
    # the expectation is Σ population × P(d) over the neighbour's blocks
    blocks = sample_plan.blocks
    m = ReceptionModel.load(model_file)
    import shapely

    A = spill.spill_territory(sample_plan.dissolved.geometry.values)
    d = shapely.distance(A[0], shapely.point_on_surface(np.asarray(blocks.geometry.values, dtype=object))) / 1e3
    sel = (blocks["subarea"] == sample_plan.dissolved["subarea"].iloc[1]).to_numpy()
    want = float(np.sum(blocks["population"].to_numpy(float)[sel] * m.predict_proba(d[sel])))
    got = ex[(ex["from_subarea"] == 1) & (ex["to_subarea"] == 2)]["expected_population"].iloc[0]
    assert got == pytest.approx(want, rel=1e-9)
    pts = pd.read_csv(out / "spill_points.csv", encoding="utf-8-sig")
    assert (pts.loc[pts["inside"], "p_receive"] == 1.0).all()
    outside = pts[~pts["inside"]].sort_values("distance_km")
    assert np.all(np.diff(outside["p_receive"].to_numpy()) <= 1e-12)
    assert ((outside["p_receive_lo"] <= outside["p_receive"]) & (outside["p_receive"] <= outside["p_receive_hi"])).all()
    js = json.loads((out / "spill.json").read_text("utf-8"))
    assert "expected" in js["parameters"]["views"] and len(js["expected"]) == 12


def test_expected_interval_covers_every_parameter_set_in_the_region():
    """Every (β0, β1) whose log-likelihood is within χ²₁/2 of the maximum gives a sum inside
    [lo, hi]; the boundary points lie on that level (or on the parameter box)."""
    from subdivide.analysis.reception import _loglik

    m = ReceptionModel().fit(spill.simulate_observations(2.2, n=150, scale_km=0.6, seed=12))
    d = np.linspace(0.1, 6.0, 40)
    w = np.random.default_rng(0).uniform(0, 500, len(d))
    _, lo, hi = m.expected_total(d, w)
    B = m.confidence_boundary()
    lls = np.array([_loglik(b, m._X, m._y)[0] for b in B])
    assert lls == pytest.approx(m.loglik_ - m.cut_, abs=1e-6)
    rng = np.random.default_rng(1)
    span = B.max(axis=0) - B.min(axis=0)
    cand = B.min(axis=0) + rng.uniform(size=(4000, 2)) * span
    inside = np.array([_loglik(b, m._X, m._y)[0] for b in cand]) >= m.loglik_ - m.cut_
    assert inside.sum() > 500
    g = (w[None, :] / (1 + np.exp(-(cand[inside, :1] + cand[inside, 1:] * d[None, :])))).sum(axis=1)
    assert g.min() >= lo - 1e-6 * w.sum() and g.max() <= hi + 1e-6 * w.sum()
    assert g.min() < lo + 0.02 * (hi - lo) and g.max() > hi - 0.02 * (hi - lo)   # and the ends are reached


@pytest.fixture(scope="module")
def tottori_plan(shared_data):
    """鳥取市 (666 real e-Stat town-blocks) split by its 9 旧市町村 (name prefixes)."""
    from subdivide.io.townblocks import read_townblocks
    from subdivide.model.plan import Plan

    old = ("国府町", "福部町", "河原町", "用瀬町", "佐治町", "気高町", "鹿野町", "青谷町")
    shp = need(shared_data / "tottori_31_estat2015" / "h27ka31.shp", "鳥取県 e-Stat town-blocks")
    blocks, _ = read_townblocks(shp, muni_code="31201")
    label = blocks["name"].map(lambda n: next((o[:-1] for o in old if n.startswith(o)), "鳥取"))
    return Plan.from_assignment(blocks, dict(zip(blocks["key"], label)))


@pytest.mark.slow
def test_expected_exposure_on_real_tottori_polygons(tottori_plan, trial_pairs):
    import shapely

    m = ReceptionModel().fit(trial_pairs)
    ex = spill.expected_exposure(tottori_plan, m)
    k = tottori_plan.k
    assert k == 9 and len(ex) == k * (k - 1)
    assert (ex["expected_population_lo"] <= ex["expected_population"] + 1e-9).all()
    assert (ex["expected_population"] <= ex["expected_population_hi"] + 1e-9).all()
    assert (ex["expected_population_hi"] <= ex["to_population"] + 1e-6).all()
    # pairs more than 15 km apart expect (almost) nobody; touching pairs expect somebody
    dis = tottori_plan.dissolved
    geoms = np.asarray(spill.spill_territory(dis.geometry.values), dtype=object)
    pos = {s: i for i, s in enumerate(dis["subarea"])}
    gap = np.array([shapely.distance(geoms[pos[a]], geoms[pos[b]]) / 1e3
                    for a, b in zip(ex["from_subarea"], ex["to_subarea"])])
    assert (ex.loc[gap > 15, "expected_population_hi"] < 0.01 * ex.loc[gap > 15, "to_population"]).all()
    assert (ex.loc[gap == 0, "expected_population"] > 0).all() and (gap == 0).sum() >= k
    # without intervals: the same expectations
    fast = spill.expected_exposure(tottori_plan, m, intervals=False)
    assert fast["expected_population"].to_numpy() == pytest.approx(ex["expected_population"].to_numpy())


def test_calibrate_reads_cp932_and_xlsx_alike(two_city_file, tmp_path):
    df = pd.read_csv(two_city_file, dtype=str)
    cp = tmp_path / "obs_cp932.csv"
    cp.write_bytes(df.assign(point="花巻市役所").to_csv(index=False).encode("cp932"))
    xl = tmp_path / "obs.xlsx"
    df.assign(point="花巻市役所").to_excel(xl, index=False)
    fits = []
    for f, o in ((two_city_file, "a"), (cp, "b"), (xl, "c")):
        assert main(["calibrate", str(f), "--out", str(tmp_path / o), "--no-evaluate"]) == 0
        fits.append((tmp_path / o / "calibration_fits.csv").read_bytes())
    assert fits[0] == fits[1] == fits[2]
