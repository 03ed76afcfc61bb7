"""``subdivide plan``: make or edit a sub-area plan and save it as a GeoPackage.

Input is a town-block file (read with ``read_townblocks``) or an existing plan .gpkg
(detected by its layers) to edit. One way to make the plan:

- ``--by COLUMN``               one sub-area per value (e.g. OLD_MUNI)
- ``--mapping FILE [--by COL]``  CSV/XLSX key → sub-area name (keys: block keys or COL values)
- ``--overlay FILE --overlay-name COL``  polygon holding most of each block's area
- ``--auto``                    contiguity-constrained regionalization (ranked candidates)
- ``--import-csv FILE``         a block-assignment CSV (key,subarea)

then edits in this order: ``--move``, ``--merge``, ``--rename``; then the checks
(Plan rules, and floors / nesting when asked); then outputs. Refusals exit 2 and name
the offending town-blocks; nothing is written unless every check passes.
"""
from __future__ import annotations

import sys
from pathlib import Path

from subdivide.core.constants import MAX_SUBAREAS
from subdivide.core.errors import UserError
from subdivide.core.progress import StderrProgress, silent

from subdivide.cli.commands._reading import add_reading_arguments, column_mapping

HELP = "make or edit a sub-area plan (by 旧市町村, mapping, overlay, automatic, edits, CSV)"
EXAMPLE = """
  # the trial's 4 sub-areas of 花巻市 from the 旧市町村 column
  subdivide plan data/hanamaki_03205/h27ka03205.shp --by OLD_MUNI --out hanamaki.plan.gpkg

  # automatic: k = 2..6, each sub-area ≥ 40 % unreached core at L = 2 km, following 旧市町村
  # (at 50 % no plan of 花巻市 with 2 or more sub-areas is feasible: the command says so)
  subdivide plan data/hanamaki_03205/h27ka03205.shp --auto --k 2-6 --min-core 0.4 --spill-km 2 \\
      --follow-old OLD_MUNI --seed 0 --candidates-out candidates.csv --out auto.plan.gpkg

  # edit a saved plan: move a town-block, rename, export the block list
  # (豊沢 032050580 from 花巻地域 to 石鳥谷地域; 花巻地域 renamed 花巻中央地域)
  subdivide plan hanamaki.plan.gpkg --move 032050580=3 --rename 1=花巻中央地域 \\
      --export-csv hanamaki_blocks.csv --out edited.plan.gpkg
"""


