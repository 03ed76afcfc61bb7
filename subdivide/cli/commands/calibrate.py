"""``subdivide calibrate``: fit the reception model to observations and score it.

Fits P(receive | d km outside the sending sub-area) by maximum likelihood on the
between-area pairs of one or several cities (own-area pairs never count), prints each
parameter with its profile-likelihood interval (or says that it cannot be identified),
per city and pooled, then scores the model leave-one-city-out against the trivial
answer "only the sending area's own office receives", the training base rate and fixed
thresholds. Writes calibration_*.csv, calibration.json and calibration_model.json (the
fitted model, for ``subdivide spill --model``).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from subdivide.core.errors import UserError

HELP = "fit the reception model P(receive | distance) to observations; score it against the trivial answers"
EXAMPLE = """
  # the shipped 2016–17 trial (3 cities) on the approximate 旧市町村 polygons and the P34 offices:
  subdivide calibrate --trial \\
      --polygons ../shared/data/derived_approx_old_municipalities/approx_old_municipalities_voronoi.geojson \\
      --area-name old_muni_name \\
      --points ../shared/data/offices/p34_offices_hanamaki_toyota_hagi.geojson --point-name office_name \\
      --out calibration/
  # your own observations (columns point, subarea, received; optional city_code, technology, date,
  # own_area; or a distance_km column instead of --polygons/--points), several files at once:
  subdivide calibrate obs_city1.csv obs_city2.xlsx --polygons areas.gpkg --points offices.csv \\
      --technology --thresholds 2,3 --out calibration/ --force
  # then use the fitted model for expected figures:
  subdivide spill hanamaki.plan.gpkg --out spill/ --model calibration/calibration_model.json
