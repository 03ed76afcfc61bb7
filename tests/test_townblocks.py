"""Reading town-block files into the canonical schema (subdivide.io.townblocks)."""
import zipfile

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from conftest import SHARED_DATA, need
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from subdivide.core.errors import UserError
from subdivide.core.schema import TOWNBLOCK_COLUMNS
from subdivide.testing.synthetic import synthetic_estat, write_estat_shapefile
from subdivide.io.townblocks import ColumnMapping, normalize_townblocks, read_townblocks

N = 300


@pytest.fixture(scope="module")
def raw_current():
    return synthetic_estat(N, seed=7, layout="2015_current")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """One CP932 Shapefile per layout, as e-Stat ships them."""
    d = tmp_path_factory.mktemp("estat")
    out = {}
    for layout, crs in (("2015_legacy", "EPSG:4612"), ("2015_current", "EPSG:6668"), ("2020", "EPSG:6668")):
        raw = synthetic_estat(N, seed=7, layout=layout, crs=crs)
        out[layout] = (raw, write_estat_shapefile(raw, d / layout / f"h27ka03901_{layout}.shp", layout=layout))
    return out


def _real(raw):
    return raw[(raw.HCODE != 8154) & (raw.KEY_CODE.str.len() > 2)]


@pytest.mark.parametrize("layout", ["2015_legacy", "2015_current", "2020"])
def test_each_layout_reads_to_the_canonical_schema(files, layout):
    raw, path = files[layout]
    blocks, rep = read_townblocks(path)
    assert rep.layout == layout
    assert rep.encoding == "cp932"
    assert ("0x13" in rep.encoding_reason) == (layout == "2020")
    assert rep.records_in == len(raw) and rep.blocks_out == N == len(blocks)
    assert list(blocks.columns[: len(TOWNBLOCK_COLUMNS)]) == list(TOWNBLOCK_COLUMNS)
    assert blocks.crs.to_epsg() == 6678
    assert blocks.key.map(type).eq(str).all()
    assert set(blocks.key.str.len()) == {9, 11}
    real = _real(raw)
    assert rep.totals["population"] == real.JINKO.sum() == blocks.population.sum()
    assert rep.totals["households"] == real.SETAI.sum()
    assert abs(rep.totals["area_diff_pct"]) < 0.05
    # names survive CP932 decoding verbatim
    name_col = "MOJI" if layout == "2015_legacy" else "S_NAME"
    by_key = real.drop_duplicates("KEY_CODE").set_index("KEY_CODE")[name_col]
    assert (blocks.set_index("key")["name"] == by_key.reindex(blocks.key).to_numpy()).all()
    assert blocks.name.str.contains("[０-９（]").any()
    if layout == "2015_legacy":
        assert any("JGD2000" in w for w in rep.warnings)


def test_dissolve_rules(raw_current):
    blocks, rep = normalize_townblocks(raw_current, muni_code="03901")
    raw_p = raw_current.to_crs(blocks.crs)
    multi = raw_p[raw_p.KIGO_E != ""]
    assert blocks.multipart.sum() == multi.KEY_CODE.nunique() == rep.flags["multipart"]
    b = blocks.set_index("key")
    for key, grp in multi.groupby("KEY_CODE"):
        e1 = grp[grp.KIGO_E == "E1"].iloc[0]
        assert b.loc[key, "population"] == e1.JINKO
        assert b.loc[key, "households"] == e1.SETAI
        assert b.loc[key, "area_official_m2"] == pytest.approx(grp.AREA.sum())
        assert b.loc[key, "geometry"].area == pytest.approx(grp.geometry.area.sum(), rel=1e-6)
        assert b.loc[key, "KIGO_E"] == "E1"    # attributes come from the E1 row
    detached = b[b.enclave]
    assert (detached.geometry.geom_type == "MultiPolygon").all()
    assert b.loc[b.island].geometry.area.max() < 5e6


