"""Local improvement: boundary-block moves that keep contiguity and floors."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse import csgraph

from subdivide.make.regionalize.features import _sum_by, ssd_of
from subdivide.make.regionalize.graph import _Graph


def _ring_ok(adj: sparse.csr_matrix, labels: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """For each candidate node, True when its neighbours in its own group are connected
    among themselves (then removing it keeps the group connected). Vectorised."""
    rows = adj[cand]
    c_rep = np.repeat(np.arange(len(cand)), np.diff(rows.indptr))
    nb = rows.indices
    same = labels[nb] == labels[cand][c_rep]
    c_rep, nb = c_rep[same], nb[same]
    n_ring = np.bincount(c_rep, minlength=len(cand))
    if len(nb) == 0:
        return n_ring > 0
    # ring nodes as pairs (candidate, neighbour); edges between pairs of the same candidate
    m = adj.shape[0]
    code = c_rep.astype(np.int64) * m + nb
    order = np.argsort(code, kind="stable")
    code_s = code[order]
    rows2 = adj[nb]
    p_rep = np.repeat(np.arange(len(nb)), np.diff(rows2.indptr))
    nb2 = rows2.indices
    look = c_rep[p_rep].astype(np.int64) * m + nb2
    pos = np.searchsorted(code_s, look)
    pos = np.minimum(pos, len(code_s) - 1)
    hit = code_s[pos] == look
    a, b = p_rep[hit], order[pos[hit]]
    ring = sparse.coo_matrix((np.ones(len(a)), (a, b)), shape=(len(nb), len(nb)))
    _, lab = csgraph.connected_components(ring, directed=False)
    n_comp = pd.Series(lab).groupby(c_rep).nunique().reindex(range(len(cand)), fill_value=0).to_numpy()
    return (n_ring > 0) & (n_comp == 1)


def _improve(g: _Graph, labels: np.ndarray, k: int, floor_m2: float, *, max_rounds: int = 400,
             deadline: float | None = None) -> np.ndarray:
    """Boundary moves that reduce SSD, keep contiguity and the area floor."""
    labels = labels.copy()
    adj = g.adj
    coo = adj.tocoo()
    u_all, v_all = coo.row, coo.col
    tol = 1e-9 * max(1.0, float(np.sum(g.Q)))

    def stats(lab):
        A = np.bincount(lab, weights=g.area, minlength=k)
        N = np.bincount(lab, weights=g.count, minlength=k)
        return _sum_by(lab, g.W, k), _sum_by(lab, g.S, k), _sum_by(lab, g.Q, k), A, N

    W, Sg, Q, A, N = stats(labels)
    total = float(np.sum(ssd_of(W, Sg, Q)))
    single = False
    for _ in range(max_rounds):
        if deadline is not None and time.perf_counter() > deadline:
            break
        diff = labels[u_all] != labels[v_all]
        if not diff.any():
            break
        pairs = np.unique(np.column_stack([u_all[diff], labels[v_all[diff]]]), axis=0)
        i, b = pairs[:, 0], pairs[:, 1]
        a = labels[i]
        wi, si, qi, ai = g.W[i], g.S[i], g.Q[i], g.area[i]
        gain = (ssd_of(W[a], Sg[a], Q[a]) + ssd_of(W[b], Sg[b], Q[b])
                - ssd_of(W[a] - wi, Sg[a] - si, Q[a] - qi) - ssd_of(W[b] + wi, Sg[b] + si, Q[b] + qi))
        ok = (gain > tol) & (N[a] - g.count[i] > 0.5) & (A[a] - ai >= floor_m2)
        if not ok.any():
            break
        i, b, a, gain = i[ok], b[ok], a[ok], gain[ok]
        uniq = np.unique(i)
        ring = _ring_ok(adj, labels, uniq)
        keep = ring[np.searchsorted(uniq, i)]
        if not keep.any():
            break
        i, b, a, gain = i[keep], b[keep], a[keep], gain[keep]
        order = np.lexsort((b, i, -gain))
        locked = np.zeros(g.m, bool)
        budget = A - floor_m2
        moved_from = np.zeros(k, bool)
        acc_i, acc_b = [], []
        for o in order:
            node, src = int(i[o]), int(a[o])
            if locked[node] or budget[src] < g.area[node]:
                continue
            if single and moved_from[src]:
                continue
            acc_i.append(node)
            acc_b.append(int(b[o]))
            budget[src] -= g.area[node]
            moved_from[src] = True
            locked[node] = True
            locked[adj.indices[adj.indptr[node]:adj.indptr[node + 1]]] = True
        new = labels.copy()
        new[np.asarray(acc_i)] = np.asarray(acc_b)
        W2, S2, Q2, A2, N2 = stats(new)
        new_total = float(np.sum(ssd_of(W2, S2, Q2)))
        if new_total < total - tol:
            labels, W, Sg, Q, A, N, total = new, W2, S2, Q2, A2, N2, new_total
            single = False
        elif not single:
            single = True                          # interacting moves: retry one per group
        else:
            break
    return labels



def _node_stays_connected(adj: sparse.csr_matrix, labels: np.ndarray, node: int) -> bool:
    """True when the node's neighbours in its own group are connected among themselves."""
    nb = adj.indices[adj.indptr[node]:adj.indptr[node + 1]]
    nb = nb[labels[nb] == labels[node]]
    if len(nb) <= 1:
        return len(nb) == 1
    n_comp, _ = csgraph.connected_components(adj[nb][:, nb], directed=False)
    return n_comp == 1


