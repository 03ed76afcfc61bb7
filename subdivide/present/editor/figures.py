"""Live figures for the plan editor, recomputed only where an edit changed something.

The editor's state may be invalid for a while (a sub-area cut in two, an empty new
sub-area), so the figures are computed from the raw assignment rather than from a
:class:`~subdivide.model.plan.Plan`, with the same owners a Plan uses:

- dissolved sub-area: ``shapely.coverage_union_all`` (or ``union_all`` with pinholes
  closed), exactly as :attr:`Plan.dissolved`;
- spill: :func:`~subdivide.model.reach.spill_territory`, the inward buffer for the core,
  :func:`~subdivide.model.reach.circle_unreached_share` for the circle model and
  :func:`~subdivide.model.areal.weighted_population` for core population and exposure,
  as :func:`~subdivide.analysis.spill.spill_report` does;
- contiguity: :func:`~subdivide.model.contiguity.contiguity_breaks`.

Caches: the dissolved geometry is keyed by the set of member blocks, the spill parts
(core share, core population, the reach's population per block) by the territory's WKB
and L. After a paint only the two sub-areas involved miss the cache.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import numpy as np
import shapely

from subdivide.model.areal import weighted_population
from subdivide.model.contiguity import contiguity_breaks
from subdivide.model.plan import _drop_pinholes, _is_coverage
from subdivide.model.reach import (
    circle_unreached_share,
    ladder_buffer,
    spill_buffers,
    spill_territory,
)

#: the buffer resolution spill_report uses by default (figures agree with `subdivide spill`)
QUAD_SEGS = 16
#: cap on cached entries (dissolves and spill parts); oldest dropped first
CACHE_LIMIT = 512


@dataclass(frozen=True)
class SpillPart:
    """The spill figures of one territory at one L."""

    territory_area: float
    core_area: float
    core_population: float
    reach_blocks: np.ndarray       # block indices inside the reach A ⊕ L (any sub-area)
    reach_population: np.ndarray   # areal-weighted population of each of those blocks


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


class _Cache(dict):
    def put(self, key, value):
        if len(self) >= CACHE_LIMIT:
            for k in list(self)[: CACHE_LIMIT // 4]:
                del self[k]
        self[key] = value
        return value


class FigureEngine:
    """Per sub-area figures for an assignment of ``blocks`` (canonical schema, metres)."""

    def __init__(self, blocks, adjacency):
        self.geoms = np.asarray(blocks.geometry.values, dtype=object)
        self.keys = blocks["key"].to_numpy(dtype=object)
        self.population = blocks["population"].to_numpy(dtype=float)
        self.households = blocks["households"].to_numpy(dtype=float)
        self.adjacency = adjacency
        # a subset of a valid coverage is a valid coverage: checked once, not per dissolve
        self._all_coverage = _is_coverage(self.geoms)
        self.tree = shapely.STRtree(self.geoms)
        self._dissolved = _Cache()
        self._spill = _Cache()
        #: (sub-area number, L) → (territory, core, reach) last computed: the base of local updates
        self._last: dict = {}

    # ------------------------------------------------------------------ geometry
    def dissolve(self, members: np.ndarray):
        key = _digest(members.tobytes())
        hit = self._dissolved.get(key)
        if hit is not None:
            return hit
        g = self.geoms[members]
        if len(g) == 0:
            geom = shapely.Polygon()
        elif self._all_coverage or _is_coverage(g):
            geom = shapely.coverage_union_all(g)
        else:
            geom = _drop_pinholes(shapely.union_all(g))
        return self._dissolved.put(key, geom)

    def territories(self, sub: np.ndarray, numbers: list[int]) -> np.ndarray:
        """Spill territory per sub-area number (same order), from the dissolved shapes."""
        dissolved = np.array([self.dissolve(np.flatnonzero(sub == s)) for s in numbers] or [], dtype=object)
        nonempty = ~shapely.is_empty(dissolved) if len(dissolved) else np.zeros(0, bool)
        out = dissolved.copy()
        if nonempty.any():
            out[nonempty] = spill_territory(dissolved[nonempty])
        return dissolved, out

    # ------------------------------------------------------------------ spill
    def spill_parts(self, sub: np.ndarray, numbers: list[int], territories: np.ndarray,
                    distance_m: float) -> list[SpillPart | None]:
        """Spill parts per sub-area; only territories not seen at this L are computed:
        locally around what changed when the sub-area's previous shape at this L is known
        (:func:`local_buffers`), else in full (:func:`~subdivide.model.reach.spill_buffers`)."""
        keys = [None if shapely.is_empty(t) else (_digest(shapely.to_wkb(t)), float(distance_m))
                for t in territories]
        todo = [i for i, k in enumerate(keys) if k is not None and k not in self._spill]
        if todo:
            cores = np.empty(len(todo), dtype=object)
            reaches = np.empty(len(todo), dtype=object)
            prevs = [self._last.get((numbers[i], float(distance_m))) for i in todo]
            local = [n for n, pv in enumerate(prevs) if pv is not None]
            got = _threaded(lambda n: local_buffers(prevs[n][:3], territories[todo[n]], distance_m), local)
            windows = np.full(len(todo), None, dtype=object)
            full = [n for n in range(len(todo)) if got.get(n) is None]
            for n, res in got.items():
                if res is not None:
                    cores[n], reaches[n], windows[n] = res
            if full:
                cores[full], reaches[full] = spill_buffers(territories[[todo[n] for n in full]], distance_m,
                                                           quad_segs=QUAD_SEGS)
            for n, i in enumerate(todo):
                prev = prevs[n][3] if windows[n] is not None else None
                part = self._part(sub == numbers[i], territories[i], cores[n], reaches[n], windows[n], prev)
                self._spill.put(keys[i], part)
                self._last[(numbers[i], float(distance_m))] = (territories[i], cores[n], reaches[n], part)
        return [None if k is None else self._spill[k] for k in keys]

    def _part(self, members: np.ndarray, territory, core, reach, window=None, prev: SpillPart | None = None
              ) -> SpillPart:
        """The spill part of one territory. With ``window`` (where core and reach may
        differ from ``prev``'s), the reach's population is recomputed only for the blocks
        touching the window; the others keep their (identical) figures."""
        idx = np.flatnonzero(members)
        _, _, _, cpop = weighted_population(np.array([core], dtype=object), self.geoms[idx], self.population[idx])
        if window is None or prev is None:
            _, rj, _, rpop = weighted_population(np.array([reach], dtype=object), self.geoms, self.population)
        else:
            near = np.unique(self.tree.query(window, predicate="intersects")) if not shapely.is_empty(window) \
                else np.zeros(0, np.int64)
            keep = ~np.isin(prev.reach_blocks, near)
            _, nj, _, npop = weighted_population(np.array([reach], dtype=object), self.geoms[near],
                                                 self.population[near])
            rj = np.concatenate([prev.reach_blocks[keep], near[nj]])
            rpop = np.concatenate([prev.reach_population[keep], npop])
            order = np.argsort(rj, kind="stable")
            rj, rpop = rj[order], rpop[order]
        return SpillPart(territory_area=float(shapely.area(territory)), core_area=float(shapely.area(core)),
                         core_population=float(cpop.sum()), reach_blocks=rj, reach_population=rpop)

    # ------------------------------------------------------------------ all figures
    def figures(self, sub: np.ndarray, numbers: list[int], distance_km: float,
                island_keys=()) -> dict:
        """Per sub-area figures, the exposure matrix and the contiguity breaks."""
        L = float(distance_km) * 1000.0
        k = len(numbers)
        pos = {s: i for i, s in enumerate(numbers)}
        bidx = np.array([pos.get(int(s), -1) for s in range(int(sub.max(initial=0)) + 1)])[sub]
        counts = np.bincount(bidx, minlength=k)[:k]
        pop = np.bincount(bidx, weights=self.population, minlength=k)[:k]
        hh = np.bincount(bidx, weights=self.households, minlength=k)[:k]
        dissolved, territories = self.territories(sub, numbers)
        parts = self.spill_parts(sub, numbers, territories, L)
        exposure = np.zeros((k, k))
        for i, part in enumerate(parts):
            if part is not None and len(part.reach_blocks):
                to = bidx[part.reach_blocks]
                other = to != i
                exposure[i] += np.bincount(to[other], weights=part.reach_population[other], minlength=k)[:k]
        t_area = np.array([p.territory_area if p else 0.0 for p in parts])
        c_area = np.array([p.core_area if p else 0.0 for p in parts])
        c_pop = np.array([p.core_population if p else 0.0 for p in parts])
        total = float(self.population.sum())
        with np.errstate(divide="ignore", invalid="ignore"):
            core_share = np.where(t_area > 0, c_area / np.where(t_area > 0, t_area, 1), 0.0)
            core_pop_share = np.where(pop > 0, c_pop / np.where(pop > 0, pop, 1), np.nan)
            spared = np.where(total > 0, 1.0 - (pop + exposure.sum(axis=1)) / (total or 1.0), np.nan)
        bad, excused = contiguity_breaks(self.adjacency, sub, self.keys, island_keys)
        rows = []
        for i, s in enumerate(numbers):
            rows.append({
                "subarea": int(s), "n_blocks": int(counts[i]), "population": int(round(pop[i])),
                "households": int(round(hh[i])), "area_km2": float(shapely.area(dissolved[i]) / 1e6),
                "core_share": float(core_share[i]),
                "circle_share": float(circle_unreached_share(t_area[i], L)) if t_area[i] > 0 else 0.0,
                "core_population_share": None if np.isnan(core_pop_share[i]) else float(core_pop_share[i]),
                "exposed_population": float(exposure[i].sum()),
                "spared_share": None if np.isnan(spared[i]) else float(spared[i]),
                "detached_keys": [str(x) for x in self.keys[bad & (sub == s)]],
            })
        return {"rows": rows, "exposure": exposure, "bad": bad, "excused": excused,
                "territories": territories}

    def bands(self, territory, distance_km: float):
        """(core, reach ring) of one territory at L, projected CRS."""
        core, reach = spill_buffers(np.array([territory], dtype=object), float(distance_km) * 1000.0,
                                    quad_segs=QUAD_SEGS)
        return core[0], shapely.difference(reach[0], territory)


#: a local update is tried when the changed part is at most this share of the territory
LOCAL_MAX_CHANGE = 0.25
#: margin (m) over the window radii, larger than the polygonal approximation of an arc
LOCAL_MARGIN_M = 25.0


def _threaded(fn, items) -> dict:
    """{item: fn(item)}, spread over threads (GEOS releases the GIL); order-independent."""
    if len(items) <= 1:
        return {n: fn(n) for n in items}
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(len(items), os.cpu_count() or 1, 8)) as ex:
        return dict(zip(items, ex.map(fn, items)))


def local_buffers(prev, territory, distance_m: float):
    """(core, reach, window) of ``territory`` at L from the previous shape's, recomputed
    only near the change D = T' Δ T; None when the change is too large to gain from this.

    A point x farther than L from D sees the same disc of radius L in T and T', so it is
    in T' ⊖ L (or T' ⊕ L) exactly when it was in T ⊖ L (T ⊕ L). Inside the window
    W = D ⊕ (L + m) the disc lies within the clip C = D ⊕ (2L + 2m), so the buffers of
    T' ∩ C decide there. Two cases need no clip: a sub-area that only grew keeps
    T' ⊕ L = (T ⊕ L) ∪ (D ⊕ L), and one that only shrank keeps T' ⊖ L = (T ⊖ L) − (D ⊕ L).
    """
    old_t, old_core, old_reach = prev
    gained = shapely.difference(territory, old_t)
    lost = shapely.difference(old_t, territory)
    D = shapely.union(gained, lost)
    if shapely.is_empty(D) or shapely.area(D) <= 0:
        return old_core, old_reach, shapely.Polygon()
    if shapely.area(D) > LOCAL_MAX_CHANGE * max(shapely.area(territory), 1.0):
        return None
    L = float(distance_m)
    grew, shrank = shapely.area(lost) <= 0, shapely.area(gained) <= 0
    window, clip = shapely.buffer(np.array([D, D], dtype=object),
                                  [L + LOCAL_MARGIN_M, 2 * L + 2 * LOCAL_MARGIN_M], quad_segs=QUAD_SEGS)
    near = ladder_buffer(np.array([D], dtype=object), L, quad_segs=QUAD_SEGS)[0]
    part = shapely.intersection(territory, clip)
    if grew:
        core_w = shapely.intersection(ladder_buffer(part, -L, quad_segs=QUAD_SEGS)[0], window)
        return shapely.union(shapely.difference(old_core, window), core_w), shapely.union(old_reach, near), window
    if shrank:
        reach_w = shapely.intersection(ladder_buffer(part, L, quad_segs=QUAD_SEGS)[0], window)
        return shapely.difference(old_core, near), shapely.union(shapely.difference(old_reach, window), reach_w), window
    core_w, reach_w = shapely.intersection(
        ladder_buffer(np.array([part, part], dtype=object), [-L, L], quad_segs=QUAD_SEGS), window)
    core = shapely.union(shapely.difference(old_core, window), core_w)
    reach = shapely.union(shapely.difference(old_reach, window), reach_w)
    return core, reach, window
