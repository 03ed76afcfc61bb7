"""e-Stat 小地域 (町丁・字等別境界データ) column layouts, defined once.

Three layouts exist (DOMAIN.md §4):

- ``2015_legacy`` (30 fields): the original 平成27年 release, ``h27ka{PP[CCC]}.shp``;
  the town-block name is MOJI, the prefecture KEN / KEN_NAME.
- ``2015_current`` (35 fields): the 2015 data as e-Stat distributes it today; adds
  PREF, S_AREA, PREF_NAME, CITY_NAME, S_NAME in front of the legacy fields.
- ``2020`` (29 fields): 令和2年 ``r2ka{PP[CCC]}.shp``; the 2015-current fields without
  KEN, KEN_NAME, SITYO_NAME, GST_NAME, CSS_NAME and MOJI.

Two fields carry the prefecture code in their name (``H27KA03_``, ``H27KA03_ID`` for
岩手県 2015, ``R2KA03_`` / ``R2KA03_ID`` for 2020); the layouts spell them with
``{PP}`` and :func:`field_names` fills it in.

Code rules the layouts share (checked against the real 花巻市 table):

- KEYCODE1 = CITY + KIHON1 + KIHON2 (9 digits); KCODE1 = ``KIHON1-KIHON2``.
- KEYCODE2 = CITY + KIHON1 (7 digits) for a 町・字 without sub-units, else KEYCODE1.
- KEY_CODE = prefecture + KEYCODE2 (9 or 11 digits); S_AREA = KIHON1 + KIHON2.
- HCODE 8101 = town-block, 8154 = water area (水面).
- KIGO_E = E1, E2 … on the parts of a multi-part unit (JINKO/SETAI/KBSUM on E1 only),
  KIGO_I set on islands (離島), KIGO_D set on 飛び地.
- A row whose KEY_CODE is only the 2-digit prefecture (S_AREA 000000) is a placeholder
  for an area belonging to another municipality.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from subdivide.core.errors import UserError

#: water areas (水面調査区) — never town-blocks
HCODE_WATER = 8154
#: ordinary town-blocks
HCODE_TOWNBLOCK = 8101

_LEGACY = (
    "AREA PERIMETER H27KA{PP}_ H27KA{PP}_ID KEN CITY KEN_NAME SITYO_NAME GST_NAME CSS_NAME "
    "HCODE KIHON1 DUMMY1 KIHON2 KEYCODE1 KEYCODE2 AREA_MAX_F KIGO_D N_KEN N_CITY KIGO_E KIGO_I "
    "MOJI KBSUM JINKO SETAI X_CODE Y_CODE KCODE1 KEY_CODE"
).split()

_CURRENT_2015 = (
    "KEY_CODE PREF CITY S_AREA PREF_NAME CITY_NAME S_NAME KIGO_E HCODE AREA PERIMETER "
    "H27KA{PP}_ H27KA{PP}_ID KEN KEN_NAME SITYO_NAME GST_NAME CSS_NAME KIHON1 DUMMY1 KIHON2 "
    "KEYCODE1 KEYCODE2 AREA_MAX_F KIGO_D N_KEN N_CITY KIGO_I MOJI KBSUM JINKO SETAI X_CODE "
    "Y_CODE KCODE1"
).split()

_DROPPED_2020 = {"KEN", "KEN_NAME", "SITYO_NAME", "GST_NAME", "CSS_NAME", "MOJI"}
_2020 = [c.replace("H27KA", "R2KA") for c in _CURRENT_2015 if c not in _DROPPED_2020]

#: layout name → field names (with ``{PP}`` for the prefecture code)
LAYOUTS: dict[str, tuple[str, ...]] = {
    "2015_legacy": tuple(_LEGACY),
    "2015_current": tuple(_CURRENT_2015),
    "2020": tuple(_2020),
}

#: numeric (DBF ``N``) fields; everything else is text (DBF ``C``), see :func:`field_kind`
INTEGER_FIELDS = frozenset({"HCODE", "KBSUM", "JINKO", "SETAI"})
FLOAT_FIELDS = frozenset({"AREA", "PERIMETER", "X_CODE", "Y_CODE"})


@dataclass(frozen=True)
class LayoutFields:
    """Where the canonical attributes live in one layout."""

    name: str          # layout name
    town_name: str     # the town-block name column
    pref: str          # prefecture code column
    pref_name: str     # prefecture name column (must end in 都/道/府/県)
    city: str          # 3-digit city column


ROLES: dict[str, LayoutFields] = {
    "2015_legacy": LayoutFields("2015_legacy", "MOJI", "KEN", "KEN_NAME", "CITY"),
    "2015_current": LayoutFields("2015_current", "S_NAME", "PREF", "PREF_NAME", "CITY"),
    "2020": LayoutFields("2020", "S_NAME", "PREF", "PREF_NAME", "CITY"),
}

_ID_FIELD = re.compile(r"^(H27KA|R2KA)(\d{2}|XX)(_ID|_|ID)?$", re.IGNORECASE)


def field_names(layout: str, pref: str | int = "03") -> list[str]:
    """The layout's field names in file order, with the prefecture filled in.

    >>> field_names("2020", "03")[11:13]
    ['R2KA03_', 'R2KA03_ID']
    >>> [len(field_names(x)) for x in LAYOUTS]
    [30, 35, 29]
    """
    if layout not in LAYOUTS:
        raise UserError(f"unknown e-Stat layout {layout!r}", fix=f"use one of {', '.join(LAYOUTS)}")
    pp = f"{int(pref):02d}"
    return [c.replace("{PP}", pp) for c in LAYOUTS[layout]]


def _generic(col: str) -> str:
    """Column name with the prefecture part of the ID fields replaced by ``{PP}``."""
    m = _ID_FIELD.match(col)
    if m:
        return f"{m.group(1).upper()}{{PP}}_" + ("ID" if m.group(3) and "ID" in m.group(3).upper() else "")
    return col.upper()


#: the columns that carry meaning, per layout (DOMAIN.md §4; issue 20): the layout is
#: recognised from these alone, never from the internal ArcInfo ids (``H27KA{PP}_``,
#: ``R2KA{PP}_ID`` …), which republications rename (``R2KAxx``), drop, or replace by ``id``
_COMMON_MEANING = ("KEY_CODE", "CITY", "HCODE", "KIGO_E", "KIGO_I", "JINKO", "SETAI", "AREA")
MEANING: dict[str, tuple[str, ...]] = {
    "2015_legacy": _COMMON_MEANING + ("KEN", "MOJI"),
    "2015_current": _COMMON_MEANING + ("PREF", "S_AREA", "S_NAME", "MOJI"),
    "2020": _COMMON_MEANING + ("PREF", "S_AREA", "S_NAME"),
}
#: columns used when present (flags and sanity checks), never required
OPTIONAL_MEANING = ("KIGO_D", "PREF_NAME", "KEN_NAME", "CITY_NAME", "X_CODE", "Y_CODE")


@dataclass(frozen=True)
class LayoutMatch:
    """How a layer's columns compare with an e-Stat layout."""

    layout: str | None
    closest: str                   # the detected layout, or the one with fewest missing columns
    matched: tuple[str, ...]       # meaningful columns found (upper case)
    missing: tuple[str, ...]       # meaningful columns the closest layout lacks
    internal_ids: tuple[str, ...]  # internal id columns present as spelt in the file (ignored)
    absent_ids: tuple[str, ...]    # the layout's internal id fields not in the file


