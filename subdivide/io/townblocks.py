"""Reading town-block files into the canonical schema (:mod:`subdivide.core.schema`).

:func:`read_townblocks` reads an e-Stat 小地域 boundary file in any of its three
layouts (:mod:`subdivide.io.estat`, recognised from the columns that carry meaning) —
Shapefile, zipped Shapefile, GeoPackage, GeoJSON or TopoJSON (e.g. the CODH/NII
republication with its ``town`` and ``city`` layers) — or any polygon layer with an
explicit :class:`ColumnMapping`, and returns

- the canonical town-blocks, one row per KEY_CODE (multi-part units dissolved, water
  areas and other-municipality placeholders dropped, invalid geometry repaired), in the
  prefecture's plane-rectangular CRS (metres);
- an :class:`IngestReport` saying what was read, what was assumed and what was done.

Files are checked before anything reads them (:mod:`subdivide.io.sources`); text in a
Shapefile is decoded explicitly (option, .cpg, UTF-8 detected, else CP932) and mojibake is
refused; counts with e-Stat secrecy marks are unknown (:mod:`subdivide.io.counts`); a
plane-rectangular .prj is checked against the X_CODE/Y_CODE points. Every problem a user
can fix raises :class:`subdivide.core.errors.UserError`.

:func:`normalize_townblocks` is the in-memory half (also used by
:mod:`subdivide.testing.synthetic`), a pipeline of small steps.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer

from subdivide.core.codes import normalize_municipality_code
from subdivide.core.crs import (
    JAPAN_LAT,
    JAPAN_LON,
    PREF_NAMES,
    ZONE_TOLERANCE_KM,
    median_offset_km,
    parse_crs,
    plane_rectangular_epsg,
    plane_rectangular_zone,
    zone_against_prefecture,
    zone_crs,
    zone_label,
    zone_that_fits,
)
from subdivide.core.errors import UserError
from subdivide.core.names import without_controls
from subdivide.core.progress import Progress, silent
from subdivide.core.schema import (
    TOWNBLOCK_COLUMNS,
    UNKNOWN_FLAG,
    check_townblocks,
    coerce_townblocks,
)
from subdivide.io.counts import read_counts
from subdivide.io.estat import HCODE_WATER, ROLES, LayoutMatch, match_layout
from subdivide.io.sources import choose_layer, decide_encoding, open_source, read_layer

#: characters typical of UTF-8 read as CP932 (縺 繧 繝 …) and of CP932 read as latin-1
_MOJIBAKE_CP932 = re.compile(r"[縺繧繝譁蜷螟髢蝣蜀莉荳謨驕]")
_LATIN1_GARBAGE = re.compile(r"[\x80-\xff]")
#: CRS of a layer that declares none but whose coordinates are lon/lat in Japan
LONLAT_DEFAULT = "EPSG:6668"
#: JGD2000 geographic and plane-rectangular EPSG codes (a datum change is noted)
_JGD2000 = frozenset([4612] + list(range(2443, 2462)))


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class ColumnMapping:
    """Which columns of a non-e-Stat layer hold the canonical attributes.

    key: unique town-block id (read as text; leading zeros kept).
    name: town-block name (optional; empty when absent).
    population / households: counts (optional; 0 when absent).
    muni_code: 5- or 6-digit municipality code column (optional; else ``muni_code=``).
    area: official area in m² (optional; NaN when absent).

    Where the layer also has e-Stat's KIGO_E (parts of one unit), HCODE (water areas),
    KIGO_I (islands) or KIGO_D (飛び地), they are used as in an e-Stat layout.
    """

    key: str
    name: str | None = None
    population: str | None = None
    households: str | None = None
    muni_code: str | None = None
    area: str | None = None


@dataclass
class IngestReport:
    """What :func:`read_townblocks` read and did (all areas in km², counts in rows)."""

    source: str = ""
    layout: str = ""                      # 2015_legacy / 2015_current / 2020 / mapped
    layer: str | None = None              # the layer read (multi-layer files)
    encoding: str | None = None           # codec used for the attribute text
    encoding_reason: str = ""             # how it was decided
    crs_in: str = ""
    crs_out: str = ""
    records_in: int = 0                   # features in the file
    blocks_out: int = 0                   # town-blocks after dissolving
    muni_codes: list[str] = field(default_factory=list)
    columns_matched: list[str] = field(default_factory=list)   # e-Stat columns recognised
    columns_missing: list[str] = field(default_factory=list)   # e-Stat columns absent
    dropped: list[dict] = field(default_factory=list)     # {reason, count, keys}
    repairs: list[dict] = field(default_factory=list)     # {key, problem, fix, area_before_m2, area_after_m2}
    flags: dict[str, int] = field(default_factory=dict)   # island / enclave / multipart / repaired
    unknown: dict[str, int] = field(default_factory=dict)  # town-blocks whose count is unknown (秘匿)
    totals: dict[str, float] = field(default_factory=dict)
    fallbacks: list[str] = field(default_factory=list)    # layer chosen, CRS assumed, columns renamed …
    warnings: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)      # every attribute column of the layer, in file order
    grouping_columns: dict[str, list[str]] = field(default_factory=dict)  # text columns with few values (--by)
    municipalities: list[dict] = field(default_factory=list)  # {code, name, town_blocks, population, households}

    def to_dict(self) -> dict:
        """JSON-ready dict (plain ints / floats / strings)."""
        return asdict(self)

    def to_text(self) -> str:
        """Human-readable summary (Japanese terms in parentheses)."""
        return "\n".join(_header_lines(self) + _municipality_lines(self) + _column_lines(self)
                         + _total_lines(self) + _dropped_lines(self)
                         + _repair_lines(self) + [f"note: {f}" for f in self.fallbacks if f not in self.warnings]
                         + [f"warning: {w}" for w in self.warnings])


def _header_lines(r: IngestReport) -> list[str]:
    enc = f"encoding:    {r.encoding or 'n/a'}" + (f" ({r.encoding_reason})" if r.encoding_reason else "")
    lines = [f"source:      {r.source}"] + ([f"layer:       {r.layer}"] if r.layer else [])
    lines += [f"layout:      {r.layout}"]
    if r.columns_matched:
        lines.append(f"columns:     {len(r.columns_matched)} e-Stat columns matched ({', '.join(r.columns_matched)})"
                     + (f"; missing: {', '.join(r.columns_missing)}" if r.columns_missing else ""))
    return lines + [enc, f"CRS in:      {r.crs_in}", f"CRS out:     {r.crs_out} (平面直角座標系)",
                    f"municipality (市区町村): {', '.join(r.muni_codes)}" + (
                        f" {r.municipalities[0]['name']}" if len(r.municipalities) == 1 and r.municipalities[0]["name"]
                        else ""),
                    f"records in:  {r.records_in:,} (レコード)",
                    f"town-blocks: {r.blocks_out:,} (町丁・字) after dissolving multi-part units"]


def _municipality_lines(r: IngestReport) -> list[str]:
    """One line per municipality (code, name, town-blocks, population) when there are several."""
    if len(r.municipalities) < 2:
        return []
    lines = [f"municipalities: {len(r.municipalities)} (select one with --muni CODE)"]
    for m in r.municipalities:
        pop = "unknown" if m["population"] is None else f"{m['population']:,}"
        lines.append(f"  {m['code']}  {m['name'] or '?'}  {m['town_blocks']:,} town-blocks, population {pop}")
    return lines


def _column_lines(r: IngestReport) -> list[str]:
    """The layer's attribute columns, and those that could group town-blocks into sub-areas."""
    lines = [f"attribute columns: {', '.join(r.columns)}"] if r.columns else []
    for col, values in r.grouping_columns.items():
        lines.append(f"  {col}: {len(values)} values ({', '.join(values[:12])}"
                     + (" …" if len(values) > 12 else "") + f") — e.g. subdivide plan FILE --by {col}")
    return lines


