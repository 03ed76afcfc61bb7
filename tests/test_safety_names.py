"""Names are data, never templates (issue 10 §1).

folium/branca render the map through Jinja2 (branca even renders each element's output a
second time), so a name handed to folium used to be evaluated: a town-block named
``{{ 7*7 }}町`` showed as ``49町`` and a name built from ``lipsum.__globals__`` ran code
during ``subdivide map`` and ``subdivide package``. These tests put template syntax,
markup, quotes, backslashes and newlines in every name-bearing field of the bundled 花巻
sample — town-block names, sub-area names, ``--title`` / ``--note``, office points,
carrier names and site names — and check that each survives unchanged, as text, through
plan → map, report and package, and that a payload that would create a file creates
nothing. (Sub-area names hold no newline: the plan refuses one, rule NAME-FORMAT.)
"""
from __future__ import annotations

import html
import json
import re
import warnings
import zipfile

import geopandas as gpd
import pandas as pd
import pytest

from conftest import SAMPLE_DIR, need

pytestmark = pytest.mark.slow   # each test renders the sample map (several seconds)

#: town-block names (MOJI / S_NAME as read): one per kind of hostile text
BLOCK_NAMES = [
    "{{ 7*7 }}町",
    "{% if true %}IFX{% endif %}字",
    "{# hidden #}丁目",
    "<script>alert(1)</script>",
    "quote ' \" and back\\slash",
    "line1\nline2",
    "$x^2$ `${y}` &amp; {{",
]
#: sub-area names, given through the planning API (one per 旧市町村 of the sample)
SUBAREA_NAMES = {   # the plan refuses names not ending in 地域 or with control characters
    "花巻": "{{ 6*7 }}{# c #}地域",
    "大迫": "{% raw %}R{% endraw %}<script>alert(2)</script>地域",
    "石鳥谷": "石'鳥\"谷\\{{ lipsum }}地域",
    "東和": "$\\frac{$ `${z}` &amp; }}東和地域",   # mathtext, and invalid: parsed, it would raise
}
TITLE = "{{ 5*5 }} <b>題</b>\n'\"\\"
NOTE = "{% for x in range(3) %}N{% endfor %} </div>\\n"
OFFICE_NAMES = ["{{ 8*8 }}支所", "<img src=x onerror=alert(3)>", "O'Brien \"\\\" 支所", "改\n行"]
CARRIERS = ("{{ 3*3 }}社", "<i>B</i>\\'")
#: what Jinja2 would have made of the payloads: none of it may appear
EVALUATED = ["49町", "IFX字", ">丁目", "42地域", "R<script", "25 <b>", "NNN", "64支所", "9社"]


def _payload(command: str) -> str:
    """A name that, evaluated by Jinja2, runs ``command`` (no quotes needed)."""
    codes = ",".join(str(b) for b in command.encode())
    return "{{ lipsum.__globals__.os.system(lipsum.__globals__.__builtins__.bytes([%s]).decode()) }}" % codes


def _cycler_payload(command: str) -> str:
    codes = ",".join(str(b) for b in command.encode())
    return ("{%% set b = cycler.__init__.__globals__.__builtins__ %%}"
            "{{ cycler.__init__.__globals__.os.system(b.bytes([%s]).decode()) }}" % codes)


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def hostile_blocks(sample_blocks):
    b = sample_blocks.copy()
    for i, name in enumerate(BLOCK_NAMES):
        b.loc[b.index[i], "name"] = name
    return b


@pytest.fixture(scope="module")
def hostile_plan(hostile_blocks):
    from subdivide.make.planning import plan_by_attribute

    plan, _ = plan_by_attribute(hostile_blocks, "OLD_MUNI", names=SUBAREA_NAMES)
    return plan


@pytest.fixture(scope="module")
def hostile_points(sample_shp):
    offices = gpd.read_file(need(SAMPLE_DIR / "offices.geojson", "bundled offices"))
    offices["office_name"] = OFFICE_NAMES[: len(offices)]
    return offices


@pytest.fixture(scope="module")
def hostile_sites(hostile_plan):
    from subdivide.analysis.sites import coverage_from_sites, synthetic_sites

    outline = gpd.read_file(need(SAMPLE_DIR / "outline.geojson", "bundled outline")).to_crs(hostile_plan.crs)
    sites = synthetic_sites(outline, isd_km=12.0, seed=0, carriers=CARRIERS, crs=hostile_plan.crs)
    ids = {sid: i for i, sid in enumerate(dict.fromkeys(sites["site_id"]))}   # one row per sector
    sites["site_name"] = [f"{{{{ {ids[sid]}*{ids[sid]} }}}}<b>局</b>'\\\n" for sid in sites["site_id"]]
    coverage = coverage_from_sites(sites, crs=hostile_plan.crs)
    return sites, coverage


