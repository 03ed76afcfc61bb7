"""The planner's objective: residents spared an alert that is not theirs.

For an event *s* with footprint H_s the municipality sends the alert to every sub-area
H_s touches (or, with ``send_share`` = x > 0, to every sub-area holding ≥ x of the
footprint's residents, and always the one holding most). Everyone in those sub-areas
receives it, and so does everyone within L of them (spill; the reach ``A ⊕ L`` of
:mod:`subdivide.model.reach`, tested on population points, :mod:`subdivide.model.scenarios`).

- recipients(s, L): residents reached; over-alert = recipients − residents in H_s;
- spared(s, L) = municipal population − recipients: the residents whole-municipality
  delivery would have warned for nothing and this plan does not;
- missed(s, L): residents of H_s not reached (0 whenever every touched sub-area is sent).

The objective is the expected spared share Σ_s w_s spared(s, L) / population, averaged
over the band of L; the worst case over L is reported alongside.

Evaluation is incremental: per L, ``count[a, p]`` = blocks of sub-area a within L of
population point p, a bit mask per point (which sub-areas reach it) and the population
per mask (≤ 2¹⁴ masks: k ≤ 14). An event's targets are a mask too, so recipients are
Σ over the masks that share a bit with it. Moving a block updates only the points
within L of it and the events touching it.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import shapely
from scipy import sparse

from subdivide.model.scenarios import (
    DEFAULT_ALERT_BAND_KM,
    Footprints,
    PopulationPoints,
    Scenarios,
    footprint_matrix,
    population_points,
    reach_pairs,
)

#: population grid spacing (m) of the reach test
DEFAULT_SPACING_M = 400.0
#: block outlines are simplified by this much (m, topology kept) before areal weighting
SIMPLIFY_M = 10.0
#: (block, point, L) slots built or counted at a time (bounds the transient memory)
SLOT_CHUNK = 1 << 20


@dataclass(frozen=True)
class AlertScore:
    """Figures of one plan over the L band (arrays are per L, in band order)."""

    band_km: tuple[float, ...]
    spared_share: np.ndarray        # expected spared share per L
    recipients: np.ndarray          # expected person-alerts per event per L
    over_alert: np.ndarray          # expected recipients − endangered per L
    missed: np.ndarray              # expected endangered residents not reached per L
    population: float

    @property
    def mean(self) -> float:
        return float(np.mean(self.spared_share))

    @property
    def worst(self) -> float:
        return float(np.min(self.spared_share))


@dataclass(frozen=True)
class _Segments:
    """A sparse relation as CSR arrays: row i → ``indices[indptr[i]:indptr[i+1]]``."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray

    @classmethod
    def of(cls, m) -> _Segments:
        m = sparse.csr_matrix(m)
        m.sort_indices()
        return cls(m.indptr, m.indices, m.data)

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.indptr[i], self.indptr[i + 1]
        return self.indices[a:b], self.data[a:b]


