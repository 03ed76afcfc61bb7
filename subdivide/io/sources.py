"""Where town-block records come from: the file, its companions, its layer and its text encoding.

:func:`open_source` checks a path before anything reads it (a missing file, a folder, a
pipe or device that would hang, an unreadable file, a name too long, a Shapefile without
its companions, a .shp cut short, an unsafe zip) and returns a :class:`Source`.
:func:`decide_encoding` says how a Shapefile's text is decoded (option, .cpg — a BOM is
accepted —, UTF-8 detected from the bytes, else CP932), :func:`choose_layer` which layer of
a multi-layer file holds the town-blocks, and :func:`read_layer` reads it through pyogrio.
Every fault is a :class:`~subdivide.core.errors.UserError` (what, where, fix).
"""
from __future__ import annotations

import codecs
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import geopandas as gpd
import numpy as np
import pyogrio

from subdivide.core.errors import UserError
from subdivide.io.readers import check_input_file
from subdivide.io.safezip import PackageRejected, checked_zip_members, read_zip_member
from subdivide.io.shp import ShapefileError, count_problem, shape_counts

#: .cpg contents → Python codec
CPG_CODECS = {
    "932": "cp932", "cp932": "cp932", "ms932": "cp932", "windows-31j": "cp932", "sjis": "cp932",
    "shift_jis": "cp932", "shift-jis": "cp932", "ansi 932": "cp932",
    "utf-8": "utf-8", "utf8": "utf-8", "65001": "utf-8",
    "1252": "cp1252", "ansi 1252": "cp1252", "iso-8859-1": "latin-1", "88591": "latin-1",
    "latin1": "latin-1", "euc-jp": "euc_jp", "20932": "euc_jp",
}
#: GDAL's spelling of the codecs we pass through pyogrio
GDAL_ENCODING = {"cp932": "CP932", "shift_jis": "SHIFT_JIS", "utf-8": "UTF-8", "cp1252": "CP1252",
                 "latin-1": "ISO-8859-1", "iso8859-1": "ISO-8859-1", "euc_jp": "EUC-JP"}
#: suffixes read as GeoJSON / TopoJSON (longitude/latitude by convention)
LONLAT_SUFFIXES = (".geojson", ".json", ".topojson", ".geojsonl", ".geojsons")
#: layer names that say "town-blocks" (CODH's `town`, our own `townblocks…`, 小地域 / 町丁)
_TOWN_LAYER = re.compile(r"town|chome|cho_?me|machi|小地域|町丁|block|r2ka|h27ka", re.IGNORECASE)
#: CP932 decodings typical of UTF-8 bytes (縺 繧 繝 …)
_UTF8_AS_CP932 = re.compile(r"[縺繧繝譁蜷螟髢蝣蜀莉荳謨驕]")
#: largest .shx read from a zip (8 bytes a record: 2 million records)
_MAX_SHX = 16 << 20
_SHAPEFILE_FIX = "a Shapefile is several files (.shp .shx .dbf .prj, often .cpg); copy them all, same name"


def codec_name(name: str, *, option: str = "--encoding") -> str:
    """Normalise an encoding name to a Python codec name (UserError if unknown)."""
    key = str(name).strip().lstrip("\ufeff").lower()
    if key in CPG_CODECS:
        return CPG_CODECS[key]
    try:
        return codecs.lookup(key).name
    except LookupError:
        raise UserError(f"{option} {name!r} is not a known text encoding",
                        fix="use cp932 (Shift-JIS, e-Stat default) or utf-8") from None


def sibling(path: Path, ext: str) -> Path | None:
    """Companion file with extension ``ext`` (case-insensitive), or None."""
    for cand in (path.with_suffix(ext), path.with_suffix(ext.upper())):
        if os.path.lexists(cand):
            return cand
    if path.parent.is_dir():
        stem = path.stem.lower()
        for p in sorted(path.parent.iterdir()):
            if p.stem.lower() == stem and p.suffix.lower() == ext:
                return p
    return None


def cpg_text(raw: bytes) -> str:
    """The code page a .cpg names (a UTF-8 BOM and surrounding blanks are ignored)."""
    return raw.decode("utf-8-sig", "replace").strip().strip("\x00").strip()


@dataclass
class Source:
    """A town-block dataset as pyogrio will open it."""

    dataset: str                   # what pyogrio opens
    kind: str                      # shapefile / gpkg / geojson / topojson / other
    label: str                     # shown to the user
    cpg: str | None = None         # .cpg content
    ldid: int | None = None        # DBF byte 29
    has_prj: bool = True
    dbf: bytes = b""               # the .dbf bytes of a Shapefile (for encoding checks)
    notes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- checks


