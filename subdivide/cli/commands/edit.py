"""``subdivide edit``: the interactive plan editor in the browser.

Runs a local web application (127.0.0.1 only, a per-session token in the URL) over a
plan GeoPackage, or over town-blocks with ``--by COLUMN`` to start from one sub-area per
value. Paint town-blocks into sub-areas and watch the figures (population, area, core
share at L, contiguity, exposures) update; save a plan GeoPackage and its key,subarea
CSV. Ctrl-C stops the server. See docs/editor.md.
"""
from __future__ import annotations

from pathlib import Path

from subdivide.cli.commands._reading import add_reading_arguments, column_mapping
from subdivide.core.errors import UserError

HELP = "edit a plan in the browser: paint town-blocks, see population and spill live, save"
EXAMPLE = """
  # start from the 旧市町村 of the bundled 花巻市 sample; the browser opens on the editor
  subdivide edit data/hanamaki_03205/h27ka03205.shp --by OLD_MUNI

  # edit a saved plan, compare it with the 旧市町村 plan, on a fixed port, no browser
  subdivide edit hanamaki.plan.gpkg --compare old_muni.plan.gpkg --port 8765 --no-browser

  # save inside another folder than the plan's (the editor writes nowhere else)
  subdivide edit hanamaki.plan.gpkg --out-dir ~/plans --output edited.plan.gpkg
"""


def add_arguments(p) -> None:
    p.add_argument("input", help="plan .gpkg (from `subdivide plan`), or a town-block file with --by")
    p.add_argument("--by", metavar="COLUMN", help="start from town-blocks: one sub-area per value of COLUMN "
                   "(e.g. OLD_MUNI)")
    add_reading_arguments(p)
    p.add_argument("--compare", action="append", default=[], metavar="PLAN.gpkg",
                   help="a plan to compare with in the page (repeatable; read only)")
    p.add_argument("--output", metavar="NAME.gpkg", help="output name proposed in the page "
                   "(default: the input's name with .edited.gpkg)")
    p.add_argument("--out-dir", action="append", default=[], metavar="DIR",
                   help="folder the page may save into (repeatable; default: the input's folder)")
    p.add_argument("--distance", type=float, default=2.0, metavar="KM",
                   help="starting spill distance L in km (the slider spans the trial's 1.6–3.3 km; default 2)")
    p.add_argument("--target", type=float, default=0.5, metavar="P",
                   help="target share of unreached core (warnings below it; default 0.5)")
    p.add_argument("--min-area", type=float, default=0.0, metavar="KM2",
                   help="area floor per sub-area in km² (an error below it; default none)")
    p.add_argument("--port", type=int, default=0, metavar="N", help="port on 127.0.0.1 (default: a free one)")
    p.add_argument("--no-browser", action="store_true", help="print the URL but do not open a browser")


def load_plan(args):
    """The plan to edit: a plan .gpkg, or town-blocks split by --by."""
    from subdivide.cli.commands.plan import is_plan_file

    if is_plan_file(args.input):
        if args.by:
            raise UserError("the input is already a plan: --by needs town-blocks", where=args.input,
                            fix="leave out --by, or give the town-block file")
        from subdivide.model.plan import read_plan

        return read_plan(args.input)
    if not args.by:
        raise UserError(f"{args.input} is not a plan GeoPackage", where=args.input,
                        fix="give a plan from `subdivide plan`, or town-blocks with --by COLUMN (e.g. --by OLD_MUNI)")
    from subdivide.io.townblocks import read_townblocks
    from subdivide.make.planning import plan_by_attribute

    blocks, _ = read_townblocks(args.input, muni_code=args.muni, crs=args.crs, layer=args.layer,
                                mapping=column_mapping(args), encoding=args.encoding)
    plan, _ = plan_by_attribute(blocks, args.by, muni_code=args.muni,
                                metadata={"inputs": [Path(args.input).name]})
    return plan


def run(args) -> int:
    from subdivide.core.i18n import command_language, printer
    from subdivide.present.editor.server import EditorApp, serve
    from subdivide.present.editor.session import EditSession, PathPolicy

    if not 0 <= args.port <= 65535:
        raise UserError(f"--port {args.port} is not a port number", fix="give 1024–65535, or leave it out")
    src = Path(args.input)
    for c in args.compare:
        if not Path(c).exists():
            raise UserError(f"--compare: {c} does not exist", where=c, fix="give a plan .gpkg")
    plan = load_plan(args)
    session = EditSession(plan, source=src, inputs=[src, *args.compare], distance_km=args.distance,
                          target_share=args.target, min_area_km2=args.min_area)
    dirs = tuple(Path(d).expanduser().resolve() for d in (args.out_dir or [src.parent]))
    for d in dirs:
        if not d.is_dir():
            raise UserError(f"--out-dir {d} is not a folder", where=str(d), fix="create it first")
    is_plan = src.suffix.lower() == ".gpkg" and not args.by
    protected = tuple(Path(c).resolve() for c in args.compare) + (() if is_plan else (src.resolve(),))
    policy = PathPolicy(out_dirs=dirs, protected=protected, plan_input=src.resolve() if is_plan else None)
    name = args.output or (src.name.removesuffix(".gpkg").removesuffix(".plan") + ".edited.gpkg"
                           if is_plan else src.stem + ".plan.gpkg")
    editor = EditorApp(session, policy=policy, compare={str(i + 1): Path(c) for i, c in enumerate(args.compare)},
                       port=args.port, default_output=name)
    serve(editor, port=args.port, open_browser=not args.no_browser, log=printer(command_language(args)))
    return 0
