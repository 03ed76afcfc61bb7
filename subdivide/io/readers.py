"""Readers for the auxiliary layers: points, polygons (overlays, outlines, neighbours).

One reader per kind of file, one CRS rule for all of them:

- a vector file must declare its CRS, except GeoJSON, which is longitude/latitude by
  convention (RFC 7946) and is read as JGD2011 (EPSG:6668) when it declares none;
- a CSV of points holds latitude/longitude in decimal degrees (JGD2011);
- text in a Shapefile's .dbf is decoded as the town-block reader decides (.cpg, else
  CP932, else UTF-8 when only that decodes); CSVs go through :func:`read_text_table`
  (UTF-8 with or without BOM, CP932).

Every fault is a :class:`UserError` naming the file and the option it came from.
(Town-block files have their own reader, :mod:`subdivide.io.townblocks`; coverage
polygons are read by :mod:`subdivide.analysis.coverage` on top of :func:`read_vector`.)
"""
from __future__ import annotations

import stat
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from subdivide.core.errors import UserError
from subdivide.io.tables import read_text_table

#: JGD2011 longitude/latitude: the CRS of a GeoJSON or a lat/lon CSV that declares none
LONLAT_CRS = "EPSG:6668"
#: where Japan lies (degrees), for the swapped-coordinates check
JAPAN_LAT = (20.0, 46.5)
JAPAN_LON = (122.0, 154.5)

LAT_COLUMNS = ("latitude", "lat", "緯度", "y")
LON_COLUMNS = ("longitude", "lon", "lng", "経度", "x")
POINT_NAME_COLUMNS = ("name", "office_name", "point", "名称")
_GEOJSON_SUFFIXES = (".geojson", ".json", ".geojsonl", ".geojsons")


def check_input_file(path, *, what: str, where: str | None = None) -> Path:
    """The path of a readable regular file (or a folder a vector driver reads), else a
    UserError. A FIFO, device or socket is refused before anything opens it (it would hang)."""
    p = Path(path)
    where = where or str(p)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise UserError(f"{what} {p} does not exist", where=where, fix="check the path") from None
    except OSError as exc:
        raise UserError(f"{what} {p} cannot be opened ({exc.strerror})", where=where,
                        fix="check the path and its permissions") from None
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        raise UserError(f"{what} {p} is not a regular file (a pipe or device?)", where=where,
                        fix="save the data to a file and give its path")
    if stat.S_ISREG(st.st_mode):
        try:
            with open(p, "rb") as fh:
                fh.read(1)
        except OSError as exc:
            raise UserError(f"{what} {p} cannot be read ({exc.strerror})", where=where,
                            fix="check the file's permissions") from None
    return p


def shapefile_codec(p: Path) -> str:
    """Text encoding of a Shapefile's .dbf, decided exactly as the town-block reader
    decides it (:func:`subdivide.io.sources.decide_encoding`: the .cpg, else UTF-8 when the
    text is valid UTF-8 and mojibake in CP932, else CP932)."""
    from subdivide.io.sources import decide_encoding, open_source

    codec, _ = decide_encoding(open_source(p), None)
    return codec or "cp932"


def list_layers(p: Path, *, what: str, where: str) -> list[str]:
    import pyogrio

    try:
        return [str(x) for x in pyogrio.list_layers(p)[:, 0]]
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same message
        raise UserError(f"{what} {p.name} is not a readable vector file ({exc.__class__.__name__})",
                        where=where, fix="give a GeoPackage, GeoJSON or Shapefile") from None


def read_vector(path, *, what: str, where: str | None = None, layer: str | None = None,
                layer_option: str = "--layer") -> gpd.GeoDataFrame:
    """Any vector file pyogrio reads, with the one CRS rule (module docstring). A file with
    several layers needs ``layer``; an empty file is an error."""
    p = check_input_file(path, what=what, where=where)
    where = where or str(p)
    layers = list_layers(p, what=what, where=where)
    if layer is None and len(layers) > 1:  # reading "the first layer" silently takes the wrong one
        raise UserError(f"{what} {p.name} has {len(layers)} layers: {', '.join(layers)}", where=where,
                        fix=f"choose one with {layer_option} NAME")
    if layer is not None and layer not in layers:
        raise UserError(f"{what} {p.name} has no layer {layer!r}; it has: {', '.join(layers)}", where=where,
                        fix=f"choose one with {layer_option} NAME")
    kw = {"layer": layer} if layer else {}
    if p.suffix.lower() == ".shp":
        kw["encoding"] = shapefile_codec(p)
    try:
        gdf = gpd.read_file(p, **kw)
    except Exception as exc:  # noqa: BLE001 - pyogrio raises several types for unreadable files
        raise UserError(f"{what} {p.name} is not a readable vector file ({exc.__class__.__name__})",
                        where=where, fix="give a GeoPackage, GeoJSON or Shapefile") from None
    if gdf.crs is None:
        if p.suffix.lower() in _GEOJSON_SUFFIXES:
            gdf = gdf.set_crs(LONLAT_CRS)
        else:
            raise UserError(f"{what} {p.name} declares no CRS", where=where,
                            fix="add the .prj (or write it as GeoPackage/GeoJSON with its CRS)")
    if len(gdf) == 0:
        raise UserError(f"{what} {p.name} holds no features", where=where, fix="check the file and layer")
    return gdf


def _geometry_kinds(gdf: gpd.GeoDataFrame) -> set[str]:
    return set(gdf.geometry.geom_type.dropna())


