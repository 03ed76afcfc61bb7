"""The council-review map (subdivide.present.map) without a browser: content, escaping,
offline self-containment, display geometry, determinism, CLI. Browser checks are in
test_map_browser.py."""
from __future__ import annotations

import hashlib
import html
import os
import re
import subprocess
import sys

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import given, settings, strategies as st

from subdivide.core.errors import UserError
from subdivide.present.map import (
    BASEMAPS,
    GSI_ATTRIBUTION,
    OFFLINE_ASSETS,
    PALETTE,
    build_map,
    display_coverage,
    escape_text,
    exposure_geometry,
    external_references,
    render_map,
    spill_view,
    to_display,
)
from subdivide.model.plan import Plan

HOSTILE = "<script>alert(1)</script>"


def expected_layers(distances=(2, 2.5, 3), points=False):
    """The overlays of the layer control: the spill bands are not there (one band at one L
    is chosen in the spill panel, see spill_groups)."""
    out = ["細分化エリア", "町丁・字の境界"]
    if points:
        out.append("支所・計測地点")
    return out + ["エリア名ラベル"]


def spill_groups(page: str) -> dict:
    """band → {L label: layer variable} of the spill selector."""
    import json

    m = re.search(r"var groups = (\{.*?\}\});", page)
    assert m, "no spill selector"
    return json.loads(m.group(1))


def plan_from(blocks, rename=None):
    blocks = blocks.copy()
    if rename:
        for key, name in rename.items():
            blocks.loc[blocks["key"] == key, "name"] = name
    exc = blocks.loc[blocks["island"] | blocks["enclave"], "key"]
    return Plan.from_assignment(blocks, blocks.set_index("key")["OLD_MUNI"], island_exceptions=exc)


@pytest.fixture(scope="module")
def hostile_plan(synthetic_blocks):
    """A synthetic plan whose first town-block is named like an XSS payload and whose
    first sub-area has a name with quotes, ampersand, backtick and ${}."""
    b = synthetic_blocks(300, seed=3)
    plan = plan_from(b, {b["key"].iloc[0]: HOSTILE})
    table = plan.subareas.copy()
    table.loc[0, "name"] = 'A&B "地域" `${x}` </b>地域'   # the plan wants 「…地域」
    return plan.with_assignment(plan.blocks["subarea"].to_numpy(), table)


@pytest.fixture(scope="module")
def offices():
    from conftest import SAMPLE_DIR, need

    return gpd.read_file(need(SAMPLE_DIR / "offices.geojson", "bundled offices"))


@pytest.fixture(scope="module")
def sample_spill(sample_plan):
    from subdivide.analysis.spill import spill_report

    return spill_report(sample_plan)


@pytest.fixture(scope="module")
def sample_pages(sample_plan, offices, sample_spill):
    """The sample map online (pale) and offline (no basemap), rendered once."""
    online = render_map(sample_plan, spill=sample_spill, points=offices, basemap="pale", offline=False)
    offline = render_map(sample_plan, spill=sample_spill, points=offices, basemap="none", offline=True,
                         note="境界は推定形状です")
    return _unescape_js(online), _unescape_js(offline)


# ---------------------------------------------------------------------- escaping
@given(st.text(max_size=40))
@settings(max_examples=200, deadline=None)
def test_escape_text_is_inert_and_reversible(text):
    esc = escape_text(text)
    assert not set(esc) & set("<>\"'`$\\")
    assert html.unescape(esc) == text


def _unescape_js(page: str) -> str:
    """Undo JSON's \\uXXXX escapes (jinja's tojson writes < > & ' that way)."""
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), page)


def test_hostile_names_never_reach_the_page_raw(hostile_plan):
    page = render_map(hostile_plan, basemap="none", offline=True)
    js = _unescape_js(page)
    for raw in (HOSTILE, 'A&B "地域"', "`${x}`", "<script>alert"):
        assert raw not in page, raw
    # in the JSON data the verbatim name exists once, for the search (shown as text)
    assert js.count(HOSTILE) == 1 and f'"search":"{HOSTILE}"' in js
    assert 'A&B "地域"' not in js and "`${x}`" not in js
    # the names are there, as escaped text (town-block tooltip/search data and legend)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in js
    assert "A&amp;B &quot;地域&quot; &#96;&#36;{x}&#96; &lt;/b&gt;" in js


