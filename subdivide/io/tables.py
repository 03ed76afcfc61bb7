"""Reading the small tables users hand us (mapping files, site lists, WKT coverage,
observations): CSV in UTF-8 (with or without BOM) or CP932, or XLSX, always as text so
that codes keep their leading zeros."""
from __future__ import annotations

import csv
import io
import re
import unicodedata
from pathlib import Path

import pandas as pd

from subdivide.core.errors import UserError

CSV_ENCODINGS = ("utf-8-sig", "cp932")


def decode_text(raw: bytes, *, where: str, what: str = "file") -> str:
    """Decode UTF-8 (BOM or not) or CP932; refuse anything else with a clear message."""
    for enc in CSV_ENCODINGS:
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    raise UserError(f"{what} is neither UTF-8 nor CP932 text", where=where,
                    fix="save it as UTF-8 CSV (Excel: 「CSV UTF-8（コンマ区切り）」)")


def header_key(text) -> str:
    """A column header as compared with its known spellings: NFKC, without spaces, lower case
    (「町丁目 コード」, 「ＫＥＹ」 and "key" match "町丁目コード" and "key")."""
    return "".join(unicodedata.normalize("NFKC", str(text)).split()).lower()


def read_text_table(path, *, what: str = "table", fix: str | None = None,
                    empty_as_nan: bool = False) -> pd.DataFrame:
    """A CSV or XLSX (its first sheet) as a DataFrame of stripped strings (empty cells are '',
    or NaN with ``empty_as_nan``).

    What Excel leaves behind is ignored: rows with no value at all (trailing ``,,,`` rows,
    rows that only carry formatting) and unnamed columns with no value. The index keeps the
    data row's position, so a row's line in the file (and in Excel) is ``index + 2``."""
    return next(iter(read_text_tables(path, what=what, fix=fix, empty_as_nan=empty_as_nan,
                                      all_sheets=False).values()))


def read_text_tables(path, *, what: str = "table", fix: str | None = None, empty_as_nan: bool = False,
                     all_sheets: bool = True) -> dict[str, pd.DataFrame]:
    """Every sheet of an XLSX (sheet name → table, in workbook order), or ``{"": table}`` for a
    CSV; each table as :func:`read_text_table` returns it."""
    from subdivide.io.readers import check_input_file   # same layer; readers imports this module

    p = check_input_file(Path(path), what=what)          # missing, FIFO (would hang), unreadable …
    if p.is_dir():
        raise UserError(f"{what} {p} is a folder, not a file", where=str(p), fix="give the CSV or XLSX file inside it")
    if p.suffix.lower() in (".xlsx", ".xlsm"):
        try:
            sheets = pd.read_excel(p, dtype=str, sheet_name=None if all_sheets else [0], engine="openpyxl")
        except Exception as exc:
            raise UserError(f"{p.name} is not a readable .xlsx ({exc.__class__.__name__})", where=str(p),
                            fix=fix or "save it again from Excel as .xlsx, or as CSV") from None
        tables = {str(name): df.fillna("") for name, df in sheets.items()}
    else:
        text = decode_text(p.read_bytes(), where=str(p), what=f"{what} {p.name}")
        tables = {"": _parse_csv(text, p, fix)}
    return {name: _clean(df, empty_as_nan) for name, df in tables.items()}


def _parse_csv(text: str, p: Path, fix: str | None) -> pd.DataFrame:
    """Rows of a CSV as text, indexed by line − 2 (the header is line 1), blank lines kept for
    :func:`_clean` to drop. Rows shorter than the header are padded; cells beyond the header
    are dropped when empty (Excel writes ``,,,`` for rows it once formatted) and refused
    otherwise. Empty or repeated headers are named as pandas names them (``Unnamed: 4``,
    ``key.1``)."""
    unreadable = fix or "save it as comma-separated text with a header row"
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise UserError(f"{p.name} is not a readable CSV (line {exc.args and exc.args[0]})", where=str(p),
                        fix=unreadable) from None
    if not rows or not any(c.strip() for c in rows[0]):
        raise UserError(f"{p.name} is not a readable CSV (no header row)", where=str(p), fix=unreadable)
    header, width = rows[0], len(rows[0])
    body = []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) > width:
            if any(c.strip() for c in row[width:]):
                raise UserError(f"{p.name}: line {line} has {len(row)} cells, the header {width}", where=str(p),
                                fix="give the extra cells a column header, or delete them")
            row = row[:width]
        body.append(row + [""] * (width - len(row)))
    seen: dict[str, int] = {}
    names = []
    for i, h in enumerate(header):
        h = h if h.strip() else f"Unnamed: {i}"
        n = seen.get(h, 0)
        seen[h] = n + 1
        names.append(h if n == 0 else f"{h}.{n}")
    return pd.DataFrame(body, columns=names, dtype=object, index=pd.RangeIndex(len(body)))


def _clean(df: pd.DataFrame, empty_as_nan: bool) -> pd.DataFrame:
    """Stripped text; Excel's empty rows and unnamed empty columns dropped (index kept)."""
    df.columns = [str(c).strip().lstrip("\ufeff") for c in df.columns]
    df = df.astype(str).apply(lambda c: c.str.strip()).astype(object)
    blank = df == ""
    unnamed = [c for c in df.columns if (c == "" or re.fullmatch(r"Unnamed: \d+(\.\d+)?", c)) and blank[c].all()]
    if unnamed:
        df, blank = df.drop(columns=unnamed), blank.drop(columns=unnamed)
    if len(df.columns):
        df = df[~blank.all(axis=1)]
    return df.mask(df == "") if empty_as_nan else df
