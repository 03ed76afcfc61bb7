"""All-or-nothing outputs for one command.

Every writer is atomic on its own (``subdivide.io.output``), but a command with several
outputs (``plan --out A --export-csv B``) could still fail after writing A. The CLI runs
each command inside :class:`OutputTransaction`: before the command, each output path that
already exists is kept as a hard-linked twin (free: no data is copied, and replacing the
output by ``os.replace`` leaves the twin's data intact); if the command then fails with an
exception, outputs it created are removed and outputs it replaced are put back. On
success the twins are dropped.

The twins are hidden siblings named ``.NAME.subdivide-keep.tmp`` (recognisable, and removed
by the next run if a crash left one behind).
"""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

#: argparse destinations that name outputs (files or folders) of a command
OUTPUT_OPTIONS = ("out", "output", "export_csv", "candidates_out", "review_out", "sites_out", "json")
KEEP_SUFFIX = ".subdivide-keep.tmp"


#: databases a command creates when absent: removed (with their journal files) if the command
#: fails, never kept as twins (SQLite files are changed in place)
DATABASE_OPTIONS = ("db",)
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def _paths(args, options) -> list[Path]:
    out = []
    for name in options:
        v = getattr(args, name, None)
        if isinstance(v, (str, os.PathLike)) and str(v) not in ("", "-"):
            out.append(Path(v))
    return out


def output_paths(args) -> list[Path]:
    return _paths(args, OUTPUT_OPTIONS)


def database_paths(args) -> list[Path]:
    return _paths(args, DATABASE_OPTIONS)


#: folders with more entries than this are not kept (the command's own guards apply)
MAX_KEPT_ENTRIES = 5000


def _too_many_entries(p: Path, limit: int) -> bool:
    n = 0
    for _, dirs, files in os.walk(p):
        n += len(dirs) + len(files)
        if n > limit:
            return True
    return False


def _twin(p: Path) -> Path:
    return p.with_name(f".{p.name}{KEEP_SUFFIX}")


def _identity(p: Path) -> tuple | None:
    """What tells whether a path was replaced or rewritten: device, inode, size, mtime."""
    try:
        st = os.lstat(p)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _remove(p: Path) -> None:
    if p.is_symlink() or p.is_file():
        p.unlink()
    elif p.is_dir():
        shutil.rmtree(p)


class OutputTransaction:
    """Context manager: on an exception, undo what the command wrote to its output paths."""

    def __init__(self, paths, databases=()):
        self.new_databases = []
        for d in databases:
            with contextlib.suppress(OSError, ValueError):
                if not os.path.lexists(d):
                    self.new_databases.append(d)
        self.paths = []
        for p in paths:
            with contextlib.suppress(OSError, ValueError):
                if p not in self.paths:
                    self.paths.append(p)
        self.existed: dict[Path, bool] = {}
        self.kept: dict[Path, Path] = {}
        self.identity: dict[Path, tuple] = {}

    def __enter__(self) -> OutputTransaction:
        for p in self.paths:
            try:
                self.existed[p] = os.path.lexists(p)
                if not Path(os.path.abspath(p)).name:
                    continue                       # `/`: nothing to keep beside it
                twin = _twin(Path(os.path.abspath(p)))
                if os.path.lexists(twin):          # left by a crashed run: stale
                    _remove(twin)
                if self.existed[p] and not p.is_symlink():
                    self.identity[p] = _identity(p)
                    self._keep(p, twin)
            except (OSError, ValueError):
                continue                           # the command itself reports the fault
        return self

    def _keep(self, p: Path, twin: Path) -> None:
        try:
            if p.is_dir():
                if _too_many_entries(p, MAX_KEPT_ENTRIES):
                    return                   # e.g. `--out .` on a home folder: not worth a twin
                shutil.copytree(p, twin, symlinks=True, copy_function=os.link)
            elif p.is_file():
                os.link(p, twin)
            else:
                return
            self.kept[p] = twin
        except OSError:
            with contextlib.suppress(OSError):
                _remove(twin)

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self._drop_twins()
            return False
        for d in self.new_databases:   # created by the failed command: remove with its journals
            for side in ("", *SQLITE_SIDE_FILES):
                with contextlib.suppress(OSError):
                    q = Path(f"{d}{side}")
                    if q.is_file() and not q.is_symlink():
                        q.unlink()
        for p in self.paths:
            with contextlib.suppress(OSError):
                if p in self.existed and not self.existed[p] and os.path.lexists(p):
                    _remove(p)               # created by the failed command
                elif p in self.kept and _identity(p) != self.identity.get(p):
                    twin = self.kept[p]
                    if os.path.lexists(p):
                        _remove(p)
                    os.replace(twin, p)      # replaced by the failed command: put back
                # an output the command never touched (e.g. refused by its guard) stays as it is
        self._drop_twins()
        return False

    def _drop_twins(self) -> None:
        for twin in self.kept.values():
            with contextlib.suppress(OSError):
                if os.path.lexists(twin):
                    _remove(twin)
