"""The e-Stat boundaries people actually have (issue 20): the CODH/NII 2020 republication
as TopoJSON (objects ``town`` and ``city``, no CRS, ids renamed ``R2KAxx`` / ``R2KAxx_ID``,
an added ``id``), GeoJSON with KEY_CODE as a number, QGIS / GeoPackage re-exports, and the
generic ``--key`` mapping honouring KIGO_E.

Fixtures are built at test time from the real 鳥取県 e-Stat polygons and attributes (and
the bundled 花巻 sample) by :mod:`estat_republished`; each must give the same figures as the
Shapefile it came from.
"""
from __future__ import annotations

import json
from pathlib import Path

import pyogrio
import pytest
from conftest import IN_CI, SAMPLE_SHP, SHARED_DATA, need
from estat_republished import city_layer, to_2020_layout, write_geojson, write_topojson

from subdivide.cli.main import main
from subdivide.testing.synthetic import write_estat_shapefile

TOTTORI = SHARED_DATA / "tottori_31_estat2015" / "h27ka31.shp"
THREE = ("302", "325", "328")      # 岩美町, 若桜町, 智頭町
IWAMI = "31302"
MAPPING = ["--key", "KEY_CODE", "--name", "S_NAME", "--population", "JINKO", "--households", "SETAI"]


@pytest.fixture(scope="module")
def tottori_raw():
    try:
        import topojson  # noqa: F401 - the TopoJSON fixtures are encoded with it
    except ImportError:
        if IN_CI:
            pytest.fail("the topojson package (test extra) is missing under CI")
        pytest.skip("the topojson package is missing: pip install -e .[test]")
    return pyogrio.read_dataframe(need(TOTTORI, "鳥取県 e-Stat 2015 file"), encoding="cp932")


@pytest.fixture(scope="module")
def three_towns(tottori_raw):
    return to_2020_layout(tottori_raw[tottori_raw["CITY"].isin(THREE)], add_id=True)


@pytest.fixture(scope="module")
def topo(three_towns, tmp_path_factory) -> Path:
    """CODH-style TopoJSON: town + city objects, no CRS, R2KAxx ids, an id column."""
    return write_topojson(tmp_path_factory.mktemp("topo") / "r2ka31.topojson", three_towns, city_layer(three_towns))


@pytest.fixture(scope="module")
def reference(tottori_raw) -> dict:
    """The figures of 岩美町 read from the real Shapefile."""
    return run_json(TOTTORI, "--muni", IWAMI)


def run(*argv) -> tuple[int, str, str]:
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([str(a) for a in argv])
    return status, out.getvalue(), err.getvalue()


def run_json(path, *argv) -> dict:
    status, out, err = run("info", path, *argv, "--json")
    assert status == 0, err
    assert err == "", err          # no stray library warnings
    return json.loads(out)


def same_figures(d: dict, ref: dict, *, official_area: bool = True) -> None:
    assert d["blocks_out"] == ref["blocks_out"]
    assert d["muni_codes"] == ref["muni_codes"]
    for k in ("population", "households"):
        assert d["totals"][k] == ref["totals"][k], k
    assert d["flags"] == ref["flags"]
    assert d["totals"]["area_computed_km2"] == pytest.approx(ref["totals"]["area_computed_km2"], rel=1e-4)
    if official_area:
        assert d["totals"]["area_official_km2"] == pytest.approx(ref["totals"]["area_official_km2"], rel=1e-9)


# --------------------------------------------------------------------------- the four failures


def test_topojson_reads_with_the_same_figures_as_the_shapefile(topo, reference):
    d = run_json(topo, "--muni", IWAMI)
    same_figures(d, reference)
    assert d["layout"] == "2020" and d["layer"] == "town" and d["encoding"] == "UTF-8"
    assert "EPSG:6668" in d["crs_in"] and "6673" in d["crs_out"]
    assert reference["totals"]["population"] == 11_485 and reference["blocks_out"] == 53


@pytest.mark.slow
def test_1_the_town_layer_is_chosen_and_said_so(topo, capsys):
    status, out, _ = run("info", topo, "--muni", IWAMI)
    assert status == 0
    assert "layer:       town" in out
    assert "note: layer 'town' chosen as the town-block layer (the file also holds city (3 " in out
    d = run_json(topo, "--muni", IWAMI, "--layer", "town")           # --layer still decides
    assert not any("chosen" in f for f in d["fallbacks"])
    status, _, err = run("info", topo, "--layer", "city")
    assert status == 2 and "not an e-Stat town-block layout" in err and "Traceback" not in err
    status, _, err = run("info", topo, "--layer", "towns")
    assert status == 2 and "no layer 'towns'" in err and "town (" in err and "city (3 " in err