def _count_line(r: IngestReport, what: str, label: str, option: str) -> str:
    value = r.totals.get(what)
    if value is None:
        return f"{label}" + f"not in the layer (map a column with {option} COL)"
    n = r.unknown.get(what, 0)
    return f"{label}{int(value):,}" + (f" (+ {n} town-blocks unknown: withheld 秘匿 or empty)" if n else "")


def _total_lines(r: IngestReport) -> list[str]:
    t = r.totals
    lines = [_count_line(r, "population", "population (人口 JINKO):  ", "--population"),
             _count_line(r, "households", "households (世帯 SETAI):  ", "--households"),
             f"area computed:  {t.get('area_computed_km2', 0.0):,.1f} km²"]
    if t.get("area_official_km2") is not None and not np.isnan(t.get("area_official_km2", np.nan)):
        lines.append(f"area official (AREA): {t['area_official_km2']:,.1f} km² "
                     f"(computed differs by {t.get('area_diff_pct', 0.0):+.2f} %)")
    lines.append("flags: " + ", ".join(f"{k} {v}" for k, v in r.flags.items()))
    lines.append("  (island = 離島 KIGO_I, enclave = 飛び地 KIGO_D, multipart = KIGO_E parts dissolved,"
                 " repaired = invalid geometry fixed)")
    return lines


def _dropped_lines(r: IngestReport) -> list[str]:
    if not r.dropped:
        return ["dropped rows: none"]
    lines = ["dropped rows:"]
    for d in r.dropped:
        keys = ", ".join(d["keys"][:5]) + (" …" if len(d["keys"]) > 5 else "")
        lines.append(f"  {d['count']:>6}  {d['reason']}" + (f"  [{keys}]" if keys else ""))
    return lines


def _repair_lines(r: IngestReport) -> list[str]:
    if not r.repairs:
        return ["geometry repairs: none"]
    lines = [f"geometry repairs: {len(r.repairs)}"]
    for x in r.repairs[:20]:
        lines.append(f"  {x['key']}: {x['problem']} → {x['fix']} "
                     f"(area {x['area_before_m2']:,.0f} → {x['area_after_m2']:,.0f} m²)")
    if len(r.repairs) > 20:
        lines.append(f"  … and {len(r.repairs) - 20} more")
    return lines


# --------------------------------------------------------------------------- helpers


def _codes_as_text(s: pd.Series, widths: tuple[int, ...], what: str, warnings: list[str]) -> pd.Series:
    """Code column as text. Numbers (from GeoJSON/CSV-like sources) are turned back into
    digits and zero-padded to the next width in ``widths``, with a warning."""
    if pd.api.types.is_numeric_dtype(s):
        vals = pd.to_numeric(s, errors="coerce")
        txt = vals.map(lambda v: "" if pd.isna(v) else str(int(v))).astype(object)
        lens = txt.str.len()
        padded = txt.copy()
        for w in sorted(widths):
            m = (lens == w - 1)
            padded[m] = txt[m].str.zfill(w)
        if (padded != txt).any():
            warnings.append(f"{what} was stored as a number; {int((padded != txt).sum())} values lost "
                            f"their leading zero and were zero-padded (store codes as text)")
        elif not widths:
            warnings.append(f"{what} is stored as a number; read as text, but any leading zeros "
                            "were already lost (store codes as text)")
        return padded
    return _text(s).str.strip()


def _text(s: pd.Series) -> pd.Series:
    """A column as object-dtype str with '' for missing (pandas 3 safe)."""
    if pd.api.types.is_string_dtype(s) or s.dtype == object:
        arr = s.to_numpy(dtype=object, na_value="")
        if all(isinstance(v, str) for v in arr[:1000]) and (len(arr) <= 1000 or s.dtype != object):
            return pd.Series(arr, index=s.index, dtype=object)
    return s.astype(object).where(s.notna(), "").astype(str).astype(object)


def _polygonal(geoms: np.ndarray) -> np.ndarray:
    """Keep only the polygonal parts of each geometry (GeometryCollection → MultiPolygon)."""
    gt = shapely.get_type_id(geoms)
    out = geoms.copy()
    lower_dim = np.isin(gt, [0, 1, 2, 4, 5])          # points / lines left by a collapse
    out[lower_dim] = shapely.from_wkt("MULTIPOLYGON EMPTY")
    coll = np.flatnonzero(gt == 7)
    if len(coll):
        parts, idx = shapely.get_parts(geoms[coll], return_index=True)
        keep = np.isin(shapely.get_type_id(parts), [3, 6])
        parts, idx = parts[keep], idx[keep]
        polys = shapely.get_parts(parts)  # explode MultiPolygons into polygons
        pidx = np.repeat(idx, shapely.get_num_geometries(parts))
        res = np.full(len(coll), shapely.from_wkt("MULTIPOLYGON EMPTY"), dtype=object)
        if len(polys):
            shapely.multipolygons(polys, indices=pidx, out=res)   # collections with no polygon stay empty
        out[coll] = res
    return out


def _looks_mojibake(values: pd.Series) -> str | None:
    """Describe the mojibake found in text values, or None.

    Works on the distinct values, with one regex pass over their concatenation first
    (most columns are clean ASCII codes or clean Japanese)."""
    uniq = [u for u in pd.unique(values.to_numpy()) if u]
    if not uniq:
        return None
    joined = "\n".join(uniq)
    if "\ufffd" in joined:
        return "replacement characters (U+FFFD)"
    if not (_LATIN1_GARBAGE.search(joined) or _MOJIBAKE_CP932.search(joined)):
        return None
    v = pd.Series(uniq, dtype=object)
    latin = v.str.contains(_LATIN1_GARBAGE)
    if latin.mean() > 0.05:
        return f"latin-1 garbage such as {v[latin].iloc[0]!r}"
    moji = v.str.contains(_MOJIBAKE_CP932)
    if moji.mean() > 0.3:
        return f"UTF-8 text decoded as CP932, such as {v[moji].iloc[0]!r}"
    return None


