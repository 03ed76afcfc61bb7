"""The seeded synthetic municipality generator (subdivide.testing.synthetic)."""
import numpy as np
import pandas as pd
import pytest
import shapely

from subdivide.io.estat import field_names
from subdivide.core.schema import TOWNBLOCK_COLUMNS, check_townblocks
from subdivide.testing.synthetic import synthetic_estat, synthetic_townblocks, write_estat_shapefile

PLANE_X = "EPSG:6678"  # Iwate, zone X


@pytest.fixture(scope="module")
def raw():
    return synthetic_estat(463, seed=3, layout="2015_legacy")


@pytest.fixture(scope="module")
def raw_plane(raw):
    return raw.to_crs(PLANE_X)


def test_deterministic_for_a_seed_and_different_across_seeds():
    a = synthetic_estat(300, seed=11)
    b = synthetic_estat(300, seed=11)
    c = synthetic_estat(300, seed=12)
    pd.testing.assert_frame_equal(a.drop(columns="geometry"), b.drop(columns="geometry"))
    assert (shapely.to_wkb(a.geometry.values) == shapely.to_wkb(b.geometry.values)).all()
    assert not a["JINKO"].equals(c["JINKO"]) or len(a) != len(c)


@pytest.mark.parametrize("layout", ["2015_legacy", "2015_current", "2020"])
def test_columns_in_layout_order_then_extras(layout):
    g = synthetic_estat(60, seed=1, layout=layout, muni_code="35204")
    assert list(g.columns) == field_names(layout, "35") + [
        "OLD_MUNI", "OLD_CODE", "FLOOD_M", "SLOPE_DEG", "LANDSLIDE", "geometry"]
    assert g.crs.to_epsg() == 6668


def test_keys_are_text_and_count_is_n_blocks(raw):
    real = raw[(raw.HCODE == 8101) & (raw.KEY_CODE.str.len() > 2)]
    assert real["KEY_CODE"].nunique() == 463
    assert real["KEY_CODE"].map(type).eq(str).all()
    assert set(real["KEY_CODE"].str.len()) == {9, 11}
    assert real["KEY_CODE"].str.startswith("03901").all()
    eleven = real[real.KEY_CODE.str.len() == 11]
    assert (eleven.KEY_CODE == "03" + eleven.KEYCODE1).all()
    assert (eleven.KCODE1 == eleven.KIHON1 + "-" + eleven.KIHON2).all()


def test_water_placeholder_rows(raw):
    assert (raw.HCODE == 8154).sum() == 2
    ph = raw[raw.KEY_CODE.str.len() == 2]
    assert len(ph) == 1 and ph.JINKO.iloc[0] == 0 and ph.N_CITY.iloc[0] != "901"


def test_multipart_units_carry_statistics_on_e1_only(raw):
    parts = raw[raw.KIGO_E != ""]
    assert parts.KEY_CODE.nunique() >= 3
    for _, grp in parts.groupby("KEY_CODE"):
        assert sorted(grp.KIGO_E) == [f"E{i + 1}" for i in range(len(grp))]
        assert (grp.loc[grp.KIGO_E != "E1", ["JINKO", "SETAI", "KBSUM"]] == 0).all().all()
        assert (grp.AREA_MAX_F == "M").sum() == 1
    assert (raw.KIGO_D != "").sum() >= 2  # detached parts (飛び地)


def test_islands_are_offshore_and_detached(raw_plane):
    isl = raw_plane[raw_plane.KIGO_I != ""]
    main = raw_plane[raw_plane.KIGO_I == ""]
    assert 2 <= len(isl) <= 10
    land = shapely.union_all(main.geometry.values)
    assert not shapely.intersects(land, isl.geometry.values).any()
    assert (isl.geometry.area < 5e6).all()


def test_areas_realistic_and_as_estat_gives_them(raw_plane):
    km2 = raw_plane.geometry.area / 1e6
    assert 700 < km2.sum() < 1100           # like 花巻市 (908 km²)
    assert km2.min() < 0.1 and km2.max() > 5
    np.testing.assert_allclose(raw_plane.AREA, raw_plane.geometry.area, rtol=1e-6)
    np.testing.assert_allclose(raw_plane.PERIMETER, raw_plane.geometry.length, rtol=1e-6)
    big = synthetic_estat(20000, seed=0).to_crs(PLANE_X)
    assert 500 < big.geometry.area.sum() / 1e6 < 3000
    assert big.geometry.area.median() / 1e6 < km2.median()   # more blocks → denser, not larger


