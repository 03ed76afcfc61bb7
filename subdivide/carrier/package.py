"""The carrier submission package: what a municipality sends to each carrier.

``build_package(plan, out)`` writes, into a directory or a deterministic zip:

- ``townblocks.shp`` (+ .shx .dbf .prj .cpg): the 町丁目 town-blocks with key, name,
  sub-area number / name / code and population, ASCII field names ≤ 10 bytes,
  text in CP932 (``.cpg`` says ``CP932``; dBase LDID byte 0x13 patched in, see
  :func:`subdivide.io.dbf.patch_dbf_header`);
- ``subareas.shp``: the dissolved sub-areas with their code, name, display order,
  town-block count, population and area;
- ``package.gpkg``: the same two layers in one GeoPackage (UTF-8);
- ``subarea_list.csv`` / ``townblock_list.csv``: the area-code lists (UTF-8 with BOM
  and CRLF, or CP932 on request, failing loudly), and ``area_codes.xlsx`` with the
  code columns stored as text. Formula-like cells are neutralised;
- ``spill/`` (spill summary) and ``map.html`` (review map) when those modules exist;
- ``manifest.json``: tool version, inputs with sha256, options, every output with
  sha256 and size, and the limits checked.

File and field names come from a :class:`~subdivide.carrier.profiles.Profile`. Writing is
atomic (nothing appears unless everything succeeded), never overwrites without
``force``, and is byte-identical for identical input.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from subdivide.core.constants import MAX_MUNICIPALITIES, MAX_SUBAREAS
from subdivide import __version__
from subdivide.core.codes import with_check_digit
from subdivide.io.dbf import patch_dbf_header
from subdivide.core.errors import UserError
from subdivide.io.output import (atomic_dir, atomic_path, check_can_write, csv_bytes, sha256_file, write_gpkg,
                                 write_xlsx, zip_bytes)
from subdivide.model.plan import Plan
from subdivide.carrier.profiles import Profile, load_profile
from subdivide.carrier import layer_styles
from subdivide.core.progress import silent

PACKAGE_FORMAT = "subdivide-carrier-package"
PACKAGE_FORMAT_VERSION = 1
SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")
MAX_DBF_TEXT_BYTES = 254


# ---------------------------------------------------------------------------- tables
def townblock_layer(plan: Plan, profile: Profile) -> gpd.GeoDataFrame:
    """Town-blocks with the profile's Shapefile field names (key order)."""
    f = profile.townblock_fields
    b = plan.blocks
    t = plan.subareas.set_index("subarea")
    sub = b["subarea"].to_numpy()
    data = {
        f["key"]: b["key"].astype(str).to_numpy(object),
        f["name"]: b["name"].astype(str).to_numpy(object),
        f["subarea"]: sub.astype("int64"),
        f["subarea_name"]: t.loc[sub, "name"].astype(str).to_numpy(object),
        f["subarea_code"]: t.loc[sub, "code"].astype(str).to_numpy(object),
        f["population"]: b["population"].to_numpy("int64"),
    }
    return gpd.GeoDataFrame(data, geometry=b.geometry.values, crs=plan.crs)


def subarea_layer(plan: Plan, profile: Profile) -> gpd.GeoDataFrame:
    """Dissolved sub-areas (display order) with the profile's Shapefile field names."""
    f = profile.subarea_fields
    m = plan.metrics.set_index("subarea")
    d = plan.dissolved
    s = d["subarea"].to_numpy()
    data = {
        f["subarea"]: s.astype("int64"),
        f["name"]: d["name"].astype(str).to_numpy(object),
        f["code"]: d["code"].astype(str).to_numpy(object),
        f["code6"]: d["code6"].astype(str).to_numpy(object),
        f["display_order"]: d["display_order"].to_numpy("int64"),
        f["n_blocks"]: m.loc[s, "n_blocks"].to_numpy("int64"),
        f["population"]: m.loc[s, "population"].to_numpy("int64"),
        f["area_km2"]: np.round(m.loc[s, "area_km2"].to_numpy("float64"), 6),
    }
    return gpd.GeoDataFrame(data, geometry=d.geometry.values, crs=plan.crs)


def subarea_list(plan: Plan, profile: Profile) -> pd.DataFrame:
    """Area-code list: one row per sub-area in display order."""
    c = profile.lists["subarea_columns"]
    m = plan.metrics
    return pd.DataFrame({
        c["code"]: m["code"].astype(str).to_numpy(object),
        c["code6"]: plan.subareas.set_index("subarea").loc[m["subarea"], "code6"].astype(str).to_numpy(object),
        c["name"]: m["name"].astype(str).to_numpy(object),
        c["display_order"]: m["display_order"].to_numpy("int64"),
        c["subarea"]: m["subarea"].to_numpy("int64"),
        c["n_blocks"]: m["n_blocks"].to_numpy("int64"),
        c["population"]: m["population"].to_numpy("int64"),
        c["area_km2"]: np.round(m["area_km2"].to_numpy("float64"), 3),
    })


