"""Map and report benchmark: time and file size for the bundled sample and for a
synthetic municipality of 10,000 town-blocks.

    python benchmarks/bench_map.py [--blocks 10000]

For each municipality: the online map (CDN libraries), the offline map (everything
inlined), the offline map without display simplification (the baseline: ratio =
simplified / unsimplified size) and the summary report. Figures are printed; nothing is
kept.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def sample_plan():
    from subdivide.model.plan import Plan
    from subdivide.io.townblocks import read_townblocks

    b, _ = read_townblocks(ROOT / "data" / "hanamaki_03205" / "h27ka03205.shp")
    return Plan.from_assignment(b, b.set_index("key")["OLD_MUNI"])


def synthetic_plan(n: int):
    from subdivide.model.plan import Plan
    from subdivide.testing.synthetic import synthetic_townblocks

    b = synthetic_townblocks(n, seed=0, n_old=14)
    exc = b.loc[b["island"] | b["enclave"], "key"]
    return Plan.from_assignment(b, b.set_index("key")["OLD_MUNI"], island_exceptions=exc)


def timed(fn, *a, **kw):
    t = time.perf_counter()
    out = fn(*a, **kw)
    return out, time.perf_counter() - t


def run(label: str, plan) -> None:
    from subdivide.present.map import build_map
    from subdivide.present.report import build_report
    from subdivide.analysis.spill import spill_report

    spill, t_spill = timed(spill_report, plan)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        online, t_on = timed(build_map, plan, d / "online.html", spill=spill)
        offline, t_off = timed(build_map, plan, d / "offline.html", spill=spill, offline=True)
        raw, t_raw = timed(build_map, plan, d / "raw.html", spill=spill, offline=True, tolerance_m=0)
        rep, t_rep = timed(build_report, plan, d / "report", spill=spill)
        size = {p.name: p.stat().st_size / 1e6 for p in (online, offline, raw)}
        rep_size = sum(p.stat().st_size for p in rep.parent.iterdir()) / 1e6
    print(f"\n{label}: {len(plan.blocks):,} town-blocks, {len(plan.subareas)} sub-areas "
          f"(spill report {t_spill:.1f} s, reused by the map and report)")
    print(f"  map online (CDN)        {size['online.html']:6.2f} MB  {t_on:6.1f} s")
    print(f"  map offline (inlined)   {size['offline.html']:6.2f} MB  {t_off:6.1f} s")
    print(f"  baseline: offline, no simplification {size['raw.html']:6.2f} MB  {t_raw:6.1f} s"
          f"  → simplified/baseline size {size['offline.html'] / size['raw.html']:.2f}")
    print(f"  inlined libraries add   {size['offline.html'] - size['online.html']:6.2f} MB")
    print(f"  report (html + 3 PNG)   {rep_size:6.2f} MB  {t_rep:6.1f} s")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--blocks", type=int, default=10_000)
    args = ap.parse_args(argv)
    run("bundled 花巻 sample", sample_plan())
    run(f"synthetic, {args.blocks:,} blocks", synthetic_plan(args.blocks))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
