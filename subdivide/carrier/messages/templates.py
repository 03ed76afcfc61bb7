"""The guide's template structure (MESSAGES.md §5), as data.

A template line is a tuple of literal strings and :class:`Slot` markers. :func:`fill`
joins the literals and the slot values by concatenation only: a value (a sub-area name, a
reason typed by staff) is never parsed, formatted or rendered, so 「{muni}」 or 「{{ x }}」 in a
name stays exactly that text.
"""
from __future__ import annotations

from dataclasses import dataclass

from subdivide.carrier.messages.categories import EVACUATION, Category


@dataclass(frozen=True)
class Slot:
    name: str


Line = tuple  # of str | Slot

DRILL_TITLE = "【訓練】"
DRILL_BODY_PREFIX = "【訓練】"
PLACEHOLDER_TIME = "●●月●●日●●時●●分"
PLACEHOLDER_REASON = "●●●●●●●●"

#: the lines every template shares after its 発令内容 line (G§8 slots d–g and the signature)
_COMMON_LINES: dict[str, Line] = {
    "area": ("対象地域: ", Slot("areas")),
    "reason": ("理由: ", Slot("reason")),
    "request": ("行動要請: ", Slot("request")),
    "shelters": ("開設されている避難所: ", Slot("shelters")),
    "other": ("その他: ", Slot("other")),
    "signature": ("(", Slot("muni"), ")"),
}
_SENDER: Line = ("こちらは", Slot("muni"), "です")

#: slot c–g of the 基本構造 (G§8): evacuation information (T1–T4, and the 2021 names)
EVACUATION_LINES: dict[str, Line] = {
    "level": ("警戒レベル", Slot("level"), " ", Slot("level_action")),
    "sender": _SENDER,
    "issue": ("発令内容: ", Slot("when"), "、以下の地域に", Slot("category"), "を発令"),
    **_COMMON_LINES,
}

#: items announced by others (土砂災害警戒情報, 洪水予報, 津波 …): T5-like, with 対象地域 and 行動要請
ANNOUNCED_LINES: dict[str, Line] = {
    "sender": _SENDER,
    "issue": ("発令内容: ", Slot("when"), "、", Slot("category"), "が発表されました"),
    **_COMMON_LINES,
}

#: 警戒区域情報 (item 5)
ZONE_LINES: dict[str, Line] = dict(ANNOUNCED_LINES, issue=("発令内容: ", Slot("when"), "、以下の地域を警戒区域に設定"))

DRILL_LINES: dict[str, Line] = {
    "drill_note": ("※これは訓練です。", Slot("drill_english")),
    "drill_closing": ("実際に", Slot("closing_what"), Slot("verb"), "された場合も緊急速報メールでお知らせします※"),
}

#: 行動要請 per 警戒レベル (G§7–8 samples)
REQUESTS = {
    3: "高齢者等は危険な場所から避難してください。その他の方は避難の準備をしてください",
    4: "対象の地域の方は速やかに安全な場所へ避難してください",
    5: "対象地域の方は直ちに命を守る最善の行動をとってください",
}
REQUEST_BY_KIND = {
    "tsunami": "直ちに高台等へ避難し、身の安全を確保してください",
    "warning_zone": "対象の地域には立ち入らないでください",
}
REQUEST_DEFAULT = "対象の地域の方は今後の情報に注意し、危険を感じたら速やかに避難してください"
OTHER_DEFAULT = "テレビ・ラジオ等の情報に注意してください"

#: kinds compose supports (others need inputs no plan has: 噴火警報 districts, 国民保護情報 …)
COMPOSABLE_KINDS = (EVACUATION, "warning_zone", "tsunami", "river", "landslide")


def lines_for(cat: Category) -> dict[str, Line]:
    if cat.kind == EVACUATION:
        return EVACUATION_LINES
    if cat.kind == "warning_zone":
        return ZONE_LINES
    return ANNOUNCED_LINES


def request_for(cat: Category) -> str:
    if cat.kind == EVACUATION and cat.level in REQUESTS:
        return REQUESTS[cat.level]
    return REQUEST_BY_KIND.get(cat.kind, REQUEST_DEFAULT)


def fill(line: Line, values: dict[str, str]) -> str:
    """Concatenate literals and slot values (values are data, never templates)."""
    out = []
    for seg in line:
        out.append(values[seg.name] if isinstance(seg, Slot) else seg)
    return "".join(out)
