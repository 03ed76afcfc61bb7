"""File-system and database faults as user errors (what / where / fix), never a traceback.

A full disk, a read-only folder, a file the user may not read, a name that is too long, a
named pipe given as a file or a corrupted SQLite / GeoPackage file can surface anywhere:
in Python's own I/O (:class:`OSError`), in :mod:`sqlite3` (:class:`sqlite3.DatabaseError`)
or inside GDAL (pyogrio's errors, which carry SQLite's or the OS's message as text).
:func:`fault_to_user_error` turns each into a :class:`~subdivide.core.errors.UserError`
with the file concerned and what to do; the CLI calls it for every exception it catches.

:func:`special_files` finds arguments that name a FIFO, socket or device (reading one
would block or never end), so the CLI refuses them before any work.
"""
from __future__ import annotations

import errno
import os
import re
import sqlite3
import stat
from collections.abc import Iterable
from pathlib import Path

from subdivide.core.errors import UserError

#: errno → (what, fix); ``{path}`` is replaced by the file concerned
ERRNO_TEXT: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("no space left on the device",
                   "free space on the disk holding {path} (or, if it is the temporary folder, point TMPDIR "
                   "at a disk with room) and run the command again; nothing was written"),
    errno.EDQUOT: ("disk quota exceeded",
                   "free space within your quota on the disk holding {path}, then run the command again"),
    errno.EACCES: ("permission denied",
                   "check the permissions of {path} (and of its folder), or choose a file or folder you "
                   "may read / write"),
    errno.EPERM: ("operation not permitted",
                  "check the permissions and attributes of {path}, or choose another file or folder"),
    errno.EROFS: ("the file system is read-only",
                  "write the output to a folder on a writable disk (e.g. under your home folder)"),
    errno.ENAMETOOLONG: ("the file name is too long",
                         "use a shorter name: at most 255 bytes per folder or file name (a Japanese "
                         "character takes 3 bytes)"),
    errno.ENOENT: ("no such file or folder", "check the path (and that its folder exists)"),
    errno.ENOTDIR: ("a part of the path is a file, not a folder", "check the path {path}"),
    errno.EISDIR: ("a folder was given where a file is needed", "give the path of a file, not of a folder"),
    errno.ELOOP: ("too many symbolic links (a link loop)", "fix or remove the symbolic link {path}"),
    errno.EMFILE: ("too many open files", "raise the open-file limit (ulimit -n) or close other programs"),
    errno.EIO: ("input/output error (the disk or network share failed)",
                "check the disk or the network connection, then run the command again"),
    errno.ENXIO: ("no such device (a named pipe or socket with no other end?)",
                  "give a regular file"),
    errno.EBUSY: ("the file or device is busy", "close the program holding {path} and run again"),
    errno.ETXTBSY: ("the file is busy", "close the program holding {path} and run again"),
    errno.EFBIG: ("the file is too large for this file system", "write to a disk that allows larger files"),
}

#: substrings of GDAL / SQLite messages → the errno they stand for
_TEXT_ERRNO = (
    ("database or disk is full", errno.ENOSPC),
    ("no space left on device", errno.ENOSPC),
    ("disk i/o error", errno.EIO),
    ("attempt to write a readonly database", errno.EROFS),
    ("read-only file system", errno.EROFS),
    ("readonly", errno.EROFS),
    ("permission denied", errno.EACCES),
    ("file name too long", errno.ENAMETOOLONG),
)

_CORRUPT_TEXT = ("database disk image is malformed", "file is not a database", "file is encrypted or is not a database",
                 "not a valid geopackage", "malformed", "no such table", "unable to open database")

_SQLITE_FIX = ("the file is damaged or is not what it claims to be: restore it from a copy or rebuild it "
               "(a plan: `subdivide plan TOWN-BLOCKS … --out PLAN.gpkg`; the registry: restore its backup, "
               "or start a new one with --db NEW.db)")


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    # GDAL repeats whole SQL statements: keep the SQLite reason at the end
    m = re.search(r"failed:\s*(.+)$", text)
    if m and len(text) > limit:
        text = m.group(1)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _errno_of_text(text: str) -> int | None:
    low = text.lower()
    for needle, code in _TEXT_ERRNO:
        if needle in low:
            return code
    return None


