"""The planner as a solver object: ``Regionalizer(blocks, k=...).solve()``.

``__init__`` stores the options; :meth:`Regionalizer.solve` checks them, :meth:`fit`
builds everything that does not depend on k (features, block graph, islands, the alert
model), :meth:`cut` makes spanning-tree partitions for one k, :meth:`search_alerts`
improves them (restart by restart, every k in turn), :meth:`score` turns a labelling into
a checked, scored candidate, and :func:`rank_candidates` orders the candidates and picks
the recommended k.

Effort is nested: every random choice of restart r (its tree, the visiting order of each
local search) comes from its own stream (seed, r, …), and a plan replaces a k's best only
when strictly better, so ``restarts = r + 1`` repeats ``restarts = r`` step by step and
adds some: more restarts never give a worse plan. Budgets are counts of evaluations,
never times, so the result does not depend on the machine — unless ``time_budget_s`` is
given, which trades that for a bound on the run time.
"""
from __future__ import annotations

import time

import geopandas as gpd
import numpy as np
import shapely
from scipy.sparse import csgraph

from subdivide.core.constants import MAX_SUBAREAS
from subdivide.core.errors import InfeasibleError, UserError
from subdivide.core.progress import Progress, silent
from subdivide.core.schema import SUBAREA_COLUMN, coerce_townblocks
from subdivide.make.regionalize.candidates import (
    Candidate,
    RegionalizeResult,
    _canonical_labels,
    _check_candidate,
    _plan_from_labels,
    _score,
)
from subdivide.make.regionalize.features import (
    attribute_frame,
    group_ssd,
    objective_matrix,
    standardize,
)
from subdivide.make.regionalize.graph import (
    _build_graph,
    _island_anchors,
    infeasible_reasons,
    nest_edges,
)
from subdivide.make.regionalize.improve import _improve, improve_alerts, recombine
from subdivide.make.regionalize.objective import DEFAULT_SPACING_M, AlertModel
from subdivide.make.regionalize.ranking import rank_candidates
from subdivide.make.regionalize.tree import (
    _greedy_cuts,
    _merges,
    _rooted_tree,
    _splits,
    _tree_weights,
)
from subdivide.model.contiguity import block_adjacency
from subdivide.model.reach import min_area_for_share
from subdivide.model.scenarios import DEFAULT_ALERT_BAND_KM, Scenarios, disc_scenarios

#: log-normal sigmas of the MST weight noise, cycled over restarts (0 = pure MST)
RESTART_SIGMAS = (0.0, 0.35, 1.0, 3.0)
#: core-share retries: the effective area floor is multiplied by these factors in turn
CORE_RETRY_FACTORS = (1.0, 1.2, 1.45, 1.75, 2.1, 2.5)
#: merge-and-split evaluations in a row without a gain before a local search stops
RECOMBINE_STALE = 150
#: objectives the planner can rank by
OBJECTIVES = ("alerts", "compactness")