"""

OUTPUTS = ("calibration.json", "calibration_model.json", "calibration_fits.csv", "calibration_pairs.csv",
           "calibration_scores.csv", "calibration_reliability.csv")


def add_arguments(p) -> None:
    p.add_argument("observations", nargs="*", metavar="OBS",
                   help="observation files (CSV/XLSX): point, subarea (sent to), received (yes/no); optional "
                        "city_code, technology (3G/LTE/5G), date, own_area, distance_km")
    p.add_argument("--trial", action="store_true",
                   help="use the shipped 2016–17 trial observations (with each city's polygon quality)")
    p.add_argument("--polygons", metavar="FILE",
                   help="sending areas (polygons with a name column and, for several cities, city_code)")
    p.add_argument("--area-name", metavar="COL", help="name column of --polygons (default name/old_muni_name)")
    p.add_argument("--points", metavar="FILE", help="observed points (GeoJSON/GPKG, or CSV with latitude/longitude)")
    p.add_argument("--point-name", metavar="COL", help="name column of --points (default name/office_name)")
    p.add_argument("--technology", action="store_true", help="fit a technology term (needs a technology column)")
    p.add_argument("--city-term", action="store_true", help="fit a city (site-layout) term (needs city_code)")
    p.add_argument("--thresholds", default="2", metavar="KM,…",
                   help="fixed spill distances scored as hard thresholds (default 2)")
    p.add_argument("--confidence", type=float, default=0.95, help="interval confidence (default 0.95)")
    p.add_argument("--exclude-city", action="append", default=[], metavar="CODE",
                   help="leave a city out entirely (repeatable)")
    p.add_argument("--exclude-quality", action="append", default=[], choices=("good", "fair", "poor"),
                   help="leave out cities whose polygon_quality is this (repeatable; needs that column)")
    p.add_argument("--no-evaluate", action="store_true", help="fit only; skip the leave-one-city-out scores")
    p.add_argument("--progress", action="store_true", help="show progress on stderr")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--encoding", choices=("utf-8-sig", "cp932"), default="utf-8-sig", help="CSV encoding")
    p.add_argument("--force", action="store_true", help="replace this command's existing outputs")


def read_all(args):
    """Every observation file (and the trial with --trial), after the exclusions."""
    import pandas as pd

    from subdivide.analysis import spill

    if not args.observations and not args.trial:
        raise UserError("no observations given", where="OBS", fix="give observation files, or --trial")
    for opt, path in (("--polygons", args.polygons), ("--points", args.points),
                      *[("OBS", f) for f in args.observations]):
        if path and not Path(path).exists():
            raise UserError(f"{opt} file {path} does not exist", where=opt, fix="check the path")
    frames = [spill.trial_observations().assign(source="trial")] if args.trial else []
    frames += [spill.read_observations(f).assign(source=Path(f).name) for f in args.observations]
    obs = pd.concat(frames, ignore_index=True)
    if args.exclude_city and "city_code" in obs.columns:
        obs = obs[~obs["city_code"].isin([str(c).zfill(5) for c in args.exclude_city])]
    if args.exclude_quality:
        if "polygon_quality" not in obs.columns:
            raise UserError("--exclude-quality needs a polygon_quality column", where="--exclude-quality",
                            fix="add polygon_quality (good/fair/poor) per row, or use --trial")
        obs = obs[~obs["polygon_quality"].isin(args.exclude_quality)]
    if not len(obs):
        raise UserError("no observations left after the exclusions", where="--exclude-city/--exclude-quality",
                        fix="exclude fewer cities")
    return obs.reset_index(drop=True)


def load_pairs(args):
    """The observations with distance_km (given, or measured on --polygons/--points) and pair."""
    import pandas as pd

    from subdivide.analysis import spill
    from subdivide.analysis.reception import own_area_mask

    obs = read_all(args)
    if "distance_km" in obs.columns and not (args.polygons or args.points):
        obs = obs.assign(distance_km=pd.to_numeric(obs["distance_km"], errors="coerce"))
        if obs["distance_km"].isna().any():
            raise UserError("some distance_km values are not numbers", where="OBS", fix="give km as numbers")
        return obs.assign(pair=["own" if o else "between" for o in own_area_mask(obs)])
    if not (args.polygons and args.points):
        raise UserError("observations without distance_km need --polygons and --points",
                        where="--polygons/--points", fix="give the sending areas and the observed points")
    from subdivide.io.readers import read_vector

    polys = read_vector(args.polygons, what="polygons file", where="--polygons")
    return spill.observation_pairs(polys, args.points, obs, area_name=args.area_name, point_name=args.point_name)


def fits_table(pairs, options: dict):
    """Per city and pooled: every parameter with estimate, interval, status."""
    import pandas as pd

    from subdivide.analysis.reception import ReceptionModel, between_area_pairs

    groups = [("pooled", pairs)]
    if "city_code" in pairs.columns:
        cities = sorted(set(pairs["city_code"].astype(str)))
        if len(cities) > 1:
            groups += [(c, pairs[pairs["city_code"].astype(str) == c]) for c in cities]
    rows, models = [], {}
    for name, g in groups:
        opts = dict(options)
        if name != "pooled" or "city_code" not in g.columns:
            opts["city"] = False
        m = ReceptionModel(**opts).fit(g)
        models[name] = m
        q = between_area_pairs(g)
        for par, e in m.estimates_.items():
            rows.append({"fit": name, "parameter": par, "estimate": e["estimate"], "lo": e["interval"][0],
                         "hi": e["interval"][1], "status": e["status"], "note": e["note"],
                         "n": len(q), "n_received": int(q["received"].sum())})
    return pd.DataFrame(rows), models


def run(args) -> int:
    from subdivide.analysis import reception, spill
    from subdivide.core.i18n import command_language, printer, stderr_progress
    from subdivide.io.output import atomic_path, check_can_write, csv_bytes

    lang = command_language(args)
    say = printer(lang)
    thresholds = spill.parse_distances(args.thresholds)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a directory", where="--out", fix="give a directory")
    inputs = [f for f in (*args.observations, args.polygons, args.points) if f]
    for name in OUTPUTS:
        check_can_write(out / name, args.force, inputs=inputs)
    options = {"technology": args.technology, "city": args.city_term, "confidence": args.confidence}
    reception.ReceptionModel(**options)              # validates the options before any work
    pairs = load_pairs(args)
    fits, models = fits_table(pairs, options)
    model = models["pooled"]
    ev = None
    n_cities = len(set(pairs["city_code"].astype(str))) if "city_code" in pairs.columns else 1
    if not args.no_evaluate and n_cities > 1:
        ev = reception.evaluate(pairs, thresholds_km=thresholds,
                                progress=stderr_progress(lang) if args.progress else None, **options)
    enc = args.encoding
    result = {"options": {**options, "thresholds_km": list(thresholds), "exclude_city": args.exclude_city,
                          "exclude_quality": args.exclude_quality, "inputs": ["trial"] * args.trial + list(args.observations)},
              "pairs_rule": "between-area pairs only: own_area flag, else distance_km == 0 means own area",
              "fits": {name: m.to_dict() for name, m in models.items()},
              "evaluation": None if ev is None else ev.to_dict()}
    payload = {
        "calibration.json": (json.dumps(spill._jsonable(result), ensure_ascii=False, indent=2, allow_nan=False)
                             + "\n").encode("utf-8"),
        "calibration_fits.csv": csv_bytes(fits, encoding=enc, where="calibration_fits.csv"),
        "calibration_pairs.csv": csv_bytes(pairs.drop(columns=[c for c in ("geometry",) if c in pairs.columns]),
                                           encoding=enc, where="calibration_pairs.csv"),
    }
    if ev is not None:
        payload["calibration_scores.csv"] = csv_bytes(ev.scores, encoding=enc, where="calibration_scores.csv")
        payload["calibration_reliability.csv"] = csv_bytes(ev.reliability, encoding=enc,
                                                           where="calibration_reliability.csv")
    payload["calibration_model.json"] = model.dumps().encode("utf-8")
    written = []
    for name, data in payload.items():
        with atomic_path(out / name, force=args.force, inputs=inputs) as tmp:
            tmp.write_bytes(data)
        written.append(out / name)
    say(_summary(models, ev))
    say("wrote " + ", ".join(str(p) for p in written))
    sys.stdout.flush()
    return 0


def _summary(models, ev) -> str:
    from subdivide.analysis.reception import format_evaluation

    lines = []
    for name, m in models.items():
        lines.append(f"[{name}] " + m.summary())
    if ev is not None:
        lines.append(format_evaluation(ev))
    else:
        lines.append("no leave-one-city-out scores (one city, or --no-evaluate)")
    return "\n".join(lines)
