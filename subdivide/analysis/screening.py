"""Screening: which municipalities gain most from one of the 25 places (docs/screening.md).

Every municipality of one or more town-block files is planned automatically with the
planner's objective (:func:`subdivide.make.regionalize.regionalize`: the expected share of
residents spared an alert that is not theirs, over hazard scenarios and the trial's band of
spill distances) and ranked by the benefit of subdividing it:

    benefit = residents spared per event = spared share (mean over L) × population

of the recommended plan. The ranking under the worst L is reported beside it, so its
sensitivity to L is visible.

The work unit is one municipality, independent of the others: :class:`Screening` reads
each file once, splits it by municipality code and hands each municipality's blocks (and
nothing else) to a dask.distributed worker. A finished municipality is checkpointed at
once (one small JSON file), so a rerun after a crash or Ctrl-C skips it. Results do not
depend on the number of workers: each municipality is planned with the same seed wherever
it runs, and the table is sorted at the end.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from subdivide.core.constants import (
    DEFAULT_DISTANCES_KM,
    DEFAULT_TARGET_SHARE,
    MAX_SUBAREAS,
)
from subdivide.core.errors import UserError
from subdivide.core.progress import Progress, silent

#: output columns, in order, with their Japanese headers (CSV/XLSX for staff)
COLUMNS = {
    "rank": "順位",
    "muni_code": "市区町村コード",
    "name": "市区町村名",
    "status": "状態",
    "reason": "理由",
    "population": "人口",
    "area_km2": "面積(km²)",
    "n_blocks": "町丁・字数",
    "recommended_k": "推奨地域数",
    "spared_share_mean": "受信しない住民の割合(平均L)",
    "spared_share_worst": "受信しない住民の割合(最悪L)",
    "spared_per_event_mean": "1回あたり受信しない住民数(平均L)",
    "spared_per_event_worst": "1回あたり受信しない住民数(最悪L)",
    "rank_worst_L": "順位(最悪L)",
    "k2_spared_share": "2地域の割合",
    "k4_spared_share": "4地域の割合",
    "k14_spared_share": "14地域の割合",
    "min_core_share": "最小の非到達コア割合(L=2km)",
    "core_policy_met": "50%コア基準",
}


@dataclass(frozen=True)
class ScreenOptions:
    """What every municipality is planned with (the checkpoint key: change one and the
    checkpoints of another set of options are not reused)."""

    k_min: int = 2
    k_max: int = MAX_SUBAREAS
    min_area_km2: float = 0.0
    seed: int = 0
    spill_km: float = DEFAULT_DISTANCES_KM[0]
    target_share: float = DEFAULT_TARGET_SHARE
    restarts: int | None = 1        # one search per k ranks municipalities at a quarter of plan --auto's cost
    time_budget_s: float | None = None

    def key(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Municipality:
    """One work unit: a municipality's canonical town-blocks (only what a worker needs)."""

    code: str
    name: str
    blocks: object          # GeoDataFrame (canonical schema)


def split_municipalities(blocks) -> Iterator[Municipality]:
    """A town-block frame (one file, one or many municipalities) → one unit each, in code order."""
    from subdivide.io.townblocks import municipality_names

    codes = blocks["muni_code"].astype(str)
    names = municipality_names(blocks, codes)
    for code in sorted(codes.unique()):
        part = blocks[codes.to_numpy() == code].reset_index(drop=True)
        yield Municipality(code=code, name=names.get(code, ""), blocks=part)


def read_municipalities(paths, *, on_file=None) -> Iterator[Municipality]:
    """Read each file once (a prefecture file, zipped or not, or a folder of them) and
    yield its municipalities one by one, so only one file is in memory at a time.
    ``on_file(n)`` is told how many municipalities each file holds as it is read."""
    from subdivide.io.townblocks import read_townblocks

    for p in _expand(paths):
        blocks, _ = read_townblocks(p)
        units = list(split_municipalities(blocks))
        del blocks
        if on_file is not None:
            on_file(len(units))
        yield from units


