#!/usr/bin/env python
"""Benchmark: the cost of every pipeline stage against the cost of reading the file.

    python benchmarks/bench_scaling.py                       # 1k and 10k blocks + 鳥取市
    python benchmarks/bench_scaling.py --sizes 1000,10000,50000 --json benchmarks/results/scaling.json
    python benchmarks/bench_scaling.py --sizes 10000 --stages info,spill --no-tottori

For each size a seeded synthetic municipality (``subdivide.testing.synthetic``) is
written as a real e-Stat Shapefile, then every stage runs as its CLI command in a fresh
subprocess (``python -m subdivide …``), so each figure includes start-up and reading,
exactly what a user waits for:

    info · plan --by OLD_MUNI · plan --auto (k 2–14) · spill · package · validate · map · report
    · run (the seven stages of the plan --by pipeline in one process)

(spill, package, map and report work on the ``plan --by`` plan; validate on the package.)
Each child's CPU seconds (user + system, all threads) and peak RSS come from
``os.wait4``. The table gives, per stage and size, CPU time, wall time, peak memory,
the ratio to ``info`` (the read) at the same size, and the fitted growth exponent
between consecutive sizes, ``log(t2/t1) / log(n2/n1)`` (1 = linear, 2 = quadratic).

The real 鳥取市 file (../shared/data/tottori_31_estat2015 beside the checkout, --muni 31201, 666 blocks)
is timed too: ``package`` (with spill and map) and ``map``, each as a multiple of the
read's CPU time. Its plan is the 9 pre-merger areas told by the block names.

On a shared machine read the ratios, not the seconds: they come from one run, under
the same load. ``--src DIR`` runs the children on another copy of the package (to
compare two versions in the same run); ``--repeat N`` keeps each child's fastest run.
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOTTORI = Path(__file__).resolve().parents[2] / "shared" / "data" / "tottori_31_estat2015" / "h27ka31.shp"
TOTTORI_MUNI = "31201"
TOTTORI_OLD = ("国府町", "福部町", "河原町", "用瀬町", "佐治町", "気高町", "鹿野町", "青谷町")
STAGES = ("info", "plan_by", "plan_auto", "spill", "package", "validate", "map", "report", "run")
DOWNSTREAM = ("spill", "package", "map", "report")


def stage_commands(shp: Path, work: Path, muni: str | None = None, downstream: str = "by") -> dict[str, list[str]]:
    """The CLI arguments of each stage, in pipeline order (later stages read earlier outputs).
    spill, package, map and report work on the ``plan --by`` plan, or with
    ``downstream="auto"`` on the ``plan --auto`` one."""
    sel = ["--muni", muni] if muni else []
    by = str(work / "by.plan.gpkg")
    down = str(work / f"{downstream}.plan.gpkg")
    return {
        "info": ["info", str(shp), "--json", *sel],
        "plan_by": ["plan", str(shp), "--by", "OLD_MUNI", "--out", by, "--force", *sel],
        "plan_auto": ["plan", str(shp), "--auto", "--k", "2-14", "--out", str(work / "auto.plan.gpkg"),
                      "--force", *sel],
        "spill": ["spill", down, "--out", str(work / "spill"), "--force"],
        "package": ["package", down, "--out", str(work / "pkg"), "--force"],
        "validate": ["validate", str(work / "pkg"), "--quiet"],
        "map": ["map", down, "-o", str(work / "map.html"), "--force"],
        "report": ["report", down, "-o", str(work / "report"), "--force"],
        # the seven stages above (plan --by) in one process: the file read once, the spill once
        "run": ["run", str(shp), "--by", "OLD_MUNI", "--out", str(work / "run"), "--force", *sel],
    }


def compile_bytecode(package: Path) -> None:
    """Write the package's .pyc files first, as installing it does: a child then pays what a
    user pays, not a recompilation of every module (which PYTHONDONTWRITEBYTECODE=1 would
    make it pay in every process, 0.1–0.2 s a command)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], env=env, check=True)


