"""``subdivide run``: from a town-block file to a validated submission package, in one process.

What `info`, `plan`, `spill`, `package`, `validate`, `map` and `report` do one after the
other, with the file read once and the spill computed once (the package's summary and
map, the council map and the report all use the same spill report), written into one
folder::

    OUT/
      info.txt, info.json      what was read (as `subdivide info` prints it)
      plan.gpkg                the plan (as `subdivide plan --out` writes it)
      candidates.csv           --auto only: the ranked candidates
      overlay_review.csv       --overlay only: blocks to review
      spill/                   spill_*.csv and spill.json (as `subdivide spill --out`)
      package/                 the carriers' submission package (as `subdivide package --out`)
      validation.txt, .json    the package validated as a carrier would (`subdivide validate`)
      map.html                 the council map (as `subdivide map`; offline)
      report/                  report.html and its figures (+ report.pdf with --pdf)
      summary.json             counts, verdict and the files written

The folder appears only when every stage succeeded (a refused plan writes nothing). The
exit status is the validation's: 0 clean, 1 if the package breaks a carrier rule (the
folder is still written, so the findings can be read). The plan options are those of
`subdivide plan`; an existing plan .gpkg as input skips the reading and the making.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

HELP = "from a town-block file to a validated package, map and report in one run (one folder)"
EXAMPLE = """
  # the trial's 4 sub-areas of 花巻市: plan, spill, package (validated), map and report in ./hanamaki-run/
  subdivide run data/hanamaki_03205/h27ka03205.shp --by OLD_MUNI --out hanamaki-run

  # 鳥取市 from the prefecture file, automatic plan, with the A4 print packet
  subdivide run ../shared/data/tottori_31_estat2015/h27ka31.shp --muni 31201 --auto --k 2-8 \\
      --out tottori-run --pdf --force

  # an existing plan: spill, package, validation, map and report only
  subdivide run hanamaki.plan.gpkg --out hanamaki-run --force
