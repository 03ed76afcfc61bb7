"""Automatic sub-area planning: contiguity-constrained regionalization into k ≤ 14 sub-areas.

Method (a seeded, SKATER-like spanning-tree partition followed by local improvement):

1. **Block graph.** Rook adjacency of the town-blocks (:func:`contiguity.block_adjacency`).
   Blocks outside the largest connected component (islands, gappy fringes) are
   *contracted* into the nearest mainland block across water (one vectorised
   ``STRtree.query_nearest``): they travel with it, add their area and attributes, and
   are reported as island exceptions of the plan. With ``nest=True`` edges between
   different 旧市町村 are removed (sub-areas then nest inside 旧市町村) and an island joins
   the nearest mainland block of its own 旧市町村.
2. **Objective.** Standardized attributes (town-block columns and/or raster zonal means,
   :mod:`subdivide.model.hazard`); the dispersion of a sub-area is the sum of squared
   deviations (SSD) from its mean. Optional extra columns enter the same SSD: centroid
   coordinates (``compactness``) and one-hot 旧市町村 × √``old_penalty`` — the SSD of a
   one-hot column is the Gini impurity × blocks, so mixing 旧市町村 costs, and a sub-area
   inside one 旧市町村 costs nothing. Everything is additive over blocks, so any group's
   SSD is ``Q − |S|²/W`` from its count W, sum S and sum of squares Q.
3. **Spanning-tree partition.** A minimum spanning tree on attribute dissimilarity,
   lengthened for short shared borders; restarts perturb the weights with seeded
   log-normal noise (from the pure MST to a nearly uniform random spanning tree, as in
   GerryChain's recursive tree partitioning). For each target k, cut tree edges greedily,
   each time the edge with the largest SSD reduction whose two sides both keep the area
   floor and keep enough *capacity* (Σ ⌊area/floor⌋ over trees ≥ k) to reach k. Subtree
   sums come from one sparse triangular solve per tree and are corrected for cuts with a
   preorder (Euler-tour) interval test, so each cut costs O(n·k) numpy work.
4. **Local improvement.** Rounds of boundary-block moves with positive SSD gain,
   evaluated for all boundary blocks at once; a move keeps its source contiguous when the
   block's neighbours in the source are connected among themselves (cheap articulation
   test, vectorised with ``csgraph.connected_components`` on all rings at once); moves in
   one round form an independent set, so they cannot interact; floors are kept.
5. **Checker.** Every candidate is built as a :class:`~subdivide.model.plan.Plan` (proves
   k ≤ 14, complete assignment, contiguity with the island exceptions), then the area
   floor, the exact core share ``spill.core_share`` of each dissolved sub-area and, when
   asked, 旧市町村 nesting are checked. A core-share miss raises the effective area floor
   and retries. Infeasible requests raise :class:`~subdivide.core.errors.InfeasibleError`.

The result is a ranked set: the best plan per feasible k with its scores, ranked by the
Calinski–Harabasz ratio ``(SSB/(k−1)) / (SSW/(n−k))`` (scale-free, comparable across k).
Deterministic: blocks in key order, explicit ``numpy.random.Generator`` from the seed,
stable sorts, no set/dict iteration order dependence.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse import csgraph
from scipy.sparse.linalg import spsolve_triangular

from subdivide.core.constants import MAX_SUBAREAS
from subdivide.model.contiguity import block_adjacency, parts_per_group
from subdivide.core.errors import InfeasibleError, UserError
from subdivide.model.plan import Plan, default_subarea_name
from subdivide.core.progress import Progress, silent
from subdivide.core.schema import SUBAREA_COLUMN, coerce_townblocks
from subdivide.model.reach import core_share, min_area_for_share

#: log-normal sigmas of the MST weight noise, cycled over restarts (0 = pure MST)
RESTART_SIGMAS = (0.0, 0.35, 1.0, 3.0)
#: core-share retries: the effective area floor is multiplied by these factors in turn
CORE_RETRY_FACTORS = (1.0, 1.2, 1.45, 1.75, 2.1, 2.5)


@dataclass(frozen=True)
class Candidate:
    """The best plan found for one k, with its scores and the constraints it meets."""

    k: int
    plan: Plan | None
    objective: float            # SSD on the full objective matrix (attributes + penalties)
    ssd: float                  # SSD of the standardized attributes alone
    old_mixing: float           # blocks outside their sub-area's 旧市町村 (impurity), 0 if unused
    min_area_km2: float
    min_core_share: float
    feasible: bool
    violations: tuple[str, ...]
    ch_score: float             # Calinski–Harabasz ratio (higher is better)
    rank: int = 0

    def row(self) -> dict:
        return {"rank": self.rank, "k": self.k, "feasible": self.feasible,
                "objective": round(self.objective, 6), "ssd": round(self.ssd, 6),
                "ch_score": round(self.ch_score, 6), "old_mixing": round(self.old_mixing, 6),
                "min_area_km2": round(self.min_area_km2, 3),
                "min_core_share": round(self.min_core_share, 4),
                "violations": "; ".join(self.violations)}


@dataclass
class RegionalizeResult:
    """Ranked candidates (feasible first, best score first) and what was attached."""

    candidates: list[Candidate]
    island_links: pd.DataFrame            # key, anchor_key, distance_m
    features: pd.DataFrame                # raw attribute values used (per block, key order)
    options: dict = field(default_factory=dict)

    @property
    def table(self) -> pd.DataFrame:
        cols = ["rank", "k", "feasible", "objective", "ssd", "ch_score", "old_mixing",
                "min_area_km2", "min_core_share", "violations"]
        return pd.DataFrame([c.row() for c in self.candidates], columns=cols)

    @property
    def best(self) -> Plan:
        for c in self.candidates:
            if c.feasible:
                return c.plan
        raise InfeasibleError("no candidate meets the constraints",
                              fix="lower --min-area-km2 / --min-core, or ask for fewer sub-areas")

    def pick(self, k: int) -> Plan:
        for c in self.candidates:
            if c.k == k:
                if not c.feasible:
                    raise InfeasibleError(f"the k={k} candidate breaks the constraints: "
                                          + "; ".join(c.violations),
                                          fix="pick a feasible k from the candidates table")
                return c.plan
        raise UserError(f"k={k} was not among the candidates {[c.k for c in self.candidates]}",
                        fix="include it in --k")


# ====================================================================== features
def attribute_frame(blocks: gpd.GeoDataFrame, attributes=(), rasters: dict | None = None
                    ) -> tuple[pd.DataFrame, list[str]]:
    """Raw attribute values per block: named columns, then raster zonal means
    (``rasters``: name → GeoTIFF path). Missing values are filled with the column mean
    and reported (returned notes)."""
    from subdivide.model.hazard import sample_rasters

    notes: list[str] = []
    cols = {}
    for a in attributes:
        if a not in blocks.columns:
            raise UserError(f"attribute column {a!r} is not in the town-blocks",
                            fix=f"use one of {sorted(c for c in blocks.columns if c != 'geometry')[:30]}")
        v = pd.to_numeric(blocks[a], errors="coerce")
        bad = v.isna() & blocks[a].notna() & (blocks[a].astype(str).str.strip() != "")
        if bad.any():
            raise UserError(f"attribute {a!r} is not numeric for {int(bad.sum())} town-blocks: "
                            f"{list(blocks.loc[bad, 'key'][:10])}", fix="give numeric hazard columns")
        cols[a] = v.astype("float64")
    if rasters:
        df, reports = sample_rasters(blocks, rasters)
        for c in df.columns:
            if c in cols:
                raise UserError(f"raster name {c!r} clashes with an attribute column",
                                fix="rename it: --raster other_name=path.tif")
            cols[c] = df[c]
        for r in reports:
            if r.n_point_sampled:
                notes.append(f"{r.raster}: {r.n_point_sampled} blocks smaller than a pixel sampled at a point")
    frame = pd.DataFrame(cols, index=blocks.index)
    for c in frame.columns:
        miss = frame[c].isna()
        if miss.all():
            raise UserError(f"attribute {c!r} has no value for any town-block",
                            fix="check the column or that the raster covers the municipality")
        if miss.any():
            notes.append(f"{c}: {int(miss.sum())} blocks without a value took the mean "
                         f"(e.g. {list(blocks.loc[miss, 'key'][:5])})")
            frame[c] = frame[c].fillna(frame[c].mean())
    return frame, notes


def standardize(frame: pd.DataFrame) -> np.ndarray:
    """z-scores per column (population std); constant columns become 0."""
    x = frame.to_numpy(dtype="float64")
    if x.shape[1] == 0:
        return x
    sd = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def ssd_of(W, S, Q):
    """Weighted sum of squared deviations of groups, per column then summed: weights W,
    weighted sums S and weighted sums of squares Q, all shaped (..., d):
    ``Σ_c Q_c − S_c² / W_c``. Vectorised; 0 for empty groups."""
    W = np.asarray(W, dtype="float64")
    S = np.asarray(S, dtype="float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(W > 0, np.asarray(Q, dtype="float64") - S ** 2 / np.where(W > 0, W, 1.0), 0.0)
    return t.sum(axis=-1)


def _sum_by(lab, M, k):
    """Row sums of ``M`` (n, d) per label 0..k-1 → (k, d)."""
    out = np.zeros((k, M.shape[1]))
    np.add.at(out, lab, M)
    return out


def group_ssd(lab, W, S, Q, k) -> float:
    """Total weighted SSD of a labelling from per-row W, S, Q (n, d)."""
    return float(np.sum(ssd_of(_sum_by(lab, W, k), _sum_by(lab, S, k), _sum_by(lab, Q, k))))


# ====================================================================== graph
def _island_anchors(blocks, adj, old=None):
    """Contract components outside the largest one into their nearest mainland block.

    Returns (anchor per block → block index, mainland mask, links DataFrame)."""
    n = len(blocks)
    _, comp = csgraph.connected_components(adj, directed=False)
    counts = np.bincount(comp)
    main_label = int(np.argmax(counts))
    mainland = comp == main_label
    anchor = np.arange(n)
    keys = blocks["key"].to_numpy()
    links = pd.DataFrame({"key": pd.Series([], dtype=object), "anchor_key": pd.Series([], dtype=object),
                          "distance_m": pd.Series([], dtype="float64")})
    if mainland.all():
        return anchor, mainland, links
    geoms = blocks.geometry.values
    isl = np.flatnonzero(~mainland)
    main_idx = np.flatnonzero(mainland)
    near = np.empty(len(isl), dtype=np.int64)
    dist = np.empty(len(isl))
    groups = [(np.ones(len(isl), bool), np.ones(len(main_idx), bool))]
    if old is not None:
        groups = [(old[isl] == o, old[main_idx] == o) for o in np.unique(old[isl])]
    for isl_mask, main_mask in groups:
        if not main_mask.any():             # 旧市町村 without mainland: nearest of any
            main_mask = np.ones(len(main_idx), bool)
        cand = main_idx[main_mask]
        tree = shapely.STRtree(geoms[cand])
        (qi, ti), d = tree.query_nearest(geoms[isl[isl_mask]], return_distance=True, all_matches=False)
        sel = np.flatnonzero(isl_mask)
        near[sel[qi]] = cand[ti]
        dist[sel[qi]] = d
    # each island component goes, as a whole, to the anchor of its closest block
    df = pd.DataFrame({"blk": isl, "comp": comp[isl], "near": near, "dist": dist})
    best = df.sort_values(["comp", "dist", "blk"], kind="stable").drop_duplicates("comp").set_index("comp")
    if old is not None:   # with nesting each island block keeps its own 旧市町村's anchor
        anchor[isl] = near
        dd = dist
    else:
        anchor[isl] = best.loc[comp[isl], "near"].to_numpy()
        dd = best.loc[comp[isl], "dist"].to_numpy()
    links = pd.DataFrame({"key": keys[isl], "anchor_key": keys[anchor[isl]], "distance_m": np.round(dd, 1)})
    return anchor, mainland, links


@dataclass
class _Graph:
    """Mainland nodes (contracted), their stats and the (possibly nested) edge list."""

    node_of_block: np.ndarray     # block → node
    W: np.ndarray                 # (m, d) weights per column (1 per block; area share for coordinates)
    S: np.ndarray                 # (m, d) weighted sums of the objective matrix
    Q: np.ndarray                 # (m, d) weighted sums of squares
    area: np.ndarray              # m² per node (islands included)
    count: np.ndarray             # blocks per node
    adj: sparse.csr_matrix        # node graph, values = shared border (m)
    mean: np.ndarray              # (m, d) node means

    @property
    def m(self) -> int:
        return len(self.W)


def _build_graph(X, Wb, area_blocks, anchor, mainland, adj_blocks) -> _Graph:
    main_idx = np.flatnonzero(mainland)
    node_of_main = np.full(len(mainland), -1)
    node_of_main[main_idx] = np.arange(len(main_idx))
    node = node_of_main[anchor]
    m = len(main_idx)
    W = _sum_by(node, Wb, m)
    S = _sum_by(node, Wb * X, m)
    Q = _sum_by(node, Wb * X ** 2, m)
    A = np.bincount(node, weights=area_blocks, minlength=m)
    N = np.bincount(node, minlength=m).astype("float64")
    sub = adj_blocks[main_idx][:, main_idx].tocsr()
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(W > 0, S / np.where(W > 0, W, 1.0), 0.0)
    return _Graph(node, W, S, Q, A, N, sub, mean)


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
    ncomp, comp = csgraph.connected_components(sym, directed=False)
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


# ====================================================================== local improvement
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


# ====================================================================== candidates
def _names_for(blocks: gpd.GeoDataFrame, sub: np.ndarray, old: np.ndarray | None) -> dict:
    """Sub-area names: the dominant 旧市町村 when known, else the most populous town-block
    name; made unique with a running number."""
    df = pd.DataFrame({"sub": sub, "pop": blocks["population"].to_numpy(),
                       "name": blocks["name"].to_numpy(), "key": blocks["key"].to_numpy()})
    if old is not None:
        df["old"] = old
        base = (df.groupby(["sub", "old"], sort=True)["pop"].size().reset_index(name="n")
                  .sort_values(["sub", "n", "old"], ascending=[True, False, True], kind="stable")
                  .drop_duplicates("sub").set_index("sub")["old"])
        base = base.map(lambda s: default_subarea_name(s).removesuffix("地域"))
    else:
        top = df.sort_values(["sub", "pop", "key"], ascending=[True, False, True], kind="stable").drop_duplicates("sub")
        base = top.set_index("sub")["name"].map(lambda s: str(s).strip())
    names, seen = {}, {}
    for s in sorted(base.index):
        b = base[s] or f"第{s}"
        seen[b] = seen.get(b, 0) + 1
        names[s] = b
    count = {}
    for s in sorted(names):
        b = names[s]
        if seen[b] > 1:
            count[b] = count.get(b, 0) + 1
            names[s] = f"{b}{count[b]}地域"
        else:
            names[s] = default_subarea_name(b) if not b.endswith("地域") else b
    return names


def _plan_from_labels(blocks, labels_blocks, adj_blocks, old, muni_code, max_subareas, metadata):
    sub = labels_blocks + 1
    parts = parts_per_group(adj_blocks, sub)
    islands = blocks["key"].to_numpy()[parts["detached"].to_numpy()]
    names = _names_for(blocks, sub, old)
    assignment = pd.Series(sub, index=blocks["key"].to_numpy())
    return Plan.from_assignment(blocks, assignment, muni_code=muni_code, names=names,
                                island_exceptions=sorted(islands), max_subareas=max_subareas,
                                metadata=metadata, block_graph=adj_blocks)


def _check_candidate(plan: Plan, *, floor_km2, min_core, spill_m, old, nest):
    m = plan.metrics
    area = m["area_km2"].to_numpy()
    core = core_share(plan.dissolved.geometry.values, spill_m) if min_core > 0 else np.full(plan.k, np.nan)
    violations = []
    if floor_km2 > 0 and np.any(area < floor_km2 - 1e-9):
        bad = m.loc[area < floor_km2 - 1e-9, "name"].tolist()
        violations.append(f"area below {floor_km2:g} km²: {bad}")
    if min_core > 0 and np.any(core < min_core - 1e-9):
        bad = [f"{n} {c:.0%}" for n, c in zip(m["name"], core) if c < min_core - 1e-9]
        violations.append(f"core share below {min_core:.0%} at L={spill_m / 1000:g} km: {bad}")
    if nest and old is not None:
        mixed = pd.Series(old).groupby(plan.blocks[SUBAREA_COLUMN].to_numpy()).nunique()
        if (mixed > 1).any():
            violations.append(f"sub-areas {list(mixed.index[mixed > 1])} cross 旧市町村 lines")
    return area, core, violations


def regionalize(blocks: gpd.GeoDataFrame, *, k=range(2, MAX_SUBAREAS + 1), min_area_km2: float = 0.0,
                min_core: float = 0.0, spill_km: float = 2.0, attributes=(), rasters: dict | None = None,
                follow_old: str | None = None, nest: bool = False, old_penalty: float = 2.0,
                compactness: float | None = None, seed: int = 0, restarts: int | None = None,
                improve: bool = True, max_subareas: int = MAX_SUBAREAS, muni_code: str | None = None,
                time_budget_s: float | None = None, progress: Progress = silent) -> RegionalizeResult:
    """Contiguity-constrained regionalization: the best plan for each k, ranked.

    Parameters
    ----------
    blocks: canonical town-blocks (projected CRS, metres).
    k: an int or an iterable of ints (2..max_subareas).
    min_area_km2: area floor per sub-area (km²).
    min_core, spill_km: floor on the exact unreached-core share ``spill.core_share`` of
        each dissolved sub-area at spill distance ``spill_km`` (0 = no floor).
    attributes: town-block columns to keep similar (e.g. FLOOD_M, SLOPE_DEG).
    rasters: name → GeoTIFF; zonal mean per block joins the attributes.
    follow_old: 旧市町村 column; crossing its lines costs ``old_penalty`` (per block of
        impurity) or, with ``nest``, is forbidden.
    compactness: weight of area-weighted centroid coordinates in the objective (default
        1 when no attribute is given, else 0.5 with a core floor, else 0).
    seed: seed of the ``numpy`` Generator (restart noise); same seed → same plans.
    restarts: spanning trees tried per k (default by size: 8 up to 2,000 blocks, 4 above).
    time_budget_s: soft limit for the local-improvement phase.

    Raises InfeasibleError when no requested k can meet the constraints.
    """
    t0 = time.perf_counter()
    ks = sorted({int(k)} if np.isscalar(k) else {int(x) for x in k})
    if not ks:
        raise UserError("no k was asked", fix="e.g. --k 4 or --k 2-14")
    if max_subareas > MAX_SUBAREAS or max_subareas < 1:
        raise UserError(f"--max-subareas {max_subareas}: the carriers' limit is {MAX_SUBAREAS}",
                        fix=f"use 1–{MAX_SUBAREAS}")
    over = [x for x in ks if x > max_subareas or x < 1]
    if over:
        raise UserError(f"k={over} is outside 1–{max_subareas} (at most {max_subareas} sub-areas)",
                        fix=f"ask for k between 2 and {max_subareas}")
    if not 0 <= min_core < 1:
        raise UserError(f"--min-core {min_core} must be a share between 0 and 1", fix="e.g. --min-core 0.5")
    if min_area_km2 < 0 or spill_km < 0:
        raise UserError("floors and spill distance must be ≥ 0")
    blocks = coerce_townblocks(blocks.drop(columns=[SUBAREA_COLUMN], errors="ignore"))
    n = len(blocks)
    rng = np.random.default_rng(np.random.SeedSequence(int(seed)))
    spill_m = float(spill_km) * 1000.0

    old = None
    if follow_old:
        if follow_old not in blocks.columns:
            raise UserError(f"--follow-old column {follow_old!r} is not in the town-blocks",
                            fix="e.g. --follow-old OLD_MUNI")
        old = blocks[follow_old].fillna("").astype(str).to_numpy(dtype=object)
    elif nest:
        raise UserError("--nest needs --follow-old COLUMN", fix="e.g. --follow-old OLD_MUNI --nest")

    # ---- objective matrix
    progress("features", 0, 0)
    frame, notes = attribute_frame(blocks, attributes, rasters)
    Z = standardize(frame)
    if compactness is None:   # a core floor needs compact shapes even with attributes
        compactness = 1.0 if not Z.shape[1] else (0.5 if min_core > 0 else 0.0)
    blocks_area = blocks.geometry.area.to_numpy()
    parts, weights = [Z], [np.ones_like(Z)]
    if compactness > 0:
        # area-weighted moment of inertia: compact sub-areas in km², not in block counts
        pts = shapely.point_on_surface(blocks.geometry.values)
        xy = np.column_stack([shapely.get_x(pts), shapely.get_y(pts)])
        wa = blocks_area / max(float(blocks_area.mean()), 1e-9)
        c = np.average(xy, axis=0, weights=wa)
        rms = np.sqrt(np.sum(wa[:, None] * (xy - c) ** 2) / max(float(wa.sum()), 1e-9) / 2)
        parts.append((xy - c) / max(float(rms), 1e-9) * np.sqrt(compactness))
        weights.append(np.column_stack([wa, wa]))
    onehot_cols = 0
    if old is not None and not nest and old_penalty > 0:
        cats, inv = np.unique(old, return_inverse=True)
        oh = np.zeros((n, len(cats)))
        oh[np.arange(n), inv] = 1.0
        oh -= oh.mean(axis=0)
        parts.append(oh * np.sqrt(old_penalty))
        weights.append(np.ones_like(oh))
        onehot_cols = len(cats)
    X = np.column_stack(parts) if sum(p.shape[1] for p in parts) else np.zeros((n, 0))
    Wb = np.column_stack(weights) if X.shape[1] else np.zeros((n, 0))
    d_attr = Z.shape[1] if Z.shape[1] else X.shape[1] - onehot_cols

    # ---- graph and islands
    progress("block graph", 0, 0)
    adj = block_adjacency(blocks)
    anchor, mainland, links = _island_anchors(blocks, adj, old if nest else None)
    graph_adj = adj
    if nest:
        coo = adj.tocoo()
        keep = old[coo.row] == old[coo.col]
        graph_adj = sparse.coo_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=adj.shape).tocsr()
    g = _build_graph(X, Wb, blocks_area, anchor, mainland, graph_adj)
    n_comp, comp = csgraph.connected_components(g.adj, directed=False)

    # ---- feasibility bounds
    total_km2 = float(blocks_area.sum()) / 1e6
    floor_km2 = float(min_area_km2)
    core_floor_km2 = float(min_area_for_share(min_core, spill_m)) / 1e6 if min_core > 0 else 0.0
    eff_km2 = max(floor_km2, core_floor_km2)
    reasons: dict[int, str] = {}
    if eff_km2 > 0:
        kmax = int(np.floor(total_km2 / eff_km2 + 1e-9))
        why = (f"{floor_km2:g} km² floor" if floor_km2 >= core_floor_km2 else
               f"core ≥ {min_core:.0%} at L = {spill_km:g} km needs ≥ {core_floor_km2:.0f} km² each (circle model)")
        for x in ks:
            if x > kmax:
                reasons[x] = (f"k={x} with a {why} in a {total_km2:.0f} km² municipality: "
                              f"max feasible k = {kmax}")
        if nest:
            comp_area = np.bincount(comp, weights=g.area) / 1e6
            if np.any(comp_area < eff_km2 - 1e-9):
                small = sorted({str(old[np.flatnonzero(mainland)[i]]) for i in np.flatnonzero(comp_area[comp] < eff_km2 - 1e-9)})
                for x in ks:
                    reasons.setdefault(x, f"旧市町村 parts {small} are smaller than the floor ({eff_km2:.0f} km²); "
                                          "with --nest each must be a sub-area of its own")
    for x in ks:
        if x < n_comp:
            reasons.setdefault(x, f"k={x} but nesting in 旧市町村 needs at least {n_comp} sub-areas "
                                  f"(contiguous 旧市町村 parts)")
        if x > g.m:
            reasons.setdefault(x, f"k={x} exceeds the number of town-blocks that can form sub-areas ({g.m})")
    todo = [x for x in ks if x not in reasons]
    if not todo:
        raise InfeasibleError("no requested k is feasible:\n" + "\n".join(f"  {reasons[x]}" for x in ks),
                              fix="lower --min-area-km2 / --min-core (or --spill-km, if justified), "
                                  "or ask for fewer sub-areas")

    # ---- spanning-tree partitions per restart
    if restarts is None:
        restarts = 8 if g.m <= 2000 else 4
    deadline = None if time_budget_s is None else t0 + float(time_budget_s)
    factors = CORE_RETRY_FACTORS if min_core > 0 else (1.0,)
    candidates: dict[int, Candidate] = {}
    meta = {"method": "spanning-tree partition + local improvement (subdivide.make.regionalize)",
            "seed": int(seed), "attributes": list(frame.columns), "min_area_km2": floor_km2,
            "min_core": float(min_core), "spill_km": float(spill_km), "follow_old": follow_old or "",
            "nest": bool(nest), "old_penalty": float(old_penalty), "compactness": float(compactness)}
    pending = list(todo)
    trees = []
    for r in range(restarts):
        # restart 0 is SKATER's tree (attribute distance only), then border-weighted trees
        # with growing noise (towards uniformly random spanning trees)
        sigma = RESTART_SIGMAS[(r - 1) % len(RESTART_SIGMAS)] if r else 0.0
        trees.append(_rooted_tree(g, _tree_weights(g, rng, sigma, border=r > 0)))
    last_fail: dict[int, tuple] = {}
    for factor in factors:
        if not pending:
            break
        floor_m2 = eff_km2 * 1e6 * factor
        prev: tuple[int, np.ndarray] | None = None
        for j, x in enumerate(pending):
            progress(f"partitions (floor ×{factor:g})", j, len(pending))
            parts_found = []
            forests = list(trees)
            if prev is not None and prev[0] == x - 1:
                # warm start: split one sub-area of the best (k−1)-plan along its own tree
                forests += [_rooted_tree(g, _tree_weights(g, None, 0.0, border=bd, keep=prev[1]))
                            for bd in (False, True)]
            for t in forests:
                lab = _greedy_cuts(t, x, floor_m2)
                if lab is not None:
                    parts_found.append((group_ssd(lab, g.W, g.S, g.Q, x), lab))
            if not parts_found:
                continue
            parts_found.sort(key=lambda p: p[0])
            n_keep = 4 if min_core > 0 else 2      # a core floor: try more shapes
            seen, tops = set(), []
            for obj, lab in parts_found:
                if round(obj, 9) not in seen:
                    seen.add(round(obj, 9))
                    tops.append(lab)
                if len(tops) == n_keep:
                    break
            if improve:
                tops = [_improve(g, lab, x, floor_m2, deadline=deadline) for lab in tops]
            scored = sorted(((group_ssd(lab, g.W, g.S, g.Q, x), i, lab) for i, lab in enumerate(tops)),
                            key=lambda p: (p[0], p[1]))
            prev = (x, scored[0][2])
            for _, _, lab in scored:      # best SSD first; the first that passes the checker wins
                lab_blocks = _canonical_labels(lab[g.node_of_block], blocks["key"].to_numpy())
                plan = _plan_from_labels(blocks, lab_blocks, adj, old, muni_code, max_subareas,
                                         dict(meta, k=x))
                area, core, viol = _check_candidate(plan, floor_km2=floor_km2, min_core=min_core,
                                                    spill_m=spill_m, old=old, nest=nest)
                cand = _score(plan, x, X, Wb, d_attr, old, area, core, viol, spill_m)
                if not viol:
                    candidates[x] = cand
                    prev = (x, lab)
                    break
                if x not in last_fail or cand.min_core_share > last_fail[x].min_core_share:
                    last_fail[x] = cand
        pending = [x for x in pending if x not in candidates]
    for x in ks:
        if x in candidates:
            continue
        if x in last_fail:
            candidates[x] = last_fail[x]
        else:
            why = reasons.get(x, f"no contiguous partition into {x} sub-areas meeting the floor was found")
            candidates[x] = Candidate(x, None, np.nan, np.nan, np.nan, np.nan, np.nan, False, (why,), np.nan)
    ranked = sorted(candidates.values(),
                    key=lambda c: (not c.feasible, -(c.ch_score if np.isfinite(c.ch_score) else -np.inf), c.k))
    ranked = [Candidate(**{**c.__dict__, "rank": i + 1}) for i, c in enumerate(ranked)]
    result = RegionalizeResult(ranked, links, frame.assign(key=blocks["key"].to_numpy()),
                               dict(meta, notes=notes, runtime_s=round(time.perf_counter() - t0, 3)))
    if not any(c.feasible for c in ranked):
        raise InfeasibleError("no requested k could be met:\n" + "\n".join(
            f"  k={c.k}: {'; '.join(c.violations)}" for c in sorted(ranked, key=lambda c: c.k)),
            fix="lower the floors or ask for fewer sub-areas" + (" (or drop --nest)" if nest else ""))
    progress("regionalize", 1, 1)
    return result


def _canonical_labels(lab: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Relabel 0..k-1 by the smallest key in each group (blocks are in key order, so by
    first occurrence): labels then do not depend on tree internals."""
    _, first = np.unique(lab, return_index=True)
    order = np.argsort(first, kind="stable")
    remap = np.empty(lab.max() + 1, dtype=np.int64)
    remap[np.unique(lab)[order]] = np.arange(len(order))
    return remap[lab]


