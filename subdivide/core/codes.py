"""全国地方公共団体コード (local government codes) and sub-area codes.

A municipality is identified by 5 digits (prefecture 2 + municipality 3); the 6th digit
is a check digit: weights 6,5,4,3,2 on the five digits, sum mod 11 = m,
digit = (11 − m) mod 10.  03205 → 032051 (花巻市).
"""
from __future__ import annotations

import re

from subdivide.core.errors import UserError

_WEIGHTS = (6, 5, 4, 3, 2)


def check_digit(code5: str) -> str:
    """Return the check digit for a 5-digit municipality code.

    >>> check_digit("03205"), check_digit("35204"), check_digit("13101"), check_digit("14130")
    ('1', '7', '6', '5')
    """
    if not re.fullmatch(r"\d{5}", code5 or ""):
        raise UserError(
            f"municipality code {code5!r} is not 5 digits",
            fix="give the 5-digit 全国地方公共団体コード, e.g. 03205 for 花巻市 (keep the leading zero)",
        )
    m = sum(int(d) * w for d, w in zip(code5, _WEIGHTS)) % 11
    return str((11 - m) % 10)


def with_check_digit(code5: str) -> str:
    """'03205' → '032051'."""
    return code5 + check_digit(code5)


def normalize_municipality_code(code: str | int, *, where: str | None = None) -> str:
    """Validate a 5- or 6-digit code and return the 5-digit form.

    Ints are refused when they have lost a leading zero is impossible to tell, so
    strings are expected; an int is accepted only if it zero-pads unambiguously to 5.
    """
    s = str(code).strip()
    if isinstance(code, int) and len(s) == 4:
        s = s.zfill(5)
    if not re.fullmatch(r"\d{5}|\d{6}", s):
        raise UserError(
            f"municipality code {code!r} must be 5 digits (or 6 with the check digit)",
            where=where,
            fix="e.g. 03205 or 032051 for 花巻市; keep leading zeros (quote the value in CSV/Excel)",
        )
    pref = int(s[:2])
    if not 1 <= pref <= 47:
        raise UserError(
            f"municipality code {s}: prefecture part {s[:2]} is not 01–47",
            where=where,
            fix="check the code against the 全国地方公共団体コード list",
        )
    if len(s) == 6:
        expected = check_digit(s[:5])
        if s[5] != expected:
            raise UserError(
                f"municipality code {s}: check digit is {s[5]}, expected {expected} ({s[:5]}{expected})",
                where=where,
                fix=f"use {s[:5]} or {s[:5]}{expected}",
            )
    return s[:5]


def is_valid_code6(code6: str) -> bool:
    return bool(re.fullmatch(r"\d{6}", code6 or "")) and code6[5] == check_digit(code6[:5])


def subarea_code(muni_code5: str, number: int) -> str:
    """Sub-area code: municipality 5 digits + 2-digit sub-area number ('0320501')."""
    if not 1 <= int(number) <= 99:
        raise UserError(f"sub-area number {number} is not 1–99")
    return f"{muni_code5}{int(number):02d}"


def subarea_code6(muni_code5: str, number: int) -> str:
    """The sub-area code shown with the municipality check digit where a 6-digit
    municipality code is expected: '032051' + '01' → '03205101'."""
    return f"{with_check_digit(muni_code5)}{int(number):02d}"
