"""Sub-area colours and the columns that hold a sub-area's number and name (no QGIS import).

The palette is the one of the council-review map (subdivide.present.map.PALETTE), so a
sub-area has the same colour in QGIS, in the HTML map and in the report; a test checks
that the two stay equal.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

PALETTE = (
    "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7",
    "#7F3C8D", "#11A579", "#3969AC", "#F2B701", "#E73F74", "#80BA5A", "#A5AA99",
)


@dataclass(frozen=True)
class SubareaFields:
    """Where a layer keeps the sub-area number, its 「●●地域」 name and display order
    (``name`` is None for a plan's town-block layer, whose ``name`` column is the block's);
    ``blocks``: a town-block layer (coloured by sub-area, not labelled)."""

    number: str
    name: str | None
    order: str | None
    blocks: bool = False


#: plan GeoPackage (subdivide plan) and carrier package (default profile) layers
PLAN_SUBAREAS = SubareaFields("subarea", "name", "display_order")
PLAN_TOWNBLOCKS = SubareaFields("subarea", None, None, blocks=True)
PACKAGE_SUBAREAS = SubareaFields("AREA_NO", "AREA_NAME", "DISP_ORD")
PACKAGE_TOWNBLOCKS = SubareaFields("AREA_NO", "AREA_NAME", None, blocks=True)


def fields_of(field_names: Iterable[str]) -> SubareaFields | None:
    """Which schema a layer has, from its field names; None when it has no sub-area column."""
    names = set(field_names)
    if {"AREA_NO", "AREA_NAME"} <= names:
        return PACKAGE_TOWNBLOCKS if "KEY_CODE" in names else PACKAGE_SUBAREAS
    if {"subarea", "display_order", "name"} <= names:
        return PLAN_SUBAREAS
    if "subarea" in names:
        return PLAN_TOWNBLOCKS
    return None


def subarea_colours(ordered_numbers: Sequence[int]) -> dict[int, str]:
    """Sub-area number → colour, by position in the display order."""
    return {int(s): PALETTE[i % len(PALETTE)] for i, s in enumerate(ordered_numbers)}


def ordered_subareas(rows: Iterable[tuple[int, str | None, int | None]]) -> list[tuple[int, str]]:
    """(number, name, display order) rows → unique (number, name) in display order (then number)."""
    best: dict[int, tuple[int, str]] = {}
    for number, name, order in rows:
        n = int(number)
        key = int(order) if order is not None else n
        if n not in best or (name and not best[n][1]):
            best[n] = (key, str(name) if name else "")
    return [(n, nm or f"{n}") for n, (k, nm) in sorted(best.items(), key=lambda kv: (kv[1][0], kv[0]))]
