"""The block graph the planner cuts: islands contracted onto the mainland, nodes with their sums."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse import csgraph

from subdivide.make.regionalize.features import _sum_by


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



def nest_edges(adj: sparse.csr_matrix, old: np.ndarray) -> sparse.csr_matrix:
    """The block graph without edges between different 旧市町村."""
    coo = adj.tocoo()
    keep = old[coo.row] == old[coo.col]
    return sparse.coo_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=adj.shape).tocsr()


def infeasible_reasons(ks, *, total_km2: float, eff_km2: float, why: str, n_nodes: int, n_comp: int,
                       small_old: list[str] | None = None) -> dict[int, str]:
    """k → why it cannot be met, from counting alone (area floors, nesting, size)."""
    reasons: dict[int, str] = {}
    if eff_km2 > 0:
        kmax = int(np.floor(total_km2 / eff_km2 + 1e-9))
        for x in ks:
            if x > kmax:
                reasons[x] = f"k={x} with a {why} in a {total_km2:.0f} km² municipality: max feasible k = {kmax}"
        if small_old:
            for x in ks:
                reasons.setdefault(x, f"旧市町村 parts {small_old} are smaller than the floor ({eff_km2:.0f} km²); "
                                      "with --nest each must be a sub-area of its own")
    for x in ks:
        if x < n_comp:
            reasons.setdefault(x, f"k={x} but nesting in 旧市町村 needs at least {n_comp} sub-areas "
                                  f"(contiguous 旧市町村 parts)")
        if x > n_nodes:
            reasons.setdefault(x, f"k={x} exceeds the number of town-blocks that can form sub-areas ({n_nodes})")
    return reasons
