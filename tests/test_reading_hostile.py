"""Hostile and damaged town-block files, through the CLI (issue 10 §3/§4).

Every case is derived at test time from real files — the whole 鳥取県 e-Stat 2015 file in
../shared/data and the bundled 花巻 sample — by byte copies and byte edits (a truncated
.shp, a DBF count field rewritten as text, a wrong .prj, a FIFO in place of a file …).
Each must end with exit status 2 and a message naming what, where and the fix, no
traceback, and no output on stdout; the cases that are accepted (secrecy marks, a UTF-8
.dbf without .cpg, a .cpg with a BOM) must say what they did.
"""
from __future__ import annotations

import json
import os
import shutil
import threading
import zipfile
from pathlib import Path

import numpy as np
import pyogrio
import pytest
from conftest import SAMPLE_SHP, SHARED_DATA, need

from subdivide.cli.main import main
from subdivide.io.dbf import read_dbf_header, rewrite_field
from subdivide.testing.synthetic import write_estat_shapefile

TOTTORI = SHARED_DATA / "tottori_31_estat2015" / "h27ka31.shp"
IWAMI = "31302"          # 岩美町: 56 records, E1/E2 parts and islands


def copy_shapefile(shp: Path, dest: Path, stem: str | None = None) -> Path:
    """Byte copy of a Shapefile and its companions into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    stem = stem or shp.stem
    for p in sorted(shp.parent.glob(shp.stem + ".*")):
        if p.suffix.lower() in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
            shutil.copyfile(p, dest / (stem + p.suffix))
    return dest / (stem + ".shp")


@pytest.fixture(scope="module")
def tottori() -> Path:
    return need(TOTTORI, "鳥取県 e-Stat 2015 town-block file")


@pytest.fixture(scope="module")
def iwami_raw(tottori):
    """The real records and polygons of 岩美町, as read from the 鳥取県 file."""
    raw = pyogrio.read_dataframe(tottori, encoding="cp932")
    return raw[raw["CITY"] == IWAMI[2:]].reset_index(drop=True)


@pytest.fixture(scope="module")
def iwami_shp(iwami_raw, tmp_path_factory) -> Path:
    """岩美町 as e-Stat ships it (legacy layout, CP932, no .cpg, JGD2000)."""
    return write_estat_shapefile(iwami_raw, tmp_path_factory.mktemp("iwami") / "h27ka31302.shp",
                                 layout="2015_legacy")


def info(capsys, *argv) -> tuple[int, str, str]:
    status = main(["info", *map(str, argv)])
    out, err = capsys.readouterr()
    return status, out, err


def refused(capsys, *argv, needles=()) -> str:
    """Exit 2, nothing on stdout, a what/where/fix message, no traceback."""
    status, out, err = info(capsys, *argv)
    assert status == 2, (out, err)
    assert out == "" and "Traceback" not in err
    assert err.startswith("subdivide info: error: ")
    assert "\n  where: " in err and "\n  fix:   " in err, err
    for n in needles:
        assert n in err, err
    return err


def info_json(capsys, *argv) -> dict:
    status, out, err = info(capsys, *argv, "--json")
    assert status == 0, err
    return json.loads(out)


# --------------------------------------------------------------------------- truncated files


def test_truncated_shp_of_the_whole_prefecture_is_an_error(tottori, tmp_path, capsys):
    shp = copy_shapefile(tottori, tmp_path)
    data = shp.read_bytes()
    shp.write_bytes(data[: len(data) * 2 // 3])          # an interrupted copy
    err = refused(capsys, shp, needles=("the .shp is truncated", str(shp), "download the Shapefile again"))
    assert "of the 2,504 indexed records are complete" in err


def test_shp_cut_inside_the_last_record_is_an_error(iwami_shp, tmp_path, capsys):
    shp = copy_shapefile(iwami_shp, tmp_path)
    with open(shp, "r+b") as fh:
        fh.truncate(shp.stat().st_size - 10)
    refused(capsys, shp, needles=("truncated", "record 56 onwards is missing"))


def test_truncated_shx_and_dbf_are_errors(iwami_shp, tmp_path, capsys):
    shp = copy_shapefile(iwami_shp, tmp_path / "shx")
    shx = shp.with_suffix(".shx")
    shx.write_bytes(shx.read_bytes()[:-8 * 5])
    refused(capsys, shp, needles=("the .shx indexes 51 records but the .dbf holds 56",))
    shp = copy_shapefile(iwami_shp, tmp_path / "dbf")
    dbf = shp.with_suffix(".dbf")
    dbf.write_bytes(dbf.read_bytes()[:-500])
    refused(capsys, shp, needles=("the .dbf is truncated", "56 records"))


def test_truncated_shp_inside_a_zip_is_an_error(iwami_shp, tmp_path, capsys):
    shp = copy_shapefile(iwami_shp, tmp_path / "src")
    with open(shp, "r+b") as fh:
        fh.truncate(shp.stat().st_size // 2)
    z = tmp_path / "h27ka31302.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(shp.parent.iterdir()):
            zf.write(p, p.name)
    refused(capsys, z, needles=("truncated", "h27ka31302.zip!h27ka31302.shp"))


def test_intact_copy_reads_the_same_figures(tottori, tmp_path, capsys):
    """The control: a byte copy of the prefecture file reads in full."""
    d = info_json(capsys, copy_shapefile(tottori, tmp_path), "--muni", IWAMI)
    assert d["records_in"] == 2504 and d["muni_codes"] == [IWAMI]


# --------------------------------------------------------------------------- counts


def _counts_as_text(shp: Path, marks: dict[int, str], column: str = "JINKO") -> Path:
    """Rewrite a count field as text (C), as a spreadsheet round-trip does, with ``marks`` at
    the given records and the real figures elsewhere."""
    real = pyogrio.read_dataframe(shp, columns=[column], read_geometry=False, encoding="cp932")[column]
    rewrite_field(shp.with_suffix(".dbf"), column,
                  [marks.get(i, str(int(v))) for i, v in enumerate(real)], as_text=True)
    return shp


def _single_part_records(raw, n: int) -> list[int]:
    """Records of populated town-blocks that are not multi-part (their count is their block's)."""
    ok = (raw["KIGO_E"].fillna("") == "") & (raw["JINKO"] > 0) & (raw["HCODE"] == 8101)
    return list(np.flatnonzero(ok.to_numpy())[:n])


def test_secrecy_marks_are_unknown_with_a_warning_and_a_count(iwami_shp, iwami_raw, tmp_path, capsys):
    base = info_json(capsys, iwami_shp)
    rows = _single_part_records(iwami_raw, 5)
    marks = dict(zip(rows, ["X", "-", "…", "＊", "ｘ"]))
    shp = _counts_as_text(copy_shapefile(iwami_shp, tmp_path), marks)
    d = info_json(capsys, shp)
    assert d["unknown"]["population"] == 5 and d["unknown"]["households"] == 0
    withheld = int(iwami_raw.loc[rows, "JINKO"].sum())
    assert d["totals"]["population"] == base["totals"]["population"] - withheld
    assert d["totals"]["households"] == base["totals"]["households"]
    assert d["blocks_out"] == base["blocks_out"]
    assert any("5 town-blocks have an unknown population" in w and "5 withheld" in w for w in d["warnings"])
    status, out, _ = info(capsys, shp)
    assert status == 0 and "(+ 5 town-blocks unknown" in out


def test_secrecy_mark_on_the_first_part_makes_the_unit_unknown(iwami_shp, iwami_raw, tmp_path, capsys):
    e1 = int(np.flatnonzero((iwami_raw["KIGO_E"] == "E1").to_numpy())[0])
    shp = _counts_as_text(copy_shapefile(iwami_shp, tmp_path), {e1: "X"})
    from subdivide.io.townblocks import read_townblocks

    blocks, rep = read_townblocks(shp)
    key = iwami_raw.loc[e1, "KEY_CODE"]
    row = blocks.set_index("key").loc[key]
    assert row["population_unknown"] and row["population"] == 0 and not row["households_unknown"]
    assert rep.unknown["population"] == 1 and blocks["population_unknown"].sum() == 1


@pytest.mark.slow
def test_unknown_counts_flow_through_plan_and_package(iwami_shp, iwami_raw, tmp_path, capsys):
    """Sums downstream are the known figures: the plan's populations add up to the reader's
    total, and the package and map are written (unknown counts are 0 there, flagged)."""
    import pandas as pd

    from subdivide.io.townblocks import read_townblocks
    from subdivide.model.plan import Plan

    shp = _counts_as_text(copy_shapefile(iwami_shp, tmp_path / "in"), {r: "X" for r in _single_part_records(iwami_raw, 3)})
    blocks, rep = read_townblocks(shp)
    west = blocks.geometry.centroid.x < blocks.geometry.centroid.x.median()
    plan = Plan.from_assignment(blocks, pd.Series(np.where(west, "西", "東"), index=blocks["key"]))
    assert int(plan.metrics["population"].sum()) == rep.totals["population"]
    plan.save(tmp_path / "plan.gpkg")
    assert main(["package", str(tmp_path / "plan.gpkg"), "--out", str(tmp_path / "pkg")]) == 0, capsys.readouterr()
    assert main(["map", str(tmp_path / "plan.gpkg"), "-o", str(tmp_path / "map.html")]) == 0, capsys.readouterr()


@pytest.mark.parametrize("value, needle", [("abc", "neither counts nor e-Stat marks"),
                                           ("-12", "negative counts"),
                                           ("1.5", "non-integral counts")])
def test_other_bad_counts_are_errors_naming_the_records(iwami_shp, iwami_raw, tmp_path, capsys, value, needle):
    rows = _single_part_records(iwami_raw, 2)
    shp = _counts_as_text(copy_shapefile(iwami_shp, tmp_path), {r: value for r in rows}, column="SETAI")
    err = refused(capsys, shp, needles=(needle, "SETAI", f"record {rows[0] + 1} ({value!r})",
                                        f"record {rows[1] + 1}"))
    assert "whole numbers" in err or "cannot be negative" in err


def test_secrecy_marks_in_a_geojson_with_mapped_columns(iwami_raw, tmp_path, capsys):
    g = iwami_raw[["KEY_CODE", "MOJI", "JINKO", "KIGO_E", "HCODE", "geometry"]].copy()
    g["JINKO"] = g["JINKO"].astype(str)
    rows = _single_part_records(iwami_raw, 2)
    g.loc[rows, "JINKO"] = ["X", "…"]
    p = tmp_path / "iwami.geojson"
    g.to_file(p, driver="GeoJSON")
    d = info_json(capsys, p, "--key", "KEY_CODE", "--name", "MOJI", "--population", "JINKO", "--muni", IWAMI)
    assert d["unknown"]["population"] == 2
    assert d["totals"]["population"] == int(iwami_raw["JINKO"].sum() - iwami_raw.loc[rows, "JINKO"].sum())


# --------------------------------------------------------------------------- text encoding


def test_utf8_dbf_without_cpg_is_detected_and_read_as_utf8(iwami_raw, iwami_shp, tmp_path, capsys):
    shp = write_estat_shapefile(iwami_raw, tmp_path / "utf8.shp", layout="2015_legacy", cpg="UTF-8")
    shp.with_suffix(".cpg").unlink()
    d = info_json(capsys, shp)
    assert d["encoding"] == "utf-8" and "valid UTF-8" in d["encoding_reason"]
    assert any("UTF-8" in f for f in d["fallbacks"])
    from subdivide.io.townblocks import read_townblocks

    a, _ = read_townblocks(shp)
    b, _ = read_townblocks(iwami_shp)
    assert a["name"].tolist() == b["name"].tolist() and set(a["GST_NAME"]) == {"岩美郡"} and set(a["CSS_NAME"]) == {"岩美町"}


@pytest.mark.parametrize("cpg", ["\ufeffUTF-8", "\ufeffUTF-8\r\n", " utf-8 \n"])
def test_cpg_with_a_bom_or_blanks_is_accepted(iwami_raw, tmp_path, capsys, cpg):
    shp = write_estat_shapefile(iwami_raw, tmp_path / "bom.shp", layout="2015_legacy", cpg="UTF-8")
    shp.with_suffix(".cpg").write_bytes(cpg.encode("utf-8"))
    d = info_json(capsys, shp)
    assert d["encoding"] == "utf-8" and ".cpg says" in d["encoding_reason"]


def test_cp932_cpg_with_bom_on_the_real_sample(tmp_path, capsys):
    shp = copy_shapefile(need(SAMPLE_SHP, "花巻 sample"), tmp_path)
    shp.with_suffix(".cpg").write_bytes("\ufeffCP932".encode("utf-8"))
    d = info_json(capsys, shp)
    assert d["encoding"] == "cp932" and d["blocks_out"] == 463 and d["totals"]["population"] == 97_702


def test_unknown_cpg_is_an_error(iwami_shp, tmp_path, capsys):
    shp = copy_shapefile(iwami_shp, tmp_path)
    shp.with_suffix(".cpg").write_text("KLINGON-1")
    refused(capsys, shp, needles=("the .cpg says 'KLINGON-1'", "--encoding cp932"))


# --------------------------------------------------------------------------- plane-rectangular zone


def _projected(iwami_raw, tmp_path: Path, epsg_data: int, epsg_prj: int) -> Path:
    """岩美町 projected to ``epsg_data``, written with the .prj of ``epsg_prj``."""
    shp = write_estat_shapefile(iwami_raw.to_crs(epsg=epsg_data), tmp_path / f"z{epsg_prj}.shp",
                                layout="2015_legacy")
    from pyproj import CRS

    shp.with_suffix(".prj").write_text(CRS.from_epsg(epsg_prj).to_wkt("WKT1_ESRI"))
    return shp


def test_prj_with_the_right_zone_reads(iwami_raw, tmp_path, capsys):
    d = info_json(capsys, _projected(iwami_raw, tmp_path, 6673, 6673))
    assert "6673" in d["crs_in"] and d["records_in"] == 56


@pytest.mark.parametrize("wrong", [6678, 6674, 6672])      # zone X, VI, IV
def test_prj_with_a_wrong_zone_names_the_right_one(iwami_raw, tmp_path, capsys, wrong):
    err = refused(capsys, _projected(iwami_raw, tmp_path, 6673, wrong),
                  needles=("X_CODE/Y_CODE", "they fit zone V (JGD2011, EPSG:6673)", "--crs EPSG:6673"))
    assert f"EPSG:{wrong}" in err


def test_jgd2000_prj_with_a_wrong_zone(iwami_raw, tmp_path, capsys):
    refused(capsys, _projected(iwami_raw, tmp_path, 2447, 2452),
            needles=("zone X (JGD2000, EPSG:2452)", "zone V (JGD2000, EPSG:2447)"))


# --------------------------------------------------------------------------- file-system faults


def _no_hang(capsys, *argv) -> str:
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("err", refused(capsys, *argv)), daemon=True)
    t.start()
    t.join(30)
    assert not t.is_alive(), "reading a FIFO hung"
    return result["err"]