# ---------------------------------------------------------------------- content
def test_layers_basemaps_and_attribution(sample_pages):
    online, _ = sample_pages
    for name in expected_layers(points=True):
        assert name in online, name
    for key, (name, url) in BASEMAPS.items():
        assert name in online and url in online
    assert "背景地図なし" in online
    assert GSI_ATTRIBUTION.replace('"', '\\"') in online
    assert "maps.gsi.go.jp/development/ichiran.html" in online
    assert "細分化エリア" in online and "町丁・字名で検索" in online and "全画面表示" in online
    assert "L.control.scale" in online and "L.Control.Measure" in online
    assert '"measureDistancesAndAreas":"距離と面積を計測"' in online.replace(": ", ":")  # Japanese measure locale


def test_sample_legend_lists_every_subarea_with_numbers(sample_plan, sample_pages, sample_spill):
    _, offline = sample_pages
    m = sample_plan.metrics
    for r in m.itertuples():
        assert r.name in offline
        assert f"{int(r.population):,}" in offline
        assert f"{r.area_km2:,.1f}" in offline
    view = spill_view(sample_plan, sample_spill)
    first = view.shares[view.shares["distance_km"] == 2.0]
    for v in first["core_share"]:
        assert f"{100 * v:.0f} %" in offline


def test_palette_distinct_for_fourteen_subareas():
    assert len(set(PALETTE)) == 14


# ---------------------------------------------------------------------- offline
def test_offline_page_references_nothing_external(sample_pages):
    online, offline = sample_pages
    assert external_references(offline) == []
    assert "cdn.jsdelivr" not in offline and "cyberjapandata" not in offline
    # what is left are plain links (Leaflet's own attribution <a href>), never fetched
    tags = re.findall(r"""<(\w+)[^<>]*?\b(?:src|href)\s*=\s*\\?["']?https?://""", offline)
    assert set(tags) <= {"a"}, tags
    # the online page does use the CDN (and the checker finds it)
    assert external_references(online)
    assert "leaflet@1.9.3/dist/leaflet.js" in online
    # no jQuery / Bootstrap / Font Awesome anywhere
    for lib in ("jquery", "bootstrap", "fontawesome", "awesome-markers"):
        assert lib not in online.lower()


def test_offline_with_basemap_keeps_only_tile_urls(hostile_plan):
    page = render_map(hostile_plan, basemap="photo", offline=True, distances_km=(2,))
    assert external_references(page) == []
    hosts = set(re.findall(r"https?://([^/\"'\\]+)", page))
    # tiles, their attribution link, and links inside the inlined libraries' comments
    assert "cyberjapandata.gsi.go.jp" in hosts
    assert not any("jsdelivr" in h or "cloudflare" in h or "jquery" in h for h in hosts)


