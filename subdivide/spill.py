"""Spill: how much of a sub-area its neighbours' broadcasts do not reach (DOMAIN.md §3).

Symbols: S = sub-area area (m²), L = spill distance (m), r = sqrt(S/π).
"""
from __future__ import annotations

import numpy as np
import shapely


def circle_unreached_share(area_m2, spill_m):
    """Circle model (the trial report's): share of a sub-area of area S not reached by
    broadcasts leaking L past its boundary, ``(r − L)² / r²`` (0 when L ≥ r).
    An upper bound for real shapes (isoperimetric inequality). Vectorised."""
    area = np.asarray(area_m2, dtype=float)
    r = np.sqrt(np.maximum(area, 0.0) / np.pi)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(r > spill_m, (r - spill_m) ** 2 / np.where(r > 0, r, 1.0) ** 2, 0.0)
    return share


def min_area_for_share(share, spill_m):
    """Minimum area (m²) for an unreached share p in the circle model:
    ``π · (L / (1 − √p))²``. p = 0.5, L = 2 km → 146 km²; L = 3 km → 329 km²."""
    p = np.asarray(share, dtype=float)
    return np.pi * (spill_m / (1.0 - np.sqrt(p))) ** 2


def core_share(geoms, spill_m, *, quad_segs: int = 8):
    """Exact polygon model: ``area(A.buffer(−L)) / area(A)`` per geometry (metric CRS).
    Vectorised over an array of geometries."""
    g = np.asarray(geoms)
    area = shapely.area(g)
    core = shapely.area(shapely.buffer(g, -float(spill_m), quad_segs=quad_segs))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(area > 0, core / np.where(area > 0, area, 1.0), 0.0)