def test_water_and_placeholder_dropped_and_reported(raw_current):
    blocks, rep = normalize_townblocks(raw_current, muni_code="03901")
    reasons = {d["reason"].split(" (")[0]: d for d in rep.dropped}
    assert reasons["water area"]["count"] == 2
    assert reasons["placeholder for another municipality's area"]["keys"] == ["03"]
    assert not blocks.key.str.len().eq(2).any()
    assert not blocks.HCODE.eq(8154).any()
    text = rep.to_text()
    assert "水面" in text and "HCODE 8154" in text


def _bowtie(x0, y0, x1, y1):
    return shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1), (x0, y0)])


def _spike(x0, y0, x1, y1):
    """A square with a zero-width spike: make_valid gives Polygon + LineString."""
    ym = (y0 + y1) / 2
    return shapely.Polygon([(x0, y0), (x1, y0), (x1, ym), (x1 + (x1 - x0), ym), (x1, ym), (x1, y1), (x0, y1)])


@pytest.mark.parametrize("make_bad", [_bowtie, _spike])
def test_invalid_geometry_is_repaired_and_reported(raw_current, make_bad):
    raw = raw_current.copy()
    i = int(np.flatnonzero((raw.KIGO_E == "").to_numpy() & (raw.HCODE == 8101).to_numpy())[5])
    raw.loc[raw.index[i], "geometry"] = make_bad(*raw.geometry.iloc[i].bounds)
    assert not raw.geometry.iloc[i].is_valid
    key = raw.KEY_CODE.iloc[i]
    blocks, rep = normalize_townblocks(raw, muni_code="03901")
    row = blocks.set_index("key").loc[key]
    assert row.repaired and row.geometry.is_valid and row.geometry.area > 0
    assert row.geometry.geom_type in ("Polygon", "MultiPolygon")
    assert rep.flags["repaired"] == 1 and len(blocks) == N
    assert rep.repairs[0]["key"] == key
    assert rep.repairs[0]["problem"].split("[")[0] in ("Self-intersection", "Ring Self-intersection")
    assert blocks.geometry.is_valid.all()


def test_collapsed_polygon_is_dropped_and_reported(raw_current):
    raw = raw_current.copy()
    i = int(np.flatnonzero((raw.KIGO_E == "").to_numpy() & (raw.HCODE == 8101).to_numpy())[7])
    x0, y0, x1, y1 = raw.geometry.iloc[i].bounds
    raw.loc[raw.index[i], "geometry"] = shapely.Polygon([(x0, y0), (x1, y1), (x0, y0), (x1, y1)])
    blocks, rep = normalize_townblocks(raw, muni_code="03901")
    assert len(blocks) == N - 1
    gone = [d for d in rep.dropped if d["reason"] == "geometry empty after repair"]
    assert gone and gone[0]["keys"] == [raw.KEY_CODE.iloc[i]]


@pytest.fixture(scope="module")
def pref_file(tmp_path_factory):
    """A prefecture-wide file holding two municipalities side by side."""
    a = synthetic_estat(120, seed=1, muni_code="03901")
    b = synthetic_estat(90, seed=2, muni_code="03902", offset_m=(80_000.0, 0.0))
    both = pd.concat([a, b], ignore_index=True)
    both["H27KA03_"] = np.arange(len(both)) + 1
    both["H27KA03_ID"] = np.arange(len(both))
    path = tmp_path_factory.mktemp("pref") / "h27ka03.shp"
    return write_estat_shapefile(both, path, layout="2015_current"), b


def test_prefecture_file_selects_one_municipality(pref_file):
    path, b = pref_file
    blocks, rep = read_townblocks(path, muni_code="039021")   # 6-digit code with check digit
    assert len(blocks) == 90 and set(blocks.muni_code) == {"03902"}
    assert rep.totals["population"] == _real(b).JINKO.sum()
    other = [d for d in rep.dropped if d["reason"].startswith("other municipalities")]
    assert other and other[0]["keys"] == ["03901"]
    everything, rep2 = read_townblocks(path)
    assert len(everything) == 210 and rep2.muni_codes == ["03901", "03902"]


