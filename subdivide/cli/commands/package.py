"""``subdivide package``: build the carrier submission package from a plan.

Writes the 町丁目 Shapefile (CP932, .cpg, LDID 0x13), the dissolved sub-area Shapefile,
the GeoPackage, the area-code lists (CSV + XLSX), the spill summary, the review map and
manifest.json into a directory or a deterministic zip. See docs/package.md.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from subdivide.core.errors import UserError

HELP = "build the carrier submission package (Shapefiles, GeoPackage, lists, spill, map, manifest)"
EXAMPLE = """
  # from the repo root, after: subdivide plan data/hanamaki_03205/h27ka03205.shp --by OLD_MUNI --out hanamaki.plan.gpkg
  subdivide package hanamaki.plan.gpkg --out hanamaki-package.zip
  subdivide package hanamaki.plan.gpkg --out pkg/ --csv-encoding cp932 --no-map --force
  subdivide package hanamaki.plan.gpkg --out pkg.zip --online-map     # map loads Leaflet from the CDN
  subdivide package hanamaki.plan.gpkg --out pkg.zip --profile subdivide/carrier/profiles/default.toml
"""


def add_arguments(p) -> None:
    p.add_argument("plan", help="plan GeoPackage written by `subdivide plan`")
    p.add_argument("--out", required=True, metavar="DIR|ZIP",
                   help="output directory, or a file ending in .zip for a deterministic zip")
    p.add_argument("--profile", metavar="FILE", help="carrier profile TOML (default: subdivide/carrier/profiles/default.toml)")
    p.add_argument("--csv-encoding", choices=("utf-8", "cp932"),
                   help="list encoding: utf-8 (with BOM, default) or cp932 (fails on characters it cannot encode)")
    p.add_argument("--no-spill", action="store_true", help="leave out the spill summary")
    p.add_argument("--no-map", action="store_true", help="leave out the review map")
    p.add_argument("--online-map", action="store_true",
                   help="load the map's scripts from the CDN instead of inlining them "
                        "(smaller file; by default the map opens with no internet)")
    # the former opt-in (now the default), still accepted: the QGIS plugin passes it
    p.add_argument("--offline-map", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--force", action="store_true",
                   help="replace an earlier package (a folder holding anything else is never replaced)")
    p.add_argument("--progress", action="store_true", help="show progress on stderr")


def run(args) -> int:
    if args.online_map and args.offline_map:
        raise UserError("--online-map and --offline-map contradict each other",
                        fix="give one (the map is offline by default)")
    from subdivide.carrier.package import build_package
    from subdivide.core.i18n import command_language, printer, stderr_progress
    from subdivide.present.map import package_map_writer
    from subdivide.model.plan import read_plan

    lang = command_language(args)
    say = printer(lang)
    plan_path = Path(args.plan)
    if not plan_path.is_file():
        raise UserError(f"plan {plan_path} does not exist", fix="make one with `subdivide plan`")
    plan = read_plan(plan_path)
    out = build_package(plan, args.out, profile=args.profile, csv_encoding=args.csv_encoding,
                        inputs={"plan": plan_path, **({"profile": args.profile} if args.profile else {})},
                        spill=not args.no_spill, review_map=None if args.no_map else package_map_writer, offline_map=not args.online_map,
                        force=args.force, progress=stderr_progress(lang, args.progress))
    say(f"package written: {out}  ({len(plan.blocks)} town-blocks, {plan.k} sub-areas)")
    say(f"next: subdivide validate {out}")
    return 0
