"""Plans by attribute, mapping file, overlay, edits and the assignment CSV (subdivide.make.planning),
and the refusals of ``subdivide plan`` (exit 2, offending blocks named, nothing written)."""
from __future__ import annotations

import pandas as pd
import pytest

from subdivide.cli.main import main
from subdivide.core.errors import PlanCheckError, UserError
from subdivide.model.plan import read_plan
from subdivide.make.planning import (export_assignment_csv, merge_subareas, move_blocks, plan_by_attribute,
                                plan_by_overlay, plan_from_assignment_csv, plan_from_mapping,
                                read_mapping, read_polygons, rename_subarea, check_constraints,
                                read_candidates_table)

from conftest import SAMPLE_DIR

APPROX_OLD = "derived_approx_old_municipalities/approx_old_municipalities_voronoi.geojson"
TRIAL = {"花巻地域": "花巻", "大迫地域": "大迫", "石鳥谷地域": "石鳥谷", "東和地域": "東和"}


@pytest.fixture(scope="module")
def old_plan(sample_blocks):
    plan, report = plan_by_attribute(sample_blocks, "OLD_MUNI")
    return plan


def _labels(plan):
    names = plan.subareas.set_index("subarea")["name"]
    return pd.Series(plan.blocks["subarea"].map(names).to_numpy(), index=plan.blocks["key"].to_numpy())


# ---------------------------------------------------------------- by attribute (the trial)
def test_by_old_muni_gives_the_trials_four_subareas_within_documented_error(old_plan):
    check = pd.read_csv(SAMPLE_DIR / "area_check.csv", dtype={"old_muni": str})
    check = check[check["old_muni"].isin(TRIAL.values())].set_index("old_muni")
    m = old_plan.metrics.set_index("name")
    assert sorted(m.index) == sorted(TRIAL)
    assert list(old_plan.subareas["code"]) == [f"03205{i:02d}" for i in range(1, 5)]
    for name, old in TRIAL.items():
        official = check.loc[old, "official_km2"]
        documented_pct = check.loc[old, "diff_pct"]
        err_pct = abs(m.loc[name, "area_km2"] - official) / official * 100
        # the sample's documented error per 旧市町村 (area_check.csv), rounded to 0.01 %
        assert err_pct <= documented_pct + 0.01, (name, err_pct, documented_pct)
    assert m["population"].sum() == old_plan.blocks["population"].sum()


def test_refuses_more_values_than_the_limit(sample_blocks):
    with pytest.raises(PlanCheckError, match="at most 3"):
        plan_by_attribute(sample_blocks, "OLD_MUNI", max_subareas=3)
    with pytest.raises(PlanCheckError, match="at most 14"):
        plan_by_attribute(sample_blocks, "key")


def test_missing_attribute_values_are_named(sample_blocks):
    b = sample_blocks.copy()
    b.loc[b.index[:3], "OLD_MUNI"] = None
    with pytest.raises(PlanCheckError) as exc:
        plan_by_attribute(b, "OLD_MUNI")
    for k in b["key"][:3]:
        assert k in str(exc.value)


def test_flagged_islands_are_exceptions_unless_disabled(synthetic_blocks):
    b = synthetic_blocks(300, seed=2)
    assert b["island"].any()
    plan, report = plan_by_attribute(b, "OLD_MUNI")
    isl = set(b.loc[b["island"], "key"])
    assert set(plan.island_exceptions) <= isl and plan.island_exceptions
    assert any(f.rule == "PLAN-ISLAND-FLAGGED" for f in report.findings)
    with pytest.raises(PlanCheckError, match="not contiguous"):
        plan_by_attribute(b, "OLD_MUNI", allow_flagged_islands=False)


# ---------------------------------------------------------------- mapping files
@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-8", "cp932"])
def test_mapping_csv_encodings(sample_blocks, tmp_path, encoding):
    f = tmp_path / "map.csv"
    f.write_bytes("key,subarea\r\n花巻,花巻地域\r\n大迫,大迫地域\r\n石鳥谷,北部地域\r\n東和,東和地域\r\n"
                  "旧湯本村,湯本地域\r\n".encode(encoding))
    plan, report = plan_from_mapping(sample_blocks, f, by="OLD_MUNI")
    assert list(plan.subareas["name"]) == ["花巻地域", "大迫地域", "北部地域", "東和地域"]  # file order
    unknown = [f for f in report.findings if f.rule == "MAPPING-UNKNOWN-KEY"]
    assert unknown and unknown[0].features == ("旧湯本村",)


