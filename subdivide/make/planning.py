"""Making and editing plans: by a town-block attribute, by a mapping file, by overlay with
a polygon layer, by edits, and through a block-assignment CSV.

Every function returns a :class:`~subdivide.model.plan.Plan`, whose construction proves the
limits (≤ 14 sub-areas, complete single assignment, no empty sub-area, contiguity with
explicit island exceptions) and refuses with a :class:`~subdivide.core.errors.PlanCheckError`
naming the offending town-blocks. Functions that can leave something to review also
return a :class:`PlanningReport`.

Keys are always strings (KEY_CODE keeps its leading zero). Mapping and assignment CSVs
are read as UTF-8 (with or without BOM) or CP932, detected; XLSX by :mod:`subdivide.io.xlsx`
(:func:`subdivide.io.tables.read_text_table`); what Excel
leaves behind (blank ``,,,`` rows, keys stored as numbers) is ignored or restored.

Codes never drift: a sub-area's number is its identity and its code (municipality code + 2
digits), kept through every edit (:func:`merge_subareas` leaves a gap) and every import
(:func:`plan_from_assignment_csv` keeps the numbers written, and a name retyped renames, it
does not reorder). Only :func:`renumber_subareas` (``--renumber``) renumbers;
:func:`code_changes` and :func:`renumber_lines` say what changed per code.

Island exceptions: a town-block the source flags as an island (``island``, e-Stat
KIGO_I) and that shares no border with the rest of the municipality is an explicit
exception (``allow_flagged_islands=True``, reported). Any other detached block is refused
unless listed in ``island_exceptions``.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from subdivide.core.constants import MAX_SUBAREAS
from subdivide.model.contiguity import block_adjacency, disconnected_blocks, parts_per_group
from subdivide.io import readers
from subdivide.io.tables import header_key, read_text_table, read_text_tables
from subdivide.core.errors import PlanCheckError, UserError
from subdivide.core.findings import Finding
from subdivide.core.rules import finding
from subdivide.io.output import unneutralise_cell, write_csv
from subdivide.core.codes import normalize_municipality_code, subarea_code
from subdivide.model.plan import Plan, default_subarea_name, single_municipality
from subdivide.core.schema import SUBAREA_COLUMN, coerce_townblocks
from subdivide.model.reach import core_share

#: overlay review thresholds (defaults): top share below, or margin to the runner-up below
OVERLAY_MIN_SHARE = 0.6
OVERLAY_MIN_MARGIN = 0.2
#: a block is "split" when its second polygon holds at least this share of it
OVERLAY_SPLIT_SHARE = 0.05


@dataclass
class PlanningReport:
    """Findings (warnings, info) and, for overlays, the blocks to review."""

    findings: list[Finding] = field(default_factory=list)
    review: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: what was decided on the way that is no rule's business (e.g. names re-derived on import)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [str(f) for f in self.findings] + [f"note: {n}" for n in self.notes]


# ====================================================================== helpers
def _nfkc(s) -> str:
    return unicodedata.normalize("NFKC", str(s)).strip()


def flagged_island_exceptions(blocks: gpd.GeoDataFrame, adj=None) -> list[str]:
    """Keys of blocks the source flags as islands that share no border with the main
    body of the municipality (sorted)."""
    if not bool(blocks["island"].any()):
        return []
    # only which blocks touch matters here, not the border lengths: shared segments suffice
    adj = block_adjacency(blocks, method="edges") if adj is None else adj
    detached = disconnected_blocks(adj)
    return sorted(blocks.loc[detached & blocks["island"].to_numpy(), "key"].tolist())


def _island_args(blocks, island_exceptions, allow_flagged_islands, report: PlanningReport):
    exc = sorted(set(map(str, island_exceptions)))
    if allow_flagged_islands:
        flagged = flagged_island_exceptions(blocks)
        if flagged:
            report.findings.append(finding("PLAN-ISLAND-FLAGGED",
                f"{len(flagged)} town-blocks flagged as islands (KIGO_I) are allowed to be detached "
                "from their sub-area", tuple(flagged)))
        exc = sorted(set(exc) | set(flagged))
    unknown = sorted(set(map(str, island_exceptions)) - set(blocks["key"]))
    if unknown:
        raise UserError(f"--island-exception keys are not town-blocks: {unknown[:10]}", where="--island-exception",
                        fix="give KEY_CODEs of this municipality (as text)")
    return exc


def lost_leading_zeros(keys, known: set) -> dict[str, str]:
    """Keys that lost their leading zeros (Excel stores 032050011 typed as a number as
    32050011) → the restored key: only where the key as written matches nothing and
    exactly one zero-padded form (to the width of the known digit codes) matches."""
    widths = sorted({len(k) for k in known if k.isdigit()})
    out = {}
    for u in map(str, keys):
        if u in known or not u.isdigit():
            continue
        hits = [u.zfill(w) for w in widths if w > len(u) and u.zfill(w) in known]
        if len(hits) == 1:
            out[u] = hits[0]
    return out


def _leading_zero_finding(rule: str, what: str, restored: dict) -> Finding:
    return finding(rule,
                   f"{len(restored)} keys in the {what} had lost their leading zero (stored as numbers, "
                   "e.g. by Excel) and were restored; format the key column as text (文字列) to avoid this",
                   tuple(sorted(restored)))


def read_table(path, *, what: str = "table") -> pd.DataFrame:
    """A CSV (UTF-8 with/without BOM, or CP932) or XLSX as all-text columns."""
    return read_text_table(path, what=what)


def _pick_columns(df: pd.DataFrame, path, key_column=None, value_column=None) -> tuple[str, str]:
    lower = {c.lower(): c for c in df.columns}
    k = key_column or lower.get("key") or lower.get("key_code")
    v = value_column or lower.get("subarea_name") or lower.get("subarea") or lower.get("name")
    if k is None or v is None:
        if len(df.columns) < 2:
            raise UserError(f"{Path(path).name} needs two columns: key and sub-area name", where=str(path),
                            fix="header 'key,subarea' (e.g. 花巻,花巻地域 or 032050010,花巻地域)")
        k, v = k or df.columns[0], v or df.columns[1]
    for c in (k, v):
        if c not in df.columns:
            raise UserError(f"column {c!r} not in {Path(path).name} (columns: {list(df.columns)})", where=str(path))
    return k, v


def read_mapping(path, *, key_column: str | None = None, value_column: str | None = None) -> pd.Series:
    """Mapping file (CSV or XLSX) → Series key (str) → sub-area name (str), in file order.

    Columns ``key`` and ``subarea`` (or ``subarea_name``), else the first two. Blank rows
    are skipped; a key listed twice with different names is refused."""
    df = read_table(path, what="mapping file")
    k, v = _pick_columns(df, path, key_column, value_column)
    df = df[(df[k] != "") | (df[v] != "")]
    blank = df.index[(df[k] == "") | (df[v] == "")]
    if len(blank):
        raise UserError(f"rows {[int(i) + 2 for i in blank[:10]]} have an empty key or sub-area",
                        where=str(path), fix="fill both columns or delete the row")
    dup = df[df.duplicated(k, keep=False)].groupby(k)[v].nunique()
    clash = sorted(dup.index[dup > 1])
    if clash:
        raise UserError(f"keys mapped to different sub-areas: {clash[:10]}", where=str(path),
                        fix="map each key once")
    df = df.drop_duplicates(k)
    return pd.Series(df[v].to_numpy(dtype=object), index=pd.Index(df[k].to_numpy(dtype=object), name="key"),
                     name="subarea")


# ====================================================================== by attribute / mapping
def plan_by_attribute(blocks: gpd.GeoDataFrame, column: str, *, names: dict | None = None,
                      order: list | None = None, muni_code: str | None = None, island_exceptions=(),
                      allow_flagged_islands: bool = True, max_subareas: int = MAX_SUBAREAS,
                      metadata: dict | None = None) -> tuple[Plan, PlanningReport]:
    """One sub-area per value of ``column`` (e.g. OLD_MUNI → 花巻地域, 大迫地域 …)."""
    if column not in blocks.columns:
        raise UserError(f"column {column!r} is not in the town-blocks", where=f"--by {column}",
                        fix=f"use one of {sorted(c for c in blocks.columns if c != blocks.geometry.name)[:30]}")
    blocks = coerce_townblocks(blocks.drop(columns=[SUBAREA_COLUMN], errors="ignore"))
    values = blocks[column].astype(object).where(blocks[column].notna(), "").map(lambda s: str(s).strip())
    empty = blocks.loc[values == "", "key"]
    if len(empty):
        raise PlanCheckError(f"{len(empty)} town-blocks have no {column} value: {list(empty[:20])}", where=f"--by {column}",
                             fix=f"fill {column} for them, or use a mapping file / --move")
    n_values = values.nunique()
    if n_values > max_subareas:
        raise PlanCheckError(f"{column} has {n_values} distinct values; at most {max_subareas} sub-areas "
                             "are allowed", where=f"--by {column}", fix="merge values with a mapping file (--mapping) or --merge")
    report = PlanningReport()
    exc = _island_args(blocks, island_exceptions, allow_flagged_islands, report)
    meta = dict(metadata or {}, method=f"by attribute {column}")
    plan = Plan.from_assignment(blocks, pd.Series(values.to_numpy(), index=blocks["key"].to_numpy()),
                                muni_code=muni_code, names=names, order=order, island_exceptions=exc,
                                max_subareas=max_subareas, metadata=meta)
    return plan, report


def _normalised_mapping(mapping) -> tuple[pd.Series, str]:
    """The mapping (Series, dict, or a CSV/XLSX path) as NFKC keys → stripped names, and its
    source (the path, or "mapping")."""
    source = "mapping"
    if isinstance(mapping, (str, Path)):
        source = str(mapping)
        mapping = read_mapping(mapping)
    mapping = pd.Series(mapping, dtype=object)
    mapping.index = mapping.index.map(_nfkc)
    mapping = mapping.map(lambda s: str(s).strip())
    return mapping, source


def _require_block_column(blocks: gpd.GeoDataFrame, column: str) -> None:
    """A UserError (naming the columns there are) when ``column`` is not in the town-blocks."""
    if column not in blocks.columns:
        raise UserError(f"column {column!r} is not in the town-blocks", where=f"--by {column}",
                        fix=f"use one of {sorted(c for c in blocks.columns if c != blocks.geometry.name)[:30]}")


def _restore_mapping_zeros(mapping: pd.Series, lookup: pd.Series, report: PlanningReport) -> pd.Series:
    """Mapping keys that lost their leading zero restored (first one kept), reported."""
    restored = lost_leading_zeros(mapping.index, set(lookup))
    if restored:
        mapping = mapping.rename(index=restored)
        mapping = mapping[~mapping.index.duplicated(keep="first")]
        report.findings.append(_leading_zero_finding("MAPPING-LEADING-ZERO", "mapping", restored))
    return mapping


def _mapping_column_hint(blocks: gpd.GeoDataFrame, mapping: pd.Series) -> str:
    """The fix for a mapping none of whose keys is a town-block key: keys like 花巻, 大迫 …
    refer to a column (the text column sharing most values), not to town-block keys."""
    keys = set(mapping.index)
    hits = {c: len(keys & set(blocks[c].dropna().astype(str).map(_nfkc))) for c in blocks.columns
            if c != blocks.geometry.name and (pd.api.types.is_object_dtype(blocks[c])
                                              or pd.api.types.is_string_dtype(blocks[c]))}
    best = max(hits, key=lambda c: hits[c], default=None)
    if best is not None and hits[best] > 0:
        return f"the mapping's keys look like values of {best}: add --by {best}"
    return "add them to the mapping file"


def _refuse_unmapped(blocks, lookup: pd.Series, target: pd.Series, mapping: pd.Series, by, source: str) -> None:
    """PlanCheckError listing the town-blocks the mapping leaves without a sub-area."""
    unmapped = target.isna()
    if not unmapped.any():
        return
    what = blocks.loc[unmapped, "key"].tolist()
    vals = sorted(set(lookup[unmapped])) if by else []
    extra = f" ({by} values {vals[:10]})" if by else ""
    fix = "add them to the mapping file"
    if by is None and unmapped.all():
        fix = _mapping_column_hint(blocks, mapping)
    raise PlanCheckError(f"{int(unmapped.sum())} town-blocks are not in the mapping{extra}: {what[:20]}",
                         where=source, fix=fix)


def plan_from_mapping(blocks: gpd.GeoDataFrame, mapping, *, by: str | None = None,
                      muni_code: str | None = None, island_exceptions=(), allow_flagged_islands: bool = True,
                      max_subareas: int = MAX_SUBAREAS, metadata: dict | None = None
                      ) -> tuple[Plan, PlanningReport]:
    """Assign blocks through a mapping (Series, dict, or a CSV/XLSX path): keys are
    town-block keys, or values of column ``by`` (e.g. OLD_MUNI or OLD_CODE) when given.

    Unmapped blocks are refused (listed); mapping keys matching nothing are reported as
    warnings. Sub-areas are ordered as they first appear in the mapping."""
    mapping, source = _normalised_mapping(mapping)
    blocks = coerce_townblocks(blocks.drop(columns=[SUBAREA_COLUMN], errors="ignore"))
    if by is not None:
        _require_block_column(blocks, by)
    lookup = (blocks["key"] if by is None else blocks[by].fillna("").astype(str)).map(_nfkc)
    report = PlanningReport()
    mapping = _restore_mapping_zeros(mapping, lookup, report)
    target = lookup.map(mapping)
    unknown = sorted(set(mapping.index) - set(lookup))
    if unknown:
        report.findings.append(finding("MAPPING-UNKNOWN-KEY",
                                       f"{len(unknown)} mapping keys match no town-block",
                                       tuple(unknown)))
    _refuse_unmapped(blocks, lookup, target, mapping, by, source)
    order = list(dict.fromkeys(mapping[mapping.isin(set(target))].tolist()))
    exc = _island_args(blocks, island_exceptions, allow_flagged_islands, report)
    meta = dict(metadata or {}, method=f"mapping {Path(source).name}" + (f" by {by}" if by else ""))
    plan = Plan.from_assignment(blocks, pd.Series(target.to_numpy(), index=blocks["key"].to_numpy()),
                                muni_code=muni_code, order=order, island_exceptions=exc,
                                max_subareas=max_subareas, metadata=meta)
    return plan, report


# ====================================================================== overlay
def read_polygons(path, *, layer: str | None = None) -> gpd.GeoDataFrame:
    """The overlay polygons (e.g. pre-merger 旧市町村 boundaries) for :func:`plan_by_overlay`."""
    return readers.read_polygons(path, what="overlay", layer=layer, layer_option="--overlay-layer")


def overlay_shares(blocks: gpd.GeoDataFrame, polygons: gpd.GeoDataFrame, name_column: str
                   ) -> tuple[pd.DataFrame, np.ndarray]:
    """Long table (block index ``i``, polygon ``label``, ``share`` of the block's area),
    vectorised with one STRtree query and one intersection call. Polygons are dissolved
    by ``name_column`` first; the sorted labels are returned too."""
    if name_column not in polygons.columns:
        raise UserError(f"overlay has no column {name_column!r}", where=f"--overlay-name {name_column}",
                        fix=f"--overlay-name one of {[c for c in polygons.columns if c != polygons.geometry.name]}")
    polys = polygons[[name_column, polygons.geometry.name]].to_crs(blocks.crs)
    polys = polys.assign(_label=polys[name_column].astype(str).str.strip())
    polys = polys[polys["_label"] != ""]
    polys = polys.set_geometry(shapely.make_valid(polys.geometry.values))
    dis = polys.dissolve("_label", sort=True)
    labels = dis.index.to_numpy(dtype=object)
    pg = dis.geometry.values
    bg = np.asarray(blocks.geometry.values)
    tree = shapely.STRtree(pg)
    bi, pj = tree.query(bg, predicate="intersects")
    inter = shapely.area(shapely.intersection(bg[bi], np.asarray(pg)[pj]))
    area = shapely.area(bg)
    return pd.DataFrame({"i": bi, "label": labels[pj], "share": inter / np.maximum(area[bi], 1e-9)}), labels


def _repair_fragments(blocks, adj, sub: np.ndarray, exceptions) -> tuple[np.ndarray, list[str]]:
    """Detached fragments of a sub-area go to the neighbouring sub-area they share most
    border with (repeated until stable). Returns new labels and the moved keys."""
    keys = blocks["key"].to_numpy()
    moved: list[str] = []
    exc = np.isin(keys, list(exceptions))
    for _ in range(20):
        det = parts_per_group(adj, sub)["detached"].to_numpy() & ~exc
        if not det.any():
            break
        coo = adj.tocoo()
        m = det[coo.row] & (sub[coo.col] != sub[coo.row])
        if not m.any():
            break
        df = pd.DataFrame({"i": coo.row[m], "to": sub[coo.col[m]], "b": coo.data[m]})
        best = (df.groupby(["i", "to"], as_index=False)["b"].sum()
                  .sort_values(["i", "b", "to"], ascending=[True, False, True], kind="stable")
                  .drop_duplicates("i"))
        sub = sub.copy()
        sub[best["i"].to_numpy()] = best["to"].to_numpy()
        moved.extend(keys[best["i"].to_numpy()].tolist())
    return sub, sorted(set(moved))


#: the overlay must cover at least this share of the municipality's area
OVERLAY_MIN_COVER = 0.5


def _require_overlap(blocks: gpd.GeoDataFrame, shares: pd.DataFrame) -> None:
    """Overlay polygons that miss the municipality (another place, a wrong CRS, swapped axes)
    would give every block to its nearest polygon: an error instead."""
    area = shapely.area(np.asarray(blocks.geometry.values))
    total = float(area.sum())
    covered = float((shares["share"].to_numpy() * area[shares["i"].to_numpy()]).sum()) if len(shares) else 0.0
    cover = covered / total if total > 0 else 0.0
    if cover < OVERLAY_MIN_COVER:
        raise UserError(f"the overlay polygons cover only {cover:.0%} of the municipality's area "
                        f"({int((shares.groupby('i')['share'].sum() > 0).sum()) if len(shares) else 0} of "
                        f"{len(blocks)} town-blocks touch them)", where="--overlay",
                        fix="give polygons of this municipality (e.g. its 旧市町村 boundaries); check the file's "
                            "CRS (.prj) and that the coordinates are not swapped")


def plan_by_overlay(blocks: gpd.GeoDataFrame, polygons: gpd.GeoDataFrame, name_column: str, *,
                    min_share: float = OVERLAY_MIN_SHARE, min_margin: float = OVERLAY_MIN_MARGIN,
                    split_share: float = OVERLAY_SPLIT_SHARE, repair_contiguity: bool = True,
                    muni_code: str | None = None, island_exceptions=(), allow_flagged_islands: bool = True,
                    max_subareas: int = MAX_SUBAREAS, metadata: dict | None = None
                    ) -> tuple[Plan, PlanningReport]:
    """Each block goes to the polygon (e.g. a pre-merger municipality) holding most of
    its area. The report's ``review`` table lists blocks to look at: ``near-tie`` (top
    share < ``min_share`` or margin to the runner-up < ``min_margin``), ``split`` (runner-up
    share ≥ ``split_share``), ``outside`` (no overlap: nearest polygon taken) and
    ``contiguity`` (a detached fragment moved to its neighbour)."""
    blocks = coerce_townblocks(blocks.drop(columns=[SUBAREA_COLUMN], errors="ignore"))
    for name, v in (("--overlay-min-share", min_share), ("--overlay-min-margin", min_margin)):
        if not np.isfinite(v) or not 0.0 <= v <= 1.0:
            raise UserError(f"{name} {v!r} must be a share between 0 and 1", where=name, fix=f"e.g. {name} 0.5")
    shares, labels = overlay_shares(blocks, polygons, name_column)
    _require_overlap(blocks, shares)
    n = len(blocks)
    ranked = shares.sort_values(["i", "share", "label"], ascending=[True, False, True], kind="stable")
    ranked["pos"] = ranked.groupby("i").cumcount()
    top = ranked[ranked["pos"] == 0].set_index("i")
    second = ranked[ranked["pos"] == 1].set_index("i")
    label = pd.Series(np.full(n, None, dtype=object))
    top_share = np.zeros(n)
    second_share = np.zeros(n)
    second_label = np.full(n, "", dtype=object)
    label[top.index] = top["label"].to_numpy()
    top_share[top.index] = top["share"].to_numpy()
    second_share[second.index] = second["share"].to_numpy()
    second_label[second.index] = second["label"].to_numpy()
    outside = label.isna().to_numpy()
    if outside.any():
        pg = polygons[[name_column, polygons.geometry.name]].to_crs(blocks.crs)
        pg = pg.assign(_label=pg[name_column].astype(str).str.strip()).dissolve("_label", sort=True)
        tree = shapely.STRtree(pg.geometry.values)
        (qi, ti) = tree.query_nearest(np.asarray(blocks.geometry.values)[outside], all_matches=False)
        idx = np.flatnonzero(outside)
        label[idx[qi]] = pg.index.to_numpy(dtype=object)[ti]
    label = label.to_numpy(dtype=object)
    reason = pd.Series([""] * n, dtype=object)

    def flag(mask, text):
        reason[mask] = np.where(reason[mask] == "", text, reason[mask] + "," + text)

    flag(~outside & ((top_share < min_share) | (top_share - second_share < min_margin)), "near-tie")
    flag(~outside & (second_share >= split_share), "split")
    flag(outside, "outside")
    report = PlanningReport()
    exc = _island_args(blocks, island_exceptions, allow_flagged_islands, report)
    if repair_contiguity:
        adj = block_adjacency(blocks)
        codes, inv = np.unique(label.astype(str), return_inverse=True)
        new, moved = _repair_fragments(blocks, adj, inv, exc)
        if moved:
            m = np.isin(blocks["key"].to_numpy(), moved)
            flag(m, "contiguity")
            label = codes[new].astype(object)
            report.findings.append(finding("OVERLAY-CONTIGUITY",
                                           f"{len(moved)} detached town-blocks were moved to the "
                                           "neighbouring sub-area they share most border with", tuple(moved)))
    review_mask = reason.to_numpy() != ""
    review = pd.DataFrame({
        "key": blocks["key"].to_numpy()[review_mask], "name": blocks["name"].to_numpy()[review_mask],
        "assigned": label[review_mask], "top_share": np.round(top_share[review_mask], 4),
        "runner_up": second_label[review_mask], "runner_up_share": np.round(second_share[review_mask], 4),
        "reason": reason.to_numpy()[review_mask]})
    report.review = review.reset_index(drop=True)
    if len(review):
        report.findings.append(finding("OVERLAY-REVIEW",
                                       f"{len(review)} town-blocks to review (near-ties, split, outside)",
                                       tuple(review["key"])))
    meta = dict(metadata or {}, method=f"overlay {name_column}", overlay_min_share=min_share,
                overlay_min_margin=min_margin)
    plan = Plan.from_assignment(blocks, pd.Series(label, index=blocks["key"].to_numpy()), muni_code=muni_code,
                                island_exceptions=exc, max_subareas=max_subareas, metadata=meta)
    return plan, report


# ====================================================================== edits
def resolve_subarea(plan: Plan, ref) -> int:
    """A sub-area number (1–14, as int or text) or name (「花巻地域」 or 「花巻」) → number."""
    t = plan.subareas
    s = str(ref).strip()
    if s.isdigit() and int(s) in set(t["subarea"]):
        return int(s)
    for cand in (s, default_subarea_name(s)):
        hit = t.loc[t["name"] == cand, "subarea"]
        if len(hit):
            return int(hit.iloc[0])
    raise UserError(f"no sub-area {ref!r} in the plan", where=f"sub-area {ref!r} (--move / --merge / --rename)",
                    fix=f"use a number or name: {', '.join(f'{a}={b}' for a, b in zip(t['subarea'], t['name']))}")


def move_blocks(plan: Plan, moves) -> Plan:
    """Move town-blocks: ``moves`` is a dict or list of (key, sub-area number or name).
    The new plan is re-checked (an emptied or broken sub-area is refused)."""
    items = list(moves.items()) if isinstance(moves, dict) else list(moves)
    keys = plan.blocks["key"].to_numpy()
    pos = pd.Series(np.arange(len(keys)), index=keys)
    sub = plan.blocks[SUBAREA_COLUMN].to_numpy().copy()
    unknown = sorted({str(k) for k, _ in items} - set(keys))
    if unknown:
        raise UserError(f"--move: town-blocks {unknown[:10]} are not in the plan", where="--move",
                        fix="give KEY_CODEs of this plan with their leading zero (9 or 11 digits, e.g. "
                        f"{keys[0]}); --export-csv lists them all")
    for k, target in items:
        sub[pos[str(k)]] = resolve_subarea(plan, target)
    return plan.with_assignment(sub, metadata=dict(plan.metadata, edited=True))


def merge_subareas(plan: Plan, refs, *, name: str | None = None) -> Plan:
    """Merge two or more sub-areas into the first-listed one, which keeps its number, code,
    name (unless ``name``) and place in the display order. The others' numbers and codes are
    retired and leave a gap: no other sub-area's code changes (carriers know sub-areas by
    their codes). :func:`renumber_subareas` closes the gaps, on request only."""
    nums = [resolve_subarea(plan, r) for r in refs]
    if len(set(nums)) < 2:
        raise UserError(f"--merge needs two different sub-areas, got {list(refs)}", where="--merge", fix="e.g. --merge 3,4")
    keep, gone = nums[0], sorted(set(nums) - {nums[0]})
    t = plan.subareas.copy()
    sub = plan.blocks[SUBAREA_COLUMN].to_numpy().copy()
    sub[np.isin(sub, gone)] = keep
    if name:
        t.loc[t["subarea"] == keep, "name"] = name
    t = t[~t["subarea"].isin(gone)].sort_values("display_order", kind="stable")
    t["display_order"] = np.arange(1, len(t) + 1)
    return plan.with_assignment(sub, t[["subarea", "name", "display_order"]],
                                metadata=dict(plan.metadata, edited=True))


def renumber_subareas(plan: Plan) -> tuple[Plan, dict[int, int]]:
    """Number the sub-areas 1..k in display order (``--renumber``): their codes change, so this
    happens only when asked. Returns the new plan and old → new number for every sub-area
    whose number changed (empty, and the plan itself, when none does)."""
    t = plan.subareas.sort_values("display_order", kind="stable")
    ren = {int(old): i + 1 for i, old in enumerate(t["subarea"])}
    changed = {old: new for old, new in ren.items() if old != new}
    if not changed:
        return plan, {}
    lut = np.zeros(max(ren) + 1, dtype="int64")
    lut[list(ren)] = list(ren.values())
    table = t.assign(subarea=t["subarea"].map(ren))[["subarea", "name", "display_order"]]
    new = plan.with_assignment(lut[plan.blocks[SUBAREA_COLUMN].to_numpy()], table,
                               metadata=dict(plan.metadata, edited=True))
    return new, changed


def rename_subarea(plan: Plan, ref, name: str) -> Plan:
    """Give sub-area ``ref`` (number or name) a new name (kept verbatim)."""
    num = resolve_subarea(plan, ref)
    name = str(name).strip()
    if not name:
        raise UserError("--rename needs a non-empty name", where="--rename", fix="e.g. --rename 2=大迫地域")
    t = plan.subareas.copy()
    t.loc[t["subarea"] == num, "name"] = name
    return plan.with_assignment(plan.blocks[SUBAREA_COLUMN].to_numpy(), t[["subarea", "name", "display_order"]],
                                metadata=dict(plan.metadata, edited=True))


# ====================================================================== what changed for the carriers
def _count(n: int, noun: str) -> str:
    """'1 town-block', '3 town-blocks'."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _number_by_key(plan: Plan) -> pd.Series:
    """Each town-block's sub-area number, indexed by its key."""
    return pd.Series(plan.blocks[SUBAREA_COLUMN].to_numpy(), index=plan.blocks["key"].to_numpy())


