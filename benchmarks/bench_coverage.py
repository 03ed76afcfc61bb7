#!/usr/bin/env python
"""Benchmark: carrier coverage footprints and coverage from site lists.

    python benchmarks/bench_coverage.py [--cells 5000] [--carriers 4] [--sectors 10000] [--seed 0]
                                        [--isd-experiment]

1. ``coverage_from_sites`` for ``--sectors`` synthetic sectors (hex grid, 3 sectors per
   site) — target under 30 s; baseline: the same algorithm with a per-sector Python
   loop of scalar shapely calls.
2. ``footprint_report`` for a 14-sub-area synthetic municipality × ``--carriers``
   carriers × about ``--cells`` cells each (selection ``any`` and ``share``) — target
   under 30 s on 2 cores; baseline: a naive per-cell loop (``intersects`` + overlap area
   per sub-area × cell, Python-list unions, per-point ``distance`` for the overshoot).
   The baseline runs on one carrier and three sub-areas and is scaled linearly to the
   full problem (stated in the output). Run twice: at the ISD giving ``--cells`` cells
   per carrier (about 1 km: many small cells), and at a realistic rural 7 km.
3. ``--isd-experiment``: synthetic sites over the bundled 花巻 sample at inter-site
   distances of 5, 7 and 10 km (4 carriers, jitter 0.2, seeds 0–2), P50/P95/max overshoot
   per selection rule (the table in docs/coverage.md).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from shapely.ops import unary_union

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from subdivide.model.contiguity import block_adjacency, parts_per_group  # noqa: E402
from subdivide.analysis.coverage import ALL, footprint_report, lattice_points, selection_geometry  # noqa: E402
from subdivide.model.plan import Plan  # noqa: E402
from subdivide.analysis.sites import (  # noqa: E402
    PropagationRangeWarning, _normalise_sites, _project_sites, _serving_half_widths, cell_radius_km,
    coverage_from_sites, hysteresis_margin_km, synthetic_sites,
)
from subdivide.testing.synthetic import synthetic_townblocks  # noqa: E402

CRS = "EPSG:6678"


def plan_14(seed: int = 0) -> Plan:
    b = synthetic_townblocks(2000, seed=seed, n_old=14)
    det = parts_per_group(block_adjacency(b), pd.factorize(b["OLD_MUNI"])[0])["detached"].to_numpy()
    return Plan.from_assignment(b, b.set_index("key")["OLD_MUNI"], island_exceptions=b.loc[det, "key"])


def sites_for(outline, n_cells: int, carriers, seed: int) -> pd.DataFrame:
    """Synthetic sites with an ISD chosen so each carrier has about ``n_cells`` sectors."""
    area = outline.buffer(1000).area / 1e6
    isd = math.sqrt(area / (n_cells / 3) / (math.sqrt(3) / 2))
    for _ in range(6):
        s = synthetic_sites(outline, isd_km=isd, seed=seed, carriers=carriers, jitter=0.2, crs=CRS)
        per = len(s) / len(carriers)
        isd *= math.sqrt(per / n_cells)
    return s


# ---------------------------------------------------------------------- baselines
def naive_coverage(sites: pd.DataFrame, crs) -> list:
    """coverage_from_sites' algorithm with one Python iteration per sector."""
    df = _normalise_sites(sites, where="sites")
    x, y = _project_sites(df, crs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PropagationRangeWarning)
        radius = cell_radius_km(df["band_mhz"], df["height_m"], eirp_dbm=df["eirp_dbm"]) * 1000
    out = []
    for carrier in sorted(df["carrier"].unique()):
        idx = np.flatnonzero((df["carrier"] == carrier).to_numpy())
        xy = np.column_stack([x[idx], y[idx]])
        uniq, site = np.unique(np.round(xy, 3), axis=0, return_inverse=True)
        env = shapely.box(*(uniq.min(0) - 1e5), *(uniq.max(0) + 1e5))
        vor = shapely.voronoi_polygons(shapely.MultiPoint(uniq), extend_to=env, ordered=True).geoms
        centre, half = _serving_half_widths(site.ravel(), df["azimuth_deg"].to_numpy()[idx],
                                            df["beamwidth_deg"].to_numpy()[idx])
        for k, i in enumerate(idx):
            s = site.ravel()[k]
            t = np.linspace(-1, 1, 16)
            ang = np.radians(centre[k] + half[k] * t)
            ring = [(x[i], y[i])] + [(x[i] + radius[i] * math.sin(a), y[i] + radius[i] * math.cos(a)) for a in ang]
            wedge = shapely.Polygon(ring)
            cell = wedge.intersection(vor[s])
            others = np.delete(uniq, s, axis=0)
            near = float(np.min(np.hypot(*(others - uniq[s]).T))) / 1000
            m = float(hysteresis_margin_km(near, 16.0)) * 1000
            out.append(cell.buffer(m, quad_segs=4).intersection(shapely.Point(x[i], y[i]).buffer(radius[i], 8)))
    return out


