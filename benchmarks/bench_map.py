"""Map and report benchmark: CPU time and file size for the bundled sample, a synthetic
municipality of 10,000 town-blocks and (when ../shared/data is there) the real 鳥取市.

    python benchmarks/bench_map.py [--blocks 10000] [--no-tottori]

For each municipality: the spill report (computed once; the map and the report draw it),
the online map (CDN libraries), the offline map (everything inlined), the offline map
without display simplification (the baseline: ratio = simplified / unsimplified size)
and the summary report. CPU seconds of this process (all threads), so a loaded machine
changes them less than wall time. Figures are printed; nothing is kept.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOTTORI = ROOT.parent / "shared" / "data" / "tottori_31_estat2015" / "h27ka31.shp"
TOTTORI_OLD = ("国府町", "福部町", "河原町", "用瀬町", "佐治町", "気高町", "鹿野町", "青谷町")


def sample_plan():
    from subdivide.io.townblocks import read_townblocks
    from subdivide.model.plan import Plan

    b, _ = read_townblocks(ROOT / "data" / "hanamaki_03205" / "h27ka03205.shp")
    return Plan.from_assignment(b, b.set_index("key")["OLD_MUNI"])


def synthetic_plan(n: int):
    from subdivide.model.plan import Plan
    from subdivide.testing.synthetic import synthetic_townblocks

    b = synthetic_townblocks(n, seed=0, n_old=14)
    exc = b.loc[b["island"] | b["enclave"], "key"]
    return Plan.from_assignment(b, b.set_index("key")["OLD_MUNI"], island_exceptions=exc)


def tottori_plan():
    """鳥取市 (31201) as its 9 pre-merger areas, told by the block names."""
    from subdivide.io.townblocks import read_townblocks
    from subdivide.model.plan import Plan

    b, _ = read_townblocks(TOTTORI, muni_code="31201")
    label = b["name"].map(lambda n: next((o[:-1] for o in TOTTORI_OLD if n.startswith(o)), "鳥取"))
    return Plan.from_assignment(b, label.set_axis(b["key"]))


def timed(fn, *a, **kw):
    t = time.process_time()
    out = fn(*a, **kw)
    return out, time.process_time() - t


def run(label: str, plan) -> None:
    from subdivide.analysis.spill import spill_report
    from subdivide.present.map import build_map
    from subdivide.present.report import build_report

    spill, t_spill = timed(spill_report, plan)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        online, t_on = timed(build_map, plan, d / "online.html", spill=spill, offline=False)
        offline, t_off = timed(build_map, plan, d / "offline.html", spill=spill, offline=True)
        raw, t_raw = timed(build_map, plan, d / "raw.html", spill=spill, offline=True, tolerance_m=0)
        rep, t_rep = timed(build_report, plan, d / "report", spill=spill)
        size = {p.name: p.stat().st_size / 1e6 for p in (online, offline, raw)}
        rep_size = sum(p.stat().st_size for p in rep.parent.iterdir()) / 1e6
    print(f"\n{label}: {len(plan.blocks):,} town-blocks, {len(plan.subareas)} sub-areas "
          f"(spill report {t_spill:.2f} CPU s, reused by the map and report)")
    print(f"  map online (CDN)        {size['online.html']:6.2f} MB  {t_on:6.2f} CPU s")
    print(f"  map offline (inlined)   {size['offline.html']:6.2f} MB  {t_off:6.2f} CPU s")
    print(f"  baseline: offline, no simplification {size['raw.html']:6.2f} MB  {t_raw:6.2f} CPU s"
          f"  → simplified/baseline size {size['offline.html'] / size['raw.html']:.2f}")
    print(f"  inlined libraries add   {size['offline.html'] - size['online.html']:6.2f} MB")
    print(f"  report (html + 3 PNG)   {rep_size:6.2f} MB  {t_rep:6.2f} CPU s")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--blocks", type=int, default=10_000)
    ap.add_argument("--no-tottori", action="store_true", help="skip the real 鳥取市 file")
    args = ap.parse_args(argv)
    run("bundled 花巻 sample", sample_plan())
    run(f"synthetic, {args.blocks:,} blocks", synthetic_plan(args.blocks))
    if not args.no_tottori and TOTTORI.exists():
        run("鳥取市 (real e-Stat, 9 pre-merger areas)", tottori_plan())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
