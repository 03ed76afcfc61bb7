"""The council-review map in a real browser (headless Chromium over the DevTools pipe,
see tests/browser.py): no console errors, the layer control lists the layers, the
screenshot is not blank, the offline file makes no network request, controls are
Japanese and work, and a hostile town-block name shows as text without running."""
from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest

from subdivide.present.map import build_map
from browser import Browser, require_chromium
from test_map import (  # noqa: F401 (fixtures)
    HOSTILE,
    carrier_files,
    expected_layers,
    hostile_plan,
    plan_from,
    single_plan,
)

pytestmark = pytest.mark.browser

GSI_HOST = "https://cyberjapandata.gsi.go.jp/"

FIND_BLOCK_LAYER = """
(function () {
  for (const k of Object.keys(window)) {
    const v = window[k];
    if (k.startsWith('geo_json_') && v instanceof L.GeoJSON) {
      const f = v.toGeoJSON().features;
      if (f.length && f[0].properties && 'key' in f[0].properties) return k;
    }
  }
  return null;
})()
"""


@pytest.fixture(scope="module")
def browser():
    exe = require_chromium()
    b = Browser(exe)
    yield b
    b.close()


@pytest.fixture(scope="module")
def offices():
    from conftest import SAMPLE_DIR, need

    return gpd.read_file(need(SAMPLE_DIR / "offices.geojson", "bundled offices"))


@pytest.fixture(scope="module")
def sample_offline(tmp_path_factory, sample_plan, offices):
    out = tmp_path_factory.mktemp("map") / "sample_offline.html"
    return build_map(sample_plan, out, points=offices, basemap="none", offline=True,
                     note="境界は推定形状です（テスト）")


def local_only(requests):
    return [u for u in requests if not (u.startswith("file://") or u.startswith("data:"))]


def layer_labels(b):
    return b.eval("Array.from(document.querySelectorAll('.leaflet-control-layers-overlays label'))"
                  ".map(l => l.textContent.trim())")


def screenshot_stats(path):
    import matplotlib.image as mpimg

    img = mpimg.imread(path)[..., :3]
    flat = (img.reshape(-1, 3) * 255).round().astype(np.uint8)
    uniq, counts = np.unique(flat, axis=0, return_counts=True)
    bg = uniq[np.argmax(counts)]                       # the most common colour: background
    drawn = np.mean(np.abs(flat.astype(int) - bg.astype(int)).sum(axis=1) > 12)
    return len(uniq), drawn, tuple(int(v) for v in bg)


def choose_spill(b, band, distance=None):
    """Pick a band (core / reach / exposure / none) and an L in the spill panel, as a user."""
    b.eval(f"document.querySelector('.sd-spill input[value={band}]').click()")
    if distance is not None:
        b.eval(f"""(function () {{ const s = document.querySelector('.sd-spill select.sd-l');
            s.value = {json.dumps(distance)}; s.dispatchEvent(new Event('change')); }})()""")


def type_into_search(b, text):
    """Open the search (a button until clicked), type into it like a user (text, then a
    key release, then wait)."""
    b.eval("document.querySelector('.leaflet-control-search .search-button').click()")
    b.eval("document.querySelector('.leaflet-control-search input').focus()")
    b.call("Input.insertText", text=text)
    b.call("Input.dispatchKeyEvent", type="keyUp", key="a", code="KeyA", windowsVirtualKeyCode=65)
    b._pump(0.8)  # leaflet-search waits 400 ms before listing matches


def test_offline_sample_map_loads_cleanly(browser, sample_offline, tmp_path):
    r = browser.open(sample_offline)
    assert r.errors == []
    assert r.dialogs == []
    assert local_only(r.requests) == []                    # no network request at all
    assert r.requests[0].startswith("file://")
    assert layer_labels(browser) == expected_layers(points=True)
    assert browser.eval("document.querySelectorAll('.leaflet-control-layers-base label').length") == 0
    shot = browser.screenshot(tmp_path / "sample.png")
    colours, drawn, bg = screenshot_stats(shot)
    assert colours > 200 and drawn > 0.25, (colours, drawn)
    assert bg == (0xf3, 0xf3, 0xee)                    # the page's own background, no tiles
    # the explanation, legend, labels and the caution are on the page
    text = browser.eval("document.body.innerText")
    for s in ("細分化エリア", "この地図の見方", "境界は推定形状です（テスト）", "花巻地域", "非到達率"):
        assert s in text, s