def _expand(paths) -> Iterator[Path]:
    exts = (".shp", ".zip", ".gpkg", ".geojson", ".json", ".topojson")
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in exts and not q.name.startswith("."))
            if not found:
                raise UserError(f"folder {p} holds no town-block file", where=str(p),
                                fix="give e-Stat Shapefiles (.shp or .zip) or the files themselves")
            yield from found
        else:
            yield p


# ---------------------------------------------------------------------- one municipality
def screen_municipality(unit: Municipality, options: ScreenOptions) -> dict:
    """Plan one municipality and return its row (a failure is a row with its reason)."""
    started, cpu_started = time.perf_counter(), time.process_time()
    blocks = unit.blocks
    row = {"muni_code": unit.code, "name": unit.name, "population": float(blocks["population"].sum()),
           "area_km2": float(shapely.area(blocks.geometry.values).sum() / 1e6), "n_blocks": len(blocks),
           "status": "ok", "reason": ""}
    try:
        row.update(_plan_figures(blocks, unit.code, options))
    except UserError as exc:
        # its first line, and the rules it breaks when it carries findings (PlanCheckError)
        found = "; ".join(f"{f.rule}: {f.message}" for f in exc.findings[:3])
        row.update(status="failed", reason=" ".join([exc.what.splitlines()[0], found]).strip()[:300])
    except Exception as exc:  # noqa: BLE001 - one municipality's fault must not stop a national run
        row.update(status="failed", reason=f"{exc.__class__.__name__}: {str(exc)[:200]}")
    row["seconds"] = round(time.perf_counter() - started, 2)
    row["cpu_seconds"] = round(time.process_time() - cpu_started, 2)      # for benchmarks, not the table
    row["outline_wkb"] = _outline_wkb(blocks)
    row["worker_pid"], row["max_rss_mb"] = os.getpid(), _max_rss_mb()     # for benchmarks, not the table
    return row


def _max_rss_mb() -> float:
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    except (ImportError, OSError):
        return math.nan


def _plan_figures(blocks, code: str, options: ScreenOptions) -> dict:
    from subdivide.make.regionalize import regionalize

    hi = min(options.k_max, len(blocks))
    if hi < max(options.k_min, 2):
        return {"status": "too small", "reason": f"{len(blocks)} town-blocks: nothing to split"}
    res = regionalize(blocks, k=range(options.k_min, hi + 1), min_area_km2=options.min_area_km2,
                      spill_km=options.spill_km, seed=options.seed, restarts=options.restarts,
                      time_budget_s=options.time_budget_s, muni_code=code)
    table = res.table
    feasible = table[table["feasible"]]
    if res.recommended_k is None or not len(feasible):
        return {"status": "infeasible", "reason": "no k meets the area floor"}
    rec = feasible[feasible["k"] == res.recommended_k].iloc[0]
    pop = float(blocks["population"].sum())
    out = {"recommended_k": int(res.recommended_k),
           "spared_share_mean": float(rec["spared_share_mean"]),
           "spared_share_worst": float(rec["spared_share_worst"]),
           "spared_per_event_mean": round(float(rec["spared_share_mean"]) * pop, 1),
           "spared_per_event_worst": round(float(rec["spared_share_worst"]) * pop, 1),
           "min_core_share": float(rec["min_core_share"]),
           "core_policy_met": bool(float(rec["min_core_share"]) >= options.target_share)}
    for k in (2, 4, 14):
        hit = feasible[feasible["k"] == k]
        out[f"k{k}_spared_share"] = float(hit["spared_share_mean"].iloc[0]) if len(hit) else math.nan
    return out