@pytest.fixture(scope="module")
def hostile_page(hostile_plan, hostile_points, hostile_sites):
    from subdivide.present.map import render_map

    sites, coverage = hostile_sites
    return render_map(hostile_plan, points=hostile_points, sites=sites, coverage=coverage, title=TITLE,
                      note=NOTE, distances_km=(2.0,), basemap="none", offline=True)


# ---------------------------------------------------------------------- page parsing
def geojson_layers(page: str) -> list[dict]:
    """Every FeatureCollection folium embedded in the page (parsed as JSON)."""
    dec = json.JSONDecoder()
    out = []
    for m in re.finditer(r"geo_json_[0-9a-f]+_add\(", page):
        data, _ = dec.raw_decode(page, m.end())
        out.append(data)
    return out


def properties(page: str, key: str) -> list[str]:
    return [f["properties"][key] for layer in geojson_layers(page) for f in layer["features"]
            if key in f["properties"]]


def inner_html(page: str) -> list[str]:
    """The HTML fragments the page's controls and labels put into the DOM (JSON strings)."""
    frags = [json.loads(m.group(1)) for m in re.finditer(r'd\.innerHTML = ("(?:[^"\\]|\\.)*");', page)]
    frags += [json.loads(m.group(1)) for m in re.finditer(r'"html": ("(?:[^"\\]|\\.)*")', page)]
    return frags


def shown_text(fragment: str) -> str:
    """What a browser shows for an HTML fragment without markup of its own: tags of the
    page removed, entities decoded."""
    return html.unescape(re.sub(r"<[^>]*>", "", fragment))


# ---------------------------------------------------------------------- map
def test_map_names_round_trip_as_text(hostile_page, hostile_plan):
    page = hostile_page
    for bad in EVALUATED:
        assert bad not in page, bad
    # town-blocks: the tooltip shows the HTML-escaped name; the search matches the verbatim one
    assert set(BLOCK_NAMES) <= set(properties(page, "search"))
    shown = {html.unescape(n) for n in properties(page, "name")}
    assert set(BLOCK_NAMES) <= shown and set(OFFICE_NAMES) <= shown
    # no markup of a name survives unescaped in the data (the browser would build elements)
    for n in properties(page, "name") + properties(page, "名称") + properties(page, "sub"):
        assert "<" not in n and ">" not in n, n
    # sub-areas: polygons, core/reach layers, block tooltips, exposure
    names = set(SUBAREA_NAMES.values())
    assert names <= {html.unescape(n) for n in properties(page, "名称")}
    assert {f"{s} {n}" for s, n in zip(hostile_plan.subareas["subarea"], hostile_plan.subareas["name"])} \
        <= {html.unescape(v) for v in properties(page, "sub")}
    assert all(hostile_plan.subareas["name"].isin(names))


def test_map_controls_labels_title_and_carriers_as_text(hostile_page):
    page = hostile_page
    frags = inner_html(page)
    text = "\n".join(shown_text(f) for f in frags)
    for n in SUBAREA_NAMES.values():
        assert n in text, n                         # legend and labels show the names as text
    assert TITLE in text and NOTE in text
    for f in frags:                                 # …and never as markup
        assert "<script" not in f and "<b>題" not in f and "<i>B" not in f
    title = re.search(r"<title>(.*?)</title>", page, re.S).group(1)
    assert html.unescape(title) == TITLE
    # carriers: layer names (the layer control shows them as HTML) and footprint tooltips
    assert set(CARRIERS) <= {html.unescape(c) for c in properties(page, "carrier")}
    layers = layer_names(page)
    for c in CARRIERS:
        assert f"キャリア推定エリア（{c}）" in {shown_text(n) for n in layers}, c
        assert f"基地局（{c}）" in {shown_text(n) for n in layers}, c
    assert not any("<i>" in n for n in layers)


def layer_names(page: str) -> list[str]:
    """The names in the layer control (JSON strings the control shows as HTML)."""
    return [json.loads(m.group(1)) for m in re.finditer(r'("(?:[^"\\]|\\.)*") : (?:feature_group|tile_layer)_', page)]


def test_site_names_reach_the_map_as_text(hostile_page, hostile_sites):
    sites, _ = hostile_sites
    shown = {html.unescape(n) for n in properties(hostile_page, "name")}
    assert set(sites["site_name"]) <= shown


