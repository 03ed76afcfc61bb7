#!/usr/bin/env python
"""Rebuild the council-review maps and the summary report of the bundled 花巻市 sample.

    python maps/regenerate.py [--screenshot] [--check]

Writes (replacing what is there; never edit these files by hand):

- maps/hanamaki_review.html          the map, libraries from the CDN, 地理院タイル 淡色地図
- maps/hanamaki_review_offline.html  the same, every library inlined (opens offline)
- maps/report/                       report.html + PNG figures + report.pdf (the A4
                                     print packet, ``subdivide report --pdf``)
- maps/hanamaki_review.png           with --screenshot: the offline map in headless
                                     Chromium (no basemap), for a quick look
- maps/hanamaki_review_1024.png      with --screenshot: the same at 1024 × 700 (a small
                                     laptop screen: no panel over the areas)

The plan is the trial's: the 463 town-blocks of data/hanamaki_03205 grouped by their
旧市町村 (OLD_MUNI) into 花巻・大迫・石鳥谷・東和; the offices are
data/hanamaki_03205/offices.geojson. The sample's polygons are approximate (推定形状),
which the map and the report say. Outputs are byte-identical on re-run (``--check``
rebuilds into a temporary folder and compares, exit 1 on any difference).
"""
from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "hanamaki_03205"
MAPS = ROOT / "maps"
TITLE = "花巻市 細分化エリア案（旧市町村単位）審議用地図"
REPORT_TITLE = "花巻市 細分化エリア案（旧市町村単位）要約"
NOTE = ("サンプルの町丁・字の境界は、e-Stat の代表点と公式面積から作った推定形状です。"
        "実際の境界とは異なります（人口・世帯は 2015 年国勢調査の実数）。")
OUTPUTS = ("hanamaki_review.html", "hanamaki_review_offline.html", "report")


def sample_plan():
    from subdivide.model.plan import Plan
    from subdivide.io.townblocks import read_townblocks

    blocks, _ = read_townblocks(SAMPLE / "h27ka03205.shp")
    return Plan.from_assignment(blocks, blocks.set_index("key")["OLD_MUNI"])


def offices():
    import geopandas as gpd

    pts = gpd.read_file(SAMPLE / "offices.geojson")
    return pts.rename(columns={"office_name": "name"})


def build(out: Path, *, progress=None) -> list[Path]:
    from subdivide.present.map import build_map
    from subdivide.core.progress import silent
    from subdivide.present.report import build_report
    from subdivide.analysis.spill import spill_report

    progress = progress or silent
    plan = sample_plan()
    spill = spill_report(plan)
    pts = offices()
    out.mkdir(parents=True, exist_ok=True)
    written = [
        build_map(plan, out / "hanamaki_review.html", spill=spill, points=pts, basemap="pale",
                  offline=False, title=TITLE, note=NOTE, force=True, progress=progress),
        build_map(plan, out / "hanamaki_review_offline.html", spill=spill, points=pts, basemap="pale",
                  offline=True, title=TITLE, note=NOTE, force=True, progress=progress),
        build_report(plan, out / "report", spill=spill, title=REPORT_TITLE, note=NOTE, force=True,
                     pdf=True, progress=progress),
    ]
    return written


def screenshot(out: Path) -> list[Path]:
    """The offline map without basemap, rendered by headless Chromium (1280 × 860 and
    1024 × 700)."""
    sys.path.insert(0, str(ROOT))
    from subdivide.present.map import build_map
    from tests.browser import Browser

    with tempfile.TemporaryDirectory() as tmp:
        page = build_map(sample_plan(), Path(tmp) / "shot.html", points=offices(), basemap="none",
                         offline=True, title=TITLE, note=NOTE)
        shots = []
        for size, name in (((1280, 860), "hanamaki_review.png"), ((1024, 700), "hanamaki_review_1024.png")):
            with Browser(width=size[0], height=size[1]) as b:
                r = b.open(page)
                if r.errors:
                    raise SystemExit(f"console errors: {r.errors}")
                shots.append(b.screenshot(out / name))
        return shots


def same_tree(a: Path, b: Path) -> list[str]:
    diffs = []
    for name in OUTPUTS:
        pa, pb = a / name, b / name
        if pa.is_dir():
            for f in sorted(p.name for p in pa.iterdir()):
                if not (pb / f).exists() or not filecmp.cmp(pa / f, pb / f, shallow=False):
                    diffs.append(f"{name}/{f}")
        elif not pb.exists() or not filecmp.cmp(pa, pb, shallow=False):
            diffs.append(name)
    return diffs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--screenshot", action="store_true", help="also write maps/hanamaki_review.png (needs chromium)")
    ap.add_argument("--check", action="store_true", help="rebuild in a temporary folder and compare with maps/")
    args = ap.parse_args(argv)
    from subdivide.core.progress import StderrProgress

    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            build(Path(tmp), progress=StderrProgress())
            diffs = same_tree(Path(tmp), MAPS)
        if diffs:
            print("maps/ is out of date: " + ", ".join(diffs), file=sys.stderr)
            return 1
        print("maps/ is up to date")
        return 0
    for p in build(MAPS, progress=StderrProgress()):
        size = sum(f.stat().st_size for f in p.parent.iterdir()) if p.name == "report.html" else p.stat().st_size
        print(f"wrote {p.relative_to(ROOT)} ({size / 1e6:.2f} MB)")
    if args.screenshot:
        if shutil.which("chromium") is None:
            print("chromium not found: no screenshot", file=sys.stderr)
        else:
            for shot in screenshot(MAPS):
                print(f"wrote {shot.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