def _missing_fix(missing: list[str]) -> str:
    if missing == [".prj"]:
        return "copy the .prj too, or tell the CRS with --crs (e-Stat: EPSG:4612 JGD2000 or EPSG:6668 JGD2011)"
    return _SHAPEFILE_FIX


def check_record_counts(shx: bytes, shp_head: bytes, shp_size: int, dbf_head: bytes, dbf_size: int,
                        where: str) -> None:
    """Refuse a Shapefile whose .shp, .shx and .dbf disagree on the number of records."""
    n_dbf = int.from_bytes(dbf_head[4:8], "little") if len(dbf_head) >= 12 else 0
    hdr, rec = (int.from_bytes(dbf_head[8:10], "little"), int.from_bytes(dbf_head[10:12], "little")) \
        if len(dbf_head) >= 12 else (0, 0)
    fix = ("copy or download the Shapefile again (all of .shp .shx .dbf from the same source); "
           "a truncated file would silently drop town-blocks")
    if rec and dbf_size < hdr + n_dbf * rec:
        raise UserError(f"the .dbf is truncated: {dbf_size:,} bytes but its header declares "
                        f"{n_dbf:,} records of {rec} bytes after a {hdr}-byte header", where=where, fix=fix)
    try:
        problem = count_problem(shape_counts(shx, shp_head, shp_size), n_dbf)
    except ShapefileError as exc:
        raise UserError(str(exc), where=where, fix=fix) from None
    if problem:
        raise UserError(problem, where=where, fix=fix)


def _companion(p: Path, ext: str) -> Path | None:
    c = sibling(p, ext)
    if c is not None:
        check_regular_file(c, what=f"the Shapefile's {ext}")
    return c


def check_regular_file(p: Path, *, what: str) -> Path:
    """A readable regular file, else a UserError (folders, pipes, devices, unreadable, too-long names)."""
    check_input_file(p, what=what)
    if p.is_dir():
        shps = sorted(x.name for x in p.glob("*.shp"))[:5] + sorted(x.name for x in p.glob("*.gpkg"))[:5]
        raise UserError(f"{what} {p} is a folder, not a file", where=str(p),
                        fix="give the file inside it" + (f", e.g. {p / shps[0]}" if shps else
                                                          " (.shp, .zip, .gpkg, .geojson or .topojson)"))
    return p


def _shapefile_source(p: Path, crs_given: bool) -> Source:
    comps = {e: _companion(p, e) for e in (".dbf", ".shx", ".prj", ".cpg")}
    missing = [e for e in (".dbf", ".shx") if comps[e] is None]
    if comps[".prj"] is None and not crs_given:
        missing.append(".prj")
    if missing:
        raise UserError(f"the Shapefile has no {', '.join(missing)} next to it "
                        f"(expected {', '.join(str(p.with_suffix(e)) for e in missing)})",
                        where=str(p), fix=_missing_fix(missing))
    dbf = comps[".dbf"].read_bytes()
    with open(p, "rb") as fh:
        shp_head = fh.read(100)
    check_record_counts(comps[".shx"].read_bytes(), shp_head, p.stat().st_size, dbf[:32], len(dbf), str(p))
    cpg = cpg_text(comps[".cpg"].read_bytes()) if comps[".cpg"] else None
    return Source(str(p), "shapefile", str(p), cpg, dbf[29] if len(dbf) > 29 else None,
                  comps[".prj"] is not None, dbf)


# ----------------------------------------------------------------------------- zip


def _zip_members(path: Path) -> list[str]:
    try:
        infos = checked_zip_members(path)
    except PackageRejected as exc:
        raise UserError(f"the zip cannot be read safely: {exc}", where=str(path),
                        fix="unpack the archive yourself, check its contents, and give the .shp") from None
    return [i.filename for i in infos if not i.is_dir()]


def _pick_shapefile(shps: list[str], layer: str | None, muni_code: str | None, where: str) -> str:
    if layer:
        want = layer[:-4] if layer.lower().endswith(".shp") else layer
        pick = [n for n in shps if want in (PurePosixPath(n).stem, n[:-4])]
        if not pick:
            raise UserError(f"no Shapefile {layer!r} in the zip; it holds: {', '.join(shps[:10])}",
                            where=where, fix="choose one with --layer NAME (the file name without .shp)")
    elif muni_code and len(shps) > 1:
        pick = [n for n in shps if muni_code in PurePosixPath(n).stem]
    else:
        pick = shps
    if len(pick) != 1:
        raise UserError(f"the zip holds {len(shps)} Shapefiles: {', '.join(shps[:10])}", where=where,
                        fix="choose one with --layer NAME (the file name without .shp)")
    return pick[0]


