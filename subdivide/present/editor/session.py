"""The edit session: one plan being edited, its history, its figures and its saving.

A plain class with no web code: the server (``server.py``) validates requests and calls
these methods under a lock; tests can drive it directly.

State: ``sub`` (the sub-area number of every town-block, block order of the plan), the
sub-area table (number → name, display order) and the island exceptions (key →
reason). Sub-area numbers (and so the codes) never change through paints, merges or
deletions; only :meth:`renumber` compacts them, on purpose. Every edit pushes the
previous state on the undo stack.

A state may break the plan rules (a sub-area cut in two, an empty new sub-area): the
figures and checks say so, and :meth:`save` then writes only a draft marked invalid.
"""
from __future__ import annotations

import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from subdivide.core.constants import DEFAULT_TARGET_SHARE, MAX_SUBAREAS
from subdivide.core.names import NAME_RULE, NAME_SUFFIX, name_problem
from subdivide.core.errors import PlanCheckError, UserError
from subdivide.core.schema import SUBAREA_COLUMN
from subdivide.model.plan import Plan, default_subarea_name, reproducible_date
from subdivide.present.editor.figures import FigureEngine

#: the trial's measured overreach band (km): the L slider's range
L_BAND_KM = (1.6, 3.3)
DEFAULT_L_KM = 2.0
MAX_NAME_CHARS = 40
MAX_REASON_CHARS = 200
#: undo depth
HISTORY_LIMIT = 200


class EditError(UserError):
    """An edit the session refuses; ``code`` is stable, ``ja`` is shown in the Japanese UI."""

    def __init__(self, code: str, message: str, ja: str, status: int = 400):
        super().__init__(message)
        self.code, self.ja, self.status = code, ja, status


@dataclass
class EditState:
    sub: np.ndarray
    table: dict            # number → {"name": str, "display_order": int}
    islands: dict          # key → reason

    def copy(self) -> EditState:
        return EditState(self.sub.copy(), {k: dict(v) for k, v in self.table.items()}, dict(self.islands))


@dataclass
class Timing:
    last_ms: float = 0.0
    edits: list = field(default_factory=list)


def clean_name(text) -> str:
    """A sub-area name typed by a user → 「●●地域」 (「地域」 added when missing), checked by
    the one name rule (:mod:`subdivide.core.names`, rule NAME-FORMAT) and a length limit."""
    s = str(text if text is not None else "").strip()
    if s and not s.endswith(NAME_SUFFIX) and name_problem(s + NAME_SUFFIX) is None:
        s = default_subarea_name(s)
    why = name_problem(s)
    if why:
        raise EditError(NAME_RULE, f"the sub-area name {why}", f"地域名が不正です（{why}）")
    if len(s) > MAX_NAME_CHARS:
        raise EditError(NAME_RULE, f"a sub-area name has at most {MAX_NAME_CHARS} characters",
                        f"地域名は{MAX_NAME_CHARS}文字以内にしてください")
    return s