def _drop(report: IngestReport, mask: np.ndarray, keys: pd.Series, reason: str) -> None:
    if mask.any():
        report.dropped.append({"reason": reason, "count": int(mask.sum()),
                               "keys": sorted(set(keys[mask].astype(str)))[:50]})


def _repair(geoms: np.ndarray, keys: pd.Series, report: IngestReport) -> tuple[np.ndarray, np.ndarray]:
    """make_valid invalid geometries, keeping polygonal parts; returns (geoms, repaired mask)."""
    valid = shapely.is_valid(geoms)
    bad = np.flatnonzero(~valid)
    repaired = np.zeros(len(geoms), bool)
    if len(bad) == 0:
        return geoms, repaired
    reasons = shapely.is_valid_reason(geoms[bad])
    before = shapely.area(geoms[bad])
    fixed = _polygonal(shapely.make_valid(geoms[bad]))
    after = shapely.area(fixed)
    out = geoms.copy()
    out[bad] = fixed
    repaired[bad] = True
    for k, why, b, f in zip(keys.iloc[bad], reasons, before, after):
        report.repairs.append({"key": str(k), "problem": str(why), "fix": "make_valid (polygonal parts kept)",
                               "area_before_m2": round(float(b), 1), "area_after_m2": round(float(f), 1)})
    report.repairs.sort(key=lambda r: r["key"])
    return out, repaired


def _target_crs(target_crs, muni_codes: list[str], where: str) -> CRS:
    if target_crs is not None:
        crs = target_crs if isinstance(target_crs, CRS) else parse_crs(target_crs, option="--target-crs")
        if not crs.is_projected:
            raise UserError(f"target CRS {crs.name} is not projected (metres)", where=where,
                            fix="use the plane-rectangular zone, e.g. EPSG:6678")
        return crs
    prefs = sorted({c[:2] for c in muni_codes if len(c) >= 2 and c[:2].isdigit()})
    if len(prefs) != 1:
        raise UserError(
            "cannot tell which prefecture's plane-rectangular zone to use "
            + (f"(the file spans prefectures {', '.join(prefs)})" if prefs else "(no municipality code)"),
            where=where, fix="pass --muni CODE (e.g. 03205) or --target-crs EPSG:66xx")
    return CRS.from_epsg(plane_rectangular_epsg(prefs[0]))


def _degrees_as_metres(crs: CRS, bounds, where: str) -> None:
    minx, miny, maxx, maxy = bounds
    if not crs.is_geographic and JAPAN_LON[0] <= minx and maxx <= JAPAN_LON[1] \
            and JAPAN_LAT[0] <= miny and maxy <= JAPAN_LAT[1]:
        # degrees read as metres: "inside Japan" (a few metres from a zone origin), area ≈ 0
        raise UserError(
            f"coordinates look like longitude/latitude in degrees (x {minx:.3f}–{maxx:.3f}, "
            f"y {miny:.3f}–{maxy:.3f}) but the CRS {crs.name} is in metres",
            where=where,
            fix="pass the lat/lon CRS with --crs (EPSG:6668 JGD2011 or EPSG:4612 JGD2000), or fix the .prj",
        )


def _lonlat_range(crs: CRS, bounds) -> tuple[tuple[float, float], tuple[float, float]]:
    minx, miny, maxx, maxy = bounds
    if crs.is_geographic:
        return (minx, maxx), (miny, maxy)
    tr = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    lo, la = tr.transform(np.array([minx, maxx, minx, maxx, (minx + maxx) / 2]),
                          np.array([miny, miny, maxy, maxy, (miny + maxy) / 2]))
    return (np.nanmin(lo), np.nanmax(lo)), (np.nanmin(la), np.nanmax(la))


def _in_japan(lon, lat) -> bool:
    return JAPAN_LON[0] <= lon[0] and lon[1] <= JAPAN_LON[1] and JAPAN_LAT[0] <= lat[0] and lat[1] <= JAPAN_LAT[1]


def _check_in_japan(gdf: gpd.GeoDataFrame, where: str) -> None:
    """Refuse coordinates outside Japan; recognise swapped lat/lon and degrees read as metres."""
    bounds, crs = gdf.total_bounds, gdf.crs
    _degrees_as_metres(crs, bounds, where)
    lon, lat = _lonlat_range(crs, bounds)
    if _in_japan(lon, lat):
        return
    minx, miny, maxx, maxy = bounds
    if crs.is_geographic and _in_japan((miny, maxy), (minx, maxx)):
        raise UserError(
            f"coordinates look like latitude/longitude swapped (x {minx:.3f}–{maxx:.3f}, y {miny:.3f}–{maxy:.3f})",
            where=where,
            fix="re-export the file with x = longitude, y = latitude (in QGIS: check the axis order of the CRS)",
        )
    raise UserError(
        f"coordinates fall outside Japan in {crs.name} "
        f"(lon {lon[0]:.3f}–{lon[1]:.3f}, lat {lat[0]:.3f}–{lat[1]:.3f})",
        where=where,
        fix="the declared CRS is probably wrong: pass the right one with --crs (e.g. EPSG:6678 for zone X, "
            "EPSG:6668 for JGD2011 lat/lon)",
    )


def _check_zone(rows: gpd.GeoDataFrame, muni_codes: list[str], where: str) -> None:
    """A plane-rectangular CRS must put the polygons on their X_CODE/Y_CODE points (e-Stat's
    lon/lat of each town-block's centre) within a few km, or — without those columns — near
    their prefecture; otherwise name the zone that does."""
    zone = plane_rectangular_zone(rows.crs)
    if zone is None:
        return
    cols = {str(c).upper(): c for c in rows.columns}
    if "X_CODE" in cols and "Y_CODE" in cols:
        _check_zone_points(rows, zone, cols["X_CODE"], cols["Y_CODE"], where)
    else:
        _check_zone_prefecture(rows, zone, muni_codes, where)


def _zone_error(zone: tuple[str, int], how: str, best: int | None, where: str) -> UserError:
    right = f"they fit {zone_label(zone[0], best)}" if best else "no plane-rectangular zone fits them"
    return UserError(
        f"the .prj declares the plane-rectangular {zone_label(*zone)}, but the polygons then lie {how}; {right}",
        where=where,
        fix=(f"correct the .prj, or pass --crs EPSG:{zone_crs(zone[0], best).to_epsg()}" if best else
             "find the CRS the file was written in and pass it with --crs"))


