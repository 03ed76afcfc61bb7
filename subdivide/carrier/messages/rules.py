"""The lint rules of MESSAGES.md §12, defined once: id, severity, what fires it, how to
fix it, where the guide says so, and what context the check needs.

Severities follow :mod:`subdivide.core.findings`: ``error`` (MESSAGES.md ERROR: breaks the
carriers' terms or a hard limit; do not send), ``warning`` (WARN: the guide's
recommendation), ``info`` (INFO: a planning hint).

``needs`` names the context a rule cannot be checked without. When that context is not
given the rule is listed under "not checked" in the report rather than silently passing;
``()`` means the title, body and category suffice.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    what: str        # the condition, in words (shown when the rule fires)
    fix: str         # what to do about it
    reference: str   # the guide's section / page (MESSAGES.md)
    needs: tuple[str, ...] = ()


def _r(id_, severity, what, fix, reference, needs=()):
    return Rule(id_, severity, what, fix, reference, tuple(needs))


E, W, I = "error", "warning", "info"

RULE_LIST: tuple[Rule, ...] = (
    _r("L01", E, "category is not one of the 配信可能項目 of this edition",
       "send only an allowed item (配信可能項目); use other channels for anything else", "G§3 p.9; G§6 p.14"),
    _r("L02", E, "a prefecture sends items 1–5 without a proxy basis (代行配信: Definition 1, or 2 with a prior "
       "agreement and a request)", "let the municipality send, or record --proxy-basis def1|def2", "G§3; G p.13",
       ("sender_type",)),
    _r("L03", E, "a municipality sends 外出自粛要請 (item 17) without the governor's instruction",
       "send item 17 only on the prefectural governor's instruction (--governor-instruction)", "G§3 ▲; G§5 p.12"),
    _r("L04", E, "外出自粛要請 not triggered by the start or a change of a 特措法 §45(1) request",
       "send item 17 only when the request starts or changes (--trigger started|changed)", "G§5 p.12"),
    _r("L05", E, "外出自粛要請 sent in the 深夜/早朝 window", "send it outside the night window", "G§5 p.12",
       ("send_time",)),
    _r("L06", W, "lifting (解除) of 外出自粛要請 by 緊急速報メール",
       "announce the lifting on the website, 防災行政無線 or registration-based mail", "G§5 p.12"),
    _r("L07", W, "an item the national government sends itself, with no 付随情報 added (arrival time, height, "
       "shelters, 対象地域, 行動要請)", "add local detail: 対象地域, shelters, arrival time, 行動要請",
       "G§3 ※2–※5; G p.42"),
    _r("L08", E, "the 自動起動装置 is set to relay J-ALERT 国民保護情報 automatically",
       "configure the launcher not to relay 国民保護情報 (消防庁国民保護室 advises)", "G§5 p.11",
       ("auto_relay_jalert",)),
    _r("L09", E, "a URL (Webリンク) in the title or body", "remove the address; write 「市HPをご確認ください」 instead",
       "G§9 p.23"),
    _r("L10", E, "a phone number (電話番号) in the title or body", "remove the number; name the department only",
       "G§9 p.23"),
    _r("L11", E, "an e-mail address (メールアドレス) in the title or body", "remove the address", "G§9 p.23"),
    _r("L12", E, "title longer than 15 characters", "shorten the title (the category name alone fits)",
       "G§8 p.20; G§16 p.32"),
    _r("L13", E, "body longer than 200 characters (a line break counts 2)",
       "shorten the body: drop the その他 line, name the sub-area instead of listing 大字, or refer shelters to "
       "the website", "G§8 p.20; G§9 p.23"),
    _r("L14", W, "line break in the title", "write the title on one line", "G§8 (inference)"),
    _r("L15", W, "half-width katakana, emoji, 機種依存文字 (①, ㈱, ㍻, Ⅰ …) or control characters",
       "use full-width katakana and plain characters (1, (株), 平成, I)", "G 改版履歴 v2.0/v2.1"),
    _r("L16", W, "evacuation information for a flood / landslide / storm-surge cause without a 警戒レベル line",
       "start the body with 「警戒レベルN <action>」", "G§7 p.17–18"),
    _r("L17", W, "警戒レベル does not match the category, or its action phrase is missing",
       "use 警戒レベル3 高齢者等避難 / 警戒レベル4 全員避難 / 警戒レベル5 命を守る最善の行動 as the category requires",
       "G§7 p.17–18"),
    _r("L18", E, "drill of an item that is not allowed, or a drill imitating 緊急地震速報",
       "drill only an allowed item with real-event wording (an earthquake-triggered 避難指示 is allowed)",
       "G§15–17 p.31–35; G p.34, p.52"),
    _r("L19", E, "drill without a drill marker in the body", "put 【訓練】 on the first body line and "
       "「※これは訓練です。」 in the body", "G§15–16 p.31–32"),
    _r("L20", E, "drill title without 【訓練】 although 【訓練】 + title fits in 15 characters",
       "prefix the title with 【訓練】", "G§15–16 p.31–32"),
    _r("L21", I, "drill title without 【訓練】 because it would not fit: the body marker is then mandatory (L19)",
       "keep 【訓練】 in the body", "G§16 p.32"),
    _r("L22", E, "drill logistics instead of real-event wording (訓練開始/終了, 訓練用のメール, 実際の災害ではありません)",
       "write the message as it would be sent in the real event, with the drill markers", "G§15; G p.34; p.53"),
    _r("L23", W, "drill without the closing note that real events are also announced by 緊急速報メール",
       "add 「実際に…が発令された場合も緊急速報メールでお知らせします」", "G p.30, p.33, p.48"),
    _r("L24", E, "国民保護情報 drill outside a drill co-hosted by 内閣官房 and 消防庁",
       "use 国民保護情報 only in co-hosted drills (--drill-kind national-joint); coordinate with 消防庁",
       "G§18 p.37"),
    _r("L25", W, "drill with no resident pre-announcement recorded",
       "announce the drill beforehand on the website etc. (--pre-announced)", "G p.28"),
    _r("L26", E, "a test send (試験 / テスト / test) outside a drill",
       "never send tests; ask the carriers for test accounts", "G§13 p.27; G p.51"),
    _r("L27", E, "correction of an item that was not allowed, or of a field that was not in the original",
       "correct only what the original allowed message said; use other channels otherwise", "G p.54"),
    _r("L28", E, "second correction of the same message", "a correction is sent once only; use other channels",
       "G p.43, p.54", ("prior_corrections",)),
    _r("L29", W, "correction without a (誤)/(正) pair or without a reference to the earlier message",
       "write 「さきほど配信した…に誤りがありました」 and (誤)…/(正)… lines", "G§8 p.21; G p.43"),
    _r("L30", E, "apology (お詫び, 誤送信, 誤配信)", "do not send apologies by 緊急速報メール; use other channels",
       "G p.54"),
    _r("L31", W, "lifting (解除) of evacuation information by 緊急速報メール",
       "prefer the website, 防災行政無線 or registration-based mail", "G§10 p.24"),
    _r("L32", E, "accompanying topic (気象警報, 特別警報, 氾濫, 通行止め, 火災, 雪崩, 原発事故, 放射線, 不発弾) "
       "without an evacuation item", "send it only as the reason of an evacuation item",
       "G p.15; p.44–47"),
    _r("L33", E, "a topic the guide names as never allowed (休校, ブルーシート, 災害ごみ, 罹災証明, 熱中症, 行方不明者, "
       "節水, 断水, 光化学スモッグ, 訓練のお知らせ …)", "use the website, SNS or 防災行政無線",
       "G§4; G p.50–51; 改版履歴 v1.2/v1.4"),
    _r("L34", E, "救援物資 of goods that are not life-critical (only water, food, medicine and the like)",
       "announce other goods on other channels", "G§5 p.11; G p.50"),
    _r("L35", W, "no sender line 「こちらは{自治体名}です」", "add 「こちらは…です」 as the first or second line",
       "G§8 p.20"),
    _r("L36", W, "the 発令内容 / 理由 / 行動要請 slots are missing", "use the labelled layout: 発令内容: / 対象地域: / "
       "理由: / 行動要請:", "G§7 p.18; G§8 p.20"),
    _r("L37", W, "evacuation message written as one paragraph", "one labelled item per line", "G§8 p.19–20"),
    _r("L38", W, "split message without the continuation lines", "message 2 says 「先ほどの緊急速報メールの続きです」; "
       "message 1 says 「次の緊急速報メールでお知らせします」", "G§9 p.23"),
    _r("L39", W, "too long, mostly because of shelter lists", "refer shelters to the website / TV / radio / SNS "
       "instead of splitting", "G§9 p.22"),
    _r("L40", I, "evacuation information at night or early morning", "if evacuation may be needed at night, "
       "decide before dark and consider sending 高齢者等避難 early", "G§11 p.25", ("send_time",)),
    _r("L41", E, "噴火警報 below level 3 (火口周辺警報), or a 噴火警報 type other than 居住地域厳重警戒/入山危険, or "
       "はん濫注意情報 as 指定河川洪水予報", "these are not sendable items", "G§3 items 9–10; G§5 p.11"),
    _r("L42", E, "target sub-area not operational / not registered with the carriers",
       "send to the whole municipality until the sub-area is in operation", "S §6",
       ("target_area", "operational_subareas")),
    _r("L43", W, "sub-area name does not follow 「●●地域」", "name sub-areas 「●●地域」", "S App. A ②",
       ("target_area",)),
    _r("L44", W, "repeated send of the same category to the same area within the window",
       "send again only when something changes; users switch reception off", "G§4; G§5 p.12",
       ("send_time",)),
    _r("L45", W, "title does not contain the category name", "start the title with the category name",
       "G p.18–21, p.42–48"),
)

RULES: dict[str, Rule] = {r.id: r for r in RULE_LIST}
