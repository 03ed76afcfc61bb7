"""Carrier-side validation: a corpus of broken packages, one per rule and per hardening case.

Every case starts from a good package of real town-blocks (the bundled 花巻 sample's
大迫・石鳥谷・東和 sub-areas), breaks one thing, runs ``subdivide validate`` through the
CLI and checks the expected finding, severity and exit status — and that nothing is
written outside the temporary folder.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import stat
import struct
import tempfile
import warnings
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from subdivide.cli.main import main
from subdivide.io.dbf import DbfError, read_dbf_header
from subdivide.io.output import csv_bytes, sha256_file, write_gpkg
from subdivide.carrier.package import build_package, write_shapefile, zip_directory
from subdivide.model.plan import Plan
from subdivide.carrier.profiles import load_profile
from subdivide.io.safezip import Limits, PackageRejected, stage_package
from subdivide.carrier.validation import FATAL_RULES, RULES, validate_package
from subdivide.core.i18n import translate_text
from subdivide.core.rules import RULES as CORE_RULES

FORMULA = '=HYPERLINK("http://x","y")'
PROFILE = load_profile()


# ============================================================================ fixtures
@pytest.fixture(scope="module")
def base_plan(sample_blocks):
    b = sample_blocks[sample_blocks["OLD_MUNI"] != "花巻"].copy()
    b.loc[b.index[1], "name"] = FORMULA
    return Plan.from_assignment(b, b.set_index("key")["OLD_MUNI"])


@pytest.fixture(scope="module")
def base_package(base_plan, tmp_path_factory) -> Path:
    from subdivide.analysis.spill import spill_report

    # one spill distance keeps the corpus fast (validation recomputes every stated distance)
    report = spill_report(base_plan, distances_km=(2.0,))
    return build_package(base_plan, tmp_path_factory.mktemp("base") / "pkg", spill=report, review_map=False)


@pytest.fixture(scope="module")
def outline_file(base_plan, tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("outline") / "outline.gpkg"
    u = shapely.union_all(base_plan.blocks.geometry.values)
    gpd.GeoDataFrame(geometry=[u], crs=base_plan.crs).to_file(p, driver="GPKG")
    return p


# ============================================================================ helpers
def reseal(root: Path) -> None:
    """Recompute the manifest's sha256 and sizes (so only the intended rule fires)."""
    mpath = root / "manifest.json"
    man = json.loads(mpath.read_text(encoding="utf-8"))
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name != "manifest.json")
    man["outputs"] = [{"path": p.relative_to(root).as_posix(), "sha256": sha256_file(p),
                       "size": p.stat().st_size} for p in files]
    mpath.write_text(json.dumps(man, ensure_ascii=False, indent=2, sort_keys=True), encoding="utf-8")


def edit_manifest(root: Path, fn) -> None:
    m = root / "manifest.json"
    man = json.loads(m.read_text(encoding="utf-8"))
    fn(man)
    m.write_text(json.dumps(man, ensure_ascii=False), encoding="utf-8")


def edit_bytes(path: Path, fn) -> None:
    path.write_bytes(fn(path.read_bytes()))


def edit_csv(path: Path, fn) -> None:
    df = pd.read_csv(path, dtype=str, encoding="utf-8-sig", keep_default_na=False)
    path.write_bytes(csv_bytes(fn(df)))


def rewrite_layer(root: Path, which: str, fn) -> None:
    """Read a package Shapefile, change it, write it back (and its GeoPackage layer)."""
    base = PROFILE.shapefile[which]
    gdf = pyogrio.read_dataframe(root / f"{base}.shp", encoding="cp932")
    gdf = fn(gdf)
    for ext in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
        (root / f"{base}{ext}").unlink()
    write_shapefile(gdf, root, base, PROFILE)
    layers = {lay: pyogrio.read_dataframe(root / "package.gpkg", layer=lay) for lay in ("townblocks", "subareas")}
    layers[which] = gdf
    (root / "package.gpkg").unlink()
    write_gpkg(layers, root / "package.gpkg")


def unchecked_plan(plan: Plan, *, blocks=None, table=None) -> Plan:
    """A Plan object that skips the construction checks (to package a broken plan)."""
    p = object.__new__(Plan)
    for k, v in dict(blocks=plan.blocks if blocks is None else blocks,
                     subareas=plan.subareas if table is None else table, muni_code=plan.muni_code,
                     island_exceptions=frozenset(), max_subareas=14, metadata={}).items():
        object.__setattr__(p, k, v)
    return p


def rebuild(root: Path, plan: Plan) -> None:
    shutil.rmtree(root)
    build_package(plan, root, spill=False, review_map=False)


def zip_with(root: Path, target: Path, extra: list, *, compression=zipfile.ZIP_DEFLATED) -> Path:
    """The package zipped, plus extra members (ZipInfo or name, bytes)."""
    buf = io.BytesIO(zip_directory(root))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # duplicate names
        with zipfile.ZipFile(buf, "a", compression) as z:
            for info, data in extra:
                z.writestr(info, data)
    target.write_bytes(buf.getvalue())
    return target


def patch_central(data: bytes, name: bytes, offset: int, value: bytes) -> bytes:
    """Patch a field of ``name``'s central-directory header (offset from 'PK\\1\\2')."""
    i = data.rfind(b"PK\x01\x02" + b"", 0, data.rfind(name))
    b = bytearray(data)
    b[i + offset:i + offset + len(value)] = value
    return bytes(b)


