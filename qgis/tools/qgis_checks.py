#!/usr/bin/python3
"""Headless QGIS checks of the subdivide plugin, run by tests/test_qgis.py with QGIS's
Python (Debian: /usr/bin/python3 with python3-qgis), QT_QPA_PLATFORM=offscreen.

    /usr/bin/python3 qgis/tools/qgis_checks.py hanamaki --subdivide "$(which subdivide)" \
        --out OUT_DIR --sample data/hanamaki_03205/h27ka03205.shp
    /usr/bin/python3 qgis/tools/qgis_checks.py tottori --subdivide … --out OUT_DIR \
        --tottori ../shared/data/tottori_31_estat2015/h27ka31.shp

It registers the provider in a headless QgsApplication, sets the executable in the
provider's setting, runs the algorithms with processing.run, loads their layers the way
the Processing dialog does (post-processors included), renders the package, and writes
the facts to OUT/result.json. The assertions are in the tests.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))                      # qgis/ → import subdivide_qgis
sys.path.insert(0, "/usr/share/qgis/python/plugins")      # Debian's Processing plugin

from qgis.core import (
    QgsApplication,
    QgsFeatureRequest,
    QgsMapRendererParallelJob,
    QgsMapSettings,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProject,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QSize
from qgis.PyQt.QtGui import QColor

OLD_TOWNS = ("国府町", "福部町", "河原町", "用瀬町", "佐治町", "気高町", "鹿野町", "青谷町")


class Feedback(QgsProcessingFeedback):
    """Records what the dialog would show; cancels on the first progress text starting with
    ``cancel_on``."""

    def __init__(self, cancel_on: str | None = None):
        super().__init__()
        self.texts, self.errors, self.console, self.max_progress = [], [], [], 0.0
        self.cancel_on = cancel_on
        self.started = None
        self.progressChanged.connect(self._progress)

    def _progress(self, value):
        self.max_progress = max(self.max_progress, value)

    def setProgressText(self, text):
        self.texts.append(text)
        self.started = self.started or time.monotonic()
        # cancel once the search runs: its stage, or 8 s after the first progress if renamed
        if self.cancel_on and (text.startswith(self.cancel_on) or time.monotonic() - self.started > 8):
            self.cancel()

    def reportError(self, text, fatalError=False):
        self.errors.append(text)

    def pushConsoleInfo(self, text):
        self.console.append(text)


def start(subdivide: str):
    app = QgsApplication([], False)
    app.initQgis()
    from processing.core.Processing import Processing
    from processing.core.ProcessingConfig import ProcessingConfig

    Processing.initialize()
    import subdivide_qgis

    plugin = subdivide_qgis.classFactory(None)
    plugin.initProcessing()
    ProcessingConfig.setSettingValue("SUBDIVIDE_EXECUTABLE", subdivide)   # the provider setting
    os.environ.pop("SUBDIVIDE_EXECUTABLE", None)
    return app, plugin


def run(alg: str, params: dict, *, cancel_on: str | None = None) -> dict:
    """processing.run, then load the layers as the dialog does; returns results and layers."""
    import processing

    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    fb = Feedback(cancel_on)
    started = time.monotonic()
    out = {"alg": alg}
    try:
        out["results"] = processing.run(alg, params, feedback=fb, context=context)
    except QgsProcessingException as exc:
        out["error"] = str(exc)
        out["results"] = None
    out.update(seconds=time.monotonic() - started, progress_max=fb.max_progress, progress_texts=fb.texts[:50],
               log_errors=fb.errors, cancel_seen=fb.isCanceled())
    for uri, details in context.layersToLoadOnCompletion().items():
        layer = QgsVectorLayer(uri, details.name, "ogr")
        QgsProject.instance().addMapLayer(layer)
        if details.postProcessor():
            details.postProcessor().postProcessLayer(layer, context, fb)
        out[details.outputName.lower()] = describe(layer)
        out[details.outputName.lower()]["layer_id"] = layer.id()
    return out


def describe(layer: QgsVectorLayer) -> dict:
    d = {"valid": layer.isValid(), "features": layer.featureCount(), "source": layer.source()}
    r = layer.renderer()
    d["renderer"] = r.type() if r else None
    if r and r.type() == "categorizedSymbol":
        d["class_attribute"] = r.classAttribute()
        d["category_labels"] = [c.label() for c in r.categories()]
        d["category_values"] = [c.value() for c in r.categories()]
        d["category_colours"] = [c.symbol().color().name() for c in r.categories()]
    d["labels_enabled"] = layer.labelsEnabled()
    if layer.labelsEnabled() and layer.labeling():
        d["label_field"] = layer.labeling().settings().fieldName
        d["label_font"] = layer.labeling().settings().format().font().family()
    from subdivide_qgis.colours import fields_of

    names = [f.name() for f in layer.fields()]
    fields = fields_of(names)
    if fields and not fields.blocks and fields.order in names:     # a sub-area layer
        feats = sorted(layer.getFeatures(QgsFeatureRequest().setFlags(QgsFeatureRequest.NoGeometry)),
                       key=lambda f: f[fields.order])
        d["names"] = [f[fields.name] for f in feats]
        if "population" in names:
            d["population"] = sum(int(f["population"]) for f in feats)
    return d


def render(layer_id: str, png: Path) -> dict:
    """Render one styled layer to a PNG; count the pixels of each category's colour (as
    blended over white with the fill's alpha)."""
    layer = QgsProject.instance().mapLayer(layer_id)
    ms = QgsMapSettings()
    ms.setLayers([layer])
    ms.setDestinationCrs(layer.crs())
    ms.setExtent(layer.extent())
    ms.setOutputSize(QSize(600, 600))
    ms.setBackgroundColor(QColor(255, 255, 255))
    job = QgsMapRendererParallelJob(ms)
    job.start()
    job.waitForFinished()
    img = job.renderedImage()
    img.save(str(png), "PNG")
    cats = layer.renderer().categories()
    expected = {}
    for c in cats:
        col = c.symbol().color()
        a = col.alpha() / 255.0
        blend = tuple(round(v * a + 255 * (1 - a)) for v in (col.red(), col.green(), col.blue()))
        expected[col.name()] = blend
    counts = {k: 0 for k in expected}
    non_bg = 0
    w, h = img.width(), img.height()
    for y in range(0, h, 2):
        for x in range(0, w, 2):
            px = QColor(img.pixel(x, y))
            rgb = (px.red(), px.green(), px.blue())
            if rgb != (255, 255, 255):
                non_bg += 1
            for k, e in expected.items():
                if all(abs(p - q) <= 4 for p, q in zip(rgb, e)):
                    counts[k] += 1
    return {"png": str(png), "colour_pixels": counts, "expected_colours": list(expected),
            "non_background_share": non_bg / ((w // 2) * (h // 2))}


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def hanamaki(args, out: Path, plugin) -> dict:
    sample = Path(args.sample)
    res = {"algorithms": sorted(a.id() for a in plugin.provider.algorithms())}
    res["info"] = run("subdivide:info", {"INPUT": str(sample), "REPORT": str(out / "info.html")})["results"]

    src = QgsVectorLayer(str(sample), "sample", "ogr")
    src.setProviderEncoding("CP932")
    mem = src.materialize(QgsFeatureRequest())                  # a memory layer: exported to a GeoPackage
    QgsProject.instance().addMapLayer(mem)
    res["info_memory"] = run("subdivide:info", {"INPUT": mem.id(), "REPORT": str(out / "info_mem.html")})["results"]

    res["plan"] = run("subdivide:planbyattribute", {"INPUT": str(sample), "FIELD": "OLD_MUNI",
                                                   "OUTPUT": str(out / "plan.gpkg"), "REPORT": str(out / "plan.html")})
    plan = str(out / "plan.gpkg")
    res["package"] = run("subdivide:package", {"PLAN": plan, "MAP": False, "OUTPUT": str(out / "package.zip"),
                                               "REPORT": str(out / "package.html")})
    import processing

    shrunk = processing.run("native:buffer", {"INPUT": str(sample.parent / "outline.geojson"), "DISTANCE": -0.03,
                                              "OUTPUT": "memory:"})["OUTPUT"]     # ~3 km inside: errors
    QgsProject.instance().addMapLayer(shrunk)
    res["validate_errors"] = run("subdivide:validate", {"PACKAGE": str(out / "package.zip"), "OUTLINE": shrunk.id(),
                                                        "OUTPUT_JSON": str(out / "validation_errors.json")})
    offices = QgsVectorLayer(str(sample.parent / "offices.geojson"), "offices", "ogr").materialize(QgsFeatureRequest())
    QgsProject.instance().addMapLayer(offices)                  # a memory point layer: exported
    res["map"] = run("subdivide:map", {"PLAN": plan, "BASEMAP": 3, "OUTPUT": str(out / "map.html"),
                                       "POINTS": offices.id(), "POINT_NAME": "office_name",
                                       "TITLE": "花巻市 細分化案"})
    res["map"]["size"] = (out / "map.html").stat().st_size if (out / "map.html").exists() else 0
    res["render"] = render(res["package"]["subareas"]["layer_id"], out / "package_subareas.png")
    res["planauto"] = run("subdivide:planauto", {"INPUT": str(sample), "K_MIN": 3, "K_MAX": 3,
                                                 "OUTPUT": str(out / "auto" / "auto.gpkg")})
    refused_dir = out / "refused"
    res["refused"] = run("subdivide:planbyattribute", {"INPUT": str(sample), "FIELD": "OLD_MUNI", "MUNI": "99999",
                                                      "OUTPUT": str(refused_dir / "plan.gpkg"),
                                                      "REPORT": str(refused_dir / "report.html")})
    res["refused"]["left"] = files_in(refused_dir)
    cancel_dir = out / "cancel"
    res["cancel"] = run("subdivide:planauto", {"INPUT": str(sample), "K_MIN": 2, "K_MAX": 14,
                                               "OUTPUT": str(cancel_dir / "auto.gpkg"),
                                               "CANDIDATES": str(cancel_dir / "candidates.csv"),
                                               "REPORT": str(cancel_dir / "report.html")}, cancel_on="partitions")
    res["cancel"]["left"] = files_in(cancel_dir)
    return res


def tottori(args, out: Path, plugin) -> dict:
    shp = Path(args.tottori)
    res = {"info": run("subdivide:info", {"INPUT": str(shp), "MUNI": "31201"})["results"]}
    layer = QgsVectorLayer(str(shp), "鳥取県", "ogr")
    layer.setProviderEncoding("CP932")
    layer.setSubsetString("\"CITY\" = '201'")                   # a filtered layer: exported
    QgsProject.instance().addMapLayer(layer)
    cases = " ".join(f"WHEN \"MOJI\" LIKE '{t}%' THEN '{t[:-1]}地域'" for t in OLD_TOWNS)
    import processing

    derived = processing.run("native:fieldcalculator", {
        "INPUT": layer, "FIELD_NAME": "OLD_AREA", "FIELD_TYPE": 2, "FIELD_LENGTH": 20,
        "FORMULA": f"CASE {cases} ELSE '鳥取地域' END", "OUTPUT": "memory:"})["OUTPUT"]
    QgsProject.instance().addMapLayer(derived)
    res["expected_names"] = sorted({f["OLD_AREA"] for f in derived.getFeatures()})
    res["plan"] = run("subdivide:planbyattribute", {"INPUT": derived.id(), "FIELD": "OLD_AREA", "MUNI": "31201",
                                                   "OUTPUT": str(out / "tottori.plan.gpkg"),
                                                   "OUTPUT_CSV": str(out / "tottori_blocks.csv")})
    if res["plan"].get("subareas"):
        res["plan"]["population"] = res["plan"]["subareas"].get("population")
    res["spill"] = run("subdivide:spill", {"PLAN": str(out / "tottori.plan.gpkg"), "OUTPUT": str(out / "spill")})
    return res


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("scenario", choices=("hanamaki", "tottori"))
    p.add_argument("--subdivide", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--sample")
    p.add_argument("--tottori")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    _app, plugin = start(args.subdivide)        # the application must stay referenced
    res = (hanamaki if args.scenario == "hanamaki" else tottori)(args, out, plugin)
    (out / "result.json").write_text(json.dumps(res, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    plugin.unload()
    sys.stdout.flush()
    sys.stderr.flush()
    # PyQGIS 3.22 may crash while tearing down Python-owned Qt objects at exit; the results
    # are written, so leave without the teardown
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
