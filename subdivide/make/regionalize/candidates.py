"""Candidates: a labelling made into a checked Plan, named, scored; the ranked result."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from subdivide.core.errors import InfeasibleError, UserError
from subdivide.core.schema import SUBAREA_COLUMN
from subdivide.make.regionalize.features import group_ssd
from subdivide.model.contiguity import parts_per_group
from subdivide.model.plan import Plan, default_subarea_name
from subdivide.model.reach import core_share

#: column → bilingual label for officers (English｜日本語); compactness figures come last
LABELS = {
    "rank": "rank｜順位", "k": "sub-areas｜地域数", "recommended": "recommended｜推奨",
    "feasible": "meets the rules｜条件を満たす",
    "spared_share_mean": "residents spared per event, mean over L｜1回の配信で受信しない住民の割合（平均）",
    "spared_share_worst": "…worst L｜同（最悪のL）",
    "alerts_per_event": "people alerted per event｜1回あたりの受信者数",
    "over_alert": "alerted outside the hazard per event｜危険区域外の受信者数",
    "missed": "in danger but not alerted｜危険区域内の未受信者数",
    "min_core_share": "smallest unreached core｜最小の非到達コア割合",
    "core_shares": "unreached core per sub-area｜地域ごとの非到達コア割合",
    "min_area_km2": "smallest sub-area km²｜最小面積 km²",
    "compactness_plan_spared": "spared by the compactness plan｜コンパクト案の割合",
    "objective": "compactness objective", "ssd": "ssd", "ch_score": "ch_score",
    "old_mixing": "旧市町村 mixing", "violations": "problems｜違反",
}


@dataclass(frozen=True)
class Candidate:
    """The best plan found for one k, with its scores and the constraints it meets."""

    k: int
    plan: Plan | None
    objective: float            # SSD on the full objective matrix (attributes + penalties)
    ssd: float                  # SSD of the standardized attributes alone
    old_mixing: float           # blocks outside their sub-area's 旧市町村 (impurity), 0 if unused
    min_area_km2: float
    min_core_share: float
    feasible: bool
    violations: tuple[str, ...]
    ch_score: float             # Calinski–Harabasz ratio (higher is better)
    rank: int = 0
    alerts: object = None       # AlertScore of this plan (None without the alert objective)
    core_shares: tuple = ()     # unreached core share per sub-area at the spill distance
    compactness_plan_spared: float = np.nan   # spared share of the compactness plan (SKATER cut + SSD moves)
    recommended: bool = False

    @property
    def spared(self) -> float:
        return self.alerts.mean if self.alerts is not None else np.nan

    def row(self) -> dict:
        return {"rank": self.rank, "k": self.k, "recommended": self.recommended, "feasible": self.feasible,
                **_alert_figures(self.alerts),
                "min_core_share": round(self.min_core_share, 4),
                "core_shares": " ".join(f"{c:.2f}" for c in self.core_shares),
                "min_area_km2": round(self.min_area_km2, 3),
                "compactness_plan_spared": round(float(self.compactness_plan_spared), 4),
                "objective": round(self.objective, 6), "ssd": round(self.ssd, 6),
                "ch_score": round(self.ch_score, 6), "old_mixing": round(self.old_mixing, 6),
                "violations": "; ".join(self.violations)}


def _alert_figures(a) -> dict:
    if a is None:
        return dict.fromkeys(("spared_share_mean", "spared_share_worst", "alerts_per_event", "over_alert",
                              "missed"), np.nan)
    return {"spared_share_mean": round(a.mean, 4) + 0.0, "spared_share_worst": round(a.worst, 4) + 0.0,
            "alerts_per_event": round(float(np.mean(a.recipients)), 1),
            "over_alert": round(float(np.mean(a.over_alert)), 1), "missed": round(float(np.mean(a.missed)), 1)}


@dataclass
class RegionalizeResult:
    """Ranked candidates (feasible first, best score first) and what was attached."""

    candidates: list[Candidate]
    island_links: pd.DataFrame            # key, anchor_key, distance_m
    features: pd.DataFrame                # raw attribute values used (per block, key order)
    options: dict = field(default_factory=dict)

    @property
    def table(self) -> pd.DataFrame:
        return pd.DataFrame([c.row() for c in self.candidates], columns=list(LABELS))

    def report_table(self) -> pd.DataFrame:
        """The candidates table with bilingual column labels (for officers); columns
        with no value at all (the alert figures under the compactness objective) left out."""
        t = self.table
        return t.loc[:, t.notna().any() | (t.columns == "violations")].rename(columns=LABELS)

    @property
    def curve(self) -> pd.DataFrame:
        """Spared share vs k (feasible candidates, k ascending)."""
        t = self.table[self.table["feasible"]].sort_values("k")
        return t[["k", "spared_share_mean", "spared_share_worst", "alerts_per_event", "min_core_share"]]

    @property
    def recommended_k(self) -> int | None:
        for c in self.candidates:
            if c.recommended:
                return c.k
        return None

    @property
    def summary(self) -> str:
        return self.options.get("summary", "")

    @property
    def recommended(self) -> Plan:
        """The recommended plan (the smallest k within the margin of the best)."""
        for c in self.candidates:
            if c.recommended:
                return c.plan
        return self.best

    @property
    def best(self) -> Plan:
        for c in self.candidates:
            if c.feasible:
                return c.plan
        raise InfeasibleError("no candidate meets the constraints",
                              fix="lower --min-area-km2 / --min-core, or ask for fewer sub-areas")

    def pick(self, k: int) -> Plan:
        for c in self.candidates:
            if c.k == k:
                if not c.feasible:
                    raise InfeasibleError(f"the k={k} candidate breaks the constraints: "
                                          + "; ".join(c.violations),
                                          fix="pick a feasible k from the candidates table")
                return c.plan
        raise UserError(f"k={k} was not among the candidates {[c.k for c in self.candidates]}",
                        fix="include it in --k")



#: a leading 町/村 name shared by at least this many town-blocks is a place (旧町村, 大字 …)
MIN_PREFIX_BLOCKS = 5
_CHOME = re.compile(r"[0-9０-９一二三四五六七八九十]+丁目$")
_CHIWARI = re.compile(r"第?[0-9０-９一二三四五六七八九十]+地割$")


def place_names(names) -> np.ndarray:
    """The place residents would name for each town-block: a leading name ending in 町 or
    村 that many blocks share (鳥取市's 鹿野町…, 青谷町…, 佐治町… are former towns),
    else the 大字: the name without its 字…, 第N地割 or N丁目 part (湯口字志戸平 → 湯口,
    大瀬川第１地割 → 大瀬川); a name that would shrink to one character stays whole."""
    raw = [unicodedata.normalize("NFC", str(n or "").strip()) for n in names]
    prefix = [_town_prefix(n) for n in raw]
    counts = pd.Series([p for p in prefix if p]).value_counts()
    out = []
    for n, p in zip(raw, prefix):
        if p and counts.get(p, 0) >= MIN_PREFIX_BLOCKS:
            out.append(p)
            continue
        oaza = _CHIWARI.sub("", _CHOME.sub("", n.split("字", 1)[0] if n.find("字") > 0 else n))
        out.append(oaza if len(oaza) >= 2 else n)
    return np.asarray(out, dtype=object)


def _town_prefix(name: str) -> str:
    i = min((j for j in (name.find("町"), name.find("村")) if j > 0), default=-1)
    return name[:i + 1] if i > 0 else ""


def _names_for(blocks: gpd.GeoDataFrame, sub: np.ndarray, old: np.ndarray | None) -> dict:
    """Unique sub-area names in the 「●●地域」 form. Each sub-area's first choice is its
    dominant 旧市町村 (most blocks) when known, else the place (:func:`place_names`)
    holding most of its residents; then the other places it holds most of the residents
    of, by residents. A name wanted by several sub-areas goes to the one with most
    residents there (lowest number on ties), the others take their next choice; one with
    no choice left gets its first choice numbered (「月本2地域」). Names are compared
    as written on the plan, after :func:`default_subarea_name` (月本町 and 月本村 are
    both 月本地域)."""
    df = pd.DataFrame({"sub": sub, "pop": blocks["population"].to_numpy(dtype="float64"),
                       "place": place_names(blocks["name"].to_numpy())})
    by_place = df[df["place"] != ""].groupby(["sub", "place"], sort=True)["pop"].sum().reset_index()
    # a place is another choice only for the sub-area holding most of its residents
    holder = (by_place.sort_values(["place", "pop", "sub"], ascending=[True, False, True], kind="stable")
              .drop_duplicates("place").set_index("place")["sub"])
    ranked = by_place.sort_values(["sub", "pop", "place"], ascending=[True, False, True], kind="stable")
    first = ranked.drop_duplicates("sub").set_index("sub")
    if old is not None:
        df["old"] = old
        n = (df.groupby(["sub", "old"], sort=True)["pop"].agg(["size", "sum"]).reset_index()
               .sort_values(["sub", "size", "old"], ascending=[True, False, True], kind="stable")
               .drop_duplicates("sub").set_index("sub"))
        first = pd.DataFrame({"place": n["old"], "pop": n["sum"]})
    choices: dict = {}
    for s_ in sorted(set(np.asarray(sub).tolist())):
        opts = []
        if s_ in first.index and str(first.loc[s_, "place"]):
            opts.append((str(first.loc[s_, "place"]), float(first.loc[s_, "pop"])))
        mine = ranked[(ranked["sub"] == s_) & (ranked["place"].map(holder) == s_)]
        opts += [(str(p), float(w)) for p, w in zip(mine["place"], mine["pop"])]
        seen, out = set(), []
        for raw, w in opts:
            name = default_subarea_name(raw)
            if name not in seen and name != "地域":
                seen.add(name)
                out.append((name, w))
        choices[s_] = out
    names: dict = {}
    taken: set = set()
    pending = sorted(choices)
    while pending:
        wants: dict = {}
        for s_ in pending:
            nxt = next(((n_, w) for n_, w in choices[s_] if n_ not in taken), None)
            if nxt is not None:
                wants.setdefault(nxt[0], []).append((-nxt[1], s_))
        if not wants:
            break
        for name, bids in sorted(wants.items()):
            winner = min(bids)[1]
            names[winner] = name
            taken.add(name)
        pending = [s_ for s_ in pending if s_ not in names]
    for s_ in pending:                      # nothing left: the first choice, numbered
        base = choices[s_][0][0].removesuffix("地域") if choices[s_] else f"第{s_}"
        i = 1 if not choices[s_] else 2
        name = default_subarea_name(base) if i == 1 else f"{base}{i}地域"
        while name in taken:
            i += 1
            name = f"{base}{i}地域"
        names[s_] = name
        taken.add(name)
    return dict(sorted(names.items()))


def _plan_from_labels(blocks, labels_blocks, adj_blocks, old, muni_code, max_subareas, metadata):
    sub = labels_blocks + 1
    parts = parts_per_group(adj_blocks, sub)
    islands = blocks["key"].to_numpy()[parts["detached"].to_numpy()]
    names = _names_for(blocks, sub, old)
    assignment = pd.Series(sub, index=blocks["key"].to_numpy())
    return Plan.from_assignment(blocks, assignment, muni_code=muni_code, names=names,
                                island_exceptions=sorted(islands), max_subareas=max_subareas,
                                metadata=metadata, block_graph=adj_blocks)


def _check_candidate(plan: Plan, *, floor_km2, min_core, spill_m, old, nest):
    m = plan.metrics
    area = m["area_km2"].to_numpy()
    core = core_share(plan.dissolved.geometry.values, spill_m) if min_core > 0 else np.full(plan.k, np.nan)
    violations = []
    if floor_km2 > 0 and np.any(area < floor_km2 - 1e-9):
        bad = m.loc[area < floor_km2 - 1e-9, "name"].tolist()
        violations.append(f"area below {floor_km2:g} km²: {bad}")
    if min_core > 0 and np.any(core < min_core - 1e-9):
        bad = [f"{n} {c:.0%}" for n, c in zip(m["name"], core) if c < min_core - 1e-9]
        violations.append(f"core share below {min_core:.0%} at L={spill_m / 1000:g} km: {bad}")
    if nest and old is not None:
        mixed = pd.Series(old).groupby(plan.blocks[SUBAREA_COLUMN].to_numpy()).nunique()
        if (mixed > 1).any():
            violations.append(f"sub-areas {list(mixed.index[mixed > 1])} cross 旧市町村 lines")
    return area, core, violations



def _canonical_labels(lab: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Relabel 0..k-1 by the smallest key in each group (blocks are in key order, so by
    first occurrence): labels then do not depend on tree internals."""
    _, first = np.unique(lab, return_index=True)
    order = np.argsort(first, kind="stable")
    remap = np.empty(lab.max() + 1, dtype=np.int64)
    remap[np.unique(lab)[order]] = np.arange(len(order))
    return remap[lab]


def _score(plan: Plan, k: int, X, Wb, d_attr, old, area, core, violations, spill_m) -> Candidate:
    sub = plan.blocks[SUBAREA_COLUMN].to_numpy() - 1

    def ssd_matrix(M, Wm):
        if M.shape[1] == 0:
            return 0.0, 0.0
        within = group_ssd(sub, Wm, Wm * M, Wm * M ** 2, k)
        tot = group_ssd(np.zeros(len(sub), dtype=np.int64), Wm, Wm * M, Wm * M ** 2, 1)
        return within, tot

    obj, sst = ssd_matrix(X, Wb)
    ssd, _ = ssd_matrix(X[:, :d_attr], Wb[:, :d_attr])
    n = len(sub)
    ch = ((sst - obj) / max(k - 1, 1)) / (obj / max(n - k, 1)) if obj > 0 else np.inf
    mixing = 0.0
    if old is not None:
        c = pd.crosstab(sub, old)
        mixing = float((c.sum(axis=1) - c.max(axis=1)).sum())
    if not np.isfinite(core).any():
        core = approx_core_share(plan.dissolved.geometry.values, spill_m)
    return Candidate(k, plan, obj, ssd, mixing, float(np.min(area)), float(np.nanmin(core)),
                     not violations, tuple(violations), float(ch), core_shares=tuple(np.round(core, 4)))


def approx_core_share(geoms, spill_m: float) -> np.ndarray:
    """Core share for the candidates table when no core floor is asked: the geometry is
    first simplified by L/40 (50 m at L = 2 km), which moves the boundary by at most that
    much, and costs a fraction of the exact inward buffer on jagged outlines. Floors are
    always checked with the exact :func:`spill.core_share`."""
    tol = max(float(spill_m) / 40.0, 0.0)
    simple = shapely.simplify(np.asarray(geoms), tol, preserve_topology=True) if tol > 0 else np.asarray(geoms)
    return core_share(simple, spill_m)

