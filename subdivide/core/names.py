"""The sub-area name rule, defined once: 「●●地域」, printable, no surrounding spaces.

The carriers' systems show the sub-area name in the alert; the package validator refuses a
name that breaks this rule (rule ``NAME-FORMAT``) and plan construction refuses the same
names with the same rule id, so a plan that ``subdivide plan`` accepts never fails
validation on its names.
"""
from __future__ import annotations

import re
import unicodedata

#: the validator's and the planner's rule id for a malformed sub-area name
NAME_RULE = "NAME-FORMAT"
NAME_SUFFIX = "地域"

_SHAPE = re.compile(r".+" + NAME_SUFFIX, re.DOTALL)


def visible(text) -> str:
    """``text`` for a terminal: control and format characters (line breaks, escapes, bidi
    marks in a hostile name) shown as ``\\n``, ``\\x1b``, ``\\u202e``, never acted on."""
    return "".join(ch.encode("unicode_escape").decode("ascii") if unicodedata.category(ch) in ("Cc", "Cf")
                   else ch for ch in str(text))


def without_controls(text) -> str:
    """``text`` with control and format characters dropped (a municipality's name as read from
    a file or a manifest: such characters are never part of a name)."""
    return "".join(ch for ch in str(text) if unicodedata.category(ch) not in ("Cc", "Cf")).strip()


def one_line(text) -> str:
    """``text`` as a one-line label: each run of control, format and line/paragraph-separator
    characters (a line break, a tab, U+202E …) becomes one space; ends stripped. A town-block
    name is a label on one line of every list, table and map."""
    out, gap = [], False
    for ch in str(text):
        if _bad_char(ch) and unicodedata.category(ch) not in ("Co", "Cn"):
            gap = True
            continue
        if gap and out:
            out.append(" ")
        gap = False
        out.append(ch)
    return "".join(out).strip()


def _bad_char(ch: str) -> bool:
    cat = unicodedata.category(ch)
    return cat in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")


def name_problem(name) -> str | None:
    """Why ``name`` is not a valid sub-area name, or None.

    >>> name_problem("花巻地域") is None
    True
    >>> name_problem("花巻")
    'does not end in 「地域」'
    """
    if name is None:
        return "is empty"
    s = str(name)
    if not s.strip():
        return "is empty"
    bad = sorted({f"U+{ord(c):04X}" for c in s if _bad_char(c)})
    if bad:
        return f"holds control or invisible characters ({', '.join(bad)}; e.g. a line break or tab)"
    if s != s.strip():
        return "starts or ends with a space"
    if not _SHAPE.fullmatch(s):
        return f"does not end in 「{NAME_SUFFIX}」"
    return None


def name_problems(names) -> list[str]:
    """``'name': reason`` for every bad name (in order)."""
    out = []
    for n in names:
        why = name_problem(n)
        if why:
            out.append(f"{str(n)!r} {why}")
    return out
