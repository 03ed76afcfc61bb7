"""The screening choropleth: an offline HTML map and a PNG of the ranked municipalities.

Draws :func:`subdivide.analysis.screening.rank_table` results; computes nothing itself.
The page inlines the vendored Leaflet (no network needed); names and figures travel as
JSON data and are put on the page with ``textContent``, so a name is never markup.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

ASSET_DIR = Path(__file__).resolve().parents[1] / "assets" / "web"
#: colour classes (light → dark) for residents spared per event
PALETTE = ("#f7fbff", "#c6dbef", "#6baed6", "#2171b5", "#08306b")
FAILED_COLOUR = "#bdbdbd"


def _classes(values: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """Quantile classes of the positive values (class -1 for missing/failed)."""
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(v)
    if not ok.any():
        return np.full(len(v), -1), []
    edges = list(np.unique(np.quantile(v[ok], np.linspace(0, 1, len(PALETTE) + 1))))
    cls = np.full(len(v), -1)
    cls[ok] = np.clip(np.searchsorted(edges, v[ok], side="right") - 1, 0, len(PALETTE) - 1)
    return cls, edges


def _features(outlines) -> dict:
    """GeoJSON (lon/lat, 5 decimals) with the figures as plain data."""
    ll = outlines.to_crs(4326)
    geoms = shapely.set_precision(ll.geometry.values, 1e-5)
    cls, _ = _classes(ll["spared_per_event_mean"].to_numpy(dtype=float))
    feats = []
    for i, row in enumerate(ll.drop(columns="geometry").itertuples(index=False)):
        r = row._asdict()
        props = {
            "rank": None if pd.isna(r["rank"]) else int(r["rank"]),
            "code": str(r["muni_code"]), "name": str(r["name"]), "status": str(r["status"]),
            "reason": str(r["reason"] or ""), "k": None if pd.isna(r["recommended_k"]) else int(r["recommended_k"]),
            "spared": None if not np.isfinite(r["spared_per_event_mean"]) else round(float(r["spared_per_event_mean"])),
            "share": None if not np.isfinite(r["spared_share_mean"]) else round(float(r["spared_share_mean"]), 3),
            "population": int(r["population"]),
            "colour": PALETTE[cls[i]] if cls[i] >= 0 else FAILED_COLOUR,
        }
        feats.append({"type": "Feature", "properties": props, "geometry": shapely.geometry.mapping(geoms[i])})
    return {"type": "FeatureCollection", "features": feats}


def _json_for_script(data) -> str:
    """JSON safe inside <script type="application/json">: no '</' or '<!--' can end it."""
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":")) \
        .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


_PAGE = """<!DOCTYPE html>
<html lang="ja"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>細分化の効果スクリーニング / screening</title>
<style>{leaflet_css}
html,body{{margin:0;height:100%;font-family:"IPAexGothic","IPAGothic","Noto Sans CJK JP",sans-serif}}
#map{{position:absolute;top:0;bottom:0;left:0;right:340px;background:#eef2f5}}
#side{{position:absolute;top:0;bottom:0;right:0;width:340px;overflow:auto;padding:8px 12px;box-sizing:border-box;
 border-left:1px solid #ccc;font-size:13px}}
