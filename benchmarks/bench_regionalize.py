"""Benchmark: subdivide.make.regionalize vs spopt SKATER (and max-p), same inputs, same run.

    python benchmarks/bench_regionalize.py [--sizes 1000,3000,10000] [--skater-k 4,8,14]
                                           [--no-maxp] [--no-sample]

Inputs: the bundled 花巻 sample (attributes: a seeded synthetic hazard raster sampled per
block with subdivide.model.hazard, and SLOPE-like block density), and synthetic municipalities
(subdivide.testing.synthetic) of 1,000 / 3,000 / 10,000 blocks with FLOOD_M and SLOPE_DEG.

Objective: within-area dispersion = sum of squared deviations of the standardized
attributes from sub-area means (lower is better), compared on the mainland blocks
(SKATER needs a connected graph; ours also places islands). Constraint violations:
area floor (SKATER's floor counts blocks, not km², so it cannot be told the floor) and
contiguity. Times: our full ranked candidate set (k = 2..14) vs SKATER per k, and the
ratio, measured in the same process.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.sparse import csgraph

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from subdivide.model.contiguity import block_adjacency, parts_per_group  # noqa: E402
from subdivide.make.regionalize import regionalize, standardize, within_ssd  # noqa: E402

warnings.filterwarnings("ignore")


def load_inputs(sizes, with_sample):
    out = []
    if with_sample and (ROOT / "data/hanamaki_03205/h27ka03205.shp").exists():
        from subdivide.model.hazard import write_synthetic_hazard_raster, zonal_mean
        from subdivide.io.townblocks import read_townblocks

        b, _ = read_townblocks(ROOT / "data/hanamaki_03205/h27ka03205.shp")
        tif = Path(tempfile.mkdtemp()) / "flood.tif"
        write_synthetic_hazard_raster(tif, tuple(b.total_bounds), b.crs, resolution_m=200, seed=0)
        b["HAZ"] = zonal_mean(b, tif)[0].to_numpy()
        b["DENS"] = np.log1p(b["population"] / (b.geometry.area / 1e6))
        out.append(("花巻 sample (463)", b, ["HAZ", "DENS"], 20.0))
    from subdivide.testing.synthetic import synthetic_townblocks

    for n in sizes:
        out.append((f"synthetic {n}", synthetic_townblocks(n, seed=1), ["FLOOD_M", "SLOPE_DEG"], 20.0))
    return out


def mainland(blocks):
    adj = block_adjacency(blocks)
    lab = csgraph.connected_components(adj)[1]
    return adj, lab == np.bincount(lab).argmax()


def violations(blocks, adj, labels, floor_km2):
    area = pd.Series(blocks.geometry.area.to_numpy() / 1e6).groupby(labels).sum()
    det = parts_per_group(adj, labels)["detached"].to_numpy()
    return int((area < floor_km2 - 1e-9).sum()), int(det.sum())


def spopt_inputs(bm, Zm):
    """Rook weights and a frame with the standardized attributes as z0, z1, … for spopt."""
    import libpysal

    w = libpysal.weights.Rook.from_dataframe(bm, use_index=False, silence_warnings=True)
    cols = [f"z{i}" for i in range(Zm.shape[1])]
    df = bm[[bm.geometry.name]].copy()
    df[cols] = Zm
    return w, df, cols


def run_skater(bm, Zm, k):
    from spopt.region import Skater

    w, df, cols = spopt_inputs(bm, Zm)
    t = time.perf_counter()
    sk = Skater(df, w, cols, n_clusters=k, floor=1, trace=False, islands="ignore")
    sk.solve()
    return np.asarray(sk.labels_), time.perf_counter() - t


def run_maxp(bm, Zm, floor_km2):
    from spopt.region import MaxPHeuristic

    w, df, cols = spopt_inputs(bm, Zm)
    df["area_km2"] = bm.geometry.area.to_numpy() / 1e6
    t = time.perf_counter()
    mp = MaxPHeuristic(df, w, cols, "area_km2", floor_km2, top_n=2, max_iterations_construction=20)
    mp.solve()
    return np.asarray(mp.labels_), time.perf_counter() - t


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,3000,10000")
    ap.add_argument("--skater-k", default="4,8,14")
    ap.add_argument("--skater-k-large", default="4", help="SKATER k values for ≥ 10,000 blocks")
    ap.add_argument("--no-maxp", action="store_true")
    ap.add_argument("--no-sample", action="store_true")
    a = ap.parse_args(argv)
    sizes = [int(s) for s in a.sizes.split(",") if s]
    rows = []
    for label, b, attrs, floor in load_inputs(sizes, not a.no_sample):
        b = b.sort_values("key").reset_index(drop=True)
        Z = standardize(b[attrs].astype(float))
        t = time.perf_counter()
        res = regionalize(b, k=range(2, 15), attributes=attrs, min_area_km2=floor, seed=0)
        t_ours = time.perf_counter() - t
        adj, main_mask = mainland(b)
        bm = b[main_mask].reset_index(drop=True)
        Zm = Z[main_mask]
        print(f"\n== {label}: {len(b)} blocks, {b.geometry.area.sum() / 1e6:.0f} km², attributes {attrs}, "
              f"floor {floor} km²; ours k=2..14 in {t_ours:.1f} s", flush=True)
        print(res.table[["k", "feasible", "ssd", "min_area_km2", "violations"]].to_string(index=False))
        ks = [int(x) for x in (a.skater_k_large if len(b) >= 10000 else a.skater_k).split(",")]
        # the same k values without a floor: SKATER cannot be given an area floor
        t = time.perf_counter()
        free = regionalize(b, k=ks, attributes=attrs, min_area_km2=0.0, seed=0)
        t_free = time.perf_counter() - t
        for k in ks:
            cand = next(c for c in res.candidates if c.k == k)
            ours_lab = cand.plan.blocks["subarea"].to_numpy()
            ours_ssd = within_ssd(Zm, ours_lab[main_mask])
            ov = violations(b, adj, ours_lab, floor)
            free_lab = next(c for c in free.candidates if c.k == k).plan.blocks["subarea"].to_numpy()
            free_ssd = within_ssd(Zm, free_lab[main_mask])
            fv = violations(b, adj, free_lab, floor)
            try:
                sk_lab, t_sk = run_skater(bm, Zm, k)
                sk_ssd = within_ssd(Zm, sk_lab)
                adj_m = adj[main_mask][:, main_mask]
                sv = violations(bm, adj_m, sk_lab, floor)
            except Exception as exc:  # report, keep going
                print(f"   SKATER k={k} failed: {exc.__class__.__name__}: {exc}")
                continue
            rows.append(dict(input=label, n=len(b), k=k, skater_ssd=round(sk_ssd, 2),
                             ours_nofloor_ssd=round(free_ssd, 2),
                             nofloor_ratio=round(free_ssd / sk_ssd, 3) if sk_ssd else np.nan,
                             ours_floor_ssd=round(ours_ssd, 2), ours_floor_area_viol=ov[0],
                             ours_nofloor_area_viol=fv[0],
                             ours_contig_viol=ov[1] - len(res.island_links),
                             skater_area_viol=sv[0], skater_contig_viol=sv[1],
                             ours_all_k_s=round(t_ours, 1), ours_nofloor_s=round(t_free, 1), skater_k_s=round(t_sk, 1),
                             time_ratio_ours_allk_vs_skater_onek=round(t_ours / t_sk, 2)))
            print(f"   k={k}: SKATER SSD {sk_ssd:.2f} ({sv[0]} sub-areas under the floor, {t_sk:.1f} s); "
                  f"ours without floor {free_ssd:.2f} (ratio {free_ssd / sk_ssd:.3f}, {fv[0]} under); "
                  f"ours with floor {ours_ssd:.2f} ({ov[0]} under)", flush=True)
        if not a.no_maxp and len(b) <= 1000:
            try:
                mp_lab, t_mp = run_maxp(bm, Zm, floor)
                kmp = len(np.unique(mp_lab))
                mp_ssd = within_ssd(Zm, mp_lab)
                mv = violations(bm, adj[main_mask][:, main_mask], mp_lab, floor)
                extra = ""
                if 2 <= kmp <= 14:
                    c = next(c for c in res.candidates if c.k == kmp)
                    if c.feasible:
                        extra = f"; ours at k={kmp}: SSD {within_ssd(Zm, c.plan.blocks['subarea'].to_numpy()[main_mask]):.2f}"
                print(f"   max-p (floor {floor} km²): chose k={kmp}, SSD {mp_ssd:.2f}, area violations {mv[0]}, "
                      f"{t_mp:.1f} s{extra}", flush=True)
            except Exception as exc:
                print(f"   max-p failed: {exc.__class__.__name__}: {exc}")
    if rows:
        print("\nsummary")
        print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