def _code_label(plan: Plan, num: int) -> str:
    row = plan.subareas.loc[plan.subareas["subarea"] == num].iloc[0]
    return f"{row['code']} {row['name']}"


def code_changes(before: Plan, after: Plan, *, limit: int = 10) -> list[str]:
    """What an edit or an import changed, as the carriers see it: one line per retired code
    (where its town-blocks went), new code, renamed sub-area, and the town-blocks that moved
    between codes. Sub-areas are identified by their number, so their code: ``[]`` when nothing
    changed. (Renumbering is reported by :func:`renumber_lines`.)"""
    bt = before.subareas.set_index("subarea")
    at = after.subareas.set_index("subarea")
    b = _number_by_key(before)
    a = _number_by_key(after).reindex(b.index)
    names = pd.Series(before.blocks["name"].to_numpy(), index=b.index)
    lines = []
    for num in sorted(set(bt.index) - set(at.index)):
        dest = a[b == num].value_counts()
        where = ", ".join(f"{_code_label(after, int(d))} ({n})" for d, n in dest.items())
        lines.append(f"code {bt.loc[num, 'code']} ({bt.loc[num, 'name']}) retired: its town-blocks are now in "
                     f"{where}")
    for num in sorted(set(at.index) - set(bt.index)):
        src = b[a == num].value_counts()
        where = ", ".join(f"{_code_label(before, int(s))} ({n})" for s, n in src.items())
        lines.append(f"code {at.loc[num, 'code']} ({at.loc[num, 'name']}) new: "
                     f"{_count(int((a == num).sum()), 'town-block')} from {where}")
    for num in sorted(set(at.index) & set(bt.index)):
        if bt.loc[num, "name"] != at.loc[num, "name"]:
            lines.append(f"code {at.loc[num, 'code']} renamed: {bt.loc[num, 'name']} → {at.loc[num, 'name']}")
    kept = set(at.index) & set(bt.index)
    moved = b.index[(a != b) & b.isin(kept) & a.isin(kept)]
    if len(moved):
        shown = [f"{k} {names[k]} {bt.loc[b[k], 'code']} → {at.loc[a[k], 'code']}" for k in moved[:limit]]
        more = f" … (+{len(moved) - limit})" if len(moved) > limit else ""
        lines.append(f"{_count(len(moved), 'town-block')} moved: " + "; ".join(shown) + more)
    if lines:
        same = sorted(kept)
        lines.insert(0, "codes kept: " + (", ".join(str(at.loc[n, "code"]) for n in same) if same else "none"))
    return lines


