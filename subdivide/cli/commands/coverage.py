"""``subdivide coverage``: build carrier coverage polygons from a site list, or from a
seeded synthetic hexagonal site grid, for ``subdivide spill --coverage``.

The output GeoPackage (layer ``coverage``) holds one polygon per sector: the best-server
cell widened by the idle-mode margin (DOMAIN §3.6), plus ``nominal_wkt``, the un-widened
best-server polygon the selection rules look at. See docs/coverage.md.
"""
from __future__ import annotations

import sys
import warnings

HELP = "build coverage polygons from a site list (or synthetic sites) for `spill --coverage`"
EXAMPLE = """
  # from the repo root, after: subdivide plan data/hanamaki_03205/h27ka03205.shp --by OLD_MUNI --out hanamaki.plan.gpkg
  subdivide coverage --synthetic --isd-km 7 --carriers A,B,C,D --outline hanamaki.plan.gpkg \\
      --out synthetic_coverage.gpkg --sites-out synthetic_sites.csv
  subdivide coverage synthetic_sites.csv --crs EPSG:6678 --out site_coverage.gpkg   # from a site list CSV
  subdivide spill hanamaki.plan.gpkg --out spill-synthetic/ --coverage synthetic_coverage.gpkg --selection share
"""


def add_arguments(p) -> None:
    p.add_argument("sites", nargs="?", help="site list CSV (lat, lon, azimuth_deg, beamwidth_deg, height_m, "
                   "band_mhz; optional carrier, site_id, cell_id, eirp_dbm)")
    p.add_argument("--out", required=True, metavar="GPKG", help="output GeoPackage (layer 'coverage')")
    p.add_argument("--crs", metavar="CRS", help="projected CRS of the output (default: the outline's, "
                   "or the plane-rectangular zone from a plan/N03 outline)")
    p.add_argument("--outline", metavar="FILE", help="municipality outline: a plan .gpkg or any polygon file "
                   "(required with --synthetic; with a site list, sites far from it are refused)")
    g = p.add_argument_group("synthetic sites")
    g.add_argument("--synthetic", action="store_true", help="generate a hexagonal site grid instead of reading one")
    g.add_argument("--isd-km", type=float, metavar="KM", help="inter-site distance of the synthetic grid")
    g.add_argument("--carriers", default="A", metavar="A,B,…", help="carrier names (default A); each gets its own grid")
    g.add_argument("--jitter", type=float, default=0.0, metavar="F",
                   help="site displacement, fraction of the ISD (0–1)")
    g.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    g.add_argument("--band", type=float, default=800.0, metavar="MHZ", help="band of the synthetic sectors (800)")
    g.add_argument("--height", type=float, default=40.0, metavar="M", help="antenna height (40 m)")
    g.add_argument("--sites-out", metavar="CSV", help="also write the synthetic site list")
    m = p.add_argument_group("propagation and margin")
    m.add_argument("--environment", choices=("urban", "suburban", "open"), default="suburban",
                   help="Okumura–Hata environment (default suburban)")
    m.add_argument("--min-rx-dbm", type=float, default=-95.0, metavar="DBM",
                   help="received level at the cell edge (default −95 dBm)")
    m.add_argument("--hysteresis-db", type=float, default=4.0, metavar="DB", help="idle-mode hysteresis (4 dB)")
    m.add_argument("--shadow-db", type=float, default=12.0, metavar="DB", help="shadowing margin (12 dB)")
    m.add_argument("--exponent", type=float, default=3.4, metavar="N", help="path-loss exponent n (3.4)")
    m.add_argument("--no-widen", action="store_true", help="write the bare best-server partition")
    p.add_argument("--force", action="store_true", help="replace existing output files")