def test_mapping_xlsx_by_block_key_and_lost_leading_zero(sample_blocks, tmp_path, old_plan):
    table = pd.DataFrame({"key": old_plan.blocks["key"], "subarea": _labels(old_plan).to_numpy()})
    f = tmp_path / "map.xlsx"
    table.to_excel(f, index=False)
    plan, report = plan_from_mapping(sample_blocks, f)
    assert (_labels(plan) == _labels(old_plan)).all()
    # keys that Excel turned into numbers lose their leading zero: restored, with a warning
    broken = table.copy()
    broken.loc[:4, "key"] = broken.loc[:4, "key"].str.lstrip("0")
    f2 = tmp_path / "broken.csv"
    broken.to_csv(f2, index=False)
    mapping = read_mapping(f2)
    assert mapping.index[0] == table.loc[0, "key"].lstrip("0")   # kept as text, not int
    plan, report = plan_from_mapping(sample_blocks, f2)
    assert (_labels(plan) == _labels(old_plan)).all()
    rules = {x.rule: x for x in report.findings}
    assert set(rules["MAPPING-LEADING-ZERO"].features) == set(broken.loc[:4, "key"])
    assert "MAPPING-UNKNOWN-KEY" not in rules
    # a whole XLSX of numeric keys (Excel's default for 032050011 typed in a cell)
    f3 = tmp_path / "numbers.xlsx"
    table.assign(key=table["key"].astype("int64")).to_excel(f3, index=False)
    plan, report = plan_from_mapping(sample_blocks, f3)
    assert (_labels(plan) == _labels(old_plan)).all()
    # a key that is really missing is still refused and named
    with pytest.raises(PlanCheckError, match="not in the mapping") as exc:
        plan_from_mapping(sample_blocks, broken.iloc[1:].set_index("key")["subarea"])
    assert table.loc[0, "key"] in str(exc.value)


def test_mapping_by_code_column_restores_lost_leading_zero(synthetic_blocks, tmp_path):
    blocks = synthetic_blocks(300, seed=0)
    codes = sorted(blocks["OLD_CODE"].unique())
    assert all(c.startswith("0") for c in codes)
    f = tmp_path / "old_code.xlsx"
    pd.DataFrame({"OLD_CODE": [int(c) for c in codes],
                  "subarea": [f"第{i + 1}地域" for i in range(len(codes))]}).to_excel(f, index=False)
    plan, report = plan_from_mapping(blocks, f, by="OLD_CODE")
    assert plan.k == len(codes)
    assert "MAPPING-LEADING-ZERO" in {x.rule for x in report.findings}


def test_assignment_csv_with_keys_saved_as_numbers(old_plan, sample_blocks, tmp_path):
    f = export_assignment_csv(old_plan, tmp_path / "a.csv")
    df = pd.read_csv(f, encoding="utf-8-sig")          # what Excel does: keys become numbers
    assert not df["key"].astype(str).str.startswith("0").any()
    df.to_csv(tmp_path / "excel.csv", index=False, encoding="cp932")
    back, report = plan_from_assignment_csv(old_plan, tmp_path / "excel.csv")
    assert (_labels(back) == _labels(old_plan)).all()
    assert "ASSIGNMENT-LEADING-ZERO" in {x.rule for x in report.findings}


def test_mapping_conflicts_refused(tmp_path):
    f = tmp_path / "m.csv"
    f.write_text("key,subarea\n花巻,A地域\n花巻,B地域\n", encoding="utf-8")
    with pytest.raises(UserError, match="different sub-areas"):
        read_mapping(f)