def renumber_lines(before: Plan, renumbered: dict[int, int]) -> list[str]:
    """``--renumber``'s old → new code for every sub-area whose number changed."""
    t = before.subareas.set_index("subarea")
    muni = before.muni_code
    return [f"code {t.loc[old, 'code']} → {subarea_code(muni, new)} ({t.loc[old, 'name']})"
            for old, new in sorted(renumbered.items())]


# ====================================================================== interchange
#: header spellings of an assignment table's columns, compared after NFKC, without spaces and in
#: lower case: the --export-csv layout (English), its Japanese form (``--headers ja``) and the
#: package's own townblock_list.csv / area_codes.xlsx (町丁目コード, エリア番号, エリア名 …)
ASSIGNMENT_HEADERS = {
    "key": ("key", "key_code", "keycode", "町丁目コード", "町丁字コード", "町丁・字コード"),
    "subarea": ("subarea", "エリア番号", "地域番号", "細分化エリア番号"),
    "subarea_name": ("subarea_name", "エリア名", "地域名", "細分化エリア名"),
    "code": ("code", "subarea_code", "エリアコード", "地域コード"),
    "name": ("name", "町丁目名", "町丁字名", "町丁・字名"),
}
#: --export-csv headers: English (the default layout) and Japanese (the package list's words)
ASSIGNMENT_COLUMNS = {"en": {"key": "key", "subarea": "subarea", "subarea_name": "subarea_name", "name": "name"},
                      "ja": {"key": "町丁目コード", "subarea": "エリア番号", "subarea_name": "エリア名",
                             "name": "町丁目名"}}