def read_polygons(path, *, what: str = "overlay", where: str | None = None, layer: str | None = None,
                  layer_option: str = "--overlay-layer") -> gpd.GeoDataFrame:
    """A polygon layer (pre-merger boundaries, outlines, neighbours); points or lines are
    an error that says so."""
    gdf = read_vector(path, what=what, where=where, layer=layer, layer_option=layer_option)
    kinds = _geometry_kinds(gdf)
    if not kinds or not kinds <= {"Polygon", "MultiPolygon"}:
        raise UserError(f"{what} {Path(path).name} must hold polygons; it holds "
                        f"{', '.join(sorted(kinds)) or 'no geometry'}", where=where or str(path),
                        fix="give a polygon layer; points (e.g. offices) cannot stand for areas")
    return gdf


def _points_from_table(p: Path, where: str) -> gpd.GeoDataFrame:
    df = read_text_table(p, what="points file", empty_as_nan=True)
    cols = {str(c).strip().lower(): c for c in df.columns}
    lat = next((cols[c] for c in LAT_COLUMNS if c in cols), None)
    lon = next((cols[c] for c in LON_COLUMNS if c in cols), None)
    if lat is None or lon is None:
        raise UserError(f"{p.name} has no latitude/longitude columns (has {list(map(str, df.columns))[:12]})",
                        where=where, fix="name them latitude and longitude (decimal degrees, JGD2011)")
    x = pd.to_numeric(df[lon], errors="coerce")
    y = pd.to_numeric(df[lat], errors="coerce")
    bad = (x.isna() | y.isna()).to_numpy()
    if bad.any():
        rows = list(np.flatnonzero(bad)[:10] + 2)
        raise UserError(f"{p.name}: latitude/longitude are not numbers in rows {rows} (row 1 = header)",
                        where=where, fix="give decimal degrees, e.g. 39.3886 and 141.1139")
    return gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(x, y), crs=LONLAT_CRS)


def check_in_japan(gdf: gpd.GeoDataFrame, *, what: str, where: str) -> None:
    """Points given in degrees must lie in Japan; swapped latitude/longitude is named."""
    ll = gdf.to_crs(LONLAT_CRS) if gdf.crs is not None and not gdf.crs.equals(LONLAT_CRS) else gdf
    x = np.asarray(ll.geometry.x, float)
    y = np.asarray(ll.geometry.y, float)
    ok = (JAPAN_LON[0] <= x) & (x <= JAPAN_LON[1]) & (JAPAN_LAT[0] <= y) & (y <= JAPAN_LAT[1])
    if ok.all():
        return
    swapped = (JAPAN_LON[0] <= y) & (y <= JAPAN_LON[1]) & (JAPAN_LAT[0] <= x) & (x <= JAPAN_LAT[1])
    rows = list(np.flatnonzero(~ok)[:10] + 1)
    if swapped[~ok].all():
        raise UserError(f"{what}: latitude and longitude look swapped (features {rows})", where=where,
                        fix="latitude is about 24–46 in Japan, longitude about 122–154: swap the columns")
    raise UserError(f"{what}: {int((~ok).sum())} points lie outside Japan (features {rows})", where=where,
                    fix="check the coordinates and the file's CRS")


def read_points(path, *, name_column: str | None = None, where: str = "--points",
                layer: str | None = None) -> gpd.GeoDataFrame:
    """Points from GeoJSON/GPKG/SHP, or a CSV with latitude/longitude (JGD2011 degrees).

    Returns GeoDataFrame(point, …the file's columns…, geometry): ``point`` is the name,
    from ``name_column`` or the first of name / office_name / point / 名称."""
    p = check_input_file(path, what="points file", where=where)
    if p.suffix.lower() in (".csv", ".txt", ".tsv"):
        gdf = _points_from_table(p, where)
    else:
        gdf = read_vector(p, what="points file", where=where, layer=layer)
        kinds = _geometry_kinds(gdf)
        if not kinds or not kinds <= {"Point", "MultiPoint"}:
            raise UserError(f"points file {p.name} must hold points; it holds {', '.join(sorted(kinds)) or 'no geometry'}",
                            where=where, fix="give office or measurement points (polygons belong in --overlay/--outline)")
    check_in_japan(gdf, what=f"points file {p.name}", where=where)
    col = name_column or next((c for c in POINT_NAME_COLUMNS if c in gdf.columns), None)
    if col is None or col not in gdf.columns:
        raise UserError(f"points have no name column {name_column!r}" if name_column else
                        "points have no name column", where="--point-name",
                        fix=f"choose one of {[str(c) for c in gdf.columns.drop('geometry')][:12]}")
    gdf = gdf.copy()
    if "point" in gdf.columns and col != "point":
        gdf = gdf.drop(columns="point")
    gdf.insert(0, "point", gdf[col].astype(str))
    return gdf


def read_outline(outline, crs, *, what: str = "outline", where: str | None = None):
    """A municipal outline (path, GeoDataFrame/GeoSeries or geometry) → one geometry in ``crs``."""
    if outline is None:
        return None
    import shapely

    if isinstance(outline, (str, Path)):
        outline = read_polygons(outline, what=what, where=where)
    if isinstance(outline, (gpd.GeoDataFrame, gpd.GeoSeries)):
        if outline.crs is None:
            raise UserError(f"the {what} has no CRS", where=where, fix=f"write the {what} with its CRS")
        return shapely.union_all(outline.to_crs(crs).geometry.values)
    return outline