# ============================================================================ the corpus
# each case: mutate(root, ctx) → path to validate (or None for root); expected rule; status
CASES = {}


def case(rule: str, status: int = 1, **validate_kw):
    def deco(fn):
        CASES[fn.__name__] = (fn, rule, status, validate_kw)
        return fn
    return deco


# ---- hardening: the package is rejected unread (exit 2)
@case("ZIP-PATH-TRAVERSAL", 2)
def zip_path_traversal(root, ctx):
    return zip_with(root, ctx.tmp / "p.zip", [("../../evil.txt", b"pwned")])


@case("ZIP-ABSOLUTE-PATH", 2)
def zip_absolute_path(root, ctx):
    return zip_with(root, ctx.tmp / "p.zip", [("/srv/subdivide-evil.txt", b"pwned")])


@case("ZIP-BACKSLASH", 2)
def zip_backslash(root, ctx):
    return zip_with(root, ctx.tmp / "p.zip", [("..\\..\\evil.txt", b"pwned")])


@case("ZIP-BACKSLASH", 2)
def zip_drive_letter(root, ctx):
    return zip_with(root, ctx.tmp / "p.zip", [("C:/Windows/evil.txt", b"pwned")])


@case("ZIP-SYMLINK", 2)
def zip_symlink(root, ctx):
    info = zipfile.ZipInfo("spill/link")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return zip_with(root, ctx.tmp / "p.zip", [(info, b"/etc/passwd")])


@case("ZIP-NAME-ENCODING", 2)
def zip_name_not_utf8(root, ctx):
    p = zip_with(root, ctx.tmp / "p.zip", [("caf_.txt", b"x")])
    edit_bytes(p, lambda d: d.replace(b"caf_.txt", b"caf\x82.txt"))   # cp437/Shift-JIS byte, no UTF-8 flag
    return p


@case("ZIP-NAME-ENCODING", 2)
def zip_name_bad_utf8(root, ctx):
    p = zip_with(root, ctx.tmp / "p.zip", [("café.txt", b"x")])       # UTF-8 flag set
    edit_bytes(p, lambda d: d.replace("café".encode(), b"caf\xff\xfe"))
    return p


@case("ZIP-COMPRESSION-RATIO", 2)
def zip_bomb_ratio(root, ctx):
    return zip_with(root, ctx.tmp / "p.zip", [("spill/padding.csv", bytes(20 << 20))])


@case("PKG-TOO-LARGE", 2)
def zip_declared_huge(root, ctx):
    p = zip_with(root, ctx.tmp / "p.zip", [("notes.txt", b"hello")])
    edit_bytes(p, lambda d: patch_central(d, b"notes.txt", 24, struct.pack("<I", 0x7FFF0000)))
    return p


@case("ZIP-CORRUPT", 2)
def zip_forged_size(root, ctx):
    p = zip_with(root, ctx.tmp / "p.zip", [("notes.txt", b"a" * 100_000)])
    edit_bytes(p, lambda d: patch_central(d, b"notes.txt", 24, struct.pack("<I", 1000)))
    return p


@case("ZIP-CORRUPT", 2)
def zip_crc_error(root, ctx):
    p = zip_with(root, ctx.tmp / "p.zip", [("notes.txt", b"abcdefgh" * 100)], compression=zipfile.ZIP_STORED)
    edit_bytes(p, lambda d: d.replace(b"abcdefgh", b"abcdefgX", 1))
    return p


@case("ZIP-BAD-NAME", 2)
def zip_nul_in_name(root, ctx):
    p = zip_with(root, ctx.tmp / "p.zip", [("notes.txtQ../../evil.txt", b"x")])
    edit_bytes(p, lambda d: d.replace(b"notes.txtQ", b"notes.txt\x00"))
    return p


@case("PKG-TOO-MANY-FILES", 2)
def zip_too_many_members(root, ctx):
    return zip_with(root, ctx.tmp / "p.zip", [(f"spam/{i:05d}.txt", b"") for i in range(2100)])


@case("ZIP-DUPLICATE-MEMBER", 2)
def zip_duplicate_member(root, ctx):
    return zip_with(root, ctx.tmp / "p.zip", [("townblock_list.csv", b"key\r\n1\r\n")])


@case("ZIP-ENCRYPTED", 2)
def zip_encrypted(root, ctx):
    p = zip_with(root, ctx.tmp / "p.zip", [("notes.txt", b"secret")])
    edit_bytes(p, lambda d: patch_central(d, b"notes.txt", 8, struct.pack("<H", 0x1)))
    return p


@case("PKG-NOT-ZIP", 2)
def not_a_zip(root, ctx):
    p = ctx.tmp / "p.zip"
    p.write_bytes(np.random.default_rng(0).bytes(4096))
    return p