def _zip_read(path: Path, member: str, max_bytes: int) -> bytes:
    try:
        return read_zip_member(path, member, max_bytes=max_bytes)
    except PackageRejected as exc:
        raise UserError(f"the zip cannot be read safely: {exc}", where=str(path),
                        fix="unpack the archive yourself and check it") from None


def _zip_source(path: Path, layer: str | None, muni_code: str | None, crs_given: bool) -> Source:
    """Pick the .shp inside a zip and check its companions, without extracting."""
    names = _zip_members(path)
    shps = sorted(n for n in names if n.lower().endswith(".shp"))
    if not shps:
        others = sorted({PurePosixPath(n).suffix for n in names})
        vec = [n for n in names if n.lower().endswith((".gpkg",) + LONLAT_SUFFIXES)]
        if len(vec) == 1:
            return Source(f"/vsizip/{path.resolve()}/{vec[0]}", _kind(PurePosixPath(vec[0]).suffix.lower()),
                          f"{path}!{vec[0]}")
        raise UserError(f"the zip holds no .shp (found {', '.join(others) or 'nothing'})", where=str(path),
                        fix="give the zip of an e-Stat Shapefile (h27ka*.zip / r2ka*.zip)")
    shp = _pick_shapefile(shps, layer, muni_code, str(path))
    stem, lower = shp[:-4], {n.lower(): n for n in names}
    member = {e: lower.get((stem + e).lower()) for e in (".dbf", ".shx", ".prj", ".cpg")}
    missing = [e for e in (".dbf", ".shx") if member[e] is None]
    if member[".prj"] is None and not crs_given:
        missing.append(".prj")
    if missing:
        raise UserError(f"the Shapefile {shp} in the zip has no {', '.join(missing)}", where=str(path),
                        fix=_missing_fix(missing))
    import zipfile
    with zipfile.ZipFile(path) as zf:
        shp_size = zf.getinfo(shp).file_size
        with zf.open(shp) as fh:
            shp_head = fh.read(100)
    dbf = _zip_read(path, member[".dbf"], 2 << 30)
    label = f"{path}!{shp}"
    check_record_counts(_zip_read(path, member[".shx"], _MAX_SHX), shp_head, shp_size, dbf[:32], len(dbf), label)
    cpg = cpg_text(_zip_read(path, member[".cpg"], 4096)) if member[".cpg"] else None
    return Source(f"/vsizip/{path.resolve()}/{shp}", "shapefile", label, cpg,
                  dbf[29] if len(dbf) > 29 else None, member[".prj"] is not None, dbf)


def _kind(suffix: str) -> str:
    return {".shp": "shapefile", ".gpkg": "gpkg", ".topojson": "topojson"}.get(
        suffix, "geojson" if suffix in LONLAT_SUFFIXES else "other")


def open_source(path, layer: str | None = None, muni_code: str | None = None, crs_given: bool = False) -> Source:
    """Check ``path`` and its companions; return the :class:`Source` to read."""
    p = Path(path)
    try:
        os.lstat(p)
    except FileNotFoundError:
        raise UserError(f"file not found: {p}", where=str(p), fix="check the path") from None
    except OSError:
        pass   # too long a name, a file used as a folder …: check_regular_file says what
    check_regular_file(p, what="the town-block file")
    suf = p.suffix.lower()
    if suf == ".zip":
        return _zip_source(p, layer, muni_code, crs_given)
    if suf == ".shp":
        return _shapefile_source(p, crs_given)
    if suf in (".dbf", ".shx", ".prj", ".cpg"):
        raise UserError(f"{p.name} is only part of a Shapefile", where=str(p),
                        fix=f"give the .shp file: {p.with_suffix('.shp')}")
    return Source(str(p), _kind(suf), str(p))


# ----------------------------------------------------------------------------- text


def dbf_undecodable(dbf: bytes, codec: str) -> tuple[str, int, bytes] | None:
    """First text (C) field value of a .dbf that ``codec`` cannot decode, as
    (field name, 0-based record, raw bytes), or None when all text decodes.

    Each text column is checked in one decode call over its fixed-width bytes.
    """
    for name, col, width in _text_columns(dbf):
        try:
            col.tobytes().decode(codec)
        except UnicodeDecodeError as exc:
            r = exc.start // width
            return name, int(r), bytes(col[r]).rstrip(b" ")
    return None


