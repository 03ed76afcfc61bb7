"""Writing outputs safely: atomic, never overwriting without ``force``, deterministic,
and safe to open in Excel.

- :func:`atomic_path` / :func:`atomic_dir` write to a hidden temporary sibling
  (``.subdivide-tmp-…``) and rename into place only when the write succeeded, so a
  failure never leaves a partial output; temporaries of a run that died are removed by
  the next run.
- :func:`check_can_write` is the one output guard: ``--force`` replaces only what the
  same command wrote. An output is never one of the command's inputs (links resolved);
  a folder is replaced only when it is empty or holds exactly what the same command
  wrote there (recorded in its :data:`OUTPUT_MARKER` file), never otherwise.
- :func:`write_csv` writes UTF-8 with BOM and CRLF (Excel opens it); ``encoding="cp932"``
  fails loudly on characters CP932 cannot encode. Formula-like cells are neutralised.
- :func:`write_xlsx` writes code columns as text cells so Excel keeps leading zeros; the
  workbook's XML is written directly (:func:`xlsx_bytes`), one string per cell.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import re
import secrets
import shutil
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pandas as pd

from subdivide.core.errors import UserError

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


#: the file that marks a folder as written by subdivide (JSON: command and entries)
OUTPUT_MARKER = ".subdivide-output"
#: hidden temporaries beside an output: ``<prefix><name hash>-<pid>-<random>``
TEMP_PREFIX = ".subdivide-tmp-"
OLD_PREFIX = ".subdivide-old-"


def _name_hash(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:12]


def _real(path: str | os.PathLike) -> Path:
    """Absolute path with symbolic links resolved (``.`` and ``..`` included)."""
    return Path(os.path.realpath(os.path.abspath(path)))


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return _real(a) == _real(b)


#: the files that belong to a Shapefile input (an output must not replace any of them)
SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx", ".shp.xml")


def _with_companions(inputs) -> list:
    """The inputs, with every companion file of a Shapefile input."""
    out = []
    for item in inputs:
        out.append(item)
        if item is not None and str(item).lower().endswith(".shp"):
            stem = str(item)[:-4]
            out += [stem + ext for ext in SHAPEFILE_PARTS[1:]] + [stem + ext.upper() for ext in SHAPEFILE_PARTS[1:4]]
    return out


def refuse_inputs(path: str | os.PathLike, inputs: Iterable = (), *, folder: bool = False) -> None:
    """UserError when the output ``path`` is one of ``inputs`` (after resolving links, or
    the same file by another name), lies inside an input folder (e.g. a package folder
    being validated), or, for a folder output, holds one of them."""
    out = _real(path)
    for item in _with_companions(inputs or ()):
        if item is None or str(item) in ("", "-"):
            continue
        src = Path(item)
        if not src.exists() and not src.is_symlink():
            continue
        real = _real(src)
        if real == out or (out.exists() and _same(src, out)):
            raise UserError(f"the output {path} is also an input of this command ({item})", where=str(path),
                            fix="write the output to another path (nothing was replaced)")
        if folder and (out == real.parent or out in real.parents):
            raise UserError(f"the output folder {path} holds an input of this command ({item}); "
                            "replacing the folder would delete it", where=str(path),
                            fix="write the output to another folder (nothing was replaced)")
        if real.is_dir() and real in out.parents:
            raise UserError(f"the output {path} is inside {item}, an input folder of this command "
                            "(writing there would change the input)", where=str(path),
                            fix="write the output outside that folder (nothing was written)")


def folder_entries(folder: Path) -> set[str]:
    """Every file, folder and link below ``folder`` (relative POSIX paths, links not followed)."""
    out = set()
    for root, dirs, files in os.walk(folder):
        rel = Path(root).relative_to(folder)
        for n in dirs + files:
            out.add((rel / n).as_posix())
    return out


def read_marker(folder: Path) -> dict | None:
    """The marker of a folder subdivide wrote (:data:`OUTPUT_MARKER`), or None."""
    m = folder / OUTPUT_MARKER
    try:
        data = json.loads(m.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("tool") != "subdivide" or not isinstance(data.get("entries"), list):
        return None
    return data


def marker_bytes(command: str, entries: Iterable[str]) -> bytes:
    """The marker's content: deterministic JSON (no dates)."""
    data = {"tool": "subdivide", "command": command,
            "note": f"written by `subdivide {command}`, which replaces this folder with --force only while it "
                    "holds exactly these entries",
            "entries": sorted(set(entries) - {OUTPUT_MARKER})}
    return (json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True) + "\n").encode("utf-8")