# ---------------------------------------------------------------- overlay
def test_overlay_with_approximate_old_municipalities(sample_blocks, shared_data, old_plan):
    polys = read_polygons(shared_data / APPROX_OLD)
    polys = polys[polys["city_code"].astype(str) == "03205"]
    plan, report = plan_by_overlay(sample_blocks, polys, "old_muni_name")
    assert sorted(plan.subareas["name"]) == sorted(TRIAL)
    agree = (_labels(plan) == _labels(old_plan)).mean()
    assert agree > 0.95, agree
    review = report.review
    assert {"key", "assigned", "top_share", "runner_up", "runner_up_share", "reason"} <= set(review.columns)
    assert (review["top_share"] >= 0).all() and len(review) > 0
    flagged = review["reason"].str.contains("near-tie")
    assert ((review.loc[flagged, "top_share"] < 0.6)
            | (review.loc[flagged, "top_share"] - review.loc[flagged, "runner_up_share"] < 0.2)).all()
    # stricter thresholds flag more near-ties
    _, strict = plan_by_overlay(sample_blocks, polys, "old_muni_name", min_share=0.95, min_margin=0.9)
    assert strict.review["reason"].str.contains("near-tie").sum() > flagged.sum()


def test_overlay_name_column_checked(sample_blocks, shared_data):
    polys = read_polygons(shared_data / APPROX_OLD)
    with pytest.raises(UserError, match="no column"):
        plan_by_overlay(sample_blocks, polys, "nope")


# ---------------------------------------------------------------- edits
def test_move_merge_rename(old_plan):
    t = old_plan.subareas.set_index("name")["subarea"]
    adj = old_plan.subarea_adjacency
    # a 花巻 block touching 石鳥谷 can move there
    a, b = t["花巻地域"], t["石鳥谷地域"]
    coo = old_plan.adjacency.tocoo()
    sub = old_plan.blocks["subarea"].to_numpy()
    cand = coo.row[(sub[coo.row] == a) & (sub[coo.col] == b)]
    moved = None
    for i in sorted(set(cand.tolist())):
        key = old_plan.blocks["key"].iloc[i]
        try:
            moved = move_blocks(old_plan, {key: "石鳥谷"})
            break
        except PlanCheckError:
            continue
    assert moved is not None and len(adj)
    assert moved.blocks.loc[moved.blocks["key"] == key, "subarea"].item() == b
    merged = merge_subareas(old_plan, ["石鳥谷地域", "大迫地域"])
    # the first-listed (石鳥谷, 3) keeps its number and code; 大迫's 2 is retired; 東和 keeps 4
    assert merged.k == 3 and list(merged.subareas["subarea"]) == [1, 3, 4]
    assert list(merged.subareas["code"]) == ["0320501", "0320503", "0320504"]
    assert list(merged.subareas["display_order"]) == [1, 2, 3]
    assert merged.metrics["area_km2"].sum() == pytest.approx(old_plan.metrics["area_km2"].sum())
    renamed = rename_subarea(merged, 3, "北部地域")
    assert "北部地域" in set(renamed.subareas["name"])


def test_move_that_breaks_a_rule_is_refused_and_named(old_plan):
    small = old_plan.subareas.set_index("name")["subarea"]["大迫地域"]
    keys = old_plan.blocks.loc[old_plan.blocks["subarea"] == small, "key"].tolist()
    with pytest.raises(PlanCheckError, match="no town-block"):
        move_blocks(old_plan, {k: "花巻地域" for k in keys})
    # a 花巻 block far from 東和 cannot move there: contiguity names it
    far = old_plan.blocks["key"].iloc[0]
    with pytest.raises(PlanCheckError, match="not contiguous") as exc:
        move_blocks(old_plan, {far: "東和"})
    assert far in str(exc.value)
    with pytest.raises(UserError, match="no sub-area"):
        move_blocks(old_plan, {far: "存在しない地域"})


# ---------------------------------------------------------------- interchange
def test_assignment_csv_round_trip_and_refusals(old_plan, sample_blocks, tmp_path):
    f = export_assignment_csv(old_plan, tmp_path / "a.csv")
    raw = f.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    df = pd.read_csv(f, dtype=str, encoding="utf-8-sig")
    assert len(df) == len(sample_blocks) and df["key"].str.startswith("0").all()
    back, _ = plan_from_assignment_csv(sample_blocks, f)
    assert (_labels(back) == _labels(old_plan)).all()
    df.iloc[:-1].to_csv(tmp_path / "missing.csv", index=False)
    with pytest.raises(PlanCheckError, match="unassigned") as exc:
        plan_from_assignment_csv(sample_blocks, tmp_path / "missing.csv")
    assert df["key"].iloc[-1] in str(exc.value)
    pd.concat([df, df.iloc[:1]]).to_csv(tmp_path / "dup.csv", index=False)
    with pytest.raises(PlanCheckError, match="more than once"):
        plan_from_assignment_csv(sample_blocks, tmp_path / "dup.csv")
    bad = df.copy()
    bad.loc[0, "key"] = "039999999"
    bad.to_csv(tmp_path / "unknown.csv", index=False)
    with pytest.raises(PlanCheckError, match="039999999"):
        plan_from_assignment_csv(sample_blocks, tmp_path / "unknown.csv")


