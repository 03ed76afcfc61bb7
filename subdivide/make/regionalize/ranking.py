"""Rank candidates and recommend a k, with the sentence a council can read."""
from __future__ import annotations

import numpy as np

from subdivide.make.regionalize.candidates import Candidate

#: below this best expected spared share, subdivision is said to buy little
LITTLE_GAIN = 0.05


def _key_alerts(c: Candidate):
    s = c.spared if c.alerts is not None else -np.inf
    return (not c.feasible, -s, c.k)


def _key_compactness(c: Candidate):
    return (not c.feasible, -(c.ch_score if np.isfinite(c.ch_score) else -np.inf), c.k)


def recommend(feasible: list[Candidate], margin: float) -> Candidate | None:
    """The smallest k whose expected spared share is within ``margin`` of the best."""
    if not feasible:
        return None
    best = max(c.spared for c in feasible)
    return min((c for c in feasible if c.spared >= best - margin - 1e-12), key=lambda c: c.k)


def rank_candidates(candidates: list[Candidate], *, objective: str, margin: float,
                    baseline=None) -> tuple[list[Candidate], str]:
    """Candidates ranked and numbered, and the plain-words summary. With the alert
    objective rank 1 is the recommended plan (the smallest k within ``margin`` of the
    best expected spared share), then the other feasible plans by expected spared share,
    then the infeasible ones; with ``objective="compactness"`` by the Calinski–Harabasz
    ratio, as in earlier versions."""
    key = _key_alerts if objective == "alerts" else _key_compactness
    ranked = sorted(candidates, key=key)
    feasible = [c for c in ranked if c.feasible and c.alerts is not None]
    rec = recommend(feasible, margin) if objective == "alerts" else next((c for c in ranked if c.feasible), None)
    if rec is not None:          # rank 1 is the decision: the recommended plan
        ranked = [rec] + [c for c in ranked if c is not rec]
    out = [Candidate(**{**c.__dict__, "rank": i + 1, "recommended": c is rec}) for i, c in enumerate(ranked)]
    return out, summary_sentence(feasible, rec, margin) if objective == "alerts" else ""


def summary_sentence(feasible: list[Candidate], rec: Candidate | None, margin: float) -> str:
    """E.g. "k = 2 spares 18 % of residents per event …; no k spares more than 22 %"."""
    if rec is None or rec.alerts is None:
        return "no feasible plan"
    band = rec.alerts.band_km
    if all(c.k == 1 for c in feasible):
        return "Only k = 1 (whole-municipality delivery) was evaluated: it spares nobody. Ask for --k 1-14."
    best = max(feasible, key=lambda c: (c.spared, -c.k))
    lband = f"L = {min(band):g}–{max(band):g} km" if len(band) > 1 else f"L = {band[0]:g} km"
    head = (f"k = {rec.k} spares {rec.spared:.0%} of residents per event "
            f"(mean over {lband}; {rec.alerts.worst:.0%} at the worst L)")
    if best.spared < LITTLE_GAIN:
        return (f"Subdivision buys little here: no k spares more than {best.spared:.0%} of residents per event "
                f"({lband}). Recommended: k = {rec.k}.")
    if best is rec:
        return f"{head}; no k spares more. Recommended: k = {rec.k}."
    return (f"{head}; no k spares more than {best.spared:.0%} (k = {best.k}). Recommended: k = {rec.k}, "
            f"the smallest k within {margin * 100:g} points of the best.")
