"""Reading town-block files into the canonical schema (:mod:`subdivide.core.schema`).

:func:`read_townblocks` reads an e-Stat 小地域 boundary file in any of its three
layouts (:mod:`subdivide.io.estat`) — Shapefile, zipped Shapefile, GeoPackage or GeoJSON —
or any polygon layer with an explicit :class:`ColumnMapping`, and returns

- the canonical town-blocks, one row per KEY_CODE (multi-part units dissolved, water
  areas and other-municipality placeholders dropped, invalid geometry repaired), in the
  prefecture's plane-rectangular CRS (metres);
- an :class:`IngestReport` saying what was read and what was done to it.

Text in a Shapefile is decoded explicitly: CP932 unless a .cpg says otherwise (or
``encoding=`` is given); mojibake is detected and refused. Every problem a user can fix
raises :class:`subdivide.core.errors.UserError`.

:func:`normalize_townblocks` is the in-memory half (also used by
:mod:`subdivide.testing.synthetic`).
"""
from __future__ import annotations

import codecs
import re
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS, Transformer

from subdivide.core.codes import normalize_municipality_code
from subdivide.core.crs import JAPAN_LAT, JAPAN_LON, PREF_NAMES, parse_crs, plane_rectangular_epsg
from subdivide.core.errors import UserError
from subdivide.io.estat import HCODE_WATER, LAYOUTS, ROLES, detect_layout, looks_like_estat, missing_for_layout
from subdivide.core.progress import Progress, silent
from subdivide.core.schema import TOWNBLOCK_COLUMNS, check_townblocks, coerce_townblocks

#: .cpg contents → Python codec
_CPG_CODECS = {
    "932": "cp932", "cp932": "cp932", "ms932": "cp932", "windows-31j": "cp932", "sjis": "cp932",
    "shift_jis": "cp932", "shift-jis": "cp932", "ansi 932": "cp932",
    "utf-8": "utf-8", "utf8": "utf-8", "65001": "utf-8",
    "1252": "cp1252", "ansi 1252": "cp1252", "iso-8859-1": "latin-1", "88591": "latin-1",
    "latin1": "latin-1", "euc-jp": "euc_jp", "20932": "euc_jp",
}
#: DBF language-driver byte (offset 29) → codec, for the ones seen on Japanese data
_LDID_CODECS = {0x13: "cp932", 0x7B: "cp932", 0x57: "cp1252", 0x03: "cp1252"}
#: GDAL's spelling of the codecs we pass through pyogrio
_GDAL_ENCODING = {"cp932": "CP932", "shift_jis": "SHIFT_JIS", "utf-8": "UTF-8", "cp1252": "CP1252",
                  "latin-1": "ISO-8859-1", "iso8859-1": "ISO-8859-1", "euc_jp": "EUC-JP"}