def test_names_japanese_with_fullwidth_digits_parentheses_and_empty():
    g = synthetic_estat(2000, seed=5)
    names = g.loc[g.HCODE == 8101, "S_NAME"]
    assert names.str.contains("[０-９]").any()
    assert names.str.contains("（").any()
    assert (names == "").any()
    assert not names.str.contains("[0-9]").any()


def test_population_realistic(raw):
    real = raw[raw.HCODE == 8101]
    assert 60_000 < real.JINKO.sum() < 140_000
    assert (real.SETAI <= real.JINKO).all()
    assert ((real.JINKO > 0) == (real.SETAI > 0)).all()
    e1 = real[real.KIGO_E.isin(["", "E1"])]
    assert (e1.JINKO == 0).mean() < 0.2


def test_old_municipalities_are_contiguous_groups(raw_plane):
    main = raw_plane[(raw_plane.KIGO_I == "") & (raw_plane.KIGO_D == "")]
    assert main.OLD_MUNI.nunique() == 4
    assert main.OLD_MUNI.str.startswith("旧").all()
    for name, grp in main.groupby("OLD_MUNI"):
        u = shapely.union_all(shapely.buffer(grp.geometry.values, 1.0))
        assert u.geom_type == "Polygon", name
    assert raw_plane.groupby("OLD_MUNI").OLD_CODE.nunique().eq(1).all()


def test_hazards_spatially_correlated(raw_plane):
    g = raw_plane.reset_index(drop=True)
    assert ((g.FLOOD_M > 0) <= (g.SLOPE_DEG <= 15)).all()
    assert ((g.LANDSLIDE == 1) <= (g.SLOPE_DEG > 25)).all()
    assert g.LANDSLIDE.sum() > 0 and (g.FLOOD_M > 0).sum() > 0
    left, right = g.sindex.query(g.geometry.buffer(1.0), predicate="intersects")
    pair = left != right
    r = np.corrcoef(g.SLOPE_DEG.values[left[pair]], g.SLOPE_DEG.values[right[pair]])[0, 1]
    assert r > 0.6   # neighbours look alike: a smooth field, not noise


def test_synthetic_townblocks_is_canonical():
    b = synthetic_townblocks(250, seed=2)
    check_townblocks(b)
    assert len(b) == 250 and b.crs.to_epsg() == 6678
    assert list(b.columns[: len(TOWNBLOCK_COLUMNS)]) == list(TOWNBLOCK_COLUMNS)
    assert {"OLD_MUNI", "OLD_CODE", "FLOOD_M", "SLOPE_DEG", "LANDSLIDE"} <= set(b.columns)
    assert b.multipart.sum() >= 3 and b.island.sum() >= 2 and b.enclave.sum() >= 1
    assert b.key.is_monotonic_increasing


@pytest.mark.parametrize("layout,ldid", [("2015_legacy", 0), ("2015_current", 0), ("2020", 0x13)])
def test_writer_cp932_no_cpg_and_ldid(tmp_path, layout, ldid):
    g = synthetic_estat(40, seed=1, layout=layout)
    p = write_estat_shapefile(g, tmp_path / "x.shp", layout=layout)
    assert not (tmp_path / "x.cpg").exists()
    dbf = (tmp_path / "x.dbf").read_bytes()
    assert dbf[29] == ldid
    assert "岩手県".encode("cp932") in dbf
    assert "岩手県".encode("utf-8") not in dbf
    assert p.with_suffix(".prj").exists() and p.with_suffix(".shx").exists()


def test_writer_utf8_with_cpg(tmp_path):
    g = synthetic_estat(40, seed=1)
    write_estat_shapefile(g, tmp_path / "x.shp", cpg="UTF-8")
    assert (tmp_path / "x.cpg").read_text() == "UTF-8"
    assert "岩手県".encode("utf-8") in (tmp_path / "x.dbf").read_bytes()