def test_2_no_crs_is_read_as_jgd2011_with_a_warning(topo, capsys):
    d = run_json(topo, "--muni", IWAMI)
    assert any("declares no CRS" in w and "EPSG:6668" in w and "--crs" in w for w in d["warnings"])
    assert any("declares no CRS" in f for f in d["fallbacks"])
    d2 = run_json(topo, "--muni", IWAMI, "--crs", "EPSG:4612")     # the override is honoured
    assert "4612" in d2["crs_in"] and not any("declares no CRS" in w for w in d2["warnings"])


@pytest.mark.slow
def test_3_renamed_dropped_or_added_id_columns_do_not_matter(tottori_raw, reference, tmp_path):
    iwami = tottori_raw[tottori_raw["CITY"] == "302"]
    for ids, add_id, note in (("codh", True, "R2KAxx, R2KAxx_ID are renamed"), ("dropped", False, "are absent"),
                              ("dropped", True, "are absent"), ("kept", False, None)):
        p = write_geojson(tmp_path / f"{ids}{add_id}.geojson", to_2020_layout(iwami, ids=ids, add_id=add_id))
        d = run_json(p)
        same_figures(d, reference)
        assert d["layout"] == "2020"
        assert "KEY_CODE" in d["columns_matched"] and d["columns_missing"] == []
        assert any(note in f for f in d["fallbacks"]) if note else not any("internal id" in f for f in d["fallbacks"])


def test_4_generic_mapping_honours_kigo_e(topo, reference):
    d = run_json(topo, "--layer", "town", *MAPPING, "--muni", IWAMI)
    assert d["layout"] == "mapped"
    same_figures(d, reference, official_area=False)      # --key mode maps no AREA column
    assert d["flags"]["multipart"] == 3 and d["flags"]["island"] == 3


def test_missing_meaningful_column_is_named(tottori_raw, tmp_path, capsys):
    town = to_2020_layout(tottori_raw[tottori_raw["CITY"] == "302"]).drop(columns=["KIGO_E"])
    status, _, err = run("info", write_geojson(tmp_path / "nokigo.geojson", town))
    assert status == 2 and "closest e-Stat layout 2020 lacks KIGO_E" in err and "--key" in err


# --------------------------------------------------------------------------- GeoJSON, GeoPackage, QGIS


@pytest.mark.slow
def test_geojson_with_keycode_as_a_number_keeps_leading_zeros(tmp_path):
    """花巻 (03…) converted to the 2020 layout with codes as numbers: the leading zero comes back."""
    raw = pyogrio.read_dataframe(need(SAMPLE_SHP, "花巻 sample"), encoding="cp932")
    ref = run_json(SAMPLE_SHP)
    p = write_geojson(tmp_path / "r2ka03205.geojson", to_2020_layout(raw, add_id=True).to_crs(6668),
                      numeric_codes=True)
    assert json.loads(p.read_text(encoding="utf-8"))["features"][0]["properties"]["KEY_CODE"] < 10**10
    d = run_json(p)
    same_figures(d, ref)
    assert ref["blocks_out"] == 463 and ref["totals"]["population"] == 97_702
    assert any("leading zero" in w for w in d["warnings"])
    from subdivide.io.townblocks import read_townblocks

    a, _ = read_townblocks(p)
    b, _ = read_townblocks(SAMPLE_SHP)
    assert a["key"].tolist() == b["key"].tolist() and a["name"].tolist() == b["name"].tolist()


def test_qgis_style_geopackage_with_town_and_city_layers(three_towns, reference, tmp_path):
    p = tmp_path / "r2ka31.gpkg"
    town = three_towns.to_crs(6668)
    town.assign(geometry=town.geometry.apply(lambda g: g if g.geom_type == "MultiPolygon" else
                                              __import__("shapely").MultiPolygon([g]))) \
        .to_file(p, layer="r2ka31", driver="GPKG")
    city_layer(town).to_file(p, layer="city", driver="GPKG")
    d = run_json(p, "--muni", IWAMI)
    same_figures(d, reference)
    assert d["layer"] == "r2ka31" and any("'r2ka31' chosen" in f for f in d["fallbacks"])
    assert not any("declares no CRS" in w for w in d["warnings"])


def test_lower_case_columns_from_a_laundering_converter(tottori_raw, reference, tmp_path):
    town = to_2020_layout(tottori_raw[tottori_raw["CITY"] == "302"]).to_crs(6668)
    town.columns = [c.lower() if c != "geometry" else c for c in town.columns]
    p = tmp_path / "lower.gpkg"
    town.to_file(p, layer="r2ka31302")
    same_figures(run_json(p), reference)


def test_qgis_utf8_shapefile_re_export(three_towns, reference, tmp_path):
    kept = three_towns.drop(columns=["id", "R2KAxx", "R2KAxx_ID"]).assign(
        R2KA31_=three_towns["R2KAxx"], R2KA31_ID=three_towns["R2KAxx_ID"])
    p = write_estat_shapefile(kept, tmp_path / "r2ka31.shp", layout="2020", cpg="UTF-8")
    d = run_json(p, "--muni", IWAMI)
    same_figures(d, reference)
    assert d["encoding"] == "utf-8"