#: characters typical of UTF-8 read as CP932 (縺 繧 繝 …) and of CP932 read as latin-1
_MOJIBAKE_CP932 = re.compile(r"[縺繧繝譁蜷螟髢蝣蜀莉荳謨驕]")
_LATIN1_GARBAGE = re.compile(r"[\x80-\xff]")
#: largest .shp / .dbf accepted inside a zip (bytes, uncompressed)
_MAX_ZIP_MEMBER = 4 << 30


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class ColumnMapping:
    """Which columns of a non-e-Stat layer hold the canonical attributes.

    key: unique town-block id (read as text; leading zeros kept).
    name: town-block name (optional; empty when absent).
    population / households: counts (optional; 0 when absent).
    muni_code: 5- or 6-digit municipality code column (optional; else ``muni_code=``).
    area: official area in m² (optional; NaN when absent).
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
    encoding: str | None = None           # codec used for the attribute text
    encoding_reason: str = ""             # how it was decided
    crs_in: str = ""
    crs_out: str = ""
    records_in: int = 0                   # features in the file
    blocks_out: int = 0                   # town-blocks after dissolving
    muni_codes: list[str] = field(default_factory=list)
    dropped: list[dict] = field(default_factory=list)     # {reason, count, keys}
    repairs: list[dict] = field(default_factory=list)     # {key, problem, fix, area_before_m2, area_after_m2}
    flags: dict[str, int] = field(default_factory=dict)   # island / enclave / multipart / repaired
    totals: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready dict (plain ints / floats / strings)."""
        return asdict(self)

    def to_text(self) -> str:
        """Human-readable summary (Japanese terms in parentheses)."""
        t = self.totals
        lines = [
            f"source:      {self.source}",
            f"layout:      {self.layout}",
            f"encoding:    {self.encoding or 'n/a'} ({self.encoding_reason})" if self.encoding_reason
            else f"encoding:    {self.encoding or 'n/a'}",
            f"CRS in:      {self.crs_in}",
            f"CRS out:     {self.crs_out} (平面直角座標系)",
            f"municipality (市区町村): {', '.join(self.muni_codes)}",
            f"records in:  {self.records_in:,} (レコード)",
            f"town-blocks: {self.blocks_out:,} (町丁・字) after dissolving multi-part units",
            "population (人口 JINKO):  " + (f"{int(t['population']):,}" if t.get("population") is not None
                                            else "not in the layer (map a column with --population COL)"),
            "households (世帯 SETAI):  " + (f"{int(t['households']):,}" if t.get("households") is not None
                                           else "not in the layer (map a column with --households COL)"),
            f"area computed:  {t.get('area_computed_km2', 0.0):,.1f} km²",
        ]
        if t.get("area_official_km2") is not None and not np.isnan(t.get("area_official_km2", np.nan)):
            lines.append(f"area official (AREA): {t['area_official_km2']:,.1f} km² "
                         f"(computed differs by {t.get('area_diff_pct', 0.0):+.2f} %)")
        lines.append("flags: " + ", ".join(f"{k} {v}" for k, v in self.flags.items()))
        lines.append("  (island = 離島 KIGO_I, enclave = 飛び地 KIGO_D, multipart = KIGO_E parts dissolved,"
                     " repaired = invalid geometry fixed)")
        if self.dropped:
            lines.append("dropped rows:")
            for d in self.dropped:
                keys = ", ".join(d["keys"][:5]) + (" …" if len(d["keys"]) > 5 else "")
                lines.append(f"  {d['count']:>6}  {d['reason']}" + (f"  [{keys}]" if keys else ""))
        else:
            lines.append("dropped rows: none")
        if self.repairs:
            lines.append(f"geometry repairs: {len(self.repairs)}")
            for r in self.repairs[:20]:
                lines.append(f"  {r['key']}: {r['problem']} → {r['fix']} "
                             f"(area {r['area_before_m2']:,.0f} → {r['area_after_m2']:,.0f} m²)")
            if len(self.repairs) > 20:
                lines.append(f"  … and {len(self.repairs) - 20} more")
        else:
            lines.append("geometry repairs: none")
        for w in self.warnings:
            lines.append(f"warning: {w}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- helpers


def _codec(name: str, *, option: str = "--encoding") -> str:
    """Normalise an encoding name to a Python codec name (UserError if unknown)."""
    key = str(name).strip().lower()
    if key in _CPG_CODECS:
        return _CPG_CODECS[key]
    try:
        return codecs.lookup(key).name
    except LookupError:
        raise UserError(f"{option} {name!r} is not a known text encoding",
                        fix="use cp932 (Shift-JIS, e-Stat default) or utf-8") from None


def _text(s: pd.Series) -> pd.Series:
    """A column as object-dtype str with '' for missing (pandas 3 safe)."""
    if pd.api.types.is_string_dtype(s) or s.dtype == object:
        arr = s.to_numpy(dtype=object, na_value="")
        if all(isinstance(v, str) for v in arr[:1000]) and (len(arr) <= 1000 or s.dtype != object):
            return pd.Series(arr, index=s.index, dtype=object)
    return s.astype(object).where(s.notna(), "").astype(str).astype(object)


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


def _check_in_japan(gdf: gpd.GeoDataFrame, where: str) -> None:
    """Refuse coordinates outside Japan; recognise swapped lat/lon."""
    minx, miny, maxx, maxy = gdf.total_bounds
    crs = gdf.crs
    if not crs.is_geographic and JAPAN_LON[0] <= minx and maxx <= JAPAN_LON[1] \
            and JAPAN_LAT[0] <= miny and maxy <= JAPAN_LAT[1]:
        # degrees read as metres: "inside Japan" (a few metres from a zone origin), area ≈ 0
        raise UserError(
            f"coordinates look like longitude/latitude in degrees (x {minx:.3f}–{maxx:.3f}, "
            f"y {miny:.3f}–{maxy:.3f}) but the CRS {crs.name} is in metres",
            where=where,
            fix="pass the lat/lon CRS with --crs (EPSG:6668 JGD2011 or EPSG:4612 JGD2000), or fix the .prj",
        )
    if crs.is_geographic:
        lon = (minx, maxx)
        lat = (miny, maxy)
    else:
        tr = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
        xs = np.array([minx, maxx, minx, maxx, (minx + maxx) / 2])
        ys = np.array([miny, miny, maxy, maxy, (miny + maxy) / 2])
        lo, la = tr.transform(xs, ys)
        lon, lat = (np.nanmin(lo), np.nanmax(lo)), (np.nanmin(la), np.nanmax(la))
    ok_lon = JAPAN_LON[0] <= lon[0] and lon[1] <= JAPAN_LON[1]
    ok_lat = JAPAN_LAT[0] <= lat[0] and lat[1] <= JAPAN_LAT[1]
    if ok_lon and ok_lat:
        return
    if crs.is_geographic and JAPAN_LAT[0] <= minx and maxx <= JAPAN_LAT[1] \
            and JAPAN_LON[0] <= miny and maxy <= JAPAN_LON[1]:
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


def _check_text(df: pd.DataFrame, layout: str | None, name_col: str | None, encoding: str | None,
                where: str) -> None:
    """Refuse mojibake: prefecture names must end in 都/道/府/県; names must be clean."""
    fix = ("pass the right encoding, e.g. --encoding cp932 (Shift-JIS, e-Stat) or --encoding utf-8; "
           "or add a .cpg file next to the .shp holding the code page")
    if layout in ROLES:
        col = ROLES[layout].pref_name
        names = _text(df[col])
        bad = names[(names != "") & ~names.isin(PREF_NAMES)]
        if len(bad):
            raise UserError(
                f"text is garbled (mojibake) when decoded as {encoding}: prefecture name {bad.iloc[0]!r} "
                f"in {col} does not end in 都/道/府/県",
                where=where, fix=fix)
    cols = [c for c in [name_col] if c and c in df.columns]
    if layout in ROLES:   # the Japanese text columns of e-Stat; the rest are ASCII codes
        cols += [c for c in ("GST_NAME", "CITY_NAME", "KEN_NAME", "PREF_NAME") if c in df.columns]
    else:
        cols += [c for c in df.columns if c not in cols and c != df.geometry.name
                 and (df[c].dtype == object or pd.api.types.is_string_dtype(df[c]))][:8]
    for c in cols:
        what = _looks_mojibake(_text(df[c]))
        if what:
            raise UserError(f"text is garbled (mojibake) when decoded as {encoding}: {what} in column {c}",
                            where=where, fix=fix)


# --------------------------------------------------------------------------- files


def _sibling(path: Path, ext: str) -> Path | None:
    """Companion file with extension ``ext`` (case-insensitive), or None."""
    for cand in (path.with_suffix(ext), path.with_suffix(ext.upper())):
        if cand.exists():
            return cand
    if path.parent.exists():
        stem = path.stem.lower()
        for p in sorted(path.parent.iterdir()):
            if p.stem.lower() == stem and p.suffix.lower() == ext:
                return p
    return None


@dataclass
class _Source:
    dataset: str                 # what pyogrio opens
    kind: str                    # shapefile / gpkg / geojson / other
    label: str                   # shown to the user
    cpg: str | None = None       # .cpg content
    ldid: int | None = None      # DBF byte 29
    has_prj: bool = True
    zip_path: Path | None = None  # the archive, for a Shapefile inside a zip
    dbf_member: str | None = None  # its .dbf member name


def _zip_source(path: Path, layer: str | None, muni_code: str | None, crs_given: bool) -> _Source:
    """Pick the .shp inside a zip and check its companions, without extracting."""
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise UserError("not a readable zip file", where=str(path), fix="re-download the file") from None
    with zf:
        names = [i.filename for i in zf.infolist() if not i.is_dir()]
        unsafe = [n for n in names if n.startswith(("/", "\\")) or ".." in PurePosixPath(n).parts]
        if unsafe:
            raise UserError(f"zip member names point outside the archive: {unsafe[:3]}", where=str(path),
                            fix="unpack the archive yourself and check its contents")
        shps = sorted(n for n in names if n.lower().endswith(".shp"))
        if not shps:
            others = sorted({PurePosixPath(n).suffix for n in names})
            gpkgs = [n for n in names if n.lower().endswith((".gpkg", ".geojson", ".json"))]
            if len(gpkgs) == 1:
                return _Source(f"/vsizip/{path.resolve()}/{gpkgs[0]}",
                               "gpkg" if gpkgs[0].lower().endswith(".gpkg") else "geojson", f"{path}!{gpkgs[0]}")
            raise UserError(f"the zip holds no .shp (found {', '.join(others) or 'nothing'})", where=str(path),
                            fix="give the zip of an e-Stat Shapefile (h27ka*.zip / r2ka*.zip)")
        if layer:
            want = layer[:-4] if layer.lower().endswith(".shp") else layer
            pick = [n for n in shps if want in (PurePosixPath(n).stem, n[:-4])]
            if not pick:
                raise UserError(f"no Shapefile {layer!r} in the zip; it holds: {', '.join(shps[:10])}",
                                where=str(path), fix="choose one with --layer NAME (the file name without .shp)")
        elif muni_code and len(shps) > 1:
            pick = [n for n in shps if muni_code in PurePosixPath(n).stem]
        else:
            pick = shps
        if len(pick) != 1:
            raise UserError(f"the zip holds {len(shps)} Shapefiles: {', '.join(shps[:10])}", where=str(path),
                            fix="choose one with --layer NAME (the file name without .shp)")
        shp = pick[0]
        stem = shp[:-4]
        lower = {n.lower(): n for n in names}
        missing = [e for e in (".dbf", ".shx") if (stem + e).lower() not in lower]
        if (stem + ".prj").lower() not in lower and not crs_given:
            missing.append(".prj")
        if missing:
            raise UserError(f"the Shapefile {shp} in the zip has no {', '.join(missing)}", where=str(path),
                            fix=_missing_fix(missing))
        cpg = None
        if (stem + ".cpg").lower() in lower:
            cpg = zf.read(lower[(stem + ".cpg").lower()]).decode("ascii", "replace").strip()
        for member in (stem + ".dbf", shp):
            info = zf.getinfo(lower[member.lower()])
            if info.file_size > _MAX_ZIP_MEMBER or info.file_size > 1000 * max(info.compress_size, 1):
                raise UserError(f"{member} in the zip is implausibly large ({info.file_size:,} bytes "
                                f"from {info.compress_size:,} compressed)", where=str(path),
                                fix="unpack the archive yourself and check it")
        with zf.open(lower[(stem + ".dbf").lower()]) as fh:
            head = fh.read(32)
        ldid = head[29] if len(head) > 29 else None
    return _Source(f"/vsizip/{path.resolve()}/{shp}", "shapefile", f"{path}!{shp}", cpg, ldid,
                   (stem + ".prj").lower() in lower, path, lower[(stem + ".dbf").lower()])


def _missing_fix(missing: list[str]) -> str:
    msg = "a Shapefile is several files (.shp .shx .dbf .prj, often .cpg); copy them all, same name"
    if missing == [".prj"]:
        msg = "copy the .prj too, or tell the CRS with --crs (e-Stat: EPSG:4612 JGD2000 or EPSG:6668 JGD2011)"
    return msg


def _source(path, layer, muni_code, crs_given) -> _Source:
    p = Path(path)
    if not p.exists():
        raise UserError(f"file not found: {p}", where=str(p), fix="check the path")
    suf = p.suffix.lower()
    if suf == ".zip":
        return _zip_source(p, layer, muni_code, crs_given)
    if suf == ".shp":
        missing = [e for e in (".dbf", ".shx") if _sibling(p, e) is None]
        prj = _sibling(p, ".prj")
        if prj is None and not crs_given:
            missing.append(".prj")
        if missing:
            raise UserError(f"the Shapefile has no {', '.join(missing)} next to it "
                            f"(expected {', '.join(str(p.with_suffix(e)) for e in missing)})",
                            where=str(p), fix=_missing_fix(missing))
        cpg_path = _sibling(p, ".cpg")
        cpg = cpg_path.read_bytes().decode("ascii", "replace").strip() if cpg_path else None
        with open(_sibling(p, ".dbf"), "rb") as fh:
            head = fh.read(32)
        return _Source(str(p), "shapefile", str(p), cpg, head[29] if len(head) > 29 else None, prj is not None)
    if suf == ".gpkg":
        return _Source(str(p), "gpkg", str(p))
    if suf in (".geojson", ".json"):
        return _Source(str(p), "geojson", str(p))
    if suf in (".dbf", ".shx", ".prj", ".cpg"):
        raise UserError(f"{p.name} is only part of a Shapefile", where=str(p),
                        fix=f"give the .shp file: {p.with_suffix('.shp')}")
    return _Source(str(p), "other", str(p))


def _dbf_bytes(src: _Source) -> bytes:
    """The raw .dbf of a Shapefile source (inside a zip or not)."""
    if src.zip_path is not None:
        with zipfile.ZipFile(src.zip_path) as zf:
            return zf.read(src.dbf_member)
    return Path(_sibling(Path(src.dataset), ".dbf")).read_bytes()


def dbf_undecodable(dbf: bytes, codec: str) -> tuple[str, int, bytes] | None:
    """First text (C) field value of a .dbf that ``codec`` cannot decode, as
    (field name, 0-based record, raw bytes), or None when all text decodes.

    Each text column is checked in one decode call over its fixed-width bytes.
    """
    if len(dbf) < 32:
        return None
    n = int.from_bytes(dbf[4:8], "little")
    header = int.from_bytes(dbf[8:10], "little")
    reclen = int.from_bytes(dbf[10:12], "little")
    fields, off, pos = [], 1, 32
    while pos + 32 <= header and dbf[pos] != 0x0D:
        name = dbf[pos:pos + 11].split(b"\0", 1)[0].decode("ascii", "replace")
        ftype, flen = chr(dbf[pos + 11]), dbf[pos + 16]
        fields.append((name, ftype, off, flen))
        off += flen
        pos += 32
    n = min(n, max(0, (len(dbf) - header) // max(reclen, 1)))
    if n == 0 or reclen == 0:
        return None
    recs = np.frombuffer(dbf, dtype=np.uint8, count=n * reclen, offset=header).reshape(n, reclen)
    for name, ftype, o, w in fields:
        if ftype != "C" or w == 0:
            continue
        col = np.ascontiguousarray(recs[:, o:o + w])
        if not (col >= 0x80).any():
            continue
        try:
            col.tobytes().decode(codec)
        except UnicodeDecodeError as exc:
            r = exc.start // w
            return name, int(r), bytes(col[r]).rstrip(b" ")
    return None


def _decide_encoding(src: _Source, encoding: str | None) -> tuple[str | None, str]:
    """(codec, reason) for a Shapefile's text; (None, reason) for self-describing formats."""
    if src.kind != "shapefile":
        if encoding:
            return _codec(encoding), "--encoding (format is normally UTF-8)"
        return None, "UTF-8 by format definition" if src.kind in ("gpkg", "geojson") else "driver default"
    if encoding:
        return _codec(encoding), "given with --encoding"
    if src.cpg:
        key = src.cpg.strip().lower()
        if key not in _CPG_CODECS:
            raise UserError(f"the .cpg says {src.cpg!r}, an encoding this tool does not know", where=src.label,
                            fix="pass --encoding cp932 or --encoding utf-8")
        return _CPG_CODECS[key], f".cpg says {src.cpg!r}"
    if src.ldid == 0x13:
        return "cp932", "no .cpg; DBF language driver byte 0x13 (Shift-JIS)"
    if src.ldid:
        return "cp932", (f"no .cpg; DBF language driver byte 0x{src.ldid:02X} ignored, "
                         "e-Stat text is CP932")
    return "cp932", "no .cpg and no language driver byte: e-Stat default CP932"


def _list_layers(src: _Source) -> list[str]:
    try:
        return [str(x[0]) for x in pyogrio.list_layers(src.dataset)]
    except Exception:  # noqa: BLE001 - reported by the read below
        return []


def _read_layer(src: _Source, layer: str | None, codec: str | None) -> gpd.GeoDataFrame:
    kw = {}
    if codec is not None:
        kw["encoding"] = _GDAL_ENCODING.get(codec, codec)
    if src.kind == "gpkg" or (src.kind == "other" and layer is None):
        layers = _list_layers(src)
        if layer is None and len(layers) > 1:
            raise UserError(f"the file has {len(layers)} layers: {', '.join(layers[:10])}", where=src.label,
                            fix="choose one with --layer NAME")
        if layer is not None and layers and layer not in layers:
            raise UserError(f"no layer {layer!r}; the file has: {', '.join(layers[:10])}", where=src.label,
                            fix="choose one with --layer NAME")
    if layer is not None and src.kind != "shapefile":
        kw["layer"] = layer
    if src.kind == "shapefile" and codec is not None:
        bad = dbf_undecodable(_dbf_bytes(src), codec)
        if bad:
            raise UserError(
                f"text cannot be decoded as {codec}: field {bad[0]} of record {bad[1] + 1} holds bytes "
                f"{bad[2][:24]!r}", where=src.label,
                fix="pass the right encoding with --encoding (cp932 for e-Stat, utf-8 for many re-exports) "
                    "or add a .cpg file naming the code page")
    try:
        return pyogrio.read_dataframe(src.dataset, **kw)
    except UnicodeDecodeError as exc:
        raise UserError(f"text cannot be decoded as {codec} (byte {exc.object[exc.start:exc.start + 2]!r} "
                        f"at position {exc.start})", where=src.label,
                        fix="pass the right encoding with --encoding (cp932 for e-Stat, utf-8 for most "
                            "re-exports) or add a .cpg file") from None
    except pyogrio.errors.DataSourceError as exc:
        raise UserError(f"cannot open the file as a vector layer: {exc}", where=src.label,
                        fix="give a Shapefile (.shp with .dbf/.shx/.prj), a zipped Shapefile, "
                            "a GeoPackage or a GeoJSON file") from None
    except (pyogrio.errors.DataLayerError, pyogrio.errors.FieldError, pyogrio.errors.GeometryError) as exc:
        raise UserError(f"cannot read the layer: {exc}", where=src.label,
                        fix="check the file in QGIS; re-export it if needed") from None


# --------------------------------------------------------------------------- core


def _attrs(raw: gpd.GeoDataFrame, layout: str | None, mapping: ColumnMapping | None,
           muni_code: str | None, warnings: list[str], where: str) -> pd.DataFrame:
    """Canonical attribute columns (plus helper columns starting with '_') for raw rows."""
    a = pd.DataFrame(index=raw.index)
    if mapping is not None:
        wanted = {k: v for k, v in asdict(mapping).items() if v}
        missing = [v for v in wanted.values() if v not in raw.columns]
        if missing:
            cols = [c for c in raw.columns if c != raw.geometry.name]
            raise UserError(f"mapped columns not in the layer: {missing}", where=where,
                            fix=f"the layer has: {', '.join(map(str, cols[:30]))}")
        a["key"] = _codes_as_text(raw[mapping.key], (), f"key column {mapping.key}", warnings)
        a["name"] = _text(raw[mapping.name]) if mapping.name else ""
        a["population"] = pd.to_numeric(raw[mapping.population], errors="coerce") if mapping.population else 0
        a["households"] = pd.to_numeric(raw[mapping.households], errors="coerce") if mapping.households else 0
        a["area_official_m2"] = pd.to_numeric(raw[mapping.area], errors="coerce") if mapping.area else np.nan
        if mapping.muni_code:
            mc = _codes_as_text(raw[mapping.muni_code], (5, 6), f"municipality column {mapping.muni_code}",
                                warnings)
            a["muni_code"] = mc.str.slice(0, 5)
        else:
            a["muni_code"] = muni_code or ""
        a["island"] = False
        a["enclave"] = False
        a["_part"] = ""
        a["_water"] = False
        a["_placeholder"] = False
        return a
    roles = ROLES[layout]
    key = _codes_as_text(raw["KEY_CODE"], (9, 11), "KEY_CODE", warnings)
    a["key"] = key
    a["name"] = _text(raw[roles.town_name])
    pref = _codes_as_text(raw[roles.pref], (2,), roles.pref, warnings)
    city = _codes_as_text(raw[roles.city], (3,), roles.city, warnings)
    a["muni_code"] = (pref + city).where((pref.str.len() == 2) & (city.str.len() == 3), key.str.slice(0, 5))
    a["population"] = pd.to_numeric(raw["JINKO"], errors="coerce")
    a["households"] = pd.to_numeric(raw["SETAI"], errors="coerce")
    a["area_official_m2"] = pd.to_numeric(raw["AREA"], errors="coerce")
    a["island"] = _text(raw["KIGO_I"]).str.strip() != ""
    a["enclave"] = _text(raw["KIGO_D"]).str.strip() != ""
    a["_part"] = _text(raw["KIGO_E"]).str.strip().str.upper()
    a["_water"] = pd.to_numeric(raw["HCODE"], errors="coerce").eq(HCODE_WATER).to_numpy()
    s_area = _text(raw["S_AREA"]).str.strip() if "S_AREA" in raw.columns else pd.Series("", index=raw.index)
    a["_placeholder"] = (key.str.len() <= 2) | (s_area == "000000")
    bad = ~a["_placeholder"] & ~key.str.fullmatch(r"\d{9}|\d{11}")
    if bad.any():
        raise UserError(f"{int(bad.sum())} KEY_CODE values are not 9 or 11 digits, e.g. "
                        f"{list(key[bad].iloc[:5])}", where=where,
                        fix="KEY_CODE must be text (PREF + KEYCODE2); re-export the file without "
                            "converting it to numbers")
    return a


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
    repairs invalid geometry, projects to the prefecture's plane-rectangular zone (or
    ``target_crs``) and dissolves multi-part units by KEY_CODE (population, households
    and official area summed; other attributes from the E1 row).
    """
    where = source or "town-blocks"
    report = report or IngestReport(source=source)
    warnings = report.warnings
    if raw.geometry.name not in raw.columns or len(raw) == 0:
        raise UserError("the layer is empty (no features)", where=where,
                        fix="check that this is the right file / layer")
    report.records_in = len(raw)
    if mapping is None:
        layout = layout or detect_layout(raw.columns)
        if layout is None:
            cols = [str(c) for c in raw.columns if c != raw.geometry.name]
            hint = ""
            if looks_like_estat(cols):
                miss = min(missing_for_layout(cols).items(),      # fewest missing, then most specific
                           key=lambda kv: (len(kv[1]), -len(LAYOUTS[kv[0]])))
                hint = f" (closest e-Stat layout {miss[0]} lacks {', '.join(miss[1][:8])})"
            raise UserError(f"not an e-Stat town-block layout{hint}", where=where,
                            fix="say which columns to use: --key COL [--name COL --population COL "
                                f"--households COL --muni-column COL]; columns: {', '.join(cols[:30])}")
    report.layout = layout if mapping is None else "mapped"
    if raw.crs is None:
        raise UserError("the layer has no coordinate reference system (CRS)", where=where,
                        fix="pass --crs, e.g. --crs EPSG:4612 (JGD2000 lat/lon) or EPSG:6668 (JGD2011)")
    report.crs_in = f"{raw.crs.name} ({raw.crs.to_string()})"

    gt = raw.geometry.geom_type
    nonpoly = ~gt.isin(["Polygon", "MultiPolygon"]) & gt.notna()
    if nonpoly.any():
        kinds = ", ".join(sorted(set(gt[nonpoly].astype(str))))
        raise UserError(f"{int(nonpoly.sum())} features are not polygons ({kinds})", where=where,
                        fix="town-blocks must be polygons; the e-Stat points table is not enough — "
                            "use the boundary Shapefile (境界データ)")
    a = _attrs(raw, layout, mapping, normalize_municipality_code(muni_code) if muni_code else None,
               warnings, where)
    progress("checking records", 1, 4)

    # drops -----------------------------------------------------------------------
    water = a["_water"].to_numpy(bool)
    ph = a["_placeholder"].to_numpy(bool) & ~water
    nogeom = (raw.geometry.isna() | raw.geometry.is_empty).to_numpy() & ~water & ~ph
    keep = ~(water | ph | nogeom)
    present = sorted(set(a.loc[keep, "muni_code"]))
    mine = np.ones(len(raw), bool)
    if muni_code:
        mc = normalize_municipality_code(muni_code, where="--muni")
        if mc not in present:
            raise UserError(f"municipality {mc} is not in the file; it holds "
                            f"{', '.join(present[:30]) if present else 'no municipality codes'}"
                            + (" …" if len(present) > 30 else ""),
                            where=where, fix="pass one of those codes with --muni")
        mine = (a["muni_code"] == mc).to_numpy()
    # with --muni, every row of another municipality (water and placeholders included)
    # counts as "other municipalities", so the report's figures are this municipality's
    _drop(report, water & mine, a["key"], f"water area (水面, HCODE {HCODE_WATER})")
    _drop(report, ph & mine, a["key"],
          "placeholder for another municipality's area (KEY_CODE 2 digits / S_AREA 000000)")
    _drop(report, nogeom & mine, a["key"], "no geometry")
    if muni_code:
        _drop(report, ~mine, a["muni_code"], f"other municipalities (not {mc})")
    keep &= mine
    if not keep.any():
        raise UserError("no town-blocks left after dropping water areas and placeholders", where=where,
                        fix="check that this is a town-block file")
    if mapping is not None and (a.loc[keep, "key"] == "").any():
        raise UserError(f"{int((a.loc[keep, 'key'] == '').sum())} features have an empty key "
                        f"({mapping.key})", where=where, fix="fill the key column or choose another")
    a = a[keep]
    rows = raw[keep]
    report.muni_codes = sorted(set(a["muni_code"]))

    # duplicates that are not multi-part units ---------------------------------------
    dup = a["key"].duplicated(keep=False).to_numpy()
    if dup.any():
        d = a[dup]
        partdup = d.duplicated(["key", "_part"], keep=False)
        bad_keys = sorted(set(d.loc[(d["_part"] == "") | partdup, "key"]))
        if bad_keys:
            raise UserError(f"{len(bad_keys)} keys appear on several features that are not marked as parts "
                            f"of one unit (KIGO_E E1, E2 …): {', '.join(bad_keys[:10])}", where=where,
                            fix="keys must be unique per town-block; fix the file, or choose another key "
                                "column")

    # CRS, Japan check, projection, repair --------------------------------------------
    rows = rows.set_crs(raw.crs, allow_override=True)
    _check_in_japan(rows, where)
    target = _target_crs(target_crs, report.muni_codes, where)
    report.crs_out = f"{target.name} (EPSG:{target.to_epsg()})" if target.to_epsg() else target.name
    if raw.crs.to_epsg() in (4612, 2443, 2444, 2445, 2446, 2447, 2448, 2449, 2450, 2451, 2452, 2453,
                              2454, 2455, 2456, 2457, 2458, 2459, 2460, 2461) and target.name.startswith("JGD2011"):
        warnings.append("input is JGD2000; transformed to JGD2011 (shift of a few metres at most; "
                        "use a grid-shift-aware tool for survey-grade work)")
    progress("projecting", 2, 4)
    geoms = rows.to_crs(target).geometry.to_numpy()
    geoms, repaired = _repair(geoms, a["key"], report)
    empty = shapely.is_empty(geoms)
    if empty.any():
        _drop(report, empty, a["key"], "geometry empty after repair")
        a, rows, geoms, repaired = a[~empty], rows[~empty], geoms[~empty], repaired[~empty]

    # dissolve multi-part units -------------------------------------------------------
    progress("dissolving multi-part units", 3, 4)
    extra_cols = [c for c in rows.columns if c != rows.geometry.name]
    extra = pd.DataFrame({(c if c not in TOWNBLOCK_COLUMNS else f"src_{c}"): rows[c].to_numpy()
                          for c in extra_cols}, index=a.index)
    df = pd.concat([a.drop(columns=["_water", "_placeholder"]), extra], axis=1)
    df["repaired"] = repaired
    df["_g"] = geoms
    df["_pnum"] = pd.to_numeric(df["_part"].str.extract(r"(\d+)", expand=False), errors="coerce").fillna(0)
    multi = df["key"].duplicated(keep=False).to_numpy()
    single = df[~multi].copy()
    single["multipart"] = False
    parts = df[multi].sort_values(["key", "_pnum"], kind="stable")
    if len(parts):
        later = parts[parts.groupby("key", sort=True).cumcount().to_numpy() > 0]
        nonfirst_pop = later.groupby("key", sort=True)["population"].sum()
        if (nonfirst_pop > 0).any():
            warnings.append(f"{int((nonfirst_pop > 0).sum())} multi-part units carry population on parts "
                            "other than E1; all parts were summed")
        g = parts.groupby("key", sort=True)
        first = g.first()
        sums = g[["population", "households", "area_official_m2"]].sum(min_count=1)
        flags = g[["island", "enclave", "repaired"]].any()
        geom = gpd.GeoSeries(parts["_g"].to_numpy(), index=parts["key"].to_numpy()).groupby(level=0).agg(
            lambda s: shapely.union_all(s.to_numpy()))
        first[["population", "households", "area_official_m2"]] = sums
        first[["island", "enclave", "repaired"]] = flags
        first["_g"] = geom.reindex(first.index).to_numpy()
        first["multipart"] = True
        dissolved = first.reset_index()
        out = pd.concat([single, dissolved], ignore_index=True)
    else:
        out = single.reset_index(drop=True)
    out["_g"] = _polygonal(np.asarray(out["_g"].to_numpy(), dtype=object))
    out = out.drop(columns=["_part", "_pnum"])
    gdf = gpd.GeoDataFrame(out.drop(columns=["_g"]), geometry=gpd.GeoSeries(out["_g"].to_numpy(), crs=target),
                           crs=target)
    gdf = check_townblocks(coerce_townblocks(gdf), where=where)
    progress("dissolving multi-part units", 4, 4)

    # report --------------------------------------------------------------------------
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
        warnings.append(f"computed area differs from the official AREA by {report.totals['area_diff_pct']:+.1f} %"
                        " — check the CRS")
    return gdf, report


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
    path: .shp, .zip (zipped Shapefile), .gpkg or .geojson.
    muni_code: select this municipality (5 or 6 digits) from a prefecture-wide file.
    crs: the input CRS when the file has none or a wrong one (``EPSG:4612`` …).
    target_crs: output CRS (default: the prefecture's plane-rectangular zone, JGD2011).
    mapping: columns to use for a non-e-Stat layer (:class:`ColumnMapping`).
    encoding: text encoding of a Shapefile's .dbf (default: .cpg, else CP932).
    layer: layer of a GeoPackage, or the Shapefile inside a zip.

    Returns ``(town_blocks, report)``; raises UserError on anything a user can fix.
    """
    src = _source(path, layer, normalize_municipality_code(muni_code, where="--muni") if muni_code else None,
                  crs is not None)
    codec, reason = _decide_encoding(src, encoding)
    report = IngestReport(source=src.label, encoding=codec or "UTF-8", encoding_reason=reason)
    progress("reading", 0, 1)
    raw = _read_layer(src, layer, codec)
    progress("reading", 1, 1)
    if len(raw) == 0:
        raise UserError("the layer is empty (no features)", where=src.label,
                        fix="check that this is the right file / layer")
    if crs is not None:
        raw = raw.set_crs(parse_crs(crs), allow_override=True)
    elif raw.crs is None:
        why = "its .prj could not be understood" if src.has_prj and src.kind == "shapefile" else "it declares none"
        raise UserError(f"the coordinate reference system (CRS) is unknown: {why}", where=src.label,
                        fix="pass --crs, e.g. --crs EPSG:4612 (JGD2000 lat/lon, e-Stat 2015) or "
                            "--crs EPSG:6668 (JGD2011 lat/lon)")
    layout = None if mapping is not None else detect_layout(raw.columns)
    name_col = ROLES[layout].town_name if layout else (mapping.name if mapping else None)
    _check_text(raw, layout, name_col, codec or "UTF-8", src.label)
    if codec is None:
        report.encoding = "UTF-8"
    return normalize_townblocks(raw, layout=layout, muni_code=muni_code, target_crs=target_crs,
                                mapping=mapping, source=src.label, report=report, progress=progress)