def _present(columns) -> set[str]:
    return {_generic(str(c)) for c in columns}


def detect_layout(columns) -> str | None:
    """Return the e-Stat layout whose meaningful columns (:data:`MEANING`) are all present
    in ``columns``, or None. Internal ids and extra columns do not matter; the most specific
    layout wins (S_NAME with MOJI: 2015 current; S_NAME alone: 2020; MOJI with KEN: legacy).

    >>> detect_layout(field_names("2015_current") + ["OLD_MUNI"])
    '2015_current'
    >>> detect_layout([c for c in field_names("2020", "31") if not c.startswith("R2KA")] + ["id"])
    '2020'
    >>> detect_layout(["KEY", "NAME"]) is None
    True
    """
    present = _present(columns)
    best = None
    for name, fields in MEANING.items():
        if set(fields) <= present and (best is None or len(fields) > len(MEANING[best])):
            best = name
    if best == "2020" and ("MOJI" in present or "KEN" in present):
        return None     # S_NAME + KEN without MOJI: neither 2015 current nor 2020
    return best


def missing_for_layout(columns) -> dict[str, list[str]]:
    """For each layout, the meaningful fields ``columns`` lacks (for error messages)."""
    present = _present(columns)
    return {name: [f for f in fields if f not in present] for name, fields in MEANING.items()}


def match_layout(columns) -> LayoutMatch:
    """The detected (or closest) layout, with the meaningful columns matched and missing and
    the internal id columns found or absent (reported, never required)."""
    cols = [str(c) for c in columns]
    layout = detect_layout(cols)
    miss = missing_for_layout(cols)
    closest = layout or min(miss, key=lambda k: (len(miss[k]), -len(MEANING[k])))
    present = _present(cols)
    ids = tuple(c for c in cols if _ID_FIELD.match(c))
    want_ids = [f for f in LAYOUTS[closest] if "{PP}" in f]
    absent = tuple(f for f in want_ids if f not in present)
    return LayoutMatch(layout, closest, tuple(f for f in MEANING[closest] if f in present), tuple(miss[closest]),
                       ids, absent)


def looks_like_estat(columns) -> bool:
    """True when the columns are recognisably e-Stat (KEY_CODE and HCODE present)."""
    present = {str(c).upper() for c in columns}
    return {"KEY_CODE", "HCODE"} <= present


def field_kind(field: str) -> str:
    """'int', 'float' or 'str' for a layout field (prefecture already filled in or not)."""
    g = _generic(field)
    if g in FLOAT_FIELDS:
        return "float"
    if g in INTEGER_FIELDS or g.endswith("{PP}_") or g.endswith("{PP}_ID"):
        return "int"
    return "str"