class EditSession:
    """Edit one plan; see the module docstring."""

    def __init__(self, plan: Plan, *, source: Path | None = None, inputs=(), distance_km: float = DEFAULT_L_KM,
                 target_share: float = DEFAULT_TARGET_SHARE, min_area_km2: float = 0.0, island_reasons=None):
        self.base = plan
        self.source = Path(source) if source else None
        self.inputs = [Path(p).resolve() for p in inputs]
        self.blocks = plan.blocks
        self.keys = self.blocks["key"].to_numpy(dtype=object)
        self.pos = pd.Series(np.arange(len(self.keys)), index=self.keys)
        self.oaza = np.array([str(k)[:9] for k in self.keys], dtype=object)
        self.engine = FigureEngine(self.blocks, plan.adjacency)
        reasons = dict(island_reasons or plan.metadata.get("island_exception_reasons", {}) or {})
        self.state = EditState(
            sub=self.blocks[SUBAREA_COLUMN].to_numpy(dtype=np.int64).copy(),
            table={int(r.subarea): {"name": str(r.name), "display_order": int(r.display_order)}
                   for r in plan.subareas.itertuples()},
            islands={str(k): str(reasons.get(k, "")) for k in sorted(plan.island_exceptions)})
        self.initial = self.state.copy()
        self.undo_stack: list[EditState] = []
        self.redo_stack: list[EditState] = []
        self.distance_km = self.check_distance(distance_km)
        self.target_share = float(target_share)
        self.min_area_km2 = float(min_area_km2)
        self.timing = Timing()

    # ------------------------------------------------------------------ helpers
    @property
    def numbers(self) -> list[int]:
        """Sub-area numbers in display order."""
        return sorted(self.state.table, key=lambda s: (self.state.table[s]["display_order"], s))

    @staticmethod
    def check_distance(value) -> float:
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise EditError("BAD-L", f"L {value!r} is not a number", "L が数値ではありません") from None
        lo, hi = L_BAND_KM
        if not np.isfinite(v) or not (lo - 1e-9 <= v <= hi + 1e-9):
            raise EditError("BAD-L", f"L must lie in the trial's band {lo}–{hi} km",
                            f"L は試行の範囲 {lo}〜{hi} km で指定してください")
        return round(v, 3)

    def _indices(self, keys) -> np.ndarray:
        if not isinstance(keys, list) or not keys:
            raise EditError("NO-BLOCKS", "give a non-empty list of town-block keys", "町丁・字を選んでください")
        ks = [str(k) for k in keys]
        unknown = sorted(set(ks) - set(self.pos.index))
        if unknown:
            raise EditError("UNKNOWN-BLOCK", f"town-blocks {unknown[:5]} are not in the plan",
                            "計画にない町丁・字が指定されました")
        return self.pos[ks].to_numpy()

    def _subarea(self, ref) -> int:
        try:
            s = int(ref)
        except (TypeError, ValueError):
            raise EditError("UNKNOWN-SUBAREA", f"no sub-area {ref!r}", "その地域はありません") from None
        if s not in self.state.table:
            raise EditError("UNKNOWN-SUBAREA", f"no sub-area {ref!r}", "その地域はありません")
        return s

    def _push(self, new: EditState) -> None:
        self.undo_stack.append(self.state)
        del self.undo_stack[:-HISTORY_LIMIT]
        self.redo_stack.clear()
        self.state = new

    def _unique_name(self, name: str, skip: int | None = None) -> None:
        if any(v["name"] == name for s, v in self.state.table.items() if s != skip):
            raise EditError("NAME-DUPLICATE", f"another sub-area is already called {name}",
                            "同じ名前の地域がすでにあります")

    # ------------------------------------------------------------------ edits
    def paint(self, keys, subarea) -> np.ndarray:
        """Move town-blocks into a sub-area; returns the indices that changed."""
        idx = self._indices(keys)
        s = self._subarea(subarea)
        changed = idx[self.state.sub[idx] != s]
        if len(changed):
            new = self.state.copy()
            new.sub[changed] = s
            self._push(new)
        return changed

    def add_subarea(self, name=None) -> int:
        t = self.state.table
        if len(t) >= self.base.max_subareas:
            raise EditError("LIMIT-SUBAREAS", f"at most {self.base.max_subareas} sub-areas are allowed",
                            f"地域は最大{self.base.max_subareas}までです")
        num = min(set(range(1, MAX_SUBAREAS + 1)) - set(t))
        nm = clean_name(name if name not in (None, "") else f"第{num}地域")
        self._unique_name(nm)
        new = self.state.copy()
        new.table[num] = {"name": nm, "display_order": max((v["display_order"] for v in t.values()), default=0) + 1}
        self._push(new)
        return num

    def merge(self, subareas, into) -> None:
        """Sub-areas ``subareas`` go into ``into`` (its number and name stay); used for
        delete too (delete = merge one sub-area into another, or drop an empty one)."""
        target = self._subarea(into)
        if not isinstance(subareas, list) or not subareas:
            raise EditError("NO-SUBAREAS", "give the sub-areas to merge", "統合する地域を選んでください")
        gone = sorted({self._subarea(s) for s in subareas} - {target})
        if not gone:
            raise EditError("NO-SUBAREAS", "merge needs another sub-area than the target",
                            "統合先以外の地域を選んでください")
        new = self.state.copy()
        new.sub[np.isin(new.sub, gone)] = target
        for s in gone:
            del new.table[s]
        self._compact_order(new)
        self._push(new)

    def delete(self, subarea, into=None) -> None:
        s = self._subarea(subarea)
        if into is None:
            if (self.state.sub == s).any():
                raise EditError("SUBAREA-NOT-EMPTY", "the sub-area still has town-blocks: say where they go",
                                "この地域には町丁・字が残っています。移す先の地域を選んでください")
            if len(self.state.table) == 1:
                raise EditError("LAST-SUBAREA", "the last sub-area cannot be deleted", "最後の地域は削除できません")
            new = self.state.copy()
            del new.table[s]
            self._compact_order(new)
            self._push(new)
        else:
            self.merge([s], into)

    @staticmethod
    def _compact_order(state: EditState) -> None:
        order = sorted(state.table, key=lambda s: (state.table[s]["display_order"], s))
        for i, s in enumerate(order):
            state.table[s]["display_order"] = i + 1

    def rename(self, subarea, name) -> str:
        s = self._subarea(subarea)
        nm = clean_name(name)
        self._unique_name(nm, skip=s)
        if nm != self.state.table[s]["name"]:
            new = self.state.copy()
            new.table[s]["name"] = nm
            self._push(new)
        return nm

    def set_order(self, order) -> None:
        if not isinstance(order, list) or sorted(map(str, order)) != sorted(map(str, self.state.table)):
            raise EditError("BAD-ORDER", "the display order must list every sub-area once",
                            "表示順にはすべての地域を一度ずつ並べてください")
        new = self.state.copy()
        for i, s in enumerate(order):
            new.table[int(s)]["display_order"] = i + 1
        self._push(new)

    def renumber(self) -> None:
        """Compact the numbers to 1..k in display order (codes change: on purpose only)."""
        new = self.state.copy()
        order = self.numbers
        ren = {old: i + 1 for i, old in enumerate(order)}
        lut = np.zeros(max(MAX_SUBAREAS, max(order)) + 1, dtype=np.int64)
        for old, nw in ren.items():
            lut[old] = nw
        new.sub = lut[new.sub]
        new.table = {ren[s]: dict(self.state.table[s]) for s in order}
        self._push(new)

    def set_island(self, key, on: bool, reason: str = "") -> None:
        k = str(key)
        self._indices([k])
        reason = str(reason or "").strip()
        if on and not reason:
            raise EditError("ISLAND-REASON", "an island exception needs a reason", "離島例外には理由が必要です")
        if len(reason) > MAX_REASON_CHARS or any(unicodedata.category(c) == "Cc" for c in reason):
            raise EditError("ISLAND-REASON", f"the reason has at most {MAX_REASON_CHARS} characters, no control "
                            "characters", "理由が長すぎるか、制御文字を含みます")
        new = self.state.copy()
        if on:
            new.islands[k] = reason
        elif k in new.islands:
            del new.islands[k]
        else:
            return
        self._push(new)

    def undo(self) -> bool:
        if not self.undo_stack:
            return False
        self.redo_stack.append(self.state)
        self.state = self.undo_stack.pop()
        return True

    def redo(self) -> bool:
        if not self.redo_stack:
            return False
        self.undo_stack.append(self.state)
        self.state = self.redo_stack.pop()
        return True

    def set_distance(self, value) -> float:
        self.distance_km = self.check_distance(value)
        return self.distance_km

    # ------------------------------------------------------------------ figures and checks
    def figures(self) -> dict:
        """Everything the page shows, as JSON-ready data; timed."""
        t0 = time.perf_counter()
        st = self.state
        nums = self.numbers
        f = self.engine.figures(st.sub, nums, self.distance_km, island_keys=list(st.islands))
        rows = f["rows"]
        for r in rows:
            r.update(name=st.table[r["subarea"]]["name"], display_order=st.table[r["subarea"]]["display_order"],
                     code=f"{self.base.muni_code}{r['subarea']:02d}")
        ex = f["exposure"]
        pairs = [(float(ex[i, j]), i, j) for i, j in zip(*np.nonzero(ex > 0.5))]
        pairs.sort(key=lambda p: (-p[0], nums[p[1]], nums[p[2]]))
        pop_of = {r["subarea"]: r["population"] for r in rows}
        exposures = [{"from": nums[i], "to": nums[j], "population": round(p, 1),
                      "to_population_share": p / pop_of[nums[j]] if pop_of[nums[j]] else None}
                     for p, i, j in pairs[:10]]
        findings = self.findings(rows, f)
        ms = (time.perf_counter() - t0) * 1000.0
        self.timing.last_ms = ms
        return {"subareas": rows, "exposures": exposures, "findings": findings,
                "valid": not any(x["severity"] == "error" for x in findings),
                "distance_km": self.distance_km, "target_share": self.target_share,
                "can_undo": bool(self.undo_stack), "can_redo": bool(self.redo_stack),
                "islands": [{"key": k, "reason": v} for k, v in sorted(st.islands.items())],
                "compute_ms": round(ms, 1)}

    def findings(self, rows, f) -> list[dict]:
        """The plan rules and floors, with the validator's rule ids (errors, warnings, info)."""
        excused = [str(x) for x in self.keys[f["excused"]]]
        checks = table_findings(rows) + contiguity_findings(rows, excused, self.state.islands)
        checks += spill_findings(rows, self.target_share, self.distance_km, self.min_area_km2)
        return [{"rule": rule, "severity": sev, "message": msg, "message_ja": ja, "features": list(feats)}
                for rule, sev, msg, ja, feats in checks]

    # ------------------------------------------------------------------ plans
    def subarea_table(self, state: EditState | None = None) -> pd.DataFrame:
        st = state or self.state
        rows = [{"subarea": s, "name": v["name"], "display_order": v["display_order"]} for s, v in st.table.items()]
        return pd.DataFrame(rows, columns=["subarea", "name", "display_order"]).sort_values("display_order")

    def to_plan(self) -> Plan:
        """The current state as a checked Plan (raises PlanCheckError when it breaks a rule)."""
        st = self.state
        meta = dict(self.base.metadata, edited=True, edited_with="subdivide edit",
                    island_exception_reasons=dict(sorted(st.islands.items())))
        meta["date"] = reproducible_date()
        return self.base.with_assignment(st.sub, self.subarea_table(), island_exceptions=frozenset(st.islands),
                                         metadata=meta)

    def compare(self, other: Plan) -> dict:
        """Blocks that moved between ``other`` and the current state, and the change in each
        figure (sub-areas matched by the largest shared population, then block count)."""
        okeys = other.blocks["key"].to_numpy(dtype=object)
        if len(okeys) != len(self.keys) or set(okeys) != set(self.keys):
            raise EditError("COMPARE-BLOCKS", "the plan to compare has other town-blocks",
                            "比較する計画の町丁・字が一致しません")
        osub = other.blocks[SUBAREA_COLUMN].to_numpy()[pd.Series(np.arange(len(okeys)), index=okeys)[self.keys]]
        cur = self.state.sub
        df = pd.DataFrame({"cur": cur, "oth": osub, "pop": self.engine.population, "n": 1})
        g = df.groupby(["oth", "cur"], as_index=False)[["pop", "n"]].sum().sort_values(
            ["pop", "n", "oth", "cur"], ascending=[False, False, True, True])
        match, used = {}, set()
        for r in g.itertuples():
            if r.oth not in match and r.cur not in used:
                match[int(r.oth)] = int(r.cur)
                used.add(int(r.cur))
        mapped = np.array([match.get(int(s), -1) for s in osub])
        moved = np.flatnonzero(mapped != cur)
        onums = sorted(other.subareas["subarea"].astype(int), key=lambda s: int(
            other.subareas.set_index("subarea").loc[s, "display_order"]))
        ofig = {r["subarea"]: r for r in self.engine.figures(osub, onums, self.distance_km,
                                                              island_keys=list(other.island_exceptions))["rows"]}
        onames = other.subareas.set_index("subarea")["name"].to_dict()
        cfig = {r["subarea"]: r for r in self.figures()["subareas"]}
        rows = []
        for o in onums:
            c = match.get(o)
            fields = ("n_blocks", "population", "households", "area_km2", "core_share", "circle_share", "spared_share")
            row = {"other": o, "other_name": onames[o], "current": c,
                   "current_name": self.state.table[c]["name"] if c is not None else None}
            for fl in fields:
                a, b = ofig[o].get(fl), cfig[c].get(fl) if c is not None else None
                row[fl] = {"other": a, "current": b,
                           "change": (b - a) if a is not None and b is not None else None}
            rows.append(row)
        return {"moved": [{"key": str(self.keys[i]), "from_other": int(osub[i]), "to_current": int(cur[i])}
                          for i in moved],
                "moved_count": len(moved), "subareas": rows,
                "unmatched_current": sorted(set(self.state.table) - used)}

    # ------------------------------------------------------------------ saving
    def save(self, path: Path, *, overwrite: bool = False, csv: bool = True) -> dict:
        """Write the plan GeoPackage (and its key,subarea CSV) atomically when the state is
        a valid plan; otherwise write a draft marked invalid (``*.draft.gpkg``, layers
        that `read_plan` and `subdivide validate` refuse as a plan)."""
        from subdivide.make.planning import export_assignment_csv

        path = Path(path)
        try:
            plan = self.to_plan()
        except PlanCheckError as exc:
            return self._save_draft(path, overwrite=overwrite, reason=exc.message)
        if path.name.endswith(DRAFT_SUFFIX):
            raise EditError("DRAFT-NAME", f"a valid plan is saved as a plan, not as {DRAFT_SUFFIX}",
                            f"有効な計画です。{DRAFT_SUFFIX} ではない名前で保存してください")
        csv_path = path.with_suffix(".csv")
        if csv and csv_path.exists() and not overwrite:
            raise EditError("EXISTS", f"{csv_path.name} already exists", f"{csv_path.name} はすでにあります", 409)
        plan.save(path, force=overwrite)
        written = [str(path)]
        if csv:
            export_assignment_csv(plan, csv_path, force=overwrite)
            written.append(str(csv_path))
        return {"kind": "plan", "written": written}

    def _save_draft(self, path: Path, *, overwrite: bool, reason: str) -> dict:
        from subdivide.io.output import write_gpkg

        if not path.name.endswith(DRAFT_SUFFIX):
            path = path.with_name(path.name.removesuffix(".gpkg") + DRAFT_SUFFIX)
        if path.exists() and not overwrite:
            raise EditError("EXISTS", f"{path.name} already exists", f"{path.name} はすでにあります", 409)
        st = self.state
        blocks = self.blocks[["key", "name", "population", "households", "geometry"]].assign(subarea=st.sub)
        meta = {"status": "invalid", "reason": reason, "muni_code": self.base.muni_code,
                "island_exceptions": sorted(st.islands), "island_exception_reasons": dict(sorted(st.islands.items())),
                "date": reproducible_date()}
        import json

        meta_df = pd.DataFrame({"key": sorted(meta), "value": [json.dumps(meta[k], ensure_ascii=False, sort_keys=True)
                                                               for k in sorted(meta)]})
        write_gpkg({"draft_townblocks": blocks, "draft_subareas": self.subarea_table().reset_index(drop=True),
                    "draft_meta": meta_df}, path, force=overwrite)
        return {"kind": "draft", "written": [str(path)], "reason": reason}


