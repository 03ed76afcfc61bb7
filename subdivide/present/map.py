"""The council-review map: one interactive HTML file (Leaflet).

:func:`build_map` writes a map of a plan for 議会・庁内 review:

- sub-areas in distinct colours with a legend (number, name, area, population and the
  unreached share at each spill distance L), their names as labels that stay readable
  with no basemap;
- town-block borders with tooltips (name, key, population, sub-area) and a search by
  town-block name;
- the spill panel 「電波の漏れ」: one band at one L at a time (radio buttons for the inward
  core, the outward reach or the neighbour exposure — DOMAIN.md §3 — and a selector for
  L), each with a legend line per sub-area in words (「花巻地域の配信が届く範囲 (L = 2 km)」);
  shares below the policy (50 %) marked as the report marks them (▼, red; a red outline
  on the map);
- layers (layer control): carrier footprints and sites when given, office or
  measurement points, labels;
- 地理院タイル 淡色 / 標準 / 写真 with the required attribution, or no basemap at all;
- fullscreen, a metric scale bar, a measure tool (Japanese), a short explanation box.

``offline=True`` inlines every script, stylesheet and image (``subdivide/assets/web``),
so the file opens on a machine with no internet; only basemap tiles then need the
network, and with ``basemap="none"`` (or ``basemap_on=False``: tiles offered, none
shown — the package's map) the page makes no request at all. When tiles fail to load
(``tileerror``) the title box says so; the map reads without them. Panels leave the
areas clear down to a 1024 × 700 window.

Display geometry is simplified as a coverage (``shapely.coverage_simplify``) in the
plan's projected CRS, so neighbouring town-blocks keep exactly one shared border (no
slivers, no gaps), then converted to lat/lon (EPSG:4326) at 6 decimals (about 0.1 m).

The map draws results, it does not compute them: the spill figures and the cores and
reaches they were measured on come from one :class:`~subdivide.analysis.spill.SpillReport`
(``spill=``, or one computed once when None). The map only cuts those shapes for
display (the reach outside the sub-area, its part in each neighbour) and simplifies
them; it buffers nothing and measures nothing.

User text is data, never a template. The page is plain Leaflet code written by
:class:`_Leaflet` (no template engine: the folium/branca rendering used until round 2
ran every element through Jinja2, twice, where a name like ``{{ 7*7 }}`` would have been
evaluated). No user string (town-block, sub-area, office, site and carrier names, keys,
``title``, ``note``) is written into the page's code either: each is replaced by an
opaque slot (:class:`TextSlots`, random letters and digits), and the slots are filled
in the finished page, in one pass, HTML-escaped for display (a town-block named
``<script>alert(1)</script>`` shows as text) and JSON-escaped inside scripts. The
layers' data (GeoJSON, megabytes for 10,000 town-blocks) is built as JSON text from
arrays, every user string in it escaped the same way (:func:`html_json_values`), and
goes in through a slot as well (:meth:`TextSlots.raw`). The one verbatim copy, the
town-block name the search matches against, is displayed with ``textContent``. Output
is byte-identical for identical input (variables are numbered; the slots leave no trace).
"""
from __future__ import annotations

import base64
import html
import json
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from subdivide.core.constants import DEFAULT_DISTANCES_KM, DEFAULT_TARGET_SHARE
from subdivide.core.errors import UserError
from subdivide.core.palette import PALETTE, subarea_colours  # noqa: F401 (re-exported)
from subdivide.io.output import atomic_path, check_can_write
from subdivide.core.progress import Progress, silent

# ---------------------------------------------------------------------- constants
#: coverage-simplification tolerance for display (m); borders move at most this much
DEFAULT_TOLERANCE_M = 15.0

#: lat/lon decimals in the page (1e-6° ≈ 0.1 m)
COORD_DECIMALS = 6

GSI_ATTRIBUTION = ('<a href="https://maps.gsi.go.jp/development/ichiran.html" '
                   'target="_blank" rel="noopener">地理院タイル</a>')

#: basemap key → (layer name, tile URL)
BASEMAPS = {
    "pale": ("地理院タイル 淡色地図", "https://cyberjapandata.gsi.go.jp/xyz/pale/{z}/{x}/{y}.png"),
    "std": ("地理院タイル 標準地図", "https://cyberjapandata.gsi.go.jp/xyz/std/{z}/{x}/{y}.png"),
    "photo": ("地理院タイル 写真", "https://cyberjapandata.gsi.go.jp/xyz/seamlessphoto/{z}/{x}/{y}.jpg"),
}
BASEMAP_CHOICES = (*BASEMAPS, "none")
NO_BASEMAP_NAME = "背景地図なし"
#: shown when basemap tiles fail to load (Leaflet's ``tileerror``)
TILE_ERROR_TEXT = ("背景地図（地理院タイル）を読み込めません。インターネットに接続されていない可能性があります。"
                   "エリア・境界・数値はこのまま表示されます。")

#: the spill bands the selector offers: key → (selector label, legend text after the name)
SPILL_BANDS = {
    "core": ("内側コア（隣の配信が届かない範囲）", "の内側コア"),
    "reach": ("配信が届く範囲（境界の外）", "の配信が届く範囲"),
    "exposure": ("隣のエリアへの漏れ", "の配信が隣のエリアに届く部分"),
}
#: what each band is, above its legend lines
SPILL_BAND_HELP = {
    "core": "内側コア＝境界から L 以上内側。隣のエリア宛ての配信が届かないと見込まれる範囲。数値は非到達率（その面積の割合）。",
    "reach": "エリア宛ての配信が境界を越えて届くと見込まれる範囲（境界から L km まで）。",
    "exposure": "その範囲のうち隣のエリアに入る部分。ここにいる人は隣のエリア宛てのメールも受け取ります。",
}

#: how values below the policy are marked (as the report marks them: red, bold)
BELOW_COLOUR = "#c00000"

ASSET_DIR = Path(__file__).resolve().parents[1] / "assets" / "web"

LEAFLET_JS = "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js"
LEAFLET_CSS = "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.css"
FULLSCREEN_JS = "https://cdn.jsdelivr.net/npm/leaflet.fullscreen@3.0.0/Control.FullScreen.min.js"
FULLSCREEN_CSS = "https://cdn.jsdelivr.net/npm/leaflet.fullscreen@3.0.0/Control.FullScreen.css"
MEASURE_JS = "https://cdn.jsdelivr.net/gh/ljagis/leaflet-measure@2.1.7/dist/leaflet-measure.min.js"
MEASURE_CSS = "https://cdn.jsdelivr.net/gh/ljagis/leaflet-measure@2.1.7/dist/leaflet-measure.min.css"
SEARCH_JS = "https://cdn.jsdelivr.net/npm/leaflet-search@2.9.7/dist/leaflet-search.min.js"
SEARCH_CSS = "https://cdn.jsdelivr.net/npm/leaflet-search@2.9.7/dist/leaflet-search.min.css"

#: CDN URL the page references → (vendored file, {url(...) in the CSS: vendored file})
OFFLINE_ASSETS: dict[str, tuple[str, dict[str, str]]] = {
    LEAFLET_JS: ("leaflet.js", {}),
    LEAFLET_CSS: ("leaflet.css", {"images/layers.png": "leaflet-layers.png",
                                  "images/layers-2x.png": "leaflet-layers-2x.png",
                                  "images/marker-icon.png": "leaflet-marker-icon.png"}),
    FULLSCREEN_JS: ("Control.FullScreen.js", {}),
    FULLSCREEN_CSS: ("Control.FullScreen.css", {"icon-fullscreen.svg": "fullscreen-icon.svg"}),
    MEASURE_JS: ("leaflet-measure.min.js", {}),
    MEASURE_CSS: ("leaflet-measure.css", {
        f"images/{n}{s}.png": f"measure-{n}{s}.png"
        for n in ("cancel", "check", "focus", "rulers", "start", "trash") for s in ("", "_@2X")}),
    SEARCH_JS: ("leaflet-search.min.js", {}),
    SEARCH_CSS: ("leaflet-search.min.css", {"../images/search-icon.png": "search-icon.png",
                                            "../images/loader.gif": "search-loader.gif"}),
}

_MIME = {".png": "image/png", ".gif": "image/gif", ".svg": "image/svg+xml"}

#: leaflet-measure 2.1.7 ships no Japanese; this locale is added to its bundle at build
#: time (both online and offline maps embed the measure plugin for that reason)
MEASURE_JA = {
    "measure": "計測", "measureDistancesAndAreas": "距離と面積を計測",
    "createNewMeasurement": "新しく計測する",
    "startCreating": "地図をクリックして点を追加すると計測が始まります",
    "finishMeasurement": "計測を終える", "lastPoint": "最後の点", "area": "面積",
    "perimeter": "周長", "pointLocation": "地点の位置", "areaMeasurement": "面積の計測",
    "linearMeasurement": "距離の計測", "pathDistance": "経路の長さ",
    "centerOnArea": "この範囲を中心に表示", "centerOnLine": "この線を中心に表示",
    "centerOnLocation": "この地点を中心に表示", "cancel": "キャンセル", "delete": "削除",
    "acres": "エーカー", "feet": "フィート", "kilometers": "km", "hectares": "ha",
    "meters": "m", "miles": "マイル", "sqfeet": "平方フィート", "sqmeters": "m²",
    "sqmiles": "平方マイル", "decPoint": ".", "thousandsSep": ",",
}
_MEASURE_LOCALES_END = 'tr:a("./i18n/tr")}'


# ---------------------------------------------------------------------- small helpers
def escape_text(value) -> str:
    """HTML-escape a user string for any place in the page: markup (``< > & " '``) and
    the characters that matter inside JavaScript template literals (`` ` $ \\ ``).

    >>> escape_text("<script>alert(1)</script>")
    '&lt;script&gt;alert(1)&lt;/script&gt;'
    """
    missing = value is None or (np.ndim(value) == 0 and bool(pd.isna(value)))
    s = html.escape("" if missing else str(value), quote=True)
    return s.replace("`", "&#96;").replace("$", "&#36;").replace("\\", "&#92;")