@dataclass(frozen=True)
class AlertModel:
    """Everything about a municipality that does not depend on the plan: built once."""

    band_km: tuple[float, ...]
    n_blocks: int
    reach: _Segments                       # block → (point, band level): point within L_l for l ≥ level
    point_w: np.ndarray                    # residents per population point
    points: PopulationPoints
    footprints: Footprints
    send_share: float
    population: float
    events_of_block: tuple = ()            # (_Segments touched, _Segments endangered), block → events

    @classmethod
    def build(cls, blocks, scenarios: Scenarios, *, band_km=DEFAULT_ALERT_BAND_KM, send_share: float = 0.0,
              spacing_m: float = DEFAULT_SPACING_M) -> AlertModel:
        band = tuple(sorted({float(x) for x in band_km}))
        simple = blocks.set_geometry(shapely.simplify(blocks.geometry.values, SIMPLIFY_M, preserve_topology=True))
        pts = population_points(simple, spacing_m, simplify_m=0.0)
        bi, pi, d = reach_pairs(simple, pts, max(band) * 1000.0, simplify_m=min(band) * 1000.0 / 40)
        # pairs come sorted by block, then point: the CSR rows directly (no sparse copy);
        # the level (first L of the band reaching the point) fits a byte
        level = np.searchsorted(np.asarray(band) * 1000.0, d, side="left").astype(
            np.int8 if len(band) < 127 else np.int32)
        indptr = np.r_[0, np.cumsum(np.bincount(bi, minlength=len(blocks)))]
        reach = _Segments(indptr, pi.astype(np.int32, copy=False), level)
        fp = footprint_matrix(scenarios, simple, simplify_m=0.0)
        events = (_Segments.of(fp.touched.T), _Segments.of(fp.endangered.T))
        return cls(band, len(blocks), reach, pts.weight, pts, fp, float(send_share), float(pts.weight.sum()), events)

    @property
    def n_points(self) -> int:
        return len(self.point_w)

    def state(self, labels: np.ndarray, k: int) -> AlertState:
        return AlertState(self, np.asarray(labels, dtype=np.int64), int(k))

    def value(self, labels: np.ndarray, k: int) -> float:
        """Expected spared share of a block labelling 0..k-1, from scratch: the same
        number as ``self.state(labels, k).value()`` (same sums in the same order) at a
        fraction of the cost (no per-sub-area counts are built)."""
        labels = np.asarray(labels, dtype=np.int64)
        bits = np.left_shift(np.int64(1), labels)
        mask = np.zeros(self.n_points, dtype=np.int64)
        popm = np.empty((len(self.band_km), 1 << int(k)))
        for lev, (blk, starts, pts, _) in enumerate(self._first_reached):
            if len(blk):
                mask[pts] |= np.bitwise_or.reduceat(bits[blk], starts)
            popm[lev] = np.bincount(mask, weights=self.point_w, minlength=1 << int(k))
        touch, share = _event_sums(self, labels, int(k), share=self.send_share > 0)
        tmask = _targets(self, share, touch).astype(np.int64) @ (1 << np.arange(int(k), dtype=np.int64))
        return _spared(self, popm, tmask)

    def partial(self, labels: np.ndarray, free: np.ndarray, k: int) -> _Partial:
        """An evaluator of labellings that differ from ``labels`` only on the blocks
        where ``free`` is True: the fixed blocks' part is summed once, each evaluation
        touches only the free blocks' pairs (same value as :meth:`value`)."""
        return _Partial(self, np.asarray(labels, dtype=np.int64), np.asarray(free, dtype=bool), int(k))

    # ------------------------------------------------------------------ cached layouts
    @cached_property
    def _first_reached(self) -> tuple:
        """Per L: the (block, point) pairs first within reach at that L, sorted by point,
        as (blocks, segment starts, points, point of each pair)."""
        r = self.reach
        blk = np.repeat(np.arange(self.n_blocks, dtype=np.int32), np.diff(r.indptr))
        out = []
        for lev in range(len(self.band_km)):
            sel = np.flatnonzero(r.data == lev)
            order = sel[np.argsort(r.indices[sel], kind="stable")]
            pe = r.indices[order]
            starts = _segments(pe)
            out.append((blk[order], starts, pe[starts], pe))
        return tuple(out)

    @cached_property
    def _slot_layout(self) -> tuple[np.ndarray, np.ndarray]:
        """Every (block, point) pair once per L it counts at ("slots"), block by block, as
        ``(ptr, lp)``: block b's slots are ``lp[ptr[b]:ptr[b + 1]]``, each the flat (L index,
        point) number ``L · n_points + point`` (a pair at level l counts at l, l+1, … in
        turn). Only this is kept — 4 bytes a slot, built in chunks (issue 19: the slots of
        50,000 blocks are ~35 million; the point, the L index and the weight follow from
        ``lp`` where a move needs them)."""
        r, nl, P = self.reach, len(self.band_km), self.n_points
        rep = (nl - r.data).astype(np.int64)                    # levels each pair counts at
        ends = np.cumsum(rep)
        ptr = np.r_[0, ends][r.indptr]
        flat = np.int32 if nl * P < 2 ** 31 else np.int64
        lp = np.empty(int(ends[-1]) if len(ends) else 0, dtype=flat)
        step = max(1, SLOT_CHUNK // max(nl, 1))                # pairs a:b → at most SLOT_CHUNK slots s0:s1
        for a in range(0, len(rep), step):
            b = min(a + step, len(rep))
            s0 = int(ends[a - 1]) if a else 0
            s1 = int(ends[b - 1])
            pair = np.repeat(np.arange(a, b), rep[a:b])
            within = np.arange(s0, s1) - np.repeat(ends[a:b] - rep[a:b], rep[a:b])
            lp[s0:s1] = (r.data[pair] + within) * P + r.indices[pair]
        return ptr, lp

    @property
    def _slot_lp(self) -> np.ndarray:
        """Flat (L, point) number of every slot (see :attr:`_slot_layout`)."""
        return self._slot_layout[1]

    @property
    def _slot_ptr(self) -> np.ndarray:
        return self._slot_layout[0]

    @cached_property
    def _event_pairs(self) -> tuple:
        """(event, block, value) triples of the touched and the endangered matrices."""
        out = []
        for m in (self.footprints.touched, self.footprints.endangered):
            c = sparse.csr_matrix(m)
            c.sort_indices()
            out.append((np.repeat(np.arange(c.shape[0]), np.diff(c.indptr)), c.indices.astype(np.int64), c.data))
        return tuple(out)

    def score(self, labels: np.ndarray, k: int) -> AlertScore:
        """Full (from scratch) evaluation of a block labelling 0..k-1."""
        return self.state(labels, k).score()

    def whole_municipality(self) -> AlertScore:
        """k = 1: everyone receives every alert (the baseline)."""
        return self.score(np.zeros(self.n_blocks, dtype=np.int64), 1)


def _segments(sorted_ids: np.ndarray) -> np.ndarray:
    """Start of each run of equal values in a sorted array."""
    if not len(sorted_ids):
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])