def test_controls_are_japanese_and_layers_toggle(browser, sample_offline):
    browser.open(sample_offline, settle=0.5)
    titles = browser.eval("Array.from(document.querySelectorAll('.leaflet-control a[title]'))"
                          ".map(a => a.title)")
    assert {"拡大", "縮小", "全画面表示"} <= set(titles)
    assert not {"Zoom in", "Zoom out"} & set(titles)
    assert "距離と面積を計測" in titles                     # measure tool in Japanese
    assert browser.eval("document.querySelector('.leaflet-control-search input').placeholder") == "町丁・字名で検索"
    scale = browser.eval("document.querySelector('.leaflet-control-scale-line').textContent")
    assert scale.endswith("km") or scale.endswith(" m")
    count = "document.querySelectorAll('.leaflet-overlay-pane path').length"
    before = browser.eval(count)
    choose_spill(browser, "none")
    bare = browser.eval(count)
    assert bare == before - 4               # the 2 km cores (one per sub-area of the sample) are gone
    choose_spill(browser, "reach", "3")
    assert browser.eval(count) == bare + 4  # one ring per sub-area, one L at a time
    choose_spill(browser, "reach", "2.5")
    assert browser.eval(count) == bare + 4
    legend = browser.eval("Array.from(document.querySelectorAll('.sd-spill .sd-band'))"
                          ".filter(u => u.style.display !== 'none').map(u => u.innerText).join('|')")
    assert "花巻地域の配信が届く範囲 (L = 2.5 km)" in legend and "L = 3 km" not in legend
    browser.eval("document.querySelector('.leaflet-control-measure-toggle').dispatchEvent(new MouseEvent('mouseover'))")


def test_search_by_name_finds_the_block(browser, sample_offline, sample_plan):
    names = sample_plan.blocks["name"]
    name = sorted(n for n in names[names.map(names.value_counts()) == 1] if len(n) >= 3)[0]
    browser.open(sample_offline, settle=0.3)
    ctl = browser.eval("Object.keys(window).find(k => k.endsWith('searchControl'))")
    assert ctl
    type_into_search(browser, name)
    browser.press("Enter", 13)
    browser._pump(0.8)  # the map flies to the block
    tip = browser.eval("Array.from(document.querySelectorAll('.leaflet-tooltip')).map(t => t.innerText).join('|')")
    assert name in tip
    key = sample_plan.blocks.loc[sample_plan.blocks["name"] == name, "key"].iloc[0]
    assert key in tip


def test_hostile_name_is_text_not_script(browser, synthetic_blocks, tmp_path):
    b = synthetic_blocks(300, seed=3)
    key = b["key"].iloc[0]
    plan = plan_from(b, {key: HOSTILE})
    out = build_map(plan, tmp_path / "hostile.html", basemap="none", offline=True)
    r = browser.open(out)
    assert r.dialogs == [] and r.errors == []
    layer = browser.eval(FIND_BLOCK_LAYER)
    assert layer
    browser.eval(f"""window[{json.dumps(layer)}].eachLayer(l => {{
        if (l.feature.properties.key === {json.dumps(key)}) {{
            const g = window[{json.dumps(layer)}];
            g._tooltip._source = l; g.openTooltip(l.getCenter()); }} }}); null""")
    tip = browser.eval("document.querySelector('.leaflet-tooltip').innerText")
    assert HOSTILE in tip                       # shown literally, as text
    assert browser.eval("document.querySelectorAll('.leaflet-tooltip script').length") == 0
    # the search list shows it as text as well
    type_into_search(browser, "<script")
    tips = browser.eval("Array.from(document.querySelectorAll('.search-tip')).map(t => t.textContent)")
    assert HOSTILE in tips
    browser.press("Enter", 13)
    browser._pump(0.5)
    assert r.dialogs == []
    assert browser.eval("document.querySelectorAll('.search-tooltip script, .leaflet-control-search script').length") == 0


def test_basemap_fetches_only_gsi_tiles(browser, synthetic_blocks, tmp_path):
    plan = plan_from(synthetic_blocks(300, seed=3))
    out = build_map(plan, tmp_path / "pale.html", basemap="pale", offline=True, distances_km=(2,))
    r = browser.open(out, settle=1.0)
    outside = local_only(r.requests)
    assert outside and all(u.startswith(GSI_HOST + "xyz/pale/") for u in outside), outside[:3]
    # tiles may fail without internet; nothing else may
    errors = [e for e in r.errors if "cyberjapandata.gsi.go.jp" not in e]
    assert errors == []
    attr = browser.eval("document.querySelector('.leaflet-control-attribution').innerHTML")
    assert "地理院タイル" in attr and "https://maps.gsi.go.jp/development/ichiran.html" in attr
    bases = browser.eval("Array.from(document.querySelectorAll('.leaflet-control-layers-base label'))"
                         ".map(l => l.textContent.trim())")
    assert bases == ["地理院タイル 淡色地図", "地理院タイル 標準地図", "地理院タイル 写真", "背景地図なし"]