def _outline_wkb(blocks) -> bytes:
    """The municipality's outline, simplified to 50 m (for the map and the GeoPackage)."""
    geom = shapely.coverage_union_all(blocks.geometry.values)
    return shapely.to_wkb(shapely.simplify(geom, 50.0, preserve_topology=True))


# ---------------------------------------------------------------------- the run
@dataclass
class Screening:
    """A screening run in the manner of a solver: ``__init__`` stores, :meth:`solve` works.

    files: town-block files (or folders of them); options: what each municipality is
    planned with; checkpoints: a folder for per-municipality results (a rerun reuses them);
    workers: local worker processes (0 = run in this process, no dask); scheduler: the
    address of an existing dask scheduler (then ``workers`` is ignored).
    """

    files: list
    options: ScreenOptions = field(default_factory=ScreenOptions)
    checkpoints: Path | None = None
    workers: int = 0
    scheduler: str | None = None
    progress: Progress = silent
    computed: list = field(default_factory=list)     # codes computed in this run
    reused: list = field(default_factory=list)       # codes taken from checkpoints
    seconds: dict = field(default_factory=dict)      # code → (blocks, seconds, pid, peak MB, CPU s) computed here
    seen: int = 0                                    # municipalities in the files read so far

    def solve(self) -> pd.DataFrame:
        units = read_municipalities(self.files, on_file=self._count)
        run = self._run_local if self.workers <= 0 and not self.scheduler else self._run_dask
        return rank_table(list(run(units)))

    def _count(self, n: int) -> None:
        self.seen += n

    # -- checkpoints
    def _checkpoint(self, code: str) -> Path | None:
        if self.checkpoints is None:
            return None
        return Path(self.checkpoints) / self.options.key() / f"{code}.json"

    def _load(self, code: str) -> dict | None:
        p = self._checkpoint(code)
        if p is None or not p.is_file():
            return None
        try:
            row = json.loads(p.read_text(encoding="utf-8"))
            row["outline_wkb"] = bytes.fromhex(row["outline_wkb"])
            return row
        except (ValueError, KeyError, OSError):
            return None     # a damaged checkpoint is recomputed

    def _save(self, row: dict) -> None:
        p = self._checkpoint(row["muni_code"])
        if p is None:
            return
        p.parent.mkdir(parents=True, exist_ok=True)
        data = dict(row, outline_wkb=row["outline_wkb"].hex())
        tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False, sort_keys=True, default=_json_default),
                       encoding="utf-8")
        os.replace(tmp, p)

    def _done(self, row: dict, n_computed: int, started: float) -> dict:
        self._save(row)
        self.computed.append(row["muni_code"])
        self.seconds[row["muni_code"]] = (row["n_blocks"], row.get("seconds", math.nan), row.get("worker_pid"),
                                          row.get("max_rss_mb", math.nan), row.get("cpu_seconds", math.nan))
        done = len(self.computed) + len(self.reused)
        rate = n_computed / max(time.perf_counter() - started, 1e-9)
        left = max(self.seen - done, 0)
        eta = f", ETA {left / rate:.0f} s" if rate > 0 and left else ""
        self.progress(f"municipalities screened ({rate * 60:.1f}/min{eta})", done, self.seen)
        return row

    # -- engines
    def _todo(self, units) -> Iterator[tuple[Municipality, dict | None]]:
        """Each unit with its checkpointed row (None when it still has to be computed)."""
        for unit in units:
            cached = self._load(unit.code)
            if cached is not None:
                self.reused.append(unit.code)
            yield unit, cached

    def _run_local(self, units) -> Iterator[dict]:
        started = time.perf_counter()
        n = 0
        for unit, cached in self._todo(units):
            if cached is not None:
                yield cached
                continue
            n += 1
            yield self._done(screen_municipality(unit, self.options), n, started)

    def _run_dask(self, units) -> Iterator[dict]:
        from distributed import Client, LocalCluster, as_completed

        cluster = None
        if self.scheduler:
            client = Client(self.scheduler)
        else:
            cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=40)
            client = Client(cluster)
        try:
            yield from self._dask_loop(client, units, as_completed)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()

    def _dask_loop(self, client, units, as_completed) -> Iterator[dict]:
        n_workers = max(1, len(client.scheduler_info().get("workers", {})) or self.workers or 1)
        window = 2 * n_workers           # municipalities in flight: memory stays bounded
        started = time.perf_counter()
        pending = as_completed()
        in_flight, n = 0, 0
        for unit, cached in self._todo(units):
            if cached is not None:
                yield cached
                continue
            pending.add(client.submit(screen_municipality, unit, self.options, key=f"screen-{unit.code}",
                                      pure=False))
            in_flight += 1
            while in_flight >= window:
                n += 1
                in_flight -= 1
                yield self._done(next(pending).result(), n, started)
        for fut in pending:
            n += 1
            yield self._done(fut.result(), n, started)


