"""``subdivide plan``: make or edit a sub-area plan and save it as a GeoPackage.

Input is a town-block file (read with ``read_townblocks``) or an existing plan .gpkg
(detected by its layers) to edit. One way to make the plan:

- ``--by COLUMN``               one sub-area per value (e.g. OLD_MUNI)
- ``--mapping FILE [--by COL]``  CSV/XLSX key → sub-area name (keys: block keys or COL values)
- ``--overlay FILE --overlay-name COL``  polygon holding most of each block's area
- ``--auto``                    contiguity-constrained regionalization, ranked by the residents
                                spared an alert (hazard events ``--scenarios``, spill band ``--spill-band``)
- ``--import-csv FILE``         a block-assignment table: the --export-csv CSV, or the package's
                                townblock_list.csv / area_codes.xlsx (Japanese headers)

then edits in this order: ``--move``, ``--merge``, ``--rename``, ``--renumber``; then the checks
(Plan rules, and floors / nesting when asked); then outputs. Refusals exit 2 and name
the offending town-blocks; nothing is written unless every check passes.

Codes never drift: a sub-area keeps its number, so its code, through every edit, merge and
import (a merged-away sub-area leaves a gap). Only ``--renumber`` renumbers, and the summary
then prints old → new for each changed code; edits of a plan print what changed per code.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

from subdivide.cli.commands._reading import add_reading_arguments, column_mapping
from subdivide.core.constants import MAX_SUBAREAS
from subdivide.core.errors import UserError
from subdivide.core.progress import silent

HELP = "make or edit a sub-area plan (by 旧市町村, mapping, overlay, automatic, edits, CSV)"
EXAMPLE = """
  # the trial's 4 sub-areas of 花巻市 from the 旧市町村 column
  subdivide plan data/hanamaki_03205/h27ka03205.shp --by OLD_MUNI --out hanamaki.plan.gpkg

  # automatic, judged by the residents spared an alert (default events: seeded discs of
  # 1/3/5 km around populated blocks; L = 1.6–3.3 km): prints the spared-share-vs-k curve,
  # writes the recommended k (the smallest within 2 points of the best)
  subdivide plan ../shared/data/tottori_31_estat2015/h27ka31.shp --muni 31201 --auto \\
      --min-area-km2 50 --candidates-out candidates.csv --out tottori.plan.gpkg

  # the same judged on a hazard layer (one event per connected flood zone)
  subdivide plan data/hanamaki_03205/h27ka03205.shp --auto --scenarios flood_zones.gpkg --out flood.plan.gpkg

  # automatic: k = 2..6, each sub-area ≥ 40 % unreached core at L = 2 km, following 旧市町村
  # (at 50 % no plan of 花巻市 with 2 or more sub-areas is feasible: the command says so)
  subdivide plan data/hanamaki_03205/h27ka03205.shp --auto --k 2-6 --min-core 0.4 --spill-km 2 \\
      --follow-old OLD_MUNI --seed 0 --candidates-out candidates.csv --out auto.plan.gpkg

  # edit a saved plan: move a town-block, rename, export the block list
  # (豊沢 032050580 from 花巻地域 to 石鳥谷地域; 花巻地域 renamed 花巻中央地域)
  subdivide plan hanamaki.plan.gpkg --move 032050580=3 --rename 1=花巻中央地域 \\
      --export-csv hanamaki_blocks.csv --out edited.plan.gpkg

  # read the block list back after editing it in Excel: change a block's subarea number to move it
  # (the number wins; the codes stay as they were)
  subdivide plan hanamaki.plan.gpkg --import-csv hanamaki_blocks.csv --out imported.plan.gpkg