def _check_zone_points(rows: gpd.GeoDataFrame, zone: tuple[str, int], xcol: str, ycol: str, where: str) -> None:
    lon = pd.to_numeric(rows[xcol], errors="coerce").to_numpy(float)
    lat = pd.to_numeric(rows[ycol], errors="coerce").to_numpy(float)
    pts = shapely.point_on_surface(rows.geometry.to_numpy())
    ok = (lon > JAPAN_LON[0]) & (lon < JAPAN_LON[1]) & (lat > JAPAN_LAT[0]) & (lat < JAPAN_LAT[1]) \
        & ~shapely.is_empty(pts) & ~pd.isna(pts)
    if ok.sum() < 3:
        return
    x, y = shapely.get_x(pts[ok]), shapely.get_y(pts[ok])
    off = median_offset_km(x, y, rows.crs, lon[ok], lat[ok])
    if off > ZONE_TOLERANCE_KM:
        raise _zone_error(zone, f"{off:,.0f} km (median) from their X_CODE/Y_CODE points",
                          zone_that_fits(x, y, zone[0], lon[ok], lat[ok]), where)


def _check_zone_prefecture(rows: gpd.GeoDataFrame, zone: tuple[str, int], muni_codes: list[str],
                           where: str) -> None:
    prefs = {c[:2] for c in muni_codes if len(c) >= 2 and c[:2].isdigit()}
    if len(prefs) != 1:
        return
    pref = int(prefs.pop())
    minx, miny, maxx, maxy = rows.total_bounds
    hit = zone_against_prefecture((minx + maxx) / 2, (miny + maxy) / 2, zone[0], zone[1], pref)
    if hit:
        own, far, near = hit
        raise _zone_error(zone, f"{far:,.0f} km from the prefectural office of {PREF_NAMES[pref - 1]} "
                                f"(prefecture {pref:02d}, from the municipality codes) — in its own zone "
                                f"they lie {near:,.0f} km from it", own, where)


def _check_text(df: pd.DataFrame, layout: str | None, name_col: str | None, encoding: str | None,
                where: str) -> None:
    """Refuse mojibake: prefecture names must end in 都/道/府/県; names must be clean."""
    fix = ("pass the right encoding, e.g. --encoding cp932 (Shift-JIS, e-Stat) or --encoding utf-8; "
           "or add a .cpg file next to the .shp holding the code page")
    if layout in ROLES and ROLES[layout].pref_name in df.columns:
        col = ROLES[layout].pref_name
        names = _text(df[col])
        bad = names[(names != "") & ~names.isin(PREF_NAMES)]
        if len(bad):
            raise UserError(
                f"text is garbled (mojibake) when decoded as {encoding}: prefecture name {bad.iloc[0]!r} "
                f"in {col} does not end in 都/道/府/県",
                where=where, fix=fix)
    for c in _text_columns_to_check(df, layout, name_col):
        what = _looks_mojibake(_text(df[c]))
        if what:
            raise UserError(f"text is garbled (mojibake) when decoded as {encoding}: {what} in column {c}",
                            where=where, fix=fix)


def _text_columns_to_check(df: pd.DataFrame, layout: str | None, name_col: str | None) -> list[str]:
    cols = [c for c in [name_col] if c and c in df.columns]
    if layout in ROLES:   # the Japanese text columns of e-Stat; the rest are ASCII codes
        return cols + [c for c in ("GST_NAME", "CITY_NAME", "KEN_NAME", "PREF_NAME") if c in df.columns]
    return cols + [c for c in df.columns if c not in cols and c != df.geometry.name
                   and (df[c].dtype == object or pd.api.types.is_string_dtype(df[c]))][:8]


# --------------------------------------------------------------------------- attributes


def _column(raw: pd.DataFrame, name: str) -> str | None:
    """The column spelt ``name`` in any case, or None."""
    return next((c for c in raw.columns if str(c).upper() == name), None)


def _flags(raw: gpd.GeoDataFrame, key: pd.Series, a: pd.DataFrame) -> None:
    """KIGO_E / KIGO_I / KIGO_D / HCODE / S_AREA where the layer has them (any mode)."""
    def text_of(name):
        c = _column(raw, name)
        return _text(raw[c]).str.strip() if c is not None else pd.Series("", index=raw.index, dtype=object)

    a["island"] = (text_of("KIGO_I") != "").to_numpy()
    a["enclave"] = (text_of("KIGO_D") != "").to_numpy()
    a["_part"] = text_of("KIGO_E").str.upper().to_numpy()
    hcode = _column(raw, "HCODE")
    a["_water"] = pd.to_numeric(raw[hcode], errors="coerce").eq(HCODE_WATER).to_numpy() if hcode \
        else np.zeros(len(raw), bool)
    a["_placeholder"] = ((key.str.len() <= 2) & (key != "")) | (text_of("S_AREA") == "000000")


def _counts(raw: gpd.GeoDataFrame, a: pd.DataFrame, pop: str | None, hh: str | None, where: str) -> None:
    for col, src in (("population", pop), ("households", hh)):
        if src is None:
            a[col] = pd.array(np.zeros(len(raw), dtype="int64"), dtype="Int64")
            a[f"_{col}_marked"] = False
            continue
        c = read_counts(raw[src], src, where=where)
        a[col] = c.values.to_numpy()
        a[f"_{col}_marked"] = c.marked


def _block_names(s: pd.Series, warnings: list[str]) -> pd.Series:
    """Town-block names as one-line labels (:func:`subdivide.core.names.one_line`): a line
    break, tab or format character in a name would split a row of the carriers' lists;
    it becomes a space, with a warning naming how many."""
    from subdivide.core.names import one_line

    text = _text(s)
    fixed = {v: one_line(v) for v in text.unique() if one_line(v) != v.strip()}   # names with such characters
    if not fixed:
        return text
    hit = text.isin(list(fixed))
    warnings.append(f"{int(hit.sum())} town-block names held line breaks, tabs or other control characters; "
                    "each run of them was replaced by a space")
    return text.where(~hit, text.map(fixed))


def _mapped_attrs(raw: gpd.GeoDataFrame, mapping: ColumnMapping, muni_code: str | None,
                  warnings: list[str], where: str) -> pd.DataFrame:
    wanted = {k: v for k, v in asdict(mapping).items() if v}
    missing = [v for v in wanted.values() if v not in raw.columns]
    if missing:
        cols = [c for c in raw.columns if c != raw.geometry.name]
        raise UserError(f"mapped columns not in the layer: {missing}", where=where,
                        fix=f"the layer has: {', '.join(map(str, cols[:30]))}")
    a = pd.DataFrame(index=raw.index)
    widths = (9, 11) if mapping.key.upper() == "KEY_CODE" else ()
    a["key"] = _codes_as_text(raw[mapping.key], widths, f"key column {mapping.key}", warnings)
    a["name"] = _block_names(raw[mapping.name], warnings) if mapping.name else ""
    _counts(raw, a, mapping.population, mapping.households, where)
    a["area_official_m2"] = pd.to_numeric(raw[mapping.area], errors="coerce") if mapping.area else np.nan
    if mapping.muni_code:
        mc = _codes_as_text(raw[mapping.muni_code], (5, 6), f"municipality column {mapping.muni_code}", warnings)
        a["muni_code"] = mc.str.slice(0, 5)
    elif widths:        # the key is e-Stat's KEY_CODE: its first five digits are the municipality
        a["muni_code"] = a["key"].str.slice(0, 5)
    else:
        a["muni_code"] = muni_code or ""
    _flags(raw, a["key"] if widths else pd.Series("x" * 9, index=raw.index), a)
    return a


