"""A plan: every town-block of one municipality assigned to exactly one sub-area.

Modelled on GerryChain's ``Partition``: the plan holds the assignment, and metrics are
computed on demand (and cached) rather than stored.

>>> plan = Plan.from_assignment(blocks, blocks.set_index("key")["OLD_MUNI"])  # doctest: +SKIP
>>> plan.metrics            # area, population, compactness … per sub-area  # doctest: +SKIP
>>> plan.save("hanamaki.plan.gpkg")                                          # doctest: +SKIP

Rules enforced whenever a Plan is built (construction refuses a bad plan with a
:class:`~subdivide.core.errors.PlanCheckError` naming the offending town-blocks):

- at most ``max_subareas`` sub-areas (14 by default; the limit can be lowered, not raised);
- every town-block assigned exactly once, no unknown sub-area, no empty sub-area;
- every sub-area contiguous, except town-blocks listed in ``island_exceptions``.

Saved form: one GeoPackage with layers ``townblocks`` (the blocks and their
``subarea``), ``subareas`` (dissolved geometry, the sub-area table and metrics) and
``plan_meta`` (key/value JSON: inputs with sha256, options, tool version, date).
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from subdivide.core.constants import MAX_SUBAREAS
from subdivide import __version__
from subdivide.core.codes import normalize_municipality_code, subarea_code, subarea_code6
from subdivide.model.contiguity import block_adjacency, contiguity_breaks, group_adjacency
from subdivide.core.errors import PlanCheckError, UserError
from subdivide.core.findings import Finding
from subdivide.core.rules import finding, fixes_for
from subdivide.core.names import NAME_RULE, name_problems, visible
from subdivide.core.schema import SUBAREA_COLUMN, SUBAREA_COLUMNS, check_plan_blocks, coerce_townblocks

PLAN_LAYERS = ("townblocks", "subareas", "plan_meta")

def default_subarea_name(label) -> str:
    """「●●地域」: '花巻' → '花巻地域'; '花巻市(旧)' → '花巻地域'; already '…地域' kept."""
    s = str(label).strip()
    for suffix in ("(旧)", "（旧）"):
        s = s.removesuffix(suffix)
    if s.startswith("旧"):
        s = s[1:]
    for suffix in ("市", "町", "村"):
        if s.endswith(suffix) and len(s) > 2:
            s = s[: -len(suffix)]
            break
    return s if s.endswith("地域") else f"{s}地域"


def reproducible_date() -> str:
    """Today's date (UTC), or SOURCE_DATE_EPOCH's when set (reproducible builds)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    ts = datetime.fromtimestamp(int(epoch), timezone.utc) if epoch else datetime.now(timezone.utc)
    return ts.strftime("%Y-%m-%d")