def test_require_chromium_fails_under_ci(monkeypatch):
    import browser as tb

    monkeypatch.setattr(tb, "find_chromium", lambda: None)
    monkeypatch.setattr(tb, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception):
        tb.require_chromium()
    monkeypatch.setattr(tb, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception):
        tb.require_chromium()


def test_carrier_layers_in_the_browser(browser, hostile_plan, carrier_files, tmp_path):  # noqa: F811
    _, sites, cov = carrier_files
    out = build_map(hostile_plan, tmp_path / "carriers.html", coverage=cov, sites=sites, basemap="none",
                    offline=True, distances_km=(2,))
    r = browser.open(out)
    assert r.errors == [] and local_only(r.requests) == []
    labels = layer_labels(browser)
    assert labels == expected_layers((2,))[:-1] + ["キャリア推定エリア（KDDI）", "キャリア推定エリア（docomo）",
                                                   "基地局（KDDI）", "基地局（docomo）", "エリア名ラベル"]
    count = "document.querySelectorAll('.leaflet-overlay-pane path').length"
    before = browser.eval(count)
    browser.eval("""Array.from(document.querySelectorAll('.leaflet-control-layers-overlays label'))
        .filter(l => l.textContent.includes('（docomo）')).forEach(l => l.querySelector('input').click())""")
    from subdivide.present.map import carrier_footprints

    fp = carrier_footprints(hostile_plan, cov)
    n_sites = sites[sites["carrier"] == "docomo"].drop_duplicates("site_id").shape[0]
    assert browser.eval(count) == before + int((fp["carrier"] == "docomo").sum()) + n_sites


def test_single_subarea_map_in_the_browser(browser, single_plan, tmp_path):  # noqa: F811
    out = build_map(single_plan, tmp_path / "one.html", basemap="none", offline=True, distances_km=(2,))
    r = browser.open(out, settle=0.5)
    assert r.errors == [] and local_only(r.requests) == []
    assert layer_labels(browser) == expected_layers((2,))


def test_points_stay_above_layers_switched_on_later(browser, sample_offline):
    """Switching on an exposure layer draws it last; the offices must stay visible."""
    browser.open(sample_offline, settle=0.3)
    fills = "Array.from(document.querySelectorAll('.leaflet-overlay-pane path')).map(p => p.getAttribute('fill'))"
    n_points = browser.eval(fills).count("#d7191c")
    assert n_points == 4
    choose_spill(browser, "exposure", "3")
    after = browser.eval(fills)
    assert after[-n_points:] == ["#d7191c"] * n_points     # the points are drawn last (on top)


def test_legend_fits_the_window_with_fourteen_long_names(browser, synthetic_blocks, tmp_path):
    plan = plan_from(synthetic_blocks(700, seed=5, n_old=14))
    table = plan.subareas.copy()
    table.loc[3, "name"] = "とても長い名前の細分化エリア北部地区" * 2 + "地域"   # the plan wants 「…地域」
    table.loc[1, "name"] = "<img src=x onerror=alert(1)>地域"
    plan = plan.with_assignment(plan.blocks["subarea"].to_numpy(), table)
    out = build_map(plan, tmp_path / "fourteen.html", basemap="none", offline=True)
    r = browser.open(out, settle=0.5)
    assert r.dialogs == [] and r.errors == []
    box = browser.eval("""(function () { const d = document.querySelector('.sd-legend');
        const r = d.getBoundingClientRect();
        return [r.left, r.top, r.right, r.bottom, innerWidth, innerHeight, d.scrollWidth - d.clientWidth]; })()""")
    left, top, right, bottom, width, height, overflow_x = box
    assert 0 <= left and right <= width and 0 <= top and bottom <= height, box
    assert overflow_x <= 1, box                      # nothing cut off on the right
    text = browser.eval("document.querySelector('.sd-legend').innerText")
    assert "<img src=x onerror=alert(1)>地域" in text and "L=3 km" in text and "内側コア" in text


# ---------------------------------------------------------------------- the package's map, offline
@pytest.fixture(scope="module")
def package_map(tmp_path_factory, sample_plan):
    """map.html of a package built by `subdivide package` with its defaults."""
    from subdivide.cli.main import main

    d = tmp_path_factory.mktemp("pkg")
    sample_plan.save(d / "s.plan.gpkg")
    assert main(["package", str(d / "s.plan.gpkg"), "--out", str(d / "pkg")]) == 0
    return d / "pkg" / "map.html"


