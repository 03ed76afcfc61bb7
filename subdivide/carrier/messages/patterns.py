"""Text patterns the rules look for, applied to the NFKC form of the text (so that
「ｈｔｔｐ」, 「０３－１２３４－５６７８」 and 「＠」 are caught). Kept apart from the rules so that
each can be tested on its own."""
from __future__ import annotations

import re

# ---------------------------------------------------------------- forbidden elements (G§9)
EMAIL = re.compile(r"[^\s@、。,:：()（）「」]+@[^\s@、。,:：()（）「」]+\.[^\s@、。,:：()（）「」]+")
URL_PATTERNS = (
    re.compile(r"https?://\S*", re.IGNORECASE),
    re.compile(r"(?<![A-Za-z0-9])www\.[^\s、。]*", re.IGNORECASE),
    re.compile(r"(?<![A-Za-z0-9.@-])[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.(?:jp|com|net|org|info|biz)\b", re.IGNORECASE),
)
#: a Japanese number: 0 + 9–10 more digits, or +81 + 9–10 digits, separators - ( ) space
PHONE_CANDIDATE = re.compile(r"(?<![\d.])(?:\+81[-\s]?|0)\d(?:[-()\s]?\d){7,11}(?![\d])")
EMERGENCY_NUMBER = re.compile(r"(?<![\d.#])(?:110|118|119)(?![\d.]|\s*(?:m|時|分|日|月|年|人|世帯|件|%|km|cm|号))")
SHORT_CODE = re.compile(r"#\d{4}(?!\d)")


def phone_numbers(text: str) -> list[str]:
    """Phone numbers (10–11 digits from 0, or +81 …) in NFKC text."""
    out = []
    for m in PHONE_CANDIDATE.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        n = len(digits) - 2 if m.group().startswith("+81") else len(digits)
        if (m.group().startswith("+81") and 9 <= n <= 10) or (digits.startswith("0") and 10 <= n <= 11):
            out.append(m.group().strip())
    return out


def emails(text: str) -> list[str]:
    return [m.group() for m in EMAIL.finditer(text)]


def urls(text: str) -> list[str]:
    """URLs and host names; e-mail addresses are removed first (they are L11, not L09)."""
    rest = EMAIL.sub(" ", text)
    found = []
    for pat in URL_PATTERNS:
        for m in pat.finditer(rest):
            found.append(m.group())
        rest = pat.sub(" ", rest)
    return found


# ---------------------------------------------------------------- characters (§3.4)
HALFWIDTH_KANA = re.compile(r"[\uFF61-\uFF9F]")
EMOJI = re.compile(r"[\U0001F000-\U0001FAFF\u2600-\u27BF\uFE0F\u200D]")
#: 機種依存: circled/parenthesised numbers and letters, enclosed CJK (㈱), CJK compatibility (㍻),
#: Roman numerals
DEVICE_DEPENDENT = re.compile(r"[\u2460-\u24FF\u2776-\u277F\u3200-\u33FF\u2160-\u217F]")
CONTROL = re.compile(r"[\x00-\x09\x0B-\x1F\x7F-\x9F\u200B\u2028\u2029]")

# ---------------------------------------------------------------- structure (§5)
LEVEL = re.compile(r"警戒レベル\s*([1-5])")
SENDER = re.compile(r"こちらは\s*(.+?)\s*です")
SLOTS = {"発令内容": re.compile(r"発令内容\s*[:：]"), "理由": re.compile(r"理由\s*[:：]"),
         "行動要請": re.compile(r"行動要請\s*[:：]")}
DRILL_MARKER = re.compile(r"【訓練】|訓練です|訓練メール|for drill|訓練\)|\(訓練", re.IGNORECASE)
DRILL_CLOSING = re.compile(r"実際に.{0,30}(?:場合も|場合は).{0,20}緊急速報メール|実際の災害時には")
DRILL_LOGISTICS = re.compile(r"訓練を\s*(?:開始|実施|終了)|訓練(?:開始|終了)(?:します|しました|時刻)|訓練用のメール|"
                             r"実際の災害ではありません|訓練は\s*\d{1,2}\s*(?:時|:)|\d{1,2}\s*(?:時|:)\d*\s*分?から.{0,10}訓練")
EEW = re.compile(r"緊急地震速報")
QUAKE = re.compile(r"地震|揺れ|震度")
NATIONAL_PROTECTION = re.compile(r"ミサイル|政府からの発表|国民保護")
TEST_SEND = re.compile(r"試験配信|試験送信|試験|テスト|(?<![A-Za-z])test(?![A-Za-z])", re.IGNORECASE)
WRONG_RIGHT = (re.compile(r"\(誤\)|【誤】|誤:|誤\s*→"), re.compile(r"\(正\)|【正】|正:|→\s*正"))
EARLIER = re.compile(r"さきほど|先ほど|先程|前回|配信した|お送りした")
APOLOGY = re.compile(r"お詫び|おわび|お侘び|誤送信|誤配信")
CONTINUATION = re.compile(r"(?:先ほど|さきほど|先程)の緊急速報メールの続き|続きです")
CONTINUES_NEXT = re.compile(r"次の緊急速報メールでお知らせ")
IN_SCOPE_HAZARD = re.compile(r"洪水|氾濫|はん濫|土砂|がけ崩れ|崖崩れ|土石流|高潮|内水|浸水")
IN_SCOPE_CAUSES = ("洪水", "土砂災害", "高潮", "内水氾濫")
ACCOMPANYING = re.compile(r"大雨警報|暴風警報|竜巻注意情報|大雪警報|暴風雪警報|波浪警報|高潮警報|特別警報|"
                          r"氾濫|はん濫|通行止め|火災|雪崩|なだれ|原子力発電所|原発|放射線|不発弾")
NG_TOPICS = re.compile(r"休校|臨時休業|ブルーシート|災害ごみ|災害ゴミ|罹災証明|修理.{0,10}トラブル|悪質.{0,4}業者|"
                       r"熱中症|行方不明|節水|断水|下水道.{0,4}使用制限|光化学スモッグ|"
                       r"緊急速報メール.{0,6}始めました|防災訓練.{0,10}(?:行います|実施します|お知らせ)|訓練のお知らせ")
RESTORATION = re.compile(r"復旧")
SUPPLIES = re.compile(r"救援物資|物資|配給|配布")
NON_CRITICAL_GOODS = re.compile(r"ブルーシート|土のう|土嚢|衣類|衣服|日用品|雑貨|家電|清掃用具|ごみ袋|ゴミ袋|"
                                r"タオル|洗剤|おもちゃ|文房具")
SHELTER_LINE = re.compile(r"避難所|避難場所|公民館|小学校|中学校|高校|センター|体育館|集会所|会館")
NATIONAL_ADDED_VALUE = re.compile(r"到達|到着|高さ|避難所|避難場所|対象地域|行動要請|地区|地域の方|\d+\s*m|"
                                  r"時刻|へ避難")
CRATER_WARNING = re.compile(r"火口周辺警報|火口周辺規制|入山規制")
FLOOD_WATCH = re.compile(r"はん濫注意情報|氾濫注意情報")
