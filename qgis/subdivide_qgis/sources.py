"""Which file ``subdivide`` can read for a QGIS layer (no QGIS import here).

A layer backed by a file the tool reads itself (Shapefile, GeoPackage layer, GeoJSON, an
e-Stat zip) is passed by path, so the tool decides the .dbf encoding (CP932) and the CRS
exactly as on the command line. Anything else — a memory layer, a database, a layer with
a filter (subset) — must be exported to a temporary GeoPackage first.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath

#: file types the tool reads directly
READABLE = (".shp", ".gpkg", ".geojson", ".json", ".zip")


@dataclass(frozen=True)
class FileSource:
    """A file the tool can read: ``path`` and, for a multi-layer file, ``layer``."""

    path: str
    layer: str | None = None

    def args(self) -> list[str]:
        """The positional path and ``--layer`` for info/plan."""
        return [self.path] + (["--layer", self.layer] if self.layer else [])


def parse_ogr_source(provider: str, source: str) -> FileSource | None:
    """``('ogr', '/d/blocks.gpkg|layername=blocks')`` → FileSource('/d/blocks.gpkg', 'blocks');
    ``/vsizip/`` paths of an e-Stat zip → the zip and its Shapefile; None when the layer must
    be exported (another provider, a subset filter, a layer index, an unknown file type)."""
    if provider != "ogr" or not source:
        return None
    path, *options = source.split("|")
    opts = {}
    for o in options:
        key, _, value = o.partition("=")
        opts[key.strip().lower()] = value
    if opts.get("subset", "").strip():
        return None
    if set(opts) - {"layername", "layerid", "geometrytype", "uniquegeometrytype"}:
        return None
    layer = opts.get("layername") or None
    if path.startswith("/vsizip/"):
        inner = path[len("/vsizip/"):]
        low = inner.lower()
        cut = low.find(".zip/")
        if cut < 0 or not low.endswith(".shp"):
            return None
        zip_path, member = inner[:cut + 4], inner[cut + 5:]
        return FileSource(zip_path, PurePath(member).stem)
    if path.startswith("/vsi"):
        return None
    suffix = PurePath(path).suffix.lower()
    if suffix not in READABLE:
        return None
    if suffix == ".gpkg":
        if layer is None and "layerid" in opts and opts["layerid"] not in ("", "0"):
            return None
        return FileSource(path, layer)
    return FileSource(path)