def assignment_table(plan: Plan, *, headers: str = "en") -> pd.DataFrame:
    """key, subarea, subarea_name, block name — one row per town-block, key order
    (``headers="ja"``: 町丁目コード, エリア番号, エリア名, 町丁目名)."""
    names = plan.subareas.set_index("subarea")["name"]
    sub = plan.blocks[SUBAREA_COLUMN]
    df = pd.DataFrame({"key": plan.blocks["key"].astype(str).to_numpy(dtype=object),
                       "subarea": sub.to_numpy(), "subarea_name": sub.map(names).to_numpy(dtype=object),
                       "name": plan.blocks["name"].to_numpy(dtype=object)})
    return df.rename(columns=ASSIGNMENT_COLUMNS[headers])


def export_assignment_csv(plan: Plan, path, *, force: bool = False, encoding: str = "utf-8-sig",
                          headers: str = "en") -> Path:
    """Write the block-assignment CSV (UTF-8 with BOM, CRLF; every block listed)."""
    return write_csv(assignment_table(plan, headers=headers), path, encoding=encoding, force=force)


def _assignment_roles(df: pd.DataFrame) -> dict[str, str]:
    """role (key, subarea, subarea_name, code, name) → the column holding it."""
    cols = {header_key(c): c for c in df.columns}
    roles = {}
    for role, spellings in ASSIGNMENT_HEADERS.items():
        hit = next((cols[header_key(s)] for s in spellings if header_key(s) in cols), None)
        if hit is not None:
            roles[role] = hit
    return roles


