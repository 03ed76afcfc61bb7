"""`subdivide info` and the reader's user errors through the CLI (exit 2, no traceback)."""
import json
import re
import shutil
from pathlib import Path

import geopandas as gpd
import pytest
from conftest import need
import shapely

from subdivide.cli.main import main
from subdivide.testing.synthetic import synthetic_estat, write_estat_shapefile

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "hanamaki_03205" / "h27ka03205.shp"


@pytest.fixture(scope="module")
def raw():
    return synthetic_estat(150, seed=21, layout="2015_legacy", crs="EPSG:4612")


@pytest.fixture(scope="module")
def shp(raw, tmp_path_factory):
    return write_estat_shapefile(raw, tmp_path_factory.mktemp("info") / "h27ka03901.shp", layout="2015_legacy")


def _copy(shp: Path, dest: Path, skip: str | None = None) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for p in shp.parent.glob(shp.stem + ".*"):
        if p.suffix != skip:
            shutil.copy(p, dest / p.name)
    return dest / shp.name


def _fails(capsys, argv, *needles):
    status = main(argv)
    out, err = capsys.readouterr()
    assert status == 2, (out, err)
    assert "Traceback" not in err and out == ""
    assert err.startswith("subdivide info: error: ")
    for n in needles:
        assert n in err, err
    return err


def test_text_report(shp, raw, capsys):
    assert main(["info", str(shp)]) == 0
    out = capsys.readouterr().out
    real = raw[(raw.HCODE == 8101) & (raw.KEY_CODE.str.len() > 2)]
    assert "layout:      2015_legacy" in out
    assert "cp932 (no .cpg and no language driver byte" in out
    assert "JGD2000" in out and "EPSG:6678" in out
    assert f"records in:  {len(raw):,}" in out
    assert "town-blocks: 150 (町丁・字)" in out
    assert f"population (人口 JINKO):  {real.JINKO.sum():,}" in out
    assert f"households (世帯 SETAI):  {real.SETAI.sum():,}" in out
    assert "water area (水面, HCODE 8154)" in out
    assert "geometry repairs: none" in out


