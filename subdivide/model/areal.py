"""Areal weighting: the one primitive that spreads a count over the parts of polygons.

Town-block population (JINKO) is spread over any zone (a core, a reach, a neighbour's
strip) in proportion to the area of the block inside it (maup-style areal interpolation).
"""
from __future__ import annotations

import numpy as np
import shapely


def overlap_areas(zones, parts, *, pair_filter=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Overlap area (m²) of every zone with every part it intersects, vectorised.

    One STRtree query gives candidate pairs; parts lying wholly inside their zone take
    their own area (``contains_properly`` on the prepared zone), only the cut ones are
    intersected. ``pair_filter(zone_idx, part_idx) -> bool mask`` drops pairs early.
    Returns (zone_idx, part_idx, area_m2) for pairs with a positive overlap.
    """
    zones = np.asarray(zones, dtype=object)
    parts = np.asarray(parts, dtype=object)
    if len(zones) == 0 or len(parts) == 0:
        e = np.zeros(0, dtype=np.int64)
        return e, e, np.zeros(0)
    tree = shapely.STRtree(parts)
    zi, pj = tree.query(zones, predicate="intersects")
    if pair_filter is not None and len(zi):
        keep = pair_filter(zi, pj)
        zi, pj = zi[keep], pj[keep]
    if len(zi) == 0:
        return zi, pj, np.zeros(0)
    shapely.prepare(zones)
    whole = shapely.contains_properly(zones[zi], parts[pj])
    area = shapely.area(parts)[pj]  # once per part, not once per pair
    cut = ~whole
    if cut.any():
        area[cut] = cut_areas(zones[zi[cut]], parts[pj[cut]])
    pos = area > 0
    order = np.lexsort((pj[pos], zi[pos]))
    return zi[pos][order], pj[pos][order], area[pos][order]


#: margin (m) around a part's bounding box when a zone is clipped to it
CLIP_MARGIN_M = 1.0


def cut_areas(zones, parts) -> np.ndarray:
    """Area of ``zones[i] ∩ parts[i]`` for each pair, with the zone first clipped to the part's
    bounding box (+ :data:`CLIP_MARGIN_M`).

    A large zone (a reach of a whole sub-area) cut against many small blocks would otherwise
    be overlaid whole once per block: cost ∝ blocks × zone vertices. Clipping by a rectangle
    (``shapely.clip_by_rect``) is linear and leaves only the zone's few vertices near the
    block. The part of the zone outside the box cannot meet the block, so the intersection is
    the same set; its area differs in float rounding only (≤ 1e-12 relative, the pieces are
    summed in another order). ``clip_by_rect`` does not promise a valid result, so a clipped
    zone that is not valid is not used: that pair is intersected with the whole zone.
    """
    zones = np.asarray(zones, dtype=object)
    parts = np.asarray(parts, dtype=object)
    if not len(parts):
        return np.zeros(0)
    box = shapely.bounds(parts) + np.array([-CLIP_MARGIN_M, -CLIP_MARGIN_M, CLIP_MARGIN_M, CLIP_MARGIN_M])
    # clip_by_rect takes one rectangle per call (no array form): one C call per pair
    clipped = np.array([shapely.clip_by_rect(z, *b) for z, b in zip(zones, box.tolist())], dtype=object)
    use = shapely.is_valid(clipped)
    src = np.where(use, clipped, zones)
    return shapely.area(shapely.intersection(src, parts))


def weighted_population(zones, parts, population, *, pair_filter=None):
    """Areal-weighted population of each zone: Σ population × overlap / part area.

    Returns (zone_idx, part_idx, area_m2, population) per overlapping pair.
    """
    parts = np.asarray(parts, dtype=object)
    pop = np.asarray(population, dtype=float)
    zi, pj, area = overlap_areas(zones, parts, pair_filter=pair_filter)
    part_area = shapely.area(parts)[pj] if len(pj) else np.zeros(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(part_area > 0, np.minimum(area / np.where(part_area > 0, part_area, 1.0), 1.0), 0.0)
    return zi, pj, area, pop[pj] * frac if len(pj) else np.zeros(0)


def zone_population(zones, parts, population) -> np.ndarray:
    """Population inside each zone, areal-weighted from ``parts`` (e.g. town-blocks)."""
    zones = np.asarray(zones, dtype=object)
    zi, _, _, pop = weighted_population(zones, parts, population)
    return np.bincount(zi, weights=pop, minlength=len(zones)) if len(zones) else np.zeros(0)