class _Partial:
    """Evaluates labellings that change only the ``free`` blocks of a fixed labelling
    (see :meth:`AlertModel.partial`)."""

    def __init__(self, model: AlertModel, labels: np.ndarray, free: np.ndarray, k: int):
        self.model, self.k = model, k
        bits = np.left_shift(np.int64(1), labels)
        mask = np.zeros(model.n_points, dtype=np.int64)
        self.base, self.levels = [], []
        for blk, _, _, pe in model._first_reached:
            on = free[blk]
            fb, fp = blk[~on], pe[~on]
            st = _segments(fp)
            if len(fb):
                mask[fp[st]] |= np.bitwise_or.reduceat(bits[fb], st)
            self.base.append(mask.copy())
            fb, fp = blk[on], pe[on]
            st = _segments(fp)
            self.levels.append((fb, st, fp[st]))
        S = model.footprints.weights.size
        self.events = []
        for ev, blk, val in model._event_pairs[:2 if model.send_share > 0 else 1]:
            on = free[blk]
            fixed = np.bincount(ev[~on] * k + labels[blk[~on]], weights=val[~on], minlength=S * k)
            self.events.append((fixed, ev[on], blk[on], val[on]))

    def value(self, labels: np.ndarray) -> float:
        m, k = self.model, self.k
        bits = np.left_shift(np.int64(1), np.asarray(labels, dtype=np.int64))
        fm = np.zeros(m.n_points, dtype=np.int64)
        popm = np.empty((len(m.band_km), 1 << k))
        for lev, ((blk, starts, pts), base) in enumerate(zip(self.levels, self.base)):
            if len(blk):
                fm[pts] |= np.bitwise_or.reduceat(bits[blk], starts)
            popm[lev] = np.bincount(base | fm, weights=m.point_w, minlength=1 << k)
        S = m.footprints.weights.size
        sums = [(fixed + np.bincount(ev * k + labels[blk], weights=val, minlength=S * k)).reshape(S, k)
                for fixed, ev, blk, val in self.events]
        tmask = _targets(m, sums[1] if len(sums) > 1 else None, sums[0]).astype(np.int64) @ (
            1 << np.arange(k, dtype=np.int64))
        return _spared(m, popm, tmask)