def _text_columns(dbf: bytes):
    """(name, records × width uint8 array, width) of each character field holding non-ASCII bytes."""
    if len(dbf) < 32:
        return
    n = int.from_bytes(dbf[4:8], "little")
    header = int.from_bytes(dbf[8:10], "little")
    reclen = int.from_bytes(dbf[10:12], "little")
    fields, off, pos = [], 1, 32
    while pos + 32 <= header and pos < len(dbf) and dbf[pos] != 0x0D:
        name = dbf[pos:pos + 11].split(b"\0", 1)[0].decode("ascii", "replace")
        fields.append((name, chr(dbf[pos + 11]), off, dbf[pos + 16]))
        off += dbf[pos + 16]
        pos += 32
    n = min(n, max(0, (len(dbf) - header) // max(reclen, 1)))
    if n == 0 or reclen == 0 or off > reclen:
        return
    recs = np.frombuffer(dbf, dtype=np.uint8, count=n * reclen, offset=header).reshape(n, reclen)
    for name, ftype, o, w in fields:
        if ftype == "C" and w:
            col = np.ascontiguousarray(recs[:, o:o + w])
            if (col >= 0x80).any():
                yield name, col, w


def looks_utf8(dbf: bytes) -> bool:
    """True when the .dbf's text holds non-ASCII bytes that decode as valid UTF-8 and read
    as mojibake (or not at all) in CP932: a UTF-8 file that lacks its .cpg."""
    texts = [col.tobytes() for _, col, _ in _text_columns(dbf)]
    if not texts:
        return False
    try:
        for t in texts:
            t.decode("utf-8")
    except UnicodeDecodeError:
        return False
    if dbf_undecodable(dbf, "cp932") is not None:
        return True
    return any(_UTF8_AS_CP932.search(t.decode("cp932")) for t in texts)


def decide_encoding(src: Source, encoding: str | None) -> tuple[str | None, str]:
    """(codec, reason) for a Shapefile's text; (None, reason) for self-describing formats."""
    if src.kind != "shapefile":
        if encoding:
            return codec_name(encoding), "--encoding (format is normally UTF-8)"
        return None, "UTF-8 by format definition" if src.kind in ("gpkg", "geojson", "topojson") else "driver default"
    if encoding:
        return codec_name(encoding), "given with --encoding"
    if src.cpg:
        key = src.cpg.strip().lower()
        if key not in CPG_CODECS:
            raise UserError(f"the .cpg says {src.cpg!r}, an encoding this tool does not know", where=src.label,
                            fix="pass --encoding cp932 or --encoding utf-8, or correct the .cpg")
        return CPG_CODECS[key], f".cpg says {src.cpg!r}"
    if looks_utf8(src.dbf):
        return "utf-8", ("no .cpg, but the text is valid UTF-8 (it reads as mojibake in CP932): read as "
                         "UTF-8; add a .cpg holding UTF-8 to make this explicit")
    if src.ldid == 0x13:
        return "cp932", "no .cpg; DBF language driver byte 0x13 (Shift-JIS)"
    if src.ldid:
        return "cp932", f"no .cpg; DBF language driver byte 0x{src.ldid:02X} ignored, e-Stat text is CP932"
    return "cp932", "no .cpg and no language driver byte: e-Stat default CP932"


def declares_crs(src: Source) -> bool:
    """Whether a GeoJSON file carries a ``crs`` member (looked for in its first MiB and last
    64 KiB, where writers put it); True for anything that cannot be scanned."""
    p = Path(src.dataset)
    if src.kind != "geojson" or not p.is_file():
        return True
    size = p.stat().st_size
    with open(p, "rb") as fh:
        head = fh.read(1 << 20)
        fh.seek(max(0, size - (64 << 10)))
        tail = fh.read()
    return b'"crs"' in head or b'"crs"' in tail


# ----------------------------------------------------------------------------- layers


@dataclass(frozen=True)
class LayerInfo:
    name: str
    geometry: str
    features: int
    fields: tuple[str, ...]

    @property
    def polygonal(self) -> bool:
        """Polygons, or a mix GDAL reports as 'Unknown' (TopoJSON with Polygon and MultiPolygon)."""
        g = str(self.geometry).lower()
        return "polygon" in g or g in ("unknown", "geometry", "geometrycollection")

    def describe(self) -> str:
        return f"{self.name} ({self.features:,} {self.geometry or 'no geometry'} features)"


def layer_infos(src: Source) -> list[LayerInfo]:
    """Every layer with its geometry type, feature count and fields ([] when unreadable)."""
    try:
        layers = pyogrio.list_layers(src.dataset)
    except Exception:  # noqa: BLE001 - reported by the read that follows
        return []
    out = []
    for name, geom in layers:
        try:
            info = pyogrio.read_info(src.dataset, layer=str(name))
            out.append(LayerInfo(str(name), str(geom), int(info.get("features", -1)),
                                 tuple(str(f) for f in info.get("fields", ()))))
        except Exception:  # noqa: BLE001 - an unreadable layer is simply not a candidate
            out.append(LayerInfo(str(name), str(geom), -1, ()))
    return out


def _town_like(info: LayerInfo, key_column: str | None) -> bool:
    fields = {f.upper() for f in info.fields}
    keyish = (key_column.upper() in fields) if key_column else ("KEY_CODE" in fields or "S_AREA" in fields)
    return info.polygonal and (keyish or (key_column is None and bool(_TOWN_LAYER.search(info.name))))


def choose_layer(src: Source, layer: str | None, key_column: str | None = None) -> str | None:
    """The layer to read: ``layer`` when given (checked), the only layer, or the one layer that
    holds town-blocks (polygons with a KEY_CODE/S_AREA or the key column, or a name such as
    ``town``); a note in ``src.notes`` says which was chosen. Otherwise a UserError listing the
    layers with their feature counts."""
    if src.kind == "shapefile":
        return None
    infos = layer_infos(src)
    names = [i.name for i in infos]
    listing = "; ".join(i.describe() for i in infos[:12])
    if layer is not None:
        if names and layer not in names:
            raise UserError(f"no layer {layer!r}; the file has: {listing}", where=src.label,
                            fix="choose one with --layer NAME")
        return layer
    if len(infos) <= 1:
        return None
    cands = [i for i in infos if _town_like(i, key_column)]
    if len(cands) != 1:
        raise UserError(f"the file has {len(infos)} layers: {listing}", where=src.label,
                        fix="choose the town-block layer with --layer NAME")
    others = ", ".join(i.describe() for i in infos if i is not cands[0])
    src.notes.append(f"layer {cands[0].name!r} chosen as the town-block layer (the file also holds "
                     f"{others}); choose another with --layer NAME")
    return cands[0].name


def read_layer(src: Source, layer: str | None, codec: str | None) -> gpd.GeoDataFrame:
    """Read the chosen layer; decoding and driver faults become UserErrors."""
    kw = {}
    if codec is not None:
        kw["encoding"] = GDAL_ENCODING.get(codec, codec)
    if layer is not None and src.kind != "shapefile":
        kw["layer"] = layer
    if src.kind == "shapefile" and codec is not None:
        bad = dbf_undecodable(src.dbf, codec)
        if bad:
            raise UserError(
                f"text cannot be decoded as {codec}: field {bad[0]} of record {bad[1] + 1} holds bytes "
                f"{bad[2][:24]!r}", where=src.label,
                fix="pass the right encoding with --encoding (cp932 for e-Stat, utf-8 for many re-exports) "
                    "or add a .cpg file naming the code page")
    try:
        with warnings.catch_warnings():   # GeoJSON/TopoJSON text fields GDAL marks as JSON: kept as text
            warnings.filterwarnings("ignore", message="Could not parse column", category=UserWarning)
            return pyogrio.read_dataframe(src.dataset, **kw)
    except UnicodeDecodeError as exc:
        raise UserError(f"text cannot be decoded as {codec} (byte {exc.object[exc.start:exc.start + 2]!r} "
                        f"at position {exc.start})", where=src.label,
                        fix="pass the right encoding with --encoding (cp932 for e-Stat, utf-8 for most "
                            "re-exports) or add a .cpg file") from None
    except pyogrio.errors.DataSourceError as exc:
        raise UserError(f"cannot open the file as a vector layer: {exc}", where=src.label,
                        fix="give a Shapefile (.shp with .dbf/.shx/.prj), a zipped Shapefile, "
                            "a GeoPackage, a GeoJSON or a TopoJSON file") from None
    except (pyogrio.errors.DataLayerError, pyogrio.errors.FieldError, pyogrio.errors.GeometryError) as exc:
        raise UserError(f"cannot read the layer: {exc}", where=src.label,
                        fix="check the file in QGIS; re-export it if needed") from None
    except OSError as exc:
        raise UserError(f"cannot read the file ({exc.__class__.__name__}: {exc})", where=src.label,
                        fix="check the file and its permissions; copy it again if it is damaged") from None