def test_fifo_given_as_the_file_does_not_hang(tmp_path, capsys):
    fifo = tmp_path / "h27ka31.shp"
    os.mkfifo(fifo)
    err = _no_hang(capsys, fifo)
    assert "not a regular file" in err and str(fifo) in err


def test_fifo_as_a_companion_does_not_hang(iwami_shp, tmp_path, capsys):
    shp = copy_shapefile(iwami_shp, tmp_path)
    shp.with_suffix(".dbf").unlink()
    os.mkfifo(shp.with_suffix(".dbf"))
    err = _no_hang(capsys, shp)
    assert ".dbf" in err and "not a regular file" in err


def test_fifo_zip_does_not_hang(tmp_path, capsys):
    fifo = tmp_path / "r2ka31.zip"
    os.mkfifo(fifo)
    _no_hang(capsys, fifo)


def test_directory_is_an_error_naming_a_file_inside(iwami_shp, tmp_path, capsys):
    refused(capsys, iwami_shp.parent, needles=("is a folder", "h27ka31302.shp"))
    d = tmp_path / "blocks.shp"
    d.mkdir()
    refused(capsys, d, needles=("is a folder",))


@pytest.mark.parametrize("name, text", [("blocks.csv", "KEY_CODE,JINKO\n312020010,5\n"),
                                        ("blocks.geojson", '{"type": "FeatureCollection", "features": '
                                         '[{"type": "Feature", "geometry": null, "properties": {"a": 1}}]}')])
