"""Plan editor benchmark: time from a paint to updated figures (what `subdivide edit`
does after each click), against recomputing every figure from scratch.

    python benchmarks/bench_editor.py [--edits 12] [--blocks 3000] [--no-tottori]

For the bundled 花巻 sample (4 sub-areas by 旧市町村), real 鳥取市 (666 blocks, 9
sub-areas by its pre-2004 towns, from ../shared/data) and a synthetic municipality of
--blocks town-blocks (14 sub-areas): the session is loaded, then single border blocks
are painted into a neighbouring sub-area (contiguity kept) one at a time. Per edit:
wall-clock ms and CPU ms (all threads; comparable on a busy machine), median and max;
the baseline is a cold engine computing the same state. The load average is printed:
on a shared machine wall-clock times grow with it.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TOTTORI = ROOT.parent / "shared" / "data" / "tottori_31_estat2015" / "h27ka31.shp"
TOTTORI_OLD = ("国府町", "福部町", "河原町", "用瀬町", "佐治町", "気高町", "鹿野町", "青谷町")


def sample_plan():
    from subdivide.io.townblocks import read_townblocks
    from subdivide.make.planning import plan_by_attribute

    b, _ = read_townblocks(ROOT / "data" / "hanamaki_03205" / "h27ka03205.shp")
    return plan_by_attribute(b, "OLD_MUNI")[0]


def tottori_plan():
    from subdivide.io.townblocks import read_townblocks
    from subdivide.make.planning import plan_by_attribute

    b, _ = read_townblocks(TOTTORI, muni_code="31201")
    b["OLD"] = [next((o for o in TOTTORI_OLD if str(n).startswith(o)), "鳥取") for n in b["name"]]
    return plan_by_attribute(b, "OLD")[0]


def synthetic_plan(n: int):
    from subdivide.model.plan import Plan
    from subdivide.testing.synthetic import synthetic_townblocks

    b = synthetic_townblocks(n, seed=0, n_old=14)
    exc = b.loc[b["island"] | b["enclave"], "key"]
    return Plan.from_assignment(b, b.set_index("key")["OLD_MUNI"], island_exceptions=exc)


def border_moves(session, rng, n):
    """Yield (key, target) single-block moves that keep every sub-area contiguous."""
    from subdivide.model.contiguity import contiguity_breaks

    adj = session.base.adjacency.tocoo()
    done = 0
    while done < n:
        sub = session.state.sub
        pairs = np.flatnonzero(sub[adj.row] != sub[adj.col])
        k = int(rng.integers(len(pairs)))
        i, j = adj.row[pairs[k]], adj.col[pairs[k]]
        trial = sub.copy()
        trial[i] = sub[j]
        bad, _ = contiguity_breaks(session.base.adjacency, trial, session.keys, session.state.islands)
        if bad.any() or not (trial == sub[i]).any():
            continue
        done += 1
        yield str(session.keys[i]), int(sub[j])


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, (time.perf_counter() - w) * 1e3, (time.process_time() - c) * 1e3


def bench(name, plan, edits: int):
    from subdivide.present.editor.session import EditSession

    s, w0, _ = timed(lambda: EditSession(plan))
    _, w1, c1 = timed(s.figures)
    print(f"\n{name}: {len(plan.blocks)} blocks, {plan.k} sub-areas; session {w0:.0f} ms, first figures "
          f"{w1:.0f} ms wall / {c1:.0f} ms CPU")
    rng = np.random.default_rng(0)
    wall, cpu = [], []
    for key, target in border_moves(s, rng, edits):
        s.paint([key], target)
        _, w, c = timed(s.figures)
        wall.append(w)
        cpu.append(c)
    cold = EditSession(plan)
    cold.state = s.state.copy()
    _, wb, cb = timed(cold.figures)
    print(f"  per edit: median {np.median(wall):.0f} ms wall ({np.median(cpu):.0f} ms CPU), "
          f"max {max(wall):.0f} ms wall; from scratch {wb:.0f} ms wall ({cb:.0f} ms CPU); "
          f"ratio {np.median(wall) / wb:.2f}")
    _, wu, _ = timed(lambda: (s.undo(), s.figures()))
    print(f"  undo (cached shapes): {wu:.0f} ms")


def page(n: int) -> None:
    """What the page loads for n synthetic blocks: the simplified block GeoJSON."""
    import json

    from subdivide.present.editor.server import EditorApp
    from subdivide.present.editor.session import EditSession, PathPolicy

    s = EditSession(synthetic_plan(n))
    app = EditorApp(s, policy=PathPolicy(out_dirs=(ROOT,)))
    geo, w, _ = timed(app.block_geojson)
    size = len(json.dumps(geo, ensure_ascii=False, separators=(",", ":")))
    print(f"\npage data for {n} synthetic blocks: built in {w:.0f} ms, {size / 1e6:.1f} MB of GeoJSON")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--edits", type=int, default=12)
    ap.add_argument("--blocks", type=int, default=3000)
    ap.add_argument("--no-tottori", action="store_true")
    ap.add_argument("--page-blocks", type=int, default=10000, help="size of the page-data check (0: skip)")
    a = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    bench("花巻市 sample", sample_plan(), a.edits)
    if not a.no_tottori and TOTTORI.exists():
        bench("鳥取市 (real e-Stat polygons)", tottori_plan(), a.edits)
    if a.blocks:
        bench(f"synthetic {a.blocks}", synthetic_plan(a.blocks), a.edits)
    if a.page_blocks:
        page(a.page_blocks)
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