def read_assignment_table(path) -> tuple[pd.DataFrame, dict[str, str], str]:
    """The assignment table of a CSV or XLSX: (rows, role → column, where). An XLSX's first sheet
    with a key column and a sub-area column is used (the package's area_codes.xlsx holds the
    sub-area list first, the town-block list second)."""
    tables = read_text_tables(path, what="assignment CSV")
    for sheet, df in tables.items():
        roles = _assignment_roles(df)
        if "key" in roles and ({"subarea", "code", "subarea_name"} & set(roles)):
            return df, roles, str(path) + (f" (sheet {sheet})" if sheet else "")
    first = next(iter(tables.values()))
    raise UserError(f"{Path(path).name} needs a key column and a sub-area column (has {list(first.columns)})",
                    where=str(path),
                    fix="use the layout of --export-csv (key,subarea,subarea_name,name) or of the package's "
                        "townblock_list.csv (町丁目コード, エリア番号, エリア名)")


def _rows(df: pd.DataFrame, mask, key: pd.Series, limit: int = 8) -> str:
    """'row 12 (032050011), row 15 (032050040) … (+3)': rows as the user's file numbers them
    (the header is row 1), with their keys."""
    idx = df.index[np.asarray(mask, dtype=bool)]
    shown = [f"row {int(i) + 2} ({key[i]})" if key[i] else f"row {int(i) + 2}" for i in idx[:limit]]
    return ", ".join(shown) + (f" … (+{len(idx) - limit})" if len(idx) > limit else "")


