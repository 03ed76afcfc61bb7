"""Benchmark: subdivide.make.regionalize vs spopt SKATER (and max-p), same inputs, same run;
and (``--alerts``) the alert objective: planner vs the compactness ranking on real
polygons, full-set runtimes, and one local move vs a from-scratch evaluation.

    python benchmarks/bench_regionalize.py [--sizes 1000,3000,10000] [--skater-k 4,8,14]
                                           [--no-maxp] [--no-sample]
    python benchmarks/bench_regionalize.py --alerts [--munis 31201:50,31203:20,31328:20]
                                           [--sizes 3000,10000]
    python benchmarks/bench_regionalize.py --effort [--before-ref HEAD] [--sizes 1000,3000]
                                           [--restarts 1,2,4,8] [--tiny 20:0,21:1,...]

``--effort`` (issue 19, search quality): the default planner (k = 2..14, seed 0) of this
checkout against the planner of a git revision (``--before-ref``: its
subdivide/make/regionalize/ in a copy of this checkout), each run in a child process in
turn, CPU time from ``os.wait4``; then more restarts (never worse, k by k); then the
exact optimum (subdivide.testing.exact) on 20–24-block municipalities, k = 2..5 asked in
one call (as the test does) and one k per call, for both revisions.

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
import os
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

from subdivide.make.regionalize import regionalize, standardize, within_ssd
from subdivide.model.contiguity import block_adjacency, parts_per_group

warnings.filterwarnings("ignore")


def load_inputs(sizes, with_sample):
    out = []
    if with_sample and (ROOT / "data/hanamaki_03205/h27ka03205.shp").exists():
        from subdivide.io.townblocks import read_townblocks
        from subdivide.model.hazard import write_synthetic_hazard_raster, zonal_mean

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


TOTTORI = ROOT.parent / "shared" / "data" / "tottori_31_estat2015" / "h27ka31.shp"


def _alert_inputs(munis, sizes):
    """(label, blocks, floor km², 旧市町村 column) for the real and synthetic inputs."""
    from subdivide.io.townblocks import read_townblocks
    from subdivide.testing.synthetic import synthetic_townblocks

    out = []
    for spec in munis:
        code, _, floor = spec.partition(":")
        if TOTTORI.exists():
            b, _ = read_townblocks(TOTTORI, muni_code=code)
            out.append((f"鳥取県 {code}", b, float(floor or 0), None))
    if (ROOT / "data/hanamaki_03205/h27ka03205.shp").exists() and "hanamaki" not in os.environ.get("BENCH_SKIP", ""):
        b, _ = read_townblocks(ROOT / "data/hanamaki_03205/h27ka03205.shp")
        out.append(("花巻 03205", b, 0.0, "OLD_MUNI"))
    for n in sizes:
        out.append((f"synthetic {n}", synthetic_townblocks(n, seed=1), 0.0, None))
    return out


def _core_text(plan):
    from subdivide.model.reach import core_share

    cs = core_share(plan.dissolved.geometry.values, 2000.0)
    return f"{cs.min():.2f}–{cs.max():.2f}"


def skater_spared(b, model, ks, floor):
    """spopt SKATER on standardized centroid coordinates (it cannot take a km² floor),
    islands joined to their nearest mainland block's label; k → (spared, floor violations)."""
    import shapely

    from subdivide.make.regionalize.graph import _island_anchors

    b = b.reset_index(drop=True)        # the model's block order
    adj, main_mask = mainland(b)
    pts = shapely.point_on_surface(b.geometry.values)
    xy = np.column_stack([shapely.get_x(pts), shapely.get_y(pts)])
    Z = (xy - xy.mean(axis=0)) / xy.std(axis=0)
    anchor, _, _ = _island_anchors(b, adj)
    bm = b[main_mask].reset_index(drop=True)
    out = {}
    for k in ks:
        try:
            lab_m, t_sk = run_skater(bm, Z[main_mask], k)
        except Exception as exc:  # report, keep going
            print(f"   SKATER k={k} failed: {exc.__class__.__name__}: {exc}")
            continue
        lab = np.full(len(b), -1)
        lab[main_mask] = lab_m
        lab[~main_mask] = lab[anchor[~main_mask]]
        _, lab = np.unique(lab, return_inverse=True)
        out[k] = (model.score(lab.ravel(), int(lab.max()) + 1).mean, violations(b, adj, lab.ravel(), floor)[0], t_sk)
    return out


