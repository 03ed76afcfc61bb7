"""QGIS styles inside the package GeoPackage (``layer_styles``): a categorised style per
sub-area in the review map's colours, 「●●地域」 labels, fixed time (byte-identical builds),
on the 花巻 sample and on real 鳥取市 polygons; QGIS itself applies them (when installed)."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

from subdivide.carrier.package import build_package
from subdivide.carrier.validation import validate_package
from subdivide.core.palette import PALETTE

from conftest import IN_CI
from test_validate_batch import tottori_city_plan


def styles(gpkg: Path) -> dict:
    con = sqlite3.connect(gpkg)
    try:
        rows = con.execute("SELECT f_table_name, f_geometry_column, styleName, styleQML, useAsDefault, "
                           "update_time FROM layer_styles ORDER BY f_table_name").fetchall()
        geom = dict(con.execute("SELECT table_name, column_name FROM gpkg_geometry_columns").fetchall())
        kind = dict(con.execute("SELECT table_name, data_type FROM gpkg_contents").fetchall())
    finally:
        con.close()
    assert kind.get("layer_styles") == "attributes"        # registered, as QGIS registers it
    out = {}
    for table, gcol, name, qml, default, when in rows:
        assert gcol == geom[table] and default == 1 and when.startswith("2000-01-01")
        out[table] = ET.fromstring(qml)                     # well-formed QML
    return out


def check_styles(plan, gpkg: Path) -> None:
    m = plan.metrics.sort_values("display_order")
    want = [f"{n} {nm}" for n, nm in zip(m["subarea"], m["name"])]
    st = styles(gpkg)
    assert set(st) == {"subareas", "townblocks"}
    for table, root in st.items():
        rend = root.find("renderer-v2")
        assert rend.get("type") == "categorizedSymbol" and rend.get("attr") == "AREA_NO"
        cats = rend.findall("categories/category")
        assert [c.get("label") for c in cats] == want                         # names every sub-area
        assert [c.get("value") for c in cats] == [str(n) for n in m["subarea"]]
        colours = {s.get("name"): s.find("layer/Option/Option[@name='color']").get("value")
                   for s in rend.findall("symbols/symbol")}
        for i, c in enumerate(cats):
            rgb = ",".join(colours[c.get("symbol")].split(",")[:3])
            h = PALETTE[i].lstrip("#")
            assert rgb == ",".join(str(int(h[j:j + 2], 16)) for j in (0, 2, 4))
        label = root.find("labeling/settings/text-style")
        if table == "subareas":
            assert label is not None and label.get("fieldName") == "AREA_NAME"
        else:
            assert label is None


def test_sample_package_carries_qgis_styles_and_stays_identical(sample_plan, tmp_path):
    a, b = tmp_path / "a.zip", tmp_path / "b.zip"
    build_package(sample_plan, a, spill=False)
    build_package(sample_plan, b, spill=False)
    assert a.read_bytes() == b.read_bytes()
    with zipfile.ZipFile(a) as z:
        (tmp_path / "package.gpkg").write_bytes(z.read("package.gpkg"))
    check_styles(sample_plan, tmp_path / "package.gpkg")
    rep = validate_package(a)
    assert rep.status == 0, [str(f) for f in rep.errors]
    assert not any(f.rule.startswith("GPKG") for f in rep.findings)


def test_names_are_escaped_not_markup(sample_plan, tmp_path):
    from subdivide.make.planning import rename_subarea

    hostile = 'A&B<x y="1">地域'
    try:
        plan = rename_subarea(sample_plan, 2, hostile)
    except Exception as exc:   # the name rules may refuse it: then no such name reaches a package
        pytest.skip(f"name refused by the plan: {exc}")
    build_package(plan, tmp_path / "p", spill=False)
    check_styles(plan, tmp_path / "p" / "package.gpkg")
    qml = sqlite3.connect(tmp_path / "p" / "package.gpkg").execute(
        "SELECT styleQML FROM layer_styles WHERE f_table_name = 'subareas'").fetchone()[0]
    assert "&amp;B&lt;x" in qml and '<x y="1">' not in qml


@pytest.mark.slow
def test_real_tottori_package_styles(tmp_path):
    plan = tottori_city_plan()
    build_package(plan, tmp_path / "t", spill=False)
    check_styles(plan, tmp_path / "t" / "package.gpkg")
    assert validate_package(tmp_path / "t").status == 0


QGIS_CHECK = r"""
import json, sys
from qgis.core import QgsApplication, QgsVectorLayer, QgsRenderContext
app = QgsApplication([], False); app.initQgis()
out = {}
for name in ("subareas", "townblocks"):
    lyr = QgsVectorLayer(f"{sys.argv[1]}|layername={name}", name, "ogr")
    r = lyr.renderer()
    ctx = QgsRenderContext()
    r.startRender(ctx, lyr.fields())
    drawn = sum(r.symbolForFeature(f, ctx) is not None for f in lyr.getFeatures())
    r.stopRender(ctx)
    out[name] = {"renderer": r.type(), "labels": [c.label() for c in r.categories()],
                 "colours": [c.symbol().color().name() for c in r.categories()], "drawn": drawn,
                 "n": lyr.featureCount(), "labels_enabled": lyr.labelsEnabled(),
                 "label_field": lyr.labeling().settings().fieldName if lyr.labelsEnabled() else None}
print(json.dumps(out, ensure_ascii=False), flush=True)
import os; os._exit(0)   # (QGIS may crash while tearing down a headless application)
"""


@pytest.mark.slow
def test_qgis_opens_the_package_styled(sample_plan, tmp_path):
    py = "/usr/bin/python3"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path / "home")}
    if not (Path(py).exists() and subprocess.run([py, "-c", "import qgis.core"], env=env,
                                                 capture_output=True).returncode == 0):
        if IN_CI:
            pytest.fail("PyQGIS missing under CI (apt-get install $(cat .ci/qgis-packages.txt))")
        pytest.skip("PyQGIS not available (/usr/bin/python3 -c 'import qgis.core')")
    build_package(sample_plan, tmp_path / "p", spill=False)
    proc = subprocess.run([py, "-c", QGIS_CHECK, str(tmp_path / "p" / "package.gpkg")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    m = sample_plan.metrics.sort_values("display_order")
    want = [f"{n} {nm}" for n, nm in zip(m["subarea"], m["name"])]
    for name, layer in got.items():
        assert layer["renderer"] == "categorizedSymbol" and layer["labels"] == want
        assert layer["colours"] == [c.lower() for c in PALETTE[:len(want)]]
        assert layer["drawn"] == layer["n"] > 0          # every feature gets its category's symbol
    assert got["subareas"]["labels_enabled"] and got["subareas"]["label_field"] == "AREA_NAME"
    assert not got["townblocks"]["labels_enabled"]
