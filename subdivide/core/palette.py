"""Sub-area colours: one palette for the review map, the report, the package's QGIS styles
and the QGIS plugin (qgis/subdivide_qgis/colours.py keeps a copy; a test checks they agree).

14 distinct colours (the carriers allow at most 14 sub-areas), colour-blind-aware first
(Okabe–Ito), then distinct extras. A sub-area's colour is given by its position in the
display order, so it is the same everywhere.
"""
from __future__ import annotations

from collections.abc import Sequence

PALETTE = (
    "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7",
    "#7F3C8D", "#11A579", "#3969AC", "#F2B701", "#E73F74", "#80BA5A", "#A5AA99",
)


def subarea_colours(subareas: Sequence[int]) -> dict[int, str]:
    """Sub-area number → colour, by position in the display order (stable)."""
    return {int(s): PALETTE[i % len(PALETTE)] for i, s in enumerate(subareas)}
