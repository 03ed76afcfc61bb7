"""Exact optimum of the planner's alert objective on tiny municipalities (≤ 24 graph nodes),
for tests and benchmarks: how far is the regionalizer's answer from the best partition?

The regionalizer maximises the expected share of residents spared an alert
(:mod:`subdivide.make.regionalize.objective`) over partitions of its block graph (islands
contracted onto the mainland) into k connected sub-areas, each at least ``min_area_km2``.
This module solves the same problem exactly, by branch and bound over connected
partitions, with the objective rewritten on bit masks:

- an event s is sent to the sub-areas its footprint touches (``send_share`` = 0, the
  default), so the residents it reaches depend only on U_s, the union of those
  sub-areas: recipients(s) = Σ_L Σ_p w_p [some block of U_s lies within L of point p];
- with R_p the set of blocks within L of point p, that is Σ_R h_R [R ∩ U_s ≠ ∅], and
  Σ_{R ⊆ V} h_R for every node set V is one subset-sum (zeta) transform of a 2^m table:
  evaluating a partition costs one table look-up per event.

Search: the sub-area holding the lowest unassigned node is grown as a connected set
(each connected set generated once: frontier/forbidden enumeration, vectorised over
all states of a wave), then the next sub-area, and so on. A partial partition is
bounded below by giving every unassigned node a sub-area of its own: refining a plan
never alerts anyone more (``tests/test_objective.py``), so this bound is valid, and it
grows with the set being grown, so a pruned set prunes all its supersets. The last
sub-area is what is left, which must be connected.

The answer is exact for the model: the same alert model, graph, floor and k as the
regionalizer's. :func:`brute_force` (every labelling, ≤ 10 nodes) checks the search.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: largest graph solved (the subset-sum table holds 2^m float64: 128 MiB at 24)
MAX_NODES = 24
#: partial partitions processed together (memory: chunk × events × 8 bytes)
CHUNK = 20_000


@dataclass
class ExactInstance:
    """A fitted regionalizer's problem in bit masks over its graph nodes."""

    m: int
    nbr: np.ndarray            # (m,) int64 neighbour mask per node
    area: np.ndarray           # (m,) m² per node (islands included)
    tmask: np.ndarray          # (S,) int64 nodes each event touches
    weight: np.ndarray         # (S,) event weights
    zeta: np.ndarray           # (2^m,) Σ h_R over R ⊆ V
    total: float               # Σ h_R
    denom: float               # number of spill distances × population
    node_of_block: np.ndarray  # block → internal node index
    order: np.ndarray          # internal node index → the regionalizer's graph node

    @classmethod
    def from_regionalizer(cls, reg) -> ExactInstance:
        """From a fitted :class:`~subdivide.make.regionalize.Regionalizer` (``.fit()``)
        with the alert objective and ``send_share`` = 0."""
        model = reg.alert_model_
        if model is None or model.send_share > 0:
            raise ValueError("the exact solver handles the alert objective with send_share = 0")
        g = reg.graph_
        m = g.m
        if m > MAX_NODES:
            raise ValueError(f"{m} graph nodes: the exact solver stops at {MAX_NODES}")
        order = _peeling_order(g.adj)                 # internal index i ↔ graph node order[i]
        inv = np.empty(m, dtype=np.int64)
        inv[order] = np.arange(m)
        nob = inv[np.asarray(g.node_of_block, dtype=np.int64)]
        bit = np.left_shift(np.int64(1), nob)
        coo = g.adj.tocoo()
        nbr = np.zeros(m, dtype=np.int64)
        np.bitwise_or.at(nbr, inv[coo.row], np.left_shift(np.int64(1), inv[coo.col]))
        t = model.footprints.touched.tocoo()
        tmask = np.zeros(t.shape[0], dtype=np.int64)
        np.bitwise_or.at(tmask, t.row, bit[t.col])
        w = np.asarray(model.footprints.weights, dtype=float)
        keep = w > 0
        # reach: block b within L_l of point p for every level l ≥ its level
        r = model.reach
        nl = len(model.band_km)
        blk = np.repeat(np.arange(model.n_blocks), np.diff(r.indptr))
        masks = np.zeros((nl, model.n_points), dtype=np.int64)
        for lev in range(nl):
            sel = r.data <= lev
            np.bitwise_or.at(masks[lev], r.indices[sel], bit[blk[sel]])
        um, inv = np.unique(masks.ravel(), return_inverse=True)
        h = np.bincount(inv.ravel(), weights=np.tile(model.point_w, nl), minlength=len(um))
        zeta = np.zeros(1 << m)
        np.add.at(zeta, um, h)
        for i in range(m):                      # subset sums, one bit at a time
            v = zeta.reshape(-1, 2, 1 << i)
            v[:, 1, :] += v[:, 0, :]
        return cls(m, nbr, np.asarray(g.area, dtype=float)[order], tmask[keep], w[keep], zeta, float(h.sum()),
                   nl * float(model.population), nob, order)

    # ------------------------------------------------------------------ values
    @property
    def full(self) -> int:
        return (1 << self.m) - 1

    def cost(self, U: np.ndarray) -> np.ndarray:
        """Expected person-alerts summed over the L band, for target unions U (…, S)."""
        return (self.total - self.zeta[self.full & ~U]) @ self.weight

    def value_of_parts(self, parts) -> float:
        """Expected spared share (the regionalizer's objective) of a partition given as
        node masks."""
        U = np.zeros(len(self.tmask), dtype=np.int64)
        for p in parts:
            U |= np.where((self.tmask & p) != 0, np.int64(p), 0)
        return float(1.0 - self.cost(U) / self.denom)

    def value_of_labels(self, node_labels: np.ndarray) -> float:
        """Expected spared share of labels of the regionalizer's graph nodes."""
        lab = np.asarray(node_labels)[self.order]
        return self.value_of_parts([_mask(np.flatnonzero(lab == a)) for a in np.unique(lab)])

    def node_labels(self, block_labels: np.ndarray) -> np.ndarray:
        """Block labels (every island with its anchor) → labels of the graph nodes."""
        out = np.full(self.m, -1, dtype=np.int64)
        out[self.order[self.node_of_block]] = np.asarray(block_labels)
        return out


