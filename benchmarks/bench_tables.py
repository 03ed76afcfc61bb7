#!/usr/bin/env python
"""Benchmark: reading a mapping workbook (key, subarea, name) the way `plan --mapping` does.

    python benchmarks/bench_tables.py [--rows 1000,10000,50000] [--repeat 3]

For each size a workbook is written with subdivide's own writer (``io.output.write_xlsx``,
keys as text) and read by ``io.tables.read_text_table`` (the one workbook reader,
``io.xlsx``) and, as the baseline in the same process, by what the tables reader used
before: pandas ``read_excel(dtype=str, engine="openpyxl")``. CPU seconds (best of
``--repeat``), the ratio, and whether both give the same table.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def best(fn, repeat: int) -> tuple[float, object]:
    out, t = None, float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        out = fn()
        t = min(t, time.process_time() - t0)
    return t, out


def main(argv=None) -> int:
    import pandas as pd

    from subdivide.io.output import write_xlsx
    from subdivide.io.tables import _clean, read_text_table

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", default="1000,10000,50000")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args(argv)
    print(f"{'rows':>7} {'io.xlsx s':>10} {'pandas s':>9} {'ratio':>6}  same")
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(x) for x in a.rows.split(",")):
            df = pd.DataFrame({"key": [f"0320500{i:05d}" for i in range(n)],
                               "subarea": [f"第{i % 14 + 1}地域" for i in range(n)],
                               "name": [f"花巻町{i}丁目" for i in range(n)]})
            p = Path(tmp) / f"map{n}.xlsx"
            write_xlsx({"mapping": df}, p, text_columns=["key"])
            t_new, new = best(lambda: read_text_table(p), a.repeat)
            t_old, old = best(lambda: _clean(pd.read_excel(p, dtype=str, engine="openpyxl").fillna(""), False),
                              a.repeat)
            same = new.equals(old)
            print(f"{n:>7} {t_new:>10.3f} {t_old:>9.3f} {t_old / t_new:>5.1f}×  {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
