"""``subdivide report``: an HTML summary of a plan with figures (matplotlib PNGs).

With ``--pdf`` also report.pdf, the A4 print packet (subdivide/present/packet.py).
Per-sub-area table, the unreached-share-versus-area curve at the L values in use (2, 2.5, 3 km) with every
sub-area on it, and the neighbour exposure matrix as a heat map.
"""
from __future__ import annotations

from pathlib import Path

HELP = "write an HTML summary report with figures (table, unreached-share curve, exposure matrix)"
EXAMPLE = """
  subdivide report hanamaki.plan.gpkg -o report/
  subdivide report hanamaki.plan.gpkg -o report/ --pdf --force      # + report.pdf, the A4 print packet
  subdivide report plan.gpkg -o report/ --distances 2,3 --note "境界は推定形状です" --force
"""


def add_arguments(p) -> None:
    p.add_argument("plan", help="plan GeoPackage written by `subdivide plan`")
    p.add_argument("-o", "--out", metavar="DIR",
                   help="output folder (default: the plan's name with _report); holds report.html and PNGs")
    p.add_argument("--distances", default="2,2.5,3", metavar="KM,KM,…",
                   help="spill distances L in km for the table and the exposure matrix (default 2,2.5,3)")
    p.add_argument("--curve-distances", metavar="KM,KM,…",
                   help="spill distances of the unreached-share curve (default: the --distances, 2,2.5,3)")
    p.add_argument("--pdf", action="store_true",
                   help="also write report.pdf: the A4 print packet (title, map with scale bar and north arrow, "
                        "sub-area table, curves, exposure, caveats)")
    p.add_argument("--title", metavar="TEXT", help="report heading")
    p.add_argument("--note", metavar="TEXT", help="caution printed under the heading")
    p.add_argument("--progress", action="store_true", help="show progress on stderr")
    p.add_argument("--force", action="store_true",
                   help="replace an earlier report folder (a folder holding anything else is never replaced)")


def run(args) -> int:
    from subdivide.io.output import check_can_write
    from subdivide.model.plan import read_plan
    from subdivide.core.i18n import command_language, printer, stderr_progress
    from subdivide.present.report import build_report, earlier_report
    from subdivide.analysis.spill import parse_distances

    lang = command_language(args)
    say = printer(lang)
    progress = stderr_progress(lang, args.progress)
    distances = parse_distances(args.distances)
    curve = parse_distances(args.curve_distances, where="--curve-distances") if args.curve_distances else distances
    out = Path(args.out) if args.out else Path(args.plan).with_name(Path(args.plan).stem.split(".")[0] + "_report")
    check_can_write(out, args.force, folder=True, inputs=[args.plan], command="report", owned=earlier_report)
    plan = read_plan(args.plan)
    path = build_report(plan, out, distances_km=distances, curve_distances_km=curve, title=args.title,
                        note=args.note, force=args.force, inputs=[args.plan], pdf=args.pdf, progress=progress)
    say(f"wrote {path}")
    if args.pdf:
        pdf = path.with_name("report.pdf")
        say(f"wrote {pdf} (A4 print packet, {pdf.stat().st_size / 1e6:.2f} MB)")
    return 0