def _check_folder_owned(p: Path, command: str | None, owned) -> None:
    """Refuse (even with --force) to replace a folder subdivide's ``command`` did not write."""
    present = folder_entries(p)
    if not present:
        return
    marker = read_marker(p)
    listed = None
    by = None
    if marker is not None:
        listed, by = set(marker["entries"]) | {OUTPUT_MARKER}, marker.get("command")
    elif owned is not None:
        found = owned(p)
        if found is not None:
            listed, by = set(found), command
    if listed is None:
        shown = ", ".join(sorted(present)[:5]) + (" …" if len(present) > 5 else "")
        raise UserError(f"the folder {p} was not written by subdivide (it holds {shown}); "
                        "it is never replaced, --force or not", where=str(p),
                        fix="choose a new or empty folder for the output")
    if command is not None and by != command:
        raise UserError(f"the folder {p} was written by `subdivide {by}`, not `subdivide {command}`; "
                        "it is never replaced, --force or not", where=str(p),
                        fix="choose a new or empty folder for the output")
    foreign = sorted(present - listed)
    if foreign:
        shown = ", ".join(foreign[:5]) + (" …" if len(foreign) > 5 else "")
        raise UserError(f"the folder {p} holds files subdivide did not write ({shown}); "
                        "it is never replaced, --force or not", where=str(p),
                        fix="move those files out of the folder, or choose a new folder for the output")


def check_can_write(path: str | os.PathLike, force: bool, *, folder: bool = False, inputs: Iterable = (),
                    command: str | None = None, owned=None) -> Path:
    """Refuse to write ``path`` when that would destroy something: an existing output
    without ``force``; one of the command's ``inputs`` (links resolved), or a folder
    holding one; a folder that ``command`` did not write (its :data:`OUTPUT_MARKER`, or
    ``owned(folder)`` → the entries it wrote, or None) even with ``force``; a folder by a
    file or a file by a folder; a path below a file. An empty folder may be written into.
    Returns ``path`` as a Path."""
    p = Path(path)
    if str(path) == "":
        raise UserError("the output path is empty", fix="give a file or folder name")
    for parent in _real(p).parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"cannot write {p}: {parent} is a file, not a folder", where=str(p),
                                fix="choose an output path inside a folder")
            break
    if p.is_symlink() and not p.exists():
        raise UserError(f"the output {p} is a broken symbolic link", where=str(p),
                        fix="remove the link or choose another output path")
    refuse_inputs(p, inputs, folder=folder)
    if p.exists():
        if p.is_dir() != folder:
            kind, want = ("a folder", "a file") if p.is_dir() else ("a file", "a folder")
            raise UserError(f"output {p} is {kind}; this command writes {want} there", where=str(p),
                            fix="choose another output path (nothing was replaced)")
        if folder:
            _check_folder_owned(p, command, owned)
            if not folder_entries(p):
                return p
        if not force:
            raise UserError(f"output {p} already exists", where=str(p),
                            fix="choose another output path or pass --force to replace it")
    return p


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def remove_stale_temporaries(final: Path) -> list[Path]:
    """Remove hidden temporaries of ``final`` left by a run that died (its process is
    gone): ``.subdivide-tmp-…`` and ``.subdivide-old-…`` beside it. Returns what went."""
    h = _name_hash(final.name)
    gone = []
    try:
        candidates = list(final.parent.iterdir())
    except OSError:
        return gone
    for q in candidates:
        for prefix in (TEMP_PREFIX, OLD_PREFIX):
            head = f"{prefix}{h}-"
            if not q.name.startswith(head):
                continue
            pid = q.name[len(head):].split("-", 1)[0]
            if pid.isdigit() and not _pid_alive(int(pid)):
                _remove(q)
                gone.append(q)
    return gone


