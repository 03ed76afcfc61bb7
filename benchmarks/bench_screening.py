"""Screening benchmark (issue 15): a sample of a synthetic nation, 1 vs 2 workers.

The nation: 1,900 municipalities and about 224,000 town-blocks: 1,876 towns and villages
log-normal around 46 blocks, and 24 cities log-normal around 3,500 (95 % under 300 blocks,
five over 5,000). Screening all of it on this 2-core machine
takes hours, so this script screens a stratified sample (``--munis``, default 16: the
size quantiles of the national distribution), measures the time per municipality by size,
fits t = a·n^b, and extrapolates to the whole nation on 2 and on 100 workers.

    python benchmarks/bench_screening.py --munis 16 --k 2-14
    python benchmarks/bench_screening.py --nation --workers 2 --json benchmarks/results/screening_nation.json

``--nation`` screens the whole synthetic nation: 47 prefecture files (the 1,900 sizes dealt
out to prefectures, seeded), written once to ``--data`` (reused when present), then one
``Screening`` over the folder with checkpoints (a rerun resumes). It reports the wall time,
CPU and wall time per municipality by size class, peak memory per worker and of the driver,
and extrapolates to 100 workers by list-scheduling the measured times.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from subdivide.analysis.screening import Screening, ScreenOptions, parse_k_range  # noqa: E402
from subdivide.testing.synthetic import synthetic_prefecture, write_estat_shapefile  # noqa: E402

N_MUNIS, N_CITIES = 1900, 24
MEDIAN, SIGMA = 46.0, 1.05                 # towns and villages
CITY_MEDIAN, CITY_SIGMA = 3500.0, 0.45      # large cities


def national_sizes(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    towns = np.clip(np.round(rng.lognormal(np.log(MEDIAN), SIGMA, N_MUNIS - N_CITIES)), 8, None)
    cities = np.clip(np.round(rng.lognormal(np.log(CITY_MEDIAN), CITY_SIGMA, N_CITIES)), 800, 9000)
    return np.r_[towns, cities].astype(int)


def sample_sizes(n: int, nation: np.ndarray) -> list[int]:
    qs = np.linspace(0.02, 0.99, n)
    return [int(v) for v in np.quantile(nation, qs, method="nearest")]


def run(sizes, options, workers: int, folder: Path) -> tuple[float, Screening]:
    g = synthetic_prefecture(sizes, pref="03", seed=11)
    shp = write_estat_shapefile(g, folder / "h27ka03.shp")
    job = Screening([shp], options=options, workers=workers)
    t = time.perf_counter()
    job.solve()
    return time.perf_counter() - t, job


N_PREFS = 47


def write_nation(folder: Path, seed: int = 0) -> list[Path]:
    """The synthetic nation as 47 prefecture files (sizes dealt out at random, seeded)."""
    nation = national_sizes(seed)
    order = np.random.default_rng(seed + 1).permutation(len(nation))
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(N_PREFS):
        pref = f"{i + 1:02d}"
        path = folder / f"h27ka{pref}.shp"
        if not path.exists():
            sizes = nation[order[i::N_PREFS]]
            g = synthetic_prefecture(sizes, pref=pref, seed=1000 * (i + 1))
            write_estat_shapefile(g, path)
            print(f"  wrote {path.name}: {len(sizes)} municipalities, {int(sizes.sum()):,} blocks", flush=True)
        paths.append(path)
    return paths


def schedule(times: list[float], workers: int) -> float:
    """Makespan of list scheduling ``times`` in the given order on ``workers``."""
    import heapq

    free = [0.0] * workers
    for t in times:
        heapq.heapreplace(free, free[0] + t)
    return max(free)


def peak_mb(rows) -> list[float]:
    """Peak memory (MB) of each worker, ascending, from ``Screening.seconds`` rows
    (blocks, seconds, pid, peak MB, CPU s)."""
    peak: dict = {}
    for _, _, pid, rss, _ in rows:
        peak[pid] = max(peak.get(pid, 0.0), rss)
    return sorted(peak.values())


def screen_nation(a, options: ScreenOptions) -> dict:
    import resource

    from subdivide.core.progress import StderrProgress

    t = time.perf_counter()
    files = write_nation(a.data)
    gen = time.perf_counter() - t
    job = Screening([a.data], options=options, workers=a.workers, checkpoints=a.data / "checkpoints",
                    progress=StderrProgress(interval=30))
    t = time.perf_counter()
    table = job.solve()
    wall = time.perf_counter() - t
    rows = sorted(job.seconds.values(), key=lambda r: r[0])
    n = np.array([r[0] for r in rows], float)
    w = np.array([r[1] for r in rows], float)
    cpu = np.array([r[4] for r in rows], float)
    peak = peak_mb(rows)
    driver_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"nation: {len(table)} municipalities ({len(job.computed)} computed, {len(job.reused)} from "
          f"checkpoints), {int(table['n_blocks'].sum()):,} blocks, {len(files)} files "
          f"(generated in {gen:.0f} s)")
    print(f"wall {wall:.0f} s with {a.workers} workers; load average now {os.getloadavg()}")
    print("peak memory per worker (MB): " + ", ".join(f"{v:.0f}" for v in peak)
          + f"; driver {driver_mb:.0f} MB")
    bins = [(0, 50), (50, 300), (300, 1000), (1000, 5000), (5000, 10 ** 9)]
    print("blocks      munis  mean wall s  mean CPU s  max CPU s  share of CPU")
    classes = []
    for lo, hi in bins:
        m = (n >= lo) & (n < hi)
        if m.any():
            c = dict(lo=lo, hi=hi, munis=int(m.sum()), mean_wall=float(w[m].mean()), mean_cpu=float(cpu[m].mean()),
                     max_cpu=float(cpu[m].max()), share=float(cpu[m].sum() / cpu.sum()))
            classes.append(c)
            print(f"{lo:>5}–{hi if hi < 10 ** 9 else '':<6} {c['munis']:>5} {c['mean_wall']:>12.2f} "
                  f"{c['mean_cpu']:>11.2f} {c['max_cpu']:>10.1f} {c['share']:>12.0%}")
    fails = table[table["status"] != "ok"]["status"].value_counts().to_dict()
    print(f"status: {table['status'].value_counts().to_dict()}")
    total_cpu = float(cpu.sum())
    lpt = sorted(cpu.tolist(), reverse=True)
    m100 = schedule(lpt, 100)
    print(f"total CPU {total_cpu / 3600:.2f} h; on 100 workers (largest first) ≈ {m100 / 60:.1f} min "
          f"(largest municipality alone {cpu.max() / 60:.1f} min; CPU/100 = {total_cpu / 100 / 60:.1f} min)")
    return dict(wall_s=wall, workers=a.workers, munis=len(table), computed=len(job.computed),
                reused=len(job.reused), blocks=int(table["n_blocks"].sum()), peak_worker_mb=peak,
                driver_mb=driver_mb, classes=classes, total_cpu_h=total_cpu / 3600, makespan_100_min=m100 / 60,
                statuses=table["status"].value_counts().to_dict(), failed=fails,
                per_muni=[dict(blocks=int(a_), wall=float(b_), cpu=float(c_)) for a_, b_, c_ in zip(n, w, cpu)],
                top=table.head(5)[["muni_code", "n_blocks", "recommended_k", "spared_per_event_mean"]]
                .astype(str).to_dict("records"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--munis", type=int, default=16)
    ap.add_argument("--k", default="2-14")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--nation", action="store_true", help="screen the whole synthetic nation")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "subdivide-nation",
                    help="folder for the nation's files and checkpoints (reused)")
    a = ap.parse_args()
    lo, hi = parse_k_range(a.k)
    options = ScreenOptions(k_min=lo, k_max=hi)
    if a.nation:
        out = screen_nation(a, options)
        if a.json:
            a.json.write_text(json.dumps(out, indent=1, ensure_ascii=False))
        return
    nation = national_sizes()
    sizes = sample_sizes(a.munis, nation)
    print(f"nation: {len(nation)} municipalities, {nation.sum():,} blocks; "
          f"share under 300 blocks {np.mean(nation < 300):.0%}, over 5,000: {int((nation > 5000).sum())}")
    print(f"sample: {len(sizes)} municipalities, {sum(sizes):,} blocks: {sizes}")
    out = {"sizes": sizes, "nation_blocks": int(nation.sum())}
    with tempfile.TemporaryDirectory() as d:
        walls = {}
        for w in (1, 2):
            wall, job = run(sizes, options, w, Path(d))
            walls[w] = wall
            per = sorted(job.seconds.values())
            peak = peak_mb(per)
            print(f"{w} worker(s): wall {wall:.1f} s; peak memory per worker (MB): "
                  + ", ".join(f"{v:.0f}" for v in peak))
            out[f"wall_{w}"] = wall
            out[f"peak_mb_{w}"] = peak
            if w == 1:
                n = np.array([p[0] for p in per], float)
                s = np.array([p[1] for p in per], float)
        b, log_a = np.polyfit(np.log(n), np.log(np.maximum(s, 1e-3)), 1)
        print("time per municipality by size (1 worker):")
        for ni, si in zip(n, s):
            print(f"  {int(ni):>6} blocks: {si:7.1f} s")
        print(f"fit: t = {np.exp(log_a):.3g} · n^{b:.2f} s")
        total = float(np.sum(np.exp(log_a) * nation.astype(float) ** b))
        print(f"speed-up 1 → 2 workers: {walls[1] / walls[2]:.2f}×")
        print(f"extrapolated nation: {total / 3600:.1f} CPU-hours; on 2 workers ≈ {total / 2 / 3600:.1f} h; "
              f"on 100 workers ≈ {total / 100 / 60:.0f} min (largest municipality alone: "
              f"{np.exp(log_a) * nation.max() ** b / 60:.0f} min)")
        out.update(fit_a=float(np.exp(log_a)), fit_b=float(b), nation_cpu_h=total / 3600,
                   speedup=walls[1] / walls[2])
    if a.json:
        a.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
