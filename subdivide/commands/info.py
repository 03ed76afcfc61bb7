"""``subdivide info``: read a town-block file and say what is in it.

Layout, text encoding (and how it was decided), CRS in and out, records before and
town-blocks after dissolving multi-part units, totals (population, households, computed
area vs the official AREA), flags, geometry repairs and dropped rows. Human text by
default, ``--json`` for machines. Writes nothing.
"""
from __future__ import annotations

import json
import sys

from ..progress import StderrProgress, silent
from ..townblocks import ColumnMapping, read_townblocks

HELP = "describe a town-block file (layout, encoding, CRS, counts, totals, repairs, dropped rows)"
EXAMPLE = """
  subdivide info data/hanamaki_03205/h27ka03205.shp
  subdivide info data/hanamaki_03205/hanamaki_sample.gpkg --layer townblocks_estat --json

  # your own files (not bundled): a prefecture-wide zip from e-Stat, one municipality of it
  subdivide info h27ka03.zip --muni 03205 --json
  # a non-e-Stat polygon layer: say which columns hold the key, name and 人口
  subdivide info blocks.gpkg --layer blocks --key code --name name --population pop --muni 03205
"""


def add_arguments(p) -> None:
    p.add_argument("file", help="e-Stat Shapefile (.shp or .zip), GeoPackage or GeoJSON")
    p.add_argument("--muni", metavar="CODE", help="municipality code (5 or 6 digits) to select from a "
                   "prefecture-wide file, e.g. 03205")
    p.add_argument("--crs", metavar="CRS", help="CRS of the file when its .prj is missing or wrong, "
                   "e.g. EPSG:4612 (JGD2000) or EPSG:6668 (JGD2011)")
    p.add_argument("--target-crs", metavar="CRS", help="projected CRS for areas (default: the "
                   "prefecture's plane-rectangular zone)")
    p.add_argument("--encoding", metavar="ENC", help="text encoding of the .dbf (default: the .cpg, else cp932)")
    p.add_argument("--layer", metavar="NAME", help="layer of a GeoPackage, or Shapefile inside a zip")
    p.add_argument("--key", metavar="COL", help="key column of a non-e-Stat layer (turns on column mapping)")
    p.add_argument("--name", metavar="COL", help="name column (with --key)")
    p.add_argument("--population", metavar="COL", help="population column (with --key)")
    p.add_argument("--households", metavar="COL", help="households column (with --key)")
    p.add_argument("--muni-column", metavar="COL", help="municipality-code column (with --key)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--progress", action="store_true", help="show progress on stderr")


def run(args) -> int:
    mapping = None
    if args.key:
        mapping = ColumnMapping(key=args.key, name=args.name, population=args.population,
                                households=args.households, muni_code=args.muni_column)
    elif any([args.name, args.population, args.households, args.muni_column]):
        from ..errors import UserError

        raise UserError("--name/--population/--households/--muni-column need --key",
                        fix="give --key COL to read a non-e-Stat layer with a column mapping")
    progress = StderrProgress() if args.progress else silent
    _, report = read_townblocks(args.file, muni_code=args.muni, crs=args.crs, target_crs=args.target_crs,
                                mapping=mapping, encoding=args.encoding, layer=args.layer, progress=progress)
    if args.json:
        json.dump(report.to_dict(), sys.stdout, ensure_ascii=False, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        print(report.to_text())
    return 0
