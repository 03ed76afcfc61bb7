"""Numbers the whole package shares: the carriers' hard limits and the trial's defaults.

Every other module imports these from here; none restates them (docs/domain.md §1–3).
"""
from __future__ import annotations

#: at most this many sub-areas per municipality (the carriers' systems)
MAX_SUBAREAS = 14
#: at most this many subdivided municipalities nationwide
MAX_MUNICIPALITIES = 25
#: spill distances L (km) reported by default: the trial measured 1.6–3.3 km of overreach
DEFAULT_DISTANCES_KM = (2.0, 2.5, 3.0)
#: the trial's policy: at least this share of a sub-area unreached by its neighbours
DEFAULT_TARGET_SHARE = 0.5