def add_arguments(p) -> None:
    p.add_argument("input", help="town-block file (.shp/.zip/.gpkg/.geojson) or a plan .gpkg to edit")
    p.add_argument("--out", metavar="PLAN.gpkg", help="plan GeoPackage to write")
    how = p.add_argument_group("how to make the plan (one of)")
    how.add_argument("--by", metavar="COLUMN", help="one sub-area per value of COLUMN (e.g. OLD_MUNI); "
                     "with --mapping: the column the mapping's keys refer to")
    how.add_argument("--mapping", metavar="FILE", help="CSV/XLSX with columns key,subarea")
    how.add_argument("--overlay", metavar="FILE", help="polygon layer (e.g. pre-merger boundaries)")
    how.add_argument("--overlay-name", metavar="COL", help="name column of the overlay polygons")
    how.add_argument("--overlay-layer", metavar="NAME", help="layer of a GeoPackage overlay with several layers")
    how.add_argument("--overlay-min-share", type=float, default=0.6, metavar="P",
                     help="review blocks whose top share is below P (default 0.6)")
    how.add_argument("--overlay-min-margin", type=float, default=0.2, metavar="M",
                     help="review blocks whose margin to the runner-up is below M (default 0.2)")
    how.add_argument("--review-out", metavar="CSV", help="write the overlay review list")
    how.add_argument("--auto", action="store_true", help="automatic contiguous regionalization")
    how.add_argument("--import-csv", metavar="FILE", help="block-assignment CSV (key,subarea)")
    auto = p.add_argument_group("automatic planning (--auto)")
    auto.add_argument("--k", default="2-14", metavar="K|A-B", help="sub-area counts to try (default 2-14)")
    auto.add_argument("--min-area-km2", type=float, default=0.0, metavar="X", help="area floor per sub-area")
    auto.add_argument("--min-core", type=float, default=0.0, metavar="P",
                      help="unreached core-share floor per sub-area (e.g. 0.5)")
    auto.add_argument("--spill-km", type=float, default=2.0, metavar="L", help="spill distance (default 2)")
    auto.add_argument("--attributes", metavar="A,B", help="town-block columns to keep similar (FLOOD_M,SLOPE_DEG)")
    auto.add_argument("--raster", action="append", default=[], metavar="NAME=PATH",
                      help="hazard GeoTIFF sampled per block (zonal mean); repeatable")
    auto.add_argument("--follow-old", metavar="COLUMN", help="旧市町村 column to follow (penalty for crossing)")
    auto.add_argument("--nest", action="store_true", help="sub-areas must nest inside --follow-old")
    auto.add_argument("--old-penalty", type=float, default=2.0, metavar="W", help="crossing penalty weight")
    auto.add_argument("--compactness", type=float, default=None, metavar="W",
                      help="weight of centroid coordinates (default 1 without attributes; with "
                      "attributes 0.5 when --min-core is given, else 0)")
    auto.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    auto.add_argument("--restarts", type=int, default=None, help="spanning trees per k")
    auto.add_argument("--pick", type=int, default=None, metavar="K", help="write the k=K candidate")
    auto.add_argument("--candidates-out", metavar="CSV", help="write the candidates table")
    ed = p.add_argument_group("edits and checks")
    ed.add_argument("--move", action="append", default=[], metavar="KEY=N",
                    help="move a town-block to sub-area N (number or name); repeatable")
    ed.add_argument("--merge", action="append", default=[], metavar="A,B", help="merge sub-areas; repeatable")
    ed.add_argument("--rename", action="append", default=[], metavar="N=名前", help="rename a sub-area")
    ed.add_argument("--export-csv", metavar="FILE", help="write the block-assignment CSV (key,subarea,…)")
    ed.add_argument("--island-exception", action="append", default=[], metavar="KEY",
                    help="allow this town-block to be detached from its sub-area; repeatable")
    ed.add_argument("--no-island-flags", action="store_true",
                    help="do not treat blocks flagged as islands (KIGO_I) as exceptions")
    ed.add_argument("--max-subareas", type=int, default=MAX_SUBAREAS, metavar="N",
                    help=f"lower the sub-area limit (default {MAX_SUBAREAS}, cannot be raised)")
    ed.add_argument("--force", action="store_true", help="overwrite existing outputs")
    rd = p.add_argument_group("reading town-blocks")
    add_reading_arguments(rd)
    p.add_argument("--progress", action="store_true", help="progress on stderr (on by default for --auto)")


# ---------------------------------------------------------------------- helpers
def parse_k(text: str, max_subareas: int) -> list[int]:
    """'4' → [4]; '2-14' → [2..14]; '3,5,7' → [3, 5, 7]."""
    out: set[int] = set()
    try:
        for part in str(text).split(","):
            part = part.strip()
            if "-" in part:
                a, b = part.split("-", 1)
                out.update(range(int(a), int(b) + 1))
            elif part:
                out.add(int(part))
    except ValueError:
        raise UserError(f"--k {text!r} is not a number or range", fix="e.g. --k 4 or --k 2-14") from None
    bad = sorted(x for x in out if x < 1 or x > max_subareas)
    if not out or bad:
        raise UserError(f"--k {text!r}: sub-area counts must be 1–{max_subareas}" + (f" (got {bad})" if bad else ""),
                        fix=f"at most {max_subareas} sub-areas (--max-subareas lowers the limit, 14 is the maximum)")
    return sorted(out)


_PAIR_EXAMPLES = {"--move": "--move 032050580=3 (KEY_CODE=sub-area number or name)",
                  "--rename": "--rename 2=大迫地域 (sub-area number or name=new name)"}


def _split_pair(text: str, option: str) -> tuple[str, str]:
    if "=" not in text:
        raise UserError(f"{option} {text!r} is not LEFT=RIGHT", fix=f"e.g. {_PAIR_EXAMPLES.get(option, option)}")
    a, _, b = text.partition("=")
    return a.strip(), b.strip()


def is_plan_file(path) -> bool:
    """A .gpkg with the plan layers."""
    p = Path(path)
    if p.suffix.lower() != ".gpkg" or not p.exists():
        return False
    import pyogrio

    from subdivide.model.plan import PLAN_LAYERS

    try:
        layers = {str(r[0]) for r in pyogrio.list_layers(p)}
    except Exception:
        return False
    return set(PLAN_LAYERS) <= layers