# ---------------------------------------------------------------------- report
def test_report_names_as_text_and_no_mathtext(hostile_plan, tmp_path):
    """Names are escaped in the HTML and drawn as plain text in the figures: the name
    ``$\\frac{$ `${z}`…`` would make matplotlib's mathtext raise if it were parsed."""
    from subdivide.present.map import escape_text
    from subdivide.present.report import build_report

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        page = build_report(hostile_plan, tmp_path / "r", distances_km=(2.0,), title=TITLE, note=NOTE)\
            .read_text(encoding="utf-8")
    assert not [str(w.message) for w in caught if "Glyph" in str(w.message) or "math" in str(w.message)]
    for bad in EVALUATED:
        assert bad not in page, bad
    body = page.split("<body>", 1)[1]
    for n in [*SUBAREA_NAMES.values(), TITLE, NOTE]:
        assert escape_text(n) in body, n
    assert "<script>alert(2)" not in page and "<b>題" not in page
    assert html.unescape(re.search(r"<title>(.*?)</title>", page, re.S).group(1)) == TITLE


# ---------------------------------------------------------------------- package
def test_package_keeps_names_and_its_map_never_evaluates_them(hostile_plan, tmp_path):
    from subdivide.carrier.package import build_package
    from subdivide.present.map import package_map_writer

    out = build_package(hostile_plan, tmp_path / "pkg", spill=False, review_map=package_map_writer)
    page = (out / "map.html").read_text(encoding="utf-8")
    for bad in EVALUATED:
        assert bad not in page, bad
    assert set(BLOCK_NAMES) <= set(properties(page, "search"))
    sub = gpd.read_file(out / "package.gpkg", layer="subareas")
    blk = gpd.read_file(out / "package.gpkg", layer="townblocks")
    name_col = [c for c in sub.columns if c.lower() in ("name", "sa_name", "subarea_name", "名称")] or \
        [c for c in sub.columns if sub[c].astype(str).isin(SUBAREA_NAMES.values()).any()]
    assert set(sub[name_col[0]]) == set(SUBAREA_NAMES.values())
    assert set(BLOCK_NAMES) <= set(blk.select_dtypes(exclude="geometry").astype(str).stack())
    lists = pd.read_csv(out / "subarea_list.csv", encoding="utf-8-sig", dtype=str)
    assert set(SUBAREA_NAMES.values()) <= set(lists.stack())


# ---------------------------------------------------------------------- code execution
@pytest.mark.parametrize("make", [_payload, _cycler_payload], ids=["lipsum", "cycler"])
def test_template_payload_creates_nothing(make, sample_blocks, tmp_path, monkeypatch):
    """A payload in every field, through the CLI: map, report and package run, and the
    file the payload would create never appears."""
    from subdivide.cli.main import main
    from subdivide.model.plan import Plan

    monkeypatch.chdir(tmp_path)   # the payload is short (a dBase field holds 254 bytes): touch ./P
    marker = tmp_path / "P"
    payload = make("touch P")
    b = sample_blocks.copy()
    b.loc[b.index[0], "name"] = payload
    plan = Plan.from_assignment(b, b.set_index("key")["OLD_MUNI"])
    table = plan.subareas.copy()
    table.loc[0, "name"] = payload + "地域"
    plan = plan.with_assignment(plan.blocks["subarea"].to_numpy(), table)
    plan.save(tmp_path / "p.plan.gpkg")
    pts = gpd.read_file(need(SAMPLE_DIR / "offices.geojson", "bundled offices"))
    pts["office_name"] = payload
    pts[["office_name", "geometry"]].to_file(tmp_path / "pts.geojson", driver="GeoJSON")
    assert main(["map", "p.plan.gpkg", "-o", "m.html", "--title", payload, "--note", payload,
                 "--points", "pts.geojson", "--distances", "2", "--basemap", "none"]) == 0
    assert main(["report", "p.plan.gpkg", "-o", "rep", "--title", payload, "--note", payload,
                 "--distances", "2"]) == 0
    assert main(["package", "p.plan.gpkg", "--out", "pkg.zip", "--no-spill"]) == 0
    assert not marker.exists()
    page = (tmp_path / "m.html").read_text(encoding="utf-8")
    assert payload in set(properties(page, "search"))            # there, as text
    packaged = zipfile.ZipFile(tmp_path / "pkg.zip").read("map.html").decode("utf-8")
    assert payload in set(properties(packaged, "search"))