def _estat_attrs(raw: gpd.GeoDataFrame, layout: str, warnings: list[str], where: str) -> pd.DataFrame:
    roles = ROLES[layout]
    a = pd.DataFrame(index=raw.index)
    key = _codes_as_text(raw[_column(raw, "KEY_CODE")], (9, 11), "KEY_CODE", warnings)
    a["key"] = key
    a["name"] = _block_names(raw[_column(raw, roles.town_name)], warnings)
    pref = _codes_as_text(raw[_column(raw, roles.pref)], (2,), roles.pref, warnings)
    city = _codes_as_text(raw[_column(raw, roles.city)], (3,), roles.city, warnings)
    a["muni_code"] = (pref + city).where((pref.str.len() == 2) & (city.str.len() == 3), key.str.slice(0, 5))
    _counts(raw, a, _column(raw, "JINKO"), _column(raw, "SETAI"), where)
    a["area_official_m2"] = pd.to_numeric(raw[_column(raw, "AREA")], errors="coerce")
    _flags(raw, key, a)
    bad = ~a["_placeholder"] & ~key.str.fullmatch(r"\d{9}|\d{11}")
    if bad.any():
        raise UserError(f"{int(bad.sum())} KEY_CODE values are not 9 or 11 digits, e.g. "
                        f"{list(key[bad].iloc[:5])}", where=where,
                        fix="KEY_CODE must be text (PREF + KEYCODE2); re-export the file without "
                            "converting it to numbers")
    return a


# --------------------------------------------------------------------------- steps


def _require_layout(raw: gpd.GeoDataFrame, layout: str | None, mapping: ColumnMapping | None,
                    report: IngestReport, where: str) -> str | None:
    """The e-Stat layout (None in mapped mode); records matched/missing columns in the report."""
    if mapping is not None:
        report.layout = "mapped"
        return None
    cols = [str(c) for c in raw.columns if c != raw.geometry.name]
    m = match_layout(cols)
    layout = layout or m.layout
    if layout is None:
        raise UserError(f"not an e-Stat town-block layout (closest e-Stat layout {m.closest} lacks "
                        f"{', '.join(m.missing[:8])})" if _looks_estat(m) else "not an e-Stat town-block layout",
                        where=where,
                        fix="say which columns to use: --key COL [--name COL --population COL "
                            f"--households COL --muni-column COL]; columns: {', '.join(cols[:30])}")
    report.layout = layout
    report.columns_matched, report.columns_missing = list(m.matched), list(m.missing)
    _note_ids(m, report)
    return layout


def _looks_estat(m: LayoutMatch) -> bool:
    return {"KEY_CODE", "HCODE"} <= set(m.matched)


def _note_ids(m: LayoutMatch, report: IngestReport) -> None:
    renamed = [c for c in m.internal_ids if not re.search(r"\d\d_(ID)?$", c, re.IGNORECASE)]
    if renamed:
        report.fallbacks.append(f"internal id columns {', '.join(renamed)} are renamed (as in the CODH/NII "
                                "republication); not used")
    elif m.absent_ids and not m.internal_ids:
        report.fallbacks.append(f"internal id columns {', '.join(m.absent_ids)} are absent (dropped by a "
                                "re-export); not used")


def _require_polygons(raw: gpd.GeoDataFrame, where: str) -> None:
    if raw.geometry.name not in raw.columns or len(raw) == 0:
        raise UserError("the layer is empty (no features)", where=where,
                        fix="check that this is the right file / layer")
    if raw.crs is None:
        raise UserError("the layer has no coordinate reference system (CRS)", where=where,
                        fix="pass --crs, e.g. --crs EPSG:4612 (JGD2000 lat/lon) or EPSG:6668 (JGD2011)")
    gt = raw.geometry.geom_type
    nonpoly = ~gt.isin(["Polygon", "MultiPolygon"]) & gt.notna()
    if nonpoly.any():
        kinds = ", ".join(sorted(set(gt[nonpoly].astype(str))))
        raise UserError(f"{int(nonpoly.sum())} features are not polygons ({kinds})", where=where,
                        fix="town-blocks must be polygons; the e-Stat points table is not enough — "
                            "use the boundary Shapefile (境界データ)")


def _municipality_mask(a: pd.DataFrame, keep: np.ndarray, muni_code: str | None, where: str) -> np.ndarray:
    if not muni_code:
        return np.ones(len(a), bool)
    present = sorted(set(a.loc[keep, "muni_code"]))
    if muni_code not in present:
        raise UserError(f"municipality {muni_code} is not in the file; it holds "
                        f"{', '.join(present[:30]) if present else 'no municipality codes'}"
                        + (" …" if len(present) > 30 else ""),
                        where=where, fix="pass one of those codes with --muni")
    return (a["muni_code"] == muni_code).to_numpy()


def _select(raw: gpd.GeoDataFrame, a: pd.DataFrame, muni_code: str | None, report: IngestReport,
            where: str) -> np.ndarray:
    """Rows to keep: not water, not placeholders, with geometry, of ``muni_code``; drops reported.

    With --muni, every row of another municipality (water and placeholders included) counts
    as "other municipalities", so the report's figures are this municipality's."""
    water = a["_water"].to_numpy(bool)
    ph = a["_placeholder"].to_numpy(bool) & ~water
    nogeom = (raw.geometry.isna() | raw.geometry.is_empty).to_numpy() & ~water & ~ph
    keep = ~(water | ph | nogeom)
    mine = _municipality_mask(a, keep, muni_code, where)
    _drop(report, water & mine, a["key"], f"water area (水面, HCODE {HCODE_WATER})")
    _drop(report, ph & mine, a["key"], "placeholder for another municipality's area (KEY_CODE 2 digits / S_AREA 000000)")
    _drop(report, nogeom & mine, a["key"], "no geometry")
    if muni_code:
        _drop(report, ~mine, a["muni_code"], f"other municipalities (not {muni_code})")
    keep &= mine
    if not keep.any():
        raise UserError("no town-blocks left after dropping water areas and placeholders", where=where,
                        fix="check that this is a town-block file")
    return keep