def summary_table(plan) -> str:
    m = plan.metrics
    cols = ["display_order", "subarea", "code", "name", "n_blocks", "population", "area_km2", "polsby_popper"]
    t = m[cols].copy()
    t["area_km2"] = t["area_km2"].round(1)
    t["polsby_popper"] = t["polsby_popper"].round(3)
    return t.to_string(index=False)


# ---------------------------------------------------------------------- run
def run(args) -> int:
    from subdivide.make import planning as pl
    from subdivide.io.output import check_can_write, write_csv

    ways = [bool(args.by and not args.mapping), bool(args.mapping), bool(args.overlay), bool(args.auto),
            bool(args.import_csv)]
    if sum(ways) > 1:
        raise UserError("choose one of --by, --mapping, --overlay, --auto, --import-csv",
                        fix="make the plan one way, then edit it in a second run")
    if args.overlay and not args.overlay_name:
        raise UserError("--overlay needs --overlay-name COL", fix="e.g. --overlay old.geojson --overlay-name old_muni_name")
    if not 1 <= args.max_subareas <= MAX_SUBAREAS:
        raise UserError(f"--max-subareas {args.max_subareas}: the limit is {MAX_SUBAREAS} and can only be lowered",
                        fix=f"use 1–{MAX_SUBAREAS}")
    if args.candidates_out and not args.auto:
        raise UserError("--candidates-out is only written with --auto", fix="add --auto, or drop --candidates-out")
    if args.review_out and not args.overlay:
        raise UserError("--review-out is only written with --overlay", fix="add --overlay FILE, or drop --review-out")
    if args.pick is not None and not args.auto:
        raise UserError("--pick needs --auto", fix="add --auto --k …, or drop --pick")
    if args.auto and args.pick is not None and args.pick not in parse_k(args.k, args.max_subareas):
        raise UserError(f"--pick {args.pick} is not among --k {args.k}", fix=f"include {args.pick} in --k")
    outputs = [o for o in (args.out, args.export_csv, args.candidates_out, args.review_out) if o]
    if not outputs:
        raise UserError("nothing to write", fix="give --out PLAN.gpkg (and/or --export-csv FILE)")
    if args.out and Path(args.out).suffix.lower() != ".gpkg":
        raise UserError(f"--out {args.out}: a plan is saved as a GeoPackage (.gpkg)",
                        fix=f"e.g. --out {Path(args.out).with_suffix('.gpkg').name}; the carriers' Shapefile "
                        "comes from `subdivide package`, the block list from --export-csv")
    resolved = [Path(o).resolve() for o in outputs]
    if len(set(resolved)) < len(resolved):
        same = sorted({str(o) for o, r in zip(outputs, resolved) if resolved.count(r) > 1})
        raise UserError(f"the same file is given for two outputs: {same}", fix="give each output its own file name")
    for o in outputs:            # refuse before any work: never a partial set of outputs
        check_can_write(o, args.force)
    progress = StderrProgress() if (args.progress or args.auto) else silent
    islands = list(args.island_exception)
    flags = not args.no_island_flags
    common = dict(island_exceptions=islands, allow_flagged_islands=flags, max_subareas=args.max_subareas)
    notes: list[str] = []
    candidates = None
    review = None

    if is_plan_file(args.input):
        from subdivide.model.plan import read_plan

        base = read_plan(args.input)
        if any([args.by, args.mapping, args.overlay, args.auto]):
            raise UserError("the input is already a plan: --by/--mapping/--overlay/--auto need town-blocks",
                            where=args.input, fix="give the town-block file, or only edits for a plan")
        plan = base
        unknown = sorted(set(islands) - set(base.blocks["key"]))
        if unknown:
            raise UserError(f"--island-exception keys are not town-blocks of the plan: {unknown[:10]}",
                            where=args.input, fix="give KEY_CODEs of this municipality with their leading zero")
        if args.max_subareas != base.max_subareas or islands:
            plan = base.with_assignment(base.blocks["subarea"].to_numpy(), max_subareas=args.max_subareas,
                                        island_exceptions=base.island_exceptions | frozenset(islands))
        if args.import_csv:
            plan, rep = pl.plan_from_assignment_csv(plan, args.import_csv, **common)
            notes += rep.lines()
    else:
        from subdivide.io.townblocks import read_townblocks

        mapping = column_mapping(args)
        blocks, _ = read_townblocks(args.input, muni_code=args.muni, crs=args.crs, layer=args.layer,
                                    mapping=mapping, encoding=args.encoding,
                                    progress=progress if args.progress else silent)
        if args.muni:
            common["muni_code"] = args.muni
        if args.mapping:
            plan, rep = pl.plan_from_mapping(blocks, args.mapping, by=args.by, **common)
        elif args.by:
            plan, rep = pl.plan_by_attribute(blocks, args.by, **common)
        elif args.overlay:
            polys = pl.read_polygons(args.overlay, layer=args.overlay_layer)
            plan, rep = pl.plan_by_overlay(blocks, polys, args.overlay_name, min_share=args.overlay_min_share,
                                           min_margin=args.overlay_min_margin, **common)
            review = rep.review
        elif args.import_csv:
            plan, rep = pl.plan_from_assignment_csv(blocks, args.import_csv, **common)
        elif args.auto:
            plan, candidates, rep = _auto(args, blocks, progress)
        else:
            raise UserError("town-blocks given but no way to make a plan",
                            fix="add --by COLUMN, --mapping FILE, --overlay FILE, --auto or --import-csv")
        notes += rep.lines()

    for text in args.move:
        key, target = _split_pair(text, "--move")
        plan = pl.move_blocks(plan, {key: target})
    for text in args.merge:
        refs = [r.strip() for r in text.split(",") if r.strip()]
        plan = pl.merge_subareas(plan, refs)
    for text in args.rename:
        ref, name = _split_pair(text, "--rename")
        plan = pl.rename_subarea(plan, ref, name)

    if not args.auto and (args.min_area_km2 or args.min_core or (args.nest and args.follow_old)):
        pl.require(pl.check_constraints(plan, min_area_km2=args.min_area_km2, min_core=args.min_core,
                                        spill_km=args.spill_km, nest_column=args.follow_old if args.nest else None))

    # ---- outputs (every check has passed)
    if args.out:
        plan.save(args.out, force=args.force)
    if args.export_csv:
        pl.export_assignment_csv(plan, args.export_csv, force=args.force)
    if args.candidates_out and candidates is not None:
        write_csv(candidates, args.candidates_out, force=args.force)
    if args.review_out and review is not None:
        write_csv(review, args.review_out, force=args.force)
    for line in notes:
        print(line, file=sys.stderr)
    if candidates is not None:
        print("candidates (ranked):")
        print(candidates.to_string(index=False))
        print()
    print(f"plan: {plan.k} sub-areas, {len(plan.blocks)} town-blocks, municipality {plan.muni_code}"
          + (f", island exceptions {sorted(plan.island_exceptions)}" if plan.island_exceptions else ""))
    print(summary_table(plan))
    for o in outputs:
        print(f"wrote {o}")
    return 0


