"""One owner per concept: the two disagreements issue 11 found, and the shared pieces that
replaced the copies (one spill geometry, one area-weighting primitive, one points reader)."""
from __future__ import annotations

import numpy as np
import pytest
import shapely

from subdivide.analysis.spill import spill_report
from subdivide.make.planning import check_constraints
from subdivide.model.plan import Plan
from subdivide.model.reach import core_share, spill_territory


@pytest.fixture(scope="module")
def lake_plan(sample_blocks):
    """The trial's four sub-areas with a 'lake': the town-blocks within 2.5 km of a point
    deep inside 花巻 are dropped (as e-Stat drops HCODE 8154 water), leaving a hole that
    no other sub-area occupies."""
    plan = Plan.from_assignment(sample_blocks, sample_blocks.set_index("key")["OLD_MUNI"])
    d = plan.dissolved
    big = d.loc[d["area_km2"].idxmax()] if "area_km2" in d.columns else d.iloc[0]
    inner = shapely.buffer(big.geometry, -6000.0)
    centre = shapely.point_on_surface(inner)
    lake = shapely.buffer(centre, 2500.0)
    b = plan.blocks
    drop = shapely.within(b.geometry.values, lake)
    assert 0 < drop.sum() < len(b) // 4
    kept = sample_blocks[~sample_blocks["key"].isin(b.loc[drop, "key"])]
    return Plan.from_assignment(kept, kept.set_index("key")["OLD_MUNI"])


def test_the_lake_is_a_hole_that_changes_the_core_share(lake_plan):
    """The fixture is what the bug needs: measured without filling, the hole grows a
    disc of radius L in the inward buffer and the core share drops."""
    geoms = lake_plan.dissolved.geometry.values
    raw = core_share(geoms, 2000.0, fill_holes=False)
    filled = core_share(geoms, 2000.0)
    assert (filled - raw).max() > 0.02
    assert np.all(filled >= raw - 1e-12)
    assert shapely.area(spill_territory(geoms)).sum() > shapely.area(geoms).sum()


def test_planning_floor_and_spill_agree_on_a_subarea_with_a_lake(lake_plan):
    """Regression: `plan --min-core` refused a plan that `spill` said met the floor
    (0.41 vs 0.55): both now read the one core share, on the hole-filled territory."""
    rep = spill_report(lake_plan, distances_km=(2.0,))
    sa = rep.subareas[rep.subareas["population_source"] == "townblocks"].set_index("name")
    for name, share in sa["core_share"].items():
        floor = float(share) - 1e-6
        ok = [f for f in check_constraints(lake_plan, min_core=floor, spill_km=2.0) if name in f.features]
        assert ok == [], f"{name}: spill says {share:.3f} but the planner refuses floor {floor:.3f}"
        above = float(share) + 0.01
        refused = [f for f in check_constraints(lake_plan, min_core=above, spill_km=2.0) if name in f.features]
        assert refused, f"{name}: a floor above the spill figure must be refused"


def test_map_points_read_a_cp932_csv(sample_plan, tmp_path):
    """Regression: `map --points offices.csv` with a CP932 CSV ended in UnicodeDecodeError
    while `spill` read it: both now use subdivide.io.readers.read_points."""
    from subdivide.cli.main import main

    plan_path = tmp_path / "p.plan.gpkg"
    sample_plan.save(plan_path)
    csv = tmp_path / "offices.csv"
    csv.write_bytes("name,latitude,longitude\r\n大迫総合支所,39.4866,141.2850\r\n花巻市役所,39.3886,141.1139\r\n"
                    .encode("cp932"))
    out = tmp_path / "m.html"
    assert main(["map", str(plan_path), "-o", str(out), "--points", str(csv)]) == 0
    page = out.read_text(encoding="utf-8")
    assert "大迫総合支所" in page or "\\u5927\\u8feb" in page


def test_points_reader_is_shared_and_checks_swapped_coordinates(tmp_path):
    from subdivide.core.errors import UserError
    from subdivide.io.readers import read_points

    csv = tmp_path / "swapped.csv"
    csv.write_text("name,latitude,longitude\nA,141.1139,39.3886\n", encoding="utf-8")
    with pytest.raises(UserError, match="swapped"):
        read_points(csv)
    good = tmp_path / "good.csv"
    good.write_text("名称,緯度,経度\nA,39.3886,141.1139\n", encoding="utf-8-sig")
    pts = read_points(good)
    assert list(pts["point"]) == ["A"] and pts.crs.to_epsg() == 6668


def test_one_workbook_reader():
    """Every .xlsx subdivide reads goes through subdivide.io.xlsx (the validator's area-code
    list, mapping and assignment tables, site lists, message sheets): no other module reads
    workbooks (pandas' read_excel, openpyxl's load_workbook)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "subdivide"
    readers = re.compile(r"\b(read_excel|to_excel|ExcelWriter|ExcelFile|load_workbook)\s*\(|"
                         r"^\s*(import openpyxl|from openpyxl)|import_module\(\s*[\"']openpyxl", re.M)
    found = sorted(str(p.relative_to(root)) for p in root.rglob("*.py")
                   if p.name != "xlsx.py" and readers.search(p.read_text(encoding="utf-8")))
    assert found == []                       # (io/xlsx.py names openpyxl as the answer it gives)
    callers = sorted(str(p.relative_to(root)) for p in root.rglob("*.py")
                     if "read_workbook(" in p.read_text(encoding="utf-8") and p.name != "xlsx.py")
    assert callers == ["carrier/validation.py", "io/tables.py"]
