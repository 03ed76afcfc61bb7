"""`subdivide demo`: the whole pipeline on the bundled sample, end to end, and every line it
prints checked against what it wrote (no line says None or nan)."""
import hashlib
import json
import re
from types import SimpleNamespace

import pandas as pd
import pytest

from subdivide.cli.main import main

STAGES = [
    "1. town-blocks (subdivide info)",
    "2. plan by 旧市町村, and automatically for k = 1–14 (subdivide plan)",
    "3. spill at L = 2.0 / 2.5 / 3.0 km (subdivide spill)",
    "4. carrier footprints from synthetic sites 7 km apart (subdivide spill --coverage)",
    "5. submission package and carrier-side validation (subdivide package / validate)",
    "6. national registry (subdivide registry register)",
    "7. council map, summary report and print packet (subdivide map / report --pdf)",
]


def _digests(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _sections(out: str) -> tuple[dict[str, list[str]], list[str]]:
    """Stage title → its lines (blank lines dropped), and the closing summary lines."""
    sections, current, tail = {}, None, []
    for line in out.splitlines():
        m = re.fullmatch(r"== (.+?) =*", line)
        if m:
            current = sections.setdefault(m.group(1).strip(), [])
        elif line.startswith("demo finished"):
            current = tail
            tail.append(line)
        elif line.strip() and current is not None:
            current.append(line)
        else:
            assert not line.strip(), f"a line outside every stage: {line!r}"
    return sections, tail


def _expected_stage_lines(a, summary) -> dict[str, list[str]]:
    """What each stage must print, rebuilt from what the demo wrote."""
    import geopandas as gpd

    from subdivide.analysis.spill import DEFAULT_DISTANCES_KM, format_summary, office_check, spill_report
    from subdivide.carrier.registry import Registry
    from subdivide.cli.commands.demo import registry_line
    from subdivide.cli.commands.plan import curve_text
    from subdivide.cli.commands.spill import _points_summary
    from subdivide.model.plan import read_plan
    from conftest import SAMPLE_DIR

    cols = ["subarea", "name", "code", "n_blocks", "population", "area_km2", "polsby_popper"]
    plan = read_plan(a / "02_plan" / "hanamaki_old_muni.plan.gpkg")
    auto = read_plan(a / "02_plan" / "hanamaki_auto_k4.plan.gpkg")
    planner = auto.metadata["planner"]      # the planner's curve, kept in the plan it made
    assert planner["curve"] == summary["planner"]["curve"]
    report = spill_report(plan)
    offices = gpd.read_file(SAMPLE_DIR / "offices.geojson")
    points = office_check(plan, offices, DEFAULT_DISTANCES_KM, point_name="office_name")
    fp = pd.read_csv(a / "04_coverage" / "footprint_footprints.csv", dtype={"carrier": str})
    fp = fp[[c for c in ("subarea", "carrier", "footprint_km2", "over_alert_km2", "under_alert_km2",
                         "overshoot_p95_km", "overshoot_max_km") if c in fp.columns]]
    reg = Registry(a / "06_registry" / "registry.sqlite")
    lines = lambda text: [x for x in text.splitlines() if x.strip()]  # noqa: E731
    return {
        STAGES[0]: lines((a / "01_info" / "info.txt").read_text(encoding="utf-8")),
        STAGES[1]: lines(curve_text(SimpleNamespace(curve=pd.DataFrame(planner["curve"]),
                                                    recommended_k=planner["recommended_k"])) + "\n"
                         + planner["summary"] + "\n"
                         + "by 旧市町村:\n" + plan.metrics[cols].round(2).to_string(index=False) + "\n"
                         + "automatic, k = 4 (seed 0):\n" + auto.metrics[cols].round(2).to_string(index=False)),
        STAGES[2]: lines(format_summary(report) + "\n" + _points_summary(points, DEFAULT_DISTANCES_KM)),
        STAGES[3]: lines(fp.round(2).to_string(index=False)),
        STAGES[4]: lines((a / "05_package" / "validation.txt").read_text(encoding="utf-8")),
        STAGES[5]: [registry_line(reg.show("03205"), reg.active_count())],
        STAGES[6]: ["map: 07_map/hanamaki_review.html (opens offline); report: 07_map/report/report.html; "
                    "print packet (A4 PDF): 07_map/report/report.pdf"],
    }


@pytest.mark.slow
def test_demo_runs_every_stage_prints_what_it_wrote_and_is_reproducible(sample_shp, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["demo", "--out", str(a)]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((a / "summary.json").read_text(encoding="utf-8"))
    assert summary["townblocks"] == {"records": 479, "blocks": 463, "population": 97702, "households": 33799}
    assert [r["name"] for r in summary["plan"]] == ["花巻地域", "大迫地域", "石鳥谷地域", "東和地域"]
    assert summary["validation_status"] == 0
    for rel in summary["outputs"].values():
        assert (a / rel).is_file(), rel
    assert (a / "07_map" / "report" / "report.pdf").read_bytes()[:5] == b"%PDF-"

    # every line printed, stage by stage
    assert not re.search(r"\bNone\b|\bnan\b", printed), printed
    sections, tail = _sections(printed)
    assert list(sections) == STAGES
    expected = _expected_stage_lines(a, summary)
    for stage in STAGES:
        assert sections[stage] == expected[stage], stage
    assert sections[STAGES[5]] == ["registered 03205 花巻市: 4 sub-areas, 463 town-blocks (registration #1); "
                                   "1 of 25 municipalities active"]
    m = re.fullmatch(r"demo finished in (\d+) s; outputs in (.+)/", tail[0])
    assert m and m.group(2) == str(a.resolve())
    from subdivide.core.i18n import display_width

    # (summary.json sorts its keys; the demo prints the outputs in stage order)
    assert sorted(tail[1:]) == sorted(f"  {k}{' ' * (25 - display_width(k))}{v}" for k, v in summary["outputs"].items())
    assert [t.split()[-1] for t in tail[1:]][:2] == ["01_info/info.txt", "02_plan/hanamaki_old_muni.plan.gpkg"]
    assert {display_width(t[:t.rindex(" ") + 1]) for t in tail[1:]} == {27}   # the paths line up

    # an existing output is never replaced without --force, and is left as it was
    before = _digests(a)
    assert main(["demo", "--out", str(a), "--quiet"]) == 2
    assert "--force" in capsys.readouterr().err
    assert _digests(a) == before
    # same inputs, same options → byte-identical outputs (the registry records wall-clock times)
    assert main(["demo", "--out", str(b), "--quiet"]) == 0
    quiet = capsys.readouterr().out
    assert "==" not in quiet and quiet.strip().startswith("demo finished")
    da, db = _digests(a), _digests(b)
    assert da.keys() == db.keys()
    differ = sorted(k for k in da if da[k] != db[k] and not k.startswith("06_registry/"))
    assert differ == []


def test_registry_line_names_the_municipality_and_counts():
    from subdivide.cli.commands.demo import registry_line
    from subdivide.core.errors import UserError

    shown = {"muni_code": "03205", "active": {"id": 3, "muni_code": "03205", "muni_name": "花巻市",
                                              "n_subareas": 4, "n_townblocks": 463}}
    assert registry_line(shown, 2) == ("registered 03205 花巻市: 4 sub-areas, 463 town-blocks (registration #3); "
                                       "2 of 25 municipalities active")
    shown["active"]["muni_name"] = None
    assert "None" not in registry_line(shown, 1) and "03205 (no name)" in registry_line(shown, 1)
    with pytest.raises(UserError):
        registry_line({"muni_code": "03205", "active": None}, 0)
