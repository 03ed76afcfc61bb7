"""The buffer ladder (subdivide.model.reach.BufferLadder): a spill report's cores and reaches
built as chains of short buffers.

- on shapes whose exact buffer is known (a square) it is closer to it than one GEOS
  buffer, and inside the same sandwich [exact at L − sagitta(L), exact at L];
- on jagged outlines (seeded stars; 鳥取市's real pre-merger areas) it is closer to a
  quad_segs = 256 buffer than one quad_segs = 16 buffer;
- a result depends only on the geometry and the distance (not on the other distances
  asked for, the order, the rows or the threads);
- it is local: changing a shape changes its ladder buffer only within L of the change
  (what the editor's local updates rely on);
- ``core_distance_for_share`` through the ladder finds where the ladder's cores keep p.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from conftest import need
from hypothesis import given, settings
from hypothesis import strategies as st

from subdivide.model.reach import (
    BufferLadder,
    arc_sagitta,
    core_distance_for_share,
    ladder_buffer,
    ladder_rungs,
    spill_buffers,
    spill_territory,
)


def _star(seed: int, n: int = 300, jag: float = 0.15) -> shapely.Polygon:
    """A star-shaped polygon of about 100 km² with a jagged outline (seeded)."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0, 2 * np.pi, n))
    r = 6000.0 * (1 + 0.3 * np.sin(3 * t + rng.uniform(0, 6))) * (1 + jag * rng.uniform(-1, 1, n))
    return shapely.make_valid(shapely.Polygon(np.c_[r * np.cos(t), r * np.sin(t)])).buffer(0)


def _wkb(g) -> list[bytes]:
    return [shapely.to_wkb(x) for x in np.atleast_1d(g)]


def test_rungs():
    assert list(ladder_rungs(2000.0)) == [50.0, 200.0, 800.0]
    assert list(ladder_rungs(-2500.0)) == [50.0, 200.0, 800.0]
    assert list(ladder_rungs(800.0)) == [50.0, 200.0]         # strictly below the distance
    assert list(ladder_rungs(3201.0)) == [50.0, 200.0, 800.0, 3200.0]
    assert list(ladder_rungs(50.0)) == [] and list(ladder_rungs(0.0)) == []


@pytest.mark.parametrize("L", [2000.0, 2500.0, 3000.0])
def test_square_closer_to_the_exact_buffer_and_inside_the_sandwich(L):
    a = 10_000.0
    sq = np.array([shapely.box(0, 0, a, a)], dtype=object)
    exact_out = a * a + 4 * a * L + math.pi * L * L
    ladder = shapely.area(ladder_buffer(sq, L))[0]
    direct = shapely.area(shapely.buffer(sq, L, quad_segs=16))[0]
    assert abs(ladder - exact_out) < abs(direct - exact_out) / 5
    s = float(arc_sagitta(L, 16))
    assert a * a + 4 * a * (L - s) + math.pi * (L - s) ** 2 <= ladder <= exact_out
    # a convex polygon erodes without arcs: exact either way
    assert shapely.area(ladder_buffer(sq, -L))[0] == pytest.approx((a - 2 * L) ** 2, rel=1e-12)


@pytest.mark.parametrize("seed", [1, 7, 42])
def test_jagged_outline_closer_to_a_fine_buffer_than_one_buffer(seed):
    g = np.array([_star(seed)], dtype=object)
    area = shapely.area(g)[0]
    for L in (2000.0, -2000.0, 3000.0, -3000.0):
        ref = shapely.area(shapely.buffer(g, L, quad_segs=256))[0]
        direct = abs(shapely.area(shapely.buffer(g, L, quad_segs=16))[0] - ref) / area
        ladder = abs(shapely.area(ladder_buffer(g, L))[0] - ref) / area
        assert ladder < direct / 3, (L, ladder, direct)