# ---------------------------------------------------------------------- checks: (rule, severity, en, ja, features)
def table_findings(rows) -> list[tuple]:
    """The sub-area table rules: limit, empty sub-areas, 「●●地域」 names, repeats."""
    out = []
    k = len(rows)
    if k > MAX_SUBAREAS:
        out.append(("LIMIT-SUBAREAS", "error", f"{k} sub-areas; at most {MAX_SUBAREAS}",
                    f"地域が{k}あります（上限{MAX_SUBAREAS}）", ()))
    empty = [r["name"] for r in rows if r["n_blocks"] == 0]
    if empty:
        out.append(("SUBAREA-EMPTY", "error", "sub-areas with no town-block", "町丁・字のない地域があります", empty))
    names = [r["name"] for r in rows]
    bad = [n for n in names if name_problem(n)]
    if bad:
        out.append((NAME_RULE, "error", "names must be 「●●地域」", "地域名は「●●地域」の形にしてください", bad))
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        out.append(("NAME-DUPLICATE", "error", "sub-area names repeat", "同じ地域名が複数あります", dup))
    return out


def contiguity_findings(rows, excused: list[str], islands: dict) -> list[tuple]:
    """Sub-areas in pieces (errors), island exceptions in use and unused (info)."""
    out = []
    for r in rows:
        n = len(r["detached_keys"])
        if n:
            out.append(("CONTIGUITY", "error", (f"{r['name']} is not contiguous: {n} town-blocks are cut off "
                                                "from its main part"), f"{r['name']}がつながっていません（{n}町丁・字が離れています）",
                        r["detached_keys"]))
    if excused:
        out.append(("CONTIGUITY-ISLAND", "info", f"{len(excused)} detached town-blocks are island exceptions",
                    f"離島例外として離れている町丁・字: {len(excused)}", excused))
    unused = sorted(set(islands) - set(excused))
    if unused:
        out.append(("ISLAND-UNUSED", "info", "island exceptions for blocks that are not detached",
                    "離れていない町丁・字に離島例外が付いています", unused))
    return out


