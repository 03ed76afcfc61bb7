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
from subdivide.core.progress import silent

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
    from subdivide.core.i18n import command_language, display_width, format_text, pgettext, printer, stderr_progress

    lang = command_language(args)
    say = (lambda *a: None) if args.quiet else printer(lang)
    progress = silent if args.quiet else stderr_progress(lang)
    started = time.perf_counter()
    # never over the sample, nor over a folder the demo did not write
    with atomic_dir(args.out, force=args.force, command="demo", inputs=[sample]) as out:
        summary = run_pipeline(sample, out, isd_km=args.isd_km, say=say, progress=progress, lang=lang)
        (out / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2, sort_keys=True) + "\n",
                                          encoding="utf-8")
    print("\n" + format_text("demo finished in {seconds} s; outputs in {path}/", lang,
                             seconds=f"{time.perf_counter() - started:.0f}", path=Path(args.out).resolve()))
    for name, path in summary["outputs"].items():   # aligned by display width (a kanji is two columns)
        shown = pgettext("demo output", name, lang)
        print(f"  {shown}{' ' * max(1, 25 - display_width(shown))}{path}")
    return 0


def _stage(say, title: str, lang: str = "en") -> None:
    from subdivide.core.i18n import display_width, translate_text

    shown = translate_text(title, lang)
    width = len(shown) if lang == "en" else display_width(shown)
    say(f"\n== {shown} " + "=" * max(0, 70 - width))


def run_pipeline(sample: Path, out: Path, *, isd_km: float = 7.0, say=print, progress=silent,
                 lang: str = "en") -> dict:
    """Run every stage; returns a summary dict (figures and output paths). ``say`` prints
    what each stage found (in ``lang``: the stage titles and the tables' headings)."""
    demo = _Pipeline(sample, out, isd_km=isd_km, say=say, progress=progress, lang=lang)
    for stage in (demo.info, demo.plans, demo.spill, demo.coverage, demo.package, demo.registry, demo.map):
        stage()
    return demo.summary


