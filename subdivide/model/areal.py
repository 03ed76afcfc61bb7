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
        area[cut] = shapely.area(shapely.intersection(zones[zi[cut]], parts[pj[cut]]))
    pos = area > 0
    order = np.lexsort((pj[pos], zi[pos]))
    return zi[pos][order], pj[pos][order], area[pos][order]


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