def test_absent_municipality_lists_the_codes_present(pref_file):
    with pytest.raises(UserError) as exc:
        read_townblocks(pref_file[0], muni_code="03205")
    assert "03205 is not in the file" in exc.value.message
    assert "03901, 03902" in exc.value.message


def test_zipped_shapefile(files, tmp_path):
    raw, path = files["2020"]
    z = tmp_path / "r2ka03901.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in sorted(path.parent.iterdir()):
            zf.write(p, f"r2ka03901/{p.name}")
    blocks, rep = read_townblocks(z)
    direct, _ = read_townblocks(path)
    assert rep.source.endswith(".shp") and "!" in rep.source
    assert rep.encoding == "cp932" and "0x13" in rep.encoding_reason
    pd.testing.assert_series_equal(blocks.key, direct.key)
    assert blocks.geom_equals_exact(direct.geometry, tolerance=1e-6).all()


def test_zip_without_dbf_says_so(files, tmp_path):
    path = files["2020"][1]
    z = tmp_path / "broken.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in sorted(path.parent.iterdir()):
            if p.suffix != ".dbf":
                zf.write(p, p.name)
    with pytest.raises(UserError, match=r"no \.dbf"):
        read_townblocks(z)


def _mapped_frame():
    raw = synthetic_estat(80, seed=4)
    real = _real(raw).drop_duplicates("KEY_CODE")
    return gpd.GeoDataFrame({"code": real.KEY_CODE.to_numpy(), "town": real.S_NAME.to_numpy(),
                             "pop": real.JINKO.to_numpy(), "hh": real.SETAI.to_numpy(),
                             "city": "03901"}, geometry=real.geometry.to_numpy(), crs=raw.crs)


MAPPING = ColumnMapping(key="code", name="town", population="pop", households="hh", muni_code="city")


def test_geopackage_with_mapping_and_layer(tmp_path):
    src = _mapped_frame()
    p = tmp_path / "blocks.gpkg"
    src.to_file(p, layer="blocks")
    src.iloc[:3].to_file(p, layer="other")
    with pytest.raises(UserError, match="2 layers"):
        read_townblocks(p, mapping=MAPPING)
    blocks, rep = read_townblocks(p, mapping=MAPPING, layer="blocks")
    assert rep.layout == "mapped" and len(blocks) == len(src)
    assert blocks.population.sum() == src["pop"].sum()
    assert set(blocks.name) == set(src.town)


def test_geojson_with_mapping_and_numeric_keys_are_text_with_a_warning(tmp_path):
    src = _mapped_frame()
    src["code"] = src["code"].astype("int64")   # a careless re-export
    p = tmp_path / "blocks.geojson"
    src.to_file(p, driver="GeoJSON")
    blocks, rep = read_townblocks(p, mapping=ColumnMapping(key="code", population="pop", muni_code="city"))
    assert blocks.key.str.fullmatch(r"3901\d{4}(\d\d)?").all()     # text, no '.0', zero already lost
    assert any("stored as a number" in w for w in rep.warnings)
    assert blocks.population.sum() == src["pop"].sum()
    assert rep.encoding == "UTF-8"


def test_estat_keycode_stored_as_number_is_zero_padded_with_warning(tmp_path):
    raw = _real(synthetic_estat(60, seed=4))
    raw = raw.assign(KEY_CODE=raw.KEY_CODE.astype("int64"))
    p = tmp_path / "estat.geojson"
    raw.to_file(p, driver="GeoJSON")
    blocks, rep = read_townblocks(p)
    assert blocks.key.str.startswith("03901").all()
    assert any("leading zero" in w for w in rep.warnings)


def test_mapping_with_missing_column_lists_the_columns(tmp_path):
    p = tmp_path / "blocks.gpkg"
    _mapped_frame().to_file(p)
    with pytest.raises(UserError, match="mapped columns not in the layer") as exc:
        read_townblocks(p, mapping=ColumnMapping(key="KEY"))
    assert "code" in exc.value.message