def _check_keys(a: pd.DataFrame, mapping: ColumnMapping | None, where: str) -> None:
    """Keys present (mapped mode) and unique except on parts marked KIGO_E E1, E2 …"""
    if mapping is not None and (a["key"] == "").any():
        raise UserError(f"{int((a['key'] == '').sum())} features have an empty key ({mapping.key})", where=where,
                        fix="fill the key column or choose another")
    dup = a["key"].duplicated(keep=False).to_numpy()
    if not dup.any():
        return
    d = a[dup]
    partdup = d.duplicated(["key", "_part"], keep=False)
    bad_keys = sorted(set(d.loc[(d["_part"] == "") | partdup, "key"]))
    if bad_keys:
        raise UserError(f"{len(bad_keys)} keys appear on several features that are not marked as parts "
                        f"of one unit (KIGO_E E1, E2 …): {', '.join(bad_keys[:10])}", where=where,
                        fix="keys must be unique per town-block; fix the file, or choose another key column")


def _project(rows: gpd.GeoDataFrame, a: pd.DataFrame, target_crs, report: IngestReport, where: str):
    """Check the location, project to the target CRS and repair; returns (a, rows, geoms, repaired)."""
    _degrees_as_metres(rows.crs, rows.total_bounds, where)
    _check_zone(rows, report.muni_codes, where)
    _check_in_japan(rows, where)
    target = _target_crs(target_crs, report.muni_codes, where)
    report.crs_out = f"{target.name} (EPSG:{target.to_epsg()})" if target.to_epsg() else target.name
    if rows.crs.to_epsg() in _JGD2000 and target.name.startswith("JGD2011"):
        report.warnings.append("input is JGD2000; transformed to JGD2011 (shift of a few metres at most; "
                               "use a grid-shift-aware tool for survey-grade work)")
    geoms = rows.to_crs(target).geometry.to_numpy()
    geoms, repaired = _repair(geoms, a["key"], report)
    empty = shapely.is_empty(geoms)
    if empty.any():
        _drop(report, empty, a["key"], "geometry empty after repair")
        a, rows, geoms, repaired = a[~empty], rows[~empty], geoms[~empty], repaired[~empty]
    return a, rows, geoms, repaired, target


def _with_source_columns(a: pd.DataFrame, rows: gpd.GeoDataFrame, geoms, repaired) -> pd.DataFrame:
    extra = pd.DataFrame({(c if c not in TOWNBLOCK_COLUMNS else f"src_{c}"): rows[c].to_numpy()
                          for c in rows.columns if c != rows.geometry.name}, index=a.index)
    df = pd.concat([a.drop(columns=["_water", "_placeholder"]), extra], axis=1)
    df["repaired"] = repaired
    df["_g"] = geoms
    df["_pnum"] = pd.to_numeric(df["_part"].str.extract(r"(\d+)", expand=False), errors="coerce").fillna(0)
    return df


_COUNTS = ["population", "households"]


def _dissolve_parts(parts: pd.DataFrame, warnings: list[str]) -> pd.DataFrame:
    """One row per key from multi-part rows: counts and official area summed (a count is
    unknown when the E1 part's is), flags or-ed, geometry unioned, other columns from E1."""
    rank = parts.groupby("key", sort=True).cumcount().to_numpy()
    nonfirst = parts[rank > 0].groupby("key", sort=True)["population"].sum()
    if (nonfirst > 0).any():
        warnings.append(f"{int((nonfirst > 0).sum())} multi-part units carry population on parts "
                        "other than E1; all parts were summed")
    g = parts.groupby("key", sort=True)
    first = parts[rank == 0].set_index("key").sort_index()
    sums = g[_COUNTS + ["area_official_m2"]].sum(min_count=1)
    for c in _COUNTS:
        sums[c] = sums[c].mask(first[c].isna() | g[f"_{c}_marked"].any())
    first[_COUNTS + ["area_official_m2"]] = sums
    first[["island", "enclave", "repaired"]] = g[["island", "enclave", "repaired"]].any()
    first[[f"_{c}_marked" for c in _COUNTS]] = g[[f"_{c}_marked" for c in _COUNTS]].any()
    geom = gpd.GeoSeries(parts["_g"].to_numpy(), index=parts["key"].to_numpy()).groupby(level=0).agg(
        lambda s: shapely.union_all(s.to_numpy()))
    first["_g"] = geom.reindex(first.index).to_numpy()
    first["multipart"] = True
    return first.reset_index()


def _dissolve(df: pd.DataFrame, target: CRS, warnings: list[str], where: str) -> gpd.GeoDataFrame:
    df = df.sort_values(["key", "_pnum"], kind="stable")
    multi = df["key"].duplicated(keep=False).to_numpy()
    single = df[~multi].copy()
    single["multipart"] = False
    out = pd.concat([single, _dissolve_parts(df[multi], warnings)], ignore_index=True) if multi.any() \
        else single.reset_index(drop=True)
    out["_g"] = _polygonal(np.asarray(out["_g"].to_numpy(), dtype=object))
    out = out.drop(columns=["_part", "_pnum"])
    gdf = gpd.GeoDataFrame(out.drop(columns=["_g"]), geometry=gpd.GeoSeries(out["_g"].to_numpy(), crs=target),
                           crs=target)
    return gdf


def _unknown_counts(gdf: gpd.GeoDataFrame, mapping: ColumnMapping | None, report: IngestReport) -> gpd.GeoDataFrame:
    """Flag (``*_unknown``), count and warn about town-blocks whose population/households are
    unknown; the count column then holds 0 (the canonical "known count", core/schema.py)."""
    gdf = gdf.copy()
    for c, src in (("population", "JINKO"), ("households", "SETAI")):
        flag = UNKNOWN_FLAG[c]
        unknown = gdf[c].isna().to_numpy()
        gdf[flag] = unknown
        gdf[c] = gdf[c].fillna(0).astype("int64")
        if mapping is not None and not getattr(mapping, c):
            continue
        n = int(unknown.sum())
        report.unknown[c] = n
        if n:
            marked = int((unknown & gdf[f"_{c}_marked"].to_numpy(bool)).sum())
            keys = ", ".join(sorted(gdf.loc[unknown, "key"])[:5])
            report.warnings.append(
                f"{n} town-blocks have an unknown {c} ({src if mapping is None else getattr(mapping, c)}): "
                f"{marked} withheld by an e-Stat mark (秘匿 X, -, …, *), {n - marked} empty; counted as "
                f"unknown (0 in sums, flagged in {flag}), e.g. {keys}")
    return gdf.drop(columns=[f"_{c}_marked" for c in _COUNTS])


