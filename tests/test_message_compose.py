"""Composing per sub-area on real polygons: the 花巻 sample (4 sub-areas of the 2017 trial)
and 鳥取市 from the real e-Stat file of 鳥取県 (9 sub-areas from the 旧市町村 in the names)."""
from __future__ import annotations

import re
from dataclasses import replace

import pytest

from subdivide.carrier.messages.categories import load_vocabulary
from subdivide.carrier.messages.compose import ComposeOptions, compose_plan, oaza_lists
from subdivide.carrier.messages.counting import count_chars
from subdivide.carrier.messages.lint import LintConfig, lint_message

from conftest import need

TOTTORI_OLD = ("国府町", "福部町", "河原町", "用瀬町", "佐治町", "気高町", "鹿野町", "青谷町")


@pytest.fixture(scope="module")
def hanamaki_sheet(sample_plan):
    return compose_plan(sample_plan, ComposeOptions(categories=("避難指示",)))


@pytest.fixture(scope="module")
def tottori_plan(shared_data):
    from subdivide.io.townblocks import read_townblocks
    from subdivide.model.plan import Plan

    shp = need(shared_data / "tottori_31_estat2015" / "h27ka31.shp", "鳥取県 e-Stat town-blocks")
    blocks, _ = read_townblocks(shp, muni_code="31201")
    label = blocks["name"].map(lambda n: next((o[:-1] for o in TOTTORI_OLD if n.startswith(o)), "鳥取"))
    return Plan.from_assignment(blocks, dict(zip(blocks["key"], label)))


def test_hanamaki_four_sub_areas_lint_clean_and_name_their_sub_area(hanamaki_sheet, sample_plan):
    names = list(sample_plan.subareas["name"])
    assert sorted(names) == sorted(["花巻地域", "大迫地域", "石鳥谷地域", "東和地域"])
    assert len(hanamaki_sheet.rows) == 4
    for row, res, name in zip(hanamaki_sheet.rows, hanamaki_sheet.report.results, names):
        assert res.findings == [], [str(f) for f in res.findings]
        assert row["subarea_name"] == name and row["lint"] == "clean"
        assert re.search("^対象地域: " + name, row["body"], re.M), row["body"]
        assert name in row["title"] and row["title_chars"] <= 15 and row["body_chars"] <= 200
        assert row["body_chars"] == count_chars(row["body"])
        assert "こちらは花巻市です" in row["body"] and row["body"].startswith("警戒レベル4 全員避難")
        assert {"発令内容", "理由", "行動要請"} <= {ln.split(":")[0] for ln in row["body"].split("\n")}
    assert hanamaki_sheet.status == 0


def test_oaza_listed_where_they_fit(hanamaki_sheet, sample_plan):
    oaza = oaza_lists(sample_plan)
    by_name = {r["subarea_name"]: r for r in hanamaki_sheet.rows}
    osaka = by_name["大迫地域"]
    number = int(sample_plan.subareas.set_index("name").loc["大迫地域", "subarea"])
    assert "大迫地域(" + "、".join(oaza[number]) + ")" in osaka["body"] and osaka["dropped_to_fit"] == ""
    hanamaki = by_name["花巻地域"]               # hundreds of 大字: cannot fit, the sub-area alone is named
    assert hanamaki["dropped_to_fit"].startswith("oaza") and "対象地域: 花巻地域\n" in hanamaki["body"]
    # 「第１８地割」「３丁目」 are cut; 「南万丁目」 is a 大字 of its own (no number) and stays
    assert not any(re.search(r"[0-9０-９]+(丁目|地割)$", o) for lst in oaza.values() for o in lst)
    assert "南万丁目" in oaza[int(sample_plan.subareas.set_index("name").loc["花巻地域", "subarea"])]


@pytest.mark.parametrize("inject, field, rule", [
    ("詳しくは https://www.city.hanamaki.iwate.jp/", "body", "L09"),
    ("問合せ: ０１９８－２４－２１１１", "body", "L10"),          # full-width digits
    ("問合せ: 0198-24-2111", "body", "L10"),
    ("bousai＠city.hanamaki.iwate.jp", "body", "L11"),
    ("避難指示(大迫地域・石鳥谷地域)", "title", "L12"),           # 16 characters
    (None, "body", "L13"),                                       # 201 characters
])
def test_injected_faults_in_composed_messages_are_caught(hanamaki_sheet, inject, field, rule):
    for res in hanamaki_sheet.report.results:
        msg = res.message
        if field == "title":
            assert count_chars(inject) == 16
            msg = replace(msg, title=inject)
        elif inject is None:
            msg = replace(msg, body=msg.body + "あ" * (201 - count_chars(msg.body)))
            assert count_chars(msg.body) == 201
        else:
            msg = replace(msg, body=msg.body.replace("(花巻市)", inject))
        got = lint_message(msg, LintConfig())
        assert rule in got.rule_ids() and got.status == 1, (rule, sorted(got.rule_ids()))