@dataclass
class ExactResult:
    value: float                 # best expected spared share (the incumbent's if nothing beat it)
    labels: np.ndarray | None    # graph-node labels of a partition beating the incumbent, else None
    states: int                  # search states visited


def _peeling_order(adj) -> np.ndarray:
    """Nodes by repeatedly removing one of least degree among those left (lowest index
    on ties). The search grows the sub-area of the lowest unassigned node first; a
    low-degree node lies in far fewer connected sets, so the search is several times
    smaller."""
    m = adj.shape[0]
    deg = np.diff(adj.indptr).astype(float)
    alive = np.ones(m, bool)
    out = []
    for _ in range(m):
        i = int(np.flatnonzero(alive)[np.argmin(deg[alive])])
        out.append(i)
        alive[i] = False
        deg[adj.indices[adj.indptr[i]:adj.indptr[i + 1]]] -= 1
    return np.asarray(out, dtype=np.int64)


def _mask(nodes) -> int:
    out = 0
    for i in nodes:
        out |= 1 << int(i)
    return out


class _Bits:
    """Vectorised set operations on int64 node masks (byte-wise look-up tables)."""

    def __init__(self, inst: ExactInstance):
        self.m = inst.m
        self.nb = (inst.m + 7) // 8
        byte = np.arange(256)
        self.nbr_t, self.area_t = [], []
        for c in range(self.nb):
            nt = np.zeros(256, dtype=np.int64)
            at = np.zeros(256)
            for i in range(8):
                j = 8 * c + i
                if j >= inst.m:
                    break
                on = (byte >> i) & 1 == 1
                nt[on] |= inst.nbr[j]
                at[on] += inst.area[j]
            self.nbr_t.append(nt)
            self.area_t.append(at)

    def nbr(self, M):
        out = self.nbr_t[0][M & 255]
        for c in range(1, self.nb):
            out = out | self.nbr_t[c][(M >> (8 * c)) & 255]
        return out

    def area(self, M):
        out = self.area_t[0][M & 255]
        for c in range(1, self.nb):
            out = out + self.area_t[c][(M >> (8 * c)) & 255]
        return out

    def flood(self, seed, M):
        """The connected component of ``M`` holding ``seed`` (one node per row)."""
        C = seed
        while True:
            C2 = C | (self.nbr(C) & M)
            if np.array_equal(C2, C):
                return C
            C = C2

    def n_components_at_most(self, M, q: int):
        """True where ``M`` has at most ``q`` connected components."""
        M = M.copy()
        for _ in range(q):
            M = M & ~self.flood(M & -M, M)
        return M == 0