def _auto(args, blocks, progress):
    from subdivide.model.hazard import parse_raster_option
    from subdivide.make.planning import PlanningReport
    from subdivide.core.findings import Finding
    from subdivide.make.regionalize import regionalize

    ks = parse_k(args.k, args.max_subareas)
    attrs = [a.strip() for a in (args.attributes or "").split(",") if a.strip()]
    rasters = dict(parse_raster_option(r) for r in args.raster)
    res = regionalize(blocks, k=ks, min_area_km2=args.min_area_km2, min_core=args.min_core,
                      spill_km=args.spill_km, attributes=attrs, rasters=rasters or None,
                      follow_old=args.follow_old, nest=args.nest, old_penalty=args.old_penalty,
                      compactness=args.compactness, seed=args.seed, restarts=args.restarts,
                      max_subareas=args.max_subareas, muni_code=args.muni, progress=progress)
    plan = res.pick(args.pick) if args.pick else res.best
    rep = PlanningReport()
    if len(res.island_links):
        rep.findings.append(Finding("AUTO-ISLANDS", "info",
                                    f"{len(res.island_links)} town-blocks across water joined their nearest "
                                    "sub-area (island exceptions)", tuple(res.island_links["key"])))
    for n in res.options.get("notes", []):
        rep.findings.append(Finding("AUTO-NOTE", "info", n))
    return plan, res.table, rep