@case("PKG-NOT-ZIP", 2)
def zip_truncated(root, ctx):
    p = ctx.tmp / "p.zip"
    data = zip_directory(root)
    p.write_bytes(data[: len(data) // 2])
    return p


@case("PKG-NOT-FOUND", 2)
def missing_path(root, ctx):
    return ctx.tmp / "no-such-package.zip"


@case("DIR-SYMLINK", 2)
def dir_symlink(root, ctx):
    os.symlink("/etc/passwd", root / "passwd.csv")


@case("DIR-SPECIAL-FILE", 2)
def dir_fifo(root, ctx):
    os.mkfifo(root / "pipe.csv")


@case("DBF-HEADER", 2)
def dbf_huge_record_count(root, ctx):
    edit_bytes(root / "townblocks.dbf", lambda d: d[:4] + struct.pack("<I", 1_000_000_000) + d[8:])
    reseal(root)


@case("DBF-HEADER", 2)
def dbf_size_mismatch(root, ctx):
    edit_bytes(root / "townblocks.dbf", lambda d: d[:-500])
    reseal(root)


@case("DBF-HEADER", 2)
def dbf_no_terminator(root, ctx):
    def f(d):
        hl = struct.unpack("<H", d[8:10])[0]
        return d[:hl - 1] + b"\x20" + d[hl:]
    edit_bytes(root / "subareas.dbf", f)
    reseal(root)


# ---- manifest
@case("MANIFEST-MISSING", profile="require_manifest")
def manifest_missing(root, ctx):
    """An error only when the carrier's profile requires a manifest (a warning otherwise:
    tests/test_validate_carrier.py)."""
    (root / "manifest.json").unlink()


@case("MANIFEST-INVALID")
def manifest_invalid_json(root, ctx):
    edit_bytes(root / "manifest.json", lambda d: d[:-40])


@case("MANIFEST-FORMAT")
def manifest_future_version(root, ctx):
    edit_manifest(root, lambda m: m.update(format_version=99))


@case("MANIFEST-CHECKSUM")
def manifest_checksum(root, ctx):
    edit_bytes(root / "subarea_list.csv", lambda d: d.replace("大迫".encode(), "大追".encode()))


@case("MANIFEST-FILE-MISSING")
def manifest_listed_file_missing(root, ctx):
    (root / "spill" / "spill_exposure.csv").unlink()


@case("MANIFEST-UNLISTED")
def manifest_unlisted_file(root, ctx):
    (root / "readme.txt").write_text("extra", encoding="utf-8")


@case("MUNI-CODE")
def muni_code_check_digit(root, ctx):
    edit_manifest(root, lambda m: m["municipality"].update(code6="032050"))


# ---- Shapefile schema and encodings
@case("SHP-CPG")
def shp_cpg_utf8(root, ctx):
    (root / "townblocks.cpg").write_bytes(b"UTF-8")
    reseal(root)


@case("SHP-LDID")
def shp_ldid_zero(root, ctx):
    edit_bytes(root / "townblocks.dbf", lambda d: d[:29] + b"\x00" + d[30:])
    reseal(root)


@case("SHP-MISSING-PART")
def shp_missing_prj(root, ctx):
    (root / "subareas.prj").unlink()
    reseal(root)


@case("SHP-FIELDS")
def shp_field_renamed(root, ctx):
    edit_bytes(root / "townblocks.dbf", lambda d: d.replace(b"AREA_NO\x00", b"AREA_NX\x00", 1))
    reseal(root)


@case("SHP-FIELDS")
def shp_field_non_ascii(root, ctx):
    edit_bytes(root / "townblocks.dbf", lambda d: d.replace(b"JINKO\x00", b"JIN\xb1O\x00", 1))
    reseal(root)


@case("SHP-ENCODING")
def shp_text_not_cp932(root, ctx):
    edit_bytes(root / "townblocks.dbf", lambda d: d.replace("大迫".encode("cp932"), b"\x82\xff\x82\xff", 1))
    reseal(root)


@case("SHP-UNREADABLE")
def shp_header_garbage(root, ctx):
    edit_bytes(root / "townblocks.shp", lambda d: bytes(100) + d[100:])
    reseal(root)


@case("SHP-PRJ")
def shp_prj_geographic(root, ctx):
    from pyproj import CRS

    (root / "townblocks.prj").write_text(CRS(4326).to_wkt("WKT1_ESRI"))
    reseal(root)


@case("SHP-PRJ-ZONE")
def shp_prj_zone_of_another_prefecture(root, ctx):
    """花巻 (岩手県, zone X) declared in zone IX: areas and distances would be off."""
    from pyproj import CRS

    (root / "townblocks.prj").write_text(CRS(6677).to_wkt("WKT1_ESRI"))
    reseal(root)


# ---- lists
@case("CSV-ENCODING")
def csv_no_bom(root, ctx):
    edit_bytes(root / "townblock_list.csv", lambda d: d[3:])
    reseal(root)


@case("CSV-ENCODING")
def csv_lf_line_ends(root, ctx):
    edit_bytes(root / "subarea_list.csv", lambda d: d.replace(b"\r\n", b"\n"))
    reseal(root)


@case("CSV-FORMULA")
def csv_formula_not_neutralised(root, ctx):
    edit_bytes(root / "townblock_list.csv", lambda d: d.replace(b"'=HYPERLINK", b"=HYPERLINK"))
    reseal(root)


@case("CSV-COLUMNS")
def csv_missing_column(root, ctx):
    edit_bytes(root / "townblock_list.csv", lambda d: d.replace("町丁目名".encode(), "名前".encode(), 1))
    reseal(root)


@case("XLSX-TEXT-CODES")
def xlsx_codes_as_numbers(root, ctx):
    p = root / "area_codes.xlsx"
    wb = load_workbook(p)
    for row in wb["subareas"].iter_rows(min_row=2):
        row[0].value = int(row[0].value)
        row[0].number_format = "General"
    wb.save(p)
    reseal(root)


@case("CSV-FORMULA")
def xlsx_formula_cell(root, ctx):
    p = root / "area_codes.xlsx"
    wb = load_workbook(p)
    wb["townblocks"]["E3"] = '=HYPERLINK("http://x","y")'
    wb.save(p)
    reseal(root)


@case("XLSX-UNREADABLE")
def xlsx_with_a_dtd(root, ctx):
    p = root / "area_codes.xlsx"
    with zipfile.ZipFile(p) as z:
        parts = {i.filename: z.read(i.filename) for i in z.infolist()}
    parts["xl/workbook.xml"] = parts["xl/workbook.xml"].replace(
        b"<workbook", b'<!DOCTYPE w [<!ENTITY a "aaaaaaaa">]><workbook', 1)
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            z.writestr(name, data)
    reseal(root)


@case("XLSX-UNREADABLE")
def xlsx_not_a_workbook(root, ctx):
    (root / "area_codes.xlsx").write_bytes(b"PK\x03\x04 this is not a workbook")
    reseal(root)


@case("XLSX-UNREADABLE")
def xlsx_nested_bomb(root, ctx):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/worksheets/sheet1.xml", bytes(30 << 20))
    (root / "area_codes.xlsx").write_bytes(buf.getvalue())
    reseal(root)


@case("GPKG-LAYERS")
def gpkg_missing_layer(root, ctx):
    tb = pyogrio.read_dataframe(root / "package.gpkg", layer="townblocks")
    (root / "package.gpkg").unlink()
    write_gpkg({"townblocks": tb}, root / "package.gpkg")
    reseal(root)


@case("GPKG-MISMATCH")
def gpkg_feature_dropped(root, ctx):
    layers = {lay: pyogrio.read_dataframe(root / "package.gpkg", layer=lay) for lay in ("townblocks", "subareas")}
    layers["townblocks"] = layers["townblocks"].iloc[1:]
    (root / "package.gpkg").unlink()
    write_gpkg(layers, root / "package.gpkg")
    reseal(root)


@case("GPKG-MISMATCH")
def gpkg_assignment_differs(root, ctx):
    """Same features and geometry, but package.gpkg puts a block in another sub-area."""
    layers = {lay: pyogrio.read_dataframe(root / "package.gpkg", layer=lay) for lay in ("townblocks", "subareas")}
    tb = layers["townblocks"]
    first, last = tb.index[0], tb.index[-1]
    for col in ("AREA_NO", "AREA_NAME", "AREA_CODE"):
        tb.loc[first, col] = tb.loc[last, col]
    (root / "package.gpkg").unlink()
    write_gpkg(layers, root / "package.gpkg")
    reseal(root)


# ---- Shapefile ↔ list consistency, every town-block exactly once
@case("BLOCK-DUPLICATE")
def list_duplicate_block(root, ctx):
    edit_csv(root / "townblock_list.csv", lambda df: pd.concat([df, df.iloc[[5]]]))
    reseal(root)


@case("BLOCK-DUPLICATE")
def shp_duplicate_block(root, ctx):
    rewrite_layer(root, "townblocks", lambda g: pd.concat([g, g.iloc[[3]]], ignore_index=True))
    reseal(root)


@case("BLOCK-NOT-IN-LIST")
def list_missing_block(root, ctx):
    edit_csv(root / "townblock_list.csv", lambda df: df.drop(index=7))
    reseal(root)


@case("BLOCK-NOT-IN-SHP")
def list_extra_block(root, ctx):
    def f(df):
        extra = df.iloc[[0]].copy()
        extra.iloc[0, 0] = "03205999999"
        return pd.concat([df, extra])
    edit_csv(root / "townblock_list.csv", f)
    reseal(root)


@case("LIST-MISMATCH")
def list_subarea_differs(root, ctx):
    def f(df):
        df.iloc[4, 2] = "1" if df.iloc[4, 2] != "1" else "2"
        return df
    edit_csv(root / "townblock_list.csv", f)
    reseal(root)


@case("BLOCK-KEY-FORMAT")
def key_of_another_municipality(root, ctx):
    b = ctx.plan.blocks.copy()
    b.loc[b.index[0], "key"] = "35204000100"
    rebuild(root, unchecked_plan(ctx.plan, blocks=b))


# ---- sub-areas: limit, numbers, names, codes, order, totals
@case("LIMIT-SUBAREAS")
def fifteen_subareas(root, ctx):
    b = ctx.plan.blocks.copy()
    x = b.geometry.centroid.x.rank(method="first").to_numpy()
    b["subarea"] = (np.floor((x - 1) * 15 / len(b)) + 1).astype("int64")
    t = pd.DataFrame({"subarea": range(1, 16), "name": [f"第{i}地域" for i in range(1, 16)],
                      "display_order": range(1, 16)})
    t["code"] = [f"03205{i:02d}" for i in t["subarea"]]
    t["code6"] = [f"032051{i:02d}" for i in t["subarea"]]
    rebuild(root, unchecked_plan(ctx.plan, blocks=b, table=t))


@case("CONTIGUITY")
def non_contiguous_subarea(root, ctx):
    b = ctx.plan.blocks.copy()
    d = ctx.plan.dissolved
    other = d.geometry.iloc[1]
    mine = b[b["subarea"] == d["subarea"].iloc[0]]
    far = mine.geometry.distance(other).idxmax()
    b.loc[far, "subarea"] = d["subarea"].iloc[1]
    rebuild(root, unchecked_plan(ctx.plan, blocks=b))


def _table_edit(ctx, fn):
    t = ctx.plan.subareas.copy()
    fn(t)
    return unchecked_plan(ctx.plan, table=t)


@case("NAME-FORMAT")
def name_without_chiiki(root, ctx):
    rebuild(root, _table_edit(ctx, lambda t: t.__setitem__("name", ["石鳥谷", *t["name"][1:]])))


@case("NAME-DUPLICATE")
def names_repeat(root, ctx):
    rebuild(root, _table_edit(ctx, lambda t: t.__setitem__("name", [t["name"][0]] * len(t))))


@case("CODE-FORMAT")
def code_not_muni_plus_number(root, ctx):
    rebuild(root, _table_edit(ctx, lambda t: t.__setitem__("code", ["0320599", *t["code"][1:]])))


@case("CODE-CHECK-DIGIT")
def code6_wrong_check_digit(root, ctx):
    rebuild(root, _table_edit(ctx, lambda t: t.__setitem__("code6", ["03205001", *t["code6"][1:]])))


@case("DISPLAY-ORDER")
def display_order_repeats(root, ctx):
    rebuild(root, _table_edit(ctx, lambda t: t.__setitem__("display_order", [1] * len(t))))


@case("SUBAREA-NUMBER")
def subarea_number_out_of_range(root, ctx):
    def f(g):
        g.loc[0, "AREA_NO"] = 15
        return g
    rewrite_layer(root, "subareas", f)
    reseal(root)


@case("SUBAREA-UNKNOWN")
def block_in_unknown_subarea(root, ctx):
    def f(g):
        g.loc[0, "AREA_NO"] = 9
        return g
    rewrite_layer(root, "townblocks", f)
    reseal(root)


@case("SUBAREA-EMPTY")
def subarea_without_blocks(root, ctx):
    def f(g):
        extra = g.iloc[[0]].copy()
        extra["AREA_NO"], extra["AREA_NAME"], extra["AREA_CODE"], extra["AREA_CODE6"] = 4, "幽霊地域", "0320504", "03205104"
        extra["DISP_ORD"] = 4
        extra["geometry"] = [shapely.box(0, 0, 1, 1)]
        return pd.concat([g, extra], ignore_index=True)
    rewrite_layer(root, "subareas", f)
    reseal(root)


@case("SUBAREA-TOTALS")
def subarea_population_wrong(root, ctx):
    def f(g):
        g.loc[0, "JINKO"] = g.loc[0, "JINKO"] + 1000
        return g
    rewrite_layer(root, "subareas", f)
    reseal(root)


@case("SUBAREA-GEOMETRY")
def dissolved_geometry_wrong(root, ctx):
    def f(g):
        g.loc[0, "geometry"] = g.geometry.iloc[0].buffer(-300)
        return g
    rewrite_layer(root, "subareas", f)
    reseal(root)


# ---- geometry
@case("GEOM-OVERLAP")
def blocks_overlap(root, ctx):
    def f(g):
        g.loc[10, "geometry"] = g.geometry.iloc[10].buffer(300)
        return g
    rewrite_layer(root, "townblocks", f)
    reseal(root)


@case("GEOM-INVALID")
def block_bow_tie(root, ctx):
    def f(g):
        x0, y0, x1, y1 = g.geometry.iloc[12].bounds
        g.loc[12, "geometry"] = shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])
        return g
    rewrite_layer(root, "townblocks", f)
    reseal(root)


