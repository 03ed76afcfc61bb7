"""Styling the output layers in QGIS: categorised colours per sub-area and labels with the
「●●地域」 name (town-block layers: the same colours, no labels)."""
from __future__ import annotations

from qgis.core import (
    QgsCategorizedSymbolRenderer,
    QgsFeatureRequest,
    QgsFillSymbol,
    QgsPalLayerSettings,
    QgsProcessingLayerPostProcessorInterface,
    QgsRendererCategory,
    QgsTextBufferSettings,
    QgsTextFormat,
    QgsVectorLayer,
    QgsVectorLayerSimpleLabeling,
)
from qgis.PyQt.QtGui import QColor, QFont, QFontDatabase

from .colours import SubareaFields, fields_of, ordered_subareas, subarea_colours

#: fonts with Japanese glyphs, first found is used (Windows, then Linux / macOS)
JAPANESE_FONTS = ("Yu Gothic UI", "Meiryo UI", "Meiryo", "MS UI Gothic", "Noto Sans CJK JP", "Noto Sans JP",
                  "IPAexGothic", "IPAGothic", "Hiragino Sans", "Hiragino Kaku Gothic ProN")


def japanese_font_family() -> str | None:
    families = set(QFontDatabase().families())
    return next((f for f in JAPANESE_FONTS if f in families), None)


def read_subareas(layer: QgsVectorLayer, fields: SubareaFields) -> list[tuple[int, str]]:
    """(number, name) of a sub-area layer in display order."""
    names = [f.name() for f in layer.fields()]
    wanted = [c for c in (fields.number, fields.name, fields.order) if c and c in names]
    req = QgsFeatureRequest().setFlags(QgsFeatureRequest.NoGeometry).setSubsetOfAttributes(wanted, layer.fields())
    rows = []
    for f in layer.getFeatures(req):
        rows.append((f[fields.number], f[fields.name] if fields.name in names else None,
                     f[fields.order] if fields.order and fields.order in names else None))
    return ordered_subareas(rows)


def apply_style(layer: QgsVectorLayer, subareas: list[tuple[int, str]] | None = None, *,
                labels: bool | None = None) -> bool:
    """Categorise ``layer`` by sub-area (colours in display order) and, for a sub-area layer,
    label it with the name. ``subareas`` (number, name) gives the legend for a town-block
    layer (from its plan's sub-area layer). Returns False when the layer has no sub-area column."""
    fields = fields_of(f.name() for f in layer.fields())
    if fields is None:
        return False
    if subareas is None:
        subareas = read_subareas(layer, fields)
    colours = subarea_colours([n for n, _ in subareas])
    is_blocks = fields.blocks
    cats = []
    for number, name in subareas:
        sym = QgsFillSymbol.createSimple({
            "color": _rgba(colours[number], 150 if is_blocks else 190),
            "outline_color": "255,255,255,200" if is_blocks else "40,40,40,255",
            "outline_width": "0.1" if is_blocks else "0.5", "outline_width_unit": "MM"})
        cats.append(QgsRendererCategory(number, sym, f"{number} {name}", True))
    layer.setRenderer(QgsCategorizedSymbolRenderer(fields.number, cats))
    if labels if labels is not None else not is_blocks:
        layer.setLabeling(QgsVectorLayerSimpleLabeling(_label_settings(fields.name or fields.number)))
        layer.setLabelsEnabled(True)
    layer.triggerRepaint()
    return True


def _rgba(hex_colour: str, alpha: int) -> str:
    c = QColor(hex_colour)
    return f"{c.red()},{c.green()},{c.blue()},{alpha}"


def _label_settings(field: str) -> QgsPalLayerSettings:
    fmt = QgsTextFormat()
    family = japanese_font_family()
    if family:
        fmt.setFont(QFont(family))
    fmt.setSize(11)
    buf = QgsTextBufferSettings()
    buf.setEnabled(True)
    buf.setSize(1.0)
    buf.setColor(QColor("white"))
    fmt.setBuffer(buf)
    pal = QgsPalLayerSettings()
    pal.fieldName = field
    pal.setFormat(fmt)
    pal.placement = QgsPalLayerSettings.OverPoint if hasattr(QgsPalLayerSettings, "OverPoint") else pal.placement
    return pal


class StylePostProcessor(QgsProcessingLayerPostProcessorInterface):
    """Styles a layer when Processing loads it; a town-block layer takes its legend (the
    sub-area names) from the plan's or package's sub-area layer ``subareas_uri``."""

    def __init__(self, subareas_uri: str | None = None):
        super().__init__()
        self.subareas_uri = subareas_uri

    def postProcessLayer(self, layer, context, feedback):
        if isinstance(layer, QgsVectorLayer):
            apply_style(layer, legend_from(self.subareas_uri) if self.subareas_uri else None)


def legend_from(subareas_uri: str) -> list[tuple[int, str]] | None:
    """(number, name) of the sub-areas in a sub-area layer's URI, or None if unreadable."""
    layer = QgsVectorLayer(subareas_uri, "subareas", "ogr")
    fields = fields_of(f.name() for f in layer.fields()) if layer.isValid() else None
    return read_subareas(layer, fields) if fields and fields.name and not fields.blocks else None


#: post-processors stay referenced until QGIS has loaded the layers (QGIS does not take
#: ownership of them); only the most recent few are kept
_ALIVE: list[StylePostProcessor] = []


def keep_post_processor(subareas_uri: str | None = None) -> StylePostProcessor:
    pp = StylePostProcessor(subareas_uri)
    _ALIVE.append(pp)
    del _ALIVE[:-64]
    return pp
