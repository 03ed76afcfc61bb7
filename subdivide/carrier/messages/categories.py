"""The category vocabulary (配信可能項目): a configuration table, not code.

The guide (配信の手引き v3.3, April 2020) names the evacuation items 避難準備・高齢者等避難開始 /
避難勧告 / 避難指示(緊急) / 災害発生情報. The May 2021 amendment of 災害対策基本法 renamed them
高齢者等避難 (Lv3) / 避難指示 (Lv4) / 緊急安全確保 (Lv5) and abolished 避難勧告. Both editions ship
here; every lint report names the edition it used (``--edition 2020|2021``, default 2021).
A municipality that has the current 手引き can replace the table with its own TOML file
(``--categories FILE``; same fields as :class:`Category`, see docs/messages.md).

Items are the guide's numbers (MESSAGES.md §2). ``municipal``: ○ may send, △ national sender
sends it itself (a municipal send must add 付随情報), ▲ only on the governor's instruction.
"""
from __future__ import annotations

import tomllib
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from subdivide.core.errors import UserError

EDITIONS = ("2020", "2021")
DEFAULT_EDITION = "2021"

#: kinds used by the rules
EVACUATION = "evacuation"       # items 1–4 (警戒レベル applies)
SUPPLEMENT = "supplement"       # item-1 supplementary topics (§2.2)


@dataclass(frozen=True)
class Category:
    name: str
    item: int
    editions: tuple[str, ...] = EDITIONS
    kind: str = "other"
    level: int | None = None
    actions: tuple[str, ...] = ()           # 警戒レベル action phrases accepted (first = template)
    municipal: str = "○"
    prefecture: str = "○"
    aliases: tuple[str, ...] = ()           # other spellings / short forms (also accepted in titles)
    replaced_by: str | None = None          # for a name dropped in a later edition
    note: str = ""

    @property
    def national(self) -> bool:
        """JMA / 消防庁 send this item themselves (△): a municipal send must add 付随情報."""
        return self.municipal == "△"

    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


def _c(name, item, **kw) -> Category:
    return Category(name=name, item=item, **kw)


_LV3 = ("高齢者等避難",)
_LV4 = ("全員避難",)
_LV5 = ("命を守る最善の行動", "直ちに安全確保", "命の危険")

#: the shipped table (MESSAGES.md §2 and the 2021 names)
DEFAULT_CATEGORIES: tuple[Category, ...] = (
    _c("避難準備・高齢者等避難開始", 1, editions=("2020",), kind=EVACUATION, level=3, actions=_LV3,
       prefecture="代行", aliases=("避難準備情報", "避難準備"), replaced_by="高齢者等避難"),
    _c("避難勧告", 2, editions=("2020",), kind=EVACUATION, level=4, actions=_LV4, prefecture="代行",
       replaced_by="避難指示", note="abolished by the 2021 amendment of 災害対策基本法"),
    _c("避難指示(緊急)", 3, editions=("2020",), kind=EVACUATION, level=4, actions=_LV4, prefecture="代行",
       replaced_by="避難指示"),
    _c("災害発生情報", 4, editions=("2020",), kind=EVACUATION, level=5, actions=_LV5, prefecture="代行",
       replaced_by="緊急安全確保"),
    _c("高齢者等避難", 1, editions=("2021",), kind=EVACUATION, level=3, actions=_LV3, prefecture="代行"),
    _c("避難指示", 3, editions=("2021",), kind=EVACUATION, level=4, actions=_LV4, prefecture="代行",
       note="items 2 and 3 of the guide merged in 2021"),
    _c("緊急安全確保", 4, editions=("2021",), kind=EVACUATION, level=5, actions=_LV5, prefecture="代行"),
    _c("警戒区域情報", 5, kind="warning_zone", prefecture="代行"),
    _c("津波注意報", 6, kind="tsunami"),
    _c("津波警報", 7, kind="tsunami", municipal="△", prefecture="△"),
    _c("大津波警報", 8, kind="tsunami", municipal="△", prefecture="△"),
    _c("噴火警報", 9, kind="volcano", note="not 火口周辺警報 below level 3; level ≥4 JMA sends itself"),
    _c("指定河川洪水予報", 10, kind="river", aliases=("洪水予報",), note="not はん濫注意情報"),
    _c("土砂災害警戒情報", 11, kind="landslide"),
    _c("東海地震予知情報", 12, kind="tokai"),
    _c("弾道ミサイル情報", 13, kind="civil_protection", municipal="△", prefecture="△"),
    _c("航空攻撃情報", 14, kind="civil_protection", municipal="△", prefecture="△"),
    _c("ゲリラ・特殊部隊攻撃情報", 15, kind="civil_protection", municipal="△", prefecture="△"),
    _c("大規模テロ情報", 16, kind="civil_protection", municipal="△", prefecture="△"),
    _c("外出自粛要請", 17, kind="outing", municipal="▲", aliases=("外出自粛",)),
    # item-1 supplementary topics (MESSAGES.md §2.2): sent under item 1
    _c("停電情報", 1, kind=SUPPLEMENT, aliases=("大規模停電", "突発的な停電")),
    _c("救助活動情報", 1, kind=SUPPLEMENT),
    _c("帰宅困難者情報", 1, kind=SUPPLEMENT),
    _c("救援物資情報", 1, kind=SUPPLEMENT, aliases=("救援物資", "配給")),
    _c("復旧情報", 1, kind=SUPPLEMENT, note="restoration of electricity, water … damaged by the disaster"),
)