def spill_findings(rows, target: float, distance_km: float, min_area_km2: float) -> list[tuple]:
    """Unreached core below the target at L (exact and circle models) and the area floor."""
    out = []
    low = [r["name"] for r in rows if r["n_blocks"] and r["core_share"] < target]
    if low:
        out.append(("SPILL-CORE", "warning", (f"unreached core below {target:.0%} at L = {distance_km:g} km "
                                              "(exact polygon model)"),
                    f"L = {distance_km:g} km で中心部（配信が届かない部分）が{target:.0%}未満（厳密モデル）", low))
    lowc = [r["name"] for r in rows if r["n_blocks"] and r["circle_share"] < target]
    if lowc:
        out.append(("SPILL-CIRCLE", "warning", (f"circle model: unreached share below {target:.0%} at L = "
                                                f"{distance_km:g} km"), f"L = {distance_km:g} km で中心部が{target:.0%}未満（円モデル）", lowc))
    if min_area_km2 > 0:
        small = [r["name"] for r in rows if r["area_km2"] < min_area_km2 - 1e-9]
        if small:
            out.append(("AREA-FLOOR", "error", f"sub-areas below {min_area_km2:g} km²",
                        f"面積が{min_area_km2:g} km²未満の地域があります", small))
    return out


#: drafts (invalid plans) are saved under this suffix, never as a plan
DRAFT_SUFFIX = ".draft.gpkg"