def test_sample_geopackage_picks_its_town_block_layer():
    d = run_json(need(SAMPLE_SHP.parent / "hanamaki_sample.gpkg", "花巻 sample GeoPackage"))
    assert d["layer"] == "townblocks_estat" and d["blocks_out"] == 463
    assert any("outline" in f and "offices" in f for f in d["fallbacks"])


def test_several_town_like_layers_are_listed_with_counts(three_towns, tmp_path):
    p = tmp_path / "two.gpkg"
    t = three_towns.to_crs(6668)
    t.to_file(p, layer="town_2020")
    t.iloc[:10].to_file(p, layer="town_copy")
    status, _, err = run("info", p)
    assert status == 2 and "2 layers" in err and "town_2020 (181 " in err and "town_copy (10 " in err
    assert "--layer NAME" in err


@pytest.mark.slow
def test_real_tottori_converted_to_geojson_by_gdal_gives_the_same_info(tmp_path):
    raw = pyogrio.read_dataframe(need(TOTTORI, "鳥取県 e-Stat 2015 file"), encoding="cp932")
    p = tmp_path / "h27ka31.geojson"
    pyogrio.write_dataframe(raw, p, driver="GeoJSON")
    a, b = run_json(p), run_json(TOTTORI)
    same_figures(a, b)
    assert (a["records_in"], a["blocks_out"], a["totals"]["population"]) == (2504, 2486, 573_441)
    assert a["layout"] == b["layout"] == "2015_legacy" and "4612" in a["crs_in"]


# --------------------------------------------------------------------------- the whole chain


def _tottori_city(raw):
    """鳥取市 with its pre-merger town (旧市町村) from the name prefixes (鹿野町今市 …)."""
    olds = ("国府町", "福部町", "河原町", "用瀬町", "佐治町", "気高町", "鹿野町", "青谷町")
    city = raw[raw["CITY"] == "201"].copy()
    city["OLD_MUNI"] = city["MOJI"].fillna("").map(lambda n: next((o for o in olds if n.startswith(o)), "鳥取"))
    return city


@pytest.mark.slow
def test_plan_package_validate_from_topojson_match_the_shapefile(tottori_raw, tmp_path):
    city = _tottori_city(tottori_raw)
    shp = write_estat_shapefile(to_2020_layout(city, ids="kept", extra=("OLD_MUNI",)), tmp_path / "r2ka31201.shp",
                                layout="2020")
    town = to_2020_layout(city, add_id=True, extra=("OLD_MUNI",))
    # unquantised: the areas in the lists (3 decimals of km²) must match to the byte
    topo = write_topojson(tmp_path / "r2ka31201.topojson", town, city_layer(town), quantize=False)
    lists = {}
    for name, src in (("shp", shp), ("topo", topo)):
        plan, pkg = tmp_path / f"{name}.gpkg", tmp_path / f"{name}_pkg"
        assert run("plan", src, "--by", "OLD_MUNI", "--out", plan)[0] == 0
        status, out, err = run("package", plan, "--out", pkg, "--no-map", "--no-spill")
        assert status == 0, err
        status, out, err = run("validate", pkg, "--quiet")
        assert status == 0, out + err
        lists[name] = {p.name: p.read_bytes() for p in (pkg / "townblock_list.csv", pkg / "subarea_list.csv")}
        meta = pyogrio.read_dataframe(plan, layer="plan_meta")
        ingest = json.loads(meta.set_index("key").loc["ingest", "value"])
        lists[name + "_ingest"] = ingest
    assert lists["shp"] and lists["shp"] == lists["topo"]            # byte-identical lists
    assert any("chosen" in f for f in lists["topo_ingest"]["fallbacks"])
    assert any("declares no CRS" in f for f in lists["topo_ingest"]["fallbacks"])
    assert lists["shp_ingest"]["fallbacks"] == []


def test_synthetic_2020_municipality_as_topojson_matches_its_shapefile(tottori_raw, tmp_path):
    """The project's own generator: a 2020-layout municipality (water rows, a placeholder,
    islands, E1/E2 parts) as e-Stat's Shapefile and as a CODH-style TopoJSON."""
    from subdivide.testing.synthetic import synthetic_estat

    raw = synthetic_estat(150, seed=5, layout="2020", crs="EPSG:6668")
    shp = write_estat_shapefile(raw, tmp_path / "r2ka03901.shp", layout="2020")
    town = raw.rename(columns={"R2KA03_": "R2KAxx", "R2KA03_ID": "R2KAxx_ID"})
    town.insert(0, "id", range(1, len(town) + 1))
    city = town[town["HCODE"] != 8154].pipe(lambda t: t[t["KEY_CODE"].str.len() > 2])
    topo = write_topojson(tmp_path / "r2ka03901.topojson", town, city_layer(city))
    a, b = run_json(topo), run_json(shp)
    same_figures(a, b)
    assert a["dropped"] == b["dropped"] and a["blocks_out"] == 150
    assert a["flags"]["island"] > 0 and a["flags"]["multipart"] > 0