def solve_exact(inst: ExactInstance, k: int, *, min_area_m2: float = 0.0, incumbent: float | None = None,
                tol: float = 1e-9) -> ExactResult:
    """The best partition of the node graph into ``k`` connected parts, each of at least
    ``min_area_m2``. ``incumbent``: a known spared share (e.g. the regionalizer's); only
    partitions better by more than ``tol`` are searched for, which is much faster.
    Returns the optimum (or the incumbent when nothing beats it)."""
    if not 1 <= k <= inst.m:
        raise ValueError(f"k={k} with {inst.m} nodes")
    bits = _Bits(inst)
    T, full = inst.tmask, inst.full
    floor = float(min_area_m2) - 1e-6
    eps = tol * inst.denom
    best = {"cost": np.inf if incumbent is None else (1.0 - incumbent) * inst.denom,
            "parts": None, "states": 0}
    if k == 1:
        c = float(inst.cost(np.where(T != 0, np.int64(full), 0)))
        if inst.area.sum() >= floor and c < best["cost"] - eps:
            best.update(cost=c, parts=np.asarray([[full]], dtype=np.int64))
        return _result(inst, best, incumbent)

    def level(Ufix, rem, parts, left):
        low = rem & -rem
        todo = [(low, bits.nbr(low) & rem, np.zeros_like(rem), np.arange(len(rem)))]
        pend = []
        while todo:
            P, F, X, own = todo.pop()
            if len(P) > CHUNK:
                todo += [tuple(a[i:i + CHUNK] for a in (P, F, X, own)) for i in range(0, len(P), CHUNK)][::-1]
                continue
            best["states"] += len(P)
            rm = rem[own]
            r2 = rm & ~P
            a2 = bits.area(r2)
            ok = (np.bitwise_count(r2) >= left - 1) & (a2 >= floor * (left - 1))
            hit = (T[None, :] & P[:, None]) != 0
            Uo = Ufix[own] | np.where(hit, P[:, None], 0)
            lb = inst.cost(Uo | (T[None, :] & r2[:, None]))
            ok &= lb < best["cost"] - eps
            P, F, X, own, r2, Uo, rm = P[ok], F[ok], X[ok], own[ok], r2[ok], Uo[ok], rm[ok]
            d = np.flatnonzero(bits.area(P) >= floor)
            if left == 2:
                d = d[bits.flood(r2[d] & -r2[d], r2[d]) == r2[d]]
                if len(d):
                    U = Uo[d] | np.where((T[None, :] & r2[d, None]) != 0, r2[d, None], 0)
                    c = inst.cost(U)
                    i = int(np.argmin(c))
                    if c[i] < best["cost"] - eps:
                        best.update(cost=float(c[i]),
                                    parts=np.column_stack([parts[own[d[i]]][None, :], [[P[d[i]], r2[d[i]]]]]))
            else:
                d = d[bits.n_components_at_most(r2[d], left - 1)]
                if len(d):
                    pend.append((Uo[d], r2[d], np.column_stack([parts[own[d]], P[d]])))
                    if sum(len(p[1]) for p in pend) >= CHUNK:
                        _flush(pend, left - 1)
            if len(P):
                todo.append(_expand(inst, P, F, X, own, rm))
        _flush(pend, left - 1)

    def _flush(pend, left):
        while pend:
            U, r, p = pend.pop(0)
            order = np.argsort(inst.cost(U | (T[None, :] & r[:, None])), kind="stable")   # promising first
            for a in range(0, len(order), CHUNK):
                sel = order[a:a + CHUNK]
                level(U[sel], r[sel], p[sel], left)

    level(np.zeros((1, len(T)), dtype=np.int64), np.asarray([full], dtype=np.int64),
          np.zeros((1, 0), dtype=np.int64), k)
    return _result(inst, best, incumbent)