def _score(plan: Plan, k: int, X, Wb, d_attr, old, area, core, violations, spill_m) -> Candidate:
    sub = plan.blocks[SUBAREA_COLUMN].to_numpy() - 1

    def ssd_matrix(M, Wm):
        if M.shape[1] == 0:
            return 0.0, 0.0
        within = group_ssd(sub, Wm, Wm * M, Wm * M ** 2, k)
        tot = group_ssd(np.zeros(len(sub), dtype=np.int64), Wm, Wm * M, Wm * M ** 2, 1)
        return within, tot

    obj, sst = ssd_matrix(X, Wb)
    ssd, _ = ssd_matrix(X[:, :d_attr], Wb[:, :d_attr])
    n = len(sub)
    ch = ((sst - obj) / max(k - 1, 1)) / (obj / max(n - k, 1)) if obj > 0 else np.inf
    mixing = 0.0
    if old is not None:
        c = pd.crosstab(sub, old)
        mixing = float((c.sum(axis=1) - c.max(axis=1)).sum())
    core_min = float(np.nanmin(core)) if np.isfinite(core).any() else float(
        np.min(approx_core_share(plan.dissolved.geometry.values, spill_m)))
    return Candidate(k, plan, obj, ssd, mixing, float(np.min(area)), core_min,
                     not violations, tuple(violations), float(ch))


def approx_core_share(geoms, spill_m: float) -> np.ndarray:
    """Core share for the candidates table when no core floor is asked: the geometry is
    first simplified by L/40 (50 m at L = 2 km), which moves the boundary by at most that
    much, and costs a fraction of the exact inward buffer on jagged outlines. Floors are
    always checked with the exact :func:`spill.core_share`."""
    tol = max(float(spill_m) / 40.0, 0.0)
    simple = shapely.simplify(np.asarray(geoms), tol, preserve_topology=True) if tol > 0 else np.asarray(geoms)
    return core_share(simple, spill_m)


def within_ssd(Z: np.ndarray, labels: np.ndarray) -> float:
    """Within-area dispersion: SSD of the rows of ``Z`` (n, d) from their group means."""
    Z = np.asarray(Z, dtype="float64")
    _, lab = np.unique(np.asarray(labels), return_inverse=True)
    W = np.ones_like(Z)
    return group_ssd(lab, W, Z, Z ** 2, int(lab.max()) + 1)
