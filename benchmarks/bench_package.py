"""Benchmark: building and validating the carrier package.

For seeded synthetic municipalities (463, 2,000 and 10,000 town-blocks, sub-areas =
their 旧市町村), times in the same process:

- baseline: writing the town-blocks once with plain ``pyogrio.write_dataframe`` to a
  GeoPackage (what any export costs at least);
- ``build_package`` without spill and map (Shapefiles, GeoPackage, lists, manifest), to
  a directory and to a zip;
- ``validate_package`` on that zip (every rule except the footprint report);
- the area-code workbook alone (``xlsx_bytes`` of the two lists, what ``area_codes.xlsx``
  holds), and its share of the package.

Prints seconds and ratios to the baseline.

    python benchmarks/bench_package.py [--sizes 463 2000 10000]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pyogrio

from subdivide.carrier.package import build_package, subarea_list, townblock_list
from subdivide.carrier.profiles import load_profile
from subdivide.io.output import xlsx_bytes
from subdivide.model.plan import Plan
from subdivide.testing.synthetic import synthetic_townblocks
from subdivide.carrier.validation import validate_package


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[463, 2000, 10_000])
    args = ap.parse_args()
    print(f"{'blocks':>7} {'baseline s':>10} {'package s':>9} {'ratio':>6} {'zip s':>6} {'validate s':>10} "
          f"{'ratio':>6} {'xlsx s':>6} {'share':>6}  status")
    for n in args.sizes:
        blocks = synthetic_townblocks(n, seed=0)
        plan = Plan.from_assignment(blocks, blocks.set_index("key")["OLD_MUNI"],
                                    island_exceptions=blocks.loc[blocks["island"], "key"])
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            base, _ = _timed(lambda: pyogrio.write_dataframe(plan.blocks, tmp / "base.gpkg", driver="GPKG"))
            pkg, _ = _timed(lambda: build_package(plan, tmp / "pkg", spill=False, review_map=False))
            zp, _ = _timed(lambda: build_package(plan, tmp / "pkg.zip", spill=False, review_map=False))
            val, rep = _timed(lambda: validate_package(tmp / "pkg.zip"))
        prof = load_profile()
        lists = {"subareas": subarea_list(plan, prof), "townblocks": townblock_list(plan, prof)}
        cols = prof.lists["subarea_columns"], prof.lists["townblock_columns"]
        codes = {cols[0]["code"], cols[0]["code6"], cols[1]["key"], cols[1]["subarea_code"]}
        xl, _ = _timed(lambda: xlsx_bytes(lists, text_columns=codes))
        print(f"{n:>7} {base:>10.2f} {pkg:>9.2f} {pkg / base:>6.1f} {zp:>6.2f} {val:>10.2f} {val / base:>6.1f} "
              f"{xl:>6.2f} {xl / pkg:>6.0%}  {rep.status} ({len(rep.errors)} errors)")


if __name__ == "__main__":
    main()