def townblock_list(plan: Plan, profile: Profile) -> pd.DataFrame:
    """The full town-block list (key order) with each block's sub-area."""
    c = profile.lists["townblock_columns"]
    t = plan.subareas.set_index("subarea")
    b = plan.blocks
    sub = b["subarea"].to_numpy()
    return pd.DataFrame({
        c["key"]: b["key"].astype(str).to_numpy(object),
        c["name"]: b["name"].astype(str).to_numpy(object),
        c["subarea"]: sub.astype("int64"),
        c["subarea_code"]: t.loc[sub, "code"].astype(str).to_numpy(object),
        c["subarea_name"]: t.loc[sub, "name"].astype(str).to_numpy(object),
    })


def qgis_styles(plan: Plan, profile: Profile) -> pd.DataFrame:
    """QGIS's ``layer_styles`` rows for the GeoPackage: both layers categorised by sub-area in
    the review map's colours (display order), the sub-areas labelled with their names."""
    m = plan.metrics.sort_values("display_order", kind="stable")
    subs = [(int(n), str(nm)) for n, nm in zip(m["subarea"], m["name"])]
    gp, sf, tf = profile.geopackage, profile.subarea_fields, profile.townblock_fields
    return layer_styles.layer_styles_table(subs, {
        gp["subareas_layer"]: (sf["subarea"], sf["name"], layer_styles.SUBAREA_LOOK),
        gp["townblocks_layer"]: (tf["subarea"], None, layer_styles.TOWNBLOCK_LOOK)})


# ---------------------------------------------------------------------------- writers
def check_encodable(df: pd.DataFrame, encoding: str, *, where: str,
                    max_bytes: int | None = MAX_DBF_TEXT_BYTES) -> None:
    """UserError naming the first value that ``encoding`` cannot encode (or is too long)."""
    for col in df.columns:
        if df[col].dtype != object and not pd.api.types.is_string_dtype(df[col]):
            continue
        for i, v in enumerate(df[col]):
            if not isinstance(v, str):
                continue
            try:
                n = len(v.encode(encoding))
            except UnicodeEncodeError as exc:
                bad = v[exc.start:exc.end]
                raise UserError(f"{bad!r} (U+{ord(bad[0]):04X}) in {v!r} cannot be written in {encoding}",
                                where=f"{where}, field {col}, row {i + 1}",
                                fix="rename the value (e.g. use the CP932 form of the character)") from None
            if max_bytes is not None and n > max_bytes:
                raise UserError(f"{v[:20]!r}… is {n} bytes in {encoding}; a dBase field holds {max_bytes}",
                                where=f"{where}, field {col}, row {i + 1}", fix="shorten the value")


def write_shapefile(gdf: gpd.GeoDataFrame, directory: Path, basename: str, profile: Profile) -> list[Path]:
    """Write ``basename.shp`` (+ .shx .dbf .prj .cpg) in the profile's encoding, then set the
    DBF LDID byte and a fixed last-update date. Returns the written paths."""
    import pyogrio

    enc = profile.shapefile["encoding"]
    check_encodable(gdf.drop(columns=gdf.geometry.name), enc, where=f"{basename}.dbf")
    shp = directory / f"{basename}.shp"
    pyogrio.write_dataframe(gdf, shp, driver="ESRI Shapefile", encoding=enc,
                            layer_options={"DBF_DATE_LAST_UPDATE": "2000-01-01"})
    patch_dbf_header(shp.with_suffix(".dbf"), ldid=int(profile.shapefile["ldid"]))
    paths = [shp.with_suffix(s) for s in SHAPEFILE_PARTS]
    missing = [p.name for p in paths if not p.exists()]
    if missing:
        raise UserError(f"GDAL did not write {missing}", where=str(directory),
                        fix="check the GDAL installation (pyogrio.__gdal_version__)")
    return paths


def write_lists(plan: Plan, directory: Path, profile: Profile, *, encoding: str) -> list[Path]:
    """The two CSV lists and the XLSX workbook."""
    lp = profile.lists
    sub, blk = subarea_list(plan, profile), townblock_list(plan, profile)
    out = []
    for df, name in ((sub, lp["subareas_csv"]), (blk, lp["townblocks_csv"])):
        p = directory / name
        p.write_bytes(csv_bytes(df, encoding=encoding, where=name))
        out.append(p)
    sc, tc = lp["subarea_columns"], lp["townblock_columns"]
    text_cols = {sc["code"], sc["code6"], tc["key"], tc["subarea_code"]}
    p = directory / lp["xlsx"]
    write_xlsx({"subareas": sub, "townblocks": blk}, p, text_columns=text_cols)
    out.append(p)
    return out