def test_check_constraints_names_subareas(old_plan):
    f = check_constraints(old_plan, min_area_km2=146, min_core=0.5, spill_km=2, nest_column="OLD_MUNI")
    rules = {x.rule: x for x in f}
    assert "石鳥谷地域" in rules["AREA-FLOOR"].features
    assert "NESTING" not in rules
    assert "石鳥谷地域" in rules["SPILL-CORE"].features


# ---------------------------------------------------------------- CLI
def test_cli_by_old_muni_edit_and_refusals(sample_shp, tmp_path, capsys):
    out = tmp_path / "p.gpkg"
    assert main(["plan", str(sample_shp), "--by", "OLD_MUNI", "--out", str(out),
                 "--export-csv", str(tmp_path / "a.csv")]) == 0
    text = capsys.readouterr().out
    assert "花巻地域" in text and "0320501" in text
    plan = read_plan(out)
    assert plan.k == 4
    # refusals: exit 2, message names the problem, nothing written
    cases = [
        (["plan", str(sample_shp), "--by", "OLD_MUNI", "--max-subareas", "3", "--out", str(tmp_path / "x1.gpkg")],
         "at most 3"),
        (["plan", str(sample_shp), "--by", "OLD_MUNI", "--max-subareas", "15", "--out", str(tmp_path / "x2.gpkg")],
         "can only be lowered"),
        (["plan", str(out), "--move", f"{plan.blocks['key'].iloc[0]}=東和", "--out", str(tmp_path / "x3.gpkg")],
         plan.blocks["key"].iloc[0]),
        (["plan", str(sample_shp), "--auto", "--k", "14", "--min-area-km2", "146", "--out", str(tmp_path / "x4.gpkg")],
         "max feasible k = 6"),
        (["plan", str(sample_shp), "--auto", "--k", "15", "--out", str(tmp_path / "x5.gpkg")], "1–14"),
        (["plan", str(out), "--by", "OLD_MUNI", "--min-area-km2", "146", "--out", str(tmp_path / "x6.gpkg")],
         "already a plan"),
        (["plan", str(out), "--min-area-km2", "146", "--out", str(tmp_path / "x7.gpkg")], "石鳥谷地域"),
        (["plan", str(sample_shp), "--by", "OLD_MUNI", "--out", str(out)], "already exists"),
    ]
    for argv, needle in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert needle in err and "Traceback" not in err, (argv, err)
    assert not any(tmp_path.glob("x*.gpkg"))


def test_cli_help_has_worked_example(capsys):
    with pytest.raises(SystemExit):
        main(["plan", "--help"])
    text = capsys.readouterr().out
    assert "example:" in text and "--by OLD_MUNI" in text and "--auto" in text


def test_cli_auto_overlay_and_import(sample_shp, shared_data, tmp_path, capsys):
    cand = tmp_path / "cand.csv"
    assert main(["plan", str(sample_shp), "--auto", "--k", "3-4", "--follow-old", "OLD_MUNI", "--seed", "0",
                 "--restarts", "3", "--candidates-out", str(cand), "--out", str(tmp_path / "auto.gpkg"),
                 "--export-csv", str(tmp_path / "auto.csv")]) == 0
    out = capsys.readouterr().out
    assert "candidates (ranked)" in out
    header = cand.read_text(encoding="utf-8-sig").splitlines()[0]
    assert header.startswith("順位,地域数,推奨,条件を満たす") and "ssd" not in header and "ch_score" not in header
    table = read_candidates_table(cand)          # Japanese headers read back to the English keys
    assert {"k", "objective", "min_area_km2", "min_core_share", "feasible", "violations"} <= set(table.columns)
    assert sorted(table["k"]) == [3, 4]
    best_k = int(table.loc[table["rank"] == 1, "k"].item())
    assert read_plan(tmp_path / "auto.gpkg").k == best_k
    # the exported auto plan re-imports to the same assignment
    assert main(["plan", str(sample_shp), "--import-csv", str(tmp_path / "auto.csv"),
                 "--out", str(tmp_path / "again.gpkg")]) == 0
    a, b = read_plan(tmp_path / "auto.gpkg"), read_plan(tmp_path / "again.gpkg")
    assert (a.blocks["subarea"].to_numpy() == b.blocks["subarea"].to_numpy()).all()
    assert list(a.subareas["name"]) == list(b.subareas["name"])
    review = tmp_path / "review.csv"
    assert main(["plan", str(sample_shp), "--overlay", str(shared_data / APPROX_OLD), "--overlay-name",
                 "old_muni_name", "--review-out", str(review), "--out", str(tmp_path / "ov.gpkg")]) == 0
    assert len(pd.read_csv(review, encoding="utf-8-sig", dtype=str)) > 0