table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #ddd;padding:2px 4px;text-align:right}}
td:nth-child(2),th:nth-child(2){{text-align:left}}.legend span{{display:inline-block;width:14px;height:10px;margin-right:4px}}
</style></head><body>
<div id="map"></div>
<div id="side"><h3>細分化の効果（1回の配信で受信しない住民数）</h3>
<p>Residents spared an alert that is not theirs, per event, with the recommended number of sub-areas
(mean over L = {band}). Darker = more benefit from one of the 25 places. No basemap is needed.</p>
<div class="legend" id="legend"></div>
<table><thead><tr><th>順位</th><th>市区町村</th><th>推奨k</th><th>人数/回</th></tr></thead><tbody id="rows"></tbody></table>
</div>
<script type="application/json" id="data">{data}</script>
<script>{leaflet_js}</script>
<script>
(function() {{
  var data = JSON.parse(document.getElementById('data').textContent);
  var map = L.map('map', {{zoomSnap: 0.25}});
  function label(p) {{
    var s = (p.rank ? p.rank + '. ' : '') + p.name + ' (' + p.code + ')';
    if (p.status !== 'ok') return s + ': ' + p.status + (p.reason ? ' — ' + p.reason : '');
    return s + ': k=' + p.k + ', ' + p.spared + ' 人/回 (' + Math.round(p.share * 100) + '%)';
  }}
  var layer = L.geoJSON(data, {{
    style: function(f) {{ return {{color: '#333', weight: 1, fillColor: f.properties.colour, fillOpacity: 0.85}}; }},
    onEachFeature: function(f, l) {{
      var el = document.createElement('div'); el.textContent = label(f.properties);
      l.bindTooltip(el, {{sticky: true}});
    }}
  }}).addTo(map);
  map.fitBounds(layer.getBounds());
  var rows = document.getElementById('rows');
  data.features.slice().sort(function(a, b) {{
    return (a.properties.rank || 1e9) - (b.properties.rank || 1e9);
  }}).forEach(function(f) {{
    var p = f.properties, tr = document.createElement('tr');
    [p.rank || '–', p.name, p.k || '–', p.spared === null ? p.status : p.spared].forEach(function(v) {{
      var td = document.createElement('td'); td.textContent = String(v); tr.appendChild(td);
    }});
    rows.appendChild(tr);
  }});
  var legend = document.getElementById('legend');
  {legend}.forEach(function(e) {{
    var d = document.createElement('div'), s = document.createElement('span');
    s.style.background = e[0]; d.appendChild(s); d.appendChild(document.createTextNode(e[1])); legend.appendChild(d);
  }});
}})();
</script></body></html>
"""


def screening_page(outlines, *, band_km=(1.6, 2.0, 2.5, 3.0, 3.3)) -> str:
    """The offline choropleth page (one string; Leaflet inlined)."""
    _, edges = _classes(outlines["spared_per_event_mean"].to_numpy(dtype=float))
    legend = [[PALETTE[i], f"{edges[i]:,.0f}–{edges[i + 1]:,.0f} 人/回"] for i in range(len(edges) - 1)]
    legend.append([FAILED_COLOUR, "計算できず / not screened"])
    return _PAGE.format(
        leaflet_css=(ASSET_DIR / "leaflet.css").read_text(encoding="utf-8"),
        leaflet_js=(ASSET_DIR / "leaflet.js").read_text(encoding="utf-8").replace("</script", "<\\/script"),
        data=_json_for_script(_features(outlines)),
        legend=_json_for_script(legend),
        band="–".join(f"{b:g}" for b in (band_km[0], band_km[-1])) + " km",
    )


def screening_png(outlines, path) -> None:
    """A choropleth figure for reports (deterministic PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from subdivide.present.report import cjk_font

    cls, edges = _classes(outlines["spared_per_event_mean"].to_numpy(dtype=float))
    colours = [PALETTE[c] if c >= 0 else FAILED_COLOUR for c in cls]
    font = cjk_font()
    with plt.rc_context({"font.family": font} if font else {}):
        fig, ax = plt.subplots(figsize=(7, 6), dpi=120)
        outlines.plot(ax=ax, color=colours, edgecolor="#333", linewidth=0.5)
        for geom, name, rank in zip(outlines.geometry.values, outlines["name"], outlines["rank"]):
            if not pd.isna(rank) and rank <= 5:
                pt = geom.representative_point()
                ax.annotate(f"{int(rank)}. {name}", (pt.x, pt.y), fontsize=7, ha="center")
        ax.set_axis_off()
        ax.set_title("細分化の効果: 1回の配信で受信しない住民数（推奨地域数）")
        fig.savefig(path, metadata={"Software": None}, bbox_inches="tight")
        plt.close(fig)