@case("GEOM-GAP", outline=True)
def block_dropped_leaves_gap(root, ctx):
    b = ctx.plan.blocks
    rebuild(root, unchecked_plan(ctx.plan, blocks=b.drop(index=b.geometry.area.idxmax()).reset_index(drop=True)))


@case("GEOM-OUTSIDE", outline="shrunk")
def block_outside_outline(root, ctx):
    return None


# ---- spill
@case("SPILL-SUMMARY")
def spill_summary_doctored(root, ctx):
    p = root / "spill" / "spill.json"
    s = json.loads(p.read_text(encoding="utf-8"))
    s["subareas"][0]["core_share"] = 0.99
    p.write_text(json.dumps(s, ensure_ascii=False), encoding="utf-8")
    reseal(root)


class Ctx:
    def __init__(self, plan, tmp):
        self.plan, self.tmp = plan, tmp


def test_corpus_is_large_and_covers_every_error_rule():
    assert len(CASES) >= 30
    covered = {rule for _, rule, _, _ in CASES.values()}
    not_covered = {r for r, (sev, _) in RULES.items() if sev == "error"} - covered
    assert not_covered == {"INTERNAL-ERROR"}, not_covered


@pytest.mark.parametrize("name", sorted(CASES))
def test_broken_package(name, base_package, base_plan, outline_file, tmp_path, monkeypatch):
    fn, rule, status, vkw = CASES[name]
    root = tmp_path / "pkg"
    shutil.copytree(base_package, root)
    target = fn(root, Ctx(base_plan, tmp_path)) or root
    args = ["validate", str(target), "--json", str(tmp_path / "report.json"), "--quiet"]
    if vkw.get("outline") is True:
        args += ["--outline", str(outline_file)]
    elif vkw.get("outline") == "shrunk":
        b = base_plan.blocks
        keep = b.drop(index=b.geometry.area.idxmax())
        shrunk = tmp_path / "shrunk.gpkg"
        gpd.GeoDataFrame(geometry=[shapely.union_all(keep.geometry.values)], crs=b.crs).to_file(shrunk)
        args += ["--outline", str(shrunk)]
    if vkw.get("profile") == "require_manifest":
        prof = tmp_path / "carrier.toml"
        prof.write_text("[validation]\nrequire_manifest = true\n", encoding="utf-8")
        args += ["--profile", str(prof)]
    # everything validate writes must go to a temporary folder that is removed afterwards
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    before = sorted(p for p in tmp_path.rglob("*") if p != tmp_path / "report.json")
    got = main(args)
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    rules = {f["rule"]: f for f in report["findings"]}
    assert rule in rules, (name, report["findings"])
    assert "INTERNAL-ERROR" not in rules, rules["INTERNAL-ERROR"]
    assert rules[rule]["severity"] == "error"
    assert got == status == report["status"], (name, report["findings"])
    assert rules[rule]["fix"] == CORE_RULES[rule].fix != ""         # every finding carries its fix line
    # the finding speaks Japanese: its message is a catalogue template (docs/i18n.md), not English
    ja = translate_text(rules[rule]["message"], "ja")
    assert ja != rules[rule]["message"], f"no Japanese template in subdivide.po for {rules[rule]['message']!r}"
    assert report["readable"] == (status != 2)
    assert (status == 2) == any(r in FATAL_RULES for r in rules)
    after = sorted(p for p in tmp_path.rglob("*") if p != tmp_path / "report.json")
    assert after == before
    assert list(scratch.iterdir()) == []
    assert not (tmp_path.parent / "evil.txt").exists() and not Path("/srv/subdivide-evil.txt").exists()


