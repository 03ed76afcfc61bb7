"""Reading the small tables users hand us (mapping files, site lists, WKT coverage,
observations): CSV in UTF-8 (with or without BOM) or CP932, or XLSX, always as text so
that codes keep their leading zeros."""
from __future__ import annotations

import io
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


def read_text_table(path, *, what: str = "table", fix: str | None = None,
                    empty_as_nan: bool = False) -> pd.DataFrame:
    """A CSV or XLSX as a DataFrame of stripped strings (empty cells are '', or NaN with
    ``empty_as_nan``)."""
    from subdivide.io.readers import check_input_file   # same layer; readers imports this module

    p = check_input_file(Path(path), what=what)          # missing, FIFO (would hang), unreadable …
    if p.is_dir():
        raise UserError(f"{what} {p} is a folder, not a file", where=str(p), fix="give the CSV or XLSX file inside it")
    if p.suffix.lower() in (".xlsx", ".xlsm"):
        try:
            df = pd.read_excel(p, dtype=str, sheet_name=0, engine="openpyxl").fillna("")
        except Exception as exc:
            raise UserError(f"{p.name} is not a readable .xlsx ({exc.__class__.__name__})", where=str(p),
                            fix=fix or "save it again from Excel as .xlsx, or as CSV") from None
    else:
        text = decode_text(p.read_bytes(), where=str(p), what=f"{what} {p.name}")
        try:
            df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise UserError(f"{p.name} is not a readable CSV ({exc.__class__.__name__}: {str(exc)[:160]})",
                            where=str(p), fix=fix or "save it as comma-separated text with a header row") from None
    df.columns = [str(c).strip().lstrip("\ufeff") for c in df.columns]
    df = df.astype(str).apply(lambda c: c.str.strip()).astype(object)
    return df.mask(df == "") if empty_as_nan else df