def test_result_depends_only_on_geometry_and_distance():
    g = np.array([_star(s) for s in (3, 4, 5, 6, 8)], dtype=object)
    fresh = {L: _wkb(BufferLadder(g, sign=-1).buffer(-L)) for L in (900.0, 2500.0)}
    lad = BufferLadder(g, sign=-1, workers=1)
    lad.buffer(-3000.0, rows=[4, 1])                            # other distances and rows first
    assert _wkb(lad.buffer(-2500.0)) == fresh[2500.0]
    assert _wkb(lad.buffer([-900.0, -2500.0, -900.0], rows=[2, 0, 2])) == \
        [fresh[900.0][2], fresh[2500.0][0], fresh[900.0][2]]
    assert _wkb(BufferLadder(g, sign=-1, workers=2).buffer(-900.0)) == fresh[900.0]
    cores, reaches = spill_buffers(g, [2500.0, 900.0])
    assert _wkb(cores[:5]) == fresh[2500.0] and _wkb(cores[5:]) == fresh[900.0]
    assert _wkb(reaches[:5]) == _wkb(BufferLadder(g, sign=1).buffer(2500.0))
    with pytest.raises(ValueError):
        lad.buffer(100.0)
    with pytest.raises(ValueError):
        BufferLadder(g, sign=0)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 1000), k=st.integers(0, 299), r=st.floats(100.0, 600.0),
       L=st.sampled_from([1500.0, 2000.0, -1500.0, -2000.0]))
def test_ladder_is_local(seed, k, r, L):
    """A change D of the shape changes its ladder buffer only within |L| of D (+ 1 m): the
    composition of local operations is local. The editor updates cores and reaches
    around an edit on this property."""
    t = _star(seed)
    ring = np.asarray(t.exterior.coords)
    bump = shapely.Point(ring[k % (len(ring) - 1)]).buffer(r)
    t2 = shapely.union(t, bump)
    d = shapely.symmetric_difference(t, t2)
    a, b = ladder_buffer(np.array([t, t2], dtype=object), L)
    # the window: within |L| of the change (a fine polygonal disc, plus a metre)
    window = shapely.buffer(d, abs(L) + 1.0, quad_segs=64)
    outside = shapely.difference(shapely.symmetric_difference(a, b), window)
    assert shapely.area(outside) < 1e-3


def test_empty_and_vanishing_shapes():
    g = np.array([shapely.box(0, 0, 1000, 1000), shapely.Polygon(), None], dtype=object)
    out = BufferLadder(g, sign=-1).buffer(-2000.0)
    assert shapely.is_empty(out[0]) and shapely.is_empty(out[1]) and out[2] is None
    out = ladder_buffer(g, 30.0)                                 # below the first rung: one buffer
    assert _wkb(out[:2]) == _wkb(shapely.buffer(g[:2], 30.0, quad_segs=16))


def test_core_distance_through_the_ladder_keeps_the_share():
    g = spill_territory(np.array([_star(s, n=200) for s in (11, 12)], dtype=object))
    lad = BufferLadder(g, sign=-1)
    d = core_distance_for_share(g, 0.5, quad_segs=16, ladder=lad)
    share = shapely.area(lad.buffer(-d)) / shapely.area(g)
    assert share == pytest.approx(0.5, abs=2e-3)
    assert np.abs(d - core_distance_for_share(g, 0.5, quad_segs=16)).max() < 25.0   # the same model
    with pytest.raises(ValueError):
        core_distance_for_share(g, 0.5, ladder=BufferLadder(g, sign=1))


@pytest.mark.slow
def test_tottori_pre_merger_areas_closer_than_one_buffer(shared_data):
    """The figure docs/performance.md quotes: on 鳥取市's 9 pre-merger areas (real e-Stat
    outlines) the ladder's cores and reaches are several times closer to a
    quad_segs = 256 buffer than one quad_segs = 16 buffer."""
    from subdivide.io.townblocks import read_townblocks

    shp = need(shared_data / "tottori_31_estat2015" / "h27ka31.shp", "鳥取県 e-Stat town-blocks")
    b, _ = read_townblocks(shp, muni_code="31201")
    old = ("国府町", "福部町", "河原町", "用瀬町", "佐治町", "気高町", "鹿野町", "青谷町")
    label = b["name"].map(lambda n: next((o for o in old if n.startswith(o)), "鳥取")).to_numpy()
    g = spill_territory(np.array([shapely.coverage_union_all(b.geometry.values[label == k])
                                  for k in sorted(set(label))], dtype=object))
    area = shapely.area(g)
    for L in (2500.0, -2500.0):
        ref = shapely.area(shapely.buffer(g, L, quad_segs=256))
        direct = np.abs(shapely.area(shapely.buffer(g, L, quad_segs=16)) - ref) / area
        ladder = np.abs(shapely.area(ladder_buffer(g, L)) - ref) / area
        assert ladder.max() < direct.max() / 5, (L, ladder.max(), direct.max())