def _event_sums(model: AlertModel, labels: np.ndarray, k: int, *, share: bool = True
                ) -> tuple[np.ndarray, np.ndarray | None]:
    """Per event and sub-area: touched blocks and endangered residents, (S, k) each (the
    latter only with ``share``)."""
    S = model.footprints.weights.size
    out = []
    for ev, blk, val in model._event_pairs[:2 if share else 1]:
        out.append(np.bincount(ev * k + labels[blk], weights=val, minlength=S * k).reshape(S, k))
    return out[0], (out[1] if share else None)


def _recipients_by(popm: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Residents reached per L for each target mask: (len(band), len(targets)), from the
    population per reach mask ``popm`` (len(band), 2^k)."""
    nz = np.flatnonzero((popm > 1e-9).any(axis=0))
    hit = (nz[None, :] & targets[:, None]) != 0
    return popm[:, nz] @ hit.T


def _spared(model: AlertModel, popm: np.ndarray, tmask: np.ndarray) -> float:
    """Expected spared share, mean over the band; events sharing a target set once."""
    ut, inv = np.unique(tmask, return_inverse=True)
    wt = np.bincount(inv.ravel(), weights=model.footprints.weights, minlength=len(ut))
    return float(1.0 - np.mean(_recipients_by(popm, ut) @ wt) / model.population)


def _targets(model: AlertModel, share: np.ndarray, touch: np.ndarray) -> np.ndarray:
    """Sub-areas sent per event (S, k) bool, from per-sub-area endangered residents and
    touch counts of each event."""
    if model.send_share <= 0:
        return touch > 0.5
    tot = share.sum(axis=1, keepdims=True)
    top = share == share.max(axis=1, keepdims=True)
    some = share > 1e-9
    held = (share >= model.send_share * tot - 1e-9) & some
    return np.where(tot > 1e-9, held | (top & some), touch > 0.5)


class AlertState:
    """A labelling with incremental evaluation (``move``) of the alert objective."""

    def __init__(self, model: AlertModel, labels: np.ndarray, k: int):
        self.model, self.k, self.labels = model, k, labels.copy()
        nl, P = len(model.band_km), model.n_points
        self.bits = (1 << np.arange(k)).astype(np.int64)
        # every (block, point) pair counts for each L from its level on: (L, point) slots;
        # count[a, L, p]: blocks of sub-area a within L of point p (flat, a-major)
        self._nlp = nl * P
        ptr, lp = model._slot_layout
        per_block = np.diff(ptr)
        count = np.zeros(k * nl * P, dtype=np.int64)
        a, n = 0, len(labels)
        while a < n:                                  # blocks a:b, about SLOT_CHUNK slots at a time
            b = min(n, max(a + 1, int(np.searchsorted(ptr, ptr[a] + SLOT_CHUNK, side="right")) - 1))
            sub = np.repeat(labels[a:b], per_block[a:b]) * self._nlp + lp[ptr[a]:ptr[b]]
            count += np.bincount(sub, minlength=k * nl * P)
            a = b
        self.count = count.astype(np.int32)
        self.mask = np.einsum("klp,k->lp", (self.count.reshape(k, nl, P) > 0).astype(np.int64), self.bits)
        self.popm = np.zeros((nl, 1 << k))
        np.add.at(self.popm, (np.repeat(np.arange(nl), P), self.mask.ravel()), np.tile(model.point_w, nl))
        self.touch, self.share = _event_sums(model, labels, k)        # (S, k)
        self.tmask = _targets(model, self.share, self.touch).astype(np.int64) @ self.bits

    # ------------------------------------------------------------------ updates
    def move(self, blocks, dest: int) -> None:
        """Move town-blocks (indices) to sub-area ``dest``; only the population points
        within L of them and the events touching them are updated."""
        for b in np.atleast_1d(np.asarray(blocks, dtype=np.int64)):
            self._move_one(int(b), int(dest))

    def _move_one(self, block: int, dest: int) -> None:
        src = int(self.labels[block])
        if src == dest:
            return
        self.labels[block] = dest
        m = self.model
        a, b = m._slot_ptr[block], m._slot_ptr[block + 1]
        lp = m._slot_lp[a:b].astype(np.int64)         # flat (L, point) slots of the block
        c = self.count
        i_src = lp + src * self._nlp
        c[i_src] -= 1
        c[lp + dest * self._nlp] += 1
        bs, bd = self.bits[src], self.bits[dest]
        mask = self.mask.reshape(-1)
        old = mask[lp]
        new = (old & ~bs) | np.where(c[i_src] > 0, bs, 0) | bd
        ch = np.flatnonzero(new != old)
        if len(ch):
            lp, old, new = lp[ch], old[ch], new[ch]
            mask[lp] = new
            P = m.n_points
            w = m.point_w[lp % P]
            row = (lp // P) << self.k                 # L index × 2^k
            # one pass: the residents leave their old mask, then join the new one
            np.add.at(self.popm.reshape(-1), np.r_[row + old, row + new], np.r_[-w, w])
        self._move_events(block, src, dest)

    def _move_events(self, block: int, src: int, dest: int) -> None:
        touched, endangered = self.model.events_of_block
        ev, t = touched.row(block)
        if not len(ev):
            return
        self.touch[ev, src] -= t
        self.touch[ev, dest] += t
        ee, e = endangered.row(block)
        self.share[ee, src] -= e
        self.share[ee, dest] += e
        self.tmask[ev] = _targets(self.model, self.share[ev], self.touch[ev]).astype(np.int64) @ self.bits

    # ------------------------------------------------------------------ values
    def _recipients_by(self, targets: np.ndarray) -> np.ndarray:
        """Residents reached per L for each target mask: (len(band), len(targets))."""
        return _recipients_by(self.popm, targets)

    def recipients(self) -> np.ndarray:
        """Residents receiving each event's alert, per L: (len(band), S)."""
        return self._recipients_by(self.tmask)

    def value(self) -> float:
        """Expected spared share, mean over the band (the quantity the search raises).
        Events sharing a target set are evaluated once."""
        return _spared(self.model, self.popm, self.tmask)

    def score(self) -> AlertScore:
        m = self.model
        w, pop = m.footprints.weights, m.population
        endangered = np.asarray(m.footprints.endangered.sum(axis=1)).ravel()
        rec = self.recipients()
        missed = np.asarray([self._missed(mask, endangered) for mask in self.mask])
        return AlertScore(m.band_km, 1.0 - (rec @ w) / pop, rec @ w, (rec - endangered[None, :]) @ w, missed @ w, pop)

    def _missed(self, mask: np.ndarray, endangered: np.ndarray) -> np.ndarray:
        """Endangered residents not reached, per event: each block's endangered residents
        times the share of the block's population points no sent sub-area reaches."""
        m = self.model
        um, inv = np.unique(mask, return_inverse=True)
        p = m.points
        B = sparse.csr_matrix((p.member_weight, (p.member_block, inv.ravel()[p.member_point])),
                              shape=(m.n_blocks, len(um)))
        block_pop = np.asarray(B.sum(axis=1)).ravel()
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = sparse.diags(np.where(block_pop > 0, 1.0 / np.where(block_pop > 0, block_pop, 1.0), 0.0))
        per_mask = np.asarray((m.footprints.endangered @ scale @ B).todense())         # (S, M)
        hit = (um[None, :] & self.tmask[:, None]) != 0
        return np.maximum(endangered - (per_mask * hit).sum(axis=1), 0.0)