def test_cli_refuses_outputs_it_would_not_write(sample_shp, tmp_path, capsys):
    """--candidates-out without --auto, --review-out without --overlay, a non-.gpkg --out
    and one file named for two outputs were accepted (and 'wrote …' claimed, or a
    traceback from the GeoPackage writer): now refused up front, nothing written."""
    t = tmp_path
    cases = [
        (["--by", "OLD_MUNI", "--candidates-out", str(t / "c.csv"), "--out", str(t / "x1.gpkg")], "--auto"),
        (["--by", "OLD_MUNI", "--review-out", str(t / "r.csv"), "--out", str(t / "x2.gpkg")], "--overlay"),
        (["--by", "OLD_MUNI", "--pick", "3", "--out", str(t / "x3.gpkg")], "--pick needs --auto"),
        (["--auto", "--k", "3", "--pick", "5", "--out", str(t / "x4.gpkg")], "--pick 5"),
        (["--by", "OLD_MUNI", "--out", str(t / "x5.shp")], ".gpkg"),
        (["--by", "OLD_MUNI", "--out", str(t / "x6.csv"), "--export-csv", str(t / "x6.csv")], ".gpkg"),
        (["--by", "OLD_MUNI", "--out", str(t / "x7.gpkg"), "--export-csv", str(t / "x7.gpkg")], "same file"),
    ]
    for extra, needle in cases:
        assert main(["plan", str(sample_shp), *extra]) == 2, extra
        err = capsys.readouterr().err
        assert needle in err and "Traceback" not in err, (extra, err)
    assert not list(t.iterdir())


def test_cli_plan_edit_refusals_say_how(sample_shp, tmp_path, capsys):
    out = tmp_path / "p.gpkg"
    assert main(["plan", str(sample_shp), "--by", "OLD_MUNI", "--out", str(out)]) == 0
    capsys.readouterr()
    # an unknown --island-exception on a saved plan was silently stored in the plan
    assert main(["plan", str(out), "--island-exception", "123", "--out", str(tmp_path / "x1.gpkg")]) == 2
    assert "123" in capsys.readouterr().err
    # the --rename format error showed a --move example (032050010=2)
    assert main(["plan", str(out), "--rename", "2", "--out", str(tmp_path / "x2.gpkg")]) == 2
    err = capsys.readouterr().err
    assert "--rename 2=" in err and "032050010" not in err
    # an unknown --move key: the hint names a real key instead of only "keep the leading zero"
    assert main(["plan", str(out), "--move", "032050010=2", "--out", str(tmp_path / "x3.gpkg")]) == 2
    assert "032050011" in capsys.readouterr().err
    assert not list(tmp_path.glob("x*"))


def test_cli_plan_help_edit_example_runs_as_written(sample_shp, tmp_path, capsys, monkeypatch):
    """The --help example used --move 032050010=2, a key not in the sample (exit 2)."""
    import shlex

    from subdivide.cli.commands import plan as plan_cmd

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").symlink_to(sample_shp.parents[1])
    lines = [ln.strip() for ln in plan_cmd.EXAMPLE.replace("\\\n", " ").splitlines()]
    cmds = [shlex.split(ln)[1:] for ln in lines if ln.startswith("subdivide plan") and "--auto" not in ln]
    assert len(cmds) == 3
    for argv in cmds:
        assert main(argv) == 0, argv
    text = capsys.readouterr().out
    assert "wrote edited.plan.gpkg" in text and "wrote imported.plan.gpkg" in text
    edited, imported = read_plan(tmp_path / "edited.plan.gpkg"), read_plan(tmp_path / "imported.plan.gpkg")
    assert edited.k == 4
    assert imported.subareas.equals(edited.subareas)
    assert (imported.blocks["subarea"].to_numpy() == edited.blocks["subarea"].to_numpy()).all()