def test_vendored_assets_exist_and_are_inlined(sample_pages):
    from subdivide.present.map import ASSET_DIR

    _, offline = sample_pages
    for url, (fname, images) in OFFLINE_ASSETS.items():
        assert (ASSET_DIR / fname).is_file(), fname
        for img in images.values():
            assert (ASSET_DIR / img).is_file(), img
    assert offline.count("data:image/png;base64,") >= 10
    for fname, _ in OFFLINE_ASSETS.values():
        text = (ASSET_DIR / fname).read_text(encoding="utf-8")
        snippet = text[len(text) // 2: len(text) // 2 + 80]
        assert _unescape_js(snippet) in offline, fname


# ---------------------------------------------------------------------- geometry
def _coverage_checks(orig, simp):
    assert shapely.coverage_is_valid(simp)
    assert shapely.is_valid(simp).all()
    area = shapely.area(simp).sum()
    union = shapely.area(shapely.union_all(simp))
    assert union == pytest.approx(area, rel=1e-9)                      # no overlaps
    assert union == pytest.approx(shapely.area(shapely.union_all(orig)), rel=2e-3)  # no gaps opened
    # every pair of neighbours still shares a border (no slivers between them)
    t = shapely.STRtree(orig)
    a, b = t.query(orig, predicate="touches")
    keep = a < b
    shared = shapely.length(shapely.intersection(shapely.boundary(orig[a[keep]]), shapely.boundary(orig[b[keep]])))
    long = shared > 200
    s_shared = shapely.length(shapely.intersection(shapely.boundary(simp[a[keep][long]]),
                                                   shapely.boundary(simp[b[keep][long]])))
    assert (s_shared > 0).all()


def test_display_coverage_keeps_shared_borders_on_synthetic(synthetic_blocks):
    g = synthetic_blocks(1500, seed=2).geometry.values
    simp, done = display_coverage(g, 25.0)
    assert done
    assert shapely.get_num_coordinates(simp).sum() < shapely.get_num_coordinates(g).sum()
    _coverage_checks(g, simp)


def test_display_coverage_on_the_sample(sample_blocks):
    g = sample_blocks.geometry.values
    simp, done = display_coverage(g, 15.0)
    assert done
    _coverage_checks(g, simp)


def test_display_coverage_cleans_mismatched_neighbours_first(synthetic_blocks):
    """Real files are often not exact coverages (neighbours' vertices differ by
    millimetres): shift every other block by 2 mm, then the display must still be a
    valid, gap-free coverage."""
    g = synthetic_blocks(600, seed=6).geometry.values.copy()
    g[::2] = shapely.transform(g[::2], lambda c: c + 0.002)
    assert not shapely.coverage_is_valid(g)
    simp, done = display_coverage(g, 20.0)
    assert done
    _coverage_checks(g, simp)


def test_display_coordinates_are_rounded_and_shared(synthetic_blocks):
    b = synthetic_blocks(400, seed=4)
    simp, _ = display_coverage(b.geometry.values, 15.0)
    ll = to_display(simp, b.crs)
    xy = shapely.get_coordinates(ll)
    assert np.allclose(xy, np.round(xy, 6), atol=0, rtol=0)
    assert 120 < xy[:, 0].min() < 150 and 20 < xy[:, 1].min() < 50
    assert shapely.coverage_is_valid(ll)


def test_exposure_geometry_matches_spill_report(sample_plan):
    """The exposure polygons are the report's reach cut by each neighbour: their areas are
    the report's exposure areas (the sum over the neighbour's town-blocks), to float noise."""
    from subdivide.analysis.spill import spill_report

    rep = spill_report(sample_plan, distances_km=(2.5,))
    e = rep.exposure[rep.exposure["population_source"] == "townblocks"]
    mine = exposure_geometry(sample_plan, 2.5, spill=rep)
    assert len(mine) == len(e) >= 3
    assert shapely.area(mine.geometry.values) / 1e6 == pytest.approx(mine["area_km2"].to_numpy(), rel=1e-9)
    theirs = e.set_index(["from_subarea", "to_subarea"])
    got = mine.set_index(["source", "target"])
    assert got["population"].to_numpy() == pytest.approx(theirs.loc[got.index, "population"].to_numpy(), rel=1e-12)


# ---------------------------------------------------------------------- determinism, writing
def test_rendering_is_deterministic(hostile_plan):
    a = render_map(hostile_plan, basemap="std", offline=True)
    b = render_map(hostile_plan, basemap="std", offline=True)
    assert a == b
    assert not re.search(r"[0-9a-f]{32}", a.split("<script>\n", 1)[0])  # no random folium ids


@pytest.mark.slow
def test_map_bytes_identical_across_processes(tmp_path, sample_shp):
    code = (
        "import sys, hashlib;from subdivide.io.townblocks import read_townblocks;from subdivide.model.plan import Plan;"
        "from subdivide.present.map import build_map;"
        f"b,_=read_townblocks(r'{sample_shp}');p=Plan.from_assignment(b,b.set_index('key')['OLD_MUNI']);"
        "build_map(p, sys.argv[1], offline=True, basemap='none')"
    )
    digests = []
    for seed in ("1", "2"):
        out = tmp_path / f"m{seed}.html"
        subprocess.run([sys.executable, "-c", code, str(out)], check=True,
                       env={**os.environ, "PYTHONHASHSEED": seed})
        digests.append(hashlib.sha256(out.read_bytes()).hexdigest())
    assert digests[0] == digests[1]


def test_build_map_refuses_overwrite_and_bad_options(tmp_path, hostile_plan):
    out = tmp_path / "m.html"
    build_map(hostile_plan, out, basemap="none")
    before = out.read_bytes()
    with pytest.raises(UserError, match="already exists"):
        build_map(hostile_plan, out, basemap="none")
    with pytest.raises(UserError, match="basemap"):
        build_map(hostile_plan, tmp_path / "x.html", basemap="osm")
    with pytest.raises(UserError, match="distances"):
        build_map(hostile_plan, tmp_path / "y.html", distances_km=(2, -1))
    assert not (tmp_path / "x.html").exists() and not (tmp_path / "y.html").exists()
    build_map(hostile_plan, out, basemap="none", distances_km=(3,), force=True)
    assert out.read_bytes() != before
    assert list(tmp_path.iterdir()) == [out]  # no temporary files left


def test_coverage_sites_and_points_layers(hostile_plan):
    d = hostile_plan.dissolved
    cells = gpd.GeoDataFrame({"carrier": ["docomo", "docomo", "KDDI"], "subarea": [1, 2, 1]},
                             geometry=list(shapely.buffer(shapely.centroid(d.geometry.values[[0, 1, 0]]), 3000)),
                             crs=hostile_plan.crs)
    sites = gpd.GeoDataFrame({"carrier": ["docomo", "KDDI"], "site_id": ["S<1>", "S2"]},
                             geometry=list(shapely.centroid(d.geometry.values[:2])), crs=hostile_plan.crs)
    pts = gpd.GeoDataFrame({"name": ["本庁舎", HOSTILE]}, geometry=list(shapely.centroid(d.geometry.values[:2])),
                           crs=hostile_plan.crs).to_crs(4326)
    page = _unescape_js(render_map(hostile_plan, coverage=cells, sites=sites, points=pts, basemap="none",
                                   distances_km=(2,)))
    for name in ("キャリア推定エリア（docomo）", "キャリア推定エリア（KDDI）", "基地局（docomo）", "基地局（KDDI）",
                 "支所・計測地点", "本庁舎"):
        assert name in page, name
    assert page.count(HOSTILE) == 1 and '"search":"' + HOSTILE in page  # only the search copy
    assert "S<1>" not in page and "S&lt;1&gt;" in page


# ---------------------------------------------------------------------- CLI
def test_cli_map_writes_offline_file(tmp_path, hostile_plan, capsys):
    """Every map opens with no internet: the default inlines every library; --cdn links them."""
    from subdivide.cli.main import main

    plan_path = tmp_path / "h.plan.gpkg"
    hostile_plan.save(plan_path)
    out = tmp_path / "review.html"
    offices = "data/hanamaki_03205/offices.geojson"
    args = ["map", str(plan_path), "-o", str(out), "--basemap", "none", "--distances", "2,3"]
    if os.path.exists(offices):
        args += ["--points", offices]
    assert main(args) == 0
    page = _unescape_js(out.read_text(encoding="utf-8"))
    assert external_references(page) == [] and "の内側コア (L = 3 km)" in page and "L = 2.5 km" not in page
    assert {b: sorted(g) for b, g in spill_groups(page).items()} == {b: ["2", "3"] for b in ("core", "exposure", "reach")}
    assert "wrote" in capsys.readouterr().out
    assert main(args) == 2  # exists
    assert "already exists" in capsys.readouterr().err
    cdn = tmp_path / "cdn.html"
    assert main(["map", str(plan_path), "-o", str(cdn), "--basemap", "none", "--distances", "2", "--cdn"]) == 0
    linked = cdn.read_text(encoding="utf-8")
    assert len(external_references(linked)) == 6 == linked.count('="https://cdn.jsdelivr.net/npm/')
    assert cdn.stat().st_size < out.stat().st_size
    with pytest.raises(SystemExit) as exc:                                  # argparse: one or the other
        main(["map", str(plan_path), "-o", str(tmp_path / "c.html"), "--cdn", "--offline"])
    assert exc.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
    assert main(["map", str(plan_path), "-o", str(tmp_path / "b.html"), "--distances", "2,x"]) == 2
    assert main(["map", str(tmp_path / "missing.gpkg")]) == 2
    assert not (tmp_path / "b.html").exists()


@pytest.mark.slow
def test_committed_maps_are_regenerated_output(tmp_path, sample_shp):
    """maps/ holds the output of maps/regenerate.py, not hand edits (the HTML files; the
    PNGs depend on the installed fonts and are checked by `regenerate.py --check`)."""
    import importlib.util

    from conftest import ROOT, need

    maps = ROOT / "maps"
    need(maps / "hanamaki_review.html", "maps/ (python maps/regenerate.py)")
    spec = importlib.util.spec_from_file_location("regenerate", maps / "regenerate.py")
    regen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(regen)
    regen.build(tmp_path)
    for name in ("hanamaki_review.html", "hanamaki_review_offline.html", "report/report.html"):
        assert (tmp_path / name).read_bytes() == (maps / name).read_bytes(), f"maps/{name} is stale"
    assert external_references((maps / "hanamaki_review_offline.html").read_text(encoding="utf-8")) == []


@pytest.fixture(scope="module")
def carrier_files(tmp_path_factory, hostile_plan):
    """Synthetic site lists and their coverage (two carriers), written as files."""
    from subdivide.analysis.sites import coverage_from_sites, synthetic_sites

    d = tmp_path_factory.mktemp("carriers")
    outline = hostile_plan.dissolved.union_all()
    sites = synthetic_sites(outline, isd_km=7, seed=2, crs=hostile_plan.crs, carriers=("docomo", "KDDI"))
    cov = coverage_from_sites(sites, crs=hostile_plan.crs)
    sites.to_csv(d / "sites.csv", index=False)
    for car in ("docomo", "KDDI"):
        cov[cov["carrier"] == car].drop(columns=["nominal"]).to_file(d / f"{car}.gpkg")
    return d, sites, cov


def test_footprints_from_cell_coverage(hostile_plan, carrier_files):
    from subdivide.analysis.coverage import select_cells
    from subdivide.present.map import carrier_footprints

    _, _, cov = carrier_files
    fp = carrier_footprints(hostile_plan, cov)
    sel = select_cells(hostile_plan, cov)
    assert len(fp) == len(sel.groupby(["carrier", "subarea"]))
    assert set(fp["carrier"]) == {"docomo", "KDDI"}
    # every footprint covers its sub-area (rule 'any' selects every overlapping cell)
    d = hostile_plan.dissolved.set_index("subarea").geometry
    for r in fp.itertuples():
        inside = shapely.area(shapely.intersection(r.geometry, d.loc[r.subarea])) / shapely.area(d.loc[r.subarea])
        assert inside > 0.99


def test_cli_map_with_coverage_and_sites(tmp_path, hostile_plan, carrier_files):
    from subdivide.cli.main import main

    d, sites, _ = carrier_files
    plan_path = tmp_path / "p.plan.gpkg"
    hostile_plan.save(plan_path)
    out = tmp_path / "m.html"
    assert main(["map", str(plan_path), "-o", str(out), "--basemap", "none", "--offline", "--distances", "2",
                 "--coverage", str(d / "docomo.gpkg"), "--coverage", str(d / "KDDI.gpkg"),
                 "--sites", str(d / "sites.csv")]) == 0
    page = _unescape_js(out.read_text(encoding="utf-8"))
    for name in ("キャリア推定エリア（docomo）", "キャリア推定エリア（KDDI）", "基地局（docomo）", "基地局（KDDI）"):
        assert name in page
    n_sites = sites.drop_duplicates(["carrier", "site_id"]).shape[0]
    assert page.count('"type":"Point"') == n_sites < len(sites)   # one marker per site, not per sector
    assert main(["map", str(plan_path), "-o", str(tmp_path / "n.html"), "--sites", str(d / "none.csv")]) == 2


@pytest.fixture(scope="module")
def single_plan(synthetic_blocks):
    """The degenerate plan: one sub-area (nothing to spill into)."""
    import pandas as pd

    b = synthetic_blocks(200, seed=8, n_old=1)
    exc = b.loc[b["island"] | b["enclave"], "key"]
    return Plan.from_assignment(b, pd.Series("全域", index=b["key"]), island_exceptions=exc)


def test_single_subarea_map_has_empty_exposure_layers(single_plan):
    view = spill_view(single_plan, None, (2.0,))
    assert len(view.exposure) == 0
    page = _unescape_js(render_map(single_plan, basemap="none", distances_km=(2,)))
    for name in expected_layers((2,)):
        assert name in page
    assert "全域地域" in page
    assert sorted(spill_groups(page)) == ["core", "exposure", "reach"]
    assert "全域地域の配信が届く範囲 (L = 2 km)" in page


def test_map_explains_itself_without_a_note(hostile_plan):
    """The legend says what the dark dashed cores are; the explanation carries a standing
    caution (spill is a uniform-L estimate, borders simplified) even without --note."""
    page = html.unescape(_unescape_js(render_map(hostile_plan, basemap="none", distances_km=(2,))))
    assert "濃い色・点線の内側＝内側コア" in page
    assert "非到達率＝内側コアの面積 ÷ エリアの面積" in page
    assert "この地図の見方（色・点線・用語の説明）" in page
    assert "漏れの範囲は「境界から一律 L km 届く」と仮定した目安" in page
    assert "境界線は表示のため簡略化しています" in page
    assert "色は配信元エリアの色" in page
    # long names wrap inside the legend instead of pushing it off screen
    assert re.search(r"\.sd-legend td\.sd-name \{[^}]*white-space: normal", page)
    assert re.search(r"\.sd-legend \{[^}]*overflow-y: auto", page)


def test_points_are_kept_on_top_of_later_layers(hostile_plan, offices):
    page = render_map(hostile_plan, basemap="none", distances_km=(2,), points=offices)
    m = re.search(r"\.on\('overlayadd sd-spill', function \(\) \{\s*\[(geo_json_\w+)\]", page)
    assert m and f"var {m.group(1)} = L.geoJson(" in page
    assert ".on('overlayadd" not in render_map(hostile_plan, basemap="none", distances_km=(2,))


# ---------------------------------------------------------------------- spill panel, policy, offline
def test_spill_bands_explain_themselves_in_words(sample_plan, sample_pages, sample_spill):
    """Each band has a legend line per sub-area in words, with its name and L; one band at
    one L at a time (a selector, not nine toggles); the shortest L's core shown first."""
    offline = sample_pages[1].replace('\\"', '"')   # the panels' HTML sits in JSON strings
    groups = spill_groups(offline)
    assert sorted(groups) == ["core", "exposure", "reach"]
    assert all(sorted(g) == ["2", "2.5", "3"] for g in groups.values())
    for name in sample_plan.subareas["name"]:
        for L in ("2", "2.5", "3"):
            assert f"{name}の配信が届く範囲 (L = {L} km)" in offline
            assert f"{name}の配信が隣のエリアに届く部分 (L = {L} km)" in offline
            assert f"{name}の内側コア (L = {L} km)：" in offline
    assert '<select class="sd-l" aria-label="漏れ距離 L">' in offline
    assert '<option value="2" selected>L = 2 km</option>' in offline
    assert 'value="core" checked' in offline
    # the spill groups are outside the layer control
    assert not re.search(r'"[^"]*(内側コア|外側到達範囲|隣接エリアへの漏れ)[^"]*" : feature_group_', offline)
    # model figures are labelled as the geometric estimate they are
    assert "受信確率のモデル値ではありません" in offline


def test_values_below_the_policy_are_marked_as_the_report_marks_them(sample_plan, sample_pages, sample_spill):
    offline = sample_pages[1].replace('\\"', '"')
    view = spill_view(sample_plan, sample_spill)
    below = view.shares[view.shares["core_share"] < 0.5]
    assert 0 < len(below) < len(view.shares)
    # legend table: ▼ and red for each share below 50 %, none for the others
    cells = re.findall(r'<td class="sd-below" title="目安 50% 未満">▼(\d+) %</td>', offline)
    assert sorted(int(c) for c in cells) == sorted(round(100 * v) for v in below["core_share"])
    # spill panel: the same sub-areas flagged at the same L
    flagged = re.findall(r'data-band="core" data-l="([0-9.]+)".*?</div>', offline)
    assert flagged == ["2", "2.5", "3"]
    for L, grp in below.groupby("distance_km"):
        block = re.search(rf'data-band="core" data-l="{L:g}"(.*?)</div>', offline).group(1)
        assert block.count("▼目安 50% 未満") == len(grp)
    # on the map: the core polygons carry the flag and get a red outline
    assert offline.count('"below":"1"') == len(below)
    assert "BELOW" not in offline and "#c00000" in offline


def test_tile_failure_is_announced(sample_pages):
    online, _ = sample_pages
    assert "tileerror" in online and "背景地図（地理院タイル）を読み込めません" in online
    assert "エリア・境界・数値はこのまま表示されます" in online


@pytest.mark.slow
def test_package_map_is_offline_and_requests_no_tiles_by_default(sample_plan, tmp_path):
    from subdivide.carrier.package import build_package
    from subdivide.present.map import NO_BASEMAP_NAME, package_map_writer

    out = build_package(sample_plan, tmp_path / "pkg", spill=False, review_map=package_map_writer)
    page = (out / "map.html").read_text(encoding="utf-8")
    assert external_references(page) == []
    assert "leaflet@1.9.3/dist/leaflet.js" not in page
    # the tiles are offered, 「背景地図なし」 is chosen: no request until a user asks
    assert "cyberjapandata.gsi.go.jp" in page
    assert not re.search(r"tile_layer_\w+\.addTo\(", page)
    assert re.search(r"feature_group_\w+\.addTo\(", page) and NO_BASEMAP_NAME in page
    import json
    assert json.loads((out / "manifest.json").read_text(encoding="utf-8"))["options"]["offline_map"] is True
    # --online-map opts out: Leaflet from the CDN, tiles on
    online = build_package(sample_plan, tmp_path / "pkg2", spill=False, review_map=package_map_writer,
                           offline_map=False)
    page2 = (online / "map.html").read_text(encoding="utf-8")
    assert external_references(page2) and re.search(r"tile_layer_\w+\.addTo\(", page2)


@pytest.mark.slow
def test_cli_package_offline_by_default_with_online_opt_out(sample_plan, tmp_path, capsys):
    from subdivide.cli.main import main

    plan_path = tmp_path / "s.plan.gpkg"
    sample_plan.save(plan_path)
    assert main(["package", str(plan_path), "--out", str(tmp_path / "a"), "--no-spill"]) == 0
    assert external_references((tmp_path / "a" / "map.html").read_text(encoding="utf-8")) == []
    assert main(["package", str(plan_path), "--out", str(tmp_path / "b"), "--no-spill", "--online-map"]) == 0
    assert external_references((tmp_path / "b" / "map.html").read_text(encoding="utf-8"))
    assert main(["package", str(plan_path), "--out", str(tmp_path / "c"), "--online-map", "--offline-map"]) == 2
    assert "contradict" in capsys.readouterr().err and not (tmp_path / "c").exists()


# ---------------------------------------------------------------------- drawing the report, not recomputing it
def _layers_of_groups(page: str) -> dict:
    """feature group variable → the FeatureCollection of the GeoJson layer inside it."""
    import json

    dec = json.JSONDecoder()
    out = {}
    for m in re.finditer(r"(geo_json_\w+)\.addTo\((feature_group_\w+)\)", page):
        start = page.index(f"{m.group(1)}_add(") + len(m.group(1)) + 5
        out[m.group(2)] = dec.raw_decode(page, start)[0]
    return out


def test_map_draws_the_reports_shapes_without_buffering(hostile_plan, monkeypatch):
    """Given a SpillReport the map buffers nothing and computes no report: the cores it
    draws are the report's (simplified for display), one exposure piece per report row."""
    import subdivide.analysis.spill as spill_mod
    import subdivide.model.reach as reach_mod
    from subdivide.present.map import display_simplify

    rep = spill_mod.spill_report(hostile_plan, distances_km=(2.0, 3.0))

    def refuse(*a, **k):
        raise AssertionError("the map recomputed spill geometry")

    for mod, name in ((shapely, "buffer"), (reach_mod, "parallel_buffer"), (spill_mod, "spill_report")):
        monkeypatch.setattr(mod, name, refuse)
    page = render_map(hostile_plan, spill=rep, basemap="none", distances_km=(2, 3))
    monkeypatch.undo()
    layers = _layers_of_groups(page)
    groups = spill_groups(page)
    core, _ = rep.geometry.at(3.0)
    drawn = layers[groups["core"]["3"]]["features"]
    assert len(drawn) == int((~shapely.is_empty(core)).sum())
    got = gpd.GeoSeries([shapely.geometry.shape(f["geometry"]) for f in drawn], crs=4326).to_crs(hostile_plan.crs)
    want = shapely.area(display_simplify(core[~shapely.is_empty(core)], 15.0))
    assert shapely.area(got.values) == pytest.approx(want, rel=1e-4)
    ex = rep.exposure[(rep.exposure["distance_km"] == 3.0) & (rep.exposure["population_source"] == "townblocks")]
    assert len(layers[groups["exposure"]["3"]]["features"]) == len(ex) > 0


def test_map_computes_one_report_when_given_none(hostile_plan, spill_report_calls):
    calls, real = spill_report_calls
    render_map(hostile_plan, basemap="none", distances_km=(2,))
    assert len(calls) == 1
    calls.clear()
    # a report without one of the map's distances: its figures, and shapes from one more report
    page = _unescape_js(render_map(hostile_plan, spill=real(hostile_plan, distances_km=(2.0,)), basemap="none",
                                   distances_km=(2, 3)))
    assert calls == [(2.0, 3.0)] and sorted(spill_groups(page)["core"]) == ["2", "3"]


@given(st.lists(st.one_of(st.text(max_size=12), st.none(), st.integers(-5, 99999)), max_size=12))
@settings(max_examples=150, deadline=None)
def test_layer_data_escapes_names_exactly_as_the_slots_do(values):
    import json

    from subdivide.present.map import TextSlots, html_json_values, text_json_values

    slots = TextSlots()
    want_html = [slots.fill(slots.html(v)) for v in values]
    want_text = [slots.fill(slots.text(v)) for v in values]
    assert list(html_json_values(values)) == want_html
    assert list(text_json_values(values)) == want_text
    for v in html_json_values(values):       # inert in a script, and a valid JSON string body
        assert not set(v) & set("<>&'`$")
        assert isinstance(json.loads('"' + v + '"'), str)


def test_default_title_names_the_municipality_as_text(sample_plan, hostile_plan):
    """The heading says whose map it is; a hostile CITY_NAME is text, never markup."""
    import dataclasses

    page = _unescape_js(render_map(sample_plan, basemap="none", distances_km=(2,)))
    assert "花巻市 細分化エリア 審議用地図" in page
    evil = dataclasses.replace(hostile_plan, blocks=hostile_plan.blocks.assign(CITY_NAME="<script>alert(1)</script>市"))
    page = _unescape_js(render_map(evil, basemap="none", distances_km=(2,)))
    assert "<script>alert(1)</script>市" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;市 細分化エリア 審議用地図" in page
