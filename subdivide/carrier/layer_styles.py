"""QGIS styles stored inside the package GeoPackage (its ``layer_styles`` table).

QGIS applies the default style of a GeoPackage layer when the layer is opened, so a carrier
who drags ``package.gpkg`` into QGIS sees the sub-areas in the review map's colours
(:mod:`subdivide.core.palette`), labelled with their 「●●地域」 names, and the town-blocks in
the same colours without labels — the style the QGIS plugin applies
(qgis/subdivide_qgis/styles.py): categorised by sub-area number, legend "N 名前".

The table has QGIS's own schema (the one QGIS creates when a style is saved "in the
database"); ``update_time`` is fixed (:data:`STYLE_TIME`) so that packages stay
byte-identical. Names are data: they enter the QML through an XML serialiser (escaped),
never as markup.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

import pandas as pd

from subdivide.core.palette import subarea_colours

TABLE = "layer_styles"
#: the GeoPackage geometry column GDAL writes (GEOMETRY_NAME default)
GEOMETRY_COLUMN = "geom"
#: fixed style time (reproducible packages)
STYLE_TIME = pd.Timestamp("2000-01-01T00:00:00.001Z")  # (with ms: the GeoPackage DATETIME form)
#: QGIS version the QML declares (read by every QGIS 3)
QML_VERSION = "3.28.0-Firenze"
#: a Japanese font of Windows (QGIS falls back to its default font when it is missing)
LABEL_FONT = "Meiryo UI"


@dataclass(frozen=True)
class LayerLook:
    """Fill alpha, outline colour and width (mm), labels on or off."""

    fill_alpha: int
    outline: str
    outline_mm: float
    labels: bool


SUBAREA_LOOK = LayerLook(190, "40,40,40,255", 0.5, True)
TOWNBLOCK_LOOK = LayerLook(150, "255,255,255,200", 0.1, False)


def _rgba(hex_colour: str, alpha: int) -> str:
    h = hex_colour.lstrip("#")
    return ",".join(str(int(h[i:i + 2], 16)) for i in (0, 2, 4)) + f",{alpha}"


def _fill_symbol(parent: ET.Element, name: str, colour: str, look: LayerLook) -> None:
    """A simple fill symbol, properties both as <Option> (QGIS ≥ 3.26) and <prop> (older 3.x)."""
    sym = ET.SubElement(parent, "symbol", {"type": "fill", "name": name, "alpha": "1", "clip_to_extent": "1",
                                           "force_rhr": "0", "frame_rate": "10", "is_animated": "0"})
    layer = ET.SubElement(sym, "layer", {"class": "SimpleFill", "enabled": "1", "locked": "0", "pass": "0"})
    props = {"border_width_map_unit_scale": "3x:0,0,0,0,0,0", "color": _rgba(colour, look.fill_alpha),
             "joinstyle": "bevel", "offset": "0,0", "offset_unit": "MM", "outline_color": look.outline,
             "outline_style": "solid", "outline_width": f"{look.outline_mm:g}", "outline_width_unit": "MM",
             "style": "solid"}
    opts = ET.SubElement(layer, "Option", {"type": "Map"})
    for k, v in props.items():
        ET.SubElement(opts, "Option", {"name": k, "type": "QString", "value": v})
    for k, v in props.items():
        ET.SubElement(layer, "prop", {"k": k, "v": v})


def _labeling(root: ET.Element, field: str) -> None:
    lab = ET.SubElement(root, "labeling", {"type": "simple"})
    settings = ET.SubElement(lab, "settings", {"calloutType": "simple"})
    style = ET.SubElement(settings, "text-style", {
        "fieldName": field, "isExpression": "0", "fontFamily": LABEL_FONT, "fontSize": "11",
        "fontSizeUnit": "Point", "fontWeight": "50", "fontItalic": "0", "textColor": "0,0,0,255",
        "textOpacity": "1", "namedStyle": "Regular", "multilineHeight": "1", "allowHtml": "0"})
    ET.SubElement(style, "text-buffer", {"bufferDraw": "1", "bufferSize": "1", "bufferSizeUnits": "MM",
                                         "bufferColor": "255,255,255,255", "bufferOpacity": "1",
                                         "bufferJoinStyle": "128", "bufferNoFill": "1"})
    ET.SubElement(settings, "text-format", {"wrapChar": "", "multilineAlign": "3", "autoWrapLength": "0"})
    ET.SubElement(settings, "placement", {"placement": "1", "centroidInside": "1", "centroidWhole": "0",
                                          "fitInPolygonOnly": "0", "dist": "0", "priority": "5"})
    ET.SubElement(settings, "rendering", {"obstacle": "1", "drawLabels": "1", "displayAll": "0",
                                          "upsidedownLabels": "0", "scaleVisibility": "0", "limitNumLabels": "0"})


def qml(number_field: str, subareas: list[tuple[int, str]], *, look: LayerLook = SUBAREA_LOOK,
        label_field: str | None = None) -> str:
    """The QML of a layer categorised by ``number_field`` over ``subareas`` ((number, name)
    in display order): colours by position, legend ``"N 名前"``, labels from ``label_field``."""
    colours = subarea_colours([n for n, _ in subareas])
    root = ET.Element("qgis", {"version": QML_VERSION, "styleCategories": "Symbology|Labeling"})
    rend = ET.SubElement(root, "renderer-v2", {"type": "categorizedSymbol", "attr": number_field,
                                               "symbollevels": "0", "enableorderby": "0", "forceraster": "0",
                                               "referencescale": "-1"})
    cats = ET.SubElement(rend, "categories")
    syms = ET.SubElement(rend, "symbols")
    for i, (number, name) in enumerate(subareas):
        ET.SubElement(cats, "category", {"value": str(int(number)), "label": f"{int(number)} {name}",
                                         "symbol": str(i), "render": "true", "type": "integer"})
        _fill_symbol(syms, str(i), colours[number], look)
    if look.labels and label_field:
        _labeling(root, label_field)
    ET.SubElement(root, "layerGeometryType").text = "2"
    ET.indent(root)
    return "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + ET.tostring(root, encoding="unicode") + "\n"


def layer_styles_table(subareas: list[tuple[int, str]], layers: dict[str, tuple[str, str | None, LayerLook]]
                       ) -> pd.DataFrame:
    """QGIS's ``layer_styles`` rows: one default style per layer. ``layers`` maps a layer name
    to (number field, label field or None, look)."""
    rows = []
    for table, (number_field, label_field, look) in layers.items():
        rows.append({
            "f_table_catalog": "", "f_table_schema": "", "f_table_name": table,
            "f_geometry_column": GEOMETRY_COLUMN, "styleName": table,
            "styleQML": qml(number_field, subareas, look=look, label_field=label_field),
            "styleSLD": "", "useAsDefault": True,
            "description": "subdivide: colours of the review map, 「●●地域」 labels", "owner": "", "ui": "",
            "update_time": STYLE_TIME,
        })
    return pd.DataFrame(rows)