# ============================================================================ good packages
def test_base_package_is_clean(base_package, outline_file):
    r = validate_package(base_package, outline=outline_file)
    assert r.status == 0 and r.errors == [], r.table()
    assert r.summary["n_townblocks"] == 85 and len(r.summary["subareas"]) == 3
    assert r.table().splitlines()[-1].startswith("CLEAN")


def test_zip_and_single_top_folder_accepted(base_package, tmp_path):
    z = tmp_path / "p.zip"
    z.write_bytes(zip_directory(base_package))
    assert validate_package(z).status == 0
    nested = tmp_path / "outer"
    shutil.copytree(base_package, nested / "hanamaki")
    with zipfile.ZipFile(tmp_path / "n.zip", "w") as zf:
        for p in sorted(nested.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(nested).as_posix())
    assert validate_package(tmp_path / "n.zip").status == 0


def test_spill_thresholds_warn_not_fail(base_package):
    strict = validate_package(base_package, target_share=0.99)
    assert strict.status == 0 and {"SPILL-CIRCLE", "SPILL-CORE"} <= strict.rules()
    assert all(f.severity == "warning" for f in strict.findings if f.rule.startswith("SPILL-"))
    lax = validate_package(base_package, target_share=0.01, spill_km=[0.1])
    assert not {"SPILL-CIRCLE", "SPILL-CORE"} & lax.rules()