@dataclass(frozen=True)
class Plan:
    """Town-blocks (canonical schema + ``subarea``) plus the sub-area table."""

    blocks: gpd.GeoDataFrame
    subareas: pd.DataFrame
    muni_code: str
    island_exceptions: frozenset = frozenset()
    max_subareas: int = MAX_SUBAREAS
    metadata: dict = field(default_factory=dict, compare=False)
    #: optional precomputed block adjacency (same block order) so that construction does
    #: not recompute it; never compared, never saved
    block_graph: object = field(default=None, compare=False, repr=False)
    #: optional shared-edge graph (a subgraph of the adjacency, same block order) that the
    #: contiguity check tries first; never compared, never saved
    edge_graph: object = field(default=None, compare=False, repr=False)

    # ------------------------------------------------------------------ building
    def __post_init__(self):
        if self.max_subareas > MAX_SUBAREAS or self.max_subareas < 1:
            raise UserError(
                f"the sub-area limit is {MAX_SUBAREAS} (carriers' systems); {self.max_subareas} was asked",
                where="--max-subareas (or plan_meta max_subareas)",
                fix=f"use a limit between 1 and {MAX_SUBAREAS}: it can be lowered, not raised",
            )
        errors = [f for f in self.findings if f.severity == "error"]
        if errors:
            raise PlanCheckError("the plan breaks the rules:", where=_findings_where(errors),
                                 fix=fixes_for(errors), findings=errors)

    @classmethod
    def from_assignment(cls, blocks: gpd.GeoDataFrame, assignment, *, muni_code: str | None = None,
                        names: dict | None = None, order: list | None = None, numbers: dict | None = None,
                        island_exceptions=(), max_subareas: int = MAX_SUBAREAS,
                        metadata: dict | None = None, block_graph=None) -> "Plan":
        """Build a plan from ``assignment``: a Series (or dict) key → sub-area label.

        Labels may be names (「花巻」) or numbers. ``order`` (a list of labels) is the display
        order; by default the order of the smallest town-block key in each. Sub-areas are
        numbered 1..k in that order, unless ``numbers`` (label → sub-area number, 1–14) gives
        them their numbers, and so their codes (the order then defaults to the numbers').
        ``names`` maps label → sub-area name (default :func:`default_subarea_name`).
        """
        blocks = coerce_townblocks(blocks.drop(columns=[SUBAREA_COLUMN], errors="ignore"))
        if isinstance(assignment, dict):
            assignment = pd.Series(assignment)
        assignment = pd.Series(assignment)
        assignment.index = assignment.index.astype(str)
        dup = assignment.index[assignment.index.duplicated()]
        if len(dup):
            raise PlanCheckError(f"town-blocks assigned more than once: {sorted(set(dup))[:20]}",
                                 fix="list each town-block once")
        keys = blocks["key"]
        unknown = sorted(set(assignment.index) - set(keys))
        if unknown:
            raise PlanCheckError(f"{len(unknown)} keys in the assignment are not town-blocks of this "
                                 f"municipality: {unknown[:20]}", fix="check the keys (9 or 11 digits, as text)")
        labels = keys.map(assignment)
        missing = keys[labels.isna() | (labels.astype(str).str.strip() == "")]
        if len(missing):
            raise PlanCheckError(f"{len(missing)} town-blocks are unassigned: {list(missing[:20])}",
                                 fix="assign every town-block to a sub-area")
        first_key = keys.groupby(labels.to_numpy()).min()
        if order is None and numbers is not None:
            order = sorted(first_key.index, key=lambda lab: (_label_number(numbers, lab), str(lab)))
        elif order is None:
            order = list(first_key.sort_values(kind="stable").index)
        else:
            order = list(order)
            absent = [lab for lab in first_key.index if lab not in order]
            if absent:
                raise UserError(f"sub-area labels {absent} are not in the given order", fix="list every label")
            order = [lab for lab in order if lab in first_key.index]
        number = ({lab: i + 1 for i, lab in enumerate(order)} if numbers is None
                  else {lab: _label_number(numbers, lab) for lab in order})
        muni = normalize_municipality_code(muni_code or single_municipality(blocks))
        names = names or {}
        table = pd.DataFrame({
            "subarea": [number[lab] for lab in order],
            "name": [names.get(lab, default_subarea_name(lab)) for lab in order],
            "display_order": list(range(1, len(order) + 1)),
        })
        blocks[SUBAREA_COLUMN] = labels.map(number).astype("int64").to_numpy()
        return cls(blocks=blocks, subareas=_finish_table(table, muni), muni_code=muni,
                   island_exceptions=frozenset(map(str, island_exceptions)),
                   max_subareas=max_subareas, metadata=dict(metadata or {}), block_graph=block_graph)

    def with_assignment(self, subarea: np.ndarray | pd.Series, subareas: pd.DataFrame | None = None,
                        **changes) -> "Plan":
        """A new plan with a new ``subarea`` per block (same block order); re-checked."""
        blocks = self.blocks.copy()
        blocks[SUBAREA_COLUMN] = np.asarray(subarea, dtype="int64")
        table = self.subareas if subareas is None else _finish_table(subareas, self.muni_code)
        kw = dict(blocks=blocks, subareas=table, muni_code=self.muni_code,
                  island_exceptions=self.island_exceptions, max_subareas=self.max_subareas,
                  metadata=dict(self.metadata), block_graph=self.__dict__.get("adjacency", self.block_graph),
                  edge_graph=self.__dict__.get("_shared_edge_graph", self.edge_graph))
        kw.update(changes)
        return Plan(**kw)  # the block graph does not depend on the assignment: reused

    # ------------------------------------------------------------------ checks
    def check(self) -> list[Finding]:
        """All rule findings (errors and warnings); construction refuses on errors. Computed
        once, at construction (:attr:`findings`): a plan is immutable."""
        return list(self.findings)

    @cached_property
    def findings(self) -> tuple[Finding, ...]:
        """The rule findings of this plan (see :meth:`check`), checked once."""
        return tuple(self._check())

    def _check(self) -> list[Finding]:
        f: list[Finding] = []
        b, t = self.blocks, self.subareas
        try:
            check_plan_blocks(b)
        except UserError as exc:
            return [finding("PLAN-SCHEMA", exc.what)]
        k = len(t)
        if k > self.max_subareas:
            f.append(finding("LIMIT-SUBAREAS",
                             f"{k} sub-areas; at most {self.max_subareas} are allowed"))
        if t["subarea"].duplicated().any():
            f.append(finding("SUBAREA-NUMBER", "sub-area numbers repeat in the sub-area table",
                             tuple(map(str, t.loc[t["subarea"].duplicated(), "subarea"]))))
        out_of_range = t.loc[~t["subarea"].between(1, MAX_SUBAREAS), "subarea"]
        if len(out_of_range):
            f.append(finding("SUBAREA-NUMBER", f"sub-area numbers must be 1–{MAX_SUBAREAS} (codes "
                             f"{self.muni_code}01–{self.muni_code}{MAX_SUBAREAS:02d}): {list(map(int, out_of_range))}",
                             tuple(map(str, out_of_range))))
        if t["name"].duplicated().any():
            f.append(finding("NAME-DUPLICATE", "sub-area names repeat",
                             tuple(t.loc[t["name"].duplicated(), "name"])))
        bad_names = name_problems(t["name"])
        if bad_names:
            f.append(finding(NAME_RULE, "sub-area names the carriers' systems refuse: "
                             + "; ".join(bad_names[:14]), tuple(map(str, t["name"]))))
        known = set(t["subarea"])
        stray = b.loc[~b[SUBAREA_COLUMN].isin(known), "key"]
        if len(stray):
            f.append(finding("SUBAREA-UNKNOWN",
                             "town-blocks assigned to a sub-area missing from the sub-area table",
                             tuple(stray)))
        empty = sorted(known - set(b[SUBAREA_COLUMN]))
        if empty:
            f.append(finding("SUBAREA-EMPTY", f"sub-areas with no town-block: {empty}",
                             tuple(map(str, empty))))
        f.extend(self._contiguity_findings())
        return f

    def _contiguity_findings(self) -> list[Finding]:
        keys = self.blocks["key"].to_numpy()
        sub = self.blocks[SUBAREA_COLUMN].to_numpy()
        if self._has_adjacency():
            bad, excused = contiguity_breaks(self.adjacency, sub, keys, self.island_exceptions)
        else:
            bad, excused = self._contiguity_breaks_fast(sub, keys)
        out = []
        if bad.any():
            sub = self.blocks.loc[bad, SUBAREA_COLUMN]
            names = dict(zip(self.subareas["subarea"], self.subareas["name"]))
            for s in sorted(sub.unique()):
                ks = tuple(keys[bad & (self.blocks[SUBAREA_COLUMN].to_numpy() == s)])
                label = f"{s} ({names[s]})" if s in names else f"{s}"
                out.append(finding("CONTIGUITY",
                                   f"sub-area {label} is not contiguous: {len(ks)} town-blocks are cut off "
                                   "from its main part", ks))
        if excused.any():
            ks = tuple(keys[excused])
            out.append(finding("CONTIGUITY-ISLAND",
                               f"{len(ks)} detached town-blocks allowed as island exceptions", ks))
        return out

    def _contiguity_breaks_fast(self, sub: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:func:`contiguity_breaks` on the full adjacency, without computing it (issue 19: every
        load re-checks contiguity). Blocks sharing identical border segments are neighbours
        whatever the coverage's validity, so that graph is a subgraph of the adjacency: a
        sub-area connected in it is connected. A block it shows detached (an island, or a border
        whose vertices differ on the two sides) gets its neighbours by intersecting boundaries,
        as the adjacency would; every missing edge between two parts of a sub-area touches a
        part that is not the main one, so the parts found are the adjacency's."""
        graph = self._shared_edge_graph
        bad, excused = contiguity_breaks(graph, sub, keys, self.island_exceptions)
        detached = np.flatnonzero(bad | excused)
        if len(detached) == 0:
            return bad, excused
        graph = graph + block_adjacency(self.blocks, around=detached)
        return contiguity_breaks(graph, sub, keys, self.island_exceptions)

    def _has_adjacency(self) -> bool:
        return "adjacency" in self.__dict__ or self._fits(self.block_graph)

    def _fits(self, graph) -> bool:
        """Whether ``graph`` (a precomputed block graph, or None) is over these blocks."""
        return graph is not None and graph.shape == (len(self.blocks),) * 2

    @cached_property
    def _shared_edge_graph(self):
        """Blocks sharing identical border segments (≥ 1 m): a subgraph of :attr:`adjacency`,
        about 2× cheaper (no coverage validation); enough to prove contiguity."""
        if self._fits(self.edge_graph):
            return self.edge_graph
        return block_adjacency(self.blocks, method="edges", check_coverage=False)

    # ------------------------------------------------------------------ metrics (on demand)
    @cached_property
    def adjacency(self):
        """Block adjacency (sparse, shared border length in m), in block order."""
        if self._fits(self.block_graph):
            return self.block_graph
        return block_adjacency(self.blocks, method="edges", check_coverage=not self.is_coverage)

    @cached_property
    def muni_name(self) -> str:
        """The municipality's name as the town-block attributes give it, "" when they do not
        (:func:`subdivide.io.townblocks.municipality_name`), looked up once per plan: the
        manifest, both maps and the print packet of one run ask for it."""
        from subdivide.io.townblocks import municipality_name

        return municipality_name(self.blocks, self.muni_code)

    @cached_property
    def is_coverage(self) -> bool:
        """Whether the town-blocks form a valid polygon coverage (no overlaps, shared borders
        with the same vertices on both sides): checked once per plan, then trusted by the
        dissolve, the adjacency and the map's display simplification."""
        return _is_coverage(self.blocks.geometry.values)

    @property
    def crs(self):
        return self.blocks.crs

    @property
    def k(self) -> int:
        return len(self.subareas)

    @cached_property
    def dissolved(self) -> gpd.GeoDataFrame:
        """One row per sub-area: the sub-area table plus its dissolved geometry."""
        geoms = self.blocks.geometry.values
        sub = self.blocks[SUBAREA_COLUMN].to_numpy()
        order = self.subareas["subarea"].to_numpy()
        whole = self.is_coverage        # then every sub-area's blocks are a coverage too
        unions = [shapely.coverage_union_all(geoms[sub == s]) if whole or _is_coverage(geoms[sub == s])
                  else _drop_pinholes(shapely.union_all(geoms[sub == s])) for s in order]
        return gpd.GeoDataFrame(self.subareas.reset_index(drop=True), geometry=unions, crs=self.crs)

    @cached_property
    def metrics(self) -> pd.DataFrame:
        """Per sub-area: area_km2, population, households, n_blocks, perimeter_km,
        polsby_popper (4πA/P²), hull_ratio (A / convex-hull A)."""
        g = self.blocks.groupby(SUBAREA_COLUMN)
        d = self.dissolved
        area = d.geometry.area.to_numpy()
        perim = d.geometry.length.to_numpy()
        hull = shapely.area(shapely.convex_hull(d.geometry.values))
        m = self.subareas[["subarea", "name", "display_order", "code"]].copy()
        m["n_blocks"] = m["subarea"].map(g.size()).astype("int64")
        m["population"] = m["subarea"].map(g["population"].sum()).astype("int64")
        m["households"] = m["subarea"].map(g["households"].sum()).astype("int64")
        m["area_km2"] = area / 1e6
        m["perimeter_km"] = perim / 1e3
        m["polsby_popper"] = np.where(perim > 0, 4 * np.pi * area / np.maximum(perim, 1e-9) ** 2, 0.0)
        m["hull_ratio"] = np.where(hull > 0, area / np.maximum(hull, 1e-9), 0.0)
        return m.reset_index(drop=True)

    @cached_property
    def subarea_adjacency(self) -> pd.DataFrame:
        """Pairs of neighbouring sub-areas with their shared border (km)."""
        df = group_adjacency(self.adjacency, self.blocks[SUBAREA_COLUMN].to_numpy())
        df["border_km"] = df.pop("border_m") / 1e3
        return df

    # ------------------------------------------------------------------ saving
    def save(self, path, *, force: bool = False) -> Path:
        """Write the plan GeoPackage atomically (byte-identical for identical plans)."""
        from subdivide.io.output import write_gpkg

        sub = self.dissolved.merge(self.metrics.drop(columns=["name", "display_order", "code"]),
                                   on="subarea")
        meta = dict(self.metadata)
        meta.setdefault("tool_version", __version__)
        meta.setdefault("date", reproducible_date())
        meta.update(muni_code=self.muni_code, max_subareas=self.max_subareas,
                    island_exceptions=sorted(self.island_exceptions), n_blocks=len(self.blocks))
        meta_df = pd.DataFrame({"key": sorted(meta),
                                "value": [json.dumps(meta[k], ensure_ascii=False, sort_keys=True)
                                          for k in sorted(meta)]})
        return write_gpkg({"townblocks": self.blocks, "subareas": sub, "plan_meta": meta_df},
                          path, force=force)


class PlanLoadWarning(UserWarning):
    """Something in a plan file was repaired on loading (e.g. keys re-padded)."""


#: how to rebuild a plan GeoPackage that was damaged or edited outside subdivide
REBUILD_FIX = ("restore the plan from a copy, or rebuild it from the town-blocks: `subdivide plan TOWN-BLOCKS.shp "
               "--import-csv BLOCKS.csv --out NEW.plan.gpkg` (BLOCKS.csv written by `subdivide plan … "
               "--export-csv`), or `subdivide plan TOWN-BLOCKS.shp --by COLUMN --out NEW.plan.gpkg`")


def read_plan(path) -> Plan:
    """Read a plan GeoPackage written by :meth:`Plan.save`, re-checking everything a user could
    have changed with another program (QGIS, sqlite3, Excel round trips):

    - keys re-typed to integers lose their leading zero: re-padded, with a :class:`PlanLoadWarning`;
    - a block deleted, or the block count in ``subareas`` / ``plan_meta`` not the count of
      ``townblocks``: an error naming the sub-areas concerned;
    - a NULL or non-integer ``subarea``, a NULL sub-area name: an error naming the blocks;
    - a broken ``plan_meta`` (not JSON, no municipality code, code of another municipality):
      an error saying how to rebuild the plan;

    then the Plan rules (limit, contiguity, table) as on construction.
    """
    import pyogrio

    p = Path(path)
    if not p.exists():
        raise UserError(f"plan file {p} does not exist", where=str(p), fix="make one with `subdivide plan`")
    if not p.is_file():
        raise UserError(f"{p} is not a file", where=str(p), fix="pass the .gpkg written by `subdivide plan`")
    try:
        layers = {str(row[0]) for row in pyogrio.list_layers(p)}
    except Exception as exc:  # not a GeoPackage at all, or a damaged one
        raise UserError(f"{p} is not a readable GeoPackage ({exc.__class__.__name__}: {_short(exc)})",
                        where=str(p), fix="pass the .gpkg written by `subdivide plan`; " + REBUILD_FIX) from None
    missing = [lay for lay in PLAN_LAYERS if lay not in layers]
    if missing:
        raise UserError(f"{p} is not a subdivide plan: layers {missing} are missing",
                        where=str(p), fix="pass the .gpkg written by `subdivide plan`; " + REBUILD_FIX)
    blocks = _read_layer(p, "townblocks")
    sub = _read_layer(p, "subareas", read_geometry=False)
    meta = _read_meta(p, _read_layer(p, "plan_meta", read_geometry=False))
    muni = meta["muni_code"]
    blocks = _repad_keys(blocks, muni, p)
    subarea = _checked_subarea_column(blocks, p)
    blocks = coerce_townblocks(blocks.drop(columns=[SUBAREA_COLUMN]).assign(_sub=subarea))
    blocks[SUBAREA_COLUMN] = blocks.pop("_sub").astype("int64")
    table = _checked_subarea_table(sub, p)
    _check_block_counts(blocks, sub, meta, p)
    try:
        max_sub = int(meta.get("max_subareas", MAX_SUBAREAS))
        islands = frozenset(map(str, meta.get("island_exceptions", []) or []))
    except (TypeError, ValueError):
        raise UserError("plan_meta holds a max_subareas / island_exceptions value that is not of its type",
                        where=f"{p}: layer plan_meta", fix=REBUILD_FIX) from None
    try:
        return Plan(blocks=blocks, subareas=_finish_table(table, muni), muni_code=muni,
                    island_exceptions=islands, max_subareas=max_sub, metadata=meta)
    except UserError as exc:
        exc.where = exc.where or str(p)
        raise


def _short(exc, limit: int = 200) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _read_layer(p: Path, layer: str, **kw):
    import pyogrio

    try:
        return pyogrio.read_dataframe(p, layer=layer, **kw)
    except Exception as exc:  # a damaged table
        raise UserError(f"the plan's layer {layer!r} cannot be read ({exc.__class__.__name__}: {_short(exc)})",
                        where=f"{p}: layer {layer}", fix=REBUILD_FIX) from None


def _read_meta(p: Path, meta_df: pd.DataFrame) -> dict:
    where = f"{p}: layer plan_meta"
    if not {"key", "value"} <= set(meta_df.columns):
        raise UserError("plan_meta lacks its key / value columns (edited outside subdivide?)", where=where,
                        fix=REBUILD_FIX)
    meta = {}
    for k, v in zip(meta_df["key"], meta_df["value"]):
        try:
            meta[str(k)] = json.loads(v)
        except (TypeError, ValueError):
            raise UserError(f"plan_meta entry {k!r} is not valid JSON: {str(v)[:80]!r} (edited outside subdivide?)",
                            where=where, fix=REBUILD_FIX) from None
    code = meta.get("muni_code")
    try:
        if code is None or not str(code).isdigit():
            raise ValueError(code)
        meta["muni_code"] = normalize_municipality_code(str(code))
    except (UserError, ValueError, TypeError):
        raise UserError(f"plan_meta holds no valid municipality code (muni_code = {code!r})", where=where,
                        fix=REBUILD_FIX) from None
    return meta


def _repad_keys(blocks: gpd.GeoDataFrame, muni: str, p: Path) -> gpd.GeoDataFrame:
    """Keys re-typed to numbers (or saved by Excel) lose their leading zeros: put them back
    when the padded key then starts with the municipality code; warn with the count."""
    if "key" not in blocks.columns:
        raise UserError("the plan's townblocks layer has no 'key' column", where=f"{p}: layer townblocks",
                        fix=REBUILD_FIX)
    raw = blocks["key"]
    if raw.isna().any():
        raise UserError(f"{int(raw.isna().sum())} town-blocks have no key (NULL)", where=f"{p}: layer townblocks",
                        fix=REBUILD_FIX)
    is_text = pd.api.types.is_object_dtype(raw) or pd.api.types.is_string_dtype(raw)
    if is_text:          # the usual case: keys saved as text by Plan.save; nothing to re-pad
        text = raw.astype(str).str.strip()
        if bool((text.str.fullmatch(r"\d{9}|\d{11}") & text.str.startswith(muni)).all()):
            return blocks.assign(key=text.astype(object))
    text = raw.map(lambda v: str(int(v)) if isinstance(v, (int, np.integer, float, np.floating))
                   and float(v).is_integer() else str(v).strip())
    fixed = text.copy()
    for width in (9, 11):
        short = fixed.str.fullmatch(r"\d+") & (fixed.str.len() < width) & (fixed.str.len() >= width - len(muni))
        padded = fixed[short].str.zfill(width)
        ok = padded.str.startswith(muni)
        fixed.loc[padded.index[ok.to_numpy()]] = padded[ok]
    repadded = int((fixed != text).sum())
    if not is_text or repadded:
        warnings.warn(f"{p}: the townblocks layer's keys were not stored as text (edited outside subdivide?); "
                      f"{repadded} of {len(fixed)} keys re-padded with their leading zeros "
                      "(save the plan again to store them as text)", PlanLoadWarning, stacklevel=3)
    bad = fixed[~fixed.str.fullmatch(r"\d{9}|\d{11}") | ~fixed.str.startswith(muni)]
    if len(bad):
        raise UserError(f"{len(bad)} keys are not 9/11-digit KEY_CODEs of municipality {muni}: {list(bad[:10])}",
                        where=f"{p}: layer townblocks", fix=REBUILD_FIX)
    return blocks.assign(key=fixed.astype(object))


def _checked_subarea_column(blocks: gpd.GeoDataFrame, p: Path) -> pd.Series:
    where = f"{p}: layer townblocks"
    if SUBAREA_COLUMN not in blocks.columns:
        raise UserError("the plan's townblocks layer has no 'subarea' column", where=where, fix=REBUILD_FIX)
    raw = blocks[SUBAREA_COLUMN]
    num = pd.to_numeric(raw, errors="coerce")
    null = raw.isna()
    if null.any():
        keys = list(blocks.loc[null, "key"][:20])
        raise UserError(f"{int(null.sum())} town-blocks have no sub-area (NULL): {keys}", where=where,
                        fix="restore the plan from a copy; or export the assignment, complete it and import it: "
                            + REBUILD_FIX)
    bad = num.isna() | (num != num.round())
    if bad.any():
        keys = [f"{k}={v!r}" for k, v in zip(blocks.loc[bad, "key"][:20], raw[bad][:20])]
        raise UserError(f"{int(bad.sum())} town-blocks have a sub-area that is not a whole number: {keys}",
                        where=where, fix=REBUILD_FIX)
    return num.astype("int64")


def _checked_subarea_table(sub: pd.DataFrame, p: Path) -> pd.DataFrame:
    where = f"{p}: layer subareas"
    cols = ["subarea", "name", "display_order"]
    lacking = [c for c in cols if c not in sub.columns]
    if lacking:
        raise UserError(f"the plan's subareas layer lacks the columns {lacking}", where=where, fix=REBUILD_FIX)
    table = sub[cols].copy()
    for c in ("subarea", "display_order"):
        num = pd.to_numeric(table[c], errors="coerce")
        if num.isna().any() or (num != num.round()).any():
            raise UserError(f"the subareas layer's {c!r} column holds NULL or non-integer values: "
                            f"{list(table[c][num.isna() | (num != num.round())][:10])}", where=where, fix=REBUILD_FIX)
        table[c] = num.astype("int64")
    names = table["name"]
    empty = names.isna() | (names.astype(str).str.strip() == "")
    if empty.any():
        raise UserError(f"sub-areas {list(table.loc[empty, 'subarea'])} have no name (NULL or empty)", where=where,
                        fix="name them: `subdivide plan PLAN.gpkg --rename N=名前地域 --out NEW.plan.gpkg` after "
                            "restoring the plan; " + REBUILD_FIX)
    return table


def _check_block_counts(blocks: gpd.GeoDataFrame, sub: pd.DataFrame, meta: dict, p: Path) -> None:
    """Blocks deleted (or added) outside the tool: the stored counts no longer match."""
    counted = blocks.groupby(SUBAREA_COLUMN).size()
    stated_total = meta.get("n_blocks")
    if stated_total is not None:
        try:
            stated_total = int(stated_total)
        except (TypeError, ValueError):
            raise UserError(f"plan_meta n_blocks {stated_total!r} is not a number", where=f"{p}: layer plan_meta",
                            fix=REBUILD_FIX) from None
        if stated_total != len(blocks):
            raise UserError(f"the plan was saved with {stated_total} town-blocks but its townblocks layer holds "
                            f"{len(blocks)} (town-blocks deleted or added outside subdivide)",
                            where=f"{p}: layer townblocks", fix=REBUILD_FIX)
    if "n_blocks" not in sub.columns:
        return
    stated = pd.to_numeric(sub["n_blocks"], errors="coerce")
    bad = []
    for s, n in zip(pd.to_numeric(sub["subarea"], errors="coerce"), stated):
        have = int(counted.get(s, 0))
        if pd.isna(n) or int(n) != have:
            bad.append(f"sub-area {s}: {n} stated, {have} in the townblocks layer")
    if bad:
        raise UserError("town-block counts differ from the subareas layer (town-blocks deleted, added or moved "
                        "outside subdivide): " + "; ".join(bad[:14]), where=f"{p}: layers townblocks / subareas",
                        fix=REBUILD_FIX)


# ---------------------------------------------------------------------- helpers
def _finish_table(table: pd.DataFrame, muni: str) -> pd.DataFrame:
    t = table[["subarea", "name", "display_order"]].copy()
    t["subarea"] = t["subarea"].astype("int64")
    t["display_order"] = t["display_order"].astype("int64")
    t["name"] = t["name"].astype(str).astype(object)
    t["code"] = [subarea_code(muni, s) for s in t["subarea"]]
    t["code6"] = [subarea_code6(muni, s) for s in t["subarea"]]
    t = t.sort_values("display_order", kind="stable").reset_index(drop=True)
    return t[list(SUBAREA_COLUMNS) + ["code6"]]


def _label_number(numbers: dict, label) -> int:
    """The sub-area number ``numbers`` gives ``label`` (a programming error when it gives none)."""
    try:
        return int(numbers[label])
    except KeyError:
        raise UserError(f"sub-area label {label!r} has no number", fix="give every label a number") from None


def _findings_where(errors) -> str:
    """'RULE: first features …' for each broken rule (the offending blocks or names)."""
    parts = []
    for f in errors:
        feats = [visible(x) for x in f.features[:8]]
        more = f" … (+{len(f.features) - 8})" if len(f.features) > 8 else ""
        parts.append(f"{f.rule}" + (f": {', '.join(feats)}{more}" if feats else ""))
    return "; ".join(dict.fromkeys(parts))


def single_municipality(blocks: gpd.GeoDataFrame) -> str:
    """The one municipality code of ``blocks`` (UserError when they span several)."""
    codes = sorted(set(blocks["muni_code"]))
    if len(codes) != 1:
        raise UserError(f"town-blocks span several municipalities {codes[:5]}", where="--muni (not given)",
                        fix="select one municipality when reading (--muni CODE)")
    return codes[0]


def _is_coverage(geoms: np.ndarray) -> bool:
    """coverage_union_all is fast but needs non-overlapping, edge-matched polygons."""
    try:
        return bool(shapely.coverage_is_valid(geoms))
    except Exception:
        return False


#: interior rings smaller than this (m²) are numerical pinholes between blocks that do
#: not quite match (e.g. after a datum shift), not real holes: they are closed on dissolve
PINHOLE_M2 = 1.0


def _drop_pinholes(geom, min_hole_m2: float = PINHOLE_M2):
    """Close interior rings smaller than ``min_hole_m2`` (vectorised over the parts)."""
    parts = shapely.get_parts(geom)
    polys = parts[shapely.get_type_id(parts) == 3]
    if len(polys) == 0 or shapely.get_num_interior_rings(polys).sum() == 0:
        return geom
    out = []
    for poly in polys:  # few parts per sub-area; the rings of each are filtered vectorised
        holes = np.asarray(poly.interiors and [shapely.LinearRing(r) for r in poly.interiors], dtype=object)
        keep = holes[shapely.area(shapely.polygons(holes)) >= min_hole_m2] if len(holes) else holes
        out.append(shapely.Polygon(poly.exterior, holes=list(keep)))
    return shapely.multipolygons(out) if len(out) > 1 else out[0]
