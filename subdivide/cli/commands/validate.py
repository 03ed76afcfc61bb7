"""``subdivide validate``: what a carrier runs on a package it receives.

Prints a table of findings (rule id, severity, message, offending features) and writes
a JSON report with ``--json FILE``. Exit status 0 clean, 1 errors found, 2 unreadable.
See docs/validation.md for every rule.
"""
from __future__ import annotations

import json
import sys

from subdivide.core.errors import UserError

HELP = "validate a received package (directory or zip): exit 0 clean, 1 errors, 2 unreadable"
EXAMPLE = """
  subdivide validate hanamaki-package.zip
  subdivide validate hanamaki-package.zip pkg/ --quiet --json reports.json   # several: a JSON list
  subdivide validate pkg/ --outline data/hanamaki_03205/outline.geojson --json report.json
  subdivide validate pkg.zip --coverage coverage.gpkg --selection site --profile subdivide/carrier/profiles/default.toml
  # (packages from `subdivide package --help`, coverage.gpkg from `subdivide spill --help`)
"""


def add_arguments(p) -> None:
    p.add_argument("package", nargs="+", help="package directory or zip (several: one summary line each, "
                   "exit status the worst)")
    p.add_argument("--profile", metavar="FILE", help="carrier profile TOML (default profile if omitted)")
    p.add_argument("--outline", metavar="FILE", help="municipal outline: check gaps and overlaps against it")
    p.add_argument("--coverage", metavar="FILE", help="the carrier's coverage polygons: add its footprint report")
    p.add_argument("--selection", choices=("any", "site", "share"), help="cell selection rule for --coverage")
    p.add_argument("--spill-km", metavar="L,…", help="spill distances in km (default: the package's spill "
                   "summary, else 2,2.5,3); the smallest is the design distance")
    p.add_argument("--target-share", type=float, metavar="P", help="unreached share target (default 0.5)")
    p.add_argument("--json", metavar="FILE", help="write the JSON report to FILE ('-' for stdout)")
    p.add_argument("--quiet", action="store_true", help="print only the verdict line")
    p.add_argument("--force", action="store_true", help="replace an existing --json file")


def _distances(text):
    if text is None:
        return None
    try:
        vals = tuple(float(x) for x in str(text).split(",") if x.strip())
    except ValueError:
        raise UserError(f"--spill-km {text!r} is not a list of numbers", fix="e.g. --spill-km 2,2.5,3") from None
    if not vals or any(v <= 0 for v in vals):
        raise UserError(f"--spill-km {text!r} must list positive distances", fix="e.g. --spill-km 2,2.5,3")
    return vals


def run(args) -> int:
    from subdivide.io.output import atomic_path, check_can_write
    from subdivide.carrier.validation import validate_package

    out = sys.stderr if args.json == "-" else sys.stdout
    distances = _distances(args.spill_km)
    if args.target_share is not None and not 0 < args.target_share <= 1:
        raise UserError(f"--target-share {args.target_share:g} must be a share in (0, 1]",
                        fix="e.g. --target-share 0.5 for 50 %")
    inputs = [*args.package, args.profile, args.outline, args.coverage]
    if args.json and args.json != "-":
        # refuse before a long validation, not after; never over a package being validated
        check_can_write(args.json, args.force, inputs=inputs)
    reports = []
    for i, pkg in enumerate(args.package):
        report = validate_package(pkg, profile=args.profile, outline=args.outline,
                                  coverage=args.coverage, coverage_selection=args.selection,
                                  spill_km=distances, target_share=args.target_share)
        reports.append(report)
        table = report.table()
        if args.quiet:
            print(table.splitlines()[-1], file=out)
            continue
        print(("\n" if i else "") + table, file=out)
    if len(reports) > 1 and not args.quiet:
        print(f"\n{len(reports)} packages:", file=out)
        for report in reports:
            print("  " + report.table().splitlines()[-1], file=out)
    if len(reports) == 1:
        text = reports[0].to_json()
    else:   # a JSON list of the single-package reports, in the order given
        text = json.dumps([r.to_dict() for r in reports], ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    if args.json == "-":
        sys.stdout.write(text)
    elif args.json:
        with atomic_path(args.json, force=args.force, inputs=inputs) as tmp:
            tmp.write_text(text, encoding="utf-8")
    return max(r.status for r in reports)