def test_island_exception_in_manifest_accepted(base_package, base_plan, tmp_path):
    root = tmp_path / "pkg"
    b = base_plan.blocks.copy()
    d = base_plan.dissolved
    mine = b[b["subarea"] == d["subarea"].iloc[0]]
    far = mine.geometry.distance(d.geometry.iloc[1]).idxmax()
    b.loc[far, "subarea"] = d["subarea"].iloc[1]
    build_package(unchecked_plan(base_plan, blocks=b), root, spill=False, review_map=False)
    assert "CONTIGUITY" in validate_package(root).rules()
    edit_manifest(root, lambda m: m.update(island_exceptions=[b.loc[far, "key"]]))
    r = validate_package(root)
    assert "CONTIGUITY" not in r.rules() and "CONTIGUITY-ISLAND" in r.rules() and r.status == 0


def test_carrier_footprint_report(base_package, base_plan, tmp_path):
    from subdivide.analysis.sites import coverage_from_sites, synthetic_sites

    outline = shapely.union_all(base_plan.blocks.geometry.values)
    sites = synthetic_sites(gpd.GeoSeries([outline], crs=base_plan.crs), isd_km=8, seed=3)
    cov = coverage_from_sites(sites, crs=base_plan.crs).drop(columns=["nominal"])
    path = tmp_path / "cells.gpkg"
    cov.to_file(path, driver="GPKG")
    out = tmp_path / "r.json"
    assert main(["validate", str(base_package), "--coverage", str(path), "--json", str(out), "--quiet"]) == 0
    rep = json.loads(out.read_text(encoding="utf-8"))
    fp = pd.DataFrame(rep["footprint"]["footprints"])
    assert set(fp["subarea"]) == set(base_plan.subareas["subarea"])
    assert (fp["footprint_km2"] >= fp["subarea_km2"] - fp["under_alert_km2"] - 1e-6).all()
    assert sum(f["rule"] == "COVERAGE-FOOTPRINT" for f in rep["findings"]) == len(fp)


