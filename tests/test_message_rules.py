"""Every lint rule of MESSAGES.md §12: a case that makes it fire (with its severity) and a
clean message of the same kind on which it stays quiet; the test vectors V1–V14."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest

from subdivide.carrier.messages.categories import load_vocabulary
from subdivide.carrier.messages.lint import CHECKS, LintConfig, lint_message, lint_messages
from subdivide.carrier.messages.message import Context, Message
from subdivide.carrier.messages.rules import RULE_LIST, RULES

DAY = datetime(2026, 12, 1, 15, 0)
NIGHT = datetime(2026, 12, 1, 2, 30)
CFG = LintConfig()
CFG2020 = LintConfig(load_vocabulary("2020"))

#: every context field given, all "safe": no rule is skipped for want of context
FULL = Context(muni_name="花巻市", send_time=DAY, target_area="大迫地域",
               operational_subareas=("花巻地域", "大迫地域", "石鳥谷地域", "東和地域"),
               auto_relay_jalert=False, prior_corrections=0)

EVAC = ("警戒レベル4 全員避難\nこちらは花巻市です\n発令内容: 12月01日15時00分、以下の地域に避難指示を発令\n"
        "対象地域: 大迫地域\n理由: 大雨により稗貫川氾濫の恐れ\n"
        "行動要請: 対象の地域の方は速やかに安全な場所へ避難してください\n"
        "開設されている避難所: 市HPをご確認ください\n(花巻市)")
DRILL = ("【訓練】警戒レベル4 全員避難\nこちらは花巻市です\n発令内容: 12月01日15時00分、以下の地域に避難指示を発令\n"
         "対象地域: 大迫地域\n理由: 大雨により稗貫川氾濫の恐れ\n行動要請: 対象の地域の方は速やかに安全な場所へ避難してください\n"
         "※これは訓練です。\n実際に避難指示が発令された場合も緊急速報メールでお知らせします※\n(花巻市)")
CORRECTION = ("こちらは花巻市です\nさきほど配信した緊急速報メールの対象地域に誤りがありましたので訂正します\n"
              "(誤)対象地域: 大迫地域\n(正)対象地域: 東和地域\n(花巻市)")
ITEM17 = ("こちらは花巻市です\n発令内容: 12月01日から12月14日まで、市内全域に外出自粛要請が発令されています\n"
          "行動要請: 通院、食料の買い出し、通勤等を除き外出を控えてください\n(花巻市)")
TSUNAMI = ("こちらは花巻市です\n発令内容: 沿岸部に津波警報が発表されました\n行動要請: 直ちに高台等へ避難し、身の安全を確保してください\n"
           "その他: 津波到着予想時刻は15時30分、予想される津波の高さは3m\n(花巻市)")
SPLIT2 = ("こちらは花巻市です\n先ほどの緊急速報メールの続きです\n対象地域: 大迫地域\n開設された避難所: 大迫小学校、大迫中学校\n"
          "近所の方にも声をかけて避難してください\n(花巻市)")


def evac(**kw) -> Message:
    ctx = {k: kw.pop(k) for k in list(kw) if k in Context.__dataclass_fields__}
    base = Message("避難指示", EVAC, "避難指示", "m", replace(FULL, **ctx))
    return replace(base, **kw)


def drill(**kw) -> Message:
    kw.setdefault("title", "【訓練】避難指示")
    kw.setdefault("body", DRILL)
    kw.setdefault("pre_announced", True)
    kw.setdefault("drill_kind", "municipal")
    return evac(is_drill=True, **kw)


def correction(**kw) -> Message:
    kw.setdefault("title", "避難指示(訂正)")
    kw.setdefault("body", CORRECTION)
    return evac(is_correction=True, original_body=EVAC, **kw)


def item17(**kw) -> Message:
    kw.setdefault("title", "外出自粛要請")
    kw.setdefault("body", ITEM17)
    kw.setdefault("category", "外出自粛要請")
    kw.setdefault("target_area", "whole")
    kw.setdefault("governor_instruction", True)
    kw.setdefault("trigger", "started")
    return evac(**kw)


def tsunami(**kw) -> Message:
    kw.setdefault("title", "津波警報(沿岸部)")
    kw.setdefault("body", TSUNAMI)
    kw.setdefault("category", "津波警報")
    return evac(**kw)


def split2(**kw) -> Message:
    kw.setdefault("title", "避難指示の避難所情報")
    kw.setdefault("body", SPLIT2)
    return evac(is_continuation=True, **kw)


CLEAN = {"evacuation": evac, "drill": drill, "correction": correction, "item17": item17,
         "tsunami": tsunami, "continuation": split2}


def ids(msg: Message, cfg: LintConfig = CFG) -> set[str]:
    return lint_message(msg, cfg).rule_ids()


def severity(msg: Message, rule: str, cfg: LintConfig = CFG) -> str:
    return next(f.severity for f in lint_message(msg, cfg).findings if f.rule == rule)


@pytest.mark.parametrize("kind", sorted(CLEAN))
def test_clean_messages_raise_nothing_and_skip_nothing(kind):
    res = lint_message(CLEAN[kind](), CFG)
    assert res.findings == [], [str(f) for f in res.findings]
    assert res.not_checked == {"L44": "needs send_time"} or res.not_checked == {}


#: rule → (a message that makes it fire, the clean kind it must stay quiet on, config)
FIRE = {
    "L01": (lambda: evac(category="熱中症警戒アラート", title="熱中症警戒アラート"), "evacuation"),
    "L02": (lambda: evac(sender_type="prefecture", body=EVAC.replace("花巻市", "岩手県")), "evacuation"),
    "L03": (lambda: item17(governor_instruction=None), "item17"),
    "L04": (lambda: item17(trigger=None), "item17"),
    "L05": (lambda: item17(send_time=datetime(2026, 12, 1, 23, 30)), "item17"),
    "L06": (lambda: item17(is_lifting=True), "item17"),
    "L07": (lambda: tsunami(body="こちらは花巻市です\n津波警報発表\n(花巻市)"), "tsunami"),
    "L08": (lambda: evac(auto_relay_jalert=True), "evacuation"),
    "L09": (lambda: evac(body=EVAC + "\n詳しくは https://www.city.example.lg.jp/"), "evacuation"),
    "L10": (lambda: evac(body=EVAC + "\n問合せ: ０３－１２３４－５６７８"), "evacuation"),
    "L11": (lambda: evac(body=EVAC + "\nbousai＠city.example.jp"), "evacuation"),
    "L12": (lambda: evac(title="避難指示(大迫地域・石鳥谷地域)"), "evacuation"),
    "L13": (lambda: evac(body=EVAC + "\n" + "あ" * (200 - len(EVAC) - EVAC.count("\n") - 1)), "evacuation"),
    "L14": (lambda: evac(title="避難指示\n大迫"), "evacuation"),
    "L15": (lambda: evac(body=EVAC + "\nｷｹﾝ①"), "evacuation"),
    "L16": (lambda: evac(body=EVAC.split("\n", 1)[1]), "evacuation"),
    "L17": (lambda: evac(body=EVAC.replace("警戒レベル4", "警戒レベル3")), "evacuation"),
    "L18": (lambda: drill(title="【訓練】緊急地震速報"), "drill"),
    "L19": (lambda: drill(body=EVAC + "\n実際に避難指示が発令された場合も緊急速報メールでお知らせします"), "drill"),
    "L20": (lambda: drill(title="避難指示"), "drill"),
    "L21": (lambda: drill(title="避難指示(大迫地域・東和地域)"), "drill"),
    "L22": (lambda: drill(body=DRILL + "\n10時から花巻市訓練を開始します"), "drill"),
    "L23": (lambda: drill(body=DRILL.replace("実際に避難指示が発令された場合も緊急速報メールでお知らせします※\n", "")), "drill"),
    "L24": (lambda: drill(title="【訓練】政府からの発表", body=DRILL + "\nミサイル発射"), "drill"),
    "L25": (lambda: drill(pre_announced=None), "drill"),
    "L26": (lambda: evac(body=EVAC + "\nこれはテスト配信です"), "evacuation"),
    "L27": (lambda: correction(body=CORRECTION.replace("対象地域", "対象世帯数")), "correction"),
    "L28": (lambda: correction(prior_corrections=1), "correction"),
    "L29": (lambda: correction(body="こちらは花巻市です\n対象地域は東和地域です\n(花巻市)"), "correction"),
    "L30": (lambda: evac(body=EVAC + "\n誤配信のお詫び"), "evacuation"),
    "L31": (lambda: evac(is_lifting=True, title="避難指示(解除)"), "evacuation"),
    "L32": (lambda: evac(category="大雨警報", title="大雨警報", body="こちらは花巻市です\n大雨警報が発表されました"), "evacuation"),
    "L33": (lambda: evac(body=EVAC + "\n明日は小中学校を休校とします"), "evacuation"),
    "L34": (lambda: evac(category="救援物資情報", title="救援物資情報",
                         body="こちらは花巻市です\n救援物資として衣類を配布します\n(花巻市)"), "evacuation"),
    "L35": (lambda: evac(body=EVAC.replace("こちらは花巻市です", "こちらは北上市です")), "evacuation"),
    "L36": (lambda: evac(body=EVAC.replace("行動要請: ", "")), "evacuation"),
    "L37": (lambda: evac(body=EVAC.replace("\n", "。")), "evacuation"),
    "L38": (lambda: split2(body=SPLIT2.replace("先ほどの緊急速報メールの続きです\n", "")), "continuation"),
    "L39": (lambda: evac(body=EVAC + "\n避難所: " + "、".join(f"第{i}小学校" for i in range(1, 40))), "evacuation"),
    "L40": (lambda: evac(send_time=NIGHT), "evacuation"),
    "L41": (lambda: evac(category="噴火警報", title="噴火警報", volcano_level=2), "evacuation"),
    "L42": (lambda: evac(operational_subareas=("花巻地域",)), "evacuation"),
    "L43": (lambda: evac(target_area="大迫"), "evacuation"),
    "L45": (lambda: evac(title="緊急のお知らせ"), "evacuation"),
}


def test_every_rule_has_a_check_and_a_case():
    assert [r.id for r in RULE_LIST] == [f"L{i:02d}" for i in range(1, 46)]
    assert set(CHECKS) == set(RULES)
    assert set(FIRE) | {"L44"} == set(RULES)
    assert {r.severity for r in RULE_LIST} <= {"error", "warning", "info"}
    assert all(r.fix and r.reference and r.what for r in RULE_LIST)


@pytest.mark.parametrize("rule", sorted(FIRE))
def test_rule_fires_with_its_severity(rule):
    msg = FIRE[rule][0]()
    got = ids(msg)
    assert rule in got, f"{rule} did not fire; got {sorted(got)}"
    assert severity(msg, rule) == RULES[rule].severity


@pytest.mark.parametrize("rule", sorted(RULES))
def test_rule_stays_quiet_on_the_clean_message_of_its_kind(rule):
    kind = FIRE[rule][1] if rule in FIRE else "evacuation"
    res = lint_message(CLEAN[kind](), CFG)
    assert rule not in res.rule_ids() and rule not in res.not_checked or rule == "L44"


def test_l44_repeat_fires_within_the_window_and_not_after():
    a = evac(id="a", send_time=DAY)
    b = evac(id="b", send_time=datetime(2026, 12, 1, 15, 20))
    c = evac(id="c", send_time=datetime(2026, 12, 1, 17, 0))
    other_area = evac(id="d", send_time=datetime(2026, 12, 1, 15, 10), target_area="東和地域")
    rep = lint_messages([a, b, c, other_area], CFG)
    by_id = {r.message.id: r.rule_ids() for r in rep.results}
    assert "L44" in by_id["b"] and RULES["L44"].severity == "warning"
    assert "L44" not in by_id["a"] | by_id["c"] | by_id["d"]
    assert lint_messages([a], CFG).results[0].rule_ids() == set()


def test_rules_needing_context_are_reported_as_not_checked():
    bare = Message("避難指示", EVAC, "避難指示")
    res = lint_message(bare, CFG)
    assert {"L05", "L08", "L28", "L40", "L42", "L43", "L44"} <= set(res.not_checked)
    assert res.findings == []


# ---------------------------------------------------------------- finer points
def test_l01_names_the_2021_replacement_and_the_edition():
    res = lint_message(evac(category="避難勧告", title="避難勧告"), CFG)
    f = next(f for f in res.findings if f.rule == "L01")
    assert "避難指示" in f.message and "2021" in f.message
    assert res.to_dict()["findings"][0]["edition"] == "2021"
    assert "L01" not in ids(evac(category="避難勧告", title="避難勧告"), CFG2020)


def test_l10_emergency_numbers_are_warnings_and_dates_are_not_numbers():
    msg = evac(body=EVAC + "\nけが人は119番へ")
    assert severity(msg, "L10") == "warning"
    assert "L10" not in ids(evac(body=EVAC + "\n12月01日15時00分 0320501 高さ110m"))
    assert "L10" in ids(evac(body=EVAC + "\n+81 3 1234 5678"))
    assert "L10" in ids(evac(title="0120-123-456"))


def test_l09_host_names_and_full_width_urls_but_not_hp():
    assert "L09" in ids(evac(body=EVAC + "\nｗｗｗ．ｃｉｔｙ．ｈａｎａｍａｋｉ．ｉｗａｔｅ．ｊｐ"))
    assert "L09" in ids(evac(body=EVAC + "\ncity.hanamaki.iwate.jp"))
    assert "L09" in ids(evac(title="ｈｔｔｐ://a.jp"))
    assert "L09" not in ids(evac(body=EVAC.replace("市HP", "市ホームページ")))
    # an e-mail address is L11, not also L09
    assert ids(evac(body=EVAC + "\nbousai＠city.example.jp")) & {"L09", "L11"} == {"L11"}


def test_l13_reports_count_and_overflow():
    body = EVAC + "\n" + "あ" * (200 - len(EVAC) - EVAC.count("\n") - 2)
    assert lint_message(evac(body=body), CFG).body_count == 200 and "L13" not in ids(evac(body=body))
    res = lint_message(evac(body=body + "い"), CFG)
    f = next(f for f in res.findings if f.rule == "L13")
    assert "201 characters" in f.message and "「い」" in f.message


def test_l16_not_for_causes_out_of_scope():
    quake = EVAC.split("\n", 1)[1].replace("大雨により稗貫川氾濫の恐れ", "地震により建物倒壊の恐れ")
    assert "L16" not in ids(evac(body=quake))
    assert "L16" in ids(evac(body=quake, hazard_cause="土砂災害"))


def test_l17_level_right_but_action_phrase_of_another_level():
    assert "L17" in ids(evac(body=EVAC.replace("全員避難", "高齢者等避難")))
    assert "L17" in ids(evac(body=EVAC.replace(" 全員避難", "")))


def test_l33_water_restoration_is_allowed_under_item_1():
    body = "こちらは花巻市です\n断水していた大迫地域の水道は復旧しました\n(花巻市)"
    assert "L33" not in ids(evac(category="復旧情報", title="復旧情報", body=body))
    assert "L33" in ids(evac(category="復旧情報", title="復旧情報", body=body.replace("水道は復旧しました", "断水中です")))


def test_l38_first_part_must_announce_the_next():
    first = evac(continues_next=True)
    assert "L38" in ids(first)
    assert "L38" not in ids(evac(continues_next=True, body=EVAC + "\n開設されている避難所: 次の緊急速報メールでお知らせします"))


def test_l41_flood_watch_and_crater_warnings():
    assert "L41" in ids(evac(category="指定河川洪水予報", title="指定河川洪水予報", river_info_kind="はん濫注意情報"))
    assert "L41" in ids(evac(category="噴火警報", title="噴火警報", volcano_warning_type="噴火警報(火口周辺)"))
    assert "L41" not in ids(evac(category="噴火警報", title="噴火警報", volcano_level=4))


# ---------------------------------------------------------------- test vectors (MESSAGES.md §12.1)
T2 = ("警戒レベル4 全員避難\nこちらは花巻市です\n発令内容: 12月01日15時00分、以下の地域に避難勧告を発令\n"
      "対象地域: 大迫地域、東和地域\n理由: 大雨により稗貫川氾濫の恐れ\n"
      "行動要請: 対象の地域の方は速やかに安全な場所へ避難してください\n"
      "開設されている避難所: 大迫小学校、東和中学校、土沢公民館\n(花巻市)")


def test_v1_t2_with_two_areas_and_three_shelters_passes():
    msg = evac(title="避難勧告", category="避難勧告", body=T2)
    res = lint_message(msg, CFG2020)
    assert res.body_count <= 200 and res.findings == []


@pytest.mark.parametrize("body, rule", [
    ("詳しくは https://www.city.example.lg.jp/ ", "L09"),       # V2
    ("問合せ: ０３－１２３４－５６７８", "L10"),                    # V3
    ("bousai＠city.example.jp", "L11"),                          # V4
])
def test_v2_v3_v4_forbidden_elements(body, rule):
    assert severity(evac(body=EVAC + "\n" + body), rule) == "error"


def test_v5_hp_reference_is_no_url():
    assert "L09" not in ids(evac(body=EVAC + "\n開設されている避難場所: 自治体HPをご確認ください"))


def test_v6_long_drill_title_then_the_fix():
    body = ("【訓練】警戒レベル3 高齢者等避難\nこちらは花巻市です\n発令内容: 12月01日15時00分、以下の地域に"
            "避難準備・高齢者等避難開始を発令\n対象地域: 大迫地域\n理由: 大雨により稗貫川氾濫の恐れ\n"
            "行動要請: 高齢者等は避難してください\n※これは訓練です。\n"
            "実際に避難準備・高齢者等避難開始が発令された場合も緊急速報メールでお知らせします※\n(花巻市)")
    bad = drill(title="【訓練】避難準備・高齢者等避難開始", category="避難準備・高齢者等避難開始", body=body)
    assert severity(bad, "L12", CFG2020) == "error"
    fixed = replace(bad, title="避難準備・高齢者等避難開始")
    res = lint_message(fixed, CFG2020)
    assert res.rule_ids() == {"L21"} and res.status == 0


def test_v7_v8_v9_drills():
    assert severity(drill(title="避難勧告", category="避難勧告", body=DRILL.replace("避難指示", "避難勧告")),
                    "L20", CFG2020) == "error"
    assert "L18" in ids(drill(title="【訓練】緊急地震速報"))
    assert "L22" in ids(drill(body=DRILL + "\n10時から〇〇市訓練を開始します"))


def test_v10_second_correction():
    assert severity(correction(prior_corrections=1), "L28") == "error"


def test_v12_v13_v14():
    v12 = evac(title="避難勧告", category="避難勧告", body=T2.replace("警戒レベル4", "警戒レベル3"))
    assert severity(v12, "L17", CFG2020) == "warning"
    v13 = evac(title="熱中症警戒アラート", category="熱中症警戒アラート", body="こちらは花巻市です\n熱中症警戒アラート発表")
    assert {"L01", "L33"} <= ids(v13)
    v14 = evac(title="大雨警報", category="", body="こちらは花巻市です\n大雨警報が発表されました")
    assert severity(v14, "L32") == "error"


def test_user_text_is_never_a_template():
    """A body full of template syntax is linted as text: counted as typed, nothing expanded."""
    body = EVAC.replace("大迫地域", "{muni}{{ 7*7 }}%(x)s地域")
    res = lint_message(evac(body=body, target_area="{muni}{{ 7*7 }}%(x)s地域"), CFG)
    assert res.body_count == len(body) + body.count("\n")
    assert "49" not in str(res.to_dict())


def test_docs_list_every_rule_with_its_severity():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "messages.md").read_text(encoding="utf-8")
    for r in RULE_LIST:
        assert f"| {r.id} | {r.severity} |" in doc, r.id


def test_docs_worked_example_without_the_phone_line_is_clean_but_for_l40():
    body = ("警戒レベル4 全員避難\nこちらは花巻市です\n発令内容: 12月01日02時40分、以下の地域に避難指示を発令\n対象地域: 大迫地域\n"
            "理由: 大雨により稗貫川氾濫の恐れ\n行動要請: 対象の地域の方は速やかに安全な場所へ避難してください\n"
            "問合せ: 防災危機管理課 ０１９８－２４－２１１１\n(花巻市)")
    ctx = Context(muni_name="花巻市", send_time=datetime(2026, 12, 1, 2, 40), target_area="大迫地域")
    res = lint_message(Message("避難指示", body, "避難指示", "message", ctx), CFG)
    assert res.rule_ids() == {"L10", "L40"} and res.body_count == 155
    res = lint_message(Message("避難指示", body.replace("問合せ: 防災危機管理課 ０１９８－２４－２１１１\n", ""), "避難指示",
                               "message", ctx), CFG)
    assert res.rule_ids() == {"L40"} and res.status == 0
