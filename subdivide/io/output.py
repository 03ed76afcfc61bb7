"""Writing outputs safely: atomic, never overwriting without ``force``, deterministic,
and safe to open in Excel.

- :func:`atomic_path` / :func:`atomic_dir` write to a temporary sibling and rename into
  place only when the write succeeded, so a failure never leaves a partial output.
- :func:`write_csv` writes UTF-8 with BOM and CRLF (Excel opens it); ``encoding="cp932"``
  fails loudly on characters CP932 cannot encode. Formula-like cells are neutralised.
- :func:`write_xlsx` writes code columns as text cells so Excel keeps leading zeros.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import os
import re
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Iterable, Iterator

import pandas as pd

from subdivide.core.errors import UserError

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def check_can_write(path: str | os.PathLike, force: bool, *, folder: bool = False) -> Path:
    """Refuse to overwrite an existing output unless ``force``; refuse outright to
    replace a folder by a file (or a file by a folder), and a parent that is a file."""
    p = Path(path)
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"cannot write {p}: {parent} is a file, not a folder", where=str(p),
                                fix="choose an output path inside a folder")
            break
    if p.exists():
        if p.is_dir() != folder:
            kind, want = ("a folder", "a file") if p.is_dir() else ("a file", "a folder")
            raise UserError(f"output {p} is {kind}; this command writes {want} there", where=str(p),
                            fix="choose another output path (nothing was replaced)")
        if not force:
            raise UserError(f"output {p} already exists", where=str(p),
                            fix="choose another output path or pass --force to replace it")
    return p


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary file path next to ``path``; rename it over ``path`` on success.

    >>> with atomic_path("out.csv", force=True) as tmp:  # doctest: +SKIP
    ...     tmp.write_text("a,b\\n")
    """
    final = check_can_write(path, force)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmpname = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=f".tmp{final.suffix}", dir=final.parent)
    os.close(fd)
    os.unlink(tmpname)
    tmp = Path(tmpname)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary directory; it replaces ``path`` only if the block succeeds."""
    final = check_can_write(path, force, folder=True)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o755)  # mkdtemp makes 0700; outputs are ordinary folders
        if final.exists():
            old = final.with_name(f".{final.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old) if old.is_dir() else old.unlink()
        else:
            os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def neutralise_cell(value):
    """Prefix a quote to text Excel would read as a formula (=, +, -, @, tab, CR).

    Negative numbers stay numbers: only strings are touched.

    >>> neutralise_cell("=HYPERLINK(1)"), neutralise_cell("-1"), neutralise_cell(-1)
    ("'=HYPERLINK(1)", "'-1", -1)
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _safe_frame(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object or pd.api.types.is_string_dtype(out[c]):
            out[c] = out[c].map(neutralise_cell)
    out.columns = [neutralise_cell(str(c)) for c in out.columns]
    return out


def csv_bytes(df: pd.DataFrame, *, encoding: str = "utf-8-sig", where: str = "CSV") -> bytes:
    """CSV text as bytes: CRLF line ends, formula cells neutralised.

    ``encoding`` is ``utf-8-sig`` (UTF-8 with BOM, the default) or ``cp932``; for cp932 a
    character that cannot be encoded raises UserError naming the row and column.
    """
    safe = _safe_frame(df)
    buf = io.StringIO()
    safe.to_csv(buf, index=False, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    text = buf.getvalue()
    try:
        return text.encode(encoding)
    except UnicodeEncodeError as exc:
        bad = text[exc.start:exc.end]
        line = text.count("\n", 0, exc.start) + 1
        raise UserError(
            f"character {bad!r} (U+{ord(bad[0]):04X}) cannot be written in {encoding}",
            where=f"{where}, line {line}",
            fix="write UTF-8 (the default) instead, or rename the offending value",
        ) from None


def write_csv(df: pd.DataFrame, path, *, encoding: str = "utf-8-sig", force: bool = False) -> Path:
    data = csv_bytes(df, encoding=encoding, where=str(path))
    with atomic_path(path, force=force) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_xlsx(sheets: dict[str, pd.DataFrame], path, *, text_columns: Iterable[str] = (),
               force: bool = False) -> Path:
    """Write sheets to .xlsx; ``text_columns`` are stored as text ('@' format) so codes keep
    their leading zeros. Formula-like strings are neutralised. Deterministic bytes."""
    from openpyxl import Workbook

    text_columns = set(text_columns)
    wb = Workbook()
    wb.remove(wb.active)
    for sheet_name, df in sheets.items():
        ws = wb.create_sheet(title=sheet_name[:31])
        safe = _safe_frame(df)
        ws.append(list(map(str, safe.columns)))
        text_idx = [i for i, c in enumerate(df.columns) if c in text_columns]
        for row in safe.itertuples(index=False):
            values = []
            for i, v in enumerate(row):
                if pd.isna(v) if not isinstance(v, (list, tuple)) else False:
                    v = None
                elif i in text_idx:
                    v = str(v)
                elif hasattr(v, "item"):
                    v = v.item()
                values.append(v)
            ws.append(values)
        for i in text_idx:
            for cell in ws.iter_cols(min_col=i + 1, max_col=i + 1, min_row=2):
                for c in cell:
                    c.number_format = "@"
                    c.data_type = "s"
    wb.properties.creator = "subdivide"
    fixed = pd.Timestamp("2000-01-01").to_pydatetime()
    wb.properties.created = fixed
    wb.properties.modified = fixed
    buf = io.BytesIO()
    wb.save(buf)
    data = normalize_zip(buf.getvalue())
    with atomic_path(path, force=force) as tmp:
        tmp.write_bytes(data)
    return Path(path)


_XLSX_MODIFIED = re.compile(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)")


def normalize_zip(data: bytes) -> bytes:
    """Rewrite a zip (or .xlsx) with fixed timestamps, keeping the member order, so that
    outputs are byte-identical run to run. openpyxl stamps ``dcterms:modified`` with
    the time of saving whatever the workbook says: that is pinned to 2000-01-01 too."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in src.namelist():  # keep the writer's member order
            body = src.read(name)
            if name == "docProps/core.xml":
                body = _XLSX_MODIFIED.sub(rb"\g<1>2000-01-01T00:00:00Z\g<2>", body)
            info = zipfile.ZipInfo(name, date_time=(2000, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            dst.writestr(info, body)
    return out.getvalue()


@contextlib.contextmanager
def _fixed_gdal_date() -> Iterator[None]:
    """GeoPackages record a 'last_change' timestamp; pin it so outputs are byte-identical."""
    import pyogrio

    key = "OGR_CURRENT_DATE"
    old = pyogrio.get_gdal_config_option(key)
    pyogrio.set_gdal_config_options({key: "2000-01-01T00:00:00.000Z"})
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options({key: old})


def write_gpkg(layers: dict[str, pd.DataFrame], path, *, force: bool = False) -> Path:
    """Write several layers (GeoDataFrames, or DataFrames as attribute tables) to one
    GeoPackage, atomically and deterministically (UTF-8)."""
    import pyogrio

    with atomic_path(path, force=force) as tmp, _fixed_gdal_date():
        for name, df in layers.items():
            pyogrio.write_dataframe(df, tmp, layer=name, driver="GPKG", append=tmp.exists())
    return Path(path)