def test_custom_limits_reject_oversized_package(base_package):
    with pytest.raises(PackageRejected) as exc:
        with stage_package(base_package, limits=Limits(max_total_bytes=10_000)):
            pass
    assert exc.value.findings[0].rule == "PKG-TOO-LARGE"


def test_rules_documented():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "validation.md").read_text(encoding="utf-8")
    missing = [r for r in RULES if f"`{r}`" not in doc]
    assert not missing


# ============================================================================ invariants
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pos=st.integers(0, 200), value=st.integers(0, 255), cut=st.integers(0, 400))
def test_dbf_header_fuzz_never_crashes(base_package, tmp_path_factory, pos, value, cut):
    """Any byte flipped or file truncated: read_dbf_header returns or raises DbfError."""
    data = bytearray((base_package / "subareas.dbf").read_bytes())
    pos %= len(data)
    data[pos] = value
    data = data[: len(data) - cut]
    p = tmp_path_factory.getbasetemp() / "fuzz.dbf"
    p.write_bytes(bytes(data))
    try:
        h = read_dbf_header(p)
    except DbfError:
        return
    assert h.header_length + h.n_records * h.record_length in (len(data), len(data) - 1)


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(st.sampled_from(["a", "..", ".", "b.csv", "C:", "x\\y", "", "/"]), min_size=1, max_size=5))
def test_member_names_outside_the_root_always_rejected(parts):
    """A member name is accepted only if it resolves inside the staging folder."""
    from subdivide.io.safezip import member_name_findings

    name = "/".join(parts)
    info = zipfile.ZipInfo(name if name else "a")
    unsafe = bool(member_name_findings(info))
    root = Path("/stage")
    escapes = ".." in Path(info.orig_filename).parts or info.orig_filename.startswith("/") \
        or not os.path.normpath(root / info.orig_filename).startswith(str(root))
    if escapes:
        assert unsafe


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(member=st.sampled_from(["townblocks.shp", "townblocks.shx", "townblocks.dbf", "subareas.shp",
                               "package.gpkg", "area_codes.xlsx", "spill/spill.json"]),
       flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=6))
