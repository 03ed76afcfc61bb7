"""``subdivide screen``: rank the municipalities of one or more town-block files by the
residents that subdividing them would spare an alert (docs/screening.md)."""
from __future__ import annotations

from pathlib import Path

HELP = "screen every municipality of prefecture/national files: who gains most from the 25 places"
EXAMPLE = """
  subdivide screen ../shared/data/tottori_31_estat2015/h27ka31.shp --out tottori_screen/ --workers 2
  subdivide screen pref_files/ --out nation/ --scheduler tcp://10.0.0.5:8786 --progress
  (a rerun after Ctrl-C resumes from tottori_screen.checkpoints/ and recomputes nothing done)
"""


def add_arguments(p) -> None:
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="e-Stat town-block files (prefecture-wide .shp or .zip), or folders of them")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output folder: screening.csv/.xlsx (Japanese headers), screening.gpkg, "
                        "screening.html (offline map), screening.png")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="local dask worker processes (default: the machine's cores; 0 = no dask, one process)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on an existing dask cluster, e.g. tcp://10.0.0.5:8786 (then --workers is ignored)")
    p.add_argument("--k", default="2-14", metavar="K1-K2", help="numbers of sub-areas to try (default 2-14)")
    p.add_argument("--min-area-km2", type=float, default=0.0, metavar="KM2",
                   help="area floor per sub-area (default 0)")
    p.add_argument("--seed", type=int, default=0, help="planner seed (default 0): same seed, same table")
    p.add_argument("--restarts", type=int, default=1, metavar="N",
                   help="planner searches per k (default 1: enough to rank municipalities; plan --auto uses 4)")
    p.add_argument("--time-budget", type=float, default=None, metavar="S",
                   help="soft time limit per municipality for the planner's local search (seconds)")
    p.add_argument("--checkpoints", metavar="DIR",
                   help="where finished municipalities are kept for a resume (default: OUT.checkpoints)")
    p.add_argument("--progress", action="store_true", help="show progress on stderr")
    p.add_argument("--force", action="store_true", help="replace an earlier screening folder")


def _options(args):
    import math

    from subdivide.analysis.screening import ScreenOptions, parse_k_range
    from subdivide.core.errors import UserError

    lo, hi = parse_k_range(args.k)
    if not math.isfinite(args.min_area_km2) or args.min_area_km2 < 0:
        raise UserError(f"--min-area-km2 {args.min_area_km2} must be a number ≥ 0", where="--min-area-km2",
                        fix="give e.g. --min-area-km2 50")
    if args.seed < 0:
        raise UserError(f"--seed {args.seed} must be ≥ 0", where="--seed", fix="give e.g. --seed 0")
    if args.restarts is not None and args.restarts < 1:
        raise UserError(f"--restarts {args.restarts} must be ≥ 1", where="--restarts", fix="give e.g. --restarts 8")
    if args.time_budget is not None and (not math.isfinite(args.time_budget) or args.time_budget <= 0):
        raise UserError("--time-budget must be a positive number of seconds", where="--time-budget",
                        fix="give e.g. --time-budget 60")
    return ScreenOptions(k_min=lo, k_max=hi, min_area_km2=args.min_area_km2, seed=args.seed,
                         restarts=args.restarts, time_budget_s=args.time_budget)


def run(args) -> int:
    import os
    import shutil

    from subdivide.analysis.screening import Screening
    from subdivide.core.errors import UserError
    from subdivide.core.i18n import command_language, format_text, stderr_progress
    from subdivide.io.output import check_can_write
    from subdivide.io.readers import check_input_file

    lang = command_language(args)
    options = _options(args)
    for f in args.files:
        check_input_file(f, what="town-block file")
    out = Path(args.out)
    check_can_write(out, args.force, folder=True, inputs=args.files, command="screen")
    workers = (os.cpu_count() or 1) if args.workers is None else args.workers
    if workers < 0:
        raise UserError(f"--workers {workers} must be ≥ 0", where="--workers", fix="give e.g. --workers 2")
    checkpoints = Path(args.checkpoints) if args.checkpoints else out.with_name(out.name + ".checkpoints")
    job = Screening(files=list(args.files), options=options, checkpoints=checkpoints, workers=workers,
                    scheduler=args.scheduler, progress=stderr_progress(lang, args.progress))
    table = job.solve()
    write_outputs(table, out, force=args.force, inputs=args.files)
    shutil.rmtree(checkpoints / options.key(), ignore_errors=True)
    if checkpoints.is_dir() and not any(checkpoints.iterdir()):
        checkpoints.rmdir()
    ok = table[table["status"] == "ok"]
    print(format_text("screened {n} municipalities ({computed} computed, {resumed} resumed from checkpoints); "
                      "{failed} not screened", lang, n=len(table), computed=len(job.computed),
                      resumed=len(job.reused), failed=len(table) - len(ok)))
    for r in ok.head(5).itertuples():
        print(f"  {int(r.rank):>2}. " + format_text(
            "{muni}: k = {k}, {spared} residents spared per event ({share})", lang, muni=f"{r.muni_code} {r.name}",
            k=int(r.recommended_k), spared=f"{r.spared_per_event_mean:,.0f}", share=f"{r.spared_share_mean:.0%}"))
    print(format_text("wrote {path}", lang, path=out))
    return 0


def write_outputs(table, out: Path, *, force: bool, inputs) -> None:
    """CSV (BOM) and XLSX with Japanese headers, a GeoPackage of outlines, the map and PNG:
    all or nothing (one atomic folder)."""
    from subdivide.analysis.screening import japanese_headers
    from subdivide.io.output import atomic_dir, write_csv, write_gpkg, write_xlsx
    from subdivide.present.screening import screening_page, screening_png

    crs = "EPSG:6668"
    outlines = _outlines(table, crs)
    staff = japanese_headers(table)
    with atomic_dir(out, force=force, command="screen", inputs=inputs) as tmp:
        write_csv(staff, tmp / "screening.csv")
        write_xlsx({"screening": staff}, tmp / "screening.xlsx", text_columns=["市区町村コード"])
        write_gpkg({"municipalities": outlines}, tmp / "screening.gpkg")
        (tmp / "screening.html").write_text(screening_page(outlines), encoding="utf-8")
        screening_png(outlines, tmp / "screening.png")


def _outlines(table, crs):
    """Outlines in lon/lat: each municipality's outline was made in its own plane CRS."""
    import geopandas as gpd
    import pandas as pd

    from subdivide.analysis.screening import outlines_frame
    from subdivide.core.crs import crs_for_municipality

    parts = []
    for code, rows in table.groupby("muni_code", sort=False):
        parts.append(outlines_frame(rows, crs_for_municipality(str(code))).to_crs(crs))
    return gpd.GeoDataFrame(pd.concat(parts).loc[table.index], crs=crs)
