"""Benchmark: loading a plan (``read_plan``), which spill, package, map, report and validate all
do first, and which re-checks contiguity on every load (issue 19).

In one process, on the same files, CPU time (best of ``--repeat``) of

- ``overlay``: the contiguity check on the boundary-intersection adjacency (before edge matching);
- ``edges``:   on edge matching after a coverage validation (``block_adjacency(method="edges")``);
- ``now``:     as ``read_plan`` checks: the shared-edge graph without the validation, completed by
  boundary intersections only around blocks that look detached.

Each variant's findings must be the same (a check that the faster path changes no result).
Files: a synthetic municipality (``--sizes``, default 10,000 blocks, 9 旧市町村) and, when the
shared data are there, 鳥取市 (31201, 666 real e-Stat blocks) split by the planner at k = 9.

    python benchmarks/bench_read_plan.py [--sizes 10000 50000] [--repeat 3] [--no-tottori]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOTTORI = REPO.parent / "shared" / "data" / "tottori_31_estat2015" / "h27ka31.shp"


def _cpu(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best


def _read_with(path, method: str):
    """read_plan with the contiguity check on the full adjacency of ``method``."""
    from subdivide.model import plan as pm
    from subdivide.model.contiguity import block_adjacency, contiguity_breaks

    def breaks(self, sub, keys):
        return contiguity_breaks(block_adjacency(self.blocks, method=method), sub, keys, self.island_exceptions)

    fast = pm.Plan._contiguity_breaks_fast
    pm.Plan._contiguity_breaks_fast = breaks
    try:
        return pm.read_plan(path)
    finally:
        pm.Plan._contiguity_breaks_fast = fast


def _files(sizes, tottori: bool, tmp: Path):
    from subdivide.make.planning import plan_by_attribute
    from subdivide.testing.synthetic import synthetic_townblocks

    for n in sizes:
        plan, _ = plan_by_attribute(synthetic_townblocks(n, seed=0, n_old=9), "OLD_MUNI")
        yield f"synthetic {n:,}", plan.save(tmp / f"syn{n}.plan.gpkg")
    if tottori and TOTTORI.exists():
        from subdivide.io.townblocks import read_townblocks
        from subdivide.make.regionalize import regionalize

        blocks, _ = read_townblocks(TOTTORI, muni_code="31201")
        plan = regionalize(blocks, k=[9], seed=0, restarts=2).best
        yield "鳥取市 (666)", plan.save(tmp / "tottori.plan.gpkg")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[10_000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-tottori", action="store_true")
    args = ap.parse_args()
    import warnings

    warnings.simplefilter("ignore")
    from subdivide.model.plan import read_plan

    print(f"{'file':<18} {'overlay s':>9} {'edges s':>7} {'now s':>6} {'edges/now':>9}  same findings")
    with tempfile.TemporaryDirectory() as d:
        for name, path in _files(args.sizes, not args.no_tottori, Path(d)):
            variants = {"overlay": lambda: _read_with(path, "overlay"), "edges": lambda: _read_with(path, "edges"),
                        "now": lambda: read_plan(path)}
            found = {k: sorted(map(str, fn().check())) for k, fn in variants.items()}
            times = {k: _cpu(fn, args.repeat) for k, fn in variants.items()}
            same = len({tuple(v) for v in found.values()}) == 1
            print(f"{name:<18} {times['overlay']:>9.3f} {times['edges']:>7.3f} {times['now']:>6.3f} "
                  f"{times['edges'] / times['now']:>9.2f}  {'yes' if same else 'NO'} ({len(found['now'])} findings)",
                  flush=True)
            if not same:
                sys.exit(1)


if __name__ == "__main__":
    main()