class TextSlots:
    """User text kept out of the page's code until the page is whole.

    :meth:`html`, :meth:`text` and :meth:`page` return a slot: ``sdslot<nonce>x<n>x``,
    letters and digits only, which any code or escaping between here and :meth:`fill`
    passes through unchanged. :meth:`fill` replaces every slot in the rendered page in
    one pass (the text put in is never scanned again) and refuses a page in which a slot
    was altered. The nonce is random, so user text cannot forge a slot.

    - ``html(value)``: HTML-escaped text inside a JavaScript/JSON string that the page
      shows as HTML (tooltips, legend, labels, layer names);
    - ``text(value)``: verbatim text inside a JavaScript/JSON string that the page shows
      with ``textContent`` (the town-block search);
    - ``page(value)``: HTML-escaped text in the HTML itself (outside scripts).

    >>> slots = TextSlots()
    >>> slots.fill("<b>" + slots.page("{{ 7*7 }}<i>") + "</b>")
    '<b>{{ 7*7 }}&lt;i&gt;</b>'
    """

    def __init__(self):
        self._nonce = secrets.token_hex(8)
        self._values: list[str] = []
        self._pattern = re.compile(f"sdslot{self._nonce}x([0-9]+)x")

    def _slot(self, value: str) -> str:
        self._values.append(value)
        return f"sdslot{self._nonce}x{len(self._values) - 1}x"

    def html(self, value) -> str:
        return self._slot(js_string(escape_text(value)))

    def html_ascii(self, value) -> str:
        """As :meth:`html`, non-ASCII as \\u escapes (for elements whose JSON is ASCII)."""
        return self._slot(js_string(escape_text(value), ascii=True))

    def text(self, value) -> str:
        missing = value is None or (np.ndim(value) == 0 and bool(pd.isna(value)))
        return self._slot(js_string("" if missing else str(value)))

    def page(self, value) -> str:
        return self._slot(escape_text(value))

    def raw(self, fragment: str) -> str:
        """A finished fragment this module built (script-safe JSON whose user text went
        through :func:`html_json_values` / :func:`text_json_values`), put in verbatim by
        :meth:`fill` (the layers' GeoJSON)."""
        return self._slot(fragment)

    def fill(self, page: str) -> str:
        def repl(m):
            i = int(m.group(1))
            if i >= len(self._values):
                raise RuntimeError("the map page holds an unknown text slot")
            return self._values[i]

        out = self._pattern.sub(repl, page)   # slots of features without geometry are simply absent
        if f"sdslot{self._nonce}" in out:
            raise RuntimeError("a text slot was altered while the map was rendered")
        return out