def alerts_report(munis, sizes, skater_k=()):
    """New planner (alert objective) vs the compactness planner, per input and per k."""
    from subdivide.core.errors import UserError
    from subdivide.make.regionalize import AlertModel
    from subdivide.model.plan import Plan
    from subdivide.model.scenarios import disc_scenarios

    summary = []
    for label, b, floor, old in _alert_inputs(munis, sizes):
        try:
            t, c = time.perf_counter(), time.process_time()
            new = regionalize(b, k=range(1, 15), min_area_km2=floor, seed=0)
            t_new, c_new = time.perf_counter() - t, time.process_time() - c
            t, c = time.perf_counter(), time.process_time()
            comp = regionalize(b, k=range(2, 15), min_area_km2=floor, seed=0, objective="compactness")
            t_comp, c_comp = time.perf_counter() - t, time.process_time() - c
        except UserError as exc:
            print(f"\n== {label}: {len(b)} blocks, {b.geometry.area.sum() / 1e6:.0f} km², floor {floor:g} km²: "
                  f"{str(exc).splitlines()[0]}", flush=True)
            continue
        model = AlertModel.build(b, disc_scenarios(b, seed=0))
        sk = skater_spared(b, model, [k for k in skater_k if k <= len(b)], floor) if skater_k else {}
        def spared(plan, model=model):
            return model.score(plan.blocks["subarea"].to_numpy() - 1, plan.k)
        rows = []
        for c in sorted(new.candidates, key=lambda c: c.k):
            oc = next((o for o in comp.candidates if o.k == c.k and o.feasible), None)
            if not c.feasible:
                continue
            os_ = spared(oc.plan) if oc is not None else None
            rows.append(dict(k=c.k, new_spared=round(c.spared, 4), new_worst=round(c.alerts.worst, 4),
                             old_spared=round(os_.mean, 4) if os_ else np.nan,
                             new_core_2km=_core_text(c.plan), old_core_2km=_core_text(oc.plan) if oc else "",
                             skater_spared=round(sk[c.k][0], 4) if c.k in sk else np.nan,
                             skater_under_floor=sk[c.k][1] if c.k in sk else np.nan))
        t_rows = pd.DataFrame(rows)
        print(f"\n== {label}: {len(b)} blocks, {b.geometry.area.sum() / 1e6:.0f} km², floor {floor:g} km²; "
              f"new k=1..14 {t_new:.1f} s wall / {c_new:.1f} s CPU, compactness k=2..14 {t_comp:.1f} s wall / "
              f"{c_comp:.1f} s CPU (load {os.getloadavg()[0]:.1f})", flush=True)
        print(t_rows.to_string(index=False))
        print(new.summary)
        rec = next(c for c in new.candidates if c.recommended)
        top = comp.best
        row = dict(input=label, n=len(b), floor=floor, new_k=rec.k, new_spared=round(rec.spared, 3),
                   new_worst=round(rec.alerts.worst, 3), new_core_2km=_core_text(rec.plan),
                   old_k=top.k, old_spared=round(spared(top).mean, 3), old_core_2km=_core_text(top),
                   rows_new_ge_old=int((t_rows["new_spared"] >= t_rows["old_spared"] - 1e-9).sum()),
                   rows=int(t_rows["old_spared"].notna().sum()), new_s=round(t_new, 1), new_cpu_s=round(c_new, 1),
                   old_s=round(t_comp, 1), old_cpu_s=round(c_comp, 1))
        if old:
            trial = Plan.from_assignment(b, b.set_index("key")[old])
            row["trial_k4_spared"] = round(spared(trial).mean, 3)
        summary.append(row)
    print("\nsummary")
    print(pd.DataFrame(summary).to_string(index=False))