@dataclass
class _Rows:
    """The assignment table's rows, cleaned: key, number (or 0), label (a name typed in the
    sub-area column, or ''), typed sub-area name and code number (or 0)."""

    df: pd.DataFrame
    key: pd.Series
    num: pd.Series
    label: pd.Series
    typed: pd.Series
    code_num: pd.Series
    where: str

    def rows(self, mask, limit: int = 8) -> str:
        return _rows(self.df, mask, self.key, limit)


def _clean_rows(df: pd.DataFrame, roles: dict, blocks, muni: str, where: str, report: PlanningReport) -> _Rows:
    """Keys (leading zeros restored), numbers, labels, names and codes of every row; rows that
    cannot be read are refused with their row numbers and keys."""
    key = df[roles["key"]].map(_nfkc)
    restored = lost_leading_zeros(key, set(blocks["key"].astype(str)))
    if restored:
        key = key.map(lambda k: restored.get(k, k))
        report.findings.append(_leading_zero_finding("ASSIGNMENT-LEADING-ZERO", "assignment CSV", restored))
    empty = pd.Series("", index=df.index, dtype=object)
    verbatim = df[roles["subarea"]].map(lambda s: unneutralise_cell(str(s).strip())) if "subarea" in roles else empty
    raw = verbatim.map(_nfkc)
    typed = df[roles["subarea_name"]].map(lambda s: unneutralise_cell(str(s).strip())) if "subarea_name" in roles else empty
    code = df[roles["code"]].map(_nfkc) if "code" in roles else empty
    is_num = raw.str.fullmatch(r"\d+(\.0+)?")
    num = pd.to_numeric(raw.where(is_num).str.replace(r"\.0+$", "", regex=True), errors="coerce").fillna(0).astype("int64")
    code_ok = code.str.fullmatch(rf"{muni}\d\d")
    bad_code = (code != "") & ~code_ok
    if bad_code.any():
        raise PlanCheckError(f"sub-area codes that are not {muni} + a 2-digit number: "
                             + _rows(df, bad_code, key), where=where,
                             fix=f"write codes as text, e.g. {muni}01 (or leave the code column empty: "
                                 "the sub-area number decides)")
    code_num = pd.to_numeric(code.where(code_ok).str[-2:], errors="coerce").fillna(0).astype("int64")
    if "subarea" not in roles and "code" in roles:
        num, raw = code_num, code.where(code == "", code_num.astype(str))
    label = verbatim.where(~is_num & (raw != ""), "") if "subarea" in roles else empty
    if "subarea" not in roles and "code" not in roles:        # only a name column: names are the labels
        label = typed
    rows = _Rows(df, key, num, label, typed, code_num, where)
    _refuse_bad_rows(rows, roles)
    return rows


def _refuse_bad_rows(r: _Rows, roles: dict) -> None:
    """Rows without a key or a sub-area, town-blocks listed twice, numbers outside 1–14."""
    no_key = r.key == ""
    if no_key.any():
        raise PlanCheckError(f"{_count(int(no_key.sum()), 'row')} with a sub-area but no key: {r.rows(no_key)}", where=r.where,
                             fix="fill in the key (KEY_CODE, as text) or delete the row")
    none = (r.num == 0) & (r.label == "")
    if none.any():
        col = roles.get("subarea") or roles.get("code") or roles.get("subarea_name")
        raise PlanCheckError(f"{_count(int(none.sum()), 'row')} with no sub-area in {col}: {r.rows(none)}", where=r.where,
                             fix="give every town-block its sub-area number (or name)")
    dup = r.key.duplicated(keep=False)
    if dup.any():
        raise PlanCheckError(f"town-blocks listed more than once: {r.rows(dup)}", where=r.where,
                             fix="list each town-block once")
    out = (r.label == "") & ~r.num.between(1, MAX_SUBAREAS)
    if out.any():
        raise PlanCheckError(f"sub-area numbers must be 1–{MAX_SUBAREAS} (the carriers' codes end in "
                             f"01–{MAX_SUBAREAS}): {r.rows(out)}", where=r.where,
                             fix=f"use numbers 1–{MAX_SUBAREAS} (a number stands for a sub-area and its code)")