def fault_to_user_error(exc: BaseException, *, command: str = "", paths: Iterable[str] = ()) -> UserError | None:
    """A :class:`UserError` for a file-system / database fault, or None if ``exc`` is not one.

    ``paths``: the file arguments of the command, named when the fault itself names no file.
    """
    paths = [str(p) for p in paths if p]
    where_default = ", ".join(paths[:6]) if paths else None
    if isinstance(exc, sqlite3.DatabaseError):
        code = _errno_of_text(str(exc))
        if code in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EIO):
            return _errno_error(code, None, where_default, str(exc))
        return UserError(f"a database file could not be read or written: {_short(exc)} (SQLite)",
                         where=where_default, fix=_SQLITE_FIX)
    if isinstance(exc, OSError) and exc.errno is not None:
        path = exc.filename if exc.filename is not None else None
        if exc.filename2 is not None:
            path = f"{exc.filename} → {exc.filename2}"
        return _errno_error(exc.errno, str(path) if path is not None else None, where_default,
                            exc.strerror or str(exc))
    if _is_gdal_error(exc):
        text = str(exc)
        code = _errno_of_text(text)
        if code is not None:
            return _errno_error(code, None, where_default, text)
        low = text.lower()
        if any(t in low for t in _CORRUPT_TEXT):
            return UserError(f"a GeoPackage / SQLite file is damaged or not what it claims: {_short(text)}",
                             where=where_default, fix=_SQLITE_FIX)
        return UserError(f"GDAL could not read or write a file: {_short(text)}", where=where_default,
                         fix="check that the inputs are complete, readable files of the expected kind and that "
                             "the output folder is writable with space left")
    if isinstance(exc, OSError):  # an OSError without errno (e.g. rasterio's)
        text = str(exc)
        code = _errno_of_text(text)
        if code is not None:
            return _errno_error(code, None, where_default, text)
        return UserError(f"a file could not be read or written: {_short(text)}", where=where_default,
                         fix="check that the file exists, is readable and is of the expected kind")
    return None


def _errno_error(code: int, path: str | None, where_default: str | None, detail: str) -> UserError:
    what, fix = ERRNO_TEXT.get(code, (os.strerror(code).lower() if code else "file-system error",
                                      "check the path and the disk, then run the command again"))
    where = path or where_default
    shown = _short(detail)
    plain = (lambda t: " ".join(w for w in t.lower().split() if w != "the"))
    if shown and plain(shown) not in plain(what):
        what = f"{what} ({shown})"
    return UserError(f"file-system error: {what}", where=where, fix=fix.replace("{path}", where or "the file"))


def _is_gdal_error(exc: BaseException) -> bool:
    mod = type(exc).__module__ or ""
    return mod.startswith(("pyogrio", "rasterio", "fiona")) or type(exc).__name__ in (
        "DataSourceError", "DataLayerError", "FeatureError", "FieldError", "GeometryError", "CPLE_AppDefinedError",
        "CPLE_OpenFailedError", "RasterioIOError")


# ---------------------------------------------------------------------- special files
def _kind(mode: int) -> str | None:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    return None


def _candidates(value: str) -> list[str]:
    out = [value]
    if "=" in value:  # NAME=PATH options (e.g. --raster FLOOD=flood.tif)
        out.append(value.split("=", 1)[1])
    more = []
    for v in out:
        if v.lower().endswith(".shp"):  # a Shapefile's parts are read too
            stem = v[:-4]
            more += [stem + ext for ext in (".dbf", ".shx", ".prj", ".cpg", ".DBF", ".SHX", ".PRJ", ".CPG")]
    return out + more


def path_arguments(args) -> list[str]:
    """String values of an argparse namespace (and of its list values) that may be paths."""
    vals: list[str] = []
    for name, v in sorted(vars(args).items()):
        if name.startswith("_") or name == "command":
            continue
        items = v if isinstance(v, (list, tuple)) else [v]
        vals += [x for x in items if isinstance(x, (str, os.PathLike)) and str(x) not in ("", "-")]
    return [str(v) for v in vals]


def existing_paths(args) -> list[str]:
    """Path arguments that exist (or whose folder exists): named in messages as 'where'."""
    out = []
    for v in path_arguments(args):
        try:
            p = Path(v)
            if p.exists() or (p.parent.exists() and ("/" in v or p.suffix.lower() in _FILE_SUFFIXES)):
                out.append(v)
        except (OSError, ValueError):  # e.g. a name too long to stat: it may well be the culprit
            out.append(v)
    return out


_FILE_SUFFIXES = {".gpkg", ".csv", ".html", ".json", ".zip", ".db", ".sqlite", ".xlsx", ".shp", ".dbf", ".tif",
                  ".tiff", ".geojson", ".toml", ".txt", ".png"}


def special_files(args) -> list[tuple[str, str]]:
    """(path, kind) for every argument that names a FIFO, socket or device."""
    found = []
    for v in path_arguments(args):
        for cand in _candidates(v):
            try:
                mode = os.stat(cand).st_mode
            except (OSError, ValueError):
                continue
            kind = _kind(mode)
            if kind:
                found.append((cand, kind))
    return found


def refuse_special_files(args, command: str) -> None:
    bad = special_files(args)
    if bad:
        path, kind = bad[0]
        raise UserError(f"{path} is {kind}, not a regular file: reading or writing it could block forever",
                        where=path, fix="give a regular file (copy the data into a file first)")