def test_overlay_reader_refuses_points_and_ambiguous_layers_and_decodes_cp932(sample_blocks, old_plan, tmp_path):
    """Bugs: a point layer (offices) was accepted and made a plan; a multi-layer
    GeoPackage silently used its first layer; a CP932 Shapefile without .cpg (the usual
    Japanese case) gave mojibake sub-area names (Ôª地域)."""
    import geopandas as gpd

    old = gpd.read_file(SAMPLE_DIR / "old_municipalities_approx.geojson")
    with pytest.raises(UserError, match="must hold polygons"):
        read_polygons(SAMPLE_DIR / "offices.geojson")
    gpkg = tmp_path / "layers.gpkg"
    gpd.read_file(SAMPLE_DIR / "offices.geojson").to_file(gpkg, layer="offices")
    old.to_file(gpkg, layer="old")
    with pytest.raises(UserError, match="2 layers") as exc:
        read_polygons(gpkg)
    assert "--overlay-layer" in exc.value.fix
    with pytest.raises(UserError, match="no layer 'nope'"):
        read_polygons(gpkg, layer="nope")
    assert len(read_polygons(gpkg, layer="old")) == len(old)
    for enc in ("cp932", "utf-8"):
        shp = tmp_path / enc / "old.shp"
        shp.parent.mkdir()
        old[["OLD_MUNI", "geometry"]].to_file(shp, encoding=enc)
        for cpg in shp.parent.glob("*.cpg"):
            cpg.unlink()                     # as Japanese Shapefiles usually come
        polys = read_polygons(shp)
        assert sorted(polys["OLD_MUNI"]) == sorted(old["OLD_MUNI"]), enc
        plan, _ = plan_by_overlay(sample_blocks, polys, "OLD_MUNI")
        assert sorted(plan.subareas["name"]) == sorted(old_plan.subareas["name"])


def test_cli_overlay_layer_option(sample_shp, tmp_path, capsys):
    gpkg = SAMPLE_DIR / "hanamaki_sample.gpkg"
    base = ["plan", str(sample_shp), "--overlay", str(gpkg), "--overlay-name", "OLD_MUNI"]
    assert main(base + ["--out", str(tmp_path / "x.gpkg")]) == 2
    assert "--overlay-layer" in capsys.readouterr().err
    assert not (tmp_path / "x.gpkg").exists()
    assert main(base + ["--overlay-layer", "old_municipalities_approx", "--out", str(tmp_path / "ok.gpkg")]) == 0
    assert read_plan(tmp_path / "ok.gpkg").k == 4


def test_assignment_csv_mixing_numbers_and_names(old_plan, tmp_path):
    """A staffer overwrote one `subarea` number with a name in Excel: every number became
    a name of its own (「1地域」, 「2地域」 …) and the typed name came first."""
    f = export_assignment_csv(old_plan, tmp_path / "a.csv")
    df = pd.read_csv(f, dtype=str, encoding="utf-8-sig")
    ishi = df.loc[df["subarea_name"] == "石鳥谷地域", "key"].iloc[0]
    df.loc[df["key"] == ishi, "subarea"] = "石鳥谷地域"          # same sub-area, written as a name
    df.to_csv(tmp_path / "mixed.csv", index=False, encoding="utf-8-sig")
    back, report = plan_from_assignment_csv(old_plan, tmp_path / "mixed.csv")
    assert list(back.subareas.sort_values("subarea")["name"]) == list(old_plan.subareas.sort_values("subarea")["name"])
    assert (_labels(back) == _labels(old_plan)).all()
    assert "ASSIGNMENT-MIXED" in {x.rule for x in report.findings}
    # a short name (東和 for 東和地域) without the subarea_name column joins the same sub-area
    d2 = df.drop(columns=["subarea_name"])
    d2.loc[d2["key"] == ishi, "subarea"] = "3"
    towa = d2.loc[d2["subarea"] == "4", "key"].iloc[0]
    d2.loc[d2["key"] == towa, "subarea"] = "東和"
    d2.to_csv(tmp_path / "short.csv", index=False, encoding="utf-8-sig")
    back, _ = plan_from_assignment_csv(old_plan, tmp_path / "short.csv")
    assert (_labels(back) == _labels(old_plan)).all() and back.k == 4