def run(args) -> int:
    import numpy as np
    import shapely

    from subdivide.analysis.coverage import _check_far
    from subdivide.core.errors import UserError
    from subdivide.core.i18n import FRAME, command_language, frame_text, printer, translate_text
    from subdivide.io.output import check_can_write, write_csv, write_gpkg
    from subdivide.analysis.sites import PropagationRangeWarning, coverage_from_sites, read_sites, synthetic_sites

    from subdivide.analysis.sites import check_propagation_options

    lang = command_language(args)
    say = printer(lang)
    check_propagation_options(min_rx_dbm=args.min_rx_dbm, hysteresis_db=args.hysteresis_db,
                              shadow_db=args.shadow_db, path_loss_exponent=args.exponent)
    check_can_write(args.out, args.force, inputs=[args.sites, args.outline])
    if args.sites_out:
        check_can_write(args.sites_out, args.force, inputs=[args.sites, args.outline])
    if args.synthetic == bool(args.sites):
        raise UserError("give either a site list or --synthetic", fix="e.g. `subdivide coverage sites.csv "
                        "--crs EPSG:6678 --out cov.gpkg` or `--synthetic --isd-km 7 --outline plan.gpkg`")
    outline, crs = (_read_outline(args.outline, args.crs) if args.outline else (None, None))
    if crs is None:
        if not args.crs:
            raise UserError("no output CRS", fix="pass --crs (e.g. EPSG:6678) or --outline")
        from subdivide.core.crs import parse_crs

        crs = parse_crs(args.crs)
        if not crs.is_projected:
            raise UserError(f"--crs {args.crs} is not projected", fix="use the plane-rectangular zone, e.g. EPSG:6678")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PropagationRangeWarning)
        if args.synthetic:
            if outline is None or args.isd_km is None:
                raise UserError("--synthetic needs --outline and --isd-km", fix="e.g. --isd-km 7 --outline plan.gpkg")
            import geopandas as gpd

            carriers = tuple(c.strip() for c in args.carriers.split(",") if c.strip())
            sites = synthetic_sites(gpd.GeoSeries([outline], crs=crs), isd_km=args.isd_km, jitter=args.jitter,
                                    seed=args.seed, carriers=carriers, band_mhz=args.band, height_m=args.height)
        else:
            sites = read_sites(args.sites)
        cov = coverage_from_sites(sites, crs=crs, hysteresis_db=args.hysteresis_db, shadow_db=args.shadow_db,
                                  path_loss_exponent=args.exponent, environment=args.environment,
                                  min_rx_dbm=args.min_rx_dbm, widen=not args.no_widen)
    for msg in sorted({str(w.message) for w in caught if issubclass(w.category, PropagationRangeWarning)}):
        print(f"{FRAME[lang]['warning']}: {translate_text(msg, lang)}", file=sys.stderr)
    if outline is not None and not args.synthetic:
        _check_far(cov, outline, 50.0, crs, str(args.sites))
    out = cov.drop(columns=["nominal"]).copy()
    out.insert(len(out.columns) - 1, "nominal_wkt",
               shapely.to_wkt(np.asarray(cov["nominal"].values, dtype=object), rounding_precision=3))
    if args.sites_out:
        write_csv(sites, args.sites_out, force=args.force)
    write_gpkg({"coverage": out}, args.out, force=args.force)
    per = cov.groupby("carrier").agg(cells=("cell_id", "size"), radius_km=("radius_km", "median"),
                                     nearest_site_km=("nearest_site_km", "median"), margin_km=("margin_km", "median"))
    say(f"coverage: {len(cov)} cells, CRS {crs.to_string()}, Δ = {args.hysteresis_db:g} + {args.shadow_db:g} dB, "
        f"n = {args.exponent:g}")
    print(frame_text(per.round(2), lang, index=True))
    say(f"wrote {args.out}" + (f", {args.sites_out}" if args.sites_out else ""))
    return 0


def _read_outline(path, crs_text):
    """(outline geometry in a projected CRS, that CRS) from a plan GeoPackage or a polygon file."""
    import shapely

    from subdivide.core.crs import crs_for_municipality, parse_crs
    from subdivide.core.errors import UserError
    from subdivide.io.readers import check_input_file, list_layers, read_polygons

    p = check_input_file(path, what="outline file", where="--outline")
    if {"townblocks", "subareas", "plan_meta"} <= set(list_layers(p, what="outline file", where="--outline")):
        from subdivide.model.plan import read_plan

        plan = read_plan(p)
        return shapely.union_all(plan.dissolved.geometry.values), plan.crs
    gdf = read_polygons(p, what="outline", where="--outline", layer_option="--outline-layer")
    if crs_text:
        target = parse_crs(crs_text)
    elif gdf.crs.is_projected:
        target = gdf.crs
    elif "N03_007" in gdf.columns and len(set(gdf["N03_007"].astype(str))) == 1:
        target = crs_for_municipality(str(gdf["N03_007"].iloc[0]).zfill(5))
    else:
        raise UserError(f"outline {p} is in lat/lon and its municipality is unknown", where=str(p),
                        fix="pass --crs with the prefecture's plane-rectangular zone, e.g. EPSG:6678")
    if not target.is_projected:
        raise UserError("the output CRS must be projected", fix="e.g. --crs EPSG:6678")
    geom = shapely.union_all(gdf.to_crs(target).geometry.values)
    if shapely.is_empty(geom) or shapely.area(geom) <= 0:
        raise UserError(f"outline {p} holds no polygon", where=str(p), fix="give the municipality polygon")
    return geom, target
