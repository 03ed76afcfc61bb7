"""Local improvement: boundary-block moves that keep contiguity and floors."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse import csgraph

from subdivide.make.regionalize.features import _sum_by, ssd_of
from subdivide.make.regionalize.graph import _Graph
from subdivide.make.regionalize.tree import (
    _spanning_intervals,
    _subgraph,
    _tree_weights,
)


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
    """True when the node's group stays connected without it (and is not left empty):
    first the cheap test (its neighbours in the group are connected among themselves),
    else a search over the group."""
    nb = adj.indices[adj.indptr[node]:adj.indptr[node + 1]]
    nb = nb[labels[nb] == labels[node]]
    if len(nb) <= 1:
        return len(nb) == 1
    n_comp, _ = csgraph.connected_components(adj[nb][:, nb], directed=False)
    if n_comp == 1:
        return True
    rest = np.flatnonzero(labels == labels[node])
    rest = rest[rest != node]
    n_comp, _ = csgraph.connected_components(adj[rest][:, rest], directed=False)
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


def recombine(g: _Graph, labels: np.ndarray, k: int, floor_m2: float, value, partial, rng: np.random.Generator,
              *, max_evals: int, max_cuts: int = 24) -> tuple[np.ndarray, float, int]:
    """Merge-and-split moves (ReCom-like): for each pair of adjacent sub-areas, in seeded
    order, their union is spanned by a seeded random tree and re-cut at every tree edge
    that keeps both halves non-empty and above the floor (the ``max_cuts`` most
    balanced by SSD when there are more); the best cut is kept when it raises
    ``value(labels)``. Moves whole chains of blocks that single-block moves cannot
    cross. ``max_evals`` bounds the evaluations (a count: the result does not depend on
    the machine). ``value(labels)`` scores node labels; ``partial(labels, free)`` gives a
    faster scorer of labellings that differ only where ``free`` is True. Returns (labels,
    value, evaluations used)."""
    labels = labels.copy()
    cur = value(labels)
    used = 0
    up = sparse.triu(g.adj, k=1).tocoo()
    a_, b_ = labels[up.row], labels[up.col]
    diff = a_ != b_
    pairs = np.unique(np.column_stack([np.minimum(a_, b_)[diff], np.maximum(a_, b_)[diff]]), axis=0)
    for a, b in pairs[rng.permutation(len(pairs))]:
        if used >= max_evals:
            break
        la, lb = labels[up.row], labels[up.col]
        if not np.any(((la == a) & (lb == b)) | ((la == b) & (lb == a))):
            continue                                           # no longer adjacent
        nodes = np.flatnonzero((labels == a) | (labels == b))
        h = _subgraph(g, nodes)
        tree = _spanning_intervals(h, _tree_weights(h, rng, 1.0, border=True))
        if tree is None:
            continue
        order, tin, size = tree
        FA, FN = (_subtree_sums(x, order, tin, size) for x in (h.area, h.count))
        cand = order[1:]                                       # every non-root node, in preorder
        ok = (FA[cand] >= floor_m2) & (FA[0] - FA[cand] >= floor_m2) & (FN[cand] > 0.5) & (FN[0] - FN[cand] > 0.5)
        cand = cand[ok]
        if len(cand) > max_cuts:
            FW, FS, FQ = (_subtree_sums(x, order, tin, size) for x in (h.W, h.S, h.Q))
            gain = -(ssd_of(FW[cand], FS[cand], FQ[cand])
                     + ssd_of(FW[0] - FW[cand], FS[0] - FS[cand], FQ[0] - FQ[cand]))
            cand = cand[np.argsort(-gain, kind="stable")[:max_cuts]]
        best_v, best_lab = cur, None
        cand = cand[: max(0, max_evals - used)]
        score = partial(labels, (labels == a) | (labels == b)) if len(cand) else None
        for v in cand:
            lab = labels.copy()
            inside = np.zeros(h.m, dtype=bool)
            inside[order[tin[v]:tin[v] + size[v]]] = True
            lab[nodes] = np.where(inside, b, a)
            val = score(lab)
            used += 1
            if val > best_v + 1e-12:
                best_v, best_lab = val, lab
        if best_lab is not None:
            labels, cur = best_lab, best_v
    return labels, cur, used


def _subtree_sums(x: np.ndarray, order: np.ndarray, tin: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Per node, the sum of ``x`` over its subtree (prefix sums along the preorder)."""
    c = np.concatenate([np.zeros((1,) + x.shape[1:]), np.cumsum(x[order], axis=0)])
    return c[tin + size] - c[tin]