def test_cli_plan_reads_a_mapped_layer_and_takes_encoding(sample_blocks, tmp_path, capsys):
    """`plan` told users to pass --key COL … for a non-e-Stat layer but had no such
    options (argparse error); --encoding was missing too."""
    b = sample_blocks
    src = tmp_path / "blocks.gpkg"
    b[["key", "name", "population", "OLD_MUNI", "geometry"]].rename(
        columns={"key": "code", "name": "town", "population": "pop"}).to_file(src, layer="blocks")
    out = tmp_path / "p.gpkg"
    assert main(["plan", str(src), "--key", "code", "--name", "town", "--population", "pop",
                 "--muni", "03205", "--by", "OLD_MUNI", "--out", str(out)]) == 0
    plan = read_plan(out)
    assert plan.k == 4 and plan.metrics["population"].sum() == b["population"].sum()
    capsys.readouterr()
    assert main(["plan", str(SAMPLE_DIR / "h27ka03205.shp"), "--encoding", "utf-8", "--by", "OLD_MUNI",
                 "--out", str(tmp_path / "x.gpkg")]) == 2
    assert "--encoding" in capsys.readouterr().err
    assert main(["plan", str(src), "--name", "town", "--by", "OLD_MUNI", "--out", str(tmp_path / "y.gpkg")]) == 2
    assert "need --key" in capsys.readouterr().err
    assert not list(tmp_path.glob("[xy].gpkg"))


def test_cli_outputs_that_are_folders_or_under_files_are_refused_up_front(old_plan, tmp_path, capsys):
    """--export-csv DIR --force deleted the folder (and its contents) and wrote the CSV in
    its place; --export-csv FILE/x.csv crashed with a traceback after the plan .gpkg had
    already been written (a partial set of outputs)."""
    plan_file = old_plan.save(tmp_path / "p.gpkg")
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "keep.txt").write_text("keep")
    assert main(["plan", str(plan_file), "--out", str(tmp_path / "a.gpkg"), "--export-csv", str(folder),
                 "--force"]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert (folder / "sub" / "keep.txt").read_text() == "keep"
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["plan", str(plan_file), "--out", str(tmp_path / "b.gpkg"),
                 "--export-csv", str(afile / "x.csv")]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and "Traceback" not in err
    assert not (tmp_path / "a.gpkg").exists() and not (tmp_path / "b.gpkg").exists()


def test_mapping_by_old_muni_names_without_by_suggests_the_column(sample_blocks, tmp_path):
    """A 旧市町村 mapping (花巻,中央地域 …) given without --by listed 463 unmapped blocks and
    said only 'add them to the mapping file'."""
    f = tmp_path / "old.csv"
    f.write_text("key,subarea\r\n花巻,中央地域\r\n大迫,北部地域\r\n石鳥谷,北部地域\r\n東和,東部地域\r\n",
                 encoding="utf-8-sig")
    with pytest.raises(PlanCheckError) as exc:
        plan_from_mapping(sample_blocks, f)
    assert "--by OLD_MUNI" in exc.value.fix
    plan, _ = plan_from_mapping(sample_blocks, f, by="OLD_MUNI")
    assert plan.k == 3


def test_overlay_missing_the_municipality_is_an_error(sample_blocks):
    import geopandas as gpd
    import shapely

    from subdivide.make.planning import plan_by_overlay

    b = sample_blocks.total_bounds
    far = gpd.GeoDataFrame({"old": ["遠方"]}, geometry=[shapely.box(b[2] + 10_000, b[3] + 10_000,
                                                                   b[2] + 50_000, b[3] + 50_000)],
                           crs=sample_blocks.crs)
    with pytest.raises(UserError, match="cover only 0%") as ei:
        plan_by_overlay(sample_blocks, far, "old")
    assert ei.value.where == "--overlay"


@pytest.mark.parametrize("name", ["大迫", "大\n迫地域", "大迫\u200b地域"])
def test_rename_refuses_names_the_validator_refuses(sample_plan, name):
    with pytest.raises(UserError, match="NAME-FORMAT"):
        rename_subarea(sample_plan, 2, name)