def write_extras(plan: Plan, directory: Path, profile: Profile, *, spill=True, review_map=True,
                 offline_map: bool = True, csv_encoding: str = "utf-8-sig") -> dict:
    """Spill summary and review map. ``review_map`` is the map writer, a callable
    ``(plan, path, *, spill, offline)`` (the presentation layer's, passed in by the caller:
    this layer draws nothing itself), or None/False for none. Returns what was written
    (for the manifest): ``{"spill": bool, "map": bool, ...}``."""
    done = {"spill": False, "map": False}
    report = None
    if spill is not False and spill is not None:
        if spill is True:
            from subdivide.analysis.spill import spill_report

            report = spill_report(plan)
        else:
            report = spill
        if report is not None:
            report.write(directory / profile.extras["spill_dir"], force=False, encoding=csv_encoding)
            done["spill"] = True
    if callable(review_map):
        review_map(plan, directory / profile.extras["map"], spill=report, offline=offline_map)
        done["map"] = True
    return done


def manifest_dict(plan: Plan, profile: Profile, directory: Path, *, inputs: dict, options: dict,
                  extras: dict) -> dict:
    """The manifest: every file under ``directory`` (except the manifest) with sha256/size."""
    mname = profile.extras["manifest"]
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.name != mname)
    outputs = [{"path": p.relative_to(directory).as_posix(), "sha256": sha256_file(p),
                "size": p.stat().st_size} for p in files]
    ins = []
    for name, path in sorted(inputs.items()):
        p = Path(path)
        ins.append({"name": name, "path": p.name, "sha256": sha256_file(p), "size": p.stat().st_size})
    k = len(plan.subareas)
    return {
        "format": PACKAGE_FORMAT,
        "format_version": PACKAGE_FORMAT_VERSION,
        "tool": "subdivide",
        "tool_version": __version__,
        "profile": {"name": profile.name, "sha256": profile.sha256,
                    "source": "default" if profile.source == "default" else Path(profile.source).name},
        "municipality": {"code": plan.muni_code, "code6": with_check_digit(plan.muni_code),
                         "name": plan.muni_name},
        "crs": plan.crs.to_string(),
        "counts": {"townblocks": int(len(plan.blocks)), "subareas": k,
                   "population": int(plan.blocks["population"].sum())},
        "island_exceptions": sorted(plan.island_exceptions),
        "inputs": ins,
        "plan_metadata": {k2: v for k2, v in sorted(plan.metadata.items()) if k2 != "date"},
        "options": dict(sorted(options.items())),
        "contents": dict(sorted(extras.items())),
        "limits": {
            "max_subareas": MAX_SUBAREAS,
            "max_municipalities": MAX_MUNICIPALITIES,
            "checked": [
                {"rule": "LIMIT-SUBAREAS", "limit": min(plan.max_subareas, MAX_SUBAREAS), "value": k,
                 "ok": k <= MAX_SUBAREAS},
                {"rule": "BLOCK-ONCE", "value": int(len(plan.blocks)),
                 "ok": bool(plan.blocks["key"].is_unique)},
                {"rule": "CONTIGUITY", "ok": not any(f.rule == "CONTIGUITY" for f in plan.findings)},
            ],
            "note": "the nationwide limit of 25 subdivided municipalities is enforced by `subdivide registry`",
        },
        "outputs": outputs,
    }


def write_package_files(plan: Plan, directory: Path, profile: Profile, *, csv_encoding: str,
                        inputs: dict, options: dict, spill=True, review_map=True,
                        offline_map: bool = True, progress=silent) -> Path:
    """Write every package file into an existing empty ``directory``; returns the manifest path."""
    sp = profile.shapefile
    progress("town-block Shapefile", 0, 6)
    tb, sa = townblock_layer(plan, profile), subarea_layer(plan, profile)
    write_shapefile(tb, directory, sp["townblocks"], profile)
    progress("sub-area Shapefile", 1, 6)
    write_shapefile(sa, directory, sp["subareas"], profile)
    progress("GeoPackage", 2, 6)
    gp = profile.geopackage
    write_gpkg({gp["townblocks_layer"]: tb, gp["subareas_layer"]: sa,
                layer_styles.TABLE: qgis_styles(plan, profile)}, directory / gp["file"])
    progress("area-code lists", 3, 6)
    write_lists(plan, directory, profile, encoding=csv_encoding)
    progress("spill summary and review map", 4, 6)
    extras = write_extras(plan, directory, profile, spill=spill, review_map=review_map,
                          offline_map=offline_map, csv_encoding=csv_encoding)
    progress("manifest", 5, 6)
    man = manifest_dict(plan, profile, directory, inputs=inputs, options=options, extras=extras)
    mpath = directory / profile.extras["manifest"]
    mpath.write_text(json.dumps(man, ensure_ascii=False, indent=2, sort_keys=True) + "\n",
                     encoding="utf-8", newline="\n")
    return mpath