@dataclass(frozen=True)
class PathPolicy:
    """Which files the editor may touch: it reads only ``inputs`` (named on the command
    line) and writes only ``.gpkg`` files inside ``out_dirs`` — never over a town-block
    or comparison input, and over the edited plan only with ``overwrite``."""

    out_dirs: tuple[Path, ...]
    protected: tuple[Path, ...] = ()
    plan_input: Path | None = None

    def output(self, text, *, overwrite: bool = False) -> Path:
        s = str(text or "").strip()
        if not s or "\0" in s or len(s) > 1024:
            raise EditError("BAD-PATH", "give an output file name", "保存先のファイル名を入力してください")
        p = Path(s)
        if not p.is_absolute():
            p = self.out_dirs[0] / p
        p = Path(*p.parts)
        if ".." in p.parts:
            raise EditError("PATH-OUTSIDE", "the output path may not contain '..'", "保存先に .. は使えません", 403)
        if p.suffix.lower() != ".gpkg":
            raise EditError("BAD-PATH", "the output must be a .gpkg file", "保存先は .gpkg ファイルにしてください")
        if p.is_symlink():
            raise EditError("PATH-OUTSIDE", "the output may not be a symbolic link", "シンボリックリンクには保存できません", 403)
        real = p.parent.resolve() / p.name
        if not any(real.parent == d or d in real.parent.parents for d in self.out_dirs):
            raise EditError("PATH-OUTSIDE", f"the editor writes only inside {', '.join(map(str, self.out_dirs))}",
                            "この場所には保存できません（許可されたフォルダの外です）", 403)
        if real in self.protected:
            raise EditError("PATH-INPUT", "that file is an input of this session and is never overwritten",
                            "入力ファイルには上書きできません", 403)
        if real.exists() and not overwrite:
            what = "the plan being edited" if real == self.plan_input else "a file"
            raise EditError("EXISTS", f"{real.name} already exists ({what}); confirm to replace it",
                            f"{real.name} はすでにあります。上書きするには確認してください", 409)
        return real
