#!/usr/bin/env python
"""Benchmark: the full spill report for 14 sub-areas over 10,000 synthetic town-blocks.

    python benchmarks/bench_spill.py [--blocks 10000] [--subareas 14] [--seed 0]

Prints the time of ``spill_report`` (3 spill distances, a synthetic population raster,
neighbouring municipalities) and, in the same process, of a naive baseline: per pair of
sub-areas a geopandas overlay of the buffered sub-area with the other's blocks, and per
sub-area an overlay of its inward buffer with its blocks (the obvious
non-vectorised way). Target: under 10 s on 2 cores.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.cluster.vq import kmeans2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from subdivide.model.contiguity import block_adjacency, disconnected_blocks, parts_per_group  # noqa: E402
from subdivide.model.plan import Plan  # noqa: E402
from subdivide.analysis.spill import spill_report, write_synthetic_population_raster  # noqa: E402
from subdivide.testing.synthetic import synthetic_townblocks  # noqa: E402


def kmeans_plan(blocks: gpd.GeoDataFrame, k: int, seed: int = 0) -> Plan:
    """A contiguous k-sub-area plan: k-means on block centroids, then every block cut off
    from its cluster's main part moves to the neighbouring cluster it shares most border
    with, until every cluster is contiguous."""
    xy = shapely.get_coordinates(blocks.geometry.centroid.values)
    _, label = kmeans2(xy, k, seed=np.random.default_rng(seed), minit="++")
    adj = block_adjacency(blocks).tocsr()
    for _ in range(50):
        det = parts_per_group(adj, label)["detached"].to_numpy() & ~disconnected_blocks(adj)
        if not det.any():
            break
        coo = adj.tocoo()
        m = det[coo.row] & (label[coo.col] != label[coo.row]) & ~det[coo.col]
        if not m.any():
            m = det[coo.row] & (label[coo.col] != label[coo.row])
        df = pd.DataFrame({"i": coo.row[m], "g": label[coo.col[m]], "w": coo.data[m]})
        best = df.groupby(["i", "g"])["w"].sum().reset_index().sort_values(["i", "w"], ascending=[True, False])
        best = best.drop_duplicates("i")
        label[best["i"].to_numpy()] = best["g"].to_numpy()
    used = {g: i + 1 for i, g in enumerate(sorted(set(label)))}
    assign = pd.Series([f"S{used[g]:02d}" for g in label], index=blocks["key"].to_numpy())
    islands = blocks["key"].to_numpy()[disconnected_blocks(adj)]
    return Plan.from_assignment(blocks, assign, island_exceptions=islands,
                                names={f"S{i:02d}": f"区域{i:02d}地域" for i in range(1, k + 1)})


def naive_report(plan: Plan, distances_km) -> pd.DataFrame:
    """The same core and exposure figures by per-pair geopandas overlays."""
    blocks = plan.blocks[["subarea", "population", "geometry"]].copy()
    blocks["barea"] = blocks.area
    d = plan.dissolved
    rows = []
    for L in distances_km:
        for _, a in d.iterrows():
            core = gpd.GeoDataFrame(geometry=[a.geometry.buffer(-L * 1e3)], crs=plan.crs)
            own = blocks[blocks["subarea"] == a["subarea"]]
            ov = gpd.overlay(own, core, how="intersection", keep_geom_type=True)
            cpop = (ov["population"] * ov.area / ov["barea"]).sum()
            rows.append(("core", L, a["subarea"], a["subarea"], ov.area.sum(), cpop))
            reach = gpd.GeoDataFrame(geometry=[a.geometry.buffer(L * 1e3)], crs=plan.crs)
            for _, b in d.iterrows():
                if b["subarea"] == a["subarea"]:
                    continue
                other = blocks[blocks["subarea"] == b["subarea"]]
                ov = gpd.overlay(other, reach, how="intersection", keep_geom_type=True)
                rows.append(("exposure", L, a["subarea"], b["subarea"], ov.area.sum(),
                             (ov["population"] * ov.area / ov["barea"]).sum()))
    return pd.DataFrame(rows, columns=["kind", "L", "a", "b", "area", "population"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--blocks", type=int, default=10_000)
    ap.add_argument("--subareas", type=int, default=14)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-baseline", action="store_true")
    a = ap.parse_args(argv)

    t0 = time.perf_counter()
    blocks = synthetic_townblocks(a.blocks, seed=a.seed)
    plan = kmeans_plan(blocks, a.subareas, seed=a.seed)
    _ = plan.dissolved
    t_setup = time.perf_counter() - t0
    dist = (2.0, 2.5, 3.0)
    with tempfile.TemporaryDirectory() as tmp:
        tif = write_synthetic_population_raster(Path(tmp) / "pop.tif", blocks.total_bounds, blocks.crs,
                                                seed=a.seed, total=float(blocks["population"].sum()))
        outline = shapely.union_all(plan.dissolved.geometry.values)
        ring = shapely.difference(shapely.buffer(outline, 8000.0), outline)
        minx, miny, maxx, maxy = shapely.bounds(ring)
        cx = (minx + maxx) / 2
        neighbours = gpd.GeoDataFrame(
            {"name": ["西隣町", "東隣村"]},
            geometry=[shapely.intersection(ring, shapely.box(minx, miny, cx, maxy)),
                      shapely.intersection(ring, shapely.box(cx, miny, maxx, maxy))], crs=blocks.crs)

        t0 = time.perf_counter()
        rep_plain = spill_report(plan, distances_km=dist)
        t_plain = time.perf_counter() - t0
        t0 = time.perf_counter()
        rep = spill_report(plan, distances_km=dist, population_raster=tif, neighbours=neighbours)
        t_full = time.perf_counter() - t0

    print(f"setup (synthetic blocks + k-means plan): {t_setup:.2f} s")
    print(f"blocks {len(blocks):,}, sub-areas {plan.k}, distances {dist} km")
    print(f"spill_report (town-block population):            {t_plain:6.2f} s")
    print(f"spill_report full (+ raster + 2 neighbour munis): {t_full:6.2f} s   target < 10 s: "
          f"{'OK' if t_full < 10 else 'TOO SLOW'}")
    print(f"rows: subareas {len(rep.subareas)}, exposure {len(rep.exposure)}, municipalities "
          f"{len(rep.municipalities)}")
    if not a.no_baseline:
        t0 = time.perf_counter()
        naive = naive_report(plan, dist)
        t_naive = time.perf_counter() - t0
        ex = rep_plain.exposure
        mine = ex.set_index(["distance_km", "from_subarea", "to_subarea"])["population"]
        nv = naive[(naive["kind"] == "exposure") & (naive["area"] > 0)].set_index(["L", "a", "b"])["population"]
        diff = (mine.reindex(nv.index).fillna(0) - nv).abs().max()
        print(f"naive baseline (per-pair geopandas overlay):      {t_naive:6.2f} s   "
              f"ratio naive / vectorised = {t_naive / t_plain:.1f}×   max |Δ population| = {diff:.3g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