def _number_names(r: _Rows, base: Plan | None, report: PlanningReport) -> dict[int, str]:
    """Number → name for the numbered rows. The number wins: a row whose number was changed
    but whose subarea_name (or code) still says its old sub-area is the natural Excel edit,
    and its name is not a vote. A real conflict (two names typed for one number, or a name
    naming another sub-area on a row whose number did not change) is refused, listing rows
    and keys as the file numbers them."""
    numbered = (r.label == "") & (r.num > 0)
    if base is not None:
        bnum = _number_by_key(base)
        bname = base.subareas.set_index("subarea")["name"].to_dict()
        was = r.key.map(bnum).fillna(0).astype("int64")
        owner = {_nfkc(v): int(k) for k, v in bname.items()}
    else:
        was, bname = pd.Series(0, index=r.df.index), {}
        votes = pd.DataFrame({"n": r.num[numbered], "t": r.typed[numbered].map(_nfkc)})
        votes = votes[votes["t"] != ""]
        counts = votes.groupby(["t", "n"]).size().reset_index(name="c")
        counts = counts.sort_values(["t", "c", "n"], ascending=[True, False, True]).drop_duplicates("t")
        owner = dict(zip(counts["t"], counts["n"].astype(int)))
    moved = numbered & (was != r.num) & (was > 0)
    t = r.typed.map(_nfkc)
    old_name = was.map(lambda w: _nfkc(bname.get(int(w), "")))
    if base is not None:
        stale = moved & (t == old_name) & (t != "")           # number changed, name left as it was
        other = numbered & ~moved & (t != "") & t.map(owner).notna() & (t.map(owner) != r.num)
    else:
        stale = numbered & (t != "") & (t.map(owner) != r.num)
        other = pd.Series(False, index=r.df.index)
    code_stale = numbered & (r.code_num > 0) & (r.code_num != r.num)
    if base is not None:
        changed_code_only = code_stale & ~moved & (r.code_num != was)
        if changed_code_only.any():
            raise PlanCheckError("the sub-area code was changed but not the sub-area number: "
                                 + r.rows(changed_code_only), where=r.where,
                                 fix="change the number (エリア番号 / subarea): it decides the sub-area and its code")
    names: dict[int, str] = {}
    for n in sorted(set(r.num[numbered])):
        mine = numbered & (r.num == n) & (t != "") & ~stale
        cands = list(dict.fromkeys(r.typed[mine]))
        by_norm = list(dict.fromkeys(t[mine]))
        if len(by_norm) > 1:
            _refuse_name_conflict(r, n, mine, t, other, bname)
        names[int(n)] = cands[0] if cands else bname.get(int(n)) or f"第{int(n)}地域"
        if not cands and int(n) not in bname:
            report.notes.append(f"sub-area {int(n)} is new and no row names it: called {names[int(n)]} "
                                f"(rename it with --rename {int(n)}=名前地域, or type its name in subarea_name)")
    if stale.any():
        what = "number changed, name left" if base is not None else "number kept, name of another sub-area"
        report.notes.append(f"{_count(int(stale.sum()), 'row')}: the number decides the sub-area ({what}); names taken from "
                            f"the other rows of each number: {r.rows(stale, 5)}")
    if code_stale.any():
        report.notes.append(f"{_count(int(code_stale.sum()), 'row')}: the code follows the sub-area number: {r.rows(code_stale, 5)}")
    return names


def _refuse_name_conflict(r: _Rows, n: int, mine, t: pd.Series, other, bname: dict) -> None:
    """PlanCheckError for sub-area ``n`` typed with several names, each listed with its rows."""
    clash_other = mine & other
    if clash_other.any():
        names = sorted(set(t[clash_other]))
        raise PlanCheckError(
            f"rows numbered {n} ({bname.get(n, '')}) carry the name of another sub-area in subarea_name "
            f"({', '.join(names)}) but their number was not changed: {r.rows(clash_other)}", where=r.where,
            fix=f"to move them, change their sub-area number (not the name); to keep them in {n}, "
                f"restore the name {bname.get(n, '')}")
    parts = [f"{nm} in {r.rows(mine & (t == nm), 5)}" for nm in dict.fromkeys(t[mine])]
    raise PlanCheckError(f"sub-area {n} has several names in subarea_name: " + "; ".join(parts), where=r.where,
                         fix=f"type one name for every row of sub-area {n} (or leave subarea_name empty in the rows "
                             "you moved: the name is taken from the other rows of the number)")


def _label_numbers(r: _Rows, names: dict[int, str], base: Plan | None, report: PlanningReport) -> dict[str, int]:
    """Names typed in the sub-area column → sub-area numbers: a name of a numbered sub-area (or of
    the base plan's) takes its number; a new name takes the number of the base sub-area whose
    town-blocks it holds when that number is otherwise unused (a retyped name renames, it does
    not reorder), else the smallest number unused here and in the base plan."""
    first_key = r.key[r.label != ""].groupby(r.label[r.label != ""]).min()
    labels = list(first_key.sort_values(kind="stable").index)     # as the file's order of keys, not of rows
    if not labels:
        return {}
    norm = lambda s: default_subarea_name(_nfkc(s))   # noqa: E731 — 東和 = 東和地域
    known = {norm(v): n for n, v in names.items()}
    if base is not None:
        for n, v in base.subareas.set_index("subarea")["name"].items():
            known.setdefault(norm(v), int(n))
    out: dict[str, int] = {lab: known[norm(lab)] for lab in labels if norm(lab) in known}
    used = set(names) | set(out.values())
    bnum = _number_by_key(base) if base is not None else pd.Series(dtype="int64")
    in_base = set(bnum.unique().tolist())
    for lab in labels:
        if lab in out:
            continue
        held = r.key[r.label == lab].map(bnum).dropna().astype(int).value_counts()
        inherit = [int(n) for n in held.index if int(n) not in used]
        if inherit and held.index[0] == inherit[0]:
            out[lab] = inherit[0]
        else:
            free = [n for n in range(1, MAX_SUBAREAS + 1) if n not in used and n not in in_base] or \
                   [n for n in range(1, MAX_SUBAREAS + 1) if n not in used]
            if not free:
                raise PlanCheckError(f"more than {MAX_SUBAREAS} sub-areas: no number left for {lab}", where=r.where,
                                     fix="merge sub-areas: at most 14 are allowed")
            out[lab] = free[0]
        used.add(out[lab])
    return out


def _assignment_order(numbers: set, base: Plan | None) -> list[int]:
    """Display order: the base plan's for the numbers it has, then new numbers ascending."""
    if base is None:
        return sorted(numbers)
    border = base.subareas.set_index("subarea")["display_order"].to_dict()
    return sorted(numbers, key=lambda n: (n not in border, border.get(n, 0), n))


