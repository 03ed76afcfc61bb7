"""Benchmark: reading synthetic e-Stat Shapefiles with read_townblocks.

For 10k, 50k and 200k town-blocks: writes a CP932 Shapefile (2015 current layout) with
the synthetic generator, then times, in the same process,

- baseline: ``pyogrio.read_dataframe(path, encoding="CP932")`` (plain read, nothing else);
- ``read_townblocks(path)``: read + decoding checks + drops + projection + repair check +
  dissolve + canonical schema.

Prints seconds and the ratio to the baseline. Target: 200k blocks in < 30 s on 2 cores.

    python benchmarks/bench_read.py [--sizes 10000 50000 200000] [--repeat 1]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pyogrio

from subdivide.testing.synthetic import synthetic_estat, write_estat_shapefile
from subdivide.io.townblocks import read_townblocks


def _best(fn, repeat):
    best = float("inf")
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 200_000])
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    print(f"{'blocks':>8} {'records':>8} {'generate s':>10} {'write s':>8} {'baseline s':>10} "
          f"{'read_townblocks s':>17} {'ratio':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            t = time.perf_counter()
            raw = synthetic_estat(n, seed=0)
            t_gen = time.perf_counter() - t
            path = Path(tmp) / f"h27ka03901_{n}.shp"
            t = time.perf_counter()
            write_estat_shapefile(raw, path)
            t_write = time.perf_counter() - t
            t_base, _ = _best(lambda: pyogrio.read_dataframe(path, encoding="CP932"), args.repeat)
            t_read, (blocks, rep) = _best(lambda: read_townblocks(path), args.repeat)
            assert len(blocks) == n and rep.records_in == len(raw)
            print(f"{n:>8} {len(raw):>8} {t_gen:>10.2f} {t_write:>8.2f} {t_base:>10.2f} "
                  f"{t_read:>17.2f} {t_read / t_base:>6.2f}", flush=True)


if __name__ == "__main__":
    main()