def test_corrupted_bytes_give_findings_never_a_crash(base_package, tmp_path_factory, member, flips):
    """Random byte corruption of any file (manifest resealed): findings, never an exception
    and never the INTERNAL-ERROR safety net."""
    root = tmp_path_factory.mktemp("fuzz") / "pkg"
    shutil.copytree(base_package, root)
    data = bytearray((root / member).read_bytes())
    for where, value in flips:
        data[int(where * len(data))] = value
    (root / member).write_bytes(bytes(data))
    reseal(root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = validate_package(root)
    assert report.status in (0, 1, 2)
    assert "INTERNAL-ERROR" not in report.rules()
    assert json.loads(report.to_json())["status"] == report.status


# ============================================================================ review pass: carrier conveniences
def _zip_tree(src: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(src.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(src).as_posix())
    return target


def test_single_top_folder_is_noted_and_macos_metadata_ignored(base_package, tmp_path):
    outer = tmp_path / "outer"
    shutil.copytree(base_package, outer / "hanamaki")
    (outer / "__MACOSX" / "hanamaki").mkdir(parents=True)
    (outer / "__MACOSX" / "hanamaki" / "._manifest.json").write_bytes(b"\x00\x05\x16\x07")
    r = validate_package(_zip_tree(outer, tmp_path / "finder.zip"))
    assert r.status == 0, r.table()
    notes = [f for f in r.findings if f.rule == "PKG-NESTED-FOLDER"]
    assert len(notes) == 1 and notes[0].severity == "info"
    assert notes[0].features == ("hanamaki/", "__MACOSX/") and "__MACOSX" in notes[0].message
    assert "PKG-NESTED-FOLDER" not in FATAL_RULES


def test_manifest_one_folder_too_deep_is_named(base_package, tmp_path):
    outer = tmp_path / "outer"
    shutil.copytree(base_package, outer / "a" / "b")
    r = validate_package(_zip_tree(outer, tmp_path / "deep.zip"))
    f = next(f for f in r.findings if f.rule == "MANIFEST-MISSING")
    assert "a/b/manifest.json" in f.features and "a/b/manifest.json" in f.message


def test_renamed_list_reported_once_with_its_new_name(base_package, tmp_path):
    root = tmp_path / "pkg"
    shutil.copytree(base_package, root)
    (root / "townblock_list.csv").rename(root / "Townblock_List.csv")
    r = validate_package(root)
    missing = [f for f in r.findings if f.rule == "MANIFEST-FILE-MISSING"]
    assert len(missing) == 1, r.table()
    assert missing[0].features == ("townblock_list.csv", "Townblock_List.csv")
    assert "renamed to Townblock_List.csv" in missing[0].message


def test_excel_dropped_leading_zeros_are_explained(base_package, tmp_path):
    root = tmp_path / "pkg"
    shutil.copytree(base_package, root)
    edit_csv(root / "townblock_list.csv", lambda df: df.assign(**{df.columns[0]: df.iloc[:, 0].str.lstrip("0")}))
    edit_csv(root / "subarea_list.csv", lambda df: df.assign(**{df.columns[0]: df.iloc[:, 0].str.lstrip("0")}))
    reseal(root)
    r = validate_package(root)
    blk = next(f for f in r.findings if f.rule == "BLOCK-NOT-IN-SHP")
    assert "leading zeros dropped" in blk.message and blk.features[0].isdigit()
    sub = next(f for f in r.findings if f.rule == "LIST-MISMATCH" and "sub-area CSV" in f.message)
    assert "leading zeros dropped" in sub.message


def test_cli_validates_several_packages(base_package, tmp_path, capsys):
    bad = tmp_path / "bad"
    shutil.copytree(base_package, bad)
    (bad / "stray.txt").write_text("x", encoding="utf-8")
    report = tmp_path / "reports.json"
    assert main(["validate", str(base_package), str(bad), "--quiet", "--json", str(report)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split(":")[0] for ln in lines] == ["CLEAN", "ERRORS FOUND"]
    data = json.loads(report.read_text(encoding="utf-8"))
    assert [d["status"] for d in data] == [0, 1] and data[1]["package"] == str(bad)
    assert main(["validate", str(base_package), str(tmp_path / "nope.zip"), "--json", "-"]) == 2
    out = capsys.readouterr()
    assert [d["status"] for d in json.loads(out.out)] == [0, 2]
    assert "2 packages:" in out.err
    # one package: the JSON report stays a single object
    assert main(["validate", str(base_package), "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == 0


def test_help_examples_use_files_that_exist_or_are_made_first():
    """Every file named in the examples of the carrier-side commands exists in the repo or is
    written by an earlier example line (after `subdivide plan … --out hanamaki.plan.gpkg`)."""
    import importlib
    import re as _re
    import shlex

    repo = Path(__file__).resolve().parents[1]
    for name in ("spill", "coverage", "package", "validate", "registry"):
        ex = importlib.import_module(f"subdivide.cli.commands.{name}").EXAMPLE
        made = {"hanamaki.plan.gpkg", "hanamaki-package.zip", "pkg", "pkg.zip", "coverage.gpkg"}
        for line in ex.replace("\\\n", " ").splitlines():
            line = line.split("#")[0].strip()
            if not line:
                continue
            words = shlex.split(line)
            outs = {words[i + 1].rstrip("/") for i, w in enumerate(words[:-1])
                    if w in ("--out", "--sites-out", "--json", "--db")}
            for w in words:
                w = w.rstrip("/")
                if _re.search(r"\.(csv|toml|geojson|gpkg|zip|tif|shp)$", w) and w not in outs:
                    assert w in made or (repo / w).exists(), f"{name} --help example names missing {w}"
            made |= outs


def test_cli_refuses_existing_json_before_validating_and_bad_target_share(base_package, tmp_path, capsys):
    report = tmp_path / "r.json"
    report.write_text("{}", encoding="utf-8")
    assert main(["validate", str(base_package), "--json", str(report)]) == 2
    out = capsys.readouterr()
    assert "already exists" in out.err and "CLEAN" not in out.out   # refused before the (long) validation
    assert main(["validate", str(base_package), "--target-share", "5"]) == 2
    assert "--target-share" in capsys.readouterr().err


@pytest.mark.parametrize("mutate, rule", [
    (lambda m: m.update(options=[1]), "MANIFEST-INVALID"),
    (lambda m: m.update(profile="carrier-a"), "MANIFEST-INVALID"),
    (lambda m: m.update(island_exceptions=5), "MANIFEST-INVALID"),
    (lambda m: m.update(island_exceptions=[{"a": 1}]), "MANIFEST-INVALID"),
    (lambda m: m["municipality"].update(code="00000"), "MUNI-CODE"),
])
def test_manifest_wrong_types_are_findings_not_internal_errors(base_package, tmp_path, mutate, rule):
    root = tmp_path / "pkg"
    shutil.copytree(base_package, root)
    edit_manifest(root, mutate)
    r = validate_package(root)
    assert "INTERNAL-ERROR" not in r.rules(), r.table()
    assert [f.rule for f in r.errors] == [rule], r.table()   # one finding; the other checks still ran


def test_prj_zone_rule_knows_the_prefectures_with_several_zones():
    from subdivide.carrier.validation import _jgd_zone, allowed_zones
    from pyproj import CRS

    assert allowed_zones("03205") == {10}
    assert allowed_zones("13421") == {9, 14, 18, 19}       # 東京都 小笠原村
    assert allowed_zones("47201") == {15, 16, 17}
    assert _jgd_zone(CRS(6678)) == 10 and _jgd_zone(CRS(2451)) == 9
    assert _jgd_zone(CRS.from_wkt(CRS(6678).to_wkt("WKT1_ESRI"))) == 10
    assert _jgd_zone(CRS(3857)) is None


def test_gpkg_assignment_mismatch_names_the_blocks(base_package, tmp_path):
    root = tmp_path / "pkg"
    shutil.copytree(base_package, root)
    gpkg_assignment_differs(root, None)
    r = validate_package(root)
    found = [f for f in r.findings if f.rule == "GPKG-MISMATCH"]
    assert found and any("AREA_NO" in f.message for f in found)
    first = pyogrio.read_dataframe(root / "package.gpkg", layer="townblocks")["KEY_CODE"].iloc[0]
    assert any(first in f.features for f in found)
