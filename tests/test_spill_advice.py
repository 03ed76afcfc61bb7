"""Spill advice that is possible: whether a shape of the needed size fits at all (in the
municipality, in the sub-area and its neighbours), and what would help (merge with the
neighbour giving the largest core share, accept L ≤ the tolerated distance). On the 花巻
sample, on real 鳥取市 (its 旧市町村 from the block names) and on real 境港市 (29 km²)."""
from __future__ import annotations

import re

import numpy as np
import pytest
import shapely

from subdivide.analysis.spill import format_summary, spill_report, subarea_neighbours
from subdivide.model.reach import core_share, min_area_for_share, spill_territory

from conftest import need
from test_validate_batch import TOTTORI_SHP, tottori_city_plan


def sakaiminato_plan():
    """境港市 (31204, real polygons) cut into a west and an east half by block centroid."""
    from subdivide.io.townblocks import read_townblocks
    from subdivide.model.plan import Plan

    blocks, _ = read_townblocks(need(TOTTORI_SHP, "鳥取県 e-Stat town-blocks"), muni_code="31204")
    x = blocks.geometry.centroid.x
    side = np.where(x <= x.median(), "西", "東")
    return Plan.from_assignment(blocks, blocks.assign(side=side).set_index("key")["side"])


def check_advice(plan, report):
    """Every invariant of the advice columns, computed again independently."""
    sa = report.subareas[report.subareas["population_source"] == "townblocks"]
    A = spill_territory(plan.dissolved.geometry.values)
    area = shapely.area(A) / 1e6
    pos = {s: i for i, s in enumerate(plan.dissolved["subarea"])}
    p = report.parameters["target_share"]
    for r in sa.to_dict("records"):
        i = pos[r["subarea"]]
        L = r["distance_km"] * 1e3
        touching = [j for j in range(len(A)) if j != i
                    and shapely.length(shapely.intersection(A[i].boundary, A[j].boundary)) > 0]
        assert r["municipality_area_km2"] == pytest.approx(area.sum())
        assert r["area_with_neighbours_km2"] == pytest.approx(area[i] + area[touching].sum())
        circle = min_area_for_share(p, L) / 1e6
        assert r["fits_municipality"] == (circle <= area.sum())
        assert r["fits_with_neighbours"] == (circle <= area[i] + area[touching].sum())
        if not r["below_target"]:
            assert r["advice"] == "" and r["merge_with"] == ""
            continue
        # never a "need" larger than the municipality presented as advice
        r["advice"].encode("cp932")      # the CSV column is writable in every list encoding
        for x in re.findall(r"needs ([\d,]+) km2 in this shape", r["advice"]):
            assert float(x.replace(",", "")) <= area.sum()
        if not r["fits_municipality"]:
            assert r["advice"].startswith("no shape fits:") and "municipality's" in r["advice"]
        elif not r["fits_with_neighbours"]:
            assert r["advice"].startswith("no shape fits here:") and "all its neighbours" in r["advice"]
        if touching:
            exact = core_share(shapely.union(np.full(len(touching), A[i], dtype=object), A[touching]), L,
                               quad_segs=16, fill_holes=False)
            names = plan.dissolved["name"].to_numpy()[touching]
            assert r["merge_with"] == names[int(np.argmax(exact))] or exact.max() - np.sort(exact)[-2] < 0.01
            assert r["merged_core_share"] == pytest.approx(exact.max(), abs=0.01)
            gains = r["merged_core_share"] > r["core_share"] + 0.005     # only a merge that helps is advised
            assert (f"merge with {r['merge_with']}" in r["advice"]) == gains
        else:
            assert r["merge_with"] == "" and "merge with" not in r["advice"]
        tol = r["tolerated_distance_km"]
        if tol > 0:
            assert f"accept L <= {tol:.1f} km" in r["advice"]
            assert core_share(np.array([A[i]], dtype=object), tol * 1e3, quad_segs=16, fill_holes=False)[0] \
                == pytest.approx(p, abs=0.01)
    return sa


@pytest.mark.slow
def test_sample_advice_names_a_neighbour_and_a_distance(sample_plan):
    report = spill_report(sample_plan, distances_km=(2.0, 3.0), quad_segs=8)
    sa = check_advice(sample_plan, report)
    below = sa[sa["below_target"]]
    assert len(below) and below["merge_with"].ne("").all()      # every sub-area of 花巻 has neighbours
    text = format_summary(report)
    flagged = [ln for ln in text.splitlines() if "below 50%" in ln]
    assert len(flagged) == below["subarea"].nunique()
    assert all("accept L ≤" in ln for ln in flagged)
    assert any("merge with" in ln for ln in flagged)


@pytest.mark.slow
def test_small_real_city_says_no_shape_fits():
    plan = sakaiminato_plan()
    report = spill_report(plan, distances_km=(2.0,), quad_segs=8)
    sa = check_advice(plan, report)
    assert sa["municipality_area_km2"].iloc[0] < min_area_for_share(0.5, 2000) / 1e6   # 境港市 < 146 km²
    assert sa["below_target"].all() and not sa["fits_municipality"].any()
    text = format_summary(report)
    assert "no shape fits: at 2 km even a circle needs 146 km²" in text
    assert "send to the whole municipality (no subdivision)" in text


@pytest.mark.slow
def test_real_merged_city_advice_is_consistent():
    plan = tottori_city_plan()
    report = spill_report(plan, distances_km=(3.0,), quad_segs=8)
    sa = check_advice(plan, report)
    assert sa["fits_municipality"].all()           # 鳥取市 is 765 km²: a 330 km² shape fits somewhere
    assert (~sa["fits_with_neighbours"]).any()     # … but not around every 旧町村
    assert sa.loc[sa["below_target"], "merge_with"].ne("").all()


def test_neighbours_share_a_border_not_a_corner():
    sq = [shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1), shapely.box(1, 1, 2, 2), shapely.box(5, 5, 6, 6)]
    nb = subarea_neighbours(np.array(sq, dtype=object))
    assert [list(n) for n in nb] == [[1], [0, 2], [1], []]     # 0 and 2 touch at a point only


@pytest.mark.slow
def test_neighbours_match_the_shared_border_length_on_real_outlines():
    """The predicate gives the sub-areas whose shared border has a positive length, on real
    e-Stat outlines: every 鳥取県 municipality cut into 6 sub-areas around seeded blocks."""
    import geopandas as gpd

    from subdivide.io.townblocks import read_townblocks

    blocks, _ = read_townblocks(need(TOTTORI_SHP, "鳥取県 e-Stat town-blocks"))
    rng = np.random.default_rng(7)
    checked = 0
    for muni, b in blocks.groupby("muni_code"):
        if len(b) < 12:
            continue
        pts = shapely.centroid(b.geometry.values)
        seeds = pts[rng.choice(len(b), 6, replace=False)]
        d = shapely.distance(pts[:, None], seeds[None, :])
        A = gpd.GeoSeries(b.geometry.values, crs=b.crs).groupby(np.argmin(d, axis=1)).agg(
            lambda g: shapely.union_all(g.values)).values
        A = spill_territory(np.asarray(A, dtype=object))
        i, j = np.nonzero(~np.eye(len(A), dtype=bool))
        length = shapely.length(shapely.intersection(shapely.boundary(A[i]), shapely.boundary(A[j])))
        expected = [sorted(j[(i == a) & (length > 0)]) for a in range(len(A))]
        assert [list(n) for n in subarea_neighbours(A)] == expected, muni
        checked += 1
    assert checked >= 15
