"""Spanning trees of the block graph and greedy tree cuts (SKATER-like)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse import csgraph
from scipy.sparse.linalg import spsolve_triangular

from subdivide.make.regionalize.features import ssd_of
from subdivide.make.regionalize.graph import _Graph


def _tree_weights(g: _Graph, rng: np.random.Generator | None, sigma: float, *, border: bool = True,
                  keep: np.ndarray | None = None) -> sparse.csr_matrix:
    """Edge weights for the spanning tree: attribute distance (SKATER's tree when
    ``border`` is False), else longer for short borders, times log-normal noise (sigma 0 =
    none). ``keep``: node labels; only edges inside a label are kept (a forest per
    region). All weights > 0."""
    up = sparse.triu(g.adj, k=1).tocoo()
    u, v, b = up.row, up.col, up.data
    if keep is not None:
        same = keep[u] == keep[v]
        u, v, b = u[same], v[same], b[same]
    d = np.linalg.norm(g.mean[u] - g.mean[v], axis=1) if g.mean.shape[1] else np.zeros(len(u))
    maxb = np.zeros(g.m)
    np.maximum.at(maxb, u, b)
    np.maximum.at(maxb, v, b)
    rel = np.clip(b / np.sqrt(np.maximum(maxb[u] * maxb[v], 1e-12)), 0.0, 1.0)
    scale = float(np.median(d[d > 0])) if np.any(d > 0) else 1.0
    w = (d + 1e-3 * scale) * ((1.0 + 0.5 * (1.0 - rel)) if border else 1.0)
    if sigma > 0:
        w = w * np.exp(sigma * rng.standard_normal(len(w)))
    return sparse.coo_matrix((w + 1e-12, (u, v)), shape=(g.m, g.m)).tocsr()


@dataclass
class _Tree:
    """A rooted spanning forest in preorder: parent, tin, size, full subtree sums."""

    parent: np.ndarray            # -1 for roots
    tin: np.ndarray
    size: np.ndarray
    roots: np.ndarray
    FN: np.ndarray                # full-subtree sums: blocks, area, W, Q, S
    FA: np.ndarray
    FW: np.ndarray
    FQ: np.ndarray
    FS: np.ndarray


def _rooted_tree(g: _Graph, w: sparse.csr_matrix) -> _Tree:
    mst = csgraph.minimum_spanning_tree(w)
    sym = (mst + mst.T).tocsr()
    _, comp = csgraph.connected_components(sym, directed=False)
    # lowest node index of each component is its root (deterministic)
    roots = pd.Series(np.arange(g.m)).groupby(comp).min().to_numpy()
    parent = np.full(g.m, -1)
    pre = []
    for r in roots:
        order, pred = csgraph.depth_first_order(sym, int(r), directed=False, return_predecessors=True)
        parent[order[1:]] = pred[order[1:]]
        pre.append(order)
    pre = np.concatenate(pre)
    tin = np.empty(g.m, dtype=np.int64)
    tin[pre] = np.arange(g.m)
    # full subtree sums: (I − C) F = X with C[parent, child] = 1; triangular in preorder
    child = np.flatnonzero(parent >= 0)
    C = sparse.csr_matrix((np.ones(len(child)), (tin[parent[child]], tin[child])), shape=(g.m, g.m))
    M = (sparse.identity(g.m, format="csr") - C).tocsr()
    d = g.S.shape[1]
    X = np.column_stack([g.count, g.area, g.W, g.Q, g.S])
    F = spsolve_triangular(M, X[pre], lower=False)
    F = np.asarray(F)
    Fn = np.empty_like(F)
    Fn[pre] = F
    # subtree size in nodes (not blocks) from a second, cheap solve
    size = np.rint(spsolve_triangular(M, np.ones(g.m), lower=False)).astype(np.int64)
    size_n = np.empty_like(size)
    size_n[pre] = size
    return _Tree(parent, tin, size_n, roots, Fn[:, 0], Fn[:, 1], Fn[:, 2:2 + d], Fn[:, 2 + d:2 + 2 * d],
                 Fn[:, 2 + 2 * d:])


def _greedy_cuts(t: _Tree, k: int, floor_m2: float) -> np.ndarray | None:
    """Cut the forest into ``k`` trees greedily (largest SSD reduction first, area floor
    and capacity kept). Returns the node labels 0..k-1 or None if k is not reachable."""
    m = len(t.parent)
    tops = list(map(int, t.roots))
    if len(tops) > k:
        return None
    has_parent = t.parent >= 0
    cap = (lambda a: np.floor(a / floor_m2 + 1e-9)) if floor_m2 > 0 else (lambda a: np.full(np.shape(a), np.inf))
    while True:
        T = np.asarray(tops)
        tin_t, end_t = t.tin[T], t.tin[T] + t.size[T]
        # in_sub[v, j]: v lies in the full subtree of top j
        in_sub = (t.tin[:, None] >= tin_t[None, :]) & (t.tin[:, None] < end_t[None, :])
        # the part of a node is its deepest top
        depth_key = np.where(in_sub, tin_t[None, :], -1)
        part = np.argmax(depth_key, axis=1)
        # part sums: full sums minus the full sums of the tops directly below each part
        parent_top = np.full(len(T), -1)
        for i, ti in enumerate(T):
            if t.parent[ti] >= 0:
                parent_top[i] = part[t.parent[ti]]
        P = {f: getattr(t, f)[T].copy() for f in ("FN", "FA", "FW", "FQ", "FS")}
        for i in range(len(T)):
            j = parent_top[i]
            if j >= 0:
                for f in P:
                    P[f][j] -= getattr(t, f)[T[i]]
        if len(T) == k:
            return part
        # cut-aware subtree sums of every node: full sums minus the tops strictly inside
        # its subtree whose parent top is the node's own part (the first cut below it)
        tin_v = t.tin[:, None]
        end_v = (t.tin + t.size)[:, None]
        inside = (tin_t[None, :] > tin_v) & (tin_t[None, :] < end_v)       # top j strictly below v
        first = (inside & (parent_top[None, :] == part[:, None])).astype(float)
        Sub = {f: getattr(t, f) - first @ getattr(t, f)[T] for f in P}
        cand = has_parent & ~np.isin(np.arange(m), T)
        p = part
        Rest = {f: P[f][p] - Sub[f] for f in P}
        gain = (ssd_of(P["FW"][p], P["FS"][p], P["FQ"][p]) - ssd_of(Sub["FW"], Sub["FS"], Sub["FQ"])
                - ssd_of(Rest["FW"], Rest["FS"], Rest["FQ"]))
        SA, RA, PA = Sub["FA"], Rest["FA"], P["FA"]
        ok = cand & (SA >= floor_m2) & (RA >= floor_m2) & (Sub["FN"] > 0.5) & (Rest["FN"] > 0.5)
        if floor_m2 > 0:
            total_cap = float(np.sum(cap(PA)))
            after = total_cap - cap(PA[p]) + cap(SA) + cap(RA)
            ok &= after >= k
        if not ok.any():
            return None
        g = np.where(ok, gain, -np.inf)
        v = int(np.argmax(g))                      # first index on ties: deterministic
        tops.append(v)


def _splits(g: _Graph, labels: np.ndarray, k: int, floor_m2: float) -> list[np.ndarray]:
    """Refinements of a k-plan into k + 1 parts: each sub-area cut once along its own
    spanning tree (border-weighted, as restart 1's), at the cut that lowers the SSD most
    and keeps both halves above the floor; the new part is labelled k. One labelling per
    sub-area that can be cut, in sub-area order. (Refining never alerts anyone more, so
    each is at least as good as the k-plan under the alert objective.)"""
    t = _rooted_tree(g, _tree_weights(g, None, 0.0, border=True, keep=labels))
    roots = t.roots[np.argsort(t.tin[t.roots])]
    tin_r = t.tin[roots]
    part = np.searchsorted(tin_r, t.tin, side="right") - 1      # the tree (sub-area) of each node
    r = roots[part]
    sub = (t.FW, t.FS, t.FQ)
    rest = tuple(F[r] - F for F in sub)
    gain = ssd_of(t.FW[r], t.FS[r], t.FQ[r]) - ssd_of(*sub) - ssd_of(*rest)
    ok = ((t.parent >= 0) & (t.FA >= floor_m2) & (t.FA[r] - t.FA >= floor_m2)
          & (t.FN > 0.5) & (t.FN[r] - t.FN > 0.5))
    out = []
    for j in range(len(roots)):
        cand = np.flatnonzero(ok & (part == j))
        if not len(cand):
            continue
        v = int(cand[np.argmax(gain[cand])])                     # first index on ties
        lab = labels.copy()
        inside = (t.tin >= t.tin[v]) & (t.tin < t.tin[v] + t.size[v])
        lab[inside] = k
        out.append(lab)
    return out


def _merges(g: _Graph, labels: np.ndarray) -> list[np.ndarray]:
    """Coarsenings of a plan into one part fewer: every pair of adjacent sub-areas merged
    (the higher label into the lower, labels above it shifted down), in pair order."""
    up = sparse.triu(g.adj, k=1).tocoo()
    a, b = labels[up.row], labels[up.col]
    diff = a != b
    pairs = np.unique(np.column_stack([np.minimum(a, b)[diff], np.maximum(a, b)[diff]]), axis=0)
    out = []
    for lo, hi in pairs:
        lab = np.where(labels == hi, lo, labels)
        out.append(lab - (lab > hi))
    return out


def _subgraph(g: _Graph, nodes: np.ndarray) -> _Graph:
    """The graph induced by ``nodes`` (local indices in the given order)."""
    return _Graph(np.arange(len(nodes)), g.W[nodes], g.S[nodes], g.Q[nodes], g.area[nodes], g.count[nodes],
                  g.adj[nodes][:, nodes].tocsr(), g.mean[nodes])


def _spanning_intervals(h: _Graph, w: sparse.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The minimum spanning tree of a connected graph, rooted at node 0, as preorder
    intervals: (preorder, tin, size); the subtree of v is ``preorder[tin[v]:tin[v] +
    size[v]]``. None when the graph is not connected. Cheaper than :func:`_rooted_tree`
    on the small graphs of merge-and-split moves."""
    mst = csgraph.minimum_spanning_tree(w)
    sym = (mst + mst.T).tocsr()
    order, pred = csgraph.depth_first_order(sym, 0, directed=False, return_predecessors=True)
    if len(order) != h.m:
        return None
    size = [1] * h.m
    par = pred.tolist()
    for v in order[::-1].tolist():
        if par[v] >= 0:
            size[par[v]] += size[v]
    tin = np.empty(h.m, dtype=np.int64)
    tin[order] = np.arange(h.m)
    return order, tin, np.asarray(size, dtype=np.int64)
