"""``subdivide info``: read a town-block file and say what is in it.

Layout (and the e-Stat columns matched), the layer chosen, text encoding (and how it was
decided), CRS in and out (and any assumed), the municipalities (code, name, town-blocks and
population of each, in a prefecture-wide file), every attribute column and those that could
group town-blocks into sub-areas (``--by OLD_MUNI``), records before and town-blocks after
dissolving multi-part units, totals (population, households, computed area vs the official
AREA), flags, geometry repairs and dropped rows. Human text by default (Japanese with
``--lang ja`` or a Japanese locale, through the message catalogue), ``--json`` for machines
(always English keys). Writes nothing.
"""
from __future__ import annotations

import json
import sys

from subdivide.cli.commands._reading import add_reading_arguments, column_mapping

HELP = "describe a town-block file (layout, encoding, CRS, counts, totals, repairs, dropped rows)"
EXAMPLE = """
  subdivide info data/hanamaki_03205/h27ka03205.shp
  subdivide info data/hanamaki_03205/hanamaki_sample.gpkg --layer townblocks_estat --json

  # your own files (not bundled): a prefecture-wide zip from e-Stat, one municipality of it
  subdivide info h27ka03.zip --muni 03205 --json
  # the CODH/NII republication (TopoJSON, layers town + city, no CRS): the town layer is chosen
  subdivide info r2ka03205.topojson
  # a non-e-Stat polygon layer: say which columns hold the key, name and 人口
  subdivide info blocks.gpkg --layer blocks --key code --name name --population pop --muni 03205
"""


def add_arguments(p) -> None:
    p.add_argument("file", help="e-Stat Shapefile (.shp or .zip), GeoPackage, GeoJSON or TopoJSON")
    add_reading_arguments(p, target_crs=True)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--progress", action="store_true", help="show progress on stderr")


def report_json(report) -> str:
    """The read report as JSON text, as `info --json` prints it (and `run` and `demo` write
    it to info.json)."""
    return json.dumps(report.to_dict(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def run(args) -> int:
    from subdivide.core.i18n import command_language, stderr_progress, translate_lines
    from subdivide.io.townblocks import read_townblocks
    lang = command_language(args)
    mapping = column_mapping(args)
    progress = stderr_progress(lang, args.progress)
    _, report = read_townblocks(args.file, muni_code=args.muni, crs=args.crs, target_crs=args.target_crs,
                                mapping=mapping, encoding=args.encoding, layer=args.layer, progress=progress)
    if args.json:
        sys.stdout.write(report_json(report))
    else:
        print(translate_lines(report.to_text(), lang))
    return 0