def _script_safe(json_text: str) -> str:
    """JSON text made safe within ``<script>``: ``< > & '`` and the JavaScript line
    separators U+2028/9 as \\u escapes (the same JSON value)."""
    return (json_text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("'", "\\u0027").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def js_string(text: str, *, ascii: bool = False) -> str:
    """``text`` as the inside of a JSON/JavaScript string literal that is safe within
    ``<script>`` (:func:`_script_safe`).

    >>> print(js_string('a"</script>'))
    a\\"\\u003c/script\\u003e
    """
    return _script_safe(json.dumps(text, ensure_ascii=ascii)[1:-1])


#: characters that :func:`escape_text` or :func:`js_string` change; a string without any
#: is its own escaped form
_NEEDS_ESCAPE = re.compile(r"[&<>\"'`$\\\x00-\x1f\x7f\u2028\u2029]")


def _escaped_values(values, one) -> np.ndarray:
    """``one`` applied to every value (object array), computed once per distinct value and
    skipped where the value has nothing to escape (most names, every key)."""
    s = pd.Series(values, dtype=object)
    missing = s.isna().to_numpy()
    text = s.where(~missing, "").astype(str)
    out = text.to_numpy(dtype=object).copy()
    special = text.str.contains(_NEEDS_ESCAPE, regex=True).to_numpy()
    if special.any():
        uniq = pd.unique(text[special])
        done = {u: one(u) for u in uniq}
        out[special] = [done[v] for v in text[special]]
    return out


def html_json_values(values) -> np.ndarray:
    """:meth:`TextSlots.html` for many values at once, without slots: each value HTML-escaped
    then made the inside of a script-safe JSON string (missing values: empty)."""
    return _escaped_values(values, lambda v: js_string(escape_text(v)))


def text_json_values(values) -> np.ndarray:
    """:meth:`TextSlots.text` for many values at once, without slots: verbatim text as the
    inside of a script-safe JSON string (for ``textContent`` only)."""
    return _escaped_values(values, js_string)


def km_label(distance_km: float) -> str:
    """'2', '2.5' — how a spill distance appears in layer names."""
    return f"{float(distance_km):g}"


def _fmt_int(x) -> str:
    return f"{int(round(float(x))):,}"


def _fmt_pct(x) -> str:
    return f"{100 * float(x):.0f} %"


def display_distances(distances_km) -> tuple[float, ...]:
    """The spill distances (km) a map or a report shows: checked as every spill distance
    is (:func:`subdivide.analysis.spill.parse_distances`: sorted, unique, in (0, 50]), and
    at most 6 (what the map's selector and legend hold)."""
    from subdivide.analysis.spill import parse_distances

    d = parse_distances(distances_km)
    if len(d) > 6:
        raise UserError(f"{len(d)} spill distances: at most 6 fit on the map", fix="give fewer distances")
    return d


# ---------------------------------------------------------------------- display geometry
def round_coords(geoms, decimals: int = COORD_DECIMALS) -> np.ndarray:
    """Round every coordinate (vectorised); shared vertices stay shared."""
    return shapely.transform(np.asarray(geoms), lambda c: np.round(c, decimals))


def display_coverage(geoms, tolerance_m: float = DEFAULT_TOLERANCE_M, *,
                     valid: bool | None = None) -> tuple[np.ndarray, bool]:
    """Simplify polygons that tile the plane (town-blocks) for display, keeping shared
    borders shared: ``shapely.coverage_simplify`` in the projected CRS (metres).

    Real boundary files are rarely exact coverages (vertices of neighbours differ by
    millimetres); such input is first cleaned with ``shapely.coverage_clean`` (nodes
    snapped, gaps narrower than 1 m closed — display only). Returns (geometries,
    simplified); when the input cannot be made a valid coverage the geometry is returned
    unchanged with ``simplified=False`` (simplifying it would open gaps). ``valid``: whether
    the input is known to be a valid coverage (``Plan.is_coverage``); None checks it.
    """
    g = np.asarray(geoms)
    if tolerance_m <= 0 or len(g) == 0:
        return g, False
    if not (_is_valid_coverage(g) if valid is None else valid):
        clean = getattr(shapely, "coverage_clean", None)  # shapely >= 2.2
        if clean is None:
            return g, False
        g = clean(g, gap_width=1.0)
        if shapely.is_empty(g).any() or not _is_valid_coverage(g):
            return np.asarray(geoms), False
    return shapely.coverage_simplify(g, tolerance_m, simplify_boundary=True), True


def _is_valid_coverage(g) -> bool:
    try:
        return bool(shapely.coverage_is_valid(g))
    except shapely.errors.GEOSException:
        return False


def display_simplify(geoms, tolerance_m: float) -> np.ndarray:
    """Each geometry simplified for display on its own: Douglas–Peucker (GEOS repairs a
    polygon it would make invalid); where that leaves nothing of a shape, or an invalid
    one, the topology-preserving simplifier instead (ten times slower)."""
    g = np.asarray(geoms, dtype=object)
    if tolerance_m <= 0 or len(g) == 0:
        return g
    out = shapely.simplify(g, tolerance_m, preserve_topology=False)
    bad = ~shapely.is_missing(g) & ((shapely.is_empty(out) & ~shapely.is_empty(g)) | ~shapely.is_valid(out))
    if bad.any():
        out[bad] = shapely.simplify(g[bad], tolerance_m, preserve_topology=True)
    return out


def to_display(geoms, crs, *, tolerance_m: float = 0.0) -> np.ndarray:
    """Projected geometries → EPSG:4326, optionally simplified first (each on its own,
    :func:`display_simplify`), rounded to :data:`COORD_DECIMALS`; empties dropped to None."""
    g = np.asarray(geoms)
    if tolerance_m > 0:
        g = display_simplify(g, tolerance_m)
    out = gpd.GeoSeries(g, crs=crs).to_crs(4326).values
    out = round_coords(np.asarray(out))
    return np.where(shapely.is_empty(out), None, out)


def label_points(geoms) -> np.ndarray:
    """Where to put a sub-area's label: the centre of its largest inscribed circle
    (always inside, away from the border), per geometry (projected CRS)."""
    g = np.asarray(geoms)
    circles = shapely.maximum_inscribed_circle(g, tolerance=None)
    return shapely.get_point(circles, 0)


# ---------------------------------------------------------------------- spill figures
@dataclass(frozen=True)
class SpillView:
    """What the map and the report show about spill.

    ``shares``: one row per sub-area and L — subarea, distance_km, core_share (exact
    polygon model, share of the sub-area beyond L from its border = not reached by
    neighbours' broadcasts), circle_share (circle model).
    ``exposure``: one row per (source, target, L) with target reached by source's
    broadcasts — source, target, distance_km, area_km2, population (areal-weighted
    from town-block counts), target_population_share.
    """

    shares: pd.DataFrame
    exposure: pd.DataFrame


def spill_shapes(plan, spill=None, distances_km=DEFAULT_DISTANCES_KM):
    """The :class:`~subdivide.analysis.spill.SpillGeometry` to draw at ``distances_km``: the
    one ``spill`` (a SpillReport) carries when it has every distance for this plan's
    sub-areas, else that of a report computed once here (by the analysis layer)."""
    from subdivide.analysis.spill import spill_report

    distances = display_distances(distances_km)
    geo = getattr(spill, "geometry", None)
    if geo is None or not _shapes_fit(geo, plan, distances):
        geo = spill_report(plan, distances_km=distances, advice=False).geometry
    return geo


def _shapes_fit(geo, plan, distances) -> bool:
    have = {round(float(L), 9) for L in geo.distances_km}
    subs = plan.dissolved["subarea"].to_numpy()
    return ({round(float(L), 9) for L in distances} <= have and len(geo.subarea) == len(subs)
            and bool(np.all(np.asarray(geo.subarea) == subs)))


def exposure_geometry(plan, distance_km: float, *, spill=None) -> gpd.GeoDataFrame:
    """Pairwise neighbour exposure polygons at L (projected CRS): the part of sub-area j
    inside sub-area i's reach, one per exposure row of the spill report, with that row's
    area_km2 and population (the report's figures; nothing is measured here)."""
    from subdivide.analysis.spill import spill_report

    report = spill if spill is not None else spill_report(plan, distances_km=(distance_km,), advice=False)
    view = view_of_report(report, plan)
    _, reach = spill_shapes(plan, report, (distance_km,)).at(distance_km)
    ex = view.exposure[view.exposure["distance_km"] == float(distance_km)]
    out = gpd.GeoDataFrame({
        "source": ex["source"].to_numpy("int64"), "target": ex["target"].to_numpy("int64"),
        "distance_km": float(distance_km), "area_km2": ex["area_km2"].to_numpy(float),
        "population": ex["population"].to_numpy(float),
    }, geometry=_exposure_pieces(plan.dissolved, ex, reach), crs=plan.crs)
    return out.sort_values(["source", "target"], kind="stable").reset_index(drop=True)


def _exposure_pieces(dissolved: gpd.GeoDataFrame, ex: pd.DataFrame, reach) -> np.ndarray:
    """Per exposure row (``ex``: :class:`SpillView` exposure rows at one L) the part of
    its target sub-area inside its source's ``reach`` (reaches in ``dissolved`` order)."""
    pos = {int(s): i for i, s in enumerate(dissolved["subarea"])}
    src = np.array([pos[int(x)] for x in ex["source"]], dtype=np.int64)
    dst = np.array([pos[int(x)] for x in ex["target"]], dtype=np.int64)
    return shapely.intersection(reach[src], np.asarray(dissolved.geometry.values, dtype=object)[dst])


def spill_view(plan, spill=None, distances_km=DEFAULT_DISTANCES_KM) -> SpillView:
    """Spill shares and exposure for the map and report, read from ``spill`` (a
    :class:`subdivide.analysis.spill.SpillReport`); one is computed with
    :func:`subdivide.analysis.spill.spill_report` at ``distances_km`` when None. The
    figures are the analysis layer's: nothing is recomputed here."""
    from subdivide.analysis.spill import spill_report

    distances = display_distances(distances_km)
    if spill is None:
        spill = spill_report(plan, distances_km=distances)
    return view_of_report(spill, plan)


#: the SpillReport columns the map and the report read (docs/spill.md)
REPORT_SUBAREA_COLUMNS = ("subarea", "distance_km", "core_share", "circle_unreached_share", "population_source")
REPORT_EXPOSURE_COLUMNS = ("from_subarea", "to_subarea", "distance_km", "area_km2", "population",
                           "to_population_share", "population_source")


def view_of_report(report, plan) -> SpillView:
    """The town-block figures of a SpillReport as a :class:`SpillView` (its canonical
    columns renamed: circle_unreached_share → circle_share, from/to_subarea →
    source/target, to_population_share → target_population_share)."""
    sub, exp = getattr(report, "subareas", None), getattr(report, "exposure", None)
    for table, cols, what in ((sub, REPORT_SUBAREA_COLUMNS, "subareas"), (exp, REPORT_EXPOSURE_COLUMNS, "exposure")):
        missing = [c for c in cols if not isinstance(table, pd.DataFrame) or c not in table.columns]
        if missing:
            raise UserError(f"the spill report's {what} table lacks {missing}",
                            fix="pass the SpillReport of subdivide.analysis.spill.spill_report, or none")
    # town-block population figures (a report may add raster rows as well)
    sub = sub[sub["population_source"] == "townblocks"]
    exp = exp[exp["population_source"] == "townblocks"]
    shares = pd.DataFrame({
        "subarea": sub["subarea"].astype("int64").to_numpy(),
        "distance_km": sub["distance_km"].astype(float).to_numpy(),
        "core_share": sub["core_share"].astype(float).to_numpy(),
        "circle_share": sub["circle_unreached_share"].astype(float).to_numpy(),
    })
    exposure = pd.DataFrame({
        "source": exp["from_subarea"].astype("int64").to_numpy(),
        "target": exp["to_subarea"].astype("int64").to_numpy(),
        "distance_km": exp["distance_km"].astype(float).to_numpy(),
        "area_km2": exp["area_km2"].astype(float).to_numpy(),
        "population": exp["population"].astype(float).to_numpy(),
        "target_population_share": exp["to_population_share"].astype(float).to_numpy(),
    })
    known = set(plan.subareas["subarea"])
    exposure = exposure[exposure["source"].isin(known) & exposure["target"].isin(known)
                        & (exposure["source"] != exposure["target"])]
    return SpillView(shares=shares.sort_values(["distance_km", "subarea"], kind="stable").reset_index(drop=True),
                     exposure=exposure.sort_values(["distance_km", "source", "target"], kind="stable")
                     .reset_index(drop=True))


def _pick(df: pd.DataFrame, *names):
    """The first of ``names`` that is a column of ``df`` (name columns of user files:
    points, sites, coverage), or None."""
    return next((n for n in names if n in df.columns), None)


# ---------------------------------------------------------------------- offline inlining
def _data_uri(name: str) -> str:
    path = ASSET_DIR / name
    mime = _MIME[path.suffix]
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _inline_css(url: str) -> str:
    fname, images = OFFLINE_ASSETS[url]
    css = (ASSET_DIR / fname).read_text(encoding="utf-8")

    def repl(m):
        ref = m.group(2)
        if ref.startswith("#") or ref.startswith("data:"):
            return m.group(0)
        if ref not in images:
            raise RuntimeError(f"vendored {fname} references {ref}, which is not vendored")
        return f"url({_data_uri(images[ref])})"

    css = re.sub(r"url\((['\"]?)([^)'\"]+)\1\)", repl, css)
    return "<style>\n" + css.replace("</", "<\\/") + "\n</style>"


def _script_text(js: str) -> str:
    # '</script' inside inlined code would end the element; '<\/' means the same in JS
    return "<script>\n" + js.replace("</script", "<\\/script").replace("<!--", "<\\!--") + "\n</script>"


def measure_js() -> str:
    """leaflet-measure 2.1.7 with a Japanese locale ('ja') added to its bundle."""
    js = (ASSET_DIR / OFFLINE_ASSETS[MEASURE_JS][0]).read_text(encoding="utf-8")
    if js.count(_MEASURE_LOCALES_END) != 1:
        raise RuntimeError("vendored leaflet-measure changed: cannot add the Japanese locale")
    ja = json.dumps(MEASURE_JA, ensure_ascii=True)
    return js.replace(_MEASURE_LOCALES_END, _MEASURE_LOCALES_END[:-1] + f",ja:{ja}}}")


def inline_assets(page: str, *, offline: bool) -> str:
    """Replace CDN ``<script src>`` / ``<link href>`` tags by the vendored files.

    The measure plugin is always inlined (its Japanese locale is added here); with
    ``offline`` every other library too, and any reference left to an unknown external
    script or stylesheet is an error."""
    def script(m):
        url = m.group(1)
        if url == MEASURE_JS:
            return _script_text(measure_js())
        if not offline:
            return m.group(0)
        if url not in OFFLINE_ASSETS:
            raise RuntimeError(f"no vendored copy of {url}")
        return _script_text((ASSET_DIR / OFFLINE_ASSETS[url][0]).read_text(encoding="utf-8"))

    def link(m):
        url = m.group(1)
        if url == MEASURE_CSS or offline:
            if url not in OFFLINE_ASSETS:
                raise RuntimeError(f"no vendored copy of {url}")
            return _inline_css(url)
        return m.group(0)

    page = re.sub(r'<script src="([^"]+)"></script>', script, page)
    page = re.sub(r'<link rel="stylesheet" href="([^"]+)"\s*/?>', link, page)
    return page


EXTERNAL_REF = re.compile(
    r"""<script[^>]*\bsrc\s*=\s*["']?(?:https?:)?//|<link[^>]*\bhref\s*=\s*["']?(?:https?:)?//"""
    r"""|@import\s+(?:url\()?["']?(?:https?:)?//|url\(\s*["']?(?:https?:)?//""",
    re.IGNORECASE,
)


def external_references(page: str) -> list[str]:
    """External scripts, stylesheets, CSS imports or CSS url()s in an HTML page (what an
    offline map must not have)."""
    return [m.group(0) for m in EXTERNAL_REF.finditer(page)]


# ---------------------------------------------------------------------- the page (Leaflet, written here)
def _js(value) -> str:
    """A value this module made (numbers, constants, slot names) as script-safe JSON
    (:func:`_script_safe`)."""
    return _script_safe(json.dumps(value, ensure_ascii=False, separators=(", ", ": ")))


class _Leaflet:
    """The page as plain Leaflet code, written here without a template engine: the head
    (stylesheets and scripts as CDN tags that :func:`inline_assets` replaces), one map
    element and one script. Variables are numbered in order (``map_00000001``,
    ``geo_json_0000000f``), so the same map gives the same bytes. User text never reaches
    this code as text: it is in slots (:class:`TextSlots`), filled once the page is whole."""

    def __init__(self, slots: TextSlots, title: str, location, zoom: int = 10):
        self.slots = slots
        self._n = 0
        self._includes: dict[str, str] = {}
        self._script: list[str] = []
        self._control: list[tuple[str, str, bool]] = []   # (name as JSON, variable, overlay)
        self._shown: dict[str, bool] = {}
        self.title = title
        self.map = self.var("map")
        self.include("leaflet", LEAFLET_JS)
        self.include("leaflet_css", LEAFLET_CSS, css=True)
        self.js(f'var {{map}} = L.map("{{map}}", {{center: {_js(list(location))}, crs: L.CRS.EPSG3857, '
                f'zoom: {int(zoom)}, zoomControl: false, preferCanvas: false, zoomSnap: 0.25, zoomDelta: 0.5}});')

    def var(self, kind: str) -> str:
        self._n += 1
        return f"{kind}_{self._n:08x}"

    def include(self, name: str, url: str, *, css: bool = False) -> None:
        """A script or stylesheet in the head, once per name."""
        self._includes.setdefault(name, f'<link rel="stylesheet" href="{url}"/>' if css
                                  else f'<script src="{url}"></script>')

    def js(self, code: str) -> None:
        """Code run after the map exists (``{map}`` = the map variable)."""
        self._script.append(code.replace("{map}", self.map))

    def group(self, name: str | None = None, *, overlay: bool = True, control: bool = True,
              show: bool = True) -> str:
        """A feature group; ``name`` (may hold slots) in the layer control when ``control``.
        Shown once :meth:`close` is called (after its layers: Leaflet draws in that order)."""
        v = self.var("feature_group")
        self.js(f"var {v} = L.featureGroup({{}});")
        if control and name is not None:
            self._control.append(('"' + js_string(name) + '"', v, overlay))
        self._shown[v] = show
        return v

    def close(self, v: str) -> None:
        if self._shown.pop(v):
            self.js(f"{v}.addTo({{map}});")

    def tile_layer(self, name: str, url: str, attribution: str, *, show: bool) -> str:
        v = self.var("tile_layer")
        self.js(f"var {v} = L.tileLayer({_js(url)}, {{\"minZoom\": 5, \"maxZoom\": 18, \"maxNativeZoom\": 18, "
                f"\"attribution\": {_js(attribution)}}});")
        if show:
            self.js(f"{v}.addTo({{map}});")
        self._control.append(('"' + js_string(name) + '"', v, False))
        return v

    def geojson(self, group: str, data_slot: str, *, style_map: dict, highlight_map: dict | None = None,
                tooltip: tuple[list, list] | None = None, radius: float | None = None) -> str:
        """A GeoJSON layer in ``group``: data through a slot (:meth:`TextSlots.raw`), styled
        by feature id (:func:`_style_map`), an optional highlight on hover, a tooltip
        table (fields, aliases: constants) and circle markers of ``radius`` for points."""
        v = self.var("geo_json")
        code = [_switch(f"{v}_styler", style_map)]
        opts = [f"style: {v}_styler"]
        if highlight_map is not None:
            code.append(_switch(f"{v}_highlighter", highlight_map))
            code.append(f"""function {v}_onEachFeature(feature, layer) {{
    layer.on({{
        mouseout: function (e) {{ if (typeof e.target.setStyle === "function") {{ {v}.resetStyle(e.target); }} }},
        mouseover: function (e) {{
            if (typeof e.target.setStyle === "function") {{ e.target.setStyle({v}_highlighter(e.target.feature)); }}
        }}
    }});
}}""")
            opts.append(f"onEachFeature: {v}_onEachFeature")
        if radius is not None:
            code.append(f"function {v}_pointToLayer(feature, latlng) {{\n"
                        f"    return L.circleMarker(latlng, Object.assign({{radius: {_js(radius)}}}, {v}_styler(feature)));\n}}")
            opts.append(f"pointToLayer: {v}_pointToLayer")
        code.append(f"var {v} = L.geoJson(null, {{{', '.join(opts)}}});")
        code.append(f"function {v}_add (data) {{ {v}.addData(data); }}")   # "_add(" + data: parsed by tests
        code.append(f"{v}_add({data_slot});")
        if tooltip is not None:
            fields, aliases = tooltip
            code.append(f"{v}.bindTooltip(sd_tooltip({_js(list(fields))}, {_js(list(aliases))}), "
                        f"{{\"sticky\": true, \"className\": \"sd-tooltip\"}});")
        code.append(f"{v}.addTo({group});")
        self.js("\n".join(code))
        return v

    def html_control(self, html_text: str, position: str, css_class: str) -> None:
        """A control holding fixed HTML (legend, explanation, title; names in slots)."""
        self.js(f"""(function () {{
    var c = L.control({{position: {_js(position)}}});
    c.onAdd = function () {{
        var d = L.DomUtil.create('div', {_js(css_class)});
        d.innerHTML = "{js_string(html_text)}";
        L.DomEvent.disableClickPropagation(d);
        L.DomEvent.disableScrollPropagation(d);
        return d;
    }};
    c.addTo({{map}});
}})();""")

    def layer_control(self) -> None:
        base = "".join(f"\n        {n} : {v}," for n, v, o in self._control if not o)
        over = "".join(f"\n        {n} : {v}," for n, v, o in self._control if o)
        lc = self.var("layer_control")
        self.js(f"var {lc}_layers = {{\n    base_layers : {{{base}\n    }},\n    overlays : {{{over}\n    }},\n}};\n"
                f"var {lc} = L.control.layers({lc}_layers.base_layers, {lc}_layers.overlays, "
                f"{{\"position\": \"topright\", \"collapsed\": false, \"autoZIndex\": true}}).addTo({{map}});")

    def render(self) -> str:
        """The whole page (slots still in it)."""
        head = "\n    ".join([
            '<meta http-equiv="content-type" content="text/html; charset=UTF-8" />',
            f"<title>{self.title}</title>" + PAGE_CSS,
            '<meta name="viewport" content="width=device-width, initial-scale=1.0, maximum-scale=1.0, '
            'user-scalable=no" />',
            _MAP_CSS.replace("{map}", self.map),
            *self._includes.values()])
        return (f"<!DOCTYPE html>\n<html>\n<head>\n    {head}\n</head>\n<body>\n"
                f'    <div class="sd-map" id="{self.map}" ></div>\n</body>\n<script>\n'
                + _TOOLTIP_JS + "\n" + "\n".join(self._script) + "\n</script>\n</html>")


def _switch(name: str, style_map: dict) -> str:
    """``function name(feature)`` returning the style of the feature's id (:func:`_style_map`)."""
    cases = "".join(f"\n        {''.join(f'case {_js(str(i))}: ' for i in ids)}\n            return {style};"
                    for style, ids in style_map.items() if style != "default")
    return (f"function {name}(feature) {{\n    switch (feature.id) {{{cases}\n        default:\n"
            f"            return {style_map['default']};\n    }}\n}}")


#: the map element fills the window
_MAP_CSS = """<style>
        #{map} { position: relative; width: 100.0%; height: 100.0%; left: 0.0%; top: 0.0%; }
        .leaflet-container { font-size: 1rem; }
        html, body { width: 100%; height: 100%; margin: 0; padding: 0; }
        .sd-tooltip table { margin: auto; }
        .sd-tooltip tr { text-align: left; }
        .sd-tooltip th { padding: 2px; padding-right: 8px; }
    </style>"""

#: a tooltip table of some properties (values are escaped HTML, aliases constants)
_TOOLTIP_JS = """function sd_tooltip(fields, aliases) {
    return function (layer) {
        var div = L.DomUtil.create('div'), p = layer.feature.properties;
        div.innerHTML = '<table>' + fields.map(function (f, i) {
            var v = p[f];
            return '<tr><th>' + aliases[i] + '</th><td>' + (v === null || v === undefined ? '' : v) + '</td></tr>';
        }).join('') + '</table>';
        return div;
    };
}"""


PAGE_CSS = """
<style>
  html, body { font-family: "Helvetica Neue", Arial, "Liberation Sans", "Hiragino Sans",
               "Hiragino Kaku Gothic ProN", "Yu Gothic", Meiryo, "Noto Sans CJK JP", "IPAPGothic",
               "IPAGothic", sans-serif; }
  html .leaflet-container { background: #f3f3ee; font-family: inherit; font-size: 13px; }
  .sd-box { background: rgba(255,255,255,0.94); padding: 6px 9px; border-radius: 4px;
            box-shadow: 0 1px 5px rgba(0,0,0,0.35); max-width: 420px; line-height: 1.45; color: #222; }
  .sd-box summary { cursor: pointer; font-weight: bold; }
  .sd-title { font-size: 15px; font-weight: bold; }
  .sd-legend { max-height: calc(100vh - 420px); overflow-y: auto; }
  .sd-legend table { border-collapse: collapse; font-size: 12px; }
  .sd-legend th, .sd-legend td { padding: 1px 5px; text-align: right; white-space: nowrap; }
  .sd-legend th { border-bottom: 1px solid #999; font-weight: bold; }
  .sd-legend th.sd-name, .sd-legend td.sd-name { text-align: left; }
  .sd-legend td.sd-name { white-space: normal; overflow-wrap: anywhere; min-width: 5em; max-width: 10em; }
  .sd-legend .sd-key { font-size: 11.5px; margin: 4px 0 0; white-space: normal; color: #333; }
  .sd-core-key { display: inline-block; width: 22px; height: 12px; border: 1.5px dashed #333;
                 background: #9a9a9a; vertical-align: middle; }
  .sd-swatch { display: inline-block; width: 14px; height: 14px; border: 1px solid #333;
               vertical-align: middle; }
  .sd-info { max-width: 340px; font-size: 12px; }
  .sd-info p { margin: 4px 0; }
  .sd-note { color: #8a1c00; font-size: 12px; }
  .sd-caution { color: #555; }
  .sd-below { color: #c00000; font-weight: bold; }
  .sd-spill { max-width: 300px; font-size: 12px; }
  .sd-spill label { display: block; white-space: nowrap; }
  .sd-spill ul { margin: 2px 0 0; padding-left: 0; list-style: none; max-height: 160px; overflow-y: auto; }
  .sd-spill .sd-key { margin: 3px 0 0; font-size: 11px; }
  .sd-spill .sd-below { white-space: nowrap; }
  .sd-spill li { margin: 1px 0; }
  .sd-spill li.sd-below-row { outline: 2px solid #c00000; outline-offset: -1px; }
  .sd-tile-error { font-size: 12px; color: #8a1c00; border-left: 4px solid #c00000; padding-left: 5px;
                   margin-bottom: 4px; }
  .sd-head { max-width: 330px; }
  .sd-label-icon { background: none; border: none; }
  .sd-label { position: absolute; transform: translate(-50%, -50%); white-space: nowrap;
              font-size: 15px; font-weight: bold; color: #111; pointer-events: none;
              text-shadow: -2px -2px 0 #fff, 2px -2px 0 #fff, -2px 2px 0 #fff, 2px 2px 0 #fff,
                           0 0 4px #fff, 0 0 4px #fff; }
  .sd-label .sd-num { display: inline-block; min-width: 1.4em; padding: 0 3px; margin-right: 3px;
                      border-radius: 9px; color: #fff; background: #222; text-shadow: none;
                      text-align: center; }
  .leaflet-tooltip table th { text-align: left; padding-right: 8px; }
  .leaflet-control-search .search-input { width: 170px; }
</style>
"""


def _json_strings(values) -> np.ndarray:
    """Strings this module formatted (numbers, units, slot-free constants) as JSON string
    literals, computed once per distinct value (user text goes through
    :func:`html_json_values` instead)."""
    s = pd.Series(values, dtype=object).astype(str)
    codes, uniq = pd.factorize(s, sort=False)
    lit = np.array(['"' + js_string(u) + '"' for u in uniq], dtype=object)
    return lit[codes] if len(uniq) else np.zeros(0, dtype=object)


def _geojson_text(geoms, props: pd.DataFrame) -> tuple[str, np.ndarray]:
    """A FeatureCollection as compact, script-safe JSON text, built from arrays
    (``shapely.to_geojson``; one JSON literal per distinct property value), from 4326
    geometries and a table of properties: plain strings (:func:`_json_strings`) or, in
    columns named in ``props.attrs["json"]``, ready JSON string contents
    (:func:`html_json_values`). Rows with no geometry are skipped; feature ids are the row
    numbers. Returns (text, the rows kept)."""
    g = np.asarray(geoms, dtype=object)
    keep = np.flatnonzero(~shapely.is_missing(g)) if len(g) else np.zeros(0, np.int64)
    ready = set(props.attrs.get("json", ()))
    cols = sorted(props.columns)
    parts = []
    for c in cols:
        v = props[c].to_numpy(dtype=object)[keep]
        lit = np.array(['"' + x + '"' for x in v], dtype=object) if c in ready else _json_strings(v)
        parts.append(json.dumps(c, ensure_ascii=False) + ":" + lit if len(lit) else lit)
    gj = shapely.to_geojson(g[keep]) if len(keep) else np.zeros(0, dtype=object)
    ids = keep.astype(str)
    prop_text = [",".join(row) for row in zip(*parts)] if cols else [""] * len(keep)
    feats = [f'{{"geometry":{geom},"id":"{i}","properties":{{{pt}}},"type":"Feature"}}'
             for geom, i, pt in zip(gj, ids, prop_text)]
    text = '{"features":[' + ",".join(feats) + '],"type":"FeatureCollection"}'
    return _script_safe(text), keep   # (the strings in it are escaped already)


def _legend_html(view: SpillView, metrics: pd.DataFrame, colours: dict[int, str], distances, esc,
                 target_share: float = DEFAULT_TARGET_SHARE) -> str:
    """The legend table (HTML); ``esc`` puts user text in (:meth:`TextSlots.html`). Shares
    below ``target_share`` are marked (red, bold, ▼) as the report marks them."""
    head = "".join(f"<th>L={km_label(L)} km</th>" for L in distances)
    rows = []
    for r in metrics.itertuples(index=False):
        shares = view.shares[view.shares["subarea"] == r.subarea].set_index("distance_km")["core_share"]
        cells = "".join(_share_cell(shares.get(float(L)), target_share) if float(L) in shares.index
                        else "<td>–</td>" for L in distances)
        rows.append(
            f'<tr><td><span class="sd-swatch" style="background:{colours[int(r.subarea)]}"></span></td>'
            f"<td>{int(r.subarea)}</td><td class=\"sd-name\">{esc(r.name)}</td>"
            f"<td>{r.area_km2:,.1f}</td><td>{_fmt_int(r.population)}</td>{cells}</tr>")
    return (
        '<details open><summary>細分化エリア</summary>'
        '<table><thead><tr><th></th><th>番号</th><th class="sd-name">名称</th><th>面積 km²</th>'
        f'<th>人口</th>{head}</tr>'
        f'<tr><th colspan="5"></th><th colspan="{len(distances)}">非到達率（内側コアの割合）</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
        f'<p class="sd-key"><span class="sd-below">▼赤字</span>＝目安 {target_share:.0%} 未満。'
        f'<span class="sd-core-key"></span> 濃い色・点線の内側＝内側コア'
        f"（境界から L km 以上内側：隣のエリア宛ての配信が届かないと見込まれる範囲）。"
        f"非到達率＝内側コアの面積 ÷ エリアの面積。</p></details>"
    )


def _share_cell(value, target_share: float) -> str:
    if value is None or pd.isna(value):
        return "<td>–</td>"
    if float(value) < target_share:
        return f'<td class="sd-below" title="目安 {target_share:.0%} 未満">▼{_fmt_pct(value)}</td>'
    return f"<td>{_fmt_pct(value)}</td>"


def _info_html(distances, note: str | None, esc) -> str:
    ls = "・".join(f"{km_label(L)}" for L in distances)
    parts = [
        "<details><summary>この地図の見方（色・点線・用語の説明）</summary>",
        "<p>緊急速報メールは、エリアを受け持つ基地局から一斉に配信されます。電波はエリアの境界を"
        "越えて届くため、隣のエリア宛てのメールも境界から数 km 内側まで受信されます（漏れ）。"
        "2016–17 年の実証では境界から 1.6–3.3 km 離れた地点で受信されました。</p>",
        f"<p><b>内側コア (L km)</b>：境界から L km 以上内側の範囲。隣のエリア宛ての配信が届かない"
        f"と見込まれる部分です。<b>非到達率</b> = 内側コアの面積 ÷ エリアの面積（L = {ls} km）。</p>",
        "<p><b>外側到達範囲</b>：そのエリア宛ての配信が境界の外で届く範囲（境界から L km）。"
        "<b>隣接エリアへの漏れ</b>：その範囲のうち他のエリアに入る部分（色は配信元エリアの色）。"
        "人口は町丁・字の人口を面積で按分した概算です。</p>",
        "<p>漏れの表示（内側コア・配信が届く範囲・隣のエリアへの漏れ）と漏れ距離 L は右上の「電波の漏れ」で"
        "一つずつ選びます。その他のレイヤ（表示する項目）も右上で切り替えます。町丁・字にマウスを重ねると名称・人口が"
        "表示されます。左上の検索欄で町丁・字名を探せます。</p>",
        '<p class="sd-caution">ご注意：漏れの範囲は「境界から一律 L km 届く」と仮定した目安で、'
        "実際の電波の届き方は地形や基地局の位置で変わります。境界線は表示のため簡略化しています。</p>",
    ]
    if note:
        parts.append(f'<p class="sd-note">{esc(note)}</p>')
    parts.append("</details>")
    return "".join(parts)


def _style(colour: str, *, weight=1.0, opacity=1.0, fill_opacity=0.3, dash=None, line=None) -> dict:
    s = {"color": line or colour, "weight": weight, "opacity": opacity, "fillColor": colour,
         "fillOpacity": fill_opacity}
    if dash:
        s["dashArray"] = dash
    return s


def _style_map(styles, ids: np.ndarray) -> dict:
    """A style switch (:func:`_switch`), {style JSON: [feature ids], "default": style JSON}, from one
    style for every feature (a dict) or a pair (key per feature, {key: style})."""
    if isinstance(styles, dict):
        return {"default": json.dumps(styles, sort_keys=True)}
    keys, table = styles
    keys = np.asarray(keys, dtype=object)
    out: dict = {}
    for k in pd.unique(keys):
        out[json.dumps(table[k], sort_keys=True)] = ids[keys == k].tolist()
    if not out:
        return {"default": "{}"}
    common = max(out, key=lambda k: len(out[k]))   # the first of the most used
    out["default"] = common
    del out[common]
    return out


def _add_geojson(p, group: str, geoms, props: pd.DataFrame, *, styles, highlight=None, tooltip_fields=None,
                 aliases=None, radius=None) -> str:
    """A GeoJSON layer in ``group`` (geometries in EPSG:4326, properties as for
    :func:`_geojson_text`) styled per feature: ``styles`` one dict, or (key per row,
    {key: style dict}). Returns its variable."""
    text, keep = _geojson_text(geoms, props)
    if isinstance(styles, tuple):
        styles = (np.asarray(styles[0], dtype=object)[keep], styles[1])
    ids = keep.astype(str)
    return p.geojson(group, p.slots.raw(text), style_map=_style_map(styles, ids),
                     highlight_map=None if highlight is None else _style_map(highlight, ids),
                     tooltip=(tooltip_fields, aliases) if tooltip_fields and len(keep) else None,
                     radius=radius)


# ---------------------------------------------------------------------- the map, piece by piece
class _Page(_Leaflet):
    """The page being written (:class:`_Leaflet`) and what its pieces share: the text slots
    and the plan's display data."""

    def __init__(self, plan, view: SpillView, distances, bounds, title, tolerance_m: float):
        slots = TextSlots()   # every user string goes in through a slot
        super().__init__(slots, slots.page(title or "細分化エリア 審議用地図"),
                         [(bounds[0][0] + bounds[1][0]) / 2, (bounds[0][1] + bounds[1][1]) / 2])
        self.plan = plan
        self.view = view
        self.distances = distances
        self.colours = subarea_colours(plan.subareas["subarea"].astype(int).tolist())
        self.names = dict(zip(plan.subareas["subarea"].astype(int), plan.subareas["name"]))
        self._names_json = dict(zip(self.names, html_json_values(list(self.names.values()))))
        self.tolerance_m = tolerance_m
        # core share: index sub-area, columns L
        self.shares = view.shares.pivot_table(index="subarea", columns="distance_km", values="core_share")
        self.target_share = DEFAULT_TARGET_SHARE
        self.spill_groups: dict = {}   # band → {L label: group variable}

    @property
    def default_l(self) -> float:
        """The L shown first: the shortest (2 km by default)."""
        return float(self.distances[0])

    def below(self, s: int, L: float) -> bool:
        """Is the unreached share of ``s`` at ``L`` below the policy (as the report marks it)?"""
        return float(L) in self.shares.columns and bool(self.shares.loc[s, float(L)] < self.target_share)

    @property
    def esc(self):
        return self.slots.html

    @property
    def esc_a(self):   # controls and labels: ASCII JSON
        return self.slots.html_ascii

    def share_text(self, s: int, L: float) -> str:
        return _fmt_pct(self.shares.loc[s, float(L)]) if float(L) in self.shares.columns else "–"

    def name_json(self, subs) -> np.ndarray:
        """Sub-area names for layer data (:func:`html_json_values`; no slots there)."""
        return np.array([self._names_json[int(s)] for s in subs], dtype=object)


def _display_geometry(plan, tolerance_m: float):
    """Sub-area and town-block display geometry (EPSG:4326) and the map bounds.
    Sub-area outlines are unions of the simplified blocks, so both borders coincide."""
    blocks = plan.blocks
    bgeom, simplified = display_coverage(blocks.geometry.values, tolerance_m, valid=plan.is_coverage)
    sub_num = blocks["subarea"].to_numpy()
    sub_geom = np.array([
        shapely.coverage_union_all(bgeom[sub_num == s]) if simplified else plan.dissolved.geometry.values[i]
        for i, s in enumerate(plan.dissolved["subarea"].to_numpy())], dtype=object)
    sub_geom_4326 = to_display(sub_geom, plan.crs)
    ll = np.asarray(shapely.total_bounds(sub_geom_4326[~shapely.is_missing(sub_geom_4326)]))
    bounds = [[float(ll[1]), float(ll[0])], [float(ll[3]), float(ll[2])]]
    return sub_geom, sub_geom_4326, to_display(bgeom, plan.crs), bounds


@dataclass(frozen=True)
class MapGeometry:
    """What a map of a plan draws its sub-areas and town-blocks with (display-simplified at
    ``tolerance_m``, reprojected to EPSG:4326, and the map bounds): the same for every map
    of that plan, so a caller drawing two (``subdivide run``: the package's and the
    council's) makes it once with :func:`map_geometry` and passes it to both."""

    tolerance_m: float
    subareas: np.ndarray
    subareas_4326: np.ndarray
    blocks_4326: np.ndarray
    bounds: tuple


def map_geometry(plan, tolerance_m: float = DEFAULT_TOLERANCE_M) -> MapGeometry:
    """The display geometry of ``plan``'s maps (see :class:`MapGeometry`)."""
    sub, sub_4326, blk_4326, bounds = _display_geometry(plan, tolerance_m)
    return MapGeometry(float(tolerance_m), sub, sub_4326, blk_4326, tuple(tuple(b) for b in bounds))


def _new_page(plan, view, distances, bounds, title, tolerance_m) -> _Page:
    p = _Page(plan, view, distances, bounds, title, tolerance_m)
    p.js("L.control.zoom({zoomInTitle: '拡大', zoomOutTitle: '縮小', position: 'topleft'}).addTo({map});")
    return p


def _add_basemaps(p: _Page, basemap: str, basemap_on: bool = True) -> None:
    """地理院タイル in the layer control, ``basemap`` first; with ``basemap_on=False`` they
    are offered but 「背景地図なし」 is chosen, so the page requests no tile until asked."""
    if basemap == "none":
        return
    for k in [basemap] + [k for k in BASEMAPS if k != basemap]:
        lname, url = BASEMAPS[k]
        p.tile_layer(lname, url, GSI_ATTRIBUTION, show=(k == basemap and basemap_on))
    p.close(p.group(NO_BASEMAP_NAME, overlay=False, show=not basemap_on))


def _props(columns: dict, ready=()) -> pd.DataFrame:
    """Layer properties: plain strings, and in the ``ready`` columns JSON string contents
    (user text through :func:`html_json_values`)."""
    df = pd.DataFrame(columns)
    df.attrs["json"] = tuple(ready)
    return df


def _add_subareas(p: _Page, sub_geom_4326) -> None:
    mt = p.plan.metrics.set_index("subarea")
    subs = p.plan.dissolved["subarea"].astype(int).to_numpy()
    props = _props({
        "subarea": subs.astype(str),
        "名称": p.name_json(subs),
        "面積": [f"{mt.loc[s, 'area_km2']:,.1f} km²" for s in subs],
        "人口": [f"{_fmt_int(mt.loc[s, 'population'])} 人" for s in subs],
    }, ready=["名称"])
    share_cols = [f"非到達率 L={km_label(L)} km" for L in p.distances]
    for col, L in zip(share_cols, p.distances):
        props[col] = [p.share_text(s, L) for s in subs]
    g = p.group("細分化エリア")
    _add_geojson(p, g, sub_geom_4326, props,
                 styles=(subs, {s: _style(p.colours[s], weight=3, fill_opacity=0.35, line="#222") for s in subs}),
                 tooltip_fields=["subarea", "名称", "面積", "人口", *share_cols],
                 aliases=["番号", "名称", "面積", "人口", *share_cols])
    p.close(g)


def _add_townblocks(p: _Page, bgeom_4326, progress):
    """Town-block borders with tooltips; returns the layer (the search runs on it)."""
    blocks = p.plan.blocks
    progress("map: town-blocks", 0, len(blocks))
    names = blocks["name"]
    named = names.fillna("").astype(str).str.len().to_numpy() > 0
    sub = blocks["subarea"].astype(int).to_numpy()
    pop = np.rint(blocks["population"].to_numpy(dtype=float)).astype(np.int64)
    props = _props({
        "name": np.where(named, html_json_values(names), "（名称なし）"),
        "key": html_json_values(blocks["key"]),
        "pop": pd.Series(pop).map("{:,} 人".format).to_numpy(dtype=object),
        "sub": sub.astype(str).astype(object) + " " + p.name_json(sub),
        # verbatim, for the search only: a JSON string escaping < > & ' (js_string),
        # and the search list shows it with textContent (see _SEARCH_JS), never as HTML
        "search": text_json_values(names),
    }, ready=["name", "key", "sub", "search"])
    g = p.group("町丁・字の境界")
    layer = _add_geojson(
        p, g, bgeom_4326, props,
        styles={"color": "#555", "weight": 0.6, "opacity": 0.8, "fillColor": "#ffffff", "fillOpacity": 0.0},
        highlight={"color": "#000", "weight": 2.5, "fillColor": "#ffff66", "fillOpacity": 0.35},
        tooltip_fields=["name", "key", "pop", "sub"], aliases=["町丁・字", "KEY_CODE", "人口", "細分化エリア"])
    p.close(g)
    progress("map: town-blocks", len(blocks), len(blocks))
    return layer


def _spill_layer(p: _Page, band: str, L, geoms_4326, props, styles, fields, aliases) -> None:
    """One band at one L as a group outside the layer control (the spill selector,
    :func:`_spill_control`, shows one at a time)."""
    g = p.group(control=False, show=(band == "core" and float(L) == p.default_l))
    _add_geojson(p, g, geoms_4326, props, styles=styles, tooltip_fields=fields, aliases=aliases)
    p.close(g)
    p.spill_groups.setdefault(band, {})[km_label(L)] = g


def _spill_bands(p: _Page, shapes) -> dict:
    """The report's cores, reaches and exposure pieces at every L, cut as the map draws
    them (EPSG:4326, simplified for display as the sub-areas are): core = the report's
    core; reach = the report's reach outside the sub-area's territory; exposure = its
    part in each sub-area it reaches, one per exposure row of the report. Nothing is
    buffered or measured here. Returns {L: (cores, rings, exposure rows, pieces)}."""
    tol = p.tolerance_m
    cores, rings, pieces, rows = [], [], [], []
    for L in p.distances:
        core, reach = shapes.at(L)
        if tol > 0:   # display resolution before cutting (the ladder's arcs are fine)
            reach = display_simplify(reach, tol)
        ex = p.view.exposure[p.view.exposure["distance_km"] == float(L)]
        cores.append(core)
        rings.append(shapely.difference(reach, shapes.territory))
        pieces.append(_exposure_pieces(p.plan.dissolved, ex, reach))
        rows.append(ex)
    k, nL, n = len(p.plan.dissolved), len(p.distances), [len(x) for x in pieces]
    flat = to_display(np.concatenate([*cores, *rings, *pieces]), p.plan.crs, tolerance_m=tol)
    out, at = {}, 2 * k * nL
    for i, L in enumerate(p.distances):
        out[L] = (flat[i * k:(i + 1) * k], flat[(nL + i) * k:(nL + i + 1) * k], rows[i], flat[at:at + n[i]])
        at += n[i]
    return out


def _add_spill_layers(p: _Page, shapes, progress) -> None:
    """Inward core, outward reach and neighbour exposure at each L (one shown at a time),
    drawn from the spill report's shapes (:func:`_spill_bands`)."""
    progress("map: spill layers", 0, len(p.distances))
    nums = p.plan.dissolved["subarea"].astype(int).to_numpy()
    names = p.name_json(nums)
    bands = _spill_bands(p, shapes)
    for i, L in enumerate(p.distances):
        core, ring, ex, pieces = bands[L]
        below = np.array([p.below(s, L) for s in nums], dtype=bool)
        props = _props({
            "subarea": nums.astype(str), "名称": names,
            "非到達率": [p.share_text(s, L) + (f"（目安 {p.target_share:.0%} 未満）" if b else "")
                      for s, b in zip(nums, below)],
            "below": np.where(below, "1", "0"), "L": f"{km_label(L)} km"}, ready=["名称"])
        _spill_layer(p, "core", L, core, props,
                     (nums.astype(str) + np.where(below, "b", ""),
                      {f"{s}{'b' if b else ''}": _style(p.colours[s], weight=3.5 if b else 1.5, fill_opacity=0.55,
                                                        dash="4 3", line=BELOW_COLOUR if b else "#333")
                       for s, b in zip(nums, below)}),
                     ["名称", "L", "非到達率"], ["内側コア", "漏れ距離 L", "非到達率"])
        _spill_layer(p, "reach", L, ring, _props({c: props[c] for c in ("subarea", "名称", "L")}, ready=["名称"]),
                     (nums, {s: _style(p.colours[s], weight=1.5, fill_opacity=0.18, dash="6 4") for s in nums}),
                     ["名称", "L"], ["この配信元の配信が届く範囲", "漏れ距離 L"])
        src = ex["source"].astype(int).to_numpy()
        _spill_layer(p, "exposure", L, pieces, _exposure_props(p, ex),
                     (src, {s: _style(p.colours[s], weight=1, fill_opacity=0.5, line="#b00000", dash="2 2")
                            for s in np.unique(src)}),
                     ["from", "to", "area", "pop"], ["配信元", "受信するエリア", "面積", "人口（概算）"])
        progress("map: spill layers", i + 1, len(p.distances))


def _spill_legend_html(p: _Page, band: str, L) -> str:
    """The legend of one band at one L, in words, one line per sub-area (names through
    slots). Hidden until the selector shows it."""
    rows = []
    for s in p.plan.subareas["subarea"].astype(int):
        sw = f'<span class="sd-swatch sd-{band}-key" style="background:{p.colours[s]}"></span>'
        name = p.esc_a(p.names[s])
        if band == "core":
            below = p.below(s, L)
            flag = (f' <span class="sd-below">▼目安 {p.target_share:.0%} 未満</span>' if below else "")
            rows.append(f'<li class="{"sd-below-row" if below else ""}">{sw} {name}{SPILL_BANDS[band][1]}'
                        f" (L = {km_label(L)} km)：{p.share_text(s, L)}{flag}</li>")
        else:
            rows.append(f"<li>{sw} {name}{SPILL_BANDS[band][1]} (L = {km_label(L)} km)</li>")
    return (f'<div class="sd-band" data-band="{band}" data-l="{km_label(L)}" style="display:none">'
            f'<p class="sd-key">{SPILL_BAND_HELP[band]}</p><ul>' + "".join(rows) + "</ul></div>")


def _spill_control_html(p: _Page) -> str:
    """The spill panel: what to show (one band or none) and L (one at a time), and the
    legend in words of what is shown."""
    opts = "".join(f'<option value="{km_label(L)}"{" selected" if float(L) == p.default_l else ""}>'
                   f"L = {km_label(L)} km</option>" for L in p.distances)
    bands = "".join(
        f'<label><input type="radio" name="sd-band" value="{k}"{" checked" if k == "core" else ""}> {v[0]}</label>'
        for k, v in SPILL_BANDS.items())
    legends = "".join(_spill_legend_html(p, band, L) for band in SPILL_BANDS for L in p.distances)
    return (
        '<details open><summary>電波の漏れ（実証で 1.6–3.3 km）</summary>'
        f'<div class="sd-spill-choice">{bands}<label><input type="radio" name="sd-band" value="none"> 表示しない</label>'
        f'</div><div>漏れ距離 <select class="sd-l" aria-label="漏れ距離 L">{opts}</select></div>'
        f"{legends}"
        '<p class="sd-key">L＝配信が境界を越えて届く距離の仮定（一律 L km とした目安で、受信確率の'
        f'モデル値ではありません）。<span class="sd-below">赤枠</span>＝非到達率が目安 {p.target_share:.0%} 未満。</p></details>')


_SPILL_JS = """
(function () {
    var groups = {groups};
    var box = document.querySelector('.sd-spill');
    var sel = box.querySelector('select.sd-l');
    function show() {
        var band = box.querySelector('input[name=sd-band]:checked').value, l = sel.value;
        Object.keys(groups).forEach(function (b) {
            Object.keys(groups[b]).forEach(function (k) {
                var g = window[groups[b][k]], on = (b === band && k === l);
                if (on && !{map}.hasLayer(g)) { {map}.addLayer(g); }
                if (!on && {map}.hasLayer(g)) { {map}.removeLayer(g); }
            });
        });
        box.querySelectorAll('.sd-band').forEach(function (u) {
            u.style.display = (u.dataset.band === band && u.dataset.l === l) ? '' : 'none';
        });
        {map}.fire('sd-spill');
    }
    // a small window (1024 × 700): the spill panel carries the shares, so fold the big table
    if (window.innerHeight < 820 || window.innerWidth < 1100) {
        document.querySelectorAll('.sd-legend details').forEach(function (d) { d.open = false; });
    }
    sel.addEventListener('change', show);
    box.querySelectorAll('input[name=sd-band]').forEach(function (r) { r.addEventListener('change', show); });
    show();
})();
"""

#: a visible note when basemap tiles fail (no internet); the map stays legible without them
_TILE_ERROR_JS = """
(function () {
    var shown = false;
    function note() {
        if (shown) { return; }
        shown = true;
        var d = document.createElement('div'), head = document.querySelector('.sd-head');
        d.className = 'sd-tile-error';
        d.setAttribute('role', 'status');
        d.textContent = {text};
        head.insertBefore(d, head.firstChild);
    }
    function watch(l) { if (l instanceof L.TileLayer) { l.on('tileerror', note); } }
    {map}.eachLayer(watch);
    {map}.on('layeradd', function (e) { watch(e.layer); });
})();
"""


def _exposure_props(p: _Page, ex) -> pd.DataFrame:
    """Tooltip text of the exposure pieces: the spill report's figures of each row."""
    src, dst = ex["source"].astype(int).to_numpy(), ex["target"].astype(int).to_numpy()
    return _props({
        "from": src.astype(str).astype(object) + " " + p.name_json(src),
        "to": dst.astype(str).astype(object) + " " + p.name_json(dst),
        "area": [f"{a:,.2f} km²" for a in ex["area_km2"]],
        "pop": [f"{_fmt_int(v)} 人" for v in ex["population"]],
        "src": src.astype(str),
    }, ready=["from", "to"])


def _add_overlays(p: _Page, coverage, sites, points, progress) -> None:
    """Carriers' footprints, sites and office/measurement points (kept above the areas)."""
    if coverage is not None and len(coverage):
        progress("map: carrier footprints", 0, 0)
        _add_coverage(p, coverage)
    layers = []
    if sites is not None and len(sites):
        layers += _add_points(p, sites, group_col=_pick(sites, "carrier", "operator"),
                              base_name="基地局", colour="#444", radius=4, show=False)
    if points is not None and len(points):
        layers += _add_points(p, points, group_col=None, base_name="支所・計測地点",
                              colour="#d7191c", radius=7)
    if layers:
        # a layer switched on later is drawn on top: keep the points above the areas
        p.js(_POINTS_ON_TOP_JS.replace("{layers}", ", ".join(layers)))


def _add_labels(p: _Page, sub_geom) -> None:
    """Sub-area names as labels at the centre of each one's largest inscribed circle."""
    centres = to_display(label_points(sub_geom), p.plan.crs)
    g = p.group("エリア名ラベル")
    for s, c in zip(p.plan.dissolved["subarea"].astype(int), centres):
        if c is None:
            continue
        label = (f'<div class="sd-label"><span class="sd-num" style="background:{p.colours[s]};'
                 f'color:#111">{s}</span>{p.esc_a(p.names[s])}</div>')
        p.js(f"L.marker({_js([float(shapely.get_y(c)), float(shapely.get_x(c))])}, "
             f'{{"interactive": false, "keyboard": false, "icon": L.divIcon({{"html": "{js_string(label)}", '
             f'"iconSize": [0, 0], "iconAnchor": [0, 0], "className": "sd-label-icon"}})}}).addTo({g});')
    p.close(g)


def _add_controls(p: _Page, blk_layer: str, bounds, title, note) -> None:
    """Layer control, full screen, measure, search, scale, heading, legend, explanation."""
    p.layer_control()
    p.include("Control.Fullscreen.js", FULLSCREEN_JS)
    p.include("Control.FullScreen.css", FULLSCREEN_CSS, css=True)
    p.js(_FULLSCREEN_JS)
    p.include("leaflet_measure_js", MEASURE_JS)
    p.include("leaflet_measure_css", MEASURE_CSS, css=True)
    p.js(_MEASURE_CONTROL_JS)
    p.include("Leaflet.Search.js", SEARCH_JS)
    p.include("Leaflet.Search.css", SEARCH_CSS, css=True)
    search = f"{blk_layer}searchControl"
    p.js(_SEARCH_CONTROL_JS.replace("{search}", search).replace("{layer}", blk_layer))
    p.js("L.control.scale({imperial: false, metric: true, maxWidth: 200, position: 'bottomleft'}).addTo({map});")
    heading = p.esc_a(title or "細分化エリア 審議用地図")
    note_html = f'<div class="sd-note">{p.esc_a(note)}</div>' if note else ""
    p.html_control(f'<div class="sd-title">{heading}</div>{note_html}', "bottomleft", "sd-box sd-head")
    p.html_control(_spill_control_html(p), "topright", "sd-box sd-spill")
    p.html_control(_legend_html(p.view, p.plan.metrics, p.colours, p.distances, p.esc_a, p.target_share),
                   "bottomright", "sd-box sd-legend")
    p.html_control(_info_html(p.distances, note, p.esc_a), "bottomleft", "sd-box sd-info")
    p.js(_SPILL_JS.replace("{groups}", json.dumps(p.spill_groups, sort_keys=True)))
    p.js(_TILE_ERROR_JS.replace("{text}", json.dumps(TILE_ERROR_TEXT, ensure_ascii=True)))
    p.js(_SEARCH_JS.replace("{search}", search).replace("{layer}", blk_layer))
    # keep the area clear of the layer control (right) and the legend (bottom)
    # (the spill panel is about 320 px wide; the search is a button until opened)
    p.js(f'{{map}}.fitBounds({_js(bounds)}, {{"paddingTopLeft": [60, 20], "paddingBottomRight": [330, 60]}});')


# ---------------------------------------------------------------------- the map
def render_map(plan, *, spill=None, distances_km=DEFAULT_DISTANCES_KM, coverage=None, sites=None,
               points=None, basemap: str = "pale", offline: bool = True, title: str | None = None,
               note: str | None = None, tolerance_m: float = DEFAULT_TOLERANCE_M, basemap_on: bool = True,
               geometry: MapGeometry | None = None, progress: Progress = silent) -> str:
    """The map page as HTML text (see :func:`build_map`). The spill figures and shapes
    are ``spill``'s (a SpillReport), or those of one report computed here when None; the
    display geometry is ``geometry``'s (:func:`map_geometry` of this plan) when it was made
    at ``tolerance_m``, else made here."""
    if basemap not in BASEMAP_CHOICES:
        raise UserError(f"unknown basemap {basemap!r}", fix=f"choose one of {', '.join(BASEMAP_CHOICES)}")
    distances = display_distances(distances_km)
    progress("map: spill figures", 0, 0)
    if spill is None:   # the shares and the exposure: the advice columns are not drawn
        from subdivide.analysis.spill import spill_report

        spill = spill_report(plan, distances_km=distances, advice=False)
    view = view_of_report(spill, plan)
    shapes = spill_shapes(plan, spill, distances)
    progress("map: display geometry", 0, 0)
    if geometry is None or geometry.tolerance_m != float(tolerance_m):
        geometry = map_geometry(plan, tolerance_m)
    sub_geom, sub_geom_4326, bgeom_4326 = geometry.subareas, geometry.subareas_4326, geometry.blocks_4326
    bounds = [list(b) for b in geometry.bounds]
    title = title or default_title(plan)
    p = _new_page(plan, view, distances, bounds, title, tolerance_m)
    _add_basemaps(p, basemap, basemap_on)
    _add_subareas(p, sub_geom_4326)
    blk_layer = _add_townblocks(p, bgeom_4326, progress)
    _add_spill_layers(p, shapes, progress)
    _add_overlays(p, coverage, sites, points, progress)
    _add_labels(p, sub_geom)
    _add_controls(p, blk_layer, bounds, title, note)
    return inline_assets(p.slots.fill(p.render()), offline=offline)


def default_title(plan) -> str:
    """「鳥取市 細分化エリア 審議用地図」: the municipality's name as the town-block file gives
    it (user data: it reaches the page through a text slot), else without it."""
    name = plan.muni_name
    return f"{name} 細分化エリア 審議用地図" if name else "細分化エリア 審議用地図"


_POINTS_ON_TOP_JS = """
{map}.on('overlayadd sd-spill', function () {
    [{layers}].forEach(function (g) { if ({map}.hasLayer(g)) { g.bringToFront(); } });
});
"""

#: the plugin controls (options in Japanese)
_FULLSCREEN_JS = ('L.control.fullscreen({"position": "topleft", "title": "全画面表示", '
                  '"titleCancel": "全画面表示を終了", "forceSeparateButton": true}).addTo({map});')
_MEASURE_CONTROL_JS = """
var measure_control = new L.Control.Measure({"position": "topleft", "primaryLengthUnit": "kilometers",
    "secondaryLengthUnit": "meters", "primaryAreaUnit": "sqkilometers", "secondaryAreaUnit": "hectares",
    "localization": "ja", "units": {"sqkilometers": {"factor": 1e-06, "display": "km²", "decimals": 2}}});
{map}.addControl(measure_control);
// Workaround for using this plugin with Leaflet>=1.8.0
// https://github.com/ljagis/leaflet-measure/issues/171
L.Control.Measure.include({
    _setCaptureMarkerIcon: function () {
        // disable autopan
        this._captureMarker.options.autoPanOnFocus = false;
        // default function
        this._captureMarker.setIcon(L.divIcon({iconSize: this._map.getSize().multiplyBy(2)}));
    },
});
"""
#: the town-block search (leaflet-search): zoom to the block found, no marker
_SEARCH_CONTROL_JS = """
var {search} = new L.Control.Search({
    layer: {layer}, propertyName: 'search', collapsed: true, textPlaceholder: '町丁・字名で検索',
    position: 'topleft', marker: false,
    moveToLocation: function (latlng, title, map) { map.flyTo(latlng, map.getBoundsZoom(latlng.layer.getBounds())); }
});
{map}.addControl({search});
"""

#: the search list shows names as text (not HTML); after a hit, outline the block and
#: show its tooltip
_SEARCH_JS = """
{search}.options.textErr = '見つかりません';
if ({search}._cancel) { {search}._cancel.title = '消去'; }
if ({search}._button) { {search}._button.title = '検索'; }
{search}.options.buildTip = function (text) {
    var a = document.createElement('a');
    a.textContent = text;
    return a;
};
{search}.on('search:locationfound', function (e) {
    {layer}.resetStyle();
    e.layer.setStyle({color: '#000', weight: 4, fillColor: '#ffff66', fillOpacity: 0.45});
    // the tooltip is bound to the whole GeoJSON group: point it at the found block
    if ({layer}._tooltip) {
        {layer}._tooltip._source = e.layer;
        {layer}.openTooltip(e.layer.getCenter());
    }
});
"""


def carrier_footprints(plan, coverage: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Footprint polygons to draw, in the plan's CRS: columns carrier (str or None),
    subarea (int or NaN), area_km2, geometry.

    Coverage with a ``subarea`` column is drawn as given (one row per polygon). Cell
    coverage (``carrier``, ``cell_id``, as :func:`subdivide.analysis.coverage.read_coverage`
    returns it) becomes one footprint per carrier and sub-area: the union of the cells
    :func:`subdivide.analysis.coverage.select_cells` selects for it (rule ``any``)."""
    if coverage.crs is None:
        raise UserError("the coverage footprints have no CRS", fix="write them with a CRS (GeoPackage)")
    cov = coverage.to_crs(plan.crs).reset_index(drop=True)
    carrier_col = _pick(cov, "carrier", "operator")
    if "subarea" not in cov.columns and carrier_col == "carrier" and "cell_id" in cov.columns:
        from subdivide.analysis.coverage import select_cells

        sel = select_cells(plan, cov)
        geom_of = dict(zip(zip(cov["carrier"].astype(str), cov["cell_id"].astype(str)), cov.geometry.values))
        rows = []
        for (car, sub), grp in sel.groupby(["carrier", "subarea"], sort=True):
            cells = [geom_of[(str(car), str(c))] for c in grp["cell_id"]]
            rows.append((str(car), int(sub), shapely.union_all(np.asarray(cells, dtype=object))))
        out = gpd.GeoDataFrame({"carrier": [r[0] for r in rows], "subarea": [r[1] for r in rows]},
                               geometry=[r[2] for r in rows], crs=plan.crs)
    else:
        out = gpd.GeoDataFrame({
            "carrier": cov[carrier_col].astype(str) if carrier_col else None,
            "subarea": pd.to_numeric(cov["subarea"], errors="coerce") if "subarea" in cov.columns else np.nan,
        }, geometry=cov.geometry.values, crs=plan.crs)
    out["area_km2"] = shapely.area(out.geometry.values) / 1e6
    return out


def _add_coverage(p: _Page, coverage: gpd.GeoDataFrame) -> None:
    """Carrier footprints: one layer per carrier, coloured by sub-area (layer names through
    slots, :meth:`TextSlots.html`; data through :func:`html_json_values`)."""
    fp = carrier_footprints(p.plan, coverage)
    has_carrier = fp["carrier"].notna().any()
    groups = sorted(fp["carrier"].astype(str).unique()) if has_carrier else [None]
    for grp in groups:
        part = fp if grp is None else fp[fp["carrier"].astype(str) == grp]
        subs = part["subarea"].to_numpy()
        known = np.array([pd.notna(s) for s in subs], dtype=bool)
        sub_int = np.where(known, np.nan_to_num(subs.astype(float)), 0).astype(int)
        names = html_json_values([p.names.get(int(s), "") for s in sub_int])
        props = _props({
            "carrier": np.full(len(part), html_json_values([grp])[0] if grp is not None else "–", dtype=object),
            "sub": np.where(known, sub_int.astype(str).astype(object) + " " + names, "–"),
            "area": [f"{a:,.1f} km²" for a in part["area_km2"]],
            "c": [p.colours.get(int(s), "#666") if k else "#666" for s, k in zip(sub_int, known)],
        }, ready=["carrier", "sub"])
        name = "キャリア推定エリア" + (f"（{p.esc(grp)}）" if grp is not None else "")
        g = p.group(name, show=False)
        _add_geojson(p, g, to_display(part.geometry.values, p.plan.crs, tolerance_m=max(p.tolerance_m, 10.0)),
                     props, styles=(props["c"].to_numpy(), {c: _style(c, weight=2, fill_opacity=0.08, dash="8 4")
                                                           for c in sorted(set(props["c"]))}),
                     tooltip_fields=["carrier", "sub", "area"], aliases=["キャリア", "細分化エリア", "配信範囲の面積"])
        p.close(g)


def _as_points(pts, what: str) -> gpd.GeoDataFrame:
    """A GeoDataFrame of points; a plain DataFrame needs lat/lon (JGD2011 degrees), as
    :func:`subdivide.analysis.sites.read_sites` returns."""
    if not isinstance(pts, gpd.GeoDataFrame):
        cols = {c.lower(): c for c in pts.columns}
        lat, lon = cols.get("lat") or cols.get("latitude"), cols.get("lon") or cols.get("longitude")
        if not lat or not lon:
            raise UserError(f"the {what} points have no geometry and no lat/lon columns",
                            fix="pass a GeoDataFrame, or a table with lat and lon in degrees")
        return gpd.GeoDataFrame(pts, geometry=gpd.points_from_xy(pts[lon], pts[lat]), crs="EPSG:6668")
    if pts.crs is None:
        raise UserError(f"the {what} points have no CRS", fix="write them with a CRS (GeoJSON is WGS84)")
    return pts


def _add_points(page: _Page, pts: gpd.GeoDataFrame, *, group_col, base_name, colour, radius, show=True):
    """Point layers (offices, measurement points, sites) as circle markers (no icon
    images, so nothing is fetched); returns the GeoJson layers. User text: layer names
    through slots (:meth:`TextSlots.html`), names in the data through
    :func:`html_json_values`."""
    pts = _as_points(pts, base_name)
    p = pts.reset_index(drop=True).to_crs(4326)
    p = p[p.geometry.notna() & ~p.geometry.is_empty].reset_index(drop=True)
    if "site_id" in p.columns:  # a site list has one row per sector: one point per site
        p = p.drop_duplicates(subset=[c for c in ("carrier", "site_id") if c in p.columns]).reset_index(drop=True)
    pt = shapely.get_point(p.geometry.values, 0) if (p.geometry.geom_type == "MultiPoint").any() else p.geometry.values
    pt = round_coords(pt)
    name_col = _pick(p, "point", "name", "名称", "office_name", "site_name", "site_id", "id")
    names = html_json_values(p[name_col]) if name_col else \
        np.array([f"{base_name} {i + 1}" for i in range(len(p))], dtype=object)
    groups = sorted(p[group_col].astype(str).unique()) if group_col else [None]
    layers = []
    for grp in groups:
        idx = np.arange(len(p)) if grp is None else np.flatnonzero(p[group_col].astype(str).to_numpy() == grp)
        props = _props({"name": names[idx]}, ready=["name"])
        lname = base_name + (f"（{page.esc(grp)}）" if grp is not None else "")
        g = page.group(lname, show=show)
        layers.append(_add_geojson(
            page, g, pt[idx], props,
            styles={"color": "#111", "weight": 1.5, "fill": True, "fillColor": colour, "fillOpacity": 0.9,
                    "radius": radius},
            tooltip_fields=["name"], aliases=[base_name], radius=radius))
        page.close(g)
    return layers


def build_map(plan, path, *, spill=None, distances_km=DEFAULT_DISTANCES_KM, coverage=None, sites=None,
              points=None, basemap: str = "pale", offline: bool = True, force: bool = False,
              title: str | None = None, note: str | None = None, tolerance_m: float = DEFAULT_TOLERANCE_M,
              inputs=(), basemap_on: bool = True, geometry: MapGeometry | None = None,
              progress: Progress = silent) -> Path:
    """Write the council-review map of ``plan`` to ``path`` (one HTML file, UTF-8).

    Parameters
    ----------
    spill: a ``SpillReport`` (``subdivide.analysis.spill.spill_report``); computed when None.
    distances_km: spill distances L (km) for the core, reach and exposure layers.
    coverage: carrier footprint polygons (GeoDataFrame; optional columns ``carrier``,
        ``subarea``); a layer per carrier.
    sites: base-station points (GeoDataFrame, or a site list with lat/lon as
        ``subdivide.analysis.sites.read_sites`` returns; optional ``carrier``, ``site_id``); one
        marker per site.
    points: office or measurement points (GeoDataFrame with ``name`` or ``office_name``).
    basemap: ``pale`` / ``std`` / ``photo`` (地理院タイル shown first; the others and
        「背景地図なし」 are in the layer control) or ``none`` (no tiles at all).
    offline: inline every script, stylesheet and image (the default: the page opens with no
        internet, tiles aside); False links Leaflet and its plugins from the CDN (a smaller file).
    title / note: page heading; a caution shown in the explanation box (e.g. that the
        geometry is approximate).
    tolerance_m: display simplification (m) of the town-block coverage.
    basemap_on: False offers the tiles in the layer control but opens with 「背景地図なし」
        (no request until a user picks a basemap; the package's offline map).
    geometry: the plan's :func:`map_geometry`, when the caller draws several maps of it.

    Refuses to overwrite ``path`` unless ``force``, and always when ``path`` is one of
    ``inputs`` (e.g. the plan file); writes atomically.
    """
    out = check_can_write(path, force, inputs=inputs)
    page = render_map(plan, spill=spill, distances_km=distances_km, coverage=coverage, sites=sites,
                      points=points, basemap=basemap, offline=offline, title=title, note=note,
                      tolerance_m=tolerance_m, basemap_on=basemap_on, geometry=geometry, progress=progress)
    with atomic_path(out, force=force, inputs=inputs) as tmp:
        tmp.write_bytes(page.encode("utf-8"))
    return out


def package_map_writer(plan, path, *, spill=None, offline: bool = True, geometry: MapGeometry | None = None) -> None:
    """The review map as the carrier package embeds it (``build_package(review_map=...)``).

    Offline (the default) it inlines every library and opens with 「背景地図なし」: it makes
    no network request at all (carrier and LGWAN networks often have no internet); the
    地理院タイル stay in the layer control, and if they cannot load the map says so."""
    build_map(plan, path, offline=offline, spill=spill, force=False, basemap_on=not offline, geometry=geometry)