def _totals(gdf: gpd.GeoDataFrame, mapping: ColumnMapping | None, report: IngestReport) -> None:
    report.blocks_out = len(gdf)
    report.flags = {f: int(gdf[f].sum()) for f in ("island", "enclave", "multipart", "repaired")}
    area_c = float(gdf.geometry.area.sum()) / 1e6
    off = gdf["area_official_m2"]
    area_o = float(off.sum()) / 1e6 if off.notna().any() else float("nan")
    report.totals = {     # None: a mapped layer without that column (not "0 people")
        "population": int(gdf["population"].sum()) if mapping is None or mapping.population else None,
        "households": int(gdf["households"].sum()) if mapping is None or mapping.households else None,
        "area_computed_km2": round(area_c, 3),
        "area_official_km2": round(area_o, 3) if not np.isnan(area_o) else None,
        "area_diff_pct": (round(100.0 * (area_c - area_o) / area_o, 3) + 0.0)
        if area_o and not np.isnan(area_o) else None,
    }
    if report.totals["area_diff_pct"] is not None and abs(report.totals["area_diff_pct"]) > 2.0:
        report.warnings.append(f"computed area differs from the official AREA by "
                               f"{report.totals['area_diff_pct']:+.1f} % — check the CRS")


#: e-Stat columns never offered as a grouping (codes, names, counts, flags of every layout)
_ESTAT_COLUMNS = frozenset({
    "AREA", "PERIMETER", "KEN", "PREF", "CITY", "KEN_NAME", "PREF_NAME", "CITY_NAME", "SITYO_NAME", "GST_NAME",
    "CSS_NAME", "S_NAME", "S_AREA", "HCODE", "KIHON1", "DUMMY1", "KIHON2", "KEYCODE1", "KEYCODE2", "KEY_CODE",
    "AREA_MAX_F", "KIGO_D", "KIGO_E", "KIGO_I", "N_KEN", "N_CITY", "MOJI", "KBSUM", "JINKO", "SETAI", "X_CODE",
    "Y_CODE", "KCODE1", "KCODE2"})
MAX_GROUP_VALUES = 30


def municipality_names(rows: pd.DataFrame, codes: pd.Series) -> dict[str, str]:
    """municipality code → name, from CITY_NAME, else GST_NAME (郡市) + CSS_NAME (区町村), else a
    SHICHOSON / MUNI_NAME column, row by row (a blank CITY_NAME falls back); a town or village
    is named without its 郡 (岩美郡 岩美町 → 岩美町). The most frequent name of each code,
    control characters dropped; codes without one are left out. The one
    place that knows where a file names its municipality (screening, packages, the print
    packet and the message composer ask here)."""
    cols = {str(c).upper(): c for c in rows.columns}

    def text(col):
        if col not in cols:
            return pd.Series("", index=rows.index)
        return rows[cols[col]].astype(object).where(rows[cols[col]].notna(), "").astype(str).str.strip()

    def known(values):
        return values.where(~values.isin(["", "None", "nan"]), np.nan)

    gst, css = text("GST_NAME"), text("CSS_NAME")
    name = known(text("CITY_NAME"))                     # each row: the first source that names it
    for fallback in (gst.where(~(gst.str.endswith("郡") & (css != "")), "") + css,
                     text("SHICHOSON"), text("MUNI_NAME")):
        name = name.fillna(known(fallback))
    found = pd.DataFrame({"code": codes.astype(str).to_numpy(), "name": name.to_numpy()}).dropna()
    modes = found.groupby("code")["name"].agg(lambda s: s.mode().iloc[0])
    cleaned = {code: without_controls(v) for code, v in modes.items()}    # a few names, not rows
    return {code: v for code, v in cleaned.items() if v}


def municipality_name(blocks: pd.DataFrame, code: str | None = None) -> str:
    """The name of municipality ``code`` (default: the frame's first code) as the town-block
    attributes give it (:func:`municipality_names`), or "" when they do not."""
    codes = blocks["muni_code"].astype(str)
    if code is None:
        code = codes.iloc[0] if len(codes) else ""
    return municipality_names(blocks, codes).get(str(code), "")


def _has_geometry(raw) -> bool:
    """Whether a layer as read has geometry: an active geometry column (a CSV or a table has
    none) with at least one non-empty shape."""
    try:
        geoms = raw.geometry.values if isinstance(raw, gpd.GeoDataFrame) else None
    except AttributeError:      # a GeoDataFrame without an active geometry column
        return False
    return geoms is not None and bool((~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)).any())


def _grouping_columns(rows: pd.DataFrame, mapping: ColumnMapping | None) -> dict[str, list[str]]:
    """Text columns (not e-Stat's own, not mapped) with 2–30 distinct values: candidates for
    ``--by``, e.g. OLD_MUNI (旧市町村)."""
    mapped = {getattr(mapping, f) for f in ("key", "name", "population", "households", "muni_code", "area")} \
        if mapping else set()
    out = {}
    for col in rows.columns:
        if col == rows.geometry.name or str(col).upper() in _ESTAT_COLUMNS or col in mapped:
            continue
        s = rows[col]
        if not (pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s)):
            continue
        values = sorted({str(v).strip() for v in s.dropna()} - {""})
        if 2 <= len(values) <= MAX_GROUP_VALUES:
            out[str(col)] = values
    return out


def _contents(raw: gpd.GeoDataFrame, rows: gpd.GeoDataFrame, a: pd.DataFrame, gdf: gpd.GeoDataFrame,
              mapping: ColumnMapping | None, report: IngestReport) -> None:
    """What is in the file: its columns, the columns that could group town-blocks, and each
    municipality's name, town-block count and population (for ``subdivide info``)."""
    report.columns = [str(c) for c in raw.columns if c != raw.geometry.name]
    report.grouping_columns = _grouping_columns(rows, mapping)
    names = municipality_names(rows, a["muni_code"])
    counted = report.totals.get("population") is not None
    per = gdf.groupby("muni_code").agg(town_blocks=("key", "size"), population=("population", "sum"),
                                       households=("households", "sum"))
    report.municipalities = [
        {"code": str(code), "name": names.get(code, ""), "town_blocks": int(row.town_blocks),
         "population": int(row.population) if counted else None,
         "households": int(row.households) if report.totals.get("households") is not None else None}
        for code, row in per.sort_index().iterrows()]


