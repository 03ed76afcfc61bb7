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
- :func:`write_xlsx` writes code columns as text cells so Excel keeps leading zeros.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import zipfile
from pathlib import Path
from typing import Iterable, Iterator

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
