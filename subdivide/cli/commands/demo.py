"""``subdivide demo``: the whole pipeline on the bundled 花巻市 sample.

Every stage a municipality or a carrier runs, in order, written into one folder:

1. ``01_info``     read the e-Stat Shapefile (479 records → 463 town-blocks);
2. ``02_plan``     plan by 旧市町村 (the trial's 4 sub-areas) and automatically (k = 4);
3. ``03_spill``    spill report at L = 2.0 / 2.5 / 3.0 km, with the trial offices;
4. ``04_coverage`` synthetic carrier sites (7 km apart) → coverage → footprints;
5. ``05_package``  the carriers' submission package (zip), validated;
6. ``06_registry`` registered in a national registry (SQLite);
7. ``07_map``      the council review map (offline HTML), the summary report and the
   print packet (A4 PDF).

The folder is written atomically: it appears only when every stage succeeded.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from subdivide.core.errors import UserError
from subdivide.core.progress import StderrProgress, silent

HELP = "run the whole pipeline on the bundled 花巻市 sample and write every output to one folder"
EXAMPLE = """
  subdivide demo                       # writes ./subdivide-demo/
  subdivide demo --out demo-2 --force
"""

SAMPLE_NOTE = ("サンプルの町丁・字の境界は、e-Stat の代表点と公式面積から作った推定形状です。"
               "実際の境界とは異なります（人口・世帯は 2015 年国勢調査の実数）。"
               "携帯電話の基地局・カバレッジは合成データです。")

REPO = Path(__file__).resolve().parents[3]
DEFAULT_SAMPLE = REPO / "data" / "hanamaki_03205"


def add_arguments(p) -> None:
    p.add_argument("--out", default="subdivide-demo", metavar="DIR",
                   help="output folder (default: ./subdivide-demo)")
    p.add_argument("--sample", default=str(DEFAULT_SAMPLE), metavar="DIR",
                   help="folder of the bundled sample (default: data/hanamaki_03205 of this checkout)")
    p.add_argument("--isd-km", type=float, default=7.0,
                   help="inter-site distance of the synthetic carrier sites (km, default 7)")
    p.add_argument("--force", action="store_true",
                   help="replace an earlier demo folder (a folder holding anything else is never replaced)")
    p.add_argument("--quiet", action="store_true", help="print only the final summary")


def run(args) -> int:
    from subdivide.io.output import atomic_dir
    sample = Path(args.sample)
    shp = sample / "h27ka03205.shp"
    if not shp.exists():
        raise UserError(f"the bundled sample is not at {sample}", where=str(shp),
                        fix="run from a checkout of subdivide, or pass --sample DIR "
                            "(rebuild it with `python data/build_sample.py`)")
    say = (lambda *a: None) if args.quiet else print
    progress = silent if args.quiet else StderrProgress()
    started = time.perf_counter()
    # never over the sample, nor over a folder the demo did not write
    with atomic_dir(args.out, force=args.force, command="demo", inputs=[sample]) as out:
        summary = run_pipeline(sample, out, isd_km=args.isd_km, say=say, progress=progress)
        (out / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2, sort_keys=True) + "\n",
                                          encoding="utf-8")
    print(f"\ndemo finished in {time.perf_counter() - started:.0f} s; outputs in {Path(args.out).resolve()}/")
    from subdivide.core.i18n import display_width

    for name, path in summary["outputs"].items():   # aligned by display width (a kanji is two columns)
        print(f"  {name}{' ' * max(1, 25 - display_width(name))}{path}")
    return 0


def _stage(say, title: str) -> None:
    say(f"\n== {title} " + "=" * max(0, 70 - len(title)))


def run_pipeline(sample: Path, out: Path, *, isd_km: float = 7.0, say=print, progress=silent) -> dict:
    """Run every stage; returns a summary dict (figures and output paths)."""
    from subdivide.io.output import write_csv
    import geopandas as gpd
    import pandas as pd

    from subdivide.analysis.coverage import footprint_report
    from subdivide.present.map import build_map, package_map_writer
    from subdivide.carrier.package import build_package
    from subdivide.make.planning import plan_by_attribute
    from subdivide.make.regionalize import regionalize
    from subdivide.carrier.registry import Registry
    from subdivide.present.report import build_report
    from subdivide.analysis.sites import coverage_from_sites, synthetic_sites
    from subdivide.analysis.spill import spill_report, office_check, DEFAULT_DISTANCES_KM, format_summary
    from subdivide.io.townblocks import read_townblocks
    from subdivide.carrier.validation import validate_package
    from subdivide.cli.commands.spill import _points_summary

    outputs: dict[str, str] = {}
    summary: dict = {"outputs": outputs}

    # 1. town-blocks ---------------------------------------------------------------
    _stage(say, "1. town-blocks (subdivide info)")
    shp = sample / "h27ka03205.shp"
    blocks, info = read_townblocks(shp, progress=progress)
    d = out / "01_info"
    d.mkdir()
    (d / "info.txt").write_text(info.to_text() + "\n", encoding="utf-8")
    (d / "info.json").write_text(json.dumps(info.to_dict(), ensure_ascii=False, indent=2, sort_keys=True) + "\n",
                                 encoding="utf-8")
    say(info.to_text())
    summary["townblocks"] = {"records": info.records_in, "blocks": len(blocks),
                             "population": int(blocks["population"].sum()),
                             "households": int(blocks["households"].sum())}
    outputs["info"] = "01_info/info.txt"

    # 2. plans ------------------------------------------------------------------------
    _stage(say, "2. plan by 旧市町村 and automatic k = 4 (subdivide plan)")
    d = out / "02_plan"
    d.mkdir()
    plan, _ = plan_by_attribute(blocks, "OLD_MUNI", metadata={"inputs": [_input(shp)]})
    plan.save(d / "hanamaki_old_muni.plan.gpkg")
    outputs["plan (旧市町村)"] = "02_plan/hanamaki_old_muni.plan.gpkg"
    result = regionalize(blocks, k=[4], seed=0, progress=progress)
    auto = result.pick(4)
    auto.save(d / "hanamaki_auto_k4.plan.gpkg")
    write_csv(result.table, d / "auto_candidates.csv")
    outputs["plan (automatic k=4)"] = "02_plan/hanamaki_auto_k4.plan.gpkg"
    cols = ["subarea", "name", "code", "n_blocks", "population", "area_km2", "polsby_popper"]
    both = pd.concat([plan.metrics[cols].assign(plan="旧市町村"),
                      auto.metrics[cols].assign(plan="auto k=4")], ignore_index=True)
    write_csv(both.round(3), d / "plans_compared.csv")
    say("by 旧市町村:\n" + plan.metrics[cols].round(2).to_string(index=False))
    say("automatic, k = 4 (seed 0):\n" + auto.metrics[cols].round(2).to_string(index=False))
    summary["plan"] = plan.metrics[cols].round(3).to_dict(orient="records")
    summary["plan_auto_k4"] = auto.metrics[cols].round(3).to_dict(orient="records")

    # 3. spill ------------------------------------------------------------------------
    _stage(say, "3. spill at L = 2.0 / 2.5 / 3.0 km (subdivide spill)")
    offices = gpd.read_file(sample / "offices.geojson")
    report = spill_report(plan, progress=progress)
    report.extra["points"] = office_check(plan, offices, DEFAULT_DISTANCES_KM, point_name="office_name")
    report.write(out / "03_spill")
    say(format_summary(report))
    say(_points_summary(report.extra["points"], DEFAULT_DISTANCES_KM))
    outputs["spill"] = "03_spill/spill_subareas.csv"

    # 4. coverage ---------------------------------------------------------------------
    _stage(say, f"4. carrier footprints from synthetic sites {isd_km:g} km apart (subdivide spill --coverage)")
    d = out / "04_coverage"
    d.mkdir()
    outline = gpd.read_file(sample / "outline.geojson").to_crs(plan.crs)
    sites = synthetic_sites(outline, isd_km=isd_km, seed=0, carriers=("A", "B"), crs=plan.crs)
    coverage = coverage_from_sites(sites, crs=plan.crs)
    from subdivide.io.output import write_gpkg
    extra_geoms = [c for c in coverage.columns
                   if c != coverage.geometry.name and isinstance(coverage[c], gpd.GeoSeries)]
    write_gpkg({"coverage": coverage.drop(columns=extra_geoms)}, d / "synthetic_coverage.gpkg")
    fp = footprint_report(plan, coverage)
    for name, table in fp.items():
        write_csv(table, d / f"footprint_{name}.csv")
    show = fp["footprints"][[c for c in ("subarea", "carrier", "footprint_km2", "over_alert_km2",
                                          "under_alert_km2", "overshoot_p95_km", "overshoot_max_km")
                             if c in fp["footprints"].columns]]
    say(show.round(2).to_string(index=False))
    outputs["footprints"] = "04_coverage/footprint_footprints.csv"

    # 5. package + validation ---------------------------------------------------------
    _stage(say, "5. submission package and carrier-side validation (subdivide package / validate)")
    d = out / "05_package"
    d.mkdir()
    pkg = d / "hanamaki_03205_package.zip"
    build_package(plan, pkg, spill=report, review_map=package_map_writer, inputs={"townblocks": shp}, progress=progress)
    val = validate_package(pkg, outline=outline)
    val = dataclasses.replace(val, package=pkg.relative_to(out).as_posix())  # not the temp folder
    (d / "validation.json").write_text(val.to_json() + "\n", encoding="utf-8")
    (d / "validation.txt").write_text(val.table() + "\n", encoding="utf-8")
    say(val.table())
    if val.status != 0:
        raise UserError("the demo package did not validate clean", where=str(pkg))
    outputs["package"] = "05_package/hanamaki_03205_package.zip"
    outputs["validation"] = "05_package/validation.txt"
    summary["validation_status"] = val.status

    # 6. registry ---------------------------------------------------------------------
    _stage(say, "6. national registry (subdivide registry register)")
    d = out / "06_registry"
    d.mkdir()
    reg = Registry(d / "registry.sqlite")
    rec = reg.register(pkg, actor="demo", name="花巻市")
    say(registry_line(rec, reg.active_count()))
    outputs["registry"] = "06_registry/registry.sqlite"

    # 7. map and report ---------------------------------------------------------------
    _stage(say, "7. council map, summary report and print packet (subdivide map / report --pdf)")
    d = out / "07_map"
    d.mkdir()
    build_map(plan, d / "hanamaki_review.html", spill=report, points=offices, offline=True,
              coverage=coverage, sites=sites, title="花巻市 緊急速報メール 細分化案（サンプル）",
              note=SAMPLE_NOTE, progress=progress)
    build_report(plan, d / "report", spill=report, note=SAMPLE_NOTE, pdf=True, progress=progress)
    say("map: 07_map/hanamaki_review.html (opens offline); report: 07_map/report/report.html; "
        "print packet (A4 PDF): 07_map/report/report.pdf")
    outputs["map"] = "07_map/hanamaki_review.html"
    outputs["report"] = "07_map/report/report.html"
    outputs["print packet"] = "07_map/report/report.pdf"
    return summary


def registry_line(shown: dict, n_active: int) -> str:
    """The registry stage's line from ``Registry.show`` (the active registration)."""
    from subdivide.core.constants import MAX_MUNICIPALITIES

    active = shown.get("active")
    if not active:
        raise UserError(f"{shown.get('muni_code')} has no active registration after registering it")
    return (f"registered {active['muni_code']} {active['muni_name'] or '(no name)'}: "
            f"{active['n_subareas']} sub-areas, {active['n_townblocks']:,} town-blocks "
            f"(registration #{active['id']}); {n_active} of {MAX_MUNICIPALITIES} municipalities active")


def _input(path: Path) -> dict:
    from subdivide.io.output import sha256_file

    return {"path": path.name, "sha256": sha256_file(path)}