def _expand(inst, P, F, X, own, rem):
    """One wave of the connected-set enumeration: each state adds one frontier node;
    lower frontier nodes are forbidden to it (so each set appears once)."""
    outP, outF, outX, outO = [], [], [], []
    for j in range(inst.m):
        b = np.int64(1) << np.int64(j)
        s = np.flatnonzero(F & b)
        if not len(s):
            continue
        Pj = P[s] | b
        Xj = X[s] | (F[s] & (b - 1))
        Fj = ((F[s] & ~((b << 1) - 1)) | (inst.nbr[j] & rem[s])) & ~Pj & ~Xj
        outP.append(Pj)
        outF.append(Fj)
        outX.append(Xj)
        outO.append(own[s])
    if not outP:
        e = np.zeros(0, dtype=np.int64)
        return e, e, e, e
    return np.concatenate(outP), np.concatenate(outF), np.concatenate(outX), np.concatenate(outO)


def _result(inst, best, incumbent) -> ExactResult:
    if best["parts"] is None:
        return ExactResult(float(incumbent) if incumbent is not None else np.nan, None, best["states"])
    lab = np.full(inst.m, -1, dtype=np.int64)
    for a, p in enumerate(best["parts"].ravel()):
        lab[inst.order[[i for i in range(inst.m) if (int(p) >> i) & 1]]] = a
    return ExactResult(float(1.0 - best["cost"] / inst.denom), lab, best["states"])


def brute_force(inst: ExactInstance, k: int, *, min_area_m2: float = 0.0) -> float:
    """Every labelling of the nodes into ``k`` labels (≤ 10 nodes), vectorised: the best
    spared share of a partition into ``k`` connected parts meeting the floor. Checks
    :func:`solve_exact` with none of its search."""
    if inst.m > 10:
        raise ValueError("brute force is for ≤ 10 nodes")
    bits = _Bits(inst)
    lab = np.indices((k,) * (inst.m - 1)).reshape(inst.m - 1, -1).T          # node 0 has label 0
    lab = np.column_stack([np.zeros(len(lab), dtype=np.int64), lab])
    node = np.left_shift(np.int64(1), np.arange(inst.m, dtype=np.int64))
    parts = np.stack([np.where(lab == a, node, 0).sum(axis=1) for a in range(k)], axis=1)   # (N, k)
    ok = np.all(parts != 0, axis=1)
    flat = parts[ok].ravel()
    conn = (bits.flood(flat & -flat, flat) == flat).reshape(-1, k).all(axis=1)
    big = (bits.area(flat) >= min_area_m2 - 1e-6).reshape(-1, k).all(axis=1)
    parts = parts[ok][conn & big]
    if not len(parts):
        return float("nan")
    T = inst.tmask
    U = np.zeros((len(parts), len(T)), dtype=np.int64)
    for a in range(k):
        p = parts[:, a:a + 1]
        U |= np.where((T[None, :] & p) != 0, p, 0)
    return float(1.0 - inst.cost(U).min() / inst.denom)