def naive_footprints(plan: Plan, coverage, carrier: str, subareas, grid_m=200.0) -> tuple[float, float]:
    """The same per-group figures the obvious way: selection by a per-cell loop, unions of
    Python lists, population by a per-block loop, the neighbour split by a per-sub-area
    loop, overshoot by per-point ``distance``. Returns (wall s, CPU s)."""
    d = plan.dissolved.set_index("subarea")
    cov = coverage[coverage["carrier"] == carrier]
    sel_geoms = list(selection_geometry(cov))
    geoms = list(cov.geometry.values)
    blocks = list(zip(plan.blocks.geometry.values, plan.blocks["population"], plan.blocks["subarea"]))
    t, c = time.perf_counter(), time.process_time()
    for s in subareas:
        sub = d.loc[s, "geometry"]
        chosen = [g for g, sg in zip(geoms, sel_geoms) if sub.intersects(sg) and sub.intersection(sg).area > 1.0]
        fp = unary_union(chosen)
        over = fp.difference(sub)
        under = sub.difference(fp)
        pop_over = sum(p * over.intersection(g).area / g.area for g, p, k in blocks if k != s and over.intersects(g))
        pop_under = sum(p * under.intersection(g).area / g.area for g, p, k in blocks if k == s and under.intersects(g))
        split = {o: over.intersection(og).area for o, og in d["geometry"].items() if o != s and over.intersects(og)}
        pts, _ = lattice_points(over, grid_m)
        dist = [shapely.Point(p).distance(sub) for p in pts]
        if dist:
            np.percentile(dist, [50, 95]), max(dist)
        del pop_over, pop_under, split
    return time.perf_counter() - t, time.process_time() - c


# ---------------------------------------------------------------------- sections
def bench_sites(n_sectors: int, seed: int) -> None:
    s = sites_for(shapely.box(-20_000, -120_000, 60_000, -40_000), n_sectors, ("A",), seed)
    print(f"\n[1] coverage_from_sites: {len(s):,} sectors ({len(s) // 3:,} sites), one carrier")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PropagationRangeWarning)
        t, c = time.perf_counter(), time.process_time()
        cov = coverage_from_sites(s, crs=CRS)
        fast, fast_c = time.perf_counter() - t, time.process_time() - c
    print(f"    vectorised           {fast:8.2f} s wall {fast_c:6.2f} s CPU   ({len(cov):,} polygons)   "
          f"target < 30 s: {'OK' if fast < 30 else 'MISSED'}")
    n_base = min(len(s), 3000)
    t, c = time.perf_counter(), time.process_time()
    naive_coverage(s.iloc[:n_base], CRS)
    k = len(s) / n_base
    base, base_c = (time.perf_counter() - t) * k, (time.process_time() - c) * k
    note = "" if n_base == len(s) else f" (ran {n_base:,} sectors, scaled ×{k:.2f})"
    print(f"    per-sector loop      {base:8.2f} s wall {base_c:6.2f} s CPU{note}")
    print(f"    speed-up             {base / fast:8.1f} × wall, {base_c / fast_c:.1f} × CPU")