def run_child(args: list[str], env: dict, cwd: Path, ok_codes=(0,)) -> dict:
    """Run ``python -m subdivide ARGS``; CPU seconds, wall seconds and peak RSS of that child."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "subdivide", *args], cwd=cwd, env=env,
                                stdout=out, stderr=err)
        _, status, ru = os.wait4(proc.pid, 0)  # this child's own rusage (CPU of all its threads)
        wall = time.perf_counter() - t0
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        err.seek(0)
        tail = err.read()[-2000:].decode("utf-8", "replace")
    if code not in ok_codes:
        raise RuntimeError(f"`subdivide {' '.join(args)}` exited {code}:\n{tail}")
    return {"cpu_s": ru.ru_utime + ru.ru_stime, "wall_s": wall, "rss_mb": ru.ru_maxrss / 1024.0,
            "exit": code}


def best_of(args, env, cwd, repeat: int, ok_codes=(0,)) -> dict:
    runs = [run_child(args, env, cwd, ok_codes) for _ in range(max(1, repeat))]
    best = min(runs, key=lambda r: r["cpu_s"])
    return {**best, "rss_mb": max(r["rss_mb"] for r in runs), "runs": len(runs)}


def write_synthetic(n: int, seed: int, folder: Path) -> Path:
    from subdivide.testing.synthetic import synthetic_estat, write_estat_shapefile

    return write_estat_shapefile(synthetic_estat(n, seed=seed), folder / f"h27ka03901_{n}.shp")


def tottori_mapping(folder: Path) -> Path:
    """key,subarea CSV for 鳥取市: the 8 merged towns by block name, the rest 鳥取."""
    import pandas as pd

    from subdivide.io.townblocks import read_townblocks

    blocks, _ = read_townblocks(TOTTORI, muni_code=TOTTORI_MUNI)
    label = blocks["name"].map(lambda n: next((o[:-1] for o in TOTTORI_OLD if n.startswith(o)), "鳥取"))
    path = folder / "tottori_mapping.csv"
    pd.DataFrame({"key": blocks["key"], "subarea": label}).to_csv(path, index=False)
    return path


def exponent(t1: float, t2: float, n1: float, n2: float) -> float:
    """Fitted growth exponent between two sizes: log(t2/t1) / log(n2/n1)."""
    if t1 <= 0 or t2 <= 0 or n1 == n2:
        return float("nan")
    return math.log(t2 / t1) / math.log(n2 / n1)


def run_sizes(sizes, stages, seed, env, work: Path, repeat: int, log, downstream: str = "by") -> list[dict]:
    rows = []
    for n in sizes:
        folder = work / f"n{n}"
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        shp = write_synthetic(n, seed, folder)
        log(f"[{n} blocks] synthetic file written in {time.perf_counter() - t0:.1f} s")
        cmds = stage_commands(shp, folder, downstream=downstream)
        needed = set(stages)
        if needed & {"spill", "package", "map", "report", "validate"}:
            needed.add(f"plan_{downstream}")
        if "validate" in needed:
            needed.add("package")
        failed: set[str] = set()
        for st in STAGES:
            if st not in needed:
                continue
            deps = {f"plan_{downstream}"} if st in DOWNSTREAM else {"package"} if st == "validate" else set()
            if deps & failed:
                failed.add(st)
                continue
            try:
                r = best_of(cmds[st], env, folder, repeat, ok_codes=(0, 1) if st == "validate" else (0,))
            except RuntimeError as exc:  # a failing stage is reported, the others still run
                failed.add(st)
                rows.append({"stage": st, "size": n, "timed": st in stages, "error": str(exc)[-600:]})
                log(f"[{n} blocks] {st:9s} FAILED: {str(exc)[-300:]}")
                continue
            r.update(stage=st, size=n, timed=st in stages)
            rows.append(r)
            log(f"[{n} blocks] {st:9s} cpu {r['cpu_s']:7.2f} s  wall {r['wall_s']:7.2f} s  "
                f"rss {r['rss_mb']:6.0f} MB")
    return rows


def run_tottori(env, work: Path, repeat: int, log) -> list[dict]:
    folder = work / "tottori"
    folder.mkdir(parents=True, exist_ok=True)
    mapping = tottori_mapping(folder)
    plan = folder / "tottori.plan.gpkg"
    base = [str(TOTTORI), "--muni", TOTTORI_MUNI]
    cmds = {
        "info": ["info", *base, "--json"],
        "plan_mapping": ["plan", *base, "--mapping", str(mapping), "--out", str(plan), "--force"],
        "package": ["package", str(plan), "--out", str(folder / "pkg"), "--force"],
        "map": ["map", str(plan), "-o", str(folder / "map.html"), "--force"],
    }
    rows = []
    for st, args in cmds.items():
        try:
            r = best_of(args, env, folder, repeat)
        except RuntimeError as exc:
            rows.append({"stage": st, "size": "tottori_31201", "timed": True, "error": str(exc)[-600:]})
            log(f"[鳥取市] {st:12s} FAILED: {str(exc)[-300:]}")
            if st in ("info", "plan_mapping"):
                break
            continue
        r.update(stage=st, size="tottori_31201", timed=True)
        rows.append(r)
        log(f"[鳥取市] {st:12s} cpu {r['cpu_s']:7.2f} s  wall {r['wall_s']:7.2f} s  rss {r['rss_mb']:6.0f} MB")
    return rows


def add_ratios(rows: list[dict]) -> None:
    read = {r["size"]: r["cpu_s"] for r in rows if r["stage"] == "info" and "cpu_s" in r}
    for r in rows:
        if "cpu_s" not in r:
            continue
        r["ratio_to_read"] = r["cpu_s"] / read[r["size"]] if read.get(r["size"]) else float("nan")


def exponents(rows: list[dict], sizes) -> dict:
    """stage → {"n1→n2": exponent} between consecutive synthetic sizes."""
    by = {(r["stage"], r["size"]): r["cpu_s"] for r in rows if "cpu_s" in r}
    out: dict[str, dict[str, float]] = {}
    for st in STAGES:
        for n1, n2 in itertools.pairwise(sizes):
            if (st, n1) in by and (st, n2) in by:
                out.setdefault(st, {})[f"{n1}->{n2}"] = exponent(by[st, n1], by[st, n2], n1, n2)
    return out


def _cell(r: dict | None) -> str:
    if r is None:
        return "–"
    if "error" in r:
        return "failed"
    return f"{r['cpu_s']:.2f} / {r['ratio_to_read']:.1f}× / {r['rss_mb']:.0f}"


def _pipeline_lines(cell: dict, sizes) -> list[str]:
    pipe = ("info", "plan_by", "spill", "package", "validate", "map", "report")
    out = []
    for n in sizes:
        if all("cpu_s" in cell.get((s, n), {}) for s in pipe):
            tot = sum(cell[s, n]["cpu_s"] for s in pipe)
            out.append(f"pipeline info→plan --by→spill→package→validate→map→report at {n}: "
                       f"{tot:.1f} s = {tot / cell['info', n]['cpu_s']:.1f}× the read")
        if "cpu_s" in cell.get(("run", n), {}) and "cpu_s" in cell.get(("info", n), {}):
            r = cell["run", n]
            out.append(f"the same in one process (subdivide run) at {n}: {r['cpu_s']:.1f} s = "
                       f"{r['cpu_s'] / cell['info', n]['cpu_s']:.1f}× the read, {r['rss_mb']:.0f} MB")
    return out


def format_table(rows: list[dict], sizes, exps: dict) -> str:
    """Markdown table stage × size → CPU s / ratio to the read / peak MB, plus exponents."""
    pairs = list(itertools.pairwise(sizes))
    head = ["stage"] + [f"{n} blocks: cpu s / ×read / MB" for n in sizes] + [f"exp {a}→{b}" for a, b in pairs]
    lines = [" | ".join(head), " | ".join(["---"] * len(head))]
    cell = {(r["stage"], r["size"]): r for r in rows}
    for st in STAGES:
        if not any((st, n) in cell for n in sizes):
            continue
        exp = [exps.get(st, {}).get(f"{a}->{b}") for a, b in pairs]
        lines.append(" | ".join([st] + [_cell(cell.get((st, n))) for n in sizes]
                                + [f"{e:.2f}" if e is not None and math.isfinite(e) else "–" for e in exp]))
    lines += _pipeline_lines(cell, sizes)
    tot = [r for r in rows if r["size"] == "tottori_31201" and "cpu_s" in r]
    if tot:
        lines += ["", "鳥取市 (real e-Stat, 666 blocks): " + ", ".join(
            f"{r['stage']} {r['cpu_s']:.2f} s = {r['ratio_to_read']:.1f}× read, {r['rss_mb']:.0f} MB" for r in tot)]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000", help="block counts, e.g. 1000,10000,50000")
    ap.add_argument("--stages", default=",".join(STAGES), help=f"subset of {','.join(STAGES)}")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1, help="runs per stage; the fastest counts")
    ap.add_argument("--no-tottori", action="store_true", help="skip the real 鳥取市 file")
    ap.add_argument("--downstream", choices=("by", "auto"), default="by",
                    help="plan that spill/package/map/report use (default: plan --by OLD_MUNI)")
    ap.add_argument("--src", type=Path, help="directory holding the subdivide package to time "
                                             "(default: the installed one)")
    ap.add_argument("--label", default="", help="label stored in the JSON")
    ap.add_argument("--json", type=Path, help="write the rows and exponents as JSON")
    ap.add_argument("--workdir", type=Path, help="keep the intermediate files here (default: a temp folder)")
    a = ap.parse_args(argv)
    sizes = [int(s) for s in a.sizes.split(",") if s.strip()]
    stages = [s.strip() for s in a.stages.split(",") if s.strip()]
    bad = set(stages) - set(STAGES)
    if bad:
        ap.error(f"unknown stages {sorted(bad)}; use {','.join(STAGES)}")
    if "info" not in stages:
        stages.insert(0, "info")  # every ratio is to the read
    env = dict(os.environ)
    if a.src:
        env["PYTHONPATH"] = str(a.src.resolve()) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    compile_bytecode(a.src.resolve() / "subdivide" if a.src else ROOT / "subdivide")

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="bench_scaling_") as tmp:
        work = a.workdir or Path(tmp)
        rows = run_sizes(sizes, stages, a.seed, env, work, a.repeat, log, a.downstream)
        if not a.no_tottori and TOTTORI.exists():
            rows += run_tottori(env, work, a.repeat, log)
    add_ratios(rows)
    exps = exponents(rows, sizes)
    print(format_table([r for r in rows if r.get("timed", True)], sizes, exps))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        load = os.getloadavg()
        a.json.write_text(json.dumps({
            "label": a.label, "src": str(a.src) if a.src else None, "sizes": sizes, "seed": a.seed,
            "downstream_plan": a.downstream,
            "when_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {"cpus": os.cpu_count(), "loadavg_at_end": load, "python": platform.python_version()},
            "rows": rows, "exponents": exps,
        }, indent=1, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
