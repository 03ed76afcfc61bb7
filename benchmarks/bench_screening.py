"""Screening benchmark (issue 15): a sample of a synthetic nation, 1 vs 2 workers.

The nation: 1,900 municipalities and about 224,000 town-blocks: 1,876 towns and villages
log-normal around 46 blocks, and 24 cities log-normal around 3,500 (95 % under 300 blocks,
five over 5,000). Screening all of it on this 2-core machine
takes hours, so this script screens a stratified sample (``--munis``, default 16: the
size quantiles of the national distribution), measures the time per municipality by size,
fits t = a·n^b, and extrapolates to the whole nation on 2 and on 100 workers.

    python benchmarks/bench_screening.py --munis 16 --k 2-14
"""
from __future__ import annotations

import argparse
import json
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--munis", type=int, default=16)
    ap.add_argument("--k", default="2-14")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    lo, hi = parse_k_range(a.k)
    options = ScreenOptions(k_min=lo, k_max=hi)
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
            peak = {}
            for _, _, pid, rss in per:
                peak[pid] = max(peak.get(pid, 0.0), rss)
            print(f"{w} worker(s): wall {wall:.1f} s; peak memory per worker (MB): "
                  + ", ".join(f"{v:.0f}" for v in sorted(peak.values())))
            out[f"wall_{w}"] = wall
            out[f"peak_mb_{w}"] = sorted(peak.values())
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
