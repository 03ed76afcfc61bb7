#!/usr/bin/env python3
"""Build the installable QGIS plugin zip (Plugins → Manage and Install Plugins → Install from ZIP).

    python qgis/build_zip.py                 # → qgis/dist/subdivide_qgis-<version>.zip
    python qgis/build_zip.py --out plugin.zip

The zip holds one folder, ``subdivide_qgis/``, as QGIS expects. It is deterministic: the
same sources give the same bytes (sorted entries, fixed timestamps and permissions), and
caches (``__pycache__``, ``*.pyc``) are left out.
"""
from __future__ import annotations

import argparse
import configparser
import os
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PLUGIN = HERE / "subdivide_qgis"
FIXED_TIME = (2000, 1, 1, 0, 0, 0)
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache"}
SKIP_SUFFIXES = (".pyc", ".pyo", ".orig", ".rej", "~")


def plugin_version(plugin_dir: Path = PLUGIN) -> str:
    cp = configparser.ConfigParser()
    cp.read(plugin_dir / "metadata.txt", encoding="utf-8")
    return cp["general"]["version"]


def plugin_files(plugin_dir: Path = PLUGIN) -> list[Path]:
    files = []
    for root, dirs, names in os.walk(plugin_dir):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        files += [Path(root) / n for n in names if not n.startswith(".") and not n.endswith(SKIP_SUFFIXES)]
    return sorted(files, key=lambda p: p.relative_to(plugin_dir).as_posix())


def build(out: Path | None = None, plugin_dir: Path = PLUGIN) -> Path:
    """Write the zip atomically; returns its path."""
    out = Path(out) if out else HERE / "dist" / f"subdivide_qgis-{plugin_version(plugin_dir)}.zip"
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in plugin_files(plugin_dir):
                info = zipfile.ZipInfo(f"{plugin_dir.name}/{path.relative_to(plugin_dir).as_posix()}", FIXED_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, path.read_bytes())
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, help="zip to write (default qgis/dist/subdivide_qgis-<version>.zip)")
    args = p.parse_args(argv)
    path = build(args.out)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
