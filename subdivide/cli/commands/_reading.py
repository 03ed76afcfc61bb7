"""The town-block reading options shared by commands that read a town-block file
(``info``, ``plan``): one definition, one meaning everywhere."""
from __future__ import annotations

from subdivide.core.errors import UserError


def add_reading_arguments(p, *, target_crs: bool = False) -> None:
    """--muni --crs [--target-crs] --encoding --layer and the column mapping options."""
    p.add_argument("--muni", metavar="CODE", help="municipality code (5 or 6 digits) to select from a "
                   "prefecture-wide file, e.g. 03205")
    p.add_argument("--crs", metavar="CRS", help="CRS of the file when its .prj is missing or wrong, "
                   "e.g. EPSG:4612 (JGD2000) or EPSG:6668 (JGD2011; assumed for lon/lat files that declare none)")
    if target_crs:
        p.add_argument("--target-crs", metavar="CRS", help="projected CRS for areas (default: the "
                       "prefecture's plane-rectangular zone)")
    p.add_argument("--encoding", metavar="ENC", help="text encoding of the .dbf (default: the .cpg, else utf-8 "
                   "when the bytes are UTF-8, else cp932)")
    p.add_argument("--layer", metavar="NAME", help="layer of a multi-layer file (default: the one town-block "
                   "layer, e.g. 'town' of a CODH TopoJSON), or Shapefile inside a zip")
    p.add_argument("--key", metavar="COL", help="key column of a non-e-Stat layer (turns on column mapping)")
    p.add_argument("--name", metavar="COL", help="name column (with --key)")
    p.add_argument("--population", metavar="COL", help="population column (with --key)")
    p.add_argument("--households", metavar="COL", help="households column (with --key)")
    p.add_argument("--muni-column", metavar="COL", help="municipality-code column (with --key)")


def column_mapping(args):
    """The ColumnMapping the options ask for, or None for an e-Stat file."""
    from subdivide.io.townblocks import ColumnMapping

    if args.key:
        return ColumnMapping(key=args.key, name=args.name, population=args.population,
                             households=args.households, muni_code=args.muni_column)
    if any([args.name, args.population, args.households, args.muni_column]):
        raise UserError("--name/--population/--households/--muni-column need --key",
                        fix="give --key COL to read a non-e-Stat layer with a column mapping")
    return None
