"""Making and editing plans: by a town-block attribute, by a mapping file, by overlay with
a polygon layer, by edits, and through a block-assignment CSV.

Every function returns a :class:`~subdivide.model.plan.Plan`, whose construction proves the
limits (≤ 14 sub-areas, complete single assignment, no empty sub-area, contiguity with
explicit island exceptions) and refuses with a :class:`~subdivide.core.errors.PlanCheckError`
naming the offending town-blocks. Functions that can leave something to review also
return a :class:`PlanningReport`.

Keys are always strings (KEY_CODE keeps its leading zero). Mapping and assignment CSVs
are read as UTF-8 (with or without BOM) or CP932, detected; XLSX via openpyxl.

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
from subdivide.io.tables import read_text_table
from subdivide.core.errors import PlanCheckError, UserError
from subdivide.core.findings import Finding
from subdivide.core.rules import finding
from subdivide.io.output import write_csv
from subdivide.model.plan import Plan, default_subarea_name
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

    def lines(self) -> list[str]:
        return [str(f) for f in self.findings]


# ====================================================================== helpers
def _nfkc(s) -> str:
    return unicodedata.normalize("NFKC", str(s)).strip()


def flagged_island_exceptions(blocks: gpd.GeoDataFrame, adj=None) -> list[str]:
    """Keys of blocks the source flags as islands that share no border with the main
    body of the municipality (sorted)."""
    if not bool(blocks["island"].any()):
        return []
    adj = block_adjacency(blocks) if adj is None else adj
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
    """Merge two or more sub-areas into the first-listed's place; numbers are compacted
    to 1..k (later numbers shift down, codes follow the numbers)."""
    nums = [resolve_subarea(plan, r) for r in refs]
    if len(set(nums)) < 2:
        raise UserError(f"--merge needs two different sub-areas, got {list(refs)}", where="--merge", fix="e.g. --merge 3,4")
    keep = min(nums)
    t = plan.subareas.copy()
    sub = plan.blocks[SUBAREA_COLUMN].to_numpy().copy()
    sub[np.isin(sub, nums)] = keep
    if name:
        t.loc[t["subarea"] == keep, "name"] = name
    t = t[~t["subarea"].isin(set(nums) - {keep})].sort_values("subarea")
    renum = {old: i + 1 for i, old in enumerate(t["subarea"])}
    sub = pd.Series(sub).map(renum).to_numpy()
    t["subarea"] = t["subarea"].map(renum)
    t = t.sort_values("display_order", kind="stable")
    t["display_order"] = np.arange(1, len(t) + 1)
    return plan.with_assignment(sub, t[["subarea", "name", "display_order"]],
                                metadata=dict(plan.metadata, edited=True))


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


# ====================================================================== interchange
def assignment_table(plan: Plan) -> pd.DataFrame:
    """key, subarea, subarea_name, block name — one row per town-block, key order."""
    names = plan.subareas.set_index("subarea")["name"]
    sub = plan.blocks[SUBAREA_COLUMN]
    return pd.DataFrame({"key": plan.blocks["key"].astype(str).to_numpy(dtype=object),
                         "subarea": sub.to_numpy(), "subarea_name": sub.map(names).to_numpy(dtype=object),
                         "name": plan.blocks["name"].to_numpy(dtype=object)})


def export_assignment_csv(plan: Plan, path, *, force: bool = False, encoding: str = "utf-8-sig") -> Path:
    """Write the block-assignment CSV (UTF-8 with BOM, CRLF; every block listed)."""
    return write_csv(assignment_table(plan), path, encoding=encoding, force=force)


def _assignment_columns(df: pd.DataFrame, path) -> tuple[str, str, str | None]:
    """The key, subarea and (optional) subarea_name columns, matched case-insensitively."""
    lower = {c.lower(): c for c in df.columns}
    if "key" not in lower or "subarea" not in lower:
        raise UserError(f"{Path(path).name} needs columns key,subarea (has {list(df.columns)})", where=str(path),
                        fix="export one with --export-csv to see the layout")
    return lower["key"], lower["subarea"], lower.get("subarea_name")


def _restore_assignment_zeros(df: pd.DataFrame, kc: str, blocks, report: PlanningReport) -> None:
    """Keys that lost their leading zero restored in place, reported."""
    restored = lost_leading_zeros(df[kc], set(blocks["key"].astype(str)))
    if restored:
        df[kc] = df[kc].map(lambda k: restored.get(k, k))
        report.findings.append(_leading_zero_finding("ASSIGNMENT-LEADING-ZERO", "assignment CSV", restored))


def _refuse_bad_assignment_rows(df: pd.DataFrame, kc: str, sc: str, path) -> None:
    """PlanCheckError for rows without a sub-area and for town-blocks listed twice."""
    empty = df.loc[df[sc] == "", kc]
    if len(empty):
        raise PlanCheckError(f"{len(empty)} rows have no sub-area: {empty.tolist()[:20]}", where=str(path))
    dup = sorted(df.loc[df[kc].duplicated(), kc].unique())
    if dup:
        raise PlanCheckError(f"town-blocks listed more than once: {dup[:20]}", where=str(path),
                             fix="list each town-block once")


def _number_names(df: pd.DataFrame, sc: str, nc: str | None, is_num: pd.Series, base_names: dict, path) -> dict:
    """Number (as text) → the name it stands for: its one subarea_name, else the base plan's
    name, else 第n地域."""
    num_name = {}
    for n in sorted(set(df.loc[is_num, sc]), key=int):
        given = sorted(set(df.loc[is_num & (df[sc] == n), nc])) if nc else []
        given = [g for g in given if g]
        if len(given) > 1:
            raise PlanCheckError(f"sub-area {n} has several names in {nc}: {given}", where=str(path))
        num_name[n] = given[0] if given else base_names.get(int(n), f"第{int(n)}地域")
    return num_name


def _mixed_labels(df: pd.DataFrame, sc: str, nc: str | None, is_num: pd.Series, base, path,
                  report: PlanningReport) -> tuple[pd.Series, list, dict]:
    """Numbers and names mixed (a staffer typed 東和地域 over a 4): numbers stand for their
    sub-area's name (subarea_name column, else the base plan), not for "4地域".
    Returns labels, order and names; reports ASSIGNMENT-MIXED."""
    base_names = base.subareas.set_index("subarea")["name"].to_dict() if base is not None else {}
    num_name = _number_names(df, sc, nc, is_num, base_names, path)
    known = {default_subarea_name(v): v for v in num_name.values()}   # 東和 → 東和地域 (= 4)
    labels = df[sc].where(~is_num, df[sc].map(num_name))
    labels = labels.map(lambda lab: known.get(default_subarea_name(lab), lab))
    rank = {default_subarea_name(v): k for k, v in base_names.items()}
    rank.update({v: int(k) for k, v in num_name.items()})
    first = {lab: i for i, lab in reversed(list(enumerate(labels)))}
    order = sorted(first, key=lambda lab: (rank.get(lab, rank.get(default_subarea_name(lab), 10_000)),
                                           first[lab]))
    names = {v: v for v in num_name.values()}          # verbatim, like the plan's own names
    report.findings.append(finding("ASSIGNMENT-MIXED",
        f"{sc} mixes numbers and names: numbers were read as the names "
        + ", ".join(f"{k}={v}" for k, v in num_name.items())))
    return labels, order, names


def _numeric_labels(df: pd.DataFrame, sc: str, nc: str | None, base, path,
                    report: PlanningReport) -> tuple[pd.Series, list, dict]:
    """All sub-areas given as numbers: names from subarea_name (one per number), else the
    base plan, else 第n地域. Reports ASSIGNMENT-RENUMBERED when the numbers are not 1..k."""
    labels = df[sc].astype(int)
    order = sorted(labels.unique())
    if nc:
        nm = df.groupby(labels)[nc].agg(lambda s: sorted(set(s)))
        clash = [int(i) for i, v in nm.items() if len(v) > 1]
        if clash:
            raise PlanCheckError(f"sub-areas {clash} have several names in {nc}", where=str(path))
        names = {int(i): v[0] for i, v in nm.items()}
    elif base is not None:
        names = base.subareas.set_index("subarea")["name"].to_dict()
    else:
        names = {i: f"第{i}地域" for i in order}
    if order != list(range(1, len(order) + 1)):
        report.findings.append(finding("ASSIGNMENT-RENUMBERED",
                                       f"sub-area numbers {[int(i) for i in order]} were renumbered 1..{len(order)}"))
    return labels, order, names


def _assignment_labels(df: pd.DataFrame, sc: str, nc: str | None, base, path,
                       report: PlanningReport) -> tuple[pd.Series, list | None, dict | None]:
    """Labels, order and names of the subarea column: numbers, names, or both mixed."""
    is_num = df[sc].str.fullmatch(r"\d+")
    if is_num.all():
        return _numeric_labels(df, sc, nc, base, path, report)
    if is_num.any():
        return _mixed_labels(df, sc, nc, is_num, base, path, report)
    return df[sc], None, None


def plan_from_assignment_csv(blocks_or_plan, path, *, muni_code: str | None = None, island_exceptions=(),
                             allow_flagged_islands: bool = True, max_subareas: int = MAX_SUBAREAS
                             ) -> tuple[Plan, PlanningReport]:
    """Read a ``key,subarea`` CSV (subarea = number 1–14 or name; optional
    ``subarea_name``). Every town-block must be listed exactly once. Names come from
    ``subarea_name``, else from the base plan for numbers, else the sub-area value."""
    base = blocks_or_plan if isinstance(blocks_or_plan, Plan) else None
    blocks = base.blocks if base is not None else blocks_or_plan
    df = read_table(path, what="assignment CSV")
    kc, sc, nc = _assignment_columns(df, path)
    report = PlanningReport()
    _restore_assignment_zeros(df, kc, blocks, report)
    _refuse_bad_assignment_rows(df, kc, sc, path)
    labels, order, names = _assignment_labels(df, sc, nc, base, path, report)
    exc = list(island_exceptions)
    if base is not None:
        exc = sorted(set(exc) | set(base.island_exceptions))
    exc = _island_args(coerce_townblocks(blocks.drop(columns=[SUBAREA_COLUMN], errors="ignore")), exc,
                       allow_flagged_islands, report)
    plan = Plan.from_assignment(blocks, pd.Series(labels.to_numpy(), index=df[kc].to_numpy(dtype=object)),
                                muni_code=muni_code or (base.muni_code if base is not None else None),
                                names=names, order=order, island_exceptions=exc,
                                max_subareas=base.max_subareas if base is not None and max_subareas == MAX_SUBAREAS
                                else max_subareas,
                                metadata=dict(base.metadata if base is not None else {},
                                              method=f"assignment CSV {Path(path).name}"))
    return plan, report


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