def zip_directory(directory: Path) -> bytes:
    """Deterministic zip of a directory: sorted POSIX member names at the root, fixed
    timestamps, mode 0644, UTF-8 names flagged."""
    names = sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())
    return zip_bytes((name, (directory / name).read_bytes()) for name in names)


def _package_entries(profile: Profile):
    """``owned`` for the output guard: what a package folder written by subdivide holds
    (its manifest and every output it lists, with their folders), or None when the folder
    has no subdivide package manifest."""
    def owned(folder: Path):
        mname = profile.extras["manifest"]
        try:
            man = json.loads((Path(folder) / mname).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(man, dict) or man.get("format") != PACKAGE_FORMAT:
            return None
        entries = {mname}
        for o in man.get("outputs") or []:
            rel = o.get("path") if isinstance(o, dict) else None
            if isinstance(rel, str) and rel and not rel.startswith("/") and ".." not in rel.split("/"):
                parts = rel.split("/")
                entries.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
        return entries
    return owned


def build_package(plan: Plan, out: str | os.PathLike, *, profile: Profile | str | None = None,
                  csv_encoding: str | None = None, inputs: dict | None = None, spill=True,
                  review_map=None, offline_map: bool = True, force: bool = False,
                  progress=silent) -> Path:
    """Write the carrier package for ``plan`` to ``out`` (a directory, or a ``.zip``).

    ``profile``: a Profile, a TOML path, or None for the default. ``csv_encoding``
    overrides the profile's list encoding (``utf-8-sig`` or ``cp932``). ``inputs`` maps
    a name to an input file recorded with its sha256 (e.g. ``{"plan": "x.plan.gpkg"}``).
    ``spill``: True (compute with :func:`subdivide.analysis.spill.spill_report` when available),
    False, or a ready SpillReport. ``review_map``: a map writer ``(plan, path, *, spill,
    offline)`` such as :func:`subdivide.present.map.package_map_writer`, or None.
    ``offline_map`` (default True): the map inlines every library, so it opens with no
    internet (carrier and LGWAN networks often have none). Returns ``out``.
    """
    prof = profile if isinstance(profile, Profile) else load_profile(profile)
    enc = (csv_encoding or prof.lists["encoding"]).lower().replace("_", "-")
    if enc in ("utf8", "utf-8", "utf-8-sig", "utf8-sig"):
        enc = "utf-8-sig"
    elif enc in ("cp932", "shift-jis", "sjis", "windows-31j", "ms932"):
        enc = "cp932"
    else:
        raise UserError(f"list encoding {csv_encoding!r} is not supported", fix="use utf-8 (default) or cp932")
    out = Path(out)
    inputs = {k: v for k, v in (inputs or {}).items() if v is not None}
    owned = _package_entries(prof)
    guard = dict(inputs=list(inputs.values()))
    if out.suffix.lower() != ".zip":
        guard.update(command="package", owned=owned)
    check_can_write(out, force, folder=out.suffix.lower() != ".zip", **guard)
    for name, p in inputs.items():
        if not Path(p).is_file():
            raise UserError(f"input {name} {p} is not a file", where=str(p))
    options = {"csv_encoding": enc, "spill": bool(spill is not False and spill is not None),
               "review_map": callable(review_map), "offline_map": bool(offline_map) and callable(review_map),
               "zip": out.suffix.lower() == ".zip"}
    kw = dict(csv_encoding=enc, inputs=inputs, options=options, spill=spill, review_map=review_map,
              offline_map=offline_map, progress=progress)
    if out.suffix.lower() == ".zip":
        with tempfile.TemporaryDirectory(prefix="subdivide-package-") as tmp:
            write_package_files(plan, Path(tmp), prof, **kw)
            data = zip_directory(Path(tmp))
        with atomic_path(out, force=force, **guard) as tmpzip:
            tmpzip.write_bytes(data)
    else:
        # no marker file (the validator refuses unlisted files): the manifest says what it holds
        with atomic_dir(out, force=force, marker=False, **guard) as tmp:
            write_package_files(plan, tmp, prof, **kw)
    progress("package", 6, 6)
    return out
