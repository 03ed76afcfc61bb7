"""Findings a carrier can act on (issue 17, carriers): every finding with its fix line, in
English and Japanese; a doubled town-block names both sub-areas, a missing list row its
code, a lat/lon Shapefile its zone; packages made without this tool (no manifest.json, e.g.
exported from QGIS and zipped by Explorer) are checked with their islands inferred from
the geometry; the contiguity check's edge adjacency gives the overlay's findings.

Real packages: three sub-areas of the bundled 花巻 sample (大迫, 石鳥谷, 東和: 85 real
town-blocks) and 鳥取市 from the real e-Stat file (one sub-area per 旧市町村); islands from
a seeded synthetic municipality with offshore islands, and from a real 鳥取市 block moved
out to sea.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from subdivide.carrier.package import build_package
from subdivide.carrier.registry import Registry, package_digest
from subdivide.carrier.validation import RULES, island_parts, validate_package
from subdivide.cli.main import main
from subdivide.core.i18n import lookup, render_finding, translate_text
from subdivide.core.rules import RULES as CORE_RULES
from subdivide.model.plan import Plan

from test_validate import edit_csv, reseal, rewrite_layer, unchecked_plan


# ============================================================================ fixtures
@pytest.fixture(scope="module")
def small_pkg(sample_blocks, tmp_path_factory) -> Path:
    """A package of real town-blocks: the 花巻 sample's 大迫 (1), 石鳥谷 (2) and 東和 (3)
    sub-areas, 85 blocks (quick to validate); no spill summary, no map."""
    b = sample_blocks[sample_blocks["OLD_MUNI"] != "花巻"].copy()
    plan = Plan.from_assignment(b, b.set_index("key")["OLD_MUNI"])
    return build_package(plan, tmp_path_factory.mktemp("small") / "pkg", spill=False, review_map=False)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.fixture(scope="module")
def island_plan(synthetic_blocks) -> Plan:
    """A synthetic municipality with 9 offshore island blocks (KIGO_I) in 本郷地域, listed as
    island exceptions (as `subdivide plan` lists e-Stat's island flags)."""
    b = synthetic_blocks(300, seed=1, island_share=0.03)
    old = b.set_index("key")["OLD_MUNI"].copy()
    old["039010900"] = "旧本郷市"          # a land block of 南川 cut off by 本郷 and 東山: joined to 本郷
    return Plan.from_assignment(b, old, island_exceptions=b.loc[b["island"], "key"])


@pytest.fixture(scope="module")
def island_pkg(island_plan, tmp_path_factory) -> Path:
    return build_package(island_plan, tmp_path_factory.mktemp("islands") / "pkg", spill=False, review_map=False)


def _finding(report, rule):
    found = [f for f in report.findings if f.rule == rule]
    assert len(found) == 1, report.table()
    return found[0]


# ============================================================================ fix lines, Japanese
def test_every_validator_rule_has_a_fix_line_in_both_languages():
    for rule in RULES:
        r = CORE_RULES[rule]
        assert r.fix, rule
        assert lookup(r.description, "ja") and lookup(r.fix, "ja"), f"{rule}: no Japanese in subdivide.po"


def edit_missing_row(root: Path) -> str:
    """Drop the 8th row of the town-block list; return its key."""
    dropped = {}

    def drop(df):
        dropped["key"] = df.iloc[7, 0]
        return df.drop(index=7)
    edit_csv(root / "townblock_list.csv", drop)
    reseal(root)
    return dropped["key"]


def test_json_findings_carry_their_fix(small_pkg, tmp_path):
    root = _copy(small_pkg, tmp_path / "pkg")
    edit_missing_row(root)
    d = validate_package(root).to_dict()
    assert d["findings"] and all(f["fix"] == CORE_RULES[f["rule"]].fix for f in d["findings"])


def test_cli_prints_each_finding_with_its_fix_in_japanese_and_english(small_pkg, tmp_path, capsys):
    root = _copy(small_pkg, tmp_path / "pkg")
    key = edit_missing_row(root)
    assert main(["validate", str(root), "--lang", "ja"]) == 1
    ja = capsys.readouterr().out
    assert f"エラー  BLOCK-NOT-IN-LIST: Shapefile の町丁・字 1 件の行が町丁・字の CSV 一覧にありません: {key} " in ja
    assert "\n        対処: 表示された町丁・字を一覧に加えるか、パッケージを作り直してください\n" in ja
    assert ja.splitlines()[-1].startswith("エラーあり: エラー 1 件、") and "— 03205 花巻市 —" in ja
    man = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    del man["municipality"]["name"]                     # a package that does not name its municipality
    (root / "manifest.json").write_text(json.dumps(man), encoding="utf-8")
    assert main(["validate", str(root), "--lang", "ja"]) == 1
    assert "— 03205 (岩手県、名称不明) —" in capsys.readouterr().out
    en = validate_package(root).render("en")
    assert f"ERROR   BLOCK-NOT-IN-LIST: 1 town-blocks of the Shapefile are missing from the town-block CSV list: {key} " in en
    assert "\n        fix: add the listed town-blocks to the town-block list, or rebuild the package" in en


@pytest.mark.slow
def test_cli_speaks_japanese_under_a_japanese_locale(small_pkg, tmp_path, capsys, monkeypatch):
    root = _copy(small_pkg, tmp_path / "pkg")
    edit_missing_row(root)
    assert main(["validate", str(root)]) == 1
    en = capsys.readouterr().out
    assert "\n        fix: add the listed town-blocks" in en and en.splitlines()[-1].startswith("ERRORS FOUND: 1 errors")
    monkeypatch.delenv("LC_ALL")
    monkeypatch.delenv("LC_MESSAGES")
    monkeypatch.setenv("LANG", "ja_JP.UTF-8")
    assert main(["validate", str(root)]) == 1
    ja = capsys.readouterr().out
    assert "エラー  BLOCK-NOT-IN-LIST: Shapefile の町丁・字 1 件の行が" in ja and "\n        対処: " in ja


def test_every_finding_of_a_damaged_package_is_japanese(small_pkg, tmp_path):
    """The messages of findings from many kinds of damage are catalogue templates: rendered
    in Japanese they carry no English sentence (only the names, codes and files)."""
    root = _copy(small_pkg, tmp_path / "pkg")
    edit_missing_row(root)

    def damage(g):
        g = pd.concat([g, g.iloc[[3]]], ignore_index=True)        # BLOCK-DUPLICATE
        g.loc[0, "AREA_NO"] = 9                                   # SUBAREA-UNKNOWN
        return g
    rewrite_layer(root, "townblocks", damage)
    edit_csv(root / "subarea_list.csv", lambda df: df.drop(index=2))
    (root / "notes.txt").write_text("x", encoding="utf-8")       # MANIFEST-UNLISTED
    (root / "subareas.cpg").write_bytes(b"UTF-8")
    r = validate_package(root, target_share=0.99)
    assert {"BLOCK-DUPLICATE", "BLOCK-NOT-IN-LIST", "LIST-MISMATCH", "MANIFEST-UNLISTED", "MANIFEST-CHECKSUM",
            "SUBAREA-UNKNOWN", "SHP-CPG", "SPILL-CORE", "SPILL-CIRCLE", "GEOM-OVERLAP"} <= r.rules(), r.table()
    for f in r.findings:
        assert translate_text(f.message, "ja") != f.message, f.message
        assert "対処: " in render_finding(f, "ja")


# ============================================================================ what the findings say
def test_doubled_townblock_names_both_subareas(small_pkg, tmp_path):
    root = _copy(small_pkg, tmp_path / "pkg")
    pairs = {}

    def double(g):
        one = g[g["AREA_NO"] == 1].iloc[[2]].copy()
        pairs["key"] = one["KEY_CODE"].iloc[0]
        one["AREA_NO"], one["AREA_NAME"], one["AREA_CODE"] = 3, "東和地域", "0320503"
        return pd.concat([g, one], ignore_index=True)
    rewrite_layer(root, "townblocks", double)
    reseal(root)
    f = _finding(validate_package(root), "BLOCK-DUPLICATE")
    key = pairs["key"]
    assert f.features == (f"{key}: 1 大迫地域 / 3 東和地域",)
    assert f.message == f"1 keys appear more than once in the town-block Shapefile: {key} is in 1 大迫地域 / 3 東和地域"
    assert translate_text(f.message, "ja") == \
        f"町丁・字の Shapefileに 1 件のキーが複数回現れます: {key} の行のエリアは 1 大迫地域 / 3 東和地域"


def test_doubled_list_row_names_both_subareas(small_pkg, tmp_path):
    root = _copy(small_pkg, tmp_path / "pkg")
    pairs = {}

    def list_double(df):
        extra = df.iloc[[2]].copy()
        pairs["key"], pairs["was"] = extra.iloc[0, 0], f"{extra.iloc[0, 2]} {extra.iloc[0, 4]}"
        extra.iloc[0, 2:5] = ["2", "0320502", "石鳥谷地域"]
        return pd.concat([df, extra])
    edit_csv(root / "townblock_list.csv", list_double)
    reseal(root)
    dup = _finding(validate_package(root), "BLOCK-DUPLICATE")
    assert dup.features == (f"{pairs['key']}: {pairs['was']} / 2 石鳥谷地域",)
    assert "in the town-block CSV list" in dup.message


def test_missing_list_row_names_its_code(small_pkg, tmp_path):
    root = _copy(small_pkg, tmp_path / "pkg")
    key = edit_missing_row(root)
    tb = pyogrio.read_dataframe(root / "townblocks.shp", encoding="cp932").set_index("KEY_CODE")
    f = _finding(validate_package(root), "BLOCK-NOT-IN-LIST")
    row = tb.loc[key]
    assert f.features == (key,)
    assert f.message.endswith(f"missing from the town-block CSV list: {key} {row['NAME']} "
                              f"({row['AREA_NO']} {row['AREA_NAME']})")


def test_missing_sub_area_row_names_its_code(small_pkg, tmp_path):
    root = _copy(small_pkg, tmp_path / "pkg")
    edit_csv(root / "subarea_list.csv", lambda df: df.drop(index=1))
    reseal(root)
    f = _finding(validate_package(root), "LIST-MISMATCH")
    assert f.message == "the sub-area CSV list lacks the rows of sub-areas 0320502 石鳥谷地域" and f.features == ("0320502",)
    assert translate_text(f.message, "ja") == "エリアの CSV 一覧にエリア 0320502 石鳥谷地域 の行がありません"


def test_sub_area_list_difference_names_code_and_column(small_pkg, tmp_path):
    root = _copy(small_pkg, tmp_path / "pkg")

    def f(df):
        df.loc[1, "人口"] = str(int(df.loc[1, "人口"]) + 5)
        return df
    edit_csv(root / "subarea_list.csv", f)
    reseal(root)
    found = _finding(validate_package(root), "LIST-MISMATCH")
    assert found.message == "the sub-area CSV list differs from the sub-area Shapefile in 人口 for sub-areas 0320502"
    assert translate_text(found.message, "ja") == "エリアの CSV 一覧はエリアの Shapefile と 人口 が違います（エリア 0320502）"


def _to_latlon(root: Path, epsg: int = 6668) -> None:
    """Rewrite the town-block Shapefile (and its GeoPackage layer) in latitude/longitude."""
    rewrite_layer(root, "townblocks", lambda g: g.to_crs(epsg))
    if (root / "manifest.json").is_file():
        reseal(root)


def test_latlon_shapefile_says_so_and_names_the_zone(small_pkg, tmp_path):
    root = _copy(small_pkg, tmp_path / "pkg")
    _to_latlon(root)
    f = _finding(validate_package(root), "SHP-PRJ")
    assert f.message == ("townblocks.prj is latitude/longitude (JGD2011, EPSG:6668), not metres: 岩手県 (03205) uses "
                         "plane-rectangular zone X (JGD2011, EPSG:6678); reproject the Shapefile to it")
    assert translate_text(f.message, "ja") == (
        "townblocks.prj は緯度経度（JGD2011, EPSG:6668）で、メートル単位ではありません。"
        "岩手県（03205）の平面直角座標系は X 系（JGD2011、EPSG:6678）です。Shapefile をこの系に投影し直してください")


@pytest.mark.slow
def test_latlon_shapefile_without_manifest_or_prj(small_pkg, tmp_path):
    root = _copy(small_pkg, tmp_path / "pkg")
    # JGD2000 lat/lon, no manifest: the municipality comes from the keys, the zone in JGD2000
    (root / "manifest.json").unlink()
    _to_latlon(root, 4612)
    f = _finding(validate_package(root), "SHP-PRJ")
    assert "latitude/longitude (JGD2000, EPSG:4612)" in f.message and "zone X (JGD2000, EPSG:2452)" in f.message
    # no .prj at all, degrees inside Japan's box
    (root / "townblocks.prj").unlink()
    f = _finding(validate_package(root), "SHP-PRJ")
    assert "coordinates are latitude/longitude: 岩手県 (03205) uses plane-rectangular zone X" in f.message


def test_zone_of_another_prefecture_names_both_zones(small_pkg, tmp_path):
    from pyproj import CRS

    root = _copy(small_pkg, tmp_path / "pkg")
    (root / "townblocks.prj").write_text(CRS(6677).to_wkt("WKT1_ESRI"))
    reseal(root)
    f = _finding(validate_package(root), "SHP-PRJ-ZONE")
    assert f.message.startswith("townblocks.prj declares plane-rectangular zone IX (EPSG:6677); 岩手県 (03205) uses "
                                "zone X (EPSG:6678): areas and distances would be wrong")
    assert translate_text(f.message, "ja").startswith(
        "townblocks.prj は平面直角座標系の IX 系（EPSG:6677）を宣言していますが、岩手県（03205）は X 系（EPSG:6678）です")


def test_terminal_never_acts_on_control_characters(small_pkg, tmp_path, capsys):
    root = _copy(small_pkg, tmp_path / "pkg")

    def f(g):
        g.loc[0, "AREA_NAME"] = "\x1b[31m赤\n地域"
        return g
    rewrite_layer(root, "subareas", f)
    reseal(root)
    assert main(["validate", str(root)]) == 1
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b[31m赤\\n地域" in out


# ============================================================================ packages without a manifest
def test_missing_manifest_is_a_warning(small_pkg, tmp_path):
    root = _copy(small_pkg, tmp_path / "pkg")
    (root / "manifest.json").unlink()
    r = validate_package(root)
    assert r.status == 0 and {f.rule for f in r.findings} == {"MANIFEST-MISSING", "SPILL-CIRCLE", "SPILL-CORE"}
    assert _finding(r, "MANIFEST-MISSING").severity == "warning" and r.summary["muni_code"] == "03205"


def test_missing_manifest_is_an_error_when_the_profile_requires_one(small_pkg, tmp_path, capsys):
    root = _copy(small_pkg, tmp_path / "pkg")
    (root / "manifest.json").unlink()
    prof = tmp_path / "carrier.toml"
    prof.write_text("[validation]\nrequire_manifest = true\n", encoding="utf-8")
    strict = validate_package(root, profile=prof)
    f = _finding(strict, "MANIFEST-MISSING")
    assert strict.status == 1 and f.severity == "error" and "the profile requires it" in f.message
    bad = tmp_path / "bad.toml"
    bad.write_text("[validation]\nrequire_manifest = 'yes'\n", encoding="utf-8")
    assert main(["validate", str(root), "--profile", str(bad)]) == 2
    assert "require_manifest must be true or false" in capsys.readouterr().err


def test_manifestless_package_zipped_by_japanese_explorer(small_pkg, tmp_path):
    """Exported without subdivide, the folder zipped by Explorer (CP932 names, one top folder)."""
    from test_safezip_windows import explorer_zip

    root = _copy(small_pkg, tmp_path / "pkg")
    (root / "manifest.json").unlink()
    z = explorer_zip(root, tmp_path / "提出.zip", "花巻市提出")
    r = validate_package(z)
    assert r.status == 0, r.table()
    assert {"MANIFEST-MISSING", "PKG-NESTED-FOLDER", "ZIP-WINDOWS-NAMES"} <= r.rules()
    assert _finding(r, "PKG-NESTED-FOLDER").features == ("花巻市提出/",)


def test_islands_listed_in_the_manifest_or_inferred_without_one(island_plan, island_pkg, tmp_path):
    islands = set(island_plan.island_exceptions)
    assert len(islands) == 9
    listed = validate_package(island_pkg)
    assert listed.status == 0 and set(_finding(listed, "CONTIGUITY-ISLAND").features) == islands
    root = _copy(island_pkg, tmp_path / "pkg")
    (root / "manifest.json").unlink()
    r = validate_package(root)
    assert r.status == 0 and "CONTIGUITY" not in r.rules(), r.table()
    f = _finding(r, "CONTIGUITY-ISLAND-INFERRED")
    assert f.severity == "warning" and set(f.features) == islands
    assert f.message.endswith("as the package has no manifest (1 本郷地域: 9)")
    assert "図形から推定した離島の例外として受理しました（1 本郷地域: 9）" in translate_text(f.message, "ja")


def test_a_block_cut_off_on_land_stays_an_error_without_manifest(island_plan, tmp_path):
    b = island_plan.blocks.copy()
    b.loc[b["key"] == "039010900", "subarea"] = 4       # back in 南川地域, surrounded by 本郷 and 東山
    root = tmp_path / "pkg"
    build_package(unchecked_plan(island_plan, blocks=b), root, spill=False, review_map=False)
    (root / "manifest.json").unlink()
    r = validate_package(root)
    f = _finding(r, "CONTIGUITY")
    assert f.features == ("039010900",) and f.message.startswith("sub-area 4 (南川地域) is not contiguous")
    assert len(_finding(r, "CONTIGUITY-ISLAND-INFERRED").features) == 9


def test_unlisted_island_with_a_manifest_is_an_error_with_a_hint(island_plan, tmp_path):
    root = tmp_path / "pkg"
    build_package(unchecked_plan(island_plan), root, spill=False, review_map=False)   # no exceptions listed
    f = _finding(validate_package(root), "CONTIGUITY")
    assert "9 of them touch no other town-block (islands? list them as island exceptions)" in f.message


def test_island_parts_prefer_the_piece_with_land_neighbours(island_plan):
    """A sub-area whose island pieces outnumber its mainland blocks keeps the mainland as its
    main part: the islands are the detached pieces, not the mainland."""
    from subdivide.model.contiguity import block_adjacency

    b = island_plan.blocks
    sub = b["subarea"].to_numpy().copy()
    island = b["island"].to_numpy()
    # a one-block sub-area on the mainland that also owns every island
    lone = np.flatnonzero(~island & (sub == 2))[0]
    sub[lone] = 9
    sub[island] = 9
    t = b.assign(subarea=sub)
    detached, _, islands = island_parts(t, block_adjacency(t, method="edges"))
    assert islands[island].all() and not detached[lone] and islands.sum() == island.sum()


# ============================================================================ real 鳥取市
@pytest.fixture(scope="module")
def tottori_plan():
    from test_validate_batch import tottori_city_plan

    return tottori_city_plan()


@pytest.mark.slow
def test_real_tottori_package_without_manifest(tottori_plan, tmp_path):
    pkg = build_package(tottori_plan, tmp_path / "pkg", spill=False, review_map=False)
    with_manifest = validate_package(pkg)
    assert with_manifest.manifest["municipality"]["name"] == "鳥取市"     # from the e-Stat GST_NAME
    (pkg / "manifest.json").unlink()
    r = validate_package(pkg)
    assert r.status == with_manifest.status == 0
    assert r.rules() - with_manifest.rules() == {"MANIFEST-MISSING"}
    assert r.summary == with_manifest.summary and r.summary["muni_code"] == "31201"
    # the same Shapefile saved in lat/lon: named, with 鳥取県's zone V
    _to_latlon(pkg)
    f = _finding(validate_package(pkg), "SHP-PRJ")
    assert "鳥取県 (31201) uses plane-rectangular zone V (JGD2011, EPSG:6673)" in f.message


@pytest.mark.slow
def test_real_block_moved_out_to_sea_is_an_inferred_island(tottori_plan, tmp_path):
    """A real 鳥取市 block on the edge of 青谷地域 moved 30 km north into the Sea of Japan:
    without a manifest it is inferred as an island, with a manifest listing it it is one."""
    from subdivide.model.contiguity import block_adjacency

    b = tottori_plan.blocks.copy()
    adj = block_adjacency(b, method="edges")
    deg = np.diff(adj.indptr)
    aoya = np.flatnonzero((b["subarea"] == b.loc[b["name"].str.startswith("青谷町"), "subarea"].iloc[0]).to_numpy())
    pick = aoya[np.argmin(deg[aoya])]          # a block with the fewest neighbours: the sub-area stays whole
    key = b.loc[pick, "key"]
    b.loc[pick, "geometry"] = shapely.affinity.translate(b.geometry.iloc[pick], 0, 30_000)
    moved = Plan(blocks=b, subareas=tottori_plan.subareas, muni_code="31201", island_exceptions=frozenset([key]))
    pkg = build_package(moved, tmp_path / "pkg", spill=False, review_map=False)
    assert set(_finding(validate_package(pkg), "CONTIGUITY-ISLAND").features) == {key}
    (pkg / "manifest.json").unlink()
    r = validate_package(pkg)
    assert r.status == 0 and _finding(r, "CONTIGUITY-ISLAND-INFERRED").features == (key,)


@pytest.mark.slow
def test_contiguity_edges_and_overlay_give_the_same_findings(tottori_plan, island_plan):
    """The validator's edge adjacency (issue 19) against the pairwise overlay, on real 鳥取市
    (a valid coverage: the fast path runs) with two blocks swapped between sub-areas, and on
    the synthetic municipality with islands."""
    from subdivide.model.contiguity import block_adjacency, contiguity_breaks

    b = tottori_plan.blocks.copy()
    first = b.groupby("subarea").head(1).index[:2]
    b.loc[first, "subarea"] = b.loc[first[::-1], "subarea"].to_numpy()
    assert shapely.coverage_is_valid(b.geometry.values)
    for blocks in (b, island_plan.blocks):
        keys, sub = blocks["key"].to_numpy(), blocks["subarea"].to_numpy()
        edges = block_adjacency(blocks, method="edges")
        overlay = block_adjacency(blocks, method="overlay")
        assert (edges != 0).nnz == (overlay != 0).nnz and ((edges != 0) != (overlay != 0)).nnz == 0
        for adj_a, adj_b in ((edges, overlay),):
            for a, c in zip(contiguity_breaks(adj_a, sub, keys, ()), contiguity_breaks(adj_b, sub, keys, ())):
                assert (a == c).all()
            for a, c in zip(island_parts(blocks, adj_a), island_parts(blocks, adj_b)):
                assert (a == c).all()
    assert contiguity_breaks(block_adjacency(b, method="edges"), b["subarea"].to_numpy(), b["key"].to_numpy())[0].any()


# ============================================================================ registry, batch view
def test_registry_tells_manifestless_packages_apart(small_pkg, tmp_path):
    a = _copy(small_pkg, tmp_path / "a")
    (a / "manifest.json").unlink()
    b = _copy(a, tmp_path / "b")
    assert package_digest(a) == package_digest(b) != ""
    (b / "notes.txt").write_text("x", encoding="utf-8")
    assert package_digest(a) != package_digest(b)
    (b / "notes.txt").unlink()
    edit_csv(b / "townblock_list.csv", lambda df: df.iloc[::-1])
    assert package_digest(a) != package_digest(b)
    reg = Registry(tmp_path / "r.sqlite")
    active = reg.register(a, name="花巻市", actor="test")["active"]
    assert active["package_sha256"] == package_digest(a) and active["muni_name"] == "花巻市"
    assert active["registered_at"].endswith("+09:00")


@pytest.mark.slow
def test_batch_summary_first_errors_in_japanese(small_pkg, tmp_path, capsys):
    import csv
    import io

    root = _copy(small_pkg, tmp_path / "pkg")
    key = edit_missing_row(root)
    out = tmp_path / "s.csv"
    assert main(["validate", str(root), str(small_pkg), "--quiet", "--summary", str(out), "--lang", "ja"]) == 1
    capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(out.read_bytes().decode("utf-8-sig"))))
    assert rows[0]["主なエラー"].startswith(f"BLOCK-NOT-IN-LIST: Shapefile の町丁・字 1 件の行が町丁・字の CSV 一覧にありません: {key}")
    assert rows[0]["最初のエラーの対処"] == "表示された町丁・字を一覧に加えるか、パッケージを作り直してください"
    assert rows[1]["判定"] == "合格" and json.dumps(rows, ensure_ascii=False).count("エラーあり") == 1
