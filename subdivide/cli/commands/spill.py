"""``subdivide spill``: estimate broadcast spill for a plan against the trial's 2–3 km.

Computes per sub-area and spill distance L the circle-model and exact (inward buffer)
unreached shares, the core's population share, the exposure of every other sub-area and
of neighbouring municipalities, flags sub-areas below the target share with the area
they would need, and optionally checks points (the trial offices) and fits L from
reception observations. Writes spill_*.csv (UTF-8 with BOM, CRLF) and spill.json.
"""
from __future__ import annotations

import sys
from pathlib import Path

from subdivide.core.errors import UserError

HELP = "estimate broadcast spill per sub-area (circle and exact models, neighbour exposure, checks)"
EXAMPLE = """
  # from the repo root, after: subdivide plan data/hanamaki_03205/h27ka03205.shp --by OLD_MUNI --out hanamaki.plan.gpkg
  subdivide spill hanamaki.plan.gpkg --out spill/
  subdivide spill hanamaki.plan.gpkg --out spill/ --distances 1.6,2,2.5,3,3.3 --target 0.5 --force
  subdivide spill hanamaki.plan.gpkg --out spill-points/ \\
      --points data/hanamaki_03205/offices.geojson --point-name office_name \\
      --observations subdivide/assets/trial_observations.csv   # columns point, subarea, received (yes/no)
  subdivide spill hanamaki.plan.gpkg --out spill-expected/ \
      --model calibration/calibration_model.json     # from `subdivide calibrate`: expected figures
  subdivide coverage --synthetic --isd-km 7 --outline data/hanamaki_03205/outline.geojson --out coverage.gpkg
  subdivide spill hanamaki.plan.gpkg --out spill-cov/ --coverage coverage.gpkg \\
      --selection share --min-share 0.5     # repeat --coverage FILE once per carrier
"""


def add_arguments(p) -> None:
    p.add_argument("plan", help="plan GeoPackage written by `subdivide plan`")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory for spill_*.csv and spill.json")
    p.add_argument("--distances", default="2,2.5,3", metavar="KM,KM,…",
                   help="spill distances L in km (default 2,2.5,3: the trial's measured band)")
    p.add_argument("--target", default="0.5", metavar="SHARE",
                   help="policy: minimum unreached share of a sub-area (default 0.5 = 50 %%)")
    p.add_argument("--neighbours", metavar="FILE",
                   help="outlines of the neighbouring municipalities (name column; optional population)")
    p.add_argument("--water-distance", type=float, metavar="KM",
                   help="longer spill distance across water, from and to island town-blocks")
    p.add_argument("--water", metavar="FILE",
                   help="water polygons: detached town-blocks near water count as islands "
                        "(default: the KIGO_I island flag)")
    p.add_argument("--population-raster", metavar="TIF",
                   help="population grid (GeoTIFF, people per cell); adds rows with population_source=raster")
    p.add_argument("--points", metavar="FILE", help="points to check (GeoJSON/GPKG, or CSV with latitude/longitude)")
    p.add_argument("--point-name", metavar="COL", help="name column of --points (default name/office_name)")
    p.add_argument("--observations", metavar="CSV",
                   help="reception observations: point, subarea (sent to), received (yes/no); needs --points; "
                        "fits the reception model on the between-area pairs (as `subdivide calibrate` does)")
    p.add_argument("--model", metavar="JSON",
                   help="a fitted reception model (calibration_model.json from `subdivide calibrate`): adds "
                        "expected reached population with intervals (spill_expected.csv) and P(receive) per point")
    p.add_argument("--coverage", action="append", metavar="FILE",
                   help="coverage (best-server) polygons of one carrier; repeat per carrier")
    p.add_argument("--selection", choices=("any", "site", "share"), default="any",
                   help="cell selection rule for --coverage (default any)")
    p.add_argument("--min-share", type=float, default=0.5, metavar="X",
                   help="overlap share for --selection share (default 0.5)")
    p.add_argument("--cell-ids", metavar="FILE", help="carriers' explicit cell lists (CSV: subarea, carrier, cell_id)")
    p.add_argument("--encoding", choices=("utf-8-sig", "utf-8", "cp932"), default="utf-8-sig",
                   help="CSV encoding (default UTF-8 with BOM; cp932 fails loudly on unencodable names)")
    p.add_argument("--progress", action="store_true", help="show progress on stderr")
    p.add_argument("--force", action="store_true", help="replace existing output files")