def _remove(q: Path) -> None:
    if q.is_dir() and not q.is_symlink():
        shutil.rmtree(q, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            q.unlink()


def _temp_name(prefix: str, final: Path, suffix: str = "") -> str:
    # fixed length whatever the output's name (a name near NAME_MAX still fits)
    return f"{prefix}{_name_hash(final.name)}-{os.getpid()}-{secrets.token_hex(4)}{suffix[:16]}"


def _target(path: str | os.PathLike) -> Path:
    """Where an output really goes: links resolved (a link keeps pointing at the new
    output), ``.`` made absolute."""
    return _real(path)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, force: bool = False, inputs: Iterable = ()) -> Iterator[Path]:
    """Yield a temporary file path next to ``path``; rename it over ``path`` on success.
    The temporary is hidden and named ``.subdivide-tmp-…``; it is removed on any error,
    and a later run removes one left by a process that died.

    >>> with atomic_path("out.csv", force=True) as tmp:  # doctest: +SKIP
    ...     tmp.write_text("a,b\\n")
    """
    check_can_write(path, force, inputs=inputs)
    final = _target(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(final)
    tmp = final.parent / _temp_name(TEMP_PREFIX, final, final.suffix)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists() or tmp.is_symlink():
            _remove(tmp)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False if unsupported."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return rc == 0


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, *, force: bool = False, command: str = "subdivide",
               inputs: Iterable = (), owned=None, marker: bool = True) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; it replaces ``path`` only if the block
    succeeds (write beside, then rename; an existing folder is swapped atomically where
    the system allows). ``path`` is replaced only if it is empty or was written by the
    same ``command`` (see :func:`check_can_write`); a link is followed (the link keeps
    pointing at the new folder) and ``.`` is the current folder. With ``marker`` the
    folder gets :data:`OUTPUT_MARKER` listing what it holds. Temporaries are hidden
    (``.subdivide-tmp-…``, ``.subdivide-old-…``), removed on any error, and a later run
    removes those of a process that died."""
    check_can_write(path, force, folder=True, inputs=inputs, command=command, owned=owned)
    final = _target(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(final)
    tmp = final.parent / _temp_name(TEMP_PREFIX, final)
    tmp.mkdir(mode=0o755)
    old = final.parent / _temp_name(OLD_PREFIX, final)
    try:
        yield tmp
        if marker:
            (tmp / OUTPUT_MARKER).write_bytes(marker_bytes(command, folder_entries(tmp)))
        os.chmod(tmp, 0o755)  # outputs are ordinary folders
        try:
            in_it = Path.cwd() == final
        except OSError:
            in_it = False
        if final.exists():
            if _exchange(tmp, final):
                pass    # the old folder now sits at the temporary's name: removed below
            else:
                os.replace(final, old)
                try:
                    os.replace(tmp, final)
                except OSError:
                    os.replace(old, final)   # put the old output back
                    raise
            if in_it:
                os.chdir(final)
        else:
            os.replace(tmp, final)
    finally:
        for q in (tmp, old):
            if q.exists() or q.is_symlink():
                _remove(q)


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


def unneutralise_cell(value):
    """The value as typed, :func:`neutralise_cell`'s quote removed (text read back).

    >>> unneutralise_cell("'=HYPERLINK(1)"), unneutralise_cell("'quoted"), unneutralise_cell(-1)
    ('=HYPERLINK(1)', "'quoted", -1)
    """
    if isinstance(value, str) and value.startswith("'") and value[1:].startswith(FORMULA_PREFIXES):
        return value[1:]
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


# ---------------------------------------------------------------------------- XLSX
#: SpreadsheetML written directly (one string per cell, no cell objects): the parts
#: openpyxl writes in normal mode, in its member order and markup, with openpyxl's theme
#: (assets/xlsx_theme1.xml, copied from openpyxl 3.1, MIT licence; not imported: 0.3 s); ~20× faster than building the workbook with openpyxl (issue 19)
_XLSX_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_XLSX_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_XLSX_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_XLSX_CT = "application/vnd.openxmlformats-officedocument"
#: characters XML 1.0 cannot hold (what openpyxl refuses as IllegalCharacterError)
_XLSX_ILLEGAL = re.compile(r"[\000-\010\013\014\016-\037]")
#: Excel's longest cell text (openpyxl cuts longer text here)
XLSX_MAX_TEXT = 32767
_INF = float("inf")
#: sheet-name characters Excel refuses
_XLSX_BAD_TITLE = re.compile(r"[\\*?:/\[\]]")
_XLSX_STYLES = (
    '<styleSheet xmlns="' + _XLSX_NS + '"><numFmts count="0" /><fonts count="1"><font><name val="Calibri" />'
    '<family val="2" /><color theme="1" /><sz val="11" /><scheme val="minor" /></font></fonts><fills count="2">'
    '<fill><patternFill /></fill><fill><patternFill patternType="gray125" /></fill></fills><borders count="1">'
    '<border><left /><right /><top /><bottom /><diagonal /></border></borders><cellStyleXfs count="1">'
    '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" /></cellStyleXfs>{xfs}<cellStyles count="1">'
    '<cellStyle name="Normal" xfId="0" builtinId="0" hidden="0" /></cellStyles><tableStyles count="0" '
    'defaultTableStyle="TableStyleMedium9" defaultPivotStyle="PivotStyleLight16" /><colors><indexedColors>'
    + "".join(f'<rgbColor rgb="00{c}" />' for c in (
        "000000 FFFFFF FF0000 00FF00 0000FF FFFF00 FF00FF 00FFFF 000000 FFFFFF FF0000 00FF00 0000FF FFFF00 "
        "FF00FF 00FFFF 800000 008000 000080 808000 800080 008080 C0C0C0 808080 9999FF 993366 FFFFCC CCFFFF "
        "660066 FF8080 0066CC CCCCFF 000080 FF00FF FFFF00 00FFFF 800080 800000 008080 0000FF 00CCFF CCFFFF "
        "CCFFCC FFFF99 99CCFF FF99CC CC99FF FFCC99 3366FF 33CCCC 99CC00 FFCC00 FF9900 FF6600 666699 969696 "
        "003366 339966 003300 333300 993300 993366 333399 333333").split())
    + "</indexedColors></colors></styleSheet>")
_XLSX_XF = '<xf numFmtId="{fmt}" fontId="0" fillId="0" borderId="0" pivotButton="0" quotePrefix="0" xfId="0" />'
_XLSX_SHEET_HEAD = (
    '<worksheet xmlns="' + _XLSX_NS + '"><sheetPr><outlinePr summaryBelow="1" summaryRight="1" /><pageSetUpPr />'
    '</sheetPr><dimension ref="{dim}" /><sheetViews><sheetView workbookViewId="0"><selection activeCell="A1" '
    'sqref="A1" /></sheetView></sheetViews><sheetFormatPr baseColWidth="8" defaultRowHeight="15" /><sheetData>')
_XLSX_SHEET_TAIL = ('</sheetData><pageMargins left="0.75" right="0.75" top="1" bottom="1" header="0.5" '
                    'footer="0.5" /></worksheet>')


def _missing(v) -> bool:
    """None, NaN, NA or NaT: an empty cell (lists and dicts are values, not missing)."""
    return v is None or (not isinstance(v, (str, list, tuple, dict)) and pd.isna(v))


def _xml_text(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _xml_attr(s: str) -> str:
    return (_xml_text(s).replace('"', "&quot;").replace("\r", "&#13;").replace("\n", "&#10;")
            .replace("\t", "&#09;"))


def _text_cell(ref: str, text: str, style: str, where: str) -> str:
    """An inline-string cell; the text neutralised (never a formula), cut at
    :data:`XLSX_MAX_TEXT`; UserError for characters XML cannot hold."""
    text = neutralise_cell(text)[:XLSX_MAX_TEXT]
    if not text:
        return f'<c r="{ref}"{style} t="inlineStr" />'
    bad = _XLSX_ILLEGAL.search(text)
    if bad:
        raise UserError(f"control character U+{ord(bad.group()):04X} in {text[:40]!r} cannot be written in "
                        "an .xlsx workbook", where=f"{where}, cell {ref}",
                        fix="remove the control character from the value")
    stripped = text.strip()
    space = ' xml:space="preserve"' if stripped and stripped != text else ""
    return f'<c r="{ref}"{style} t="inlineStr"><is><t{space}>{_xml_text(text)}</t></is></c>'


def _value_cell(ref: str, v, where: str) -> str:
    """The cell of one value of a non-text column ('' for an empty cell): booleans,
    numbers (``%.16g``, as openpyxl), text; anything else is refused like openpyxl does."""
    if _missing(v):
        return ""
    if hasattr(v, "item") and not isinstance(v, str):
        v = v.item()
    if isinstance(v, bool):
        return f'<c r="{ref}" t="b"><v>{int(v)}</v></c>'
    if isinstance(v, (int, float, Decimal)):
        if isinstance(v, float) and not math.isfinite(v):
            return f'<c r="{ref}" t="n"><v /></c>'
        return f'<c r="{ref}" t="n"><v>{"%.16g" % v}</v></c>'
    if isinstance(v, str):
        return _text_cell(ref, v, "", where)
    raise ValueError(f"Cannot convert {v!r} to Excel")


def _sheet_xml(df: pd.DataFrame, text_columns: set, sheet: str) -> tuple[str, bool]:
    """(worksheet XML, whether a cell uses the text style '@'). Row 1 is the header."""
    from subdivide.io.xlsx import column_letter as get_column_letter

    n, cols = len(df), list(df.columns)
    letters = [get_column_letter(j + 1) for j in range(len(cols))]
    rows = [str(r) for r in range(2, n + 2)]
    where = f"{sheet} sheet"
    head = "".join(_text_cell(f"{c}1", str(name), "", where) for c, name in zip(letters, cols))
    columns = []
    styled = False
    for j, name in enumerate(cols):
        letter, values, dtype = letters[j], df.iloc[:, j].tolist(), df.dtypes.iloc[j]
        if name in text_columns:
            styled = styled or n > 0
            columns.append([f'<c r="{letter}{r}" s="1" t="inlineStr" />' if _missing(v)
                            else _text_cell(f"{letter}{r}", str(v), ' s="1"', where)
                            for r, v in zip(rows, values)])
        elif isinstance(dtype, np.dtype) and dtype.kind in "iu":                 # the common cases,
            columns.append([f'<c r="{letter}{r}" t="n"><v>{"%.16g" % v}</v></c>'     # without a call per cell
                            for r, v in zip(rows, values)])
        elif isinstance(dtype, np.dtype) and dtype.kind == "f":
            columns.append(["" if v != v else f'<c r="{letter}{r}" t="n"><v /></c>' if v in (_INF, -_INF)
                            else f'<c r="{letter}{r}" t="n"><v>{"%.16g" % v}</v></c>' for r, v in zip(rows, values)])
        else:
            columns.append([_value_cell(f"{letter}{r}", v, where) for r, v in zip(rows, values)])
    body = [f'<row r="1">{head}</row>'] if cols else []
    body += [f'<row r="{r}">{"".join(cells)}</row>' for r, cells in zip(rows, zip(*columns))] if cols else []
    dim = f"A1:{letters[-1]}{n + 1}" if cols else "A1:A1"
    return _XLSX_SHEET_HEAD.replace("{dim}", dim) + "".join(body) + _XLSX_SHEET_TAIL, styled


def xlsx_bytes(sheets: dict[str, pd.DataFrame], *, text_columns: Iterable[str] = ()) -> bytes:
    """The .xlsx workbook of ``sheets`` (name → frame; header row, then one row per record)
    as deterministic bytes: ``text_columns`` are text cells formatted '@' (codes keep their
    leading zeros); every text is neutralised (:func:`neutralise_cell`: no cell is a
    formula); empty and NaN values are empty cells; fixed 2000-01-01 dates."""
    theme_xml = (Path(__file__).resolve().parents[1] / "assets" / "xlsx_theme1.xml").read_text(encoding="utf-8")

    text_columns = set(text_columns)
    names: list[str] = []
    parts: list[tuple[str, str]] = []
    styled = False
    for i, (sheet_name, df) in enumerate(sheets.items(), 1):
        title = str(sheet_name)[:31]
        bad = _XLSX_BAD_TITLE.search(title)
        if bad or not title or title.lower() in {t.lower() for t in names}:
            raise ValueError(f"sheet name {title!r}: empty, repeated or with {bad.group() if bad else 'no'} "
                             "character Excel refuses")
        names.append(title)
        xml, used = _sheet_xml(df, text_columns, title)
        styled = styled or used
        parts.append((f"xl/worksheets/sheet{i}.xml", xml))
    k = len(names)
    xfs = (f'<cellXfs count="{1 + styled}">' + _XLSX_XF.format(fmt=0)
           + (_XLSX_XF.format(fmt=49) if styled else "") + "</cellXfs>")
    sheet_rel = f"{_XLSX_REL}/worksheet"
    members = [
        ("docProps/app.xml", '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/'
                             'extended-properties"><Application>subdivide</Application></Properties>'),
        ("docProps/core.xml",
         '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
         'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
         'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><dc:creator>subdivide</dc:creator>'
         '<dcterms:created xsi:type="dcterms:W3CDTF">2000-01-01T00:00:00Z</dcterms:created>'
         '<dcterms:modified xsi:type="dcterms:W3CDTF">2000-01-01T00:00:00Z</dcterms:modified>'
         '</cp:coreProperties>'),
        ("xl/theme/theme1.xml", theme_xml),
        *parts,
        ("xl/styles.xml", _XLSX_STYLES.replace("{xfs}", xfs)),
        ("_rels/.rels",
         f'<Relationships xmlns="{_XLSX_PKG_REL}"><Relationship Type="{_XLSX_REL}/officeDocument" '
         'Target="xl/workbook.xml" Id="rId1" /><Relationship Type="http://schemas.openxmlformats.org/package/'
         '2006/relationships/metadata/core-properties" Target="docProps/core.xml" Id="rId2" /><Relationship '
         f'Type="{_XLSX_REL}/extended-properties" Target="docProps/app.xml" Id="rId3" /></Relationships>'),
        ("xl/workbook.xml",
         f'<workbook xmlns:r="{_XLSX_REL}" xmlns="{_XLSX_NS}"><workbookPr /><workbookProtection /><bookViews>'
         '<workbookView visibility="visible" minimized="0" showHorizontalScroll="1" showVerticalScroll="1" '
         'showSheetTabs="1" tabRatio="600" firstSheet="0" activeTab="0" autoFilterDateGrouping="1" />'
         '</bookViews><sheets>'
         + "".join(f'<sheet name="{_xml_attr(t)}" sheetId="{i}" state="visible" r:id="rId{i}" />'
                   for i, t in enumerate(names, 1))
         + '</sheets><definedNames /><calcPr calcId="124519" fullCalcOnLoad="1" /></workbook>'),
        ("xl/_rels/workbook.xml.rels",
         f'<Relationships xmlns="{_XLSX_PKG_REL}">'
         + "".join(f'<Relationship Type="{sheet_rel}" Target="/xl/worksheets/sheet{i}.xml" Id="rId{i}" />'
                   for i in range(1, k + 1))
         + f'<Relationship Type="{_XLSX_REL}/styles" Target="styles.xml" Id="rId{k + 1}" />'
         f'<Relationship Type="{_XLSX_REL}/theme" Target="theme/theme1.xml" Id="rId{k + 2}" /></Relationships>'),
        ("[Content_Types].xml",
         '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" '
         'ContentType="application/vnd.openxmlformats-package.relationships+xml" /><Default Extension="xml" '
         'ContentType="application/xml" /><Override PartName="/xl/styles.xml" '
         f'ContentType="{_XLSX_CT}.spreadsheetml.styles+xml" /><Override PartName="/xl/theme/theme1.xml" '
         f'ContentType="{_XLSX_CT}.theme+xml" /><Override PartName="/docProps/core.xml" '
         'ContentType="application/vnd.openxmlformats-package.core-properties+xml" /><Override '
         f'PartName="/docProps/app.xml" ContentType="{_XLSX_CT}.extended-properties+xml" />'
         + "".join(f'<Override PartName="/xl/worksheets/sheet{i}.xml" '
                   f'ContentType="{_XLSX_CT}.spreadsheetml.worksheet+xml" />' for i in range(1, k + 1))
         + f'<Override PartName="/xl/workbook.xml" ContentType="{_XLSX_CT}.spreadsheetml.sheet.main+xml" />'
         '</Types>'),
    ]
    return zip_bytes((name, body.encode("utf-8")) for name, body in members)


def write_xlsx(sheets: dict[str, pd.DataFrame], path, *, text_columns: Iterable[str] = (),
               force: bool = False) -> Path:
    """Write sheets to .xlsx (:func:`xlsx_bytes`), atomically; ``text_columns`` are stored
    as text ('@' format) so codes keep their leading zeros. Formula-like strings are
    neutralised. Deterministic bytes."""
    data = xlsx_bytes(sheets, text_columns=text_columns)
    with atomic_path(path, force=force) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def zip_bytes(members) -> bytes:
    """A zip of ``(name, bytes)`` members in that order: deflated, fixed 2000-01-01
    timestamps, mode 0644, made on Unix whatever the platform (byte-identical run to run
    and machine to machine); the one zip writer (xlsx files, packages)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for name, body in members:
            info = zipfile.ZipInfo(name, date_time=(2000, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.create_system = 3
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