"""

def add_arguments(p) -> None:
    from subdivide.cli.commands.plan import add_making_arguments

    p.add_argument("input", help="town-block file (.shp/.zip/.gpkg/.geojson), or a plan .gpkg made earlier")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (written whole, or not at all)")
    add_making_arguments(p, files=False)
    out = p.add_argument_group("what the run writes")
    out.add_argument("--distances", default="2,2.5,3", metavar="KM,KM,…",
                     help="spill distances L in km for the spill report, the map and the report (default 2,2.5,3)")
    out.add_argument("--profile", metavar="FILE", help="carrier profile TOML of the package (default profile)")
    out.add_argument("--zip", action="store_true", help="write the package as package.zip (deterministic) "
                     "instead of a folder")
    out.add_argument("--pdf", action="store_true", help="also write report/report.pdf, the A4 print packet")
    out.add_argument("--title", metavar="TEXT", help="heading of the map and the report")
    out.add_argument("--note", metavar="TEXT", help="caution shown on the map and the report, e.g. that the "
                     "geometry is approximate")
    out.add_argument("--force", action="store_true",
                     help="replace an earlier run folder (a folder holding anything else is never replaced)")


def run(args) -> int:
    from subdivide.analysis.spill import parse_distances
    from subdivide.cli.commands import plan as plan_cmd
    from subdivide.core.i18n import command_language, format_text, printer, stderr_progress
    from subdivide.io.output import atomic_dir

    plan_cmd.check_making(args)
    distances = parse_distances(args.distances)
    lang = command_language(args)
    say = printer(lang)
    progress = stderr_progress(lang, bool(args.progress or args.auto))
    inputs = [args.input, args.mapping, args.overlay, args.import_csv, args.profile]
    started = time.perf_counter()
    with atomic_dir(args.out, force=args.force, command="run", inputs=[i for i in inputs if i]) as tmp:
        stages = _Run(args, tmp, distances=distances, progress=progress, lang=lang)
        summary = stages.all()
    say(stages.verdict)
    print(format_text("run finished in {seconds} s; outputs in {path}/", lang,
                      seconds=f"{time.perf_counter() - started:.1f}", path=Path(args.out).resolve()))
    for name in summary["written"]:
        print(f"  {name}")
    return summary["validation"]["status"]


class _Run:
    """The stages of one run, each writing its part of the folder ``out``; what a later
    stage needs (blocks, plan, spill report, package path) is kept as an attribute."""

    def __init__(self, args, out: Path, *, distances, progress, lang: str):
        self.args, self.out, self.distances, self.progress, self.lang = args, out, distances, progress, lang
        self.summary: dict = {"written": []}
        self.verdict = ""

    def _wrote(self, name: str) -> None:
        self.summary["written"].append(name)

    def all(self) -> dict:
        self.make_plan()
        self.spill()
        self.package()
        self.validate()
        self.draw()
        (self.out / "summary.json").write_text(json.dumps(self.summary, ensure_ascii=False, indent=2,
                                                          sort_keys=True) + "\n", encoding="utf-8")
        self._wrote("summary.json")
        return self.summary

    def make_plan(self) -> None:
        from subdivide.cli.commands import plan as plan_cmd
        from subdivide.io.output import write_csv
        from subdivide.model.plan import read_plan

        args = self.args
        plan, made = plan_cmd.make_plan(args, self.progress, command="run")
        if made.read is not None:
            from subdivide.cli.commands.info import report_json

            (self.out / "info.txt").write_text(made.read.to_text() + "\n", encoding="utf-8")
            (self.out / "info.json").write_text(report_json(made.read), encoding="utf-8")
            self._wrote("info.txt")
            self._wrote("info.json")
        plan = plan_cmd.apply_edits(plan, args, made)
        plan_cmd.check_floors(plan, args)
        plan.save(self.out / "plan.gpkg")
        self._wrote("plan.gpkg")
        # downstream works on the plan as saved (GeoPackage polygons are multipart, the metadata
        # gains what saving records), as the separate commands do: the same bytes as theirs
        plan = read_plan(self.out / "plan.gpkg")
        if made.result is not None:
            from subdivide.make.planning import candidates_table

            write_csv(candidates_table(made.result.table, headers="ja"), self.out / "candidates.csv")
            self._wrote("candidates.csv")
        if made.review is not None:
            write_csv(made.review, self.out / "overlay_review.csv")
            self._wrote("overlay_review.csv")
        plan_cmd.print_summary(plan, made, [], self.lang)
        self.plan = plan
        self.summary["plan"] = {"muni_code": plan.muni_code, "subareas": plan.k, "townblocks": len(plan.blocks),
                                "population": int(plan.blocks["population"].sum())}

    def spill(self) -> None:
        from subdivide.analysis.spill import format_summary, spill_report
        from subdivide.core.i18n import printer

        self.report = spill_report(self.plan, distances_km=self.distances, progress=self.progress)
        # spill.json names its plan, as `subdivide spill` does (here: the one beside it); only
        # there: the package's copy of the report stays what `subdivide package` writes
        self.report.parameters["plan"] = "plan.gpkg"
        try:
            self.report.write(self.out / "spill")
        finally:
            del self.report.parameters["plan"]
        self._wrote("spill/")
        printer(self.lang)(format_summary(self.report))

    def package(self) -> None:
        from functools import partial

        from subdivide.carrier.package import build_package
        from subdivide.present.map import map_geometry, package_map_writer

        self.pkg = self.out / ("package.zip" if self.args.zip else "package")
        self.geometry = map_geometry(self.plan)      # both maps draw the same display geometry
        build_package(self.plan, self.pkg, profile=self.args.profile, spill=self.report,
                      inputs={"plan": self.out / "plan.gpkg",
                              **({"profile": self.args.profile} if self.args.profile else {})},
                      review_map=partial(package_map_writer, geometry=self.geometry), progress=self.progress)
        self._wrote(self.pkg.name + ("" if self.args.zip else "/"))

    def validate(self) -> None:
        from subdivide.carrier.validation import validate_package
        from subdivide.cli.commands.validate import municipality_of, report_text, verdict_line

        report = validate_package(self.pkg, profile=self.args.profile)
        report.package = str(Path(self.args.out) / self.pkg.name)   # where it will be, not the temporary folder
        code, name = municipality_of(report, {})
        line = verdict_line(report, code, name, self.lang)
        (self.out / "validation.txt").write_text(report_text(report, line, self.lang) + "\n", encoding="utf-8")
        (self.out / "validation.json").write_text(report.to_json(), encoding="utf-8")
        self._wrote("validation.txt")
        self._wrote("validation.json")
        counts = report.to_dict()["counts"]
        self.summary["validation"] = {"status": report.status, **counts}
        self.verdict = line

    def draw(self) -> None:
        from subdivide.present.map import build_map
        from subdivide.present.report import build_report

        args = self.args
        build_map(self.plan, self.out / "map.html", spill=self.report, distances_km=self.distances,
                  title=args.title, note=args.note, geometry=self.geometry, progress=self.progress)
        self._wrote("map.html")
        build_report(self.plan, self.out / "report", spill=self.report, distances_km=self.distances,
                     title=args.title, note=args.note, pdf=args.pdf, progress=self.progress)
        self._wrote("report/")