def normalize_townblocks(
    raw: gpd.GeoDataFrame,
    *,
    layout: str | None = None,
    muni_code: str | None = None,
    target_crs=None,
    mapping: ColumnMapping | None = None,
    source: str = "",
    report: IngestReport | None = None,
    progress: Progress = silent,
) -> tuple[gpd.GeoDataFrame, IngestReport]:
    """Raw records (e-Stat layout or mapped) → canonical town-blocks + report.

    Drops water (HCODE 8154) and other-municipality placeholders, selects ``muni_code``,
    checks the location, repairs invalid geometry, projects to the prefecture's
    plane-rectangular zone (or ``target_crs``) and dissolves multi-part units by KEY_CODE
    (population, households and official area summed; other attributes from the E1 row).
    """
    where = source or "town-blocks"
    report = report or IngestReport(source=source)
    _require_polygons(raw, where)
    report.records_in = len(raw)
    report.crs_in = f"{raw.crs.name} ({raw.crs.to_string()})"
    layout = _require_layout(raw, layout, mapping, report, where)
    mc = normalize_municipality_code(muni_code, where="--muni") if muni_code else None
    a = _mapped_attrs(raw, mapping, mc, report.warnings, where) if mapping is not None \
        else _estat_attrs(raw, layout, report.warnings, where)
    progress("checking records", 1, 4)
    keep = _select(raw, a, mc, report, where)
    a, rows = a[keep], raw[keep].set_crs(raw.crs, allow_override=True)
    report.muni_codes = sorted(set(a["muni_code"]))
    _check_keys(a, mapping, where)
    progress("projecting", 2, 4)
    a, rows, geoms, repaired, target = _project(rows, a, target_crs, report, where)
    progress("dissolving multi-part units", 3, 4)
    gdf = _dissolve(_with_source_columns(a, rows, geoms, repaired), target, report.warnings, where)
    gdf = _unknown_counts(gdf, mapping, report)
    gdf = check_townblocks(coerce_townblocks(gdf), where=where)
    progress("dissolving multi-part units", 4, 4)
    _totals(gdf, mapping, report)
    _contents(raw, rows, a, gdf, mapping, report)
    gdf.attrs["ingest"] = {"layout": report.layout, "layer": report.layer, "encoding": report.encoding,
                           "fallbacks": list(report.fallbacks), "unknown": dict(report.unknown)}
    return gdf, report


# --------------------------------------------------------------------------- files


def _undeclared_geojson(crs: CRS, src) -> bool:
    """GDAL reports WGS 84 for a GeoJSON without a ``crs`` member (RFC 7946); such a file
    declares nothing, and e-Stat data in it is JGD2011 by convention."""
    if crs.to_epsg() != 4326 and crs.to_string() != "OGC:CRS84":
        return False
    from subdivide.io.sources import declares_crs

    return not declares_crs(src)


def _assume_crs(raw: gpd.GeoDataFrame, crs, src, report: IngestReport) -> gpd.GeoDataFrame:
    """The layer with its CRS: ``--crs``, the declared one, or JGD2011 lon/lat when it declares
    none and every coordinate lies within Japan's longitude/latitude (noted in the report)."""
    if crs is not None:
        return raw.set_crs(parse_crs(crs), allow_override=True)
    if raw.crs is not None and not (src.kind == "geojson" and _undeclared_geojson(raw.crs, src)):
        return raw
    if src.kind == "shapefile" and src.has_prj:
        raise UserError("the coordinate reference system (CRS) is unknown: its .prj could not be understood",
                        where=src.label, fix="pass --crs, e.g. --crs EPSG:4612 (JGD2000 lat/lon, e-Stat 2015) "
                                             "or --crs EPSG:6668 (JGD2011 lat/lon)")
    minx, miny, maxx, maxy = raw.total_bounds
    if not _in_japan((minx, maxx), (miny, maxy)):
        raise UserError("the coordinate reference system (CRS) is unknown: it declares none, and the "
                        f"coordinates (x {minx:,.3f}–{maxx:,.3f}, y {miny:,.3f}–{maxy:,.3f}) are not "
                        "longitude/latitude in Japan", where=src.label,
                        fix="pass --crs, e.g. --crs EPSG:6673 (plane-rectangular zone V) or EPSG:6668 (JGD2011)")
    note = (f"the file declares no CRS; its coordinates are longitude/latitude within Japan, so it is read "
            f"as JGD2011 ({LONLAT_DEFAULT}, the convention of GeoJSON/TopoJSON republications); pass --crs "
            "EPSG:4612 if it is JGD2000")
    report.fallbacks.append(note)
    report.warnings.append(note)
    return raw.set_crs(LONLAT_DEFAULT, allow_override=True)


def read_townblocks(
    path,
    *,
    muni_code: str | None = None,
    crs=None,
    target_crs=None,
    mapping: ColumnMapping | None = None,
    encoding: str | None = None,
    layer: str | None = None,
    progress: Progress = silent,
) -> tuple[gpd.GeoDataFrame, IngestReport]:
    """Read town-blocks from a file into the canonical schema.

    Parameters
    ----------
    path: .shp, .zip (zipped Shapefile), .gpkg, .geojson/.json or .topojson.
    muni_code: select this municipality (5 or 6 digits) from a prefecture-wide file.
    crs: the input CRS when the file has none or a wrong one (``EPSG:4612`` …).
    target_crs: output CRS (default: the prefecture's plane-rectangular zone, JGD2011).
    mapping: columns to use for a non-e-Stat layer (:class:`ColumnMapping`).
    encoding: text encoding of a Shapefile's .dbf (default: .cpg, else UTF-8 if detected, else CP932).
    layer: layer of a multi-layer file (default: the one town-block layer), or the Shapefile inside a zip.

    Returns ``(town_blocks, report)``; raises UserError on anything a user can fix.
    """
    src = open_source(path, layer, normalize_municipality_code(muni_code, where="--muni") if muni_code else None,
                      crs is not None)
    codec, reason = decide_encoding(src, encoding)
    chosen = choose_layer(src, layer, mapping.key if mapping else None)
    report = IngestReport(source=src.label, layer=chosen, encoding=codec or "UTF-8", encoding_reason=reason,
                          fallbacks=list(src.notes))
    if codec == "utf-8" and reason.startswith("no .cpg"):
        report.fallbacks.append(reason)
    progress("reading", 0, 1)
    raw = read_layer(src, chosen, codec)
    progress("reading", 1, 1)
    if len(raw) == 0:
        raise UserError("the layer is empty (no features)", where=src.label,
                        fix="check that this is the right file / layer")
    if not _has_geometry(raw):
        raise UserError("the file has no geometry: a table, or features without shapes, not town-block boundaries", where=src.label,
                        fix="give the town-block polygons (.shp, .zip, .gpkg or .geojson); a table of "
                            "key → sub-area is read by `subdivide plan FILE --import-csv TABLE`")
    raw = _assume_crs(raw, crs, src, report)
    layout = None if mapping is not None else match_layout(raw.columns).layout
    name_col = ROLES[layout].town_name if layout else (mapping.name if mapping else None)
    _check_text(raw, layout, name_col, codec or "UTF-8", src.label)
    return normalize_townblocks(raw, layout=layout, muni_code=muni_code, target_crs=target_crs,
                                mapping=mapping, source=src.label, report=report, progress=progress)