class Regionalizer:
    """Contiguity-constrained regionalization into k ≤ 14 sub-areas, ranked by the
    residents spared an alert (``objective="alerts"``, default) or by the
    Calinski–Harabasz compactness ratio (``objective="compactness"``, the old ranking).

    Parameters are those of :func:`subdivide.make.regionalize.regionalize`.
    """

    def __init__(self, blocks: gpd.GeoDataFrame, *, k=range(2, MAX_SUBAREAS + 1), min_area_km2: float = 0.0,
                 min_core: float = 0.0, spill_km: float = 2.0, attributes=(), rasters: dict | None = None,
                 follow_old: str | None = None, nest: bool = False, old_penalty: float = 2.0,
                 compactness: float | None = None, seed: int = 0, restarts: int | None = None,
                 improve: bool = True, max_subareas: int = MAX_SUBAREAS, muni_code: str | None = None,
                 time_budget_s: float | None = None, objective: str = "alerts",
                 scenarios: Scenarios | None = None, alert_band_km=DEFAULT_ALERT_BAND_KM,
                 send_share: float = 0.0, margin: float = 0.02, spacing_m: float = DEFAULT_SPACING_M,
                 search_rounds: int = 3, search_moves: int | None = None, search_recombine: int | None = None,
                 search_neighbours: bool = True, progress: Progress = silent):
        self.blocks = blocks
        self.k = k
        self.min_area_km2, self.min_core, self.spill_km = min_area_km2, min_core, spill_km
        self.attributes, self.rasters = attributes, rasters
        self.follow_old, self.nest, self.old_penalty = follow_old, nest, old_penalty
        self.compactness, self.seed, self.restarts, self.improve = compactness, seed, restarts, improve
        self.max_subareas, self.muni_code, self.time_budget_s = max_subareas, muni_code, time_budget_s
        self.objective, self.scenarios, self.alert_band_km = objective, scenarios, alert_band_km
        self.send_share, self.margin, self.spacing_m = send_share, margin, spacing_m
        self.search_rounds, self.search_moves, self.progress = search_rounds, search_moves, progress
        self.search_recombine, self.search_neighbours = search_recombine, search_neighbours

    # ------------------------------------------------------------------ checks
    def _check_options(self) -> list[int]:
        ks = sorted({int(self.k)} if np.isscalar(self.k) else {int(x) for x in self.k})
        if not ks:
            raise UserError("no k was asked", fix="e.g. --k 4 or --k 2-14")
        if self.max_subareas > MAX_SUBAREAS or self.max_subareas < 1:
            raise UserError(f"--max-subareas {self.max_subareas}: the carriers' limit is {MAX_SUBAREAS}",
                            fix=f"use 1–{MAX_SUBAREAS}")
        over = [x for x in ks if x > self.max_subareas or x < 1]
        if over:
            raise UserError(f"k={over} is outside 1–{self.max_subareas} (at most {self.max_subareas} sub-areas)",
                            fix=f"ask for k between 2 and {self.max_subareas}")
        self._check_numbers()
        if self.objective not in OBJECTIVES:
            raise UserError(f"objective {self.objective!r} is not one of {OBJECTIVES}", fix="--objective alerts")
        if self.nest and not self.follow_old:
            raise UserError("--nest needs --follow-old COLUMN", fix="e.g. --follow-old OLD_MUNI --nest")
        return ks

    def _check_numbers(self) -> None:
        _check_number("--min-core", self.min_core, 0, 1, upper_open=True, example="--min-core 0.5")
        _check_number("--min-area-km2", self.min_area_km2, 0, None, example="--min-area-km2 50")
        _check_number("--spill-km", self.spill_km, 0, None, example="--spill-km 2")
        _check_number("--send-share", self.send_share, 0, 1, example="--send-share 0.1")
        _check_number("--margin", self.margin, 0, 1, example="--margin 0.02")
        band = list(self.alert_band_km)
        if not band or any(not np.isfinite(x) or x <= 0 for x in band):
            raise UserError(f"--spill-band {band}: spill distances must be positive km", fix="e.g. --spill-band 2,2.5,3")
        if int(self.seed) != self.seed or self.seed < 0:
            raise UserError(f"--seed {self.seed} must be a whole number ≥ 0", where="--seed", fix="e.g. --seed 0")
        if self.restarts is not None and self.restarts < 1:
            raise UserError(f"--restarts {self.restarts} must be at least 1", where="--restarts", fix="e.g. --restarts 8")

    # ------------------------------------------------------------------ fit
    def fit(self) -> Regionalizer:
        """Everything that does not depend on k."""
        self.ks_ = self._check_options()
        blocks = coerce_townblocks(self.blocks.drop(columns=[SUBAREA_COLUMN], errors="ignore"))
        self.blocks_ = blocks
        self.old_ = self._old_column(blocks)
        self.progress("features", 0, 0)
        self.frame_, self.notes_ = attribute_frame(blocks, self.attributes, self.rasters)
        Z = standardize(self.frame_)
        self.compactness_ = self.compactness
        if self.compactness_ is None:   # a core floor needs compact shapes even with attributes
            self.compactness_ = 1.0 if not Z.shape[1] else (0.5 if self.min_core > 0 else 0.0)
        self.X_, self.Wb_, self.d_attr_ = objective_matrix(blocks, Z, self.compactness_, self.old_,
                                                           self.old_penalty, self.nest)
        self.progress("block graph", 0, 0)
        self.adj_ = block_adjacency(blocks)
        anchor, mainland, self.links_ = _island_anchors(blocks, self.adj_, self.old_ if self.nest else None)
        graph_adj = nest_edges(self.adj_, self.old_) if self.nest else self.adj_
        self.graph_ = _build_graph(self.X_, self.Wb_, blocks.geometry.area.to_numpy(), anchor, mainland, graph_adj)
        order = np.argsort(self.graph_.node_of_block, kind="stable")
        cuts = np.searchsorted(self.graph_.node_of_block[order], np.arange(1, self.graph_.m))
        self.node_blocks_ = np.split(order, cuts)
        self.reasons_ = self._reasons(mainland)
        self.alert_model_ = self._alert_model(blocks) if self.objective == "alerts" else None
        self.extra_graphs_ = self._extra_graphs(anchor, mainland, graph_adj) if self.alert_model_ else []
        return self

    def _extra_graphs(self, anchor, mainland, graph_adj) -> list:
        """Block graphs whose trees give the alert objective other shapes to start from:
        scored on hazard exposure (Σ_s w_s · [H_s touches the block], standardized ×2,
        besides the compactness columns: trees that cut along footprint edges), and on
        centroid coordinates counted per block rather than per km² (SKATER's setting:
        dense centres split from the countryside)."""
        fp = self.alert_model_.footprints
        area = self.blocks_.geometry.area.to_numpy()
        exposure = np.asarray(fp.touched.T @ fp.weights).ravel()
        z = exposure - exposure.mean()
        z = 2.0 * z / (z.std() if z.std() > 0 else 1.0)
        pts = shapely.point_on_surface(self.blocks_.geometry.values)
        xy = np.column_stack([shapely.get_x(pts), shapely.get_y(pts)])
        xy = (xy - xy.mean(axis=0)) / np.where(xy.std(axis=0) > 0, xy.std(axis=0), 1.0)
        hazard = (np.column_stack([z, self.X_]), np.column_stack([np.ones(len(z)), self.Wb_]))
        counted = (xy, np.ones_like(xy))
        return [_build_graph(X, Wb, area, anchor, mainland, graph_adj) for X, Wb in (hazard, counted)]

    def _old_column(self, blocks):
        if not self.follow_old:
            return None
        if self.follow_old not in blocks.columns:
            raise UserError(f"--follow-old column {self.follow_old!r} is not in the town-blocks",
                            fix="e.g. --follow-old OLD_MUNI")
        return blocks[self.follow_old].fillna("").astype(str).to_numpy(dtype=object)

    def _reasons(self, mainland) -> dict[int, str]:
        g = self.graph_
        n_comp, comp = csgraph.connected_components(g.adj, directed=False)
        total_km2 = float(g.area.sum()) / 1e6
        floor_km2 = float(self.min_area_km2)
        core_km2 = float(min_area_for_share(self.min_core, self.spill_km * 1000)) / 1e6 if self.min_core > 0 else 0.0
        self.eff_km2_ = max(floor_km2, core_km2)
        why = (f"{floor_km2:g} km² floor" if floor_km2 >= core_km2 else
               f"core ≥ {self.min_core:.0%} at L = {self.spill_km:g} km needs ≥ {core_km2:.0f} km² each (circle model)")
        small = None
        if self.nest and self.eff_km2_ > 0:
            comp_area = np.bincount(comp, weights=g.area) / 1e6
            low = np.flatnonzero(comp_area[comp] < self.eff_km2_ - 1e-9)
            small = sorted({str(self.old_[np.flatnonzero(mainland)[i]]) for i in low}) or None
        return infeasible_reasons(self.ks_, total_km2=total_km2, eff_km2=self.eff_km2_, why=why,
                                  n_nodes=g.m, n_comp=n_comp, small_old=small)

    def _alert_model(self, blocks) -> AlertModel:
        self.progress("hazard scenarios", 0, 0)
        scen = self.scenarios if self.scenarios is not None else disc_scenarios(blocks, seed=self.seed)
        self.scenarios_ = scen
        return AlertModel.build(blocks, scen, band_km=self.alert_band_km, send_share=self.send_share,
                                spacing_m=self.spacing_m)

    # ------------------------------------------------------------------ cut
    def n_restarts(self) -> int:
        """Spanning trees per k: ``restarts``, else 4."""
        return int(self.restarts) if self.restarts is not None else 4

    def tree(self, r: int):
        """Restart ``r``'s spanning tree: 0 is SKATER's (attribute distance only), then
        border-weighted trees with growing log-normal noise (towards uniformly random
        spanning trees). Each restart draws from its own stream (seed, restart), so
        restart r is the same whatever the number of restarts asked."""
        g = self.graph_
        if r == 0:
            return _rooted_tree(g, _tree_weights(g, None, 0.0, border=False))
        rng = np.random.default_rng(np.random.SeedSequence([int(self.seed), 1, int(r)]))
        return _rooted_tree(g, _tree_weights(g, rng, RESTART_SIGMAS[(r - 1) % len(RESTART_SIGMAS)], border=True))

    def extra_trees(self) -> list:
        """Trees of the hazard-exposure and per-block-coordinate graphs (alert objective)."""
        return [_rooted_tree(h, _tree_weights(h, None, 0.0, border=bd)) for h in self.extra_graphs_
                for bd in (False, True)]

    def cut(self, x: int, floor_m2: float, trees: list) -> list[tuple[float, np.ndarray]]:
        """Tree partitions into x parts (node labels) with their SSD, in tree order."""
        g = self.graph_
        out = []
        for t in trees:
            lab = _greedy_cuts(t, x, floor_m2)
            if lab is not None:
                out.append((group_ssd(lab, g.W, g.S, g.Q, x), lab))
        return out

    # ------------------------------------------------------------------ search
    def _compact_tops(self, x, found, n_keep, floor_m2, deadline) -> list[np.ndarray]:
        """The best ``n_keep`` distinct tree cuts by SSD, polished by SSD boundary moves;
        sorted by SSD."""
        g = self.graph_
        tops = _distinct(sorted(found, key=lambda p: p[0]), n_keep)
        if self.improve:
            tops = [_improve(g, lab, x, floor_m2, deadline=deadline) for lab in tops]
        scored = sorted(((group_ssd(lab, g.W, g.S, g.Q, x), i, lab) for i, lab in enumerate(tops)),
                        key=lambda p: (p[0], p[1]))
        return [lab for _, _, lab in scored]

    def _spared(self, lab_nodes: np.ndarray, x: int) -> float:
        """Expected spared share of a node labelling (from scratch)."""
        return self.alert_model_.value(lab_nodes[self.graph_.node_of_block], x)

    def _partial(self, lab_nodes: np.ndarray, free_nodes: np.ndarray, x: int):
        """A scorer of node labellings that differ from ``lab_nodes`` only on ``free_nodes``."""
        nob = self.graph_.node_of_block
        ev = self.alert_model_.partial(lab_nodes[nob], free_nodes[nob], x)
        return lambda L: ev.value(L[nob])

    def _polish(self, lab: np.ndarray, x: int, floor_m2: float, stream: tuple, deadline) -> np.ndarray:
        """Local search on the alert objective from ``lab``: boundary-block moves, then
        merge-and-split passes (each with new random trees) until ``RECOMBINE_STALE``
        evaluations in a row find nothing better or the evaluation budget is spent; block
        moves again after every change. Random choices come from the attempt's own
        stream."""
        if not self.improve:
            return lab
        g = self.graph_
        rng = np.random.default_rng(np.random.SeedSequence([int(self.seed), 2, *map(int, stream)]))
        evals, fruitless, moved = self._recombine_budget(), 0, True
        while True:
            if moved:
                state = self.alert_model_.state(lab[g.node_of_block], x)
                lab = improve_alerts(state, g, lab, x, floor_m2, self.node_blocks_, rng,
                                     max_rounds=self.search_rounds, max_moves=self._move_budget(), deadline=deadline)
            if evals <= 0 or fruitless >= RECOMBINE_STALE or (deadline is not None and time.perf_counter() > deadline):
                return lab
            new, _, used = recombine(g, lab, x, floor_m2, lambda L: self._spared(L, x),
                                     lambda L, free: self._partial(L, free, x), rng, max_evals=evals)
            evals -= max(used, 1)
            moved = not np.array_equal(new, lab)
            fruitless = 0 if moved else fruitless + max(used, 1)    # unchanged: the next pass draws other trees
            lab = new

    def _recombine_budget(self) -> int:
        """Merge-and-split evaluations per polished plan: ``search_recombine``, else
        30,000 / (n × the number of k searched), at least 24: a small graph searched for
        few k needs many passes; with many k, refinements and coarsenings of the
        neighbouring plans do much of the work, and large graphs spend their effort on the
        restarts."""
        if self.search_recombine is not None:
            return int(self.search_recombine)
        return max(24, 30_000 // (max(self.graph_.m, 1) * max(self.n_searched_, 1)))

    def _move_budget(self) -> int:
        """Alert moves evaluated per local search: ``search_moves``, else 50 + n/100 (short
        searches from many starts beat long ones from few)."""
        return int(self.search_moves) if self.search_moves is not None else 50 + self.graph_.m // 100

    def search_alerts(self, ks: list[int], floor_m2: float, deadline) -> dict[int, _Pool]:
        """Best plans per k under the alert objective, effort nested in the restarts.

        Round 0 starts from the cuts of SKATER's tree (raw and polished by SSD moves: the
        compactness plan) and of the hazard/coordinate trees; round r ≥ 1 from the cut
        of restart r's tree. In each round, k by k ascending, the best start is polished
        (:meth:`_polish`), and so is the best refinement of the best (k−1)-plan and the
        best coarsening of the best (k+1)-plan whenever those changed since k last used
        them. Every polished plan enters k's pool, which keeps the best by expected
        spared share (earlier plans win ties). Each step depends only on the steps before
        it, so ``restarts = r + 1`` repeats every step of ``restarts = r`` and adds some:
        more restarts never give a worse plan (without a time budget).
        """
        pools = {x: _Pool(4 if self.min_core > 0 else 1) for x in ks}
        self.n_searched_ = len(ks)
        self.found_ = {x: [] for x in ks}       # restart-tree cuts (SSD, labels)
        self.compact_ = {}                      # k → the compactness plan (round 0)
        used = {}                               # (x, neighbour k) → the neighbour's best when last used
        tried = {x: set() for x in ks}          # starts already polished, per k
        extra = self.extra_trees()
        for r in range(self.n_restarts()):
            if r > 0 and deadline is not None and time.perf_counter() > deadline:
                break
            tree = self.tree(r)
            for j, x in enumerate(ks):
                self.progress(f"partitions (restart {r + 1})", j, len(ks))
                own = self.cut(x, floor_m2, [tree])
                self.found_[x] += own
                starts = [lab for _, lab in own]
                if r == 0:
                    if own:       # the compactness plan: SKATER's cut polished by SSD moves
                        self.compact_[x] = _improve(self.graph_, own[0][1], x, floor_m2, deadline=deadline) \
                            if self.improve else own[0][1]
                        starts.append(self.compact_[x])
                    starts += [lab for _, lab in self.cut(x, floor_m2, extra)]
                if starts:
                    best = max(range(len(starts)), key=lambda i: (self._spared(starts[i], x), -i))
                    self._try(pools[x], tried[x], starts[best], x, floor_m2, (r, x, 0), deadline)
                for y, make in ((x - 1, lambda lab, y=x - 1: _splits(self.graph_, lab, y, floor_m2)),
                                (x + 1, lambda lab: _merges(self.graph_, lab))):
                    if y not in pools or pools[y].best is None or used.get((x, y)) is pools[y].best:
                        continue
                    used[(x, y)] = pools[y].best
                    cands = make(pools[y].best)
                    if cands:
                        best = max(range(len(cands)), key=lambda i: (self._spared(cands[i], x), -i))
                        self._try(pools[x], tried[x], cands[best], x, floor_m2, (r, x, 1 + (y > x)), deadline)
        return pools

    def _try(self, pool: _Pool, tried: set, start: np.ndarray, x: int, floor_m2: float, stream: tuple,
             deadline) -> None:
        """Polish ``start`` into the pool, unless the same start was polished before."""
        key = start.tobytes()
        if key not in tried:
            tried.add(key)
            pool.add(self, x, self._polish(start, x, floor_m2, stream, deadline))

    # ------------------------------------------------------------------ score
    def score(self, x: int, lab_nodes: np.ndarray, comp_spared: float) -> Candidate:
        """A node labelling → a checked Plan with every figure of the candidates table."""
        blocks = self.blocks_
        lab = _canonical_labels(lab_nodes[self.graph_.node_of_block], blocks["key"].to_numpy())
        plan = _plan_from_labels(blocks, lab, self.adj_, self.old_, self.muni_code, self.max_subareas,
                                 dict(self.meta_, k=x))
        area, core, viol = _check_candidate(plan, floor_km2=float(self.min_area_km2), min_core=self.min_core,
                                            spill_m=self.spill_km * 1000.0, old=self.old_, nest=self.nest)
        cand = _score(plan, x, self.X_, self.Wb_, self.d_attr_, self.old_, area, core, viol, self.spill_km * 1000.0)
        if self.alert_model_ is not None:
            sub = plan.blocks[SUBAREA_COLUMN].to_numpy() - 1
            cand = Candidate(**{**cand.__dict__, "alerts": self.alert_model_.score(sub, x),
                                "compactness_plan_spared": comp_spared})
        return cand

    # ------------------------------------------------------------------ solve
    def solve(self) -> RegionalizeResult:
        t0 = time.perf_counter()
        self.fit()
        self.meta_ = self._meta()
        todo = [x for x in self.ks_ if x not in self.reasons_]
        if not todo:
            raise InfeasibleError("no requested k is feasible:\n" + "\n".join(f"  {self.reasons_[x]}" for x in self.ks_),
                                  fix="lower --min-area-km2 / --min-core (or --spill-km, if justified), "
                                      "or ask for fewer sub-areas")
        deadline = None if self.time_budget_s is None else t0 + float(self.time_budget_s)
        candidates = self._solve_all(todo, deadline)
        for x in self.ks_:
            if x not in candidates:
                why = self.reasons_.get(x, f"no contiguous partition into {x} sub-areas meeting the floor was found")
                candidates[x] = Candidate(x, None, np.nan, np.nan, np.nan, np.nan, np.nan, False, (why,), np.nan)
        baseline = self.alert_model_.whole_municipality() if self.alert_model_ is not None else None
        ranked, summary = rank_candidates(list(candidates.values()), objective=self.objective, margin=self.margin,
                                          baseline=baseline)
        result = RegionalizeResult(ranked, self.links_, self.frame_.assign(key=self.blocks_["key"].to_numpy()),
                                   dict(self.meta_, notes=self.notes_, summary=summary,
                                        runtime_s=round(time.perf_counter() - t0, 3)))
        if not any(c.feasible for c in ranked):
            raise InfeasibleError("no requested k could be met:\n" + "\n".join(
                f"  k={c.k}: {'; '.join(c.violations)}" for c in sorted(ranked, key=lambda c: c.k)),
                fix="lower the floors or ask for fewer sub-areas" + (" (or drop --nest)" if self.nest else ""))
        self.progress("regionalize", 1, 1)
        return result

    def _solve_all(self, todo: list[int], deadline) -> dict[int, Candidate]:
        candidates: dict[int, Candidate] = {}
        last_fail: dict[int, Candidate] = {}
        pending = list(todo)
        for factor in (CORE_RETRY_FACTORS if self.min_core > 0 else (1.0,)):
            if not pending:
                break
            floor_m2 = self.eff_km2_ * 1e6 * factor
            self.progress(f"partitions (floor ×{factor:g})", 0, len(pending))
            plans = (self._alert_plans if self.alert_model_ is not None else self._compact_plans)(
                pending, floor_m2, deadline)
            for x in pending:
                labs, comp_spared = plans.get(x, ([], np.nan))
                for lab in labs:      # best first; the first that passes the checker wins
                    cand = self.score(x, lab, comp_spared)
                    if cand.feasible:
                        candidates[x] = cand
                        break
                    if x not in last_fail or cand.min_core_share > last_fail[x].min_core_share:
                        last_fail[x] = cand
            pending = [x for x in pending if x not in candidates]
        return {**last_fail, **candidates}

    def _alert_plans(self, ks: list[int], floor_m2: float, deadline) -> dict:
        """k → (labellings to try, best first; the compactness plan's spared share)."""
        helpers = set()
        if self.search_neighbours:     # k ± 1 feed refinements and coarsenings to k
            helpers = {y for x in ks for y in (x - 1, x + 1)
                       if 2 <= y <= min(self.max_subareas, self.graph_.m) and y not in self.reasons_} - set(ks)
        pools = self.search_alerts(sorted(set(ks) | helpers), floor_m2, deadline)
        out = {}
        for x in ks:
            comp_spared = self._spared(self.compact_[x], x) if x in self.compact_ else np.nan
            # with a core floor the most compact shapes are fallbacks when no alert plan passes
            comp = self._compact_tops(x, self.found_[x], 4, floor_m2, deadline) if self.min_core > 0 else []
            labs = pools[x].labs + comp
            if labs:
                out[x] = (labs, comp_spared)
        return out

    def _compact_plans(self, ks: list[int], floor_m2: float, deadline) -> dict:
        """The compactness objective (earlier versions' search): all restart trees cut,
        plus the best (k−1)-plan's sub-areas split along their own trees; the best cuts by
        SSD polished by SSD moves."""
        g = self.graph_
        trees = [self.tree(r) for r in range(self.n_restarts())]
        n_keep = 4 if self.min_core > 0 else 2
        out, prev = {}, None
        for j, x in enumerate(ks):
            self.progress("partitions", j, len(ks))
            forests = list(trees)
            if prev is not None and prev[0] == x - 1:
                forests += [_rooted_tree(g, _tree_weights(g, None, 0.0, border=bd, keep=prev[1]))
                            for bd in (False, True)]
            tops = self._compact_tops(x, self.cut(x, floor_m2, forests), n_keep, floor_m2, deadline)
            if tops:
                out[x], prev = (tops, np.nan), (x, tops[0])
        return out

    def _meta(self) -> dict:
        meta = {"method": "spanning-tree partition + local improvement (subdivide.make.regionalize)",
                "objective": self.objective, "seed": int(self.seed), "attributes": list(self.frame_.columns),
                "min_area_km2": float(self.min_area_km2), "min_core": float(self.min_core),
                "spill_km": float(self.spill_km), "follow_old": self.follow_old or "", "nest": bool(self.nest),
                "old_penalty": float(self.old_penalty), "compactness": float(self.compactness_)}
        if self.alert_model_ is not None:
            meta.update({"scenarios": self.scenarios_.source, "n_scenarios": len(self.scenarios_),
                         "alert_band_km": list(self.alert_model_.band_km), "send_share": float(self.send_share),
                         "margin": float(self.margin)})
        return meta


class _Pool:
    """The best plans found for one k by expected spared share; a plan replaces another
    only when better by more than 1e-12 (earlier plans win ties)."""

    def __init__(self, size: int):
        self.size, self.items = size, []          # (value, labelling), best first

    def add(self, reg: Regionalizer, x: int, lab: np.ndarray) -> None:
        v = reg._spared(lab, x)
        if any(np.array_equal(lab, other) for _, other in self.items):
            return
        i = 0
        while i < len(self.items) and self.items[i][0] >= v - 1e-12:
            i += 1
        self.items.insert(i, (v, lab))
        del self.items[self.size:]

    @property
    def best(self) -> np.ndarray | None:
        return self.items[0][1] if self.items else None

    @property
    def labs(self) -> list[np.ndarray]:
        return [lab for _, lab in self.items]


def _distinct(found, n: int) -> list[np.ndarray]:
    seen, tops = set(), []
    for obj, lab in found:
        if round(obj, 9) not in seen:
            seen.add(round(obj, 9))
            tops.append(lab)
        if len(tops) == n:
            break
    return tops


def _check_number(option: str, value, lo: float, hi: float | None, *, upper_open: bool = False,
                  example: str) -> None:
    """A finite number in [lo, hi] (or [lo, hi)), else a UserError naming the option."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    bad = not np.isfinite(v) or v < lo or (hi is not None and (v >= hi if upper_open else v > hi))
    if bad:
        rng = f"{lo:g}–{hi:g}" if hi is not None else f"≥ {lo:g}"
        raise UserError(f"{option} {value!r} must be a number {rng}", where=option, fix=f"e.g. {example}")
