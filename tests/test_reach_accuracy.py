"""The fast paths of the spill geometry agree with the exact ones on real 鳥取県 outlines.

- core shares from outlines simplified at :func:`outline_tolerance` stay within 1e-3 of
  the exact ones (19 municipalities; 鳥取市 split into its 9 pre-merger areas);
- the two-stage :func:`core_distance_for_share` lands where the one-stage one does;
- ``block_adjacency(method="edges")`` finds the same neighbours and border lengths;
- properties (hypothesis): a core share lies in [0, 1] and does not grow with L.
"""
from __future__ import annotations

import numpy as np
import pytest
import shapely
from conftest import need
from hypothesis import given, settings
from hypothesis import strategies as st

from subdivide.model.contiguity import _shared_edges, block_adjacency
from subdivide.model.reach import (
    arc_sagitta,
    core_distance_for_share,
    core_share,
    outline_tolerance,
    parallel_buffer,
    simplified,
    spill_territory,
)

TOTTORI_OLD = ("国府町", "福部町", "河原町", "用瀬町", "佐治町", "気高町", "鹿野町", "青谷町")
DISTANCES_M = (1600.0, 2000.0, 3300.0)


@pytest.fixture(scope="module")
def tottori_blocks(shared_data):
    from subdivide.io.townblocks import read_townblocks

    shp = need(shared_data / "tottori_31_estat2015" / "h27ka31.shp", "鳥取県 e-Stat town-blocks")
    blocks, _ = read_townblocks(shp)
    return blocks


def _dissolve(blocks, label) -> np.ndarray:
    label = np.asarray(label)
    keys = sorted(set(label))
    return np.array([shapely.coverage_union_all(blocks.geometry.values[label == k]) for k in keys], dtype=object)


@pytest.fixture(scope="module")
def municipalities(tottori_blocks):
    """The 19 municipalities of 鳥取県 as sub-areas of one plan (territories, holes filled)."""
    g = _dissolve(tottori_blocks, tottori_blocks["muni_code"])
    assert len(g) == 19
    return spill_territory(g)


@pytest.fixture(scope="module")
def tottori_city(tottori_blocks):
    """鳥取市 (31201) as its 9 pre-merger areas, told by the block names."""
    b = tottori_blocks[tottori_blocks["muni_code"] == "31201"]
    label = b["name"].map(lambda n: next((o[:-1] for o in TOTTORI_OLD if n.startswith(o)), "鳥取"))
    g = _dissolve(b, label)
    assert len(g) == 9
    return spill_territory(g)


@pytest.mark.slow
@pytest.mark.parametrize("which", ["municipalities", "tottori_city"])
def test_simplified_core_shares_agree_with_exact_ones(request, which):
    geoms = request.getfixturevalue(which)
    for L in DISTANCES_M:
        exact = core_share(geoms, L, fill_holes=False)
        fast = core_share(geoms, L, fill_holes=False, simplify_m="auto")
        assert np.abs(fast - exact).max() < 1e-3, (L, np.abs(fast - exact).max())
        assert ((fast >= 0) & (fast <= 1)).all()
        # the outlines really were simplified (else the test proves nothing)
        fewer = shapely.get_num_coordinates(simplified(geoms, outline_tolerance(L)))
        assert fewer.sum() < 0.8 * shapely.get_num_coordinates(geoms).sum()
    # the spill report's path (parallel_buffer) gives the very same cores as core_share
    L = 2000.0
    cores = parallel_buffer(geoms, -L, quad_segs=8, simplify_m="auto")
    share = shapely.area(cores) / shapely.area(geoms)
    assert share == pytest.approx(core_share(geoms, L, fill_holes=False, simplify_m="auto"), abs=1e-12)