def test_tottori_all_evacuation_levels_and_drills(tottori_plan):
    cats = ("高齢者等避難", "避難指示", "緊急安全確保")
    sheet = compose_plan(tottori_plan, ComposeOptions(categories=cats, hazard_cause="洪水"))
    assert len(sheet.rows) == 9 * 3 and sheet.status == 0
    assert all(r.findings == [] for r in sheet.report.results)
    levels = {r["category"]: r["body"].split("\n")[0] for r in sheet.rows}
    assert levels == {"高齢者等避難": "警戒レベル3 高齢者等避難", "避難指示": "警戒レベル4 全員避難",
                      "緊急安全確保": "警戒レベル5 命を守る最善の行動"}
    drills = compose_plan(tottori_plan, ComposeOptions(categories=cats, drill=True))
    for row, res in zip(drills.rows, drills.report.results):
        assert row["title"].startswith("【訓練】") and row["body"].startswith("【訓練】")
        assert res.rule_ids() <= {"L25"}        # only: record the residents' pre-announcement
        assert "※これは訓練です" in row["body"] and row["body_chars"] <= 200


def test_2020_edition_drill_title_too_long_keeps_the_marker_in_the_body(sample_plan):
    cfg = LintConfig(load_vocabulary("2020"))
    sheet = compose_plan(sample_plan, ComposeOptions(categories=("避難準備・高齢者等避難開始",), drill=True), cfg)
    for row, res in zip(sheet.rows, sheet.report.results):
        assert row["title"] == "避難準備・高齢者等避難開始" and row["edition"] == "2020"
        assert res.rule_ids() <= {"L21", "L25"} and "L21" in res.rule_ids() and res.status == 0
        assert row["body"].startswith("【訓練】警戒レベル3 高齢者等避難")


def test_names_are_data_never_templates(sample_blocks):
    from subdivide.model.plan import Plan

    hostile = {"花巻": "=HYPERLINK(\"http://x\")地域", "大迫": "{muni}{{ 7*7 }}地域", "石鳥谷": "%(x)s地域",
               "東和": "<b>東和</b>地域"}
    plan = Plan.from_assignment(sample_blocks, sample_blocks.set_index("key")["OLD_MUNI"], names=hostile)
    sheet = compose_plan(plan, ComposeOptions(include_oaza=False, muni_name="花巻市"))
    for row in sheet.rows:
        assert row["subarea_name"] in row["body"]
    assert "49" not in "".join(r["body"] for r in sheet.rows)
    url_row = next(r for r in sheet.rows if r["subarea_name"].startswith("="))
    assert "L09" in url_row["lint_rules"]       # the name itself carries a URL: lint says so


def test_unknown_or_uncomposable_category_is_a_user_error(sample_plan):
    from subdivide.core.errors import UserError

    with pytest.raises(UserError, match="避難指示"):
        compose_plan(sample_plan, ComposeOptions(categories=("避難勧告",)))      # 2020 name under 2021
    with pytest.raises(UserError, match="cannot be composed"):
        compose_plan(sample_plan, ComposeOptions(categories=("弾道ミサイル情報",)))


@pytest.mark.slow
def test_spill_figures_are_people_outside_who_also_receive_it(sample_plan):
    from subdivide.analysis.spill import spill_report
    from subdivide.carrier.messages.limits import spill_reach

    sheet = compose_plan(sample_plan, ComposeOptions(), spill_km=(2.0,))
    report = spill_report(sample_plan, distances_km=(2.0,))
    ex = report.exposure[report.exposure["population_source"] == "townblocks"]
    for row in sheet.rows:
        expected = ex.loc[ex["from_subarea"] == row["subarea"], "population"].sum()
        assert row["also_receive_2km"] == round(expected)
        assert 0 < row["also_receive_2km"] < sample_plan.blocks["population"].sum()
        assert row["reach_note_2km"].startswith(row["subarea_name"] + "へのメールは、区域外の約")
    assert len(spill_reach(report)) == 4
    assert {x["topic"] for x in sheet.limits} >= {"not stored", "spill", "JAPAN roaming", "handset × network"}


def test_compose_is_deterministic(sample_plan):
    from subdivide.io.output import csv_bytes

    opts = ComposeOptions(categories=("高齢者等避難", "避難指示"), drill=True)
    a, b = compose_plan(sample_plan, opts), compose_plan(sample_plan, opts)
    assert csv_bytes(a.frame()) == csv_bytes(b.frame()) and a.to_json() == b.to_json()