def test_json_report(shp, raw, capsys):
    assert main(["info", str(shp), "--json", "--muni", "03901"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["layout"] == "2015_legacy" and d["encoding"] == "cp932"
    assert d["records_in"] == len(raw) and d["blocks_out"] == 150
    assert d["muni_codes"] == ["03901"]
    assert d["flags"]["multipart"] == raw.loc[raw.KIGO_E != "", "KEY_CODE"].nunique()
    assert d["totals"]["area_official_km2"] == pytest.approx(
        raw.loc[(raw.HCODE == 8101) & (raw.KEY_CODE.str.len() > 2), "AREA"].sum() / 1e6, abs=1e-3)
    assert {x["reason"].split(" (")[0] for x in d["dropped"]} == {
        "water area", "placeholder for another municipality's area"}


@pytest.mark.parametrize("ext", [".dbf", ".shx", ".prj"])
def test_missing_companion_file_is_named(shp, tmp_path, capsys, ext):
    p = _copy(shp, tmp_path, skip=ext)
    _fails(capsys, ["info", str(p)], f"has no {ext}", "fix:")


def test_missing_prj_is_fine_with_crs(shp, tmp_path, capsys):
    p = _copy(shp, tmp_path, skip=".prj")
    assert main(["info", str(p), "--crs", "EPSG:4612"]) == 0
    assert "town-blocks: 150" in capsys.readouterr().out


def test_unknown_crs_suggests_crs_option(shp, tmp_path, capsys):
    p = _copy(shp, tmp_path)
    p.with_suffix(".prj").write_text("this is not a CRS")
    _fails(capsys, ["info", str(p)], "CRS", "--crs")


def test_bad_crs_option(shp, capsys):
    _fails(capsys, ["info", str(shp), "--crs", "EPSG:99999999"], "--crs")


def test_lat_lon_file_declared_projected_is_refused(shp, tmp_path, capsys):
    """--crs EPSG:6678 on a lat/lon file read degrees as metres: exit 0 with 'area
    computed: 0.0 km²' and only a warning (the points sit near zone X's origin, in Japan)."""
    p = _copy(shp, tmp_path, skip=".prj")
    _fails(capsys, ["info", str(p), "--crs", "EPSG:6678"], "degrees", "EPSG:6668")


def test_coordinates_outside_japan(raw, tmp_path, capsys):
    p = write_estat_shapefile(raw.to_crs("EPSG:6678"), tmp_path / "plane.shp", layout="2015_legacy")
    _fails(capsys, ["info", str(p), "--crs", "EPSG:6668"], "outside Japan", "--crs")


def test_lat_lon_swapped(raw, tmp_path, capsys):
    swapped = raw.copy()
    swapped["geometry"] = shapely.transform(raw.geometry.values, lambda c: c[:, ::-1])
    p = write_estat_shapefile(swapped, tmp_path / "swapped.shp", layout="2015_legacy")
    _fails(capsys, ["info", str(p)], "swapped")


def test_duplicate_keys_that_are_not_multipart(raw, tmp_path, capsys):
    bad = raw.copy()
    singles = bad.index[(bad.KIGO_E == "") & (bad.HCODE == 8101) & (bad.KEY_CODE.str.len() > 2)]
    bad.loc[singles[4], "KEY_CODE"] = bad.loc[singles[5], "KEY_CODE"]
    p = write_estat_shapefile(bad, tmp_path / "dup.shp", layout="2015_legacy")
    _fails(capsys, ["info", str(p)], "not marked as parts", bad.loc[singles[5], "KEY_CODE"])


def test_empty_layer(raw, tmp_path, capsys):
    p = tmp_path / "empty.gpkg"
    raw.iloc[:0].to_file(p, layer="blocks")
    _fails(capsys, ["info", str(p)], "empty")


def test_non_polygon_geometry(raw, tmp_path, capsys):
    pts = raw.copy()
    pts["geometry"] = raw.geometry.representative_point()
    p = tmp_path / "points.gpkg"
    pts.to_file(p)
    _fails(capsys, ["info", str(p)], "not polygons (Point)")


def test_municipality_absent_lists_present_codes(shp, capsys):
    _fails(capsys, ["info", str(shp), "--muni", "03205"], "03205 is not in the file", "03901")


def test_bad_municipality_code(shp, capsys):
    _fails(capsys, ["info", str(shp), "--muni", "3205"], "5 digits")


def test_undecodable_text(shp, capsys):
    _fails(capsys, ["info", str(shp), "--encoding", "utf-8"], "cannot be decoded as utf-8", "--encoding")


def test_unknown_encoding_name(shp, capsys):
    _fails(capsys, ["info", str(shp), "--encoding", "klingon"], "not a known text encoding")


def test_latin1_is_mojibake(shp, capsys):
    _fails(capsys, ["info", str(shp), "--encoding", "latin-1"], "mojibake", "--encoding")


def test_not_estat_without_mapping_lists_columns(tmp_path, capsys):
    g = gpd.GeoDataFrame({"code": ["1"], "pop": [3]}, geometry=[shapely.box(141, 39, 141.01, 39.01)],
                         crs="EPSG:6668")
    p = tmp_path / "x.geojson"
    g.to_file(p)
    _fails(capsys, ["info", str(p)], "not an e-Stat", "--key", "code, pop")
    assert main(["info", str(p), "--key", "code", "--population", "pop", "--muni", "03205"]) == 0
    assert "population (人口 JINKO):  3" in capsys.readouterr().out


def test_missing_file(tmp_path, capsys):
    _fails(capsys, ["info", str(tmp_path / "nope.shp")], "file not found")


def test_bundled_hanamaki_sample(capsys):
    need(SAMPLE, "bundled sample data/hanamaki_03205/h27ka03205.shp")
    assert main(["info", str(SAMPLE), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["layout"] == "2015_legacy" and d["encoding"] == "cp932"
    assert d["records_in"] == 479 and d["blocks_out"] == 463
    assert d["totals"]["population"] == 97_702 and d["totals"]["households"] == 33_799
    assert d["crs_in"].startswith("JGD2000") and "6678" in d["crs_out"]
    assert d["totals"]["area_official_km2"] == pytest.approx(907.6, abs=0.1)


def test_help_examples_on_bundled_files_run_as_written(capsys, monkeypatch):
    """Every example line of `info --help` that names a bundled file runs from the repo
    root (the JSON one used a zip that is not bundled, with no note saying so)."""
    import shlex

    from subdivide.cli.commands import info as info_cmd

    need(SAMPLE, "bundled sample")
    root = SAMPLE.parents[2]
    monkeypatch.chdir(root)
    lines = [ln.strip() for ln in info_cmd.EXAMPLE.splitlines() if ln.strip().startswith("subdivide info")]
    bundled = [shlex.split(ln)[1:] for ln in lines if (root / shlex.split(ln)[2]).exists()]
    assert len(bundled) >= 2 and any("--json" in a for a in bundled)
    for argv in bundled:
        assert main(argv) == 0, argv
        capsys.readouterr()
    # the lines using the user's own files are introduced as such
    assert "not bundled" in info_cmd.EXAMPLE


# ---------------------------------------------------------------- what is in the file (issue 17)
TOTTORI = Path(__file__).resolve().parents[2] / "shared" / "data" / "tottori_31_estat2015" / "h27ka31.shp"


@pytest.fixture(scope="module")
def tottori_report():
    from subdivide.io.townblocks import read_townblocks

    _, report = read_townblocks(need(TOTTORI, "real 鳥取県 town-block file"))
    return report


def test_prefecture_file_lists_each_municipality_with_population(tottori_report):
    """鳥取県 (real e-Stat 2015): 19 municipalities, named from GST_NAME/CSS_NAME (no 郡), whose
    populations add up to the prefecture's JINKO (573,441, the 2015 Census total)."""
    ms = tottori_report.municipalities
    assert len(ms) == 19 and [m["code"] for m in ms] == tottori_report.muni_codes
    names = {m["code"]: m["name"] for m in ms}
    assert names["31201"] == "鳥取市" and names["31302"] == "岩美町" and names["31384"] == "日吉津村"
    assert not any(n.endswith("郡") or "郡" in n for n in names.values())
    assert sum(m["population"] for m in ms) == tottori_report.totals["population"] == 573_441
    assert sum(m["households"] for m in ms) == tottori_report.totals["households"]
    assert sum(m["town_blocks"] for m in ms) == tottori_report.blocks_out
    assert max(ms, key=lambda m: m["population"])["code"] == "31201"


def test_prefecture_text_report_names_municipalities(capsys):
    need(TOTTORI, "real 鳥取県 town-block file")
    assert main(["info", str(TOTTORI)]) == 0
    out = capsys.readouterr().out
    assert "municipalities: 19 (select one with --muni CODE)" in out
    assert "31201  鳥取市  666 town-blocks, population 193,717" in out
    assert "attribute columns: AREA, PERIMETER" in out and "GST_NAME" in out


def test_one_municipality_of_the_prefecture(capsys):
    need(TOTTORI, "real 鳥取県 town-block file")
    assert main(["info", str(TOTTORI), "--muni", "31204", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["municipalities"] == [{"code": "31204", "name": "境港市", "town_blocks": d["blocks_out"],
                                    "population": d["totals"]["population"],
                                    "households": d["totals"]["households"]}]


def test_sample_grouping_columns_discoverable(capsys):
    """OLD_MUNI (旧市町村) is shown as a column to group by, without having to guess and fail."""
    need(SAMPLE, "bundled sample")
    assert main(["info", str(SAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "municipality (市区町村): 03205 花巻市" in out
    assert "OLD_MUNI: 4 values (大迫, 東和, 石鳥谷, 花巻)" in out and "--by OLD_MUNI" in out
    assert "municipalities:" not in out          # one municipality: no per-municipality table
    assert main(["info", str(SAMPLE), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["columns"][-2:] == ["OLD_MUNI", "OLD_CODE"] and "KEY_CODE" in d["columns"]
    assert set(d["grouping_columns"]) == {"OLD_MUNI", "OLD_CODE"}   # e-Stat's own columns are not offered
    assert d["municipalities"][0]["population"] == 97_702


def test_mapped_layer_without_population_says_unknown(raw, tmp_path, capsys):
    """A mapped layer with no population column: the municipality's population is None, not 0."""
    gdf = raw[raw.KEY_CODE.str.len() > 2].drop_duplicates("KEY_CODE")[["KEY_CODE", "MOJI", "geometry"]].rename(
        columns={"KEY_CODE": "code", "MOJI": "label"})
    gdf["district"] = ["north" if i % 2 else "south" for i in range(len(gdf))]
    path = tmp_path / "blocks.gpkg"
    gdf.to_file(path, layer="blocks", driver="GPKG")
    assert main(["info", str(path), "--key", "code", "--name", "label", "--muni", "03901", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["municipalities"][0]["population"] is None and d["municipalities"][0]["code"] == "03901"
    assert d["grouping_columns"] == {"district": ["north", "south"]}


def test_japanese_report_of_the_prefecture(capsys):
    """`info` with the language the CLI chose (args.lang = "ja"): the report's lines in Japanese,
    values (codes, names, counts) unchanged; JSON keeps its English keys."""
    from subdivide.cli.commands import info as info_cmd
    from subdivide.cli.main import build_parser

    need(TOTTORI, "real 鳥取県 town-block file")
    args = build_parser().parse_args(["info", str(TOTTORI)])
    args.lang = "ja"
    assert info_cmd.run(args) == 0
    out = capsys.readouterr().out
    assert "市区町村数:  19（--muni CODE で一つ選びます）" in out
    assert "  31201  鳥取市  町丁・字 666、人口 193,717" in out
    assert "人口（JINKO）:    573,441" in out and "水面（HCODE 8154）" in out
    assert "形式:        2015_legacy" in out and "属性の列:    AREA, PERIMETER" in out
    english_lines = [ln for ln in out.splitlines() if ln.strip() and not re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", ln)]
    assert english_lines == [], english_lines       # every line carries Japanese
    args = build_parser().parse_args(["info", str(TOTTORI), "--muni", "31204", "--json"])
    args.lang = "ja"
    assert info_cmd.run(args) == 0
    assert json.loads(capsys.readouterr().out)["municipalities"][0]["name"] == "境港市"
