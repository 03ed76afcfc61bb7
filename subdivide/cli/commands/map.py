"""``subdivide map``: the council-review map of a plan, one interactive HTML file.

Sub-areas in colour with a legend, town-block borders with tooltips and a name search,
layers for the inward core / outward reach / neighbour exposure at each spill distance,
optional carrier footprints, sites and office points; 地理院タイル or no basemap;
every library is inlined, so the file opens without internet (``--cdn`` links them
from the CDN instead, for a smaller file).
"""
from __future__ import annotations

from pathlib import Path

HELP = "write the council-review map (one self-contained interactive HTML file)"
EXAMPLE = """
  subdivide map hanamaki.plan.gpkg -o hanamaki_review.html
  subdivide map hanamaki.plan.gpkg -o review_no_tiles.html --basemap none \\
      --points data/hanamaki_03205/offices.geojson --note "境界は推定形状です"
  subdivide map plan.gpkg -o review.html --coverage docomo.gpkg --sites sites.csv --distances 2,3 --force
"""


def add_arguments(p) -> None:
    p.add_argument("plan", help="plan GeoPackage written by `subdivide plan`")
    p.add_argument("-o", "--output", metavar="HTML",
                   help="output file (default: the plan's name with .map.html)")
    p.add_argument("--basemap", choices=("pale", "std", "photo", "none"), default="pale",
                   help="地理院タイル 淡色 (pale, default), 標準 (std), 写真 (photo) or none "
                   "(no tiles: the page makes no network request)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--offline", action="store_true",
                   help="inline all JavaScript/CSS so the map opens with no internet, tiles aside (the default)")
    g.add_argument("--cdn", action="store_true",
                   help="link Leaflet and its plugins from the CDN instead: a smaller file that needs internet")
    p.add_argument("--distances", default="2,2.5,3", metavar="KM,KM,…",
                   help="spill distances L in km for the core/reach/exposure layers (default 2,2.5,3)")
    p.add_argument("--points", metavar="FILE",
                   help="office or measurement points (GeoJSON/GPKG, or CSV with lat/lon)")
    p.add_argument("--point-name", metavar="COL", help="name column of --points (default name/office_name)")
    p.add_argument("--coverage", action="append", metavar="FILE",
                   help="carrier coverage polygons (repeatable; see `subdivide spill --coverage`)")
    p.add_argument("--sites", metavar="CSV", help="base-station site list (lat, lon, carrier …)")
    p.add_argument("--title", metavar="TEXT", help="page heading (default: 〈市区町村名〉 細分化エリア 審議用地図)")
    p.add_argument("--note", metavar="TEXT",
                   help="caution shown in the explanation box, e.g. that the geometry is approximate")
    p.add_argument("--tolerance", type=float, default=15.0, metavar="M",
                   help="display simplification of town-block borders in metres (default 15; 0 = none)")
    p.add_argument("--progress", action="store_true", help="show progress on stderr")
    p.add_argument("--force", action="store_true", help="replace an existing output file")


def run(args) -> int:
    import geopandas as gpd
    import pandas as pd

    from subdivide.io.readers import read_points
    from subdivide.present.map import build_map
    from subdivide.model.plan import read_plan
    from subdivide.core.i18n import command_language, printer, stderr_progress
    from subdivide.analysis.spill import parse_distances

    lang = command_language(args)
    progress = stderr_progress(lang, args.progress)
    distances = parse_distances(args.distances)
    if not (args.tolerance >= 0 and args.tolerance <= 1000):      # also refuses NaN
        from subdivide.core.errors import UserError

        raise UserError(f"--tolerance {args.tolerance:g} m must lie in 0–1000", where="--tolerance",
                        fix="give the display simplification in metres, e.g. --tolerance 15 (0 = none)")
    out = Path(args.output) if args.output else Path(args.plan).with_suffix(".map.html")
    from subdivide.io.output import check_can_write

    inputs = [args.plan, args.points, args.sites, *(args.coverage or [])]
    check_can_write(out, args.force, inputs=inputs)
    plan = read_plan(args.plan)
    points = read_points(args.points, name_column=args.point_name) if args.points else None
    coverage = None
    if args.coverage:
        from subdivide.analysis.coverage import read_coverage

        parts = [read_coverage(f, plan.crs) for f in args.coverage]
        coverage = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=plan.crs)
    sites = None
    if args.sites:
        from subdivide.analysis.sites import read_sites

        sites = read_sites(args.sites)
    path = build_map(plan, out, distances_km=distances, coverage=coverage, sites=sites, points=points,
                     basemap=args.basemap, offline=not args.cdn, force=args.force, title=args.title,
                     note=args.note, tolerance_m=args.tolerance, inputs=inputs, progress=progress)
    printer(lang)(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB{'' if args.cdn else ', offline'})")
    return 0