def test_utf8_shapefile_with_cpg_reads_and_without_cpg_is_detected(tmp_path):
    """A UTF-8 .dbf without its .cpg used to be refused; its bytes are valid UTF-8 and read as
    mojibake in CP932, so it is read as UTF-8 with a note (issue 10 §4)."""
    raw = synthetic_estat(50, seed=8, layout="2015_legacy")
    p = write_estat_shapefile(raw, tmp_path / "u.shp", layout="2015_legacy", cpg="UTF-8")
    blocks, rep = read_townblocks(p)
    assert rep.encoding == "utf-8" and ".cpg" in rep.encoding_reason
    assert blocks.KEN_NAME.eq("岩手県").all()
    p.with_suffix(".cpg").unlink()
    blocks1, rep1 = read_townblocks(p)
    assert rep1.encoding == "utf-8" and "valid UTF-8" in rep1.encoding_reason
    assert any("UTF-8" in f for f in rep1.fallbacks)
    assert blocks1.name.tolist() == blocks.name.tolist()
    blocks2, rep2 = read_townblocks(p, encoding="utf-8")
    assert rep2.encoding_reason == "given with --encoding" and len(blocks2) == 50
    with pytest.raises(UserError, match="mojibake|cannot be decoded") as exc:   # forcing CP932 still fails
        read_townblocks(p, encoding="cp932")
    assert "--encoding" in exc.value.message


def test_latin1_decoding_is_detected_as_mojibake(files):
    with pytest.raises(UserError, match="mojibake") as exc:
        read_townblocks(files["2015_current"][1], encoding="latin-1")
    assert "都/道/府/県" in exc.value.message and "--encoding" in exc.value.message


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(20, 160), seed=st.integers(0, 10_000), multi=st.floats(0.0, 0.2),
       isl=st.floats(0.0, 0.05), layout=st.sampled_from(["2015_legacy", "2015_current", "2020"]))
def test_property_totals_conserved_between_records_and_blocks(n, seed, multi, isl, layout):
    raw = synthetic_estat(n, seed=seed, multipart_share=multi, island_share=isl, layout=layout)
    blocks, rep = normalize_townblocks(raw, muni_code="03901")
    real = _real(raw)
    assert len(blocks) == n == real.KEY_CODE.nunique()
    assert blocks.population.sum() == real.JINKO.sum()
    assert blocks.households.sum() == real.SETAI.sum()
    assert blocks.area_official_m2.sum() == pytest.approx(real.AREA.sum(), rel=1e-9)
    area_raw = real.to_crs(blocks.crs).geometry.area.sum()
    assert blocks.geometry.area.sum() == pytest.approx(area_raw, rel=1e-6)
    assert rep.records_in == len(raw)


HANAMAKI_CSV = SHARED_DATA / "hanamaki_03205" / "estat2015_town_blocks_hanamaki.csv"


