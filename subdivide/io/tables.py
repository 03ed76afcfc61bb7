"""Reading the small tables users hand us (mapping files, site lists, WKT coverage,
observations, messages): CSV in UTF-8 (with or without BOM) or CP932, or XLSX, always as
text so that codes keep their leading zeros.

An XLSX is read by the one workbook reader (:mod:`subdivide.io.xlsx`) after its zip is
checked (:data:`TABLE_LIMITS`: sizes, compression ratio, names): each cell as the text
Excel last showed for it — a formula's cached result, a whole number without ``.0``, a date
as ``2026-12-01 10:30:00``, an error cell empty, and (as pandas read workbooks before) a text
that pandas takes for missing (``N/A``, ``NULL``, ``NaN`` …, :data:`NA_MARKS`) empty, except
where cells are read as written (``strip=False``: messages)."""
from __future__ import annotations

import csv
import io
import re
import unicodedata
from pathlib import Path

import pandas as pd

from subdivide.core.errors import UserError
from subdivide.io.safezip import Limits

CSV_ENCODINGS = ("utf-8-sig", "cp932")
#: caps for a workbook a user hands us (a 50,000-row mapping sheet is under 10 MB of XML)
TABLE_LIMITS = Limits(max_members=1_000, max_total_bytes=256 << 20, max_member_bytes=128 << 20)


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
                    empty_as_nan: bool = False, strip: bool = True) -> pd.DataFrame:
    """A CSV or XLSX (its first sheet) as a DataFrame of stripped strings (empty cells are '',
    or NaN with ``empty_as_nan``; ``strip=False`` reads cells as written, where every
    character counts, as in a message: the spaces and line breaks around a cell's text, and
    in a workbook a text such as ``N/A`` that is otherwise read as empty, :data:`NA_MARKS`).

    What Excel leaves behind is ignored: rows with no value at all (trailing ``,,,`` rows,
    rows that only carry formatting) and unnamed columns with no value. The index keeps the
    data row's position, so a row's line in the file (and in Excel) is ``index + 2``."""
    return next(iter(read_text_tables(path, what=what, fix=fix, empty_as_nan=empty_as_nan,
                                      all_sheets=False, strip=strip).values()))


def read_text_tables(path, *, what: str = "table", fix: str | None = None, empty_as_nan: bool = False,
                     all_sheets: bool = True, strip: bool = True) -> dict[str, pd.DataFrame]:
    """Every sheet of an XLSX (sheet name → table, in workbook order), or ``{"": table}`` for a
    CSV; each table as :func:`read_text_table` returns it."""
    from subdivide.io.readers import check_input_file   # same layer; readers imports this module

    p = check_input_file(Path(path), what=what)          # missing, FIFO (would hang), unreadable …
    if p.is_dir():
        raise UserError(f"{what} {p} is a folder, not a file", where=str(p), fix="give the CSV or XLSX file inside it")
    if p.suffix.lower() in (".xlsx", ".xlsm"):
        tables = _read_xlsx(p, fix, all_sheets, na_marks=strip)
    else:
        text = decode_text(p.read_bytes(), where=str(p), what=f"{what} {p.name}")
        tables = {"": _parse_csv(text, p, fix)}
    return {name: _clean(df, empty_as_nan, strip) for name, df in tables.items()}


def _read_xlsx(p: Path, fix: str | None, all_sheets: bool, na_marks: bool) -> dict[str, pd.DataFrame]:
    """Each sheet (or the first) as text: the first row with a value is the header."""
    from subdivide.io.safezip import PackageRejected, checked_zip_members
    from subdivide.io.xlsx import XlsxError, read_workbook

    try:
        checked_zip_members(p, TABLE_LIMITS)
        book = read_workbook(p, formulas=False, sheets=None if all_sheets else 1)
    except (PackageRejected, XlsxError) as exc:
        why = "; ".join(f.message for f in exc.findings) if isinstance(exc, PackageRejected) else str(exc)
        raise UserError(f"{p.name} is not a readable .xlsx ({why})", where=str(p),
                        fix=fix or "save it again from Excel as .xlsx, or as CSV") from None
    if not book:
        raise UserError(f"{p.name} has no sheet", where=str(p), fix=fix or "save it again from Excel as .xlsx")
    return {name: _sheet_frame(rows, na_marks) for name, rows in book.items()}


#: text pandas took for a missing value in a workbook, as the tables reader read workbooks
#: before (``pandas.read_excel``'s default marks): such a cell is empty
NA_MARKS = frozenset({"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
                      "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"})


def _cell_text(cell, na_marks: bool = True) -> str:
    """A cell as the text Excel shows (see the module's note); with ``na_marks`` a text that
    is one of :data:`NA_MARKS` is empty."""
    v = cell.value
    if v is None or cell.data_type == "e" or (na_marks and cell.data_type == "s" and v in NA_MARKS):
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _sheet_frame(rows, na_marks: bool = True) -> pd.DataFrame:
    """A sheet's rows of cells as a table of text. The header is the first row with a value;
    a data row's index is its Excel row − 2, as for a CSV line. Columns beyond the header
    are kept as ``Unnamed: i`` (a note beside the table), for :func:`_clean` to drop when empty."""
    text = [[_cell_text(c, na_marks) for c in r] for r in rows]
    start = next((i for i, r in enumerate(text) if any(v.strip() for v in r)), None)
    if start is None:
        return pd.DataFrame()
    body = text[start + 1:]
    return pd.DataFrame(body, columns=_column_names(text[start]), dtype=object,
                        index=pd.RangeIndex(start, start + len(body)))


def _column_names(header: list[str]) -> list[str]:
    """Header cells as pandas names them: empty ones ``Unnamed: i``, repeats ``key.1``,
    ``key.2`` … skipping a name already taken (``key, key, key.1`` → ``key, key.1, key.1.1``),
    so every name is unique."""
    counts: dict[str, int] = {}
    names = []
    for i, h in enumerate(header):
        col = h if h.strip() else f"Unnamed: {i}"
        n = counts.get(col, 0)
        while n > 0:
            counts[col] = n + 1
            col = f"{col}.{n}"
            n = counts.get(col, 0)
        counts[col] = n + 1
        names.append(col)
    return names


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
    return pd.DataFrame(body, columns=_column_names(header), dtype=object, index=pd.RangeIndex(len(body)))


def _clean(df: pd.DataFrame, empty_as_nan: bool, strip: bool = True) -> pd.DataFrame:
    """Stripped text (``strip=False``: cells as written; headers are stripped either way);
    Excel's empty rows and unnamed empty columns dropped (index kept)."""
    df.columns = [str(c).strip().lstrip("\ufeff") for c in df.columns]
    df = df.astype(str)
    stripped = df.apply(lambda c: c.str.strip()).astype(object)
    df = stripped if strip else df.astype(object)
    blank = stripped == ""
    unnamed = [c for c in df.columns if (c == "" or re.fullmatch(r"Unnamed: \d+(\.\d+)?", c)) and blank[c].all()]
    if unnamed:
        df, blank = df.drop(columns=unnamed), blank.drop(columns=unnamed)
    if len(df.columns):
        df = df[~blank.all(axis=1)]
    return df.mask(df == "") if empty_as_nan else df