#: sub-area polygons (the layer whose features have 人口) under any control box, sampled
#: on a 6-px grid with elementsFromPoint (SVG fill hit-testing: the real shape, not a box)
PANELS_OVER_AREAS = """
(function () {
  let layer = null;
  for (const k of Object.keys(window)) {
    const v = window[k];
    if (k.startsWith('geo_json_') && v instanceof L.GeoJSON) {
      const f = v.toGeoJSON().features;
      if (f.length && f[0].properties && '人口' in f[0].properties && 'subarea' in f[0].properties) layer = v;
    }
  }
  const paths = new Set(layer.getLayers().map(l => l._path));
  const hits = [];
  document.querySelectorAll('.leaflet-control').forEach(c => {
    if (c.classList.contains('leaflet-control-attribution')) return;
    const r = c.getBoundingClientRect();
    for (let x = r.left + 2; x < r.right - 1; x += 6) {
      for (let y = r.top + 2; y < r.bottom - 1; y += 6) {
        if (document.elementsFromPoint(x, y).some(e => paths.has(e))) {
          hits.push(c.className.split(' ').slice(0, 2).join(' ')); return;
        }
      }
    }
  });
  return hits;
})()
"""


@pytest.mark.slow
def test_package_map_makes_no_network_request(browser, package_map, tmp_path):
    r = browser.open(package_map, settle=1.0)
    assert r.errors == [] and r.dialogs == []
    assert local_only(r.requests) == []                 # nothing but file: and data:
    bases = browser.eval("Array.from(document.querySelectorAll('.leaflet-control-layers-base input'))"
                         ".map(i => [i.nextSibling.textContent.trim(), i.checked])")
    assert ["背景地図なし", True] in [[n, c] for n, c in bases]   # tiles offered, not loaded
    shot = browser.screenshot(tmp_path / "package.png")
    colours, drawn, bg = screenshot_stats(shot)
    assert colours > 200 and drawn > 0.2 and bg == (0xf3, 0xf3, 0xee)


@pytest.mark.slow
def test_without_internet_the_tiles_fail_visibly_and_the_map_still_reads(package_map, tmp_path):
    exe = require_chromium()
    with Browser(exe, width=1024, height=700) as b:
        b.call("Network.emulateNetworkConditions", offline=True, latency=0, downloadThroughput=-1,
               uploadThroughput=-1)
        b.open(package_map, settle=0.5)
        assert b.eval("document.querySelector('.sd-tile-error')") is None   # nothing failed yet
        b.eval("""Array.from(document.querySelectorAll('.leaflet-control-layers-base label'))
            .find(l => l.textContent.trim() === '地理院タイル 淡色地図').querySelector('input').click()""")
        b._pump(1.5)
        note = b.eval("document.querySelector('.sd-tile-error') && document.querySelector('.sd-tile-error').innerText")
        assert note and "背景地図（地理院タイル）を読み込めません" in note
        visible = b.eval("(function () { const r = document.querySelector('.sd-tile-error').getBoundingClientRect();"
                         " return r.width > 50 && r.top >= 0 && r.bottom <= innerHeight; })()")
        assert visible
        shot = b.screenshot(tmp_path / "no-internet.png")
        colours, drawn, _ = screenshot_stats(shot)
        assert colours > 200 and drawn > 0.2               # areas, borders and labels still drawn
        labels = b.eval("Array.from(document.querySelectorAll('.sd-label')).map(e => e.innerText)")
        assert len(labels) == 4 and any("花巻地域" in t for t in labels)


@pytest.mark.slow
def test_panels_do_not_cover_the_areas_at_1024x700(sample_offline, package_map, tmp_path):
    exe = require_chromium()
    with Browser(exe, width=1024, height=700) as b:
        for page in (sample_offline, package_map):
            r = b.open(page, settle=0.5)
            assert r.errors == []
            assert b.eval(PANELS_OVER_AREAS) == []
            for band, L in (("reach", "3"), ("exposure", "2.5"), ("core", "2")):
                choose_spill(b, band, L)
                assert b.eval(PANELS_OVER_AREAS) == [], (page.name, band, L)
            b.screenshot(tmp_path / f"{page.stem}-1024.png")
        # the big table is folded at this size (the spill panel carries the shares); one click opens it
        assert b.eval("document.querySelector('.sd-legend details').open") is False