class _Pipeline:
    """The demo's seven stages, each a method writing its numbered folder; what a later
    stage needs (the plan, the spill report, the outline …) is kept as an attribute."""

    def __init__(self, sample: Path, out: Path, *, isd_km: float, say, progress, lang: str = "en"):
        self.sample, self.out, self.isd_km, self.say, self.progress = sample, out, isd_km, say, progress
        self.lang = lang
        self.shp = sample / "h27ka03205.shp"
        self.outputs: dict[str, str] = {}
        self.summary: dict = {"outputs": self.outputs}

    def _folder(self, name: str) -> Path:
        d = self.out / name
        d.mkdir()
        return d

    def info(self) -> None:
        from subdivide.cli.commands.info import report_json
        from subdivide.io.townblocks import read_townblocks

        _stage(self.say, "1. town-blocks (subdivide info)", self.lang)
        self.blocks, info = read_townblocks(self.shp, progress=self.progress)
        d = self._folder("01_info")
        (d / "info.txt").write_text(info.to_text() + "\n", encoding="utf-8")
        (d / "info.json").write_text(report_json(info), encoding="utf-8")
        self.say(info.to_text())
        b = self.blocks
        self.summary["townblocks"] = {"records": info.records_in, "blocks": len(b),
                                      "population": int(b["population"].sum()),
                                      "households": int(b["households"].sum())}
        self.outputs["info"] = "01_info/info.txt"

    def plans(self) -> None:
        import pandas as pd

        from subdivide.io.output import write_csv
        from subdivide.make.planning import plan_by_attribute
        from subdivide.cli.commands.plan import curve_text, planner_record
        from subdivide.make.regionalize import regionalize

        _stage(self.say, "2. plan by 旧市町村, and automatically for k = 1–14 (subdivide plan)", self.lang)
        d = self._folder("02_plan")
        plan, _ = plan_by_attribute(self.blocks, "OLD_MUNI", metadata={"inputs": [_input(self.shp)]})
        plan.save(d / "hanamaki_old_muni.plan.gpkg")
        self.outputs["plan (旧市町村)"] = "02_plan/hanamaki_old_muni.plan.gpkg"
        result = regionalize(self.blocks, k=range(1, 15), seed=0, progress=self.progress)
        self.say(curve_text(result))
        self.say(result.summary)
        auto = result.pick(4)                 # k = 4, to compare with the trial's four 旧市町村
        auto.metadata["planner"] = planner_record(result, "alerts")
        auto.save(d / "hanamaki_auto_k4.plan.gpkg")
        write_csv(result.table, d / "auto_candidates.csv")
        self.summary["planner"] = {"recommended_k": result.recommended_k,
                                   "curve": auto.metadata["planner"]["curve"]}
        self.outputs["plan (automatic k=4)"] = "02_plan/hanamaki_auto_k4.plan.gpkg"
        cols = ["subarea", "name", "code", "n_blocks", "population", "area_km2", "polsby_popper"]
        both = pd.concat([plan.metrics[cols].assign(plan="旧市町村"),
                          auto.metrics[cols].assign(plan="auto k=4")], ignore_index=True)
        write_csv(both.round(3), d / "plans_compared.csv")
        from subdivide.core.i18n import frame_text

        self.say("by 旧市町村:\n" + frame_text(plan.metrics[cols].round(2), self.lang))
        self.say("automatic, k = 4 (seed 0):\n" + frame_text(auto.metrics[cols].round(2), self.lang))
        self.summary["plan"] = plan.metrics[cols].round(3).to_dict(orient="records")
        self.summary["plan_auto_k4"] = auto.metrics[cols].round(3).to_dict(orient="records")
        self.plan = plan

    def spill(self) -> None:
        import geopandas as gpd

        from subdivide.analysis.spill import DEFAULT_DISTANCES_KM, format_summary, office_check, spill_report
        from subdivide.cli.commands.spill import _points_summary

        _stage(self.say, "3. spill at L = 2.0 / 2.5 / 3.0 km (subdivide spill)", self.lang)
        self.offices = gpd.read_file(self.sample / "offices.geojson")
        report = spill_report(self.plan, progress=self.progress)
        report.extra["points"] = office_check(self.plan, self.offices, DEFAULT_DISTANCES_KM, point_name="office_name")
        report.write(self.out / "03_spill")
        self.say(format_summary(report))
        self.say(_points_summary(report.extra["points"], DEFAULT_DISTANCES_KM))
        self.outputs["spill"] = "03_spill/spill_subareas.csv"
        self.report = report

    def coverage(self) -> None:
        import geopandas as gpd

        from subdivide.analysis.coverage import footprint_report
        from subdivide.analysis.sites import coverage_from_sites, synthetic_sites
        from subdivide.io.output import write_csv, write_gpkg

        _stage(self.say, f"4. carrier footprints from synthetic sites {self.isd_km:g} km apart "
               "(subdivide spill --coverage)", self.lang)
        d = self._folder("04_coverage")
        crs = self.plan.crs
        self.outline = gpd.read_file(self.sample / "outline.geojson").to_crs(crs)
        self.sites = synthetic_sites(self.outline, isd_km=self.isd_km, seed=0, carriers=("A", "B"), crs=crs)
        coverage = self.cov = coverage_from_sites(self.sites, crs=crs)
        extra_geoms = [c for c in coverage.columns
                       if c != coverage.geometry.name and isinstance(coverage[c], gpd.GeoSeries)]
        write_gpkg({"coverage": coverage.drop(columns=extra_geoms)}, d / "synthetic_coverage.gpkg")
        fp = footprint_report(self.plan, coverage)
        for name, table in fp.items():
            write_csv(table, d / f"footprint_{name}.csv")
        show = fp["footprints"][[c for c in ("subarea", "carrier", "footprint_km2", "over_alert_km2",
                                              "under_alert_km2", "overshoot_p95_km", "overshoot_max_km")
                                 if c in fp["footprints"].columns]]
        from subdivide.core.i18n import frame_text

        self.say(frame_text(show.round(2), self.lang))
        self.outputs["footprints"] = "04_coverage/footprint_footprints.csv"

    def package(self) -> None:
        from subdivide.carrier.package import build_package
        from subdivide.carrier.validation import validate_package
        from subdivide.present.map import package_map_writer

        _stage(self.say, "5. submission package and carrier-side validation (subdivide package / validate)",
               self.lang)
        d = self._folder("05_package")
        pkg = self.pkg = d / "hanamaki_03205_package.zip"
        build_package(self.plan, pkg, spill=self.report, review_map=package_map_writer,
                      inputs={"townblocks": self.shp}, progress=self.progress)
        val = validate_package(pkg, outline=self.outline)
        val = dataclasses.replace(val, package=pkg.relative_to(self.out).as_posix())  # not the temp folder
        (d / "validation.json").write_text(val.to_json() + "\n", encoding="utf-8")
        (d / "validation.txt").write_text(val.table() + "\n", encoding="utf-8")
        self.say(validation_text(val, self.lang))
        if val.status != 0:
            raise UserError("the demo package did not validate clean", where=str(pkg))
        self.outputs["package"] = "05_package/hanamaki_03205_package.zip"
        self.outputs["validation"] = "05_package/validation.txt"
        self.summary["validation_status"] = val.status

    def registry(self) -> None:
        from subdivide.carrier.registry import Registry

        _stage(self.say, "6. national registry (subdivide registry register)", self.lang)
        d = self._folder("06_registry")
        reg = Registry(d / "registry.sqlite")
        rec = reg.register(self.pkg, actor="demo", name="花巻市")
        self.say(registry_line(rec, reg.active_count()))
        self.outputs["registry"] = "06_registry/registry.sqlite"

    def map(self) -> None:
        from subdivide.present.map import build_map
        from subdivide.present.report import build_report

        _stage(self.say, "7. council map, summary report and print packet (subdivide map / report --pdf)",
               self.lang)
        d = self._folder("07_map")
        build_map(self.plan, d / "hanamaki_review.html", spill=self.report, points=self.offices, offline=True,
                  coverage=self.cov, sites=self.sites, title="花巻市 緊急速報メール 細分化案（サンプル）",
                  note=SAMPLE_NOTE, progress=self.progress)
        build_report(self.plan, d / "report", spill=self.report, note=SAMPLE_NOTE, pdf=True, progress=self.progress)
        self.say("map: 07_map/hanamaki_review.html (opens offline); report: 07_map/report/report.html; "
                 "print packet (A4 PDF): 07_map/report/report.pdf")
        self.outputs["map"] = "07_map/hanamaki_review.html"
        self.outputs["report"] = "07_map/report/report.html"
        self.outputs["print packet"] = "07_map/report/report.pdf"


def validation_text(val, lang: str = "en") -> str:
    """The validation stage's text: the carrier's table (English), or in Japanese each finding
    with its fix line and the verdict naming the municipality (as ``subdivide validate``)."""
    if lang == "en":
        return val.table()
    from subdivide.cli.commands.validate import municipality_of, report_text, verdict_line

    code, name = municipality_of(val, {})
    return report_text(val, verdict_line(val, code, name, lang), lang)


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
