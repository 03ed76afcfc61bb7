"""The bundled 花巻 sample (data/hanamaki_03205/) and its builder (data/build_sample.py).

Fast tests check the committed files directly (layout, encoding, attributes against the
shared e-Stat table, coverage topology, the documented area errors); the slow ones rebuild
into tmp_path and compare bytes.
"""
from __future__ import annotations

import importlib.util
import io
import math
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest
from conftest import need
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
SAMPLE = DATA / "hanamaki_03205"
SHP = SAMPLE / "h27ka03205.shp"
SHARED = ROOT.parent / "shared" / "data"
ESTAT_CSV = SHARED / "hanamaki_03205" / "estat2015_town_blocks_hanamaki.csv"
PLANE = 6678


def load_builder():
    spec = importlib.util.spec_from_file_location("build_sample", DATA / "build_sample.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


B = load_builder()


def need_shared():
    need(ESTAT_CSV, f"shared data ({SHARED})")


@pytest.fixture(scope="module")
def blocks():
    """The committed shapefile, decoded as CP932, projected to EPSG:6678."""
    return pyogrio.read_dataframe(SHP, encoding="cp932").to_crs(PLANE)


@pytest.fixture(scope="module")
def outline():
    return pyogrio.read_dataframe(SAMPLE / "outline.geojson").to_crs(PLANE).geometry.iloc[0]


# --------------------------------------------------------------------------- files

def test_committed_files_exist():
    names = ["h27ka03205.shp", "h27ka03205.shx", "h27ka03205.dbf", "h27ka03205.prj",
             "hanamaki_sample.gpkg", "offices.geojson", "outline.geojson",
             "old_municipalities_approx.geojson", "area_check.csv"]
    for name in names:
        assert (SAMPLE / name).is_file(), name
    assert not (SAMPLE / "h27ka03205.cpg").exists(), "e-Stat 2015 legacy files have no .cpg"
    assert (SAMPLE / "h27ka03205.shp").stat().st_size < 3_000_000


def test_dbf_header_is_legacy_cp932_without_ldid():
    head = (SAMPLE / "h27ka03205.dbf").read_bytes()[:32]
    assert head[29] == 0, "LDID must be 0 (undeclared), as in real 2015 re-exports"
    assert (head[1] + 1900, head[2], head[3]) == (2015, 10, 1), "header date pinned for reproducibility"
    assert struct.unpack("<I", head[4:8])[0] == 479


def test_prj_is_jgd2000_geographic():
    prj = (SAMPLE / "h27ka03205.prj").read_text()
    assert prj.startswith("GEOGCS[") and "JGD_2000" in prj
    assert pyogrio.read_info(SHP)["crs"] == "EPSG:4612"


def test_names_round_trip_cp932(blocks):
    assert list(blocks.columns[:30]) == B.ESTAT_COLUMNS
    assert list(blocks.columns[30:32]) == ["OLD_MUNI", "OLD_CODE"]
    assert set(blocks["KEN_NAME"]) == {"岩手県"} and set(blocks["GST_NAME"]) == {"花巻市"}
    assert "松林寺第３地割" in set(blocks["MOJI"])
    assert set(blocks["OLD_MUNI"]) == {"花巻", "大迫", "石鳥谷", "東和"}
    # without the explicit encoding the names do not decode (no .cpg, no LDID)
    raw = pyogrio.read_dataframe(SHP, columns=["KEN_NAME"], read_geometry=False)
    assert raw["KEN_NAME"].iloc[0] != "岩手県"


def test_counts_and_totals(blocks):
    assert len(blocks) == 479
    assert blocks["KEY_CODE"].nunique() == 463
    assert int(blocks["JINKO"].sum()) == 97_702
    assert int(blocks["SETAI"].sum()) == 33_799
    assert blocks["KEY_CODE"].map(type).eq(str).all()
    assert blocks["KEY_CODE"].str.fullmatch(r"\d{9}|\d{11}").all()
    parts = blocks[blocks["KIGO_E"].fillna("") != ""]
    assert len(parts) == 30 and set(parts["KIGO_E"]) == {"E1", "E2", "E3"}
    assert (parts.loc[parts["KIGO_E"] != "E1", "JINKO"] == 0).all()


def test_attributes_are_verbatim(blocks):
    need_shared()
    src = pd.read_csv(ESTAT_CSV, dtype=str, keep_default_na=False)
    for col in B.ESTAT_COLUMNS:
        got = blocks[col]
        if col in B.FLOAT_COLUMNS:
            np.testing.assert_array_equal(got.to_numpy(float), src[col].astype(float).to_numpy(), err_msg=col)
        elif col in B.INT_COLUMNS:
            np.testing.assert_array_equal(got.to_numpy("int64"), src[col].astype("int64").to_numpy(), err_msg=col)
        else:
            assert got.fillna("").astype(str).tolist() == src[col].tolist(), col
    assert blocks["OLD_MUNI"].tolist() == src["trial_subarea"].tolist()
    assert blocks["OLD_CODE"].tolist() == src["old_muni_code_2000"].tolist()


def test_gpkg_layers_and_utf8_copy(blocks):
    layers = [name for name, _ in pyogrio.list_layers(SAMPLE / "hanamaki_sample.gpkg")]
    assert layers == ["townblocks_estat", "offices", "outline", "old_municipalities_approx"]
    g = pyogrio.read_dataframe(SAMPLE / "hanamaki_sample.gpkg", layer="townblocks_estat")
    assert g["MOJI"].tolist() == blocks["MOJI"].tolist()
    assert g["KEY_CODE"].tolist() == blocks["KEY_CODE"].tolist()
    a = shapely.area(g.to_crs(PLANE).geometry.values)
    np.testing.assert_allclose(a, shapely.area(blocks.geometry.values), rtol=1e-9)


def test_offices():
    off = pyogrio.read_dataframe(SAMPLE / "offices.geojson")
    trial = off.loc[off["named_in_trial"], "office_name"]
    assert set(trial) == {"花巻市役所", "大迫総合支所", "石鳥谷総合支所", "東和総合支所"}
    assert (off["city"] == "花巻市").all()
    gpkg = pyogrio.read_dataframe(SAMPLE / "hanamaki_sample.gpkg", layer="offices")
    assert gpkg["office_name"].tolist() == off["office_name"].tolist()


# --------------------------------------------------------------------------- geometry

def test_union_is_outline_without_overlaps(blocks, outline):
    geoms = blocks.geometry.values
    assert shapely.is_valid(geoms).all() and not shapely.is_empty(geoms).any()
    assert shapely.coverage_is_valid(geoms), "shared edges must match: no gaps, no overlaps"
    union = shapely.union_all(geoms)
    assert abs(union.area - outline.area) < 1e-3 * outline.area
    assert shapely.symmetric_difference(union, outline).area < 1e-3 * outline.area
    assert abs(shapely.area(geoms).sum() - union.area) < 1e-3 * union.area


def test_every_point_lies_in_or_near_its_polygon(blocks):
    pts = shapely.points(B.project_lonlat(blocks["X_CODE"], blocks["Y_CODE"]))
    dist = shapely.distance(pts, blocks.geometry.values)
    assert dist.max() < 1000.0
    assert (dist == 0).mean() > 0.99


def test_records_and_old_municipalities_are_contiguous(blocks):
    assert (shapely.get_num_geometries(blocks.geometry.values) == 1).all()
    for name, grp in blocks.groupby("OLD_MUNI"):
        union = shapely.union_all(grp.geometry.values)
        assert shapely.get_num_geometries(union) == 1, name


def test_area_errors_as_documented(blocks, outline):
    check = pd.read_csv(SAMPLE / "area_check.csv", dtype={"old_muni": str})
    area = shapely.area(blocks.geometry.values)
    for row in check.itertuples():
        m = np.ones(len(blocks), bool) if row.old_muni.startswith("合計") else (blocks["OLD_MUNI"] == row.old_muni).to_numpy()
        assert math.isclose(area[m].sum() / 1e6, row.approx_km2, abs_tol=0.011), row.old_muni
        assert math.isclose(blocks["AREA"][m].sum() / 1e6, row.official_km2, abs_tol=0.011)
        assert row.diff_pct < 1.0, row.old_muni
        approx_pct = (area[m].sum() / blocks["AREA"][m].sum() - 1) * 100
        assert math.isclose(row.signed_diff_pct, approx_pct, abs_tol=0.011)
        assert row.diff_pct == abs(row.signed_diff_pct)
    total = check.iloc[-1]
    assert total.block_median_abs_err_pct < 1.0
    assert total.block_p95_abs_err_pct < 10.0
    # per-block figures recomputed from the committed polygons
    target = blocks["AREA"].to_numpy() * outline.area / blocks["AREA"].sum()
    err = np.abs(area / target - 1) * 100
    assert math.isclose(np.median(err), total.block_median_abs_err_pct, abs_tol=0.02)
    assert math.isclose(np.percentile(err, 95), total.block_p95_abs_err_pct, abs_tol=0.05)


def test_readme_carries_the_generated_table():
    text = (DATA / "README.md").read_text(encoding="utf-8")
    check = pd.read_csv(SAMPLE / "area_check.csv", dtype={"old_muni": str})
    assert B.markdown_table(check) in text
    assert "APPROXIMATE" in text and "推定" in text
    assert "国土数値情報（行政区域データ）（国土交通省）を加工して作成" in text
    assert "政府標準利用規約" in text and "CC BY 4.0" in text


def test_old_municipalities_layer_matches_blocks(blocks):
    old = pyogrio.read_dataframe(SAMPLE / "old_municipalities_approx.geojson").to_crs(PLANE)
    assert old["OLD_MUNI"].tolist() == ["花巻", "大迫", "石鳥谷", "東和"]
    assert old["JINKO"].tolist() == [int(blocks.loc[blocks["OLD_MUNI"] == n, "JINKO"].sum()) for n in old["OLD_MUNI"]]
    assert old["APPROXIMATE"].str.contains("APPROXIMATE").all()
    np.testing.assert_allclose(shapely.area(old.geometry.values), old["approx_area_m2"], rtol=1e-5)


# --------------------------------------------------------------------------- builder units

@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 40), penalty=st.sampled_from([1.0, 2.0]))
def test_tile_pruning_gives_the_full_argmin(seed, n, penalty):
    """SiteTiles.assign_mw (only sites that can win in a tile) == brute-force argmin, and
    every site wins the cell under its own point."""
    rng = np.random.default_rng(seed)
    grid = B.Grid((0.0, 0.0, 3000.0, 2000.0), 50.0, pad_cells=0)
    inside = np.ones(grid.shape, bool)
    cols = rng.integers(0, grid.nx, n)
    rows = rng.integers(0, grid.ny, n)
    keep = np.unique(rows * grid.nx + cols, return_index=True)[1]
    rows, cols = rows[np.sort(keep)], cols[np.sort(keep)]
    sites = grid.centres(rows, cols)
    cell_group = (np.arange(grid.nx)[None, :] >= grid.nx // 2).astype(np.int64) * np.ones((grid.ny, 1), np.int64)
    site_group = rng.integers(0, 2, len(sites))
    tiles = B.SiteTiles(grid, inside, sites, tile=8, cell_group=cell_group, site_group=site_group,
                        penalty=penalty)
    log_s = rng.normal(0.0, 1.0, len(sites))
    got = tiles.assign_mw(log_s)
    inv = np.exp(-2 * log_s)
    d2 = ((tiles.xy[:, None, :] - sites[None, :, :]) ** 2).sum(axis=2) * inv
    foreign = tiles.cell_group[:, None] != site_group[None, :]
    d2 = np.where(foreign, d2 * penalty ** 2, d2)
    np.testing.assert_array_equal(got, d2.argmin(axis=1))
    img = B.paint(tiles, got)
    assert (img[rows, cols] == np.arange(len(sites))).all()


def test_clean_labels_joins_stray_pieces():
    img = np.zeros((6, 6), np.int64)
    img[:, 3:] = 1
    img[0, 0] = 1                       # a stray piece of 1 inside 0
    img[5, 5] = 0                       # a stray piece of 0 inside 1
    site_rc = (np.array([3, 3]), np.array([1, 4]))
    out = B.clean_labels(img, site_rc, np.array([0, 0]), 2, log=lambda *_: None)
    assert out[0, 0] == 0 and out[5, 5] == 1
    assert (B.components(out) >= 0).all()
    assert len(np.unique(B.components(out))) == 2


def test_existing_output_needs_force(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("keep")
    rc = B.main(["--out", str(tmp_path / "out"), "--shared", str(SHARED)])
    assert rc == 2
    assert (tmp_path / "out" / "x").read_text() == "keep"


def test_missing_shared_data_is_a_user_error(tmp_path, capsys):
    rc = B.main(["--out", str(tmp_path / "out"), "--shared", str(tmp_path / "nowhere")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "shared data folder" in err and "fix:" in err
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- rebuilds

@pytest.mark.slow
def test_rebuild_is_byte_identical_to_committed(tmp_path):
    need_shared()
    B.build(SHARED, tmp_path / "out", log=lambda *_: None)
    assert B.file_digests(tmp_path / "out") == B.file_digests(SAMPLE)


@pytest.mark.slow
def test_reduced_grid_rebuild_is_deterministic_and_sound(tmp_path):
    need_shared()
    a = B.build(SHARED, tmp_path / "a", cell=200.0, simplify_m=150.0, log=lambda *_: None)
    B.build(SHARED, tmp_path / "b", cell=200.0, simplify_m=150.0, log=lambda *_: None)
    assert B.file_digests(tmp_path / "a") == B.file_digests(tmp_path / "b")
    g = pyogrio.read_dataframe(tmp_path / "a" / "h27ka03205.shp", encoding="cp932").to_crs(PLANE)
    assert len(g) == 479 and shapely.coverage_is_valid(g.geometry.values)
    pd.testing.assert_frame_equal(a, pd.read_csv(io.StringIO((tmp_path / "a" / "area_check.csv").read_text()),
                                                 dtype={"old_muni": str}), check_dtype=False)