def canonical(text: str) -> str:
    """Key for matching a category name: NFKC, no spaces, （）→()."""
    return unicodedata.normalize("NFKC", str(text)).replace(" ", "").replace("\u3000", "").strip()


@dataclass(frozen=True)
class Vocabulary:
    """The categories of one edition, looked up by any of their names."""

    edition: str
    categories: tuple[Category, ...] = field(default=DEFAULT_CATEGORIES)
    source: str = "built-in (MESSAGES.md §2 + 2021 names)"

    def __post_init__(self):
        if self.edition not in EDITIONS:
            raise UserError(f"unknown edition {self.edition!r}", fix=f"use one of {', '.join(EDITIONS)}")

    def current(self) -> tuple[Category, ...]:
        return tuple(c for c in self.categories if self.edition in c.editions)

    def find(self, name: str) -> Category | None:
        """The category of this edition named ``name`` (or an alias), else None."""
        key = canonical(name)
        for c in self.current():
            if key in map(canonical, c.names()):
                return c
        return None

    def find_any_edition(self, name: str) -> Category | None:
        key = canonical(name)
        for c in self.categories:
            if key in map(canonical, c.names()):
                return c
        return None

    def by_level(self, level: int) -> Category | None:
        return next((c for c in self.current() if c.kind == EVACUATION and c.level == level), None)


def load_vocabulary(edition: str = DEFAULT_EDITION, path=None) -> Vocabulary:
    """The shipped table, or a TOML file of ``[[category]]`` tables with the fields of
    :class:`Category` (``name`` and ``item`` required)."""
    if path is None:
        return Vocabulary(edition)
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"category table {p} does not exist", where=str(p), fix="check the path") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"category table {p.name} is not valid UTF-8 TOML ({exc})", where=str(p),
                        fix="see docs/messages.md for the format") from None
    rows = data.get("category")
    if not isinstance(rows, list) or not rows:
        raise UserError(f"{p.name} has no [[category]] tables", where=str(p),
                        fix="list each category as a [[category]] table with name and item")
    known = set(Category.__dataclass_fields__)
    cats = []
    for i, row in enumerate(rows, 1):
        extra = set(row) - known
        if extra or "name" not in row or "item" not in row:
            raise UserError(f"[[category]] #{i} has unknown fields {sorted(extra)} or lacks name/item",
                            where=str(p), fix=f"use only the fields {sorted(known)}")
        row = {k: tuple(v) if isinstance(v, list) else v for k, v in row.items()}
        cats.append(Category(**row))
    return Vocabulary(edition, tuple(cats), source=str(p))