"""


def add_arguments(p) -> None:
    p.add_argument("input", help="town-block file (.shp/.zip/.gpkg/.geojson) or a plan .gpkg to edit")
    p.add_argument("--out", metavar="PLAN.gpkg", help="plan GeoPackage to write")
    add_making_arguments(p, files=True)


def add_making_arguments(p, *, files: bool) -> None:
    """How to make and edit a plan, and how to read the town-blocks: the options `plan`
    shares with `run`. ``files``: also the extra tables `plan` writes (--review-out,
    --candidates-out, --export-csv, --headers) and its --force (`run` writes them into its
    folder)."""
    if not files:
        p.set_defaults(review_out=None, candidates_out=None, export_csv=None, headers=None)
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
    if files:
        how.add_argument("--review-out", metavar="CSV", help="write the overlay review list")
    how.add_argument("--auto", action="store_true", help="automatic contiguous regionalization")
    how.add_argument("--import-csv", metavar="FILE",
                     help="block-assignment table (CSV/XLSX): --export-csv's key,subarea,… or the package's "
                     "townblock_list.csv / area_codes.xlsx; the sub-area number decides, codes are kept")
    auto = p.add_argument_group("automatic planning (--auto)")
    auto.add_argument("--k", default="1-14", metavar="K|A-B",
                      help="sub-area counts to try (default 1-14; k = 1 is whole-municipality delivery)")
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
    auto.add_argument("--seed", type=int, default=0, help="random seed, ≥ 0 (default 0)")
    auto.add_argument("--restarts", type=int, default=None, help="searches per k, each from its own spanning tree (default 4; more never give a worse plan)")
    obj = p.add_argument_group("what the automatic plan is judged on (--auto)")
    obj.add_argument("--objective", choices=("alerts", "compactness"), default="alerts",
                     help="rank by the residents spared an alert (default) or by compactness (old ranking)")
    obj.add_argument("--scenarios", default="discs", metavar="discs|blocks|FILE",
                     help="hazard events: discs around populated blocks (default), town-block events, "
                     "or a hazard layer (polygons, or a GeoTIFF with --hazard-threshold)")
    obj.add_argument("--scenario-radii", default="1,3,5", metavar="KM,…", help="disc radii in km (default 1,3,5)")
    obj.add_argument("--scenario-count", type=int, default=48, metavar="N",
                     help="discs drawn per radius, ∝ population, seeded (default 48)")
    obj.add_argument("--scenario-split", choices=("feature", "zones", "layer"), default="zones",
                     help="hazard layer: one event per feature, per connected zone (default) or one for the layer")
    obj.add_argument("--scenario-weight", metavar="COL", help="hazard layer column with each event's relative frequency")
    obj.add_argument("--hazard-threshold", type=float, default=None, metavar="X",
                     help="raster events: pixels above X (e.g. flood depth 0.5 m)")
    obj.add_argument("--send-share", type=float, default=0.0, metavar="X",
                     help="send to sub-areas holding ≥ X of an event's residents (default 0: every sub-area touched)")
    obj.add_argument("--spill-band", default="1.6,2.0,2.5,3.0,3.3", metavar="KM,…",
                     help="spill distances the objective averages over (default: the trial's 1.6–3.3 km)")
    obj.add_argument("--margin", type=float, default=0.02, metavar="X",
                     help="recommend the smallest k within X of the best spared share (default 0.02)")
    auto.add_argument("--pick", type=int, default=None, metavar="K", help="write the k=K candidate")
    if files:
        auto.add_argument("--candidates-out", metavar="CSV", help="write the candidates table (Japanese headers; "
                          "--headers en for English)")
    ed = p.add_argument_group("edits and checks")
    ed.add_argument("--move", action="append", default=[], metavar="KEY=N",
                    help="move a town-block to sub-area N (number or name); repeatable")
    ed.add_argument("--merge", action="append", default=[], metavar="A,B", help="merge sub-areas; repeatable")
    ed.add_argument("--rename", action="append", default=[], metavar="N=名前", help="rename a sub-area")
    ed.add_argument("--renumber", action="store_true",
                    help="number the sub-areas 1..k in display order: closes the gaps merges leave, changes "
                    "codes (the summary prints old → new)")
    ed.add_argument("--island-exception", action="append", default=[], metavar="KEY",
                    help="allow this town-block to be detached from its sub-area; repeatable")
    ed.add_argument("--no-island-flags", action="store_true",
                    help="do not treat blocks flagged as islands (KIGO_I) as exceptions")
    ed.add_argument("--max-subareas", type=int, default=MAX_SUBAREAS, metavar="N",
                    help=f"lower the sub-area limit (default {MAX_SUBAREAS}, cannot be raised)")
    if files:
        ed.add_argument("--export-csv", metavar="FILE", help="write the block-assignment CSV (key,subarea,…)")
        ed.add_argument("--headers", choices=("ja", "en"), default=None,
                        help="column headers of the CSVs written: ja (Japanese) or en (English); by default "
                        "--candidates-out is Japanese and --export-csv English (key,subarea,subarea_name,name)")
        ed.add_argument("--force", action="store_true", help="overwrite existing outputs")
    rd = p.add_argument_group("reading town-blocks")
    add_reading_arguments(rd)
    p.add_argument("--progress", action="store_true", help="progress on stderr (on by default for --auto)")


# ---------------------------------------------------------------------- helpers
def parse_k(text: str, max_subareas: int) -> list[int]:
    """'4' → [4]; '2-14' → [2..14]; '3,5,7' → [3, 5, 7]. Bounds are checked before a
    range is expanded (``--k 2-2000000000`` is refused, not enumerated)."""
    out: set[int] = set()
    bad: list[str] = []
    try:
        for part in (x.strip() for x in str(text).split(",")):
            if not part:
                continue
            lo_s, sep, hi_s = part.partition("-") if not part.startswith("-") else (part, "", "")
            lo = int(lo_s)
            hi = int(hi_s) if sep else lo
            if lo > hi or lo < 1 or hi > max_subareas:
                bad.append(part)
                continue
            out.update(range(lo, hi + 1))
    except ValueError:
        raise UserError(f"--k {text!r} is not a number or range", where="--k", fix="e.g. --k 4 or --k 2-14") from None
    if not out or bad:
        raise UserError(f"--k {text!r}: sub-area counts must be 1–{max_subareas}" + (f" (got {bad})" if bad else ""),
                        where="--k",
                        fix=f"at most {max_subareas} sub-areas (--max-subareas lowers the limit, 14 is the maximum)")
    return sorted(out)


def parse_km_list(text: str, option: str) -> list[float]:
    """'1.6,2,3.3' → [1.6, 2.0, 3.3]; every value a positive, finite number of km."""
    try:
        vals = [float(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        vals = []
    if not vals or any(not math.isfinite(v) or v <= 0 or v > 100 for v in vals):
        raise UserError(f"{option} {text!r} must be positive distances in km, separated by commas",
                        where=option, fix=f"e.g. {option} 2,2.5,3")
    return vals


def check_number(value, option: str, *, lo: float = 0.0, hi: float | None = None, example: str) -> None:
    """A finite number in [lo, hi] (None = no upper bound), else exit 2 naming the option."""
    if value is None:
        return
    if not math.isfinite(value) or value < lo or (hi is not None and value > hi):
        rng = f"between {lo:g} and {hi:g}" if hi is not None else f"≥ {lo:g}"
        raise UserError(f"{option} {value!r} must be a number {rng}", where=option, fix=f"e.g. {example}")


def check_numbers(args) -> None:
    """Every numeric option of the command: NaN, ∞, negatives and out-of-range shares refused."""
    check_number(args.min_area_km2, "--min-area-km2", example="--min-area-km2 50")
    check_number(args.min_core, "--min-core", hi=0.99, example="--min-core 0.5")
    check_number(args.spill_km, "--spill-km", hi=100, example="--spill-km 2")
    check_number(args.old_penalty, "--old-penalty", example="--old-penalty 2")
    check_number(args.compactness, "--compactness", example="--compactness 1")
    check_number(args.overlay_min_share, "--overlay-min-share", hi=1, example="--overlay-min-share 0.6")
    check_number(args.overlay_min_margin, "--overlay-min-margin", hi=1, example="--overlay-min-margin 0.2")
    check_number(args.send_share, "--send-share", hi=1, example="--send-share 0.1")
    check_number(args.margin, "--margin", hi=1, example="--margin 0.02")
    check_number(args.hazard_threshold, "--hazard-threshold", lo=-math.inf, example="--hazard-threshold 0.5")
    if args.seed < 0 or args.seed >= 2 ** 63:
        raise UserError(f"--seed {args.seed} must be a whole number ≥ 0", where="--seed", fix="e.g. --seed 0")
    if args.restarts is not None and not 1 <= args.restarts <= 1000:
        raise UserError(f"--restarts {args.restarts} must be 1–1000", where="--restarts", fix="e.g. --restarts 8")
    if not 1 <= args.scenario_count <= 100000:
        raise UserError(f"--scenario-count {args.scenario_count} must be 1–100000", where="--scenario-count",
                        fix="e.g. --scenario-count 48")


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


def summary_table(plan, lang: str = "en") -> str:
    from subdivide.core.i18n import frame_text

    m = plan.metrics
    cols = ["display_order", "subarea", "code", "name", "n_blocks", "population", "area_km2", "polsby_popper"]
    t = m[cols].copy()
    t["area_km2"] = t["area_km2"].round(1)
    t["polsby_popper"] = t["polsby_popper"].round(3)
    return frame_text(t, lang)


# ---------------------------------------------------------------------- run
def run(args) -> int:
    outputs = check_request(args)
    from subdivide.core.i18n import command_language, stderr_progress

    lang = command_language(args)
    progress = stderr_progress(lang, bool(args.progress or args.auto))
    plan, made = make_plan(args, progress)
    plan = apply_edits(plan, args, made)
    check_floors(plan, args)
    write_outputs(plan, made, args)
    print_summary(plan, made, outputs, lang)
    return 0


class Made:
    """What making the plan produced besides the plan: notes, tables, the curve."""

    def __init__(self, notes=(), candidates=None, review=None, result=None, base=None):
        self.read = None                # the town-block file's read report (None for a plan file)
        self.notes = list(notes)
        self.candidates, self.review, self.result = candidates, review, result
        self.base = base                # the plan file edited (None for a new plan)
        self.changes: list[str] = []    # what changed per code (old → new, retired, new, moved)


def check_request(args) -> list[str]:
    """Every refusal that needs no data: options that conflict, bad numbers, outputs
    that exist. Returns the outputs to write."""
    check_making(args)
    return _check_outputs(args)


def check_making(args) -> None:
    """The refusals of the plan-making options alone (conflicts, bad numbers)."""
    ways = [bool(args.by and not args.mapping), bool(args.mapping), bool(args.overlay), bool(args.auto),
            bool(args.import_csv)]
    if sum(ways) > 1:
        raise UserError("choose one of --by, --mapping, --overlay, --auto, --import-csv",
                        fix="make the plan one way, then edit it in a second run")
    if args.overlay and not args.overlay_name:
        raise UserError("--overlay needs --overlay-name COL", fix="e.g. --overlay old.geojson --overlay-name old_muni_name")
    if not 1 <= args.max_subareas <= MAX_SUBAREAS:
        raise UserError(f"--max-subareas {args.max_subareas}: the limit is {MAX_SUBAREAS} and can only be lowered",
                        where="--max-subareas", fix=f"use 1–{MAX_SUBAREAS}")
    check_numbers(args)
    _check_only_with(args)


def _check_only_with(args) -> None:
    if args.candidates_out and not args.auto:
        raise UserError("--candidates-out is only written with --auto", fix="add --auto, or drop --candidates-out")
    if args.review_out and not args.overlay:
        raise UserError("--review-out is only written with --overlay", fix="add --overlay FILE, or drop --review-out")
    if args.pick is not None and not args.auto:
        raise UserError("--pick needs --auto", where="--pick", fix="add --auto --k …, or drop --pick")
    if args.auto:
        ks = parse_k(args.k, args.max_subareas)
        parse_km_list(args.spill_band, "--spill-band")
        parse_km_list(args.scenario_radii, "--scenario-radii")
        what = args.scenarios.strip()
        if what not in ("discs", "blocks") and not Path(what).exists():
            raise UserError(f"--scenarios {what!r} is neither discs, blocks nor an existing file", where="--scenarios",
                            fix="--scenarios discs, --scenarios blocks, or a hazard layer (.gpkg/.shp/.geojson/.tif)")
        if args.pick is not None and args.pick not in ks:
            raise UserError(f"--pick {args.pick} is not among --k {args.k}", where="--pick",
                            fix=f"include {args.pick} in --k, or pick one of {ks}")


def _check_outputs(args) -> list[str]:
    from subdivide.io.output import check_can_write

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
        check_can_write(o, args.force, inputs=[args.input, args.mapping, args.overlay, args.import_csv])
    return outputs


def _common(args) -> dict:
    return {"island_exceptions": list(args.island_exception), "allow_flagged_islands": not args.no_island_flags,
            "max_subareas": args.max_subareas}


def make_plan(args, progress, *, command: str = "plan"):
    """The plan from an existing plan file (then only edits) or from town-blocks; the read
    report is kept as ``made.read``. ``command`` names the command in the reading notes."""
    if is_plan_file(args.input):
        return from_plan_file(args)
    from subdivide.core.i18n import command_language
    from subdivide.io.townblocks import read_townblocks

    blocks, report = read_townblocks(args.input, muni_code=args.muni, crs=args.crs, layer=args.layer,
                                     mapping=column_mapping(args), encoding=args.encoding,
                                     progress=progress if args.progress else silent)
    say_reading_notes(report, command_language(args), command=command)
    plan, made = from_blocks(args, blocks, progress)
    plan.metadata.setdefault("ingest", blocks.attrs.get("ingest"))   # layer chosen, CRS assumed, columns renamed
    made.read = report
    return plan, made


def say_reading_notes(report, lang: str = "en", *, command: str = "plan") -> None:
    """What the reader decided or doubted (secrecy marks, UTF-8 without .cpg, CRS assumed …),
    on stderr as `info` shows it: a plan made from a doubtful file says so."""
    import sys

    from subdivide.core.i18n import printer

    say = printer(lang, file=sys.stderr)
    for w in report.warnings:
        say(f"subdivide {command}: warning: {w}")
    if report.encoding and "UTF-8" in (report.encoding_reason or "") and "--encoding" not in report.encoding_reason:
        say(f"subdivide {command}: note: text read as {report.encoding}: {report.encoding_reason}")
    for f in report.fallbacks:
        if f not in report.warnings:
            say(f"subdivide {command}: note: {f}")


def from_plan_file(args):
    """The plan of a plan file (``args.input``), then --import-csv if given; (plan, Made)."""
    from subdivide.make import planning as pl
    from subdivide.model.plan import read_plan

    base = read_plan(args.input)
    islands = list(args.island_exception)
    if any([args.by, args.mapping, args.overlay, args.auto]):
        raise UserError("the input is already a plan: --by/--mapping/--overlay/--auto need town-blocks",
                        where=args.input, fix="give the town-block file, or only edits for a plan")
    unknown = sorted(set(islands) - set(base.blocks["key"]))
    if unknown:
        raise UserError(f"--island-exception keys are not town-blocks of the plan: {unknown[:10]}",
                        where=args.input, fix="give KEY_CODEs of this municipality with their leading zero")
    plan = base
    if args.max_subareas != base.max_subareas or islands:
        plan = base.with_assignment(base.blocks["subarea"].to_numpy(), max_subareas=args.max_subareas,
                                    island_exceptions=base.island_exceptions | frozenset(islands))
    made = Made(base=base)
    if args.import_csv:
        plan, rep = pl.plan_from_assignment_csv(plan, args.import_csv, **_common(args))
        made.notes += rep.lines()
    return plan, made


def from_blocks(args, blocks, progress):
    """The plan the options ask for, made from town-blocks already read; (plan, Made)."""
    from subdivide.make import planning as pl

    common = _common(args)
    if args.muni:
        common["muni_code"] = args.muni
    review = result = None
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
        plan, result, rep = _auto(args, blocks, progress)
    else:
        raise UserError("town-blocks given but no way to make a plan",
                        fix="add --by COLUMN, --mapping FILE, --overlay FILE, --auto or --import-csv")
    return plan, Made(rep.lines(), None if result is None else result.report_table(), review, result)


def apply_edits(plan, args, made: Made | None = None):
    """--move, then --merge, then --rename, then --renumber; what changed per code is kept in
    ``made.changes`` (against the plan file edited, if any)."""
    from subdivide.make import planning as pl

    for text in args.move:
        key, target = _split_pair(text, "--move")
        plan = pl.move_blocks(plan, {key: target})
    for text in args.merge:
        refs = [r.strip() for r in text.split(",") if r.strip()]
        plan = pl.merge_subareas(plan, refs)
    for text in args.rename:
        ref, name = _split_pair(text, "--rename")
        plan = pl.rename_subarea(plan, ref, name)
    if made is None:
        made = Made()
    if made.base is not None:
        made.changes += pl.code_changes(made.base, plan)
    if getattr(args, "renumber", False):
        before = plan
        plan, renumbered = pl.renumber_subareas(plan)
        made.changes += (["codes renumbered (--renumber), old → new:"]
                         + [f"  {line}" for line in pl.renumber_lines(before, renumbered)]
                         if renumbered else ["--renumber: the sub-areas are already numbered 1..k; no code changed"])
    return plan


def check_floors(plan, args) -> None:
    """Floors and nesting asked for a plan not made by --auto (which meets them itself)."""
    from subdivide.make import planning as pl

    if not args.auto and (args.min_area_km2 or args.min_core or (args.nest and args.follow_old)):
        pl.require(pl.check_constraints(plan, min_area_km2=args.min_area_km2, min_core=args.min_core,
                                        spill_km=args.spill_km, nest_column=args.follow_old if args.nest else None))


def write_outputs(plan, made: Made, args) -> None:
    """Every check has passed: write what was asked."""
    from subdivide.io.output import write_csv
    from subdivide.make import planning as pl

    if args.out:
        plan.save(args.out, force=args.force)
    if args.export_csv:
        pl.export_assignment_csv(plan, args.export_csv, force=args.force, headers=args.headers or "en")
    if args.candidates_out and made.result is not None:
        write_csv(pl.candidates_table(made.result.table, headers=args.headers or "ja"), args.candidates_out,
                  force=args.force)
    if args.review_out and made.review is not None:
        write_csv(made.review, args.review_out, force=args.force)


def print_summary(plan, made: Made, outputs, lang: str = "en") -> None:
    from subdivide.core.i18n import frame_text, printer

    say, warn = printer(lang), printer(lang, file=sys.stderr)
    for line in made.notes:
        warn(line)
    if made.candidates is not None:
        say("candidates (ranked):")
        say(frame_text(candidates_shown(made.candidates, lang), lang))
        say()
    if made.result is not None and made.result.summary:
        say(curve_text(made.result))
        say(made.result.summary)
        say()
    say(f"plan: {plan.k} sub-areas, {len(plan.blocks)} town-blocks, municipality {plan.muni_code}"
        + (f", island exceptions {sorted(plan.island_exceptions)}" if plan.island_exceptions else ""))
    say(summary_table(plan, lang))
    if made.changes:
        say("changes｜変更:")
        for line in made.changes:
            say(f"  {line}")
    elif made.base is not None:
        say("codes unchanged｜コードの変更なし")
    for o in outputs:
        say(f"wrote {o}")


def candidates_shown(table, lang: str = "en"):
    """The candidates table as printed: its bilingual labels (English｜日本語) in English; in
    Japanese the headings --candidates-out writes (:func:`~subdivide.make.planning.candidates_table`)."""
    if lang == "en":
        return table
    from subdivide.make.planning import candidates_table
    from subdivide.make.regionalize import LABELS

    return candidates_table(table.rename(columns={label: key for key, label in LABELS.items()}), headers=lang)


def curve_text(result, width: int = 40) -> str:
    """The spared-share-vs-k curve as a text bar chart (mean over L; ▏ marks the worst L)."""
    lines = ["residents spared per event vs k (mean over L, | = worst L)｜地域数と受信しない住民の割合:"]
    for _, r in result.curve.iterrows():
        n = round(max(float(r["spared_share_mean"]), 0.0) * width)
        w = round(max(float(r["spared_share_worst"]), 0.0) * width)
        bar = "".join("|" if i == w else ("█" if i < n else " ") for i in range(max(n, w + 1)))
        mark = "  ← recommended｜推奨" if int(r["k"]) == result.recommended_k else ""
        lines.append(f"  k={int(r['k']):>2} {bar:<{width + 1}} {r['spared_share_mean']:6.1%}{mark}")
    return "\n".join(lines)


def scenarios_from_args(args, blocks):
    """The hazard events --scenarios asks for (None = the default discs)."""
    from subdivide.model import scenarios as sc

    what = args.scenarios.strip()
    if what == "discs":
        return sc.disc_scenarios(blocks, radii_km=parse_km_list(args.scenario_radii, "--scenario-radii"),
                                 per_radius=args.scenario_count, seed=args.seed)
    if what == "blocks":
        return sc.block_scenarios(blocks)
    path = Path(what)
    if path.suffix.lower() in (".tif", ".tiff"):
        if args.hazard_threshold is None:
            raise UserError("a hazard raster needs --hazard-threshold X", where="--scenarios",
                            fix="e.g. --hazard-threshold 0.5 (flood depth in m)")
        return sc.raster_scenarios(path, blocks.crs, threshold=args.hazard_threshold, split=args.scenario_split)
    return sc.polygon_scenarios(path, blocks.crs, split=args.scenario_split, weight_column=args.scenario_weight)


def planner_record(res, objective: str) -> dict:
    """What the report needs to draw the planner's curve (kept in the plan's metadata)."""
    import json

    return {"objective": objective, "recommended_k": res.recommended_k, "summary": res.summary,
            "curve": json.loads(res.curve.to_json(orient="records", double_precision=6))}


def _auto(args, blocks, progress):
    from subdivide.core.findings import Finding
    from subdivide.make.planning import PlanningReport
    from subdivide.make.regionalize import regionalize
    from subdivide.model.hazard import parse_raster_option

    attrs = [a.strip() for a in (args.attributes or "").split(",") if a.strip()]
    rasters = dict(parse_raster_option(r) for r in args.raster)
    scen = scenarios_from_args(args, blocks) if args.objective == "alerts" else None
    res = regionalize(blocks, k=parse_k(args.k, args.max_subareas), min_area_km2=args.min_area_km2,
                      min_core=args.min_core, spill_km=args.spill_km, attributes=attrs, rasters=rasters or None,
                      follow_old=args.follow_old, nest=args.nest, old_penalty=args.old_penalty,
                      compactness=args.compactness, seed=args.seed, restarts=args.restarts,
                      max_subareas=args.max_subareas, muni_code=args.muni, objective=args.objective,
                      scenarios=scen, alert_band_km=parse_km_list(args.spill_band, "--spill-band"),
                      send_share=args.send_share, margin=args.margin, progress=progress)
    plan = res.pick(args.pick) if args.pick else res.best
    plan.metadata["planner"] = planner_record(res, args.objective)
    rep = PlanningReport()
    if len(res.island_links):
        rep.findings.append(Finding("AUTO-ISLANDS", "info",
                                    f"{len(res.island_links)} town-blocks across water joined their nearest "
                                    "sub-area (island exceptions)", tuple(res.island_links["key"])))
    for n in res.options.get("notes", []):
        rep.findings.append(Finding("AUTO-NOTE", "info", n))
    return plan, res, rep