def _check_inputs(args, spill) -> Path:
    """Refuse bad option combinations, missing inputs and outputs that exist (no work done)."""
    from subdivide.io.output import check_can_write

    if args.observations and not args.points:
        raise UserError("--observations needs --points (where each observed point is)",
                        where="--observations", fix="add --points FILE --point-name COL")
    if args.water and args.water_distance is None:
        raise UserError("--water needs --water-distance", where="--water", fix="add e.g. --water-distance 5")
    for opt, path in (("--neighbours", args.neighbours), ("--population-raster", args.population_raster),
                      ("--points", args.points), ("--observations", args.observations), ("--model", args.model),
                      ("--water", args.water), ("--cell-ids", args.cell_ids), *[("--coverage", c) for c in args.coverage or []]):
        if path and not Path(path).exists():
            raise UserError(f"{opt} file {path} does not exist", where=opt, fix="check the path")
    if not (0.0 < args.min_share <= 1.0):
        raise UserError(f"--min-share {args.min_share:g} must lie in (0, 1]", where="--min-share",
                        fix="give the share of a cell that must lie in the sub-area, e.g. --min-share 0.5")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a directory", where="--out", fix="give a directory")
    inputs = [x for x in (args.plan, args.neighbours, args.population_raster, args.points, args.observations,
                          args.model, args.water, args.cell_ids, *(args.coverage or [])) if x]
    # spill writes its own files (spill*.csv, spill.json) into the folder and never touches the
    # others; --force replaces only those files, never one of the inputs
    for name in spill.OUTPUT_FILES:
        check_can_write(out / name, args.force, inputs=inputs)
    return out


def run(args) -> int:
    from subdivide.analysis import spill
    from subdivide.core.i18n import command_language, printer, stderr_progress
    from subdivide.model.plan import read_plan

    lang = command_language(args)
    say = printer(lang)
    distances = spill.parse_distances(args.distances)
    target = spill.check_share(args.target)
    encoding = "utf-8-sig" if args.encoding in ("utf-8-sig", "utf-8") else args.encoding
    out = _check_inputs(args, spill)
    progress = stderr_progress(lang, args.progress)
    model = None
    if args.model:
        from subdivide.analysis.reception import ReceptionModel

        model = ReceptionModel.load(args.model)
    plan = read_plan(args.plan)
    water = None
    if args.water:
        import geopandas as gpd

        water = gpd.read_file(args.water)
    report = spill.spill_report(plan, distances_km=distances, target_share=target, neighbours=args.neighbours,
                                water_distance_km=args.water_distance, water=water,
                                population_raster=args.population_raster, progress=progress)
    report.parameters["plan"] = str(args.plan)
    _add_point_figures(report, plan, args, distances, model, progress)
    if args.coverage:
        report.coverage = coverage_tables(plan, args.coverage, selection=args.selection,
                                          min_share=args.min_share, cell_ids=args.cell_ids,
                                          neighbours=args.neighbours)
        report.parameters["coverage"] = {"files": list(args.coverage), "selection": args.selection,
                                         "min_share": args.min_share, "cell_ids": args.cell_ids}
    written = report.write(out, force=args.force, encoding=encoding)
    if model is not None:
        say("policy view (fixed L):")
    say(spill.format_summary(report))
    if "points" in report.extra:
        say(_points_summary(report.extra["points"], distances))
    if model is not None:
        say(_expected_summary(report.extra["expected"]))
    say("wrote " + ", ".join(str(p) for p in written))
    sys.stdout.flush()
    return 0


def _add_point_figures(report, plan, args, distances, model, progress) -> None:
    """--points, --observations and --model: the point table, the fit, the expected view."""
    from subdivide.analysis import spill

    if args.points:
        report.extra["points"] = spill.office_check(plan, args.points, distances, point_name=args.point_name)
        if model is not None:
            report.extra["points"] = spill.add_reception_probability(report.extra["points"], model)
    if args.observations:
        report.extra["observations"], report.fit = observations_fit(plan, args.points, args.observations,
                                                                    distances, point_name=args.point_name)
    if model is not None:
        report.extra["expected"] = spill.expected_exposure(plan, model, progress=progress)
        report.parameters["model"] = {"file": str(args.model), "L_km": model.estimates_["L_km"],
                                      "scale_km": model.estimates_["scale_km"]}
        report.parameters["views"] = {
            "policy": "circle, exact-core and exposure figures at the fixed spill distances L",
            "expected": ("spill_expected.csv: population × P(receive | distance) of the fitted reception model, "
                         "with its profile-likelihood interval")}