def move_benchmark(n=3000, moves=300):
    """One local move (incremental) vs one from-scratch evaluation, k = 14."""
    from subdivide.make.regionalize import AlertModel
    from subdivide.model.scenarios import disc_scenarios
    from subdivide.testing.synthetic import synthetic_townblocks

    b = synthetic_townblocks(n, seed=1)
    t = time.perf_counter()
    model = AlertModel.build(b, disc_scenarios(b, seed=0))
    t_build = time.perf_counter() - t
    rng = np.random.default_rng(0)
    # a realistic labelling: nearest of 14 seeded centres (contiguous-ish sub-areas)
    import shapely
    pts = shapely.point_on_surface(b.geometry.values)
    xy = np.column_stack([shapely.get_x(pts), shapely.get_y(pts)])
    centres = xy[rng.choice(len(b), 14, replace=False)]
    labels = np.argmin(((xy[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
    state = model.state(labels, 14)
    blocks, dest = rng.integers(0, len(b), moves), rng.integers(0, 14, moves)
    t = time.process_time()
    for i, d in zip(blocks, dest):
        src = int(state.labels[i])
        state.move([int(i)], int(d))
        state.value()
        state.move([int(i)], src)
    t_move = (time.process_time() - t) / moves / 2
    t = time.process_time()
    for _ in range(5):
        model.state(labels, 14).value()
    t_full = (time.process_time() - t) / 5
    print(f"\n== one local move at {n} blocks, k = 14, {len(model.point_w)} population points, "
          f"{model.footprints.weights.size} events, {len(model.band_km)} spill distances: build {t_build:.1f} s; "
          f"move + evaluation {t_move * 1e3:.2f} ms CPU; from scratch {t_full * 1e3:.1f} ms CPU; "
          f"ratio {t_full / t_move:.0f}× (CPU time: the machine is shared, load {os.getloadavg()[0]:.1f})")


# ====================================================================== --effort
_CHILD = r"""
import json, sys, time
from subdivide.testing.synthetic import synthetic_townblocks
from subdivide.make.regionalize import regionalize
out = []
for job in json.loads(sys.argv[1]):
    b = synthetic_townblocks(job["n"], seed=job["seed"])
    floor = round(job.get("floor_share", 0.0) * b.geometry.area.sum() / 1e6 / 5, 1)
    for ks in job["calls"]:
        t = time.process_time()
        res = regionalize(b, k=ks, seed=0, min_area_km2=floor, **job.get("kw", {}))
        out.append({"n": job["n"], "seed": job["seed"], "floor_km2": floor, "ks": ks, "cpu": time.process_time() - t,
                    "spared": {str(c.k): c.spared for c in res.candidates if c.feasible}})
print(json.dumps(out))
"""


def _revision_tree(ref: str) -> Path:
    """A copy of this checkout's package with subdivide/make/regionalize/ as at ``ref``."""
    import shutil
    import subprocess

    tmp = Path(tempfile.mkdtemp(prefix="bench_regionalize_"))
    shutil.copytree(ROOT / "subdivide", tmp / "subdivide", ignore=shutil.ignore_patterns("__pycache__"))
    folder = "subdivide/make/regionalize"
    names = subprocess.run(["git", "-C", str(ROOT), "ls-tree", "--name-only", f"{ref}:{folder}"], check=True,
                           capture_output=True, text=True).stdout.split()
    shutil.rmtree(tmp / folder)
    (tmp / folder).mkdir()
    for name in names:
        text = subprocess.run(["git", "-C", str(ROOT), "show", f"{ref}:{folder}/{name}"], check=True,
                              capture_output=True).stdout
        (tmp / folder / name).write_bytes(text)
    return tmp


def _child(tree: Path, jobs: list) -> tuple[list, float]:
    """Run planner jobs in a child process on ``tree``: (results, child CPU seconds)."""
    import json
    import subprocess

    env = dict(os.environ, PYTHONPATH=str(tree))
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, json.dumps(jobs)], cwd=str(tree), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.stdout.read(), proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(err.decode(errors="replace")[-2000:])
    return json.loads(out), usage.ru_utime + usage.ru_stime


def _exact_gaps(runs: list) -> list[dict]:
    """Each run's spared share against the exact optimum (same model, graph and floor)."""
    from subdivide.make.regionalize import Regionalizer
    from subdivide.testing.exact import ExactInstance, solve_exact
    from subdivide.testing.synthetic import synthetic_townblocks

    rows, inst = [], {}
    for run in runs:
        key = (run["n"], run["seed"], run["floor_km2"])
        if key not in inst:
            b = synthetic_townblocks(run["n"], seed=run["seed"])
            inst[key] = ExactInstance.from_regionalizer(Regionalizer(b, k=2, seed=0, min_area_km2=key[2]).fit())
        for k, v in run["spared"].items():
            ex = solve_exact(inst[key], int(k), min_area_m2=key[2] * 1e6, incumbent=v)
            rows.append({"n": run["n"], "seed": run["seed"], "floor_km2": key[2], "k": int(k), "call": str(run["ks"]),
                         "spared": v, "optimum": ex.value, "gap": (ex.value - v) / ex.value if ex.value else 0.0})
    return rows


def effort_report(ref: str, sizes, restarts, tiny) -> None:
    ks = list(range(2, 15))
    before_tree = _revision_tree(ref)
    print(f"== default planner, k = 2..14, seed 0: this checkout vs {ref} (child processes, CPU by os.wait4; "
          f"load {os.getloadavg()[0]:.1f})", flush=True)
    rows = []
    for n in sizes:
        job = [{"n": n, "seed": 1, "calls": [ks]}]
        (old,), old_cpu = _child(before_tree, job)
        (new,), new_cpu = _child(ROOT, job)
        o = np.array([old["spared"][str(k)] for k in ks])
        w = np.array([new["spared"][str(k)] for k in ks])
        rows.append({"n": n, "before_cpu_s": round(old["cpu"], 1), "after_cpu_s": round(new["cpu"], 1),
                     "ratio": round(new["cpu"] / old["cpu"], 2), "process_cpu_before": round(old_cpu, 1),
                     "process_cpu_after": round(new_cpu, 1), "before_mean_spared": round(o.mean(), 4),
                     "after_mean_spared": round(w.mean(), 4), "k_after_better": int((w > o + 1e-12).sum()),
                     "k_after_worse": int((w < o - 1e-12).sum())})
        print(f"  {n}: before {np.round(o, 4).tolist()}\n  {n}: after  {np.round(w, 4).tolist()}", flush=True)
    print(pd.DataFrame(rows).to_string(index=False))

    print("\n== more restarts (this checkout): spared share per k, k = 2..14", flush=True)
    for n in sizes:
        prev, worse = None, 0
        for r in restarts:
            (res,), _ = _child(ROOT, [{"n": n, "seed": 1, "calls": [ks], "kw": {"restarts": r}}])
            v = np.array([res["spared"][str(k)] for k in ks])
            if prev is not None:
                worse += int((v < prev - 1e-12).sum())
            print(f"  {n} blocks, restarts {r}: CPU {res['cpu']:.1f} s, mean {v.mean():.4f}, "
                  f"{np.round(v, 4).tolist()}", flush=True)
            prev = v
        print(f"  {n} blocks: k values worse with more restarts: {worse}")

    print("\n== exact optimum on tiny municipalities (gap = (optimum − planner) / optimum)", flush=True)
    jobs = [{"n": n, "seed": s, "floor_share": f, "calls": [list(range(2, 6))] + [[k] for k in range(2, 6)]}
            for n, s, f in tiny]
    summary = []
    one_call = str(list(range(2, 6)))
    for label, tree in ((ref, before_tree), ("this checkout", ROOT)):
        runs, _ = _child(tree, jobs)
        g = pd.DataFrame(_exact_gaps(runs))
        for mode, many in (("k = 2..5 in one call", True), ("one k per call", False)):
            d = g[(g["call"] == one_call) == many]
            summary.append({"planner": label, "calls": mode, "cases": len(d), "optimal": int((d["gap"] <= 1e-9).sum()),
                            "optimal_pct": round(100 * float((d["gap"] <= 1e-9).mean()), 1),
                            "mean_gap_pct": round(100 * float(d["gap"].mean()), 2),
                            "max_gap_pct": round(100 * float(d["gap"].max()), 2),
                            "planner_cpu_s": round(sum(r["cpu"] for r in runs
                                                       if (str(r["ks"]) == one_call) == many), 1)})
    print(pd.DataFrame(summary).to_string(index=False))


def main(argv=None):
    if argv is None:
        argv = sys.argv[1:]
    if "--effort" in argv:
        ap = argparse.ArgumentParser()
        ap.add_argument("--effort", action="store_true")
        ap.add_argument("--before-ref", default="HEAD")
        ap.add_argument("--sizes", default="1000,3000")
        ap.add_argument("--restarts", default="1,2,4,8")
        ap.add_argument("--tiny", default=",".join(f"{20 + i % 5}:{i}" for i in range(8)) + ",22:8:0.6,24:9:0.6",
                        help="n:seed[:floor share] of 20–24-block municipalities (the exactness test's set)")
        a = ap.parse_args(argv)
        tiny = []
        for spec in a.tiny.split(","):
            parts = spec.split(":")
            tiny.append((int(parts[0]), int(parts[1]), float(parts[2]) if len(parts) > 2 else 0.0))
        effort_report(a.before_ref, [int(s) for s in a.sizes.split(",") if s],
                      [int(r) for r in a.restarts.split(",") if r], tiny)
        return
    if "--alerts" in argv:
        ap = argparse.ArgumentParser()
        ap.add_argument("--alerts", action="store_true")
        ap.add_argument("--munis", default="31201:50,31203:20,31328:20")
        ap.add_argument("--sizes", default="")
        ap.add_argument("--move-n", type=int, default=3000)
        ap.add_argument("--skater-k", default="", help="also spopt SKATER at these k (spared share)")
        a = ap.parse_args(argv)
        if a.move_n:
            move_benchmark(a.move_n)
        alerts_report([m for m in a.munis.split(",") if m], [int(s) for s in a.sizes.split(",") if s],
                      [int(k) for k in a.skater_k.split(",") if k])
        return
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
        res = regionalize(b, k=range(2, 15), attributes=attrs, min_area_km2=floor, seed=0, objective="compactness")
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
        free = regionalize(b, k=ks, attributes=attrs, min_area_km2=0.0, seed=0, objective="compactness")
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