def test_simplification_stays_within_the_buffers_own_arc_error():
    """Tolerance = half the sagitta of the polygonal arc: 4.8 m at 2 km, quad_segs 8."""
    assert float(arc_sagitta(2000.0, 8)) == pytest.approx(2000.0 * (1 - np.cos(np.pi / 32)))
    assert float(outline_tolerance(2000.0, 8)) == pytest.approx(4.8152, abs=1e-3)
    assert float(outline_tolerance(-2000.0, 16)) < float(outline_tolerance(2000.0, 8))
    sq = shapely.box(0, 0, 10_000, 10_000)
    assert simplified(np.array([sq], dtype=object), 0.0)[0] is sq    # tolerance 0: untouched


@pytest.mark.slow
def test_two_stage_core_distance_matches_one_stage(tottori_city, municipalities):
    geoms = np.concatenate([tottori_city, municipalities])
    one = core_distance_for_share(geoms, 0.5, coarse=0)
    two = core_distance_for_share(geoms, 0.5)
    assert np.abs(two - one).max() < 0.25            # tol_m / 4: the convergence criterion
    at = np.array([core_share([g], d, fill_holes=False)[0] for g, d in zip(geoms, two)])
    pos = two > 0
    assert np.abs(at[pos] - 0.5).max() < 2e-3        # the share really is 50 % there


def test_edge_matching_adjacency_equals_the_overlay(tottori_blocks):
    b = tottori_blocks[tottori_blocks["muni_code"] == "31201"].reset_index(drop=True)
    a = block_adjacency(b)
    e = block_adjacency(b, method="edges")
    a.sort_indices()
    e.sort_indices()
    assert (a.indptr == e.indptr).all() and (a.indices == e.indices).all()
    assert e.data == pytest.approx(a.data, rel=1e-9)
    # an overlap makes the coverage invalid: the edge path falls back to the overlay
    bad = b.copy()
    bad.loc[0, "geometry"] = b.geometry.iloc[0].buffer(30.0)
    a2, e2 = block_adjacency(bad), block_adjacency(bad, method="edges")
    assert not shapely.coverage_is_valid(np.asarray(bad.geometry.values))
    assert (a2 != e2).nnz == 0
    assert (_shared_edges(np.asarray(bad.geometry.values), 1.0) != a2).nnz > 0   # matching alone would be wrong


# ---------------------------------------------------------------- properties
def _star(seed: int, n: int, jag: float) -> shapely.Polygon:
    """A star-shaped polygon of about 50–300 km² with a jagged outline (seeded)."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0, 2 * np.pi, n))
    r = 6000.0 * (1 + 0.3 * np.sin(3 * t + rng.uniform(0, 6))) * (1 + jag * rng.uniform(-1, 1, n))
    return shapely.make_valid(shapely.Polygon(np.c_[r * np.cos(t), r * np.sin(t)])).buffer(0)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(8, 400), jag=st.floats(0.0, 0.2),
       L1=st.floats(0.0, 6000.0), dL=st.floats(0.0, 3000.0))
def test_core_share_is_a_share_and_does_not_grow_with_distance(seed, n, jag, L1, dL):
    g = np.array([_star(seed, n, jag)], dtype=object)
    if shapely.area(g)[0] <= 0:
        return
    s1 = core_share(g, L1, fill_holes=False)[0]
    s2 = core_share(g, L1 + dL, fill_holes=False)[0]
    assert 0.0 <= s2 <= s1 + 1e-9 <= 1.0 + 1e-9
    f1 = core_share(g, L1, fill_holes=False, simplify_m="auto")[0]
    assert 0.0 <= f1 <= 1.0
    assert abs(f1 - s1) < 1e-3


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(8, 200), p=st.floats(0.1, 0.9))
def test_core_distance_gives_the_share_it_was_asked_for(seed, n, p):
    g = np.array([_star(seed, n, 0.1)], dtype=object)
    d = core_distance_for_share(g, p)[0]
    assert 0 < d < np.sqrt(shapely.area(g)[0] / np.pi)
    assert core_share(g, d, fill_holes=False)[0] == pytest.approx(p, abs=2e-3)
    assert core_share(g, d + 200.0, fill_holes=False)[0] <= p + 1e-9
