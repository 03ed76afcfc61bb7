"""Reach: the one spill model's geometry (docs/domain.md §3).

A broadcast to sub-area A is received up to L past A's boundary. Everything the package
says about spill is computed from the functions here:

- :func:`spill_territory`: A as the radio sees it (holes no other sub-area occupies filled);
- :func:`core_share`: the exact polygon model, ``area(T ⊖ L) / area(T)`` on the territory T;
- :func:`circle_unreached_share`, :func:`min_area_for_share`: the trial report's circle model;
- :func:`core_distance_for_share`: the L at which a shape keeps a given share;
- :func:`outline_tolerance`: how far an outline may be simplified before buffering
  without leaving the buffer's own accuracy (``simplify_m="auto"``);
- :class:`BufferLadder`, :func:`spill_buffers`: the cores and reaches of a spill report,
  each buffer built as a chain of short buffers (faster on jagged outlines, and closer
  to the exact disc buffer than one long one).

Distances are metres (``_m``) in a projected CRS.
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


def spill_territory(geoms) -> np.ndarray:
    """Each sub-area with the holes no other sub-area occupies filled in (m², same CRS).

    Holes left by slivers between town-blocks, dropped water areas (HCODE 8154) or
    dropped enclaves of another municipality are radio-wise part of the sub-area around
    them; left open, every sliver would grow into a disc of radius L in the inward
    buffer. Holes that overlap another sub-area (an enclosed sub-area) stay open.
    """
    g = np.asarray(geoms, dtype=object)
    parts, pidx = shapely.get_parts(g, return_index=True)
    rings, ridx = shapely.get_rings(parts, return_index=True)
    is_hole = np.ones(len(rings), bool)
    if len(rings):
        first = np.r_[True, ridx[1:] != ridx[:-1]]
        is_hole = ~first  # get_rings lists the exterior ring first
    holes = shapely.polygons(rings[is_hole])
    owner = pidx[ridx[is_hole]]
    if len(holes) == 0:
        return g
    hi, gj = shapely.STRtree(g).query(holes, predicate="intersects")
    other = gj != owner[hi]
    hi, gj = hi[other], gj[other]
    occupied = np.zeros(len(holes), bool)
    if len(hi):
        ov = shapely.area(shapely.intersection(holes[hi], g[gj]))
        occupied[hi[ov > 0]] = True
    fill = ~occupied
    out = g.copy()
    for i in np.unique(owner[fill]):
        out[i] = shapely.union_all(np.concatenate([[g[i]], holes[fill & (owner == i)]]))
    return out


def arc_sagitta(distance_m, quad_segs: int = 8):
    """How far GEOS's polygonal arc falls inside the true circular arc of a buffer by
    ``distance_m``: ``|L| · (1 − cos(π / (4 · quad_segs)))`` (9.6 m at L = 2 km, quad_segs 8).
    Every buffered figure here is already uncertain by this much in offset distance."""
    return np.abs(np.asarray(distance_m, dtype=float)) * (1.0 - np.cos(np.pi / (4.0 * quad_segs)))


def outline_tolerance(distance_m, quad_segs: int = 8):
    """Simplification tolerance (m) for an outline about to be buffered by ``distance_m``:
    half the buffer's own :func:`arc_sagitta` (4.8 m at 2 km).

    Douglas–Peucker keeps the simplified outline within ε of the original (Hausdorff), so
    for a disc structuring element ``A_s ⊖ (L + ε) ⊆ A ⊖ L ⊆ A_s ⊖ (L − ε)``: the buffer of
    the simplified outline is the exact one at a distance off by at most ε, half what the
    polygonal arcs already cost. On 鳥取県 sub-areas the core share moves by < 3e-4
    (tests/test_reach_accuracy.py)."""
    return 0.5 * arc_sagitta(distance_m, quad_segs)


def simplified(geoms, tolerance_m) -> np.ndarray:
    """``shapely.simplify`` (topology-preserving) element-wise; a tolerance ≤ 0 leaves the
    geometry as it is (the same object)."""
    g, t = np.broadcast_arrays(np.asarray(geoms, dtype=object), np.asarray(tolerance_m, dtype=float))
    out = np.array(g, dtype=object, copy=True)
    do = t > 0
    if do.any():
        out[do] = shapely.simplify(g[do], t[do], preserve_topology=True)
    return out


def _simplify_tolerance(simplify_m, distance_m, quad_segs: int):
    if simplify_m is None or (isinstance(simplify_m, str) and simplify_m == "exact"):
        return 0.0
    if isinstance(simplify_m, str):
        if simplify_m != "auto":
            raise ValueError(f"simplify_m={simplify_m!r}: use a number of metres, 'auto' or 'exact'")
        return outline_tolerance(distance_m, quad_segs)
    return np.asarray(simplify_m, dtype=float)


def core_share(geoms, spill_m, *, quad_segs: int = 8, fill_holes: bool = True, simplify_m=0.0):
    """Exact polygon model: ``area(T.buffer(−L)) / area(T)`` per sub-area (metric CRS), T the
    sub-area's :func:`spill_territory`. ``geoms`` are all the sub-areas of one plan (a hole
    is filled only if no other sub-area occupies it). Vectorised over the geometries.
    ``fill_holes=False`` measures the geometries as given (single shapes, tests).

    ``simplify_m``: buffer T simplified at this tolerance (``"auto"``:
    :func:`outline_tolerance`, provably within the buffer's own arc error); the area divided
    by stays the exact one. The default 0 buffers T itself."""
    g = np.asarray(geoms, dtype=object)
    if fill_holes:
        g = np.asarray(spill_territory(g), dtype=object)
    area = shapely.area(g)
    tol = _simplify_tolerance(simplify_m, spill_m, quad_segs)
    src = simplified(g, tol) if np.any(np.asarray(tol) > 0) else g
    core = shapely.area(shapely.buffer(src, -float(spill_m), quad_segs=quad_segs))
    with np.errstate(divide="ignore", invalid="ignore"):
        # ≤ 1: the core lies inside T (a buffer by a denormal L can gain an ulp of area)
        return np.where(area > 0, np.minimum(core / np.where(area > 0, area, 1.0), 1.0), 0.0)


def core_distance_for_share(geoms, share, *, tol_m: float = 1.0, quad_segs: int = 8,
                            max_iter: int = 60, coarse: float = 50.0, ladder=None) -> np.ndarray:
    """The spill distance (m) at which each geometry keeps exactly ``share`` of its area
    as unreached core, vectorised over geometries.

    Safeguarded Newton iteration: d area(A ⊖ L) / dL = −perimeter(A ⊖ L), so each step
    costs one inward buffer; a step leaving the bracket [lo, hi] (hi = the equal-area
    circle radius, where the circle bound reaches 0) falls back to bisection.

    Two stages: the iteration first runs on the outline simplified at ``hi / coarse``
    (cheap buffers; its root is within that tolerance of the exact one, by the sandwich in
    :func:`outline_tolerance`), then continues on the exact outline from there, where
    Newton converges in two buffers instead of three or four. The converged value
    meets the same criterion as with ``coarse=0`` (one stage, the old way); the two agree
    to well within ``tol_m``.

    ``ladder``: an inward :class:`BufferLadder` of ``geoms``: every step buffers through it
    (one short buffer from a cached rung, so no coarse stage), and the distance found is
    the one at which the ladder's cores — a spill report's — keep ``share``.

    The core share of the same shape scaled by f at distance L equals the core share of
    the original at L/f, so the area this shape would need at distance L is
    ``S · (L / core_distance_for_share)²``.
    """
    g = np.asarray(geoms, dtype=object)
    if ladder is not None:
        if ladder.sign != -1 or len(ladder.geoms) != len(g):
            raise ValueError("the ladder must be an inward one of the same geometries")
        coarse = 0
    p = float(share)
    area = shapely.area(g)
    want = p * area
    lo = np.zeros(len(g))
    hi = np.sqrt(np.maximum(area, 0.0) / np.pi) * (1.0 - np.sqrt(p))  # circle bound ≥ exact
    x = hi / 2
    done = area <= 0
    if coarse and coarse > 0 and not done.all():
        rough = simplified(g, np.where(done, 0.0, hi / float(coarse)))
        x, _, _ = _newton_core_distance(rough, want, lo.copy(), hi.copy(), x, done.copy(),
                                        tol_m=tol_m, quad_segs=quad_segs, max_iter=max_iter)
        x = np.where(np.isfinite(x), np.clip(x, 0.0, hi), hi / 2)
    x, _, _ = _newton_core_distance(g, want, lo, hi, x, done, tol_m=tol_m, quad_segs=quad_segs, max_iter=max_iter,
                                    ladder=ladder)
    return np.where(area > 0, x, 0.0)


def _newton_core_distance(g, want, lo, hi, x, done, *, tol_m, quad_segs, max_iter, ladder=None):
    """Safeguarded Newton on area(g ⊖ x) = want from x, inside [lo, hi]; arrays updated in place.
    With ``ladder`` (inward, of ``g``) the buffers go through it."""
    for _ in range(max_iter):
        if done.all():
            break
        act = ~done
        if ladder is not None:
            core = ladder.buffer(-x[act], rows=np.flatnonzero(act))
        else:
            core = parallel_buffer(g[act], -x[act], quad_segs=quad_segs)
        f = shapely.area(core) - want[act]        # decreasing in L
        per = shapely.length(core)
        xa, la, ha = x[act], lo[act], hi[act]
        la = np.where(f >= 0, xa, la)
        ha = np.where(f >= 0, ha, xa)
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = xa + f / np.where(per > 0, per, np.nan)
        ok = np.isfinite(newton) & (newton > la) & (newton < ha)
        nx = np.where(ok, newton, (la + ha) / 2)
        conv = (np.abs(nx - xa) < tol_m / 4) | (ha - la < tol_m)
        lo[act], hi[act], x[act] = la, ha, nx
        idx = np.flatnonzero(act)
        done[idx[conv]] = True
    return x, lo, hi


def parallel_buffer(geoms, distances_m, *, quad_segs: int = 16, workers: int | None = None,
                    simplify_m=0.0) -> np.ndarray:
    """``shapely.buffer`` element-wise (distances broadcast against geoms), spread over
    threads: GEOS releases the GIL, so large sub-area buffers use every core. The result
    does not depend on the number of workers.

    ``simplify_m``: simplify each outline first at this tolerance (``"auto"``:
    :func:`outline_tolerance` of each distance, within the buffer's own arc error); the
    default 0 buffers the geometries as given."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    g, d = np.broadcast_arrays(np.asarray(geoms, dtype=object), np.asarray(distances_m, dtype=float))
    g, d = g.ravel(), d.ravel()
    tol = np.broadcast_to(_simplify_tolerance(simplify_m, d, quad_segs), d.shape)
    if np.any(tol > 0):
        g = simplified(g, tol)
    n = len(g)
    workers = min(workers or os.cpu_count() or 1, 8, n) if n else 1
    if workers <= 1 or n < 4:
        return shapely.buffer(g, d, quad_segs=quad_segs)
    # interleave by descending vertex count so each worker gets a similar load
    order = np.argsort(-shapely.get_num_coordinates(g), kind="stable")
    chunks = [order[i::workers] for i in range(workers)]
    out = np.empty(n, dtype=object)
    with ThreadPoolExecutor(workers) as ex:
        for idx, res in zip(chunks, ex.map(lambda ix: shapely.buffer(g[ix], d[ix], quad_segs=quad_segs), chunks)):
            out[idx] = res
    return out


# ---------------------------------------------------------------------- the buffer ladder
#: the buffer ladder's first rung (m) and the ratio between rungs: 50, 200, 800, 3200 m, …
LADDER_FIRST_M = 50.0
LADDER_RATIO = 4.0


def ladder_rungs(distance_m, *, first_m: float = LADDER_FIRST_M, ratio: float = LADDER_RATIO) -> np.ndarray:
    """The rungs (m, positive) a buffer by ``distance_m`` is built through:
    ``first_m · ratio^j`` strictly below ``|distance_m|`` (none at or below ``first_m``)."""
    return np.asarray(_rung_values(abs(float(distance_m)), first_m, ratio)[1:], dtype=float)


def _rung_values(below: float, first_m: float, ratio: float) -> list[float]:
    """[0, first_m, first_m·ratio, …] up to the last value strictly below ``below``."""
    out, nxt = [0.0], first_m
    while 0 < nxt < below:
        out.append(nxt)
        nxt *= ratio
    return out


class BufferLadder:
    """Buffers of fixed geometries by distances of one sign, each built as a chain of
    shorter buffers through fixed rungs (:func:`ladder_rungs`: 50, 200, 800, 3200 m, …):
    ``A ⊕ L = (((A ⊕ 50) ⊕ 150) ⊕ 600) ⊕ (L − 800)`` and the same for ``⊖``.

    Why it is right: buffering by discs composes, ``(A ⊕ D_a) ⊕ D_b = A ⊕ D_(a+b)`` and
    ``(A ⊖ D_a) ⊖ D_b = A ⊖ D_(a+b)``, so the chain is the same operation. Each GEOS
    buffer draws its arcs as chords, at most the :func:`arc_sagitta` of its own distance
    inside the true arc; these add up to the sagitta of L, so the result lies between the
    exact buffers at L − sagitta(L) and L — the guarantee of a single buffer. In practice it
    is much closer: only the first, short rung rounds the outline's sharp turns (error ∝
    50 m, not ∝ L); later rungs offset an already rounded outline. On 鳥取市's 9 pre-merger
    areas (15,187 outline vertices, quad_segs 16, L = 2–3 km) the areas of cores and
    reaches are 10–16 times closer to a quad_segs = 256 buffer than one GEOS buffer, and
    the six buffers cost 0.5 s instead of 3 s: a jagged outline is expensive to offset far
    in one go (the raw offset curve crosses itself everywhere), cheap a little at a time.

    Rung results are cached per geometry, so buffers at several distances (a report's L,
    the steps of a Newton iteration) cost one short buffer each once the rungs exist. The
    result of a distance depends only on the geometry and the distance (not on which other
    distances were asked for, nor on the number of threads).
    """

    def __init__(self, geoms, *, sign: int, quad_segs: int = 16, first_m: float = LADDER_FIRST_M,
                 ratio: float = LADDER_RATIO, workers: int | None = None):
        if sign not in (-1, 1):
            raise ValueError("sign must be -1 (inward) or +1 (outward)")
        if not (ratio > 1):
            raise ValueError("the ratio between rungs must exceed 1")
        self.geoms = np.asarray(geoms, dtype=object)
        self.sign = sign
        self.quad_segs = quad_segs
        self.first_m = float(first_m)
        self.ratio = float(ratio)
        self.workers = workers
        self._values = [0.0]                              # rung j's distance (m); rung 0: the geometry
        self._rungs: list[np.ndarray] = [self.geoms]      # rung j's buffers; None where not yet made

    def _rung_index(self, d: np.ndarray) -> np.ndarray:
        """Per distance (m, positive): the highest rung strictly below it (0 at or below first_m)."""
        if self.first_m <= 0 or len(d) == 0:
            return np.zeros(len(d), dtype=np.int64)
        values = _rung_values(float(np.max(d)), self.first_m, self.ratio)
        if len(values) > len(self._values):
            self._values = values
        return np.searchsorted(np.asarray(self._values[1:]), d, side="left").astype(np.int64)

    def _rung(self, j: int, idx: np.ndarray) -> np.ndarray:
        """Rung j of the geometries ``idx`` (computed, and cached, where missing)."""
        if j == 0:
            return self.geoms[idx]
        while len(self._rungs) <= j:
            self._rungs.append(np.full(len(self.geoms), None, dtype=object))
        have = self._rungs[j]
        todo = np.unique(idx)
        missing = todo[np.fromiter((have[i] is None for i in todo), dtype=bool, count=len(todo))]
        if len(missing):
            base = self._rung(j - 1, missing)
            step = self._values[j] - self._values[j - 1]
            have[missing] = parallel_buffer(base, self.sign * step, quad_segs=self.quad_segs, workers=self.workers)
        return have[idx]

    def buffer(self, distances_m, *, rows=None) -> np.ndarray:
        """Each geometry (or each of ``rows``, positions in ``geoms``) buffered by its
        distance (broadcast; all of this ladder's sign, or 0)."""
        rows = np.arange(len(self.geoms)) if rows is None else np.asarray(rows, dtype=np.int64)
        d = np.broadcast_to(np.asarray(distances_m, dtype=float), rows.shape).ravel()
        if np.any(np.sign(d) == -self.sign):
            raise ValueError("a distance of the other sign: use a ladder of that sign")
        a = np.abs(d)
        j = self._rung_index(a)
        out = np.empty(len(d), dtype=object)
        for r in np.unique(j):
            pos = np.flatnonzero(j == r)
            out[pos] = parallel_buffer(self._rung(int(r), rows[pos]), self.sign * (a[pos] - self._values[int(r)]),
                                       quad_segs=self.quad_segs, workers=self.workers)
        return out


def ladder_buffer(geoms, distances_m, *, quad_segs: int = 16, workers: int | None = None) -> np.ndarray:
    """``shapely.buffer`` element-wise (distances broadcast against geoms, either sign),
    each built through :class:`BufferLadder`'s rungs."""
    g, d = np.broadcast_arrays(np.asarray(geoms, dtype=object), np.asarray(distances_m, dtype=float))
    g, d = g.ravel(), d.ravel()
    out = np.empty(len(g), dtype=object)
    for sign in (-1, 1):
        idx = np.flatnonzero(np.sign(d) == sign if sign < 0 else d >= 0)
        if len(idx):
            out[idx] = BufferLadder(g[idx], sign=sign, quad_segs=quad_segs, workers=workers).buffer(d[idx])
    return out


def spill_buffers(territories, distances_m, *, quad_segs: int = 16, workers: int | None = None,
                  core_ladder: BufferLadder | None = None, cores: bool = True,
                  reaches: bool = True) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The cores ``T ⊖ L`` and reaches ``T ⊕ L`` of territories T (:func:`spill_territory`)
    at every distance L (m), through :class:`BufferLadder`: two arrays in zone order
    ``z = l · k + i`` (distance l, territory i); None for one not asked for.
    ``core_ladder``: an inward ladder of the same territories to reuse (its rungs then
    serve :func:`core_distance_for_share` as well)."""
    T = np.asarray(territories, dtype=object)
    dist = [abs(float(L)) for L in np.atleast_1d(np.asarray(distances_m, dtype=float))]
    out = []
    for want, sign, given in ((cores, -1, core_ladder), (reaches, 1, None)):
        if not want:
            out.append(None)
            continue
        lad = given if given is not None else BufferLadder(T, sign=sign, quad_segs=quad_segs, workers=workers)
        if lad.sign != sign or len(lad.geoms) != len(T):
            raise ValueError("core_ladder must be an inward ladder of the same territories")
        out.append(np.concatenate([lad.buffer(sign * L) for L in dist]) if dist else np.empty(0, dtype=object))
    return out[0], out[1]