def test_a_table_without_geometry_is_an_error_not_a_crash(tmp_path, capsys, name, text):
    """A CSV (or a layer with no geometry) given as the town-block file: exit 2, no traceback."""
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    refused(capsys, p, needles=("the file has no geometry",))


def test_too_long_a_name_is_an_error(tmp_path, capsys):
    refused(capsys, tmp_path / ("町" * 100 + ".shp"), needles=("too long",))


def test_a_file_used_as_a_folder_is_an_error(iwami_shp, capsys):
    refused(capsys, iwami_shp / "h27ka31302.shp", needles=("cannot be opened", "Not a directory"))


def test_unreadable_file_is_an_error(iwami_shp, tmp_path, capsys):
    """As root, the command runs with the permission-override capabilities dropped (setpriv),
    as an ordinary user would."""
    import shutil
    import subprocess
    import sys

    shp = copy_shapefile(iwami_shp, tmp_path)
    shp.chmod(0)
    if os.geteuid() != 0:
        refused(capsys, shp, needles=("cannot be read", "permission"))
        return
    assert shutil.which("setpriv"), "setpriv (util-linux) is needed to test permissions as root"
    caps = "-dac_override,-dac_read_search,-fowner"
    r = subprocess.run(["setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}", "--", sys.executable, "-m",
                        "subdivide", "info", str(shp)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert "cannot be read" in r.stderr and "ermission" in r.stderr


def test_unreadable_companion_is_an_error(iwami_shp, tmp_path, capsys):
    """A .dbf that is a dangling symlink (its target is gone)."""
    shp = copy_shapefile(iwami_shp, tmp_path)
    shp.with_suffix(".dbf").unlink()
    shp.with_suffix(".dbf").symlink_to(tmp_path / "gone.dbf")
    refused(capsys, shp, needles=(".dbf", "does not exist"))


# --------------------------------------------------------------------------- zips


def _zip(tmp_path: Path, members: dict[str, bytes], method=zipfile.ZIP_DEFLATED) -> Path:
    z = tmp_path / "in.zip"
    with zipfile.ZipFile(z, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return z


def test_zip_with_path_traversal_is_refused(iwami_shp, tmp_path, capsys):
    members = {f"../{p.name}": p.read_bytes() for p in sorted(iwami_shp.parent.glob("h27ka31302.*"))}
    refused(capsys, _zip(tmp_path, members), needles=("cannot be read safely", "ZIP-PATH-TRAVERSAL"))


def test_zip_bomb_is_refused_before_reading(iwami_shp, tmp_path, capsys):
    members = {p.name: p.read_bytes() for p in sorted(iwami_shp.parent.glob("h27ka31302.*"))}
    members["h27ka31302.dbf"] = members["h27ka31302.dbf"] + b"\x00" * (64 << 20)
    refused(capsys, _zip(tmp_path, members, zipfile.ZIP_BZIP2), needles=("ZIP-COMPRESSION-RATIO",))


def test_safe_zip_reads_like_the_shapefile(iwami_shp, tmp_path, capsys):
    members = {p.name: p.read_bytes() for p in sorted(iwami_shp.parent.glob("h27ka31302.*"))}
    a = info_json(capsys, _zip(tmp_path, members))
    b = info_json(capsys, iwami_shp)
    assert (a["blocks_out"], a["totals"]) == (b["blocks_out"], b["totals"])


def test_dbf_header_of_fixtures_is_sane(iwami_shp):
    assert read_dbf_header(iwami_shp.with_suffix(".dbf")).n_records == 56


def _mapped_projected(iwami_raw, tmp_path: Path, epsg_data: int, epsg_prj: int) -> Path:
    """岩美町 without X_CODE/Y_CODE (a mapped layer), projected to ``epsg_data``, .prj of ``epsg_prj``."""
    from pyproj import CRS

    g = iwami_raw[["KEY_CODE", "MOJI", "JINKO", "KIGO_E", "HCODE", "geometry"]].to_crs(epsg=epsg_data)
    p = tmp_path / f"m{epsg_prj}.shp"
    g.to_file(p, encoding="cp932")
    p.with_suffix(".prj").write_text(CRS.from_epsg(epsg_prj).to_wkt("WKT1_ESRI"))
    return p


MAPPED = ["--key", "KEY_CODE", "--name", "MOJI", "--population", "JINKO"]


def test_mapped_layer_with_a_wrong_zone_is_checked_against_its_prefecture(iwami_raw, tmp_path, capsys):
    """No X_CODE/Y_CODE: the municipality codes (from KEY_CODE) place the data in 鳥取県."""
    d = info_json(capsys, _mapped_projected(iwami_raw, tmp_path, 6673, 6673), *MAPPED)
    assert d["blocks_out"] == 53
    refused(capsys, _mapped_projected(iwami_raw, tmp_path, 6673, 6678), *MAPPED,
            needles=("zone X (JGD2011, EPSG:6678)", "鳥取県", "they fit zone V (JGD2011, EPSG:6673)",
                     "--crs EPSG:6673"))


def test_prefecture_spanning_several_zones_is_not_second_guessed(tmp_path, capsys):
    """A 北海道 key in zone XIII (legitimate there) reads: only single-zone prefectures are checked."""
    import geopandas as gpd
    import shapely

    box = gpd.GeoSeries([shapely.box(145.50, 43.30, 145.52, 43.32)], crs=6668).to_crs(6681)   # 根室, zone XIII
    g = gpd.GeoDataFrame({"KEY_CODE": ["012230010"], "JINKO": [10]}, geometry=box.values, crs=6681)
    p = tmp_path / "nemuro.gpkg"
    g.to_file(p)
    d = info_json(capsys, p, "--key", "KEY_CODE", "--population", "JINKO")
    assert d["muni_codes"] == ["01223"] and "6681" in d["crs_in"]


def test_fifo_as_a_mapping_table_does_not_hang(iwami_shp, tmp_path, capsys):
    """User tables (mapping CSV) go through the same file check (io.tables.read_text_table)."""
    fifo = tmp_path / "mapping.csv"
    os.mkfifo(fifo)
    result = {}
    t = threading.Thread(target=lambda: result.setdefault(
        "status", main(["plan", str(iwami_shp), "--mapping", str(fifo), "--out", str(tmp_path / "p.gpkg")])),
        daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "reading a FIFO mapping table hung"
    out, err = capsys.readouterr()
    assert result["status"] == 2 and "Traceback" not in err and str(fifo) in err
    assert not (tmp_path / "p.gpkg").exists()