def test_real_hanamaki_attribute_table_as_a_legacy_shapefile(tmp_path):
    """The real 花巻市 e-Stat 2015 records (479) with stand-in squares at X_CODE/Y_CODE,
    written CP932 without .cpg like the source: 463 town-blocks, JINKO 97,702, SETAI 33,799."""
    need(HANAMAKI_CSV, "../shared/data (real 花巻 attribute table)")
    from subdivide.io.estat import field_kind, field_names

    df = pd.read_csv(HANAMAKI_CSV, dtype=str, keep_default_na=False)
    fields = field_names("2015_legacy", "03")
    for c in fields:
        kind = field_kind(c)
        if kind != "str":
            df[c] = pd.to_numeric(df[c]).astype("int64" if kind == "int" else "float64")
    x, y = df.X_CODE.to_numpy(), df.Y_CODE.to_numpy()
    jitter = np.arange(len(df)) * 1e-6        # parts of one unit share a point: keep squares distinct
    geom = shapely.box(x - 0.002 + jitter, y - 0.002, x + 0.002 + jitter, y + 0.002)
    g = gpd.GeoDataFrame(df[fields + ["old_muni_name"]].rename(columns={"old_muni_name": "OLD_MUNI"}),
                         geometry=geom, crs="EPSG:4612")
    p = write_estat_shapefile(g, tmp_path / "h27ka03205.shp", layout="2015_legacy")
    blocks, rep = read_townblocks(p, muni_code="03205")
    assert rep.layout == "2015_legacy" and rep.encoding == "cp932"
    assert rep.records_in == 479 and rep.blocks_out == 463
    assert rep.totals["population"] == 97_702 and rep.totals["households"] == 33_799
    assert rep.totals["area_official_km2"] == pytest.approx(907.6, abs=0.05)
    assert rep.flags["multipart"] == 14 and not rep.dropped
    assert "松林寺第３地割" in set(blocks.name)
    assert set(blocks.OLD_MUNI) == {"花巻市(旧)", "大迫町", "石鳥谷町", "東和町"}


def test_reading_is_deterministic_and_reports_progress(files):
    path = files["2015_current"][1]
    stages = []
    a, ra = read_townblocks(path, progress=lambda s, d, t: stages.append((s, d, t)))
    b, rb = read_townblocks(path)
    pd.testing.assert_frame_equal(a.drop(columns="geometry"), b.drop(columns="geometry"))
    assert (shapely.to_wkb(a.geometry.values) == shapely.to_wkb(b.geometry.values)).all()
    assert ra.to_dict() == rb.to_dict()
    assert ("dissolving multi-part units", 4, 4) in stages and stages[0][0] == "reading"


def test_zip_with_several_shapefiles_needs_layer_or_picks_by_municipality(files, tmp_path):
    z = tmp_path / "iwate.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for layout in ("2015_current", "2020"):
            path = files[layout][1]
            stem = "h27ka03901" if layout == "2015_current" else "r2ka03999"
            for p in sorted(path.parent.iterdir()):
                zf.write(p, f"{stem}{p.suffix}")
    with pytest.raises(UserError, match="2 Shapefiles") as exc:
        read_townblocks(z)
    assert "--layer" in exc.value.message
    _, rep = read_townblocks(z, layer="r2ka03999")
    assert rep.layout == "2020"
    _, rep = read_townblocks(z, muni_code="03901")
    assert rep.layout == "2015_current" and rep.source.endswith("h27ka03901.shp")
    # a wrong --layer said only "the zip holds 2 Shapefiles"; the file name with .shp was refused
    with pytest.raises(UserError, match="no Shapefile 'r2ka0399' in the zip") as exc:
        read_townblocks(z, layer="r2ka0399")
    assert "r2ka03999.shp" in exc.value.message
    _, rep = read_townblocks(z, layer="r2ka03999.shp")
    assert rep.layout == "2020"


def test_estat_file_with_a_missing_field_names_it(raw_current):
    with pytest.raises(UserError, match="not an e-Stat town-block layout") as exc:
        normalize_townblocks(raw_current.drop(columns=["SETAI"]), muni_code="03901")
    assert "2015_current lacks SETAI" in exc.value.message and "--key" in exc.value.message


def test_muni_selection_reports_only_this_municipalitys_water_and_placeholders(pref_file):
    """With --muni, the other municipality's water rows and placeholder were reported as
    this municipality's water / placeholders (4 water areas for a city that has 2)."""
    path, b = pref_file
    _, rep = read_townblocks(path, muni_code="03902")
    dropped = {d["reason"].split(" (")[0]: d for d in rep.dropped}
    water = dropped["water area"]
    assert water["keys"] and all(k.startswith("03902") for k in water["keys"])
    assert water["count"] == int((b.HCODE == 8154).sum())
    assert dropped["placeholder for another municipality's area"]["count"] == int((b.KEY_CODE.str.len() <= 2).sum())
    assert dropped["other municipalities"]["count"] == rep.records_in - len(b)   # every 03901 row
    assert rep.records_in - sum(d["count"] for d in rep.dropped) == len(_real(b))


