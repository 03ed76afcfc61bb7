"""Census counts (人口 JINKO, 世帯 SETAI) as read from a town-block file.

e-Stat publishes small-area counts with marks instead of numbers where a figure is
withheld or absent (統計表の記号): ``X`` / ``x`` (秘匿, withheld for confidentiality),
``…`` (不詳, unknown), ``-`` (該当数値なし, officially "no figure"; read here as
unknown, never as a number), and ``*`` / ``＊`` (a 秘匿 area whose counts were added to a
neighbour, as the prefectures' small-area tables mark it). A re-exported boundary file
may carry them as text in JINKO / SETAI. They are read as **unknown** (pandas ``NA``),
counted and reported; an empty value is unknown too. Any other text, a negative or a
non-integral count is an error naming the records, because guessing would change a
plan's populations silently.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np
import pandas as pd

from subdivide.core.errors import UserError

#: e-Stat / prefectural statistical-table marks for a withheld or absent figure (after NFKC)
SECRECY_MARKS = frozenset({"X", "x", "-", "−", "‐", "―", "ー", "…", "...", "‥", "・・・", "･･･", "*", "**", "***"})


@dataclass(frozen=True)
class CountColumn:
    """A count column read: values (``Int64``, NA = unknown) and what was unknown."""

    values: pd.Series
    marked: np.ndarray     # bool: a secrecy mark (X, -, …, *)
    empty: np.ndarray      # bool: no value at all


def _normalised_text(s: pd.Series) -> pd.Series:
    txt = s.astype(object).where(s.notna(), "").astype(str)
    return txt.map(lambda v: unicodedata.normalize("NFKC", v).strip().replace(",", ""))


def _describe_rows(rows: np.ndarray, values: pd.Series, limit: int = 8) -> str:
    shown = ", ".join(f"record {int(r) + 1} ({values.iloc[int(r)]!r})" for r in rows[:limit])
    return shown + (f" and {len(rows) - limit} more" if len(rows) > limit else "")


def read_counts(s: pd.Series, column: str, *, where: str) -> CountColumn:
    """Parse one count column (numbers or text) into ``Int64`` with NA for unknown.

    Record numbers in messages are 1-based positions in the layer (the row in QGIS's
    attribute table, ordered by feature id)."""
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        num = pd.to_numeric(s, errors="coerce").astype("float64")
        marked = np.zeros(len(s), bool)
        empty = num.isna().to_numpy()
        text = s
    else:
        text = _normalised_text(s)
        marked = text.isin(SECRECY_MARKS).to_numpy()
        empty = (text == "").to_numpy()
        num = pd.to_numeric(text.where(~(marked | empty)), errors="coerce").astype("float64")
        not_number = np.flatnonzero(num.isna().to_numpy() & ~marked & ~empty)
        if len(not_number):
            raise UserError(
                f"{column} holds {len(not_number)} values that are neither counts nor e-Stat marks: "
                + _describe_rows(not_number, s.astype(object)), where=where,
                fix=f"put whole numbers in {column} (or an e-Stat mark X, -, … for a withheld figure) in "
                    "those records, e.g. in QGIS's attribute table, then read the file again")
    vals = num.to_numpy()
    negative = np.flatnonzero(np.nan_to_num(vals, nan=0.0) < 0)
    if len(negative):
        raise UserError(f"{column} holds {len(negative)} negative counts: "
                        + _describe_rows(negative, s.astype(object)), where=where,
                        fix=f"counts cannot be negative: correct {column} in those records "
                            "(write X for a withheld figure)")
    fractional = np.flatnonzero(np.isfinite(vals) & (np.abs(vals - np.round(vals)) > 1e-9))
    if len(fractional):
        raise UserError(f"{column} holds {len(fractional)} non-integral counts: "
                        + _describe_rows(fractional, s.astype(object)), where=where,
                        fix=f"{column} must hold whole numbers of people/households; this looks like a "
                            "rate or an estimate — map the count column instead (--population COL)")
    values = pd.Series(pd.array(np.round(vals), dtype="Float64"), index=s.index).astype("Int64")
    return CountColumn(values=values, marked=marked, empty=empty & ~marked)