def bench_footprints(n_cells: int, n_carriers: int, seed: int, isd_km: float | None = None) -> None:
    plan = plan_14(seed)
    outline = shapely.union_all(plan.dissolved.geometry.values)
    carriers = tuple("ABCDEFGH"[:n_carriers])
    if isd_km is None:
        s = sites_for(outline, n_cells, carriers, seed)
    else:
        s = synthetic_sites(outline, isd_km=isd_km, seed=seed, carriers=carriers, jitter=0.2, crs=plan.crs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PropagationRangeWarning)
        t = time.perf_counter()
        cov = coverage_from_sites(s, crs=plan.crs)
        t_cov = time.perf_counter() - t
    per = cov.groupby("carrier").size()
    print(f"\n[2] footprint_report: {plan.k} sub-areas ({outline.area / 1e6:,.0f} km², {len(plan.blocks):,} blocks)"
          f" × {n_carriers} carriers × {int(per.mean()):,} cells"
          f" (median nearest site {cov['nearest_site_km'].median():.2f} km);"
          f" coverage built in {t_cov:.1f} s")
    times, cpu = {}, {}
    for sel in ("any", "share"):
        t, c = time.perf_counter(), time.process_time()
        rep = footprint_report(plan, cov, selection=sel)
        times[sel], cpu[sel] = time.perf_counter() - t, time.process_time() - c
        f = rep["footprints"]
        print(f"    selection={sel:5s}      {times[sel]:8.2f} s wall {cpu[sel]:6.2f} s CPU   target < 30 s: "
              f"{'OK' if times[sel] < 30 else 'MISSED'}   median P95 overshoot "
              f"{f.loc[f['carrier'] != ALL, 'overshoot_p95_km'].median():.2f} km, cells/sub-area/carrier "
              f"{f.loc[f['carrier'] != ALL, 'n_cells'].median():.0f}")
    subs = list(plan.dissolved["subarea"][:3])
    w, c = naive_footprints(plan, cov, carriers[0], subs)
    scale = plan.k / len(subs) * n_carriers
    print(f"    naive per-cell loop  {w * scale:8.2f} s wall {c * scale:6.2f} s CPU   (ran 1 carrier × {len(subs)} "
          f"sub-areas: {w:.2f} s, scaled ×{scale:.1f}; selection any, no union over carriers)")
    print(f"    speed-up (any)       {w * scale / times['any']:8.1f} × wall, {c * scale / cpu['any']:.1f} × CPU")


def isd_experiment() -> None:
    from subdivide.io.townblocks import read_townblocks

    shp = ROOT / "data" / "hanamaki_03205" / "h27ka03205.shp"
    if not shp.exists():
        print("\n[3] ISD experiment skipped: bundled sample missing")
        return
    blocks, _ = read_townblocks(shp)
    plan = Plan.from_assignment(blocks, blocks.set_index("key")["OLD_MUNI"])
    rows = []
    t = time.perf_counter()
    for isd in (5, 7, 10):
        for seed in (0, 1, 2):
            s = synthetic_sites(plan.dissolved, isd_km=isd, carriers=("A", "B", "C", "D"), seed=seed, jitter=0.2)
            cov = coverage_from_sites(s, crs=plan.crs)
            for sel in ("any", "share", "site"):
                f = footprint_report(plan, cov, selection=sel)["footprints"]
                rows.append(f.assign(isd_km=isd, seed=seed, selection=sel))
    df = pd.concat(rows, ignore_index=True)
    print(f"\n[3] 花巻 sample, 4 sub-areas × 4 carriers × 3 seeds per ISD ({time.perf_counter() - t:.0f} s); "
          "median over sub-area × carrier × seed; margin Δ = 4 + 12 dB, n = 3.4")
    one = df[df["carrier"] != ALL]
    cols = ["overshoot_p50_km", "overshoot_p95_km", "overshoot_max_km", "under_alert_share", "over_alert_km2",
            "over_alert_pop"]
    tab = one.groupby(["selection", "isd_km"])[cols].median().round(2)
    tab["margin_x_km"] = [round(float(hysteresis_margin_km(i, 16.0)), 2) for _, i in tab.index]
    print(tab.to_string())
    print("\n    union over the 4 carriers (ALL):")
    print(df[df["carrier"] == ALL].groupby(["selection", "isd_km"])[cols[:4]].median().round(2).to_string())
    print("\n    P95 overshoot per sub-area, selection share, median over carriers × seeds:")
    print(one[one["selection"] == "share"].groupby(["name", "isd_km"])["overshoot_p95_km"].median()
          .unstack().round(2).to_string())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=5000)
    ap.add_argument("--carriers", type=int, default=4)
    ap.add_argument("--sectors", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--isd-experiment", action="store_true")
    a = ap.parse_args(argv)
    bench_sites(a.sectors, a.seed)
    bench_footprints(a.cells, a.carriers, a.seed)
    bench_footprints(a.cells, a.carriers, a.seed, isd_km=7.0)   # realistic rural spacing
    if a.isd_experiment:
        isd_experiment()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