def _json_default(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, (np.bool_,)):
        return bool(v)
    raise TypeError(type(v))


def rank_table(rows: list[dict]) -> pd.DataFrame:
    """Rows → the ranked table: screened municipalities by residents spared per event (mean
    over L), best first, then those that failed; ties by code. ``rank_worst_L`` is the rank
    under the worst L (the ranking's sensitivity to L)."""
    df = pd.DataFrame(rows)
    for c in COLUMNS:
        if c not in df.columns:
            df[c] = np.nan
    ok = df["status"] == "ok"
    df["_m"] = np.where(ok, df["spared_per_event_mean"].astype(float), -np.inf)
    df["_w"] = np.where(ok, df["spared_per_event_worst"].astype(float), -np.inf)
    df = df.sort_values(["_m", "muni_code"], ascending=[False, True], kind="stable").reset_index(drop=True)
    df["rank"] = np.where(df["status"] == "ok", np.arange(1, len(df) + 1), np.nan)
    worst_order = df.sort_values(["_w", "muni_code"], ascending=[False, True], kind="stable").index
    rw = pd.Series(np.arange(1, len(df) + 1), index=worst_order)
    df["rank_worst_L"] = np.where(df["status"] == "ok", rw.reindex(df.index).to_numpy(), np.nan)
    for c in ("rank", "rank_worst_L", "recommended_k", "n_blocks"):
        df[c] = pd.array(np.where(pd.isna(df[c]), None, df[c]), dtype="Int64")
    df["area_km2"] = df["area_km2"].astype(float).round(2)      # as staff read it (765.01, not 765.0092…)
    keep = list(COLUMNS) + ["outline_wkb"]
    return df[keep].reset_index(drop=True)


def japanese_headers(table: pd.DataFrame) -> pd.DataFrame:
    """The table for staff: Japanese column headers, no geometry."""
    return table.drop(columns=["outline_wkb"], errors="ignore").rename(columns=COLUMNS)


def outlines_frame(table: pd.DataFrame, crs):
    """A GeoDataFrame of the municipalities' outlines carrying the figures."""
    import geopandas as gpd

    geoms = shapely.from_wkb(table["outline_wkb"].to_numpy())
    return gpd.GeoDataFrame(table.drop(columns=["outline_wkb"]), geometry=geoms, crs=crs)




def parse_k_range(text: str) -> tuple[int, int]:
    """'2-14' or '4' → (k_min, k_max) within 2..14."""
    parts = str(text).replace("–", "-").split("-")
    try:
        lo, hi = (int(parts[0]), int(parts[-1])) if len(parts) <= 2 else (None, None)
    except ValueError:
        lo = hi = None
    if lo is None or not (2 <= lo <= hi <= MAX_SUBAREAS):
        raise UserError(f"--k {text!r} is not a range within 2–{MAX_SUBAREAS}", where="--k",
                        fix=f"give e.g. --k 2-{MAX_SUBAREAS} or --k 4")
    return lo, hi