def improve_alerts(state, g: _Graph, labels: np.ndarray, k: int, floor_m2: float, node_blocks: list,
                   rng: np.random.Generator, *, max_rounds: int = 4, max_moves: int | None = None,
                   deadline: float | None = None) -> np.ndarray:
    """First-improvement local search on the alert objective (``state``, an
    :class:`~subdivide.make.regionalize.objective.AlertState` of the same labelling at
    block level): boundary nodes in seeded random order, each tried in each neighbouring
    sub-area; a move is kept when it raises the expected spared share and keeps the
    source contiguous, non-empty and above the area floor. ``max_moves`` bounds the
    moves evaluated (a count, not a time: the result does not depend on the machine)."""
    budget = np.inf if max_moves is None else int(max_moves)
    labels = labels.copy()
    adj = g.adj
    coo = sparse.triu(adj, k=1).tocoo()
    area = np.bincount(labels, weights=g.area, minlength=k)
    count = np.bincount(labels, weights=g.count, minlength=k)
    cur = state.value()
    for _ in range(max_rounds):
        u, v = np.r_[coo.row, coo.col], np.r_[coo.col, coo.row]
        diff = labels[u] != labels[v]
        pairs = np.unique(np.column_stack([u[diff], labels[v[diff]]]), axis=0)
        improved = False
        for i, b in pairs[rng.permutation(len(pairs))]:
            if deadline is not None and time.perf_counter() > deadline:
                return labels
            a = labels[i]
            if a == b or count[a] - g.count[i] < 0.5 or area[a] - g.area[i] < floor_m2:
                continue
            if budget <= 0:
                return labels
            budget -= 1
            state.move(node_blocks[i], b)
            val = state.value()
            if val > cur + 1e-12 and _node_stays_connected(adj, labels, i) and _touches(adj, labels, i, b):
                labels[i] = b
                area[a] -= g.area[i]
                area[b] += g.area[i]
                count[a] -= g.count[i]
                count[b] += g.count[i]
                cur, improved = val, True
            else:
                state.move(node_blocks[i], a)
        if not improved:
            break
    return labels


def _touches(adj: sparse.csr_matrix, labels: np.ndarray, node: int, group: int) -> bool:
    nb = adj.indices[adj.indptr[node]:adj.indptr[node + 1]]
    return bool(np.any(labels[nb] == group))