def plan_from_assignment_csv(blocks_or_plan, path, *, muni_code: str | None = None, island_exceptions=(),
                             allow_flagged_islands: bool = True, max_subareas: int = MAX_SUBAREAS
                             ) -> tuple[Plan, PlanningReport]:
    """Read an assignment table (CSV or XLSX): ``key,subarea[,subarea_name][,name]`` as written by
    ``--export-csv``, or the package's ``townblock_list.csv`` / ``area_codes.xlsx`` (町丁目コード,
    エリア番号, エリア名 …). Every town-block must be listed exactly once; blank rows are ignored.

    Codes never drift: a sub-area number is the sub-area (and its code), kept as written, gaps
    included. A row whose number was changed but whose name still says its old sub-area is
    moved (the number wins; names come from the other rows of the number). Names typed in the
    sub-area column join the sub-area of that name. A real conflict is refused, naming rows
    and keys as the file numbers them."""
    base = blocks_or_plan if isinstance(blocks_or_plan, Plan) else None
    blocks = base.blocks if base is not None else blocks_or_plan
    df, roles, where = read_assignment_table(path)
    report = PlanningReport()
    coerced = coerce_townblocks(blocks.drop(columns=[SUBAREA_COLUMN], errors="ignore"))
    muni = normalize_municipality_code(muni_code or (base.muni_code if base is not None
                                                     else single_municipality(coerced)))
    r = _clean_rows(df, roles, blocks, muni, where, report)
    names = _number_names(r, base, report)
    label_num = _label_numbers(r, names, base, report)
    if label_num:
        if (r.label == "").any():
            report.findings.append(finding("ASSIGNMENT-MIXED",
                "the sub-area column mixes numbers and names: names were read as sub-areas "
                + ", ".join(f"{lab}={n}" for lab, n in label_num.items())))
        for lab, n in label_num.items():
            names.setdefault(n, default_subarea_name(lab))
    number = r.num.where(r.label == "", r.label.map(label_num)).astype("int64")
    clash = pd.Series(names).map(_nfkc)
    dup = clash[clash.duplicated(keep=False)]
    if len(dup):
        raise PlanCheckError(f"sub-areas {sorted(map(int, dup.index))} would have the same name "
                             f"{sorted(set(dup))[0]}", where=where,
                             fix="give each sub-area number its own name in subarea_name (or --rename after import)")
    exc = list(island_exceptions)
    if base is not None:
        exc = sorted(set(exc) | set(base.island_exceptions))
    exc = _island_args(coerced, exc, allow_flagged_islands, report)
    used = set(number.unique().tolist())
    plan = Plan.from_assignment(blocks, pd.Series(number.to_numpy(), index=r.key.to_numpy(dtype=object)),
                                muni_code=muni, names={n: names[n] for n in used}, numbers={n: n for n in used},
                                order=_assignment_order(used, base), island_exceptions=exc,
                                max_subareas=base.max_subareas if base is not None and max_subareas == MAX_SUBAREAS
                                else max_subareas,
                                metadata=dict(base.metadata if base is not None else {},
                                              method=f"assignment CSV {Path(path).name}"))
    return plan, report


# ====================================================================== the candidates table
#: --candidates-out headers for staff (Japanese, the default) — English keys with ``--headers en``
CANDIDATE_HEADERS_JA = {
    "rank": "順位", "k": "地域数", "recommended": "推奨", "feasible": "条件を満たす",
    "spared_share_mean": "1回の配信で受信しない住民の割合（平均）",
    "spared_share_worst": "1回の配信で受信しない住民の割合（最悪のL）",
    "alerts_per_event": "1回あたりの受信者数", "over_alert": "危険区域外の受信者数",
    "missed": "危険区域内の未受信者数", "min_core_share": "最小の非到達コア割合",
    "core_shares": "地域ごとの非到達コア割合", "min_area_km2": "最小面積(km2)",
    "compactness_plan_spared": "コンパクト案の割合", "objective": "コンパクトさの目的関数",
    "ssd": "属性の偏差平方和", "ch_score": "CH指標", "old_mixing": "旧市町村の混在率", "violations": "違反",
}


def candidates_table(table: pd.DataFrame, *, headers: str = "ja") -> pd.DataFrame:
    """The planner's candidates table as written by ``--candidates-out``: Japanese headers for
    staff (``headers="ja"``), or the English column keys (``"en"``)."""
    if headers not in ("ja", "en"):
        raise ValueError(f"headers={headers!r}: use 'ja' or 'en'")
    return table.rename(columns=CANDIDATE_HEADERS_JA) if headers == "ja" else table.copy()


def read_candidates_table(path) -> pd.DataFrame:
    """A candidates table written by ``--candidates-out`` (Japanese or English headers, or the
    printed bilingual labels) read back with the English column keys; numbers as numbers."""
    from subdivide.make.regionalize.candidates import LABELS

    df = read_text_table(path, what="candidates table")
    back = {header_key(v): k for k, v in CANDIDATE_HEADERS_JA.items()}
    back.update({header_key(k): k for k in CANDIDATE_HEADERS_JA})
    for k, label in LABELS.items():
        back.setdefault(header_key(label), k)
    df = df.rename(columns={c: back.get(header_key(c), c) for c in df.columns})
    for c in df.columns:
        if c in ("core_shares", "violations"):
            continue
        if c in ("recommended", "feasible"):
            df[c] = df[c].map({"True": True, "False": False}).astype(object)
            continue
        num = pd.to_numeric(df[c], errors="coerce")
        if num.notna().sum() == (df[c] != "").sum():
            df[c] = num
    return df


# ====================================================================== constraint checks
def check_constraints(plan: Plan, *, min_area_km2: float = 0.0, min_core: float = 0.0,
                      spill_km: float = 2.0, nest_column: str | None = None) -> list[Finding]:
    """Floors and nesting on an existing plan: errors name the offending sub-areas."""
    out: list[Finding] = []
    m = plan.metrics
    if min_area_km2 > 0:
        bad = m[m["area_km2"] < min_area_km2 - 1e-9]
        if len(bad):
            out.append(finding("AREA-FLOOR",
                               f"sub-areas below {min_area_km2:g} km²: "
                               + ", ".join(f"{n} {a:.1f} km²" for n, a in zip(bad["name"], bad["area_km2"])),
                               tuple(bad["name"])))
    if min_core > 0:
        core = core_share(plan.dissolved.geometry.values, spill_km * 1000.0)
        names = plan.dissolved["name"].to_numpy()
        low = core < min_core - 1e-9
        if low.any():
            out.append(finding("SPILL-CORE",
                               f"unreached core below {min_core:.0%} at L = {spill_km:g} km: "
                               + ", ".join(f"{n} {c:.0%}" for n, c in zip(names[low], core[low])),
                               tuple(names[low]), severity="error"))   # a floor the user asked for
    if nest_column:
        if nest_column not in plan.blocks.columns:
            raise UserError(f"column {nest_column!r} is not in the plan's town-blocks", where="--follow-old",
                        fix="check --follow-old")
        nun = plan.blocks.groupby(SUBAREA_COLUMN)[nest_column].nunique()
        bad = nun[nun > 1]
        if len(bad):
            names = plan.subareas.set_index("subarea")["name"]
            out.append(finding("NESTING",
                               f"sub-areas crossing {nest_column} lines: {[names[s] for s in bad.index]}",
                               tuple(names[s] for s in bad.index)))
    return out


def require(findings: list[Finding]) -> None:
    """Raise PlanCheckError when any finding is an error."""
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        raise PlanCheckError("the plan breaks the requested constraints:\n" + "\n".join(f"  {f}" for f in errors),
                             where="; ".join(dict.fromkeys(f.rule for f in errors)),
                             fix="edit the plan (--move, --merge) or relax the floor")
