"""Automatic sub-area planning: contiguity-constrained regionalization into k ≤ 14
sub-areas, judged by the residents spared an alert that is not theirs.

Package layout (pure steps in modules, one solver object):

- :mod:`.features`   attribute columns, raster zonal means, the compactness score's SSD algebra;
- :mod:`.graph`      rook block graph, islands contracted onto the nearest mainland block;
- :mod:`.tree`       seeded spanning trees and greedy tree cuts (SKATER-like);
- :mod:`.improve`    local search: SSD boundary moves, and alert-objective moves;
- :mod:`.objective`  the alert objective (expected spared share over scenarios and L),
  evaluated incrementally;
- :mod:`.candidates` a labelling → a checked :class:`~subdivide.model.plan.Plan` and its figures;
- :mod:`.ranking`    ranking, recommended k, the summary sentence;
- :mod:`.solver`     :class:`Regionalizer` (``__init__`` stores, ``solve()`` works).

Method: (1) rook block graph, islands attached to the nearest mainland block and reported
as island exceptions; (2) seeded spanning trees (SKATER's, then border-weighted trees
with growing log-normal noise) cut greedily into k parts keeping the area floor; (3) with
``objective="alerts"`` (the default), restart by restart and k by k, the best cut, the
best refinement of the (k−1)-plan and the best coarsening of the (k+1)-plan (k ± 1 are
searched as helpers when not asked) are improved by local search on the expected share
of residents spared an alert (:mod:`.objective`): boundary-block moves, then
merge-and-split moves that re-cut two adjacent sub-areas along a random spanning tree of
their union; each k keeps its best plan; (4) with ``objective="compactness"``, boundary
moves that lower the compactness SSD; (5) every candidate is built as a Plan (k ≤ 14,
contiguity with island exceptions) and checked against the area floor, the exact core
share and 旧市町村 nesting; a core-share miss raises the effective floor and retries.
Deterministic for a seed; more restarts never give a worse plan (search quality is
measured against the exact optimum in ``tests/test_regionalize_exact.py``).
"""
from __future__ import annotations

from subdivide.core.constants import MAX_SUBAREAS
from subdivide.core.progress import Progress, silent
from subdivide.make.regionalize.candidates import (
    LABELS,
    Candidate,
    RegionalizeResult,
    approx_core_share,
)
from subdivide.make.regionalize.features import (
    attribute_frame,
    group_ssd,
    ssd_of,
    standardize,
    within_ssd,
)
from subdivide.make.regionalize.improve import _ring_ok
from subdivide.make.regionalize.objective import AlertModel, AlertScore, AlertState
from subdivide.make.regionalize.solver import Regionalizer
from subdivide.model.scenarios import DEFAULT_ALERT_BAND_KM

__all__ = [
    "LABELS",
    "AlertModel",
    "AlertScore",
    "AlertState",
    "Candidate",
    "RegionalizeResult",
    "Regionalizer",
    "_ring_ok",
    "approx_core_share",
    "attribute_frame",
    "group_ssd",
    "regionalize",
    "ssd_of",
    "standardize",
    "within_ssd",
]


def regionalize(blocks, *, k=range(2, MAX_SUBAREAS + 1), min_area_km2: float = 0.0, min_core: float = 0.0,
                spill_km: float = 2.0, attributes=(), rasters: dict | None = None, follow_old: str | None = None,
                nest: bool = False, old_penalty: float = 2.0, compactness: float | None = None, seed: int = 0,
                restarts: int | None = None, improve: bool = True, max_subareas: int = MAX_SUBAREAS,
                muni_code: str | None = None, time_budget_s: float | None = None, objective: str = "alerts",
                scenarios=None, alert_band_km=DEFAULT_ALERT_BAND_KM, send_share: float = 0.0,
                margin: float = 0.02, progress: Progress = silent) -> RegionalizeResult:
    """The best plan for each k, ranked by the expected share of residents spared an alert.

    Parameters
    ----------
    blocks: canonical town-blocks (projected CRS, metres).
    k: an int or an iterable of ints (1..max_subareas; 1 = whole-municipality delivery).
    min_area_km2: area floor per sub-area (km²).
    min_core, spill_km: floor on the exact unreached-core share of each dissolved
        sub-area at spill distance ``spill_km`` (0 = no floor); the core shares in the
        candidates table are at ``spill_km`` too.
    attributes, rasters: town-block columns / GeoTIFFs (zonal mean) to keep similar.
    follow_old, nest, old_penalty: 旧市町村 column; crossing costs ``old_penalty`` or,
        with ``nest``, is forbidden.
    compactness: weight of centroid coordinates in the tree-partition score.
    seed: ``numpy`` Generator seed (trees, default scenarios, search order).
    objective: "alerts" (default: expected spared share) or "compactness" (the
        Calinski–Harabasz ranking of earlier versions).
    scenarios: :class:`subdivide.model.scenarios.Scenarios` (default: seeded discs of
        1, 3, 5 km centred on populated blocks drawn ∝ population).
    alert_band_km: spill distances L the objective averages over (default the trial's
        1.6/2.0/2.5/3.0/3.3 km; the worst L is reported too).
    send_share: 0 → an alert goes to every sub-area its footprint touches; x > 0 → to
        sub-areas holding ≥ x of the footprint's residents (and always the largest).
    margin: recommended k = the smallest k whose spared share is within ``margin`` of the best.
    restarts: spanning trees per k, each a round of local searches (default 4); more never
        give a worse plan.
    time_budget_s: soft limit for the local-search phases (the result then depends on the
        machine's speed; without it, it never does).

    Raises InfeasibleError when no requested k can meet the constraints.
    """
    return Regionalizer(blocks, k=k, min_area_km2=min_area_km2, min_core=min_core, spill_km=spill_km,
                        attributes=attributes, rasters=rasters, follow_old=follow_old, nest=nest,
                        old_penalty=old_penalty, compactness=compactness, seed=seed, restarts=restarts,
                        improve=improve, max_subareas=max_subareas, muni_code=muni_code,
                        time_budget_s=time_budget_s, objective=objective, scenarios=scenarios,
                        alert_band_km=alert_band_km, send_share=send_share, margin=margin,
                        progress=progress).solve()