def test_mapped_layer_without_population_reports_none_not_zero(tmp_path):
    """A mapped layer without --population printed 'population (人口 JINKO): 0'."""
    src = _mapped_frame()
    p = tmp_path / "blocks.gpkg"
    src.to_file(p, layer="blocks")
    _, rep = read_townblocks(p, mapping=ColumnMapping(key="code", muni_code="city"))
    assert rep.totals["population"] is None and rep.totals["households"] is None
    text = rep.to_text()
    assert "--population COL" in text and "--households COL" in text
    _, rep = read_townblocks(p, mapping=MAPPING)
    assert rep.totals["population"] == src["pop"].sum()


def test_municipality_names_fall_back_row_by_row_and_drop_control_characters():
    """The one owner of a municipality's name: CITY_NAME, else GST_NAME + CSS_NAME without the
    郡, else SHICHOSON / MUNI_NAME — per row, so a blank CITY_NAME falls back; the most frequent
    name per code; escape and bidi characters dropped (a name is data for terminals and files)."""
    import pandas as pd

    from subdivide.io.townblocks import municipality_name, municipality_names

    df = pd.DataFrame({"CITY_NAME": ["鳥取市", "鳥取市", "鳥取", "", None, "\x1b[31m米子市\u202e"],
                       "GST_NAME": ["", "", "", "岩美郡", "", ""], "CSS_NAME": ["", "", "", "岩美町", "", ""],
                       "SHICHOSON": ["", "", "", "", "日吉津村", ""]})
    codes = pd.Series(["31201", "31201", "31201", "31302", "31384", "31202"])
    assert municipality_names(df, codes) == {"31201": "鳥取市", "31302": "岩美町", "31384": "日吉津村",
                                             "31202": "[31m米子市"}
    assert municipality_name(df.assign(muni_code=codes), "31302") == "岩美町"
    assert municipality_name(df.assign(muni_code=codes)) == "鳥取市"              # the first code's
    assert municipality_name(pd.DataFrame({"muni_code": ["03205"], "x": [1]})) == ""


def test_block_names_with_line_breaks_become_one_line_labels(shared_data, tmp_path):
    """A town-block name holding a line break (or a tab, or U+202E) would split a row of the
    carriers' lists: the reader makes it one line, says so, and the package it leads to
    validates clean (real 鳥取市 polygons)."""
    import geopandas as gpd

    from subdivide.cli.main import main
    from subdivide.io.townblocks import read_townblocks

    src = need(shared_data / "tottori_31_estat2015" / "h27ka31.shp", "鳥取県 e-Stat file")
    g = gpd.read_file(src, encoding="cp932")
    g = g[g["CITY"].astype(str).str.zfill(3) == "202"].copy()          # 米子市
    first = g.index[0]
    g.loc[first, "MOJI"] = "{{ 7*7 }}<script>\n町\t\u202e東"
    g.to_file(tmp_path / "h27ka31.shp", encoding="utf-8")
    blocks, report = read_townblocks(tmp_path / "h27ka31.shp")
    named = blocks.loc[blocks["name"].str.startswith("{{"), "name"].tolist()
    assert named == ["{{ 7*7 }}<script> 町 東"]
    assert any("1 town-block names held line breaks" in w for w in report.warnings)
    plain, _ = read_townblocks(src, muni_code="31202")
    others = blocks[~blocks["name"].str.startswith("{{")]
    assert others["name"].tolist() == plain.set_index("key").loc[others["key"], "name"].tolist()
    out = tmp_path / "run"
    assert main(["run", str(tmp_path / "h27ka31.shp"), "--auto", "--k", "2", "--restarts", "1",
                 "--out", str(out)]) == 0
    assert "CLEAN" in (out / "validation.txt").read_text(encoding="utf-8")