def observations_fit(plan, points, observations, distances, *, point_name=None):
    """Observations with their distances, pair kind, reach at each L and P(receive); and the
    reception model fitted on the between-area pairs (the same rule as `subdivide calibrate`)."""
    from subdivide.analysis import spill
    from subdivide.analysis.reception import ReceptionModel, own_area_mask

    obs = spill.observation_distances(plan, points, observations, point_name=point_name)
    obs["pair"] = ["own" if o else "between" for o in own_area_mask(obs)]
    for L in distances:
        obs[f"reached_{L:g}km"] = obs["distance_km"] <= L
    model = ReceptionModel().fit(obs)
    obs["p_receive"] = [1.0 if k == "own" else p for k, p in zip(obs["pair"], model.predict_proba(obs["distance_km"]))]
    return obs, spill.fit_summary(model)


def _expected_summary(df) -> str:
    """The largest expected exposures, labelled as expected figures."""
    lines = ["expected view (fitted reception model): people of B expected to receive A's messages"]
    top = df.sort_values(["expected_population", "from_subarea", "to_subarea"], ascending=[False, True, True],
                         kind="stable").head(8)
    for r in top.itertuples():
        lo = "?" if r.expected_population_lo is None or r.expected_population_lo != r.expected_population_lo \
            else f"{r.expected_population_lo:,.0f}"
        hi = "?" if r.expected_population_hi is None or r.expected_population_hi != r.expected_population_hi \
            else f"{r.expected_population_hi:,.0f}"
        lines.append(f"  {r.from_name} → {r.to_name}: expected {r.expected_population:,.0f} people "
                     f"[{lo}–{hi}] of {r.to_population:,.0f}")
    return "\n".join(lines)


def coverage_tables(plan, files, *, selection="any", min_share=0.5, cell_ids=None, neighbours=None) -> dict:
    """Read every coverage file (one carrier each, or with a carrier column), and return
    coverage.footprint_report's tables for the plan."""
    import pandas as pd
    import shapely

    from subdivide.analysis.coverage import footprint_report, read_coverage

    outline = shapely.union_all(plan.dissolved.geometry.values)
    frames = [read_coverage(f, plan.crs, outline=outline) for f in files]
    cov = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return footprint_report(plan, cov, selection=selection, min_share=min_share, cell_ids=cell_ids,
                            neighbours=neighbours)


def _points_summary(df, distances) -> str:
    """Per point: the sub-area it is in, and other sub-areas within the largest L."""
    Lmax = max(distances)
    lines = [f"points: other sub-areas within {Lmax:g} km (their messages reach the point)"]
    for pt, g in df.groupby("point", sort=True):
        inside = g.loc[g["inside"], "area"].tolist()
        near = g[(~g["inside"]) & (g["distance_km"] <= Lmax)].sort_values("distance_km")
        near_s = ", ".join(f"{a} {d:.1f} km" for a, d in zip(near["area"], near["distance_km"])) or "none"
        lines.append(f"  {pt} (in {'/'.join(inside) or 'no sub-area'}): {near_s}")
    return "\n".join(lines)


def write_demo(plan, out_dir, *, offices=None, force: bool = False) -> str:
    """The spill part of ``subdivide demo``: the default report (2.0/2.5/3.0 km, 50 %)
    written to ``out_dir`` and, when ``offices`` (a points file with office_name) is
    given, the office check. Returns the printed summary."""
    from subdivide.analysis import spill

    report = spill.spill_report(plan)
    if offices is not None:
        report.extra["points"] = spill.office_check(plan, offices, spill.DEFAULT_DISTANCES_KM,
                                                    point_name="office_name")
    report.write(out_dir, force=force)
    text = spill.format_summary(report)
    if "points" in report.extra:
        text += "\n" + _points_summary(report.extra["points"], spill.DEFAULT_DISTANCES_KM)
    return text
