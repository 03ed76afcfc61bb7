"""The reception model: how likely a handset outside a sub-area receives its messages.

P(receive | d) = σ((L − d) / s + terms), with d (km) the distance from the handset to the
sending sub-area (d > 0 outside it), L the distance at which P = 0.5 (the threshold view
of the spill distance), s > 0 the softness (km) and optional technology and city terms.
Each term shifts L by a number of kilometres (sum-to-zero coding: L is the average
technology / city, a city the model has not seen is predicted with the average).

In the natural logistic parameters η = β0 + β1·d + γ·(dummies), with β1 = −1/s,
β0 = L/s and γ = shift/s, the log-likelihood is concave and every quantity reported
(L, s, each shift, L of one level) is fixed by one *linear* constraint on β, so each
profile likelihood is itself a concave maximisation: intervals are profile-likelihood
intervals, found by root-finding on the profile (scipy.optimize).

Only **between-area pairs** count (:func:`between_area_pairs`): a handset inside the
sending area receives by design, and counting it at d = 0 inflates L.

Honesty rules:

- no received pair: L is *not identifiable* (its likelihood keeps growing as L → −∞);
  the fit says so, gives only an upper bound, and predicts P ≈ 0;
- no non-received pair: the same the other way;
- every received pair nearer than every non-received one (separation): s sits at its
  lower bound ``min_scale_km`` (the positional error of the inputs); the fit says so.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from subdivide.core.errors import UserError

TECHNOLOGIES = ("3G", "LTE", "5G")
#: hard 0/1 predictions are scored for log loss as LOGLOSS_EPS / 1 − LOGLOSS_EPS
LOGLOSS_EPS = 1e-3
L_BOUNDS_KM = (-20.0, 60.0)
SHIFT_BOUNDS_KM = (-30.0, 30.0)
ETA_BOUND = 2000.0


# ====================================================================== which pairs count
def between_area_pairs(obs: pd.DataFrame, *, distance_column: str = "distance_km") -> pd.DataFrame:
    """The one rule for the pairs a reception model sees: the pairs whose point lies
    *outside* the sending area. A pair is own-area when its ``own_area`` column says so
    (the trial's file) or, without that column, when the point lies inside the sending
    area (distance 0). Rows without a finite distance are dropped."""
    d = pd.to_numeric(obs[distance_column], errors="coerce").to_numpy(float)
    keep = ~own_area_mask(obs, distance_column=distance_column) & np.isfinite(d)
    return obs[keep].reset_index(drop=True)


def own_area_mask(obs: pd.DataFrame, *, distance_column: str = "distance_km") -> np.ndarray:
    """True for own-area pairs: flagged ``own_area``, or (without that column) distance 0."""
    if "own_area" in obs.columns:
        return _as_bool(obs["own_area"]).to_numpy()
    return pd.to_numeric(obs[distance_column], errors="coerce").to_numpy(float) == 0


def _as_bool(s: pd.Series) -> pd.Series:
    if s.dtype == bool:
        return s
    m = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False, "": False}
    return s.astype(str).str.strip().str.lower().map(m).fillna(False).astype(bool)


# ====================================================================== the likelihood
def _loglik(beta, X, y):
    eta = X @ beta
    ll = float(np.sum(y * eta - np.logaddexp(0.0, eta)))
    grad = X.T @ (y - _sigmoid(eta))
    return ll, grad


def _sigmoid(eta):
    return np.exp(-np.logaddexp(0.0, -eta))


def _maximise(X, y, bounds, fixed: dict | None = None, start=None):
    """max ll(β) over the box ``bounds`` with β_j = Σ c_i β_i + r for (j → (c, r)) in
    ``fixed`` (linear constraints, one eliminated coordinate each; c_j = 0). Returns
    (ll, β). Projected Newton: the problem is a concave logistic regression, so a few
    exact Newton steps with a backtracking line search converge."""
    p = X.shape[1]
    fixed = fixed or {}
    free = np.array([i for i in range(p) if i not in fixed], dtype=np.int64)
    Z = X[:, free].copy()
    off = np.zeros(len(y))
    for j, (c, r) in fixed.items():
        Z += np.outer(X[:, j], c[free])
        off += X[:, j] * r
    lo = np.array([bounds[i][0] for i in free], float)
    hi = np.array([bounds[i][1] for i in free], float)
    b = np.clip(np.zeros(len(free)) if start is None else np.asarray(start, float)[free], lo, hi)

    def ll_of(b):
        eta = Z @ b + off
        return float(np.sum(y * eta - np.logaddexp(0.0, eta))), eta

    ll, eta = ll_of(b)
    for _ in range(200):
        pr = _sigmoid(eta)
        g = Z.T @ (y - pr)
        H = (Z * (pr * (1 - pr))[:, None]).T @ Z + 1e-10 * np.eye(len(b))
        stuck = ((b <= lo) & (g < 0)) | ((b >= hi) & (g > 0))
        act = ~stuck
        step = np.zeros(len(b))
        if act.any():
            try:
                step[act] = np.linalg.solve(H[np.ix_(act, act)], g[act])
            except np.linalg.LinAlgError:
                step[act] = np.linalg.lstsq(H[np.ix_(act, act)], g[act], rcond=None)[0]
        t, improved = 1.0, False
        for _ in range(60):
            nb = np.clip(b + t * step, lo, hi)
            nll, neta = ll_of(nb)
            if nll >= ll - 1e-12:
                improved = True
                break
            t *= 0.5
        if not improved:
            break
        moved = float(np.max(np.abs(nb - b))) if len(b) else 0.0
        gain = nll - ll
        b, ll, eta = nb, nll, neta
        if gain < 1e-11 and moved < 1e-7:
            break
    beta = np.zeros(p)
    beta[free] = b
    for j, (c, r) in fixed.items():
        beta[j] = float(c @ beta) + r
    return ll, beta


# ====================================================================== design
@dataclass(frozen=True)
class _Design:
    technologies: tuple     # levels (empty when no technology term)
    cities: tuple           # levels (empty when no city term)

    @property
    def names(self) -> list[str]:
        return (["intercept", "slope"] + [f"technology:{t}" for t in self.technologies[:-1]]
                + [f"city:{c}" for c in self.cities[:-1]])

    def matrix(self, d, technology=None, city=None) -> np.ndarray:
        d = np.asarray(d, float)
        cols = [np.ones_like(d), d]
        cols += _sum_to_zero(self.technologies, technology, len(d), "technology")
        cols += _sum_to_zero(self.cities, city, len(d), "city")
        return np.column_stack(cols)


def _sum_to_zero(levels, values, n, what) -> list[np.ndarray]:
    if len(levels) < 2:
        return []
    if values is None:        # unseen / unspecified: the average level
        return [np.zeros(n) for _ in levels[:-1]]
    v = np.asarray(pd.Series(values).astype(str).to_numpy(), dtype=object)
    if len(v) == 1 and n > 1:
        v = np.repeat(v, n)
    cols = []
    last = v == levels[-1]
    known = np.isin(v, list(levels))
    for lv in levels[:-1]:
        cols.append(np.where(v == lv, 1.0, np.where(last, -1.0, 0.0)) * known)
    return cols


def normalise_technology(s: pd.Series) -> pd.Series:
    m = {"3g": "3G", "wcdma": "3G", "w-cdma": "3G", "umts": "3G", "lte": "LTE", "4g": "LTE",
         "5g": "5G", "nr": "5G"}
    out = s.astype(str).str.strip().str.lower().map(m)
    if out.isna().any():
        bad = sorted(set(s[out.isna()].astype(str)))[:5]
        raise UserError(f"technology values {bad} are not 3G/LTE/5G", where="observations: technology",
                        fix="use 3G, LTE or 5G")
    return out


# ====================================================================== the model
class ReceptionModel:
    """P(receive | distance outside the sending sub-area), fitted by maximum likelihood.

    >>> m = ReceptionModel(city=True).fit(pairs)          # doctest: +SKIP
    >>> m.predict_proba([1.0, 2.0, 3.0])                  # doctest: +SKIP
    >>> print(m.summary())                                # doctest: +SKIP

    pairs: a DataFrame with ``distance_km`` and ``received`` (bool), and ``technology``
    / ``city_code`` when those terms are asked for; own-area pairs are dropped by
    :func:`between_area_pairs`.
    """

    def __init__(self, *, technology: bool = False, city: bool = False, confidence: float = 0.95,
                 min_scale_km: float = 0.05, max_scale_km: float = 20.0, city_column: str = "city_code"):
        if not 0.5 <= confidence < 1:
            raise UserError(f"confidence {confidence} must lie in [0.5, 1)", where="--confidence",
                            fix="give e.g. 0.95")
        if not 0 < min_scale_km < max_scale_km:
            raise UserError("min_scale_km must be positive and below max_scale_km", where="min_scale_km",
                            fix="keep the defaults (0.05 and 20 km)")
        self.technology = technology
        self.city = city
        self.confidence = confidence
        self.min_scale_km = min_scale_km
        self.max_scale_km = max_scale_km
        self.city_column = city_column

    # ------------------------------------------------------------------ fitting
    def _xy(self, pairs):
        if "received" not in pairs.columns or "distance_km" not in pairs.columns:
            raise UserError("pairs lack distance_km / received", where="reception model",
                            fix="build them with spill.observation_pairs or give both columns")
        tech = normalise_technology(pairs["technology"]) if self.technology and len(pairs) else None
        city = pairs[self.city_column].astype(str) if self.city and len(pairs) else None
        X = self.design_.matrix(pairs["distance_km"].to_numpy(float), tech, city)
        return X, pairs["received"].astype(bool).to_numpy().astype(float)

    def _bounds(self, p):
        b1 = (-1.0 / self.min_scale_km, -1.0 / self.max_scale_km)
        return [(-ETA_BOUND, ETA_BOUND), b1] + [(-ETA_BOUND, ETA_BOUND)] * (p - 2)

    def fit(self, pairs: pd.DataFrame) -> ReceptionModel:
        pairs = between_area_pairs(pairs)
        for flag, col in ((self.technology, "technology"), (self.city, self.city_column)):
            if flag and col not in pairs.columns:
                raise UserError(f"a {col} term was asked for but the observations have no {col} column",
                                where="observations", fix=f"add a {col} column or drop the option")
        techs = tuple(sorted(set(normalise_technology(pairs["technology"])))) if self.technology else ()
        cities = tuple(sorted(set(pairs[self.city_column].astype(str)))) if self.city else ()
        self.design_ = _Design(techs, cities)
        X, y = self._xy(pairs)
        if len(y) < 2:
            raise UserError(f"{len(y)} between-area observation(s): nothing to fit", where="observations",
                            fix="give observations of points outside the sending sub-area")
        self.n_, self.n_received_ = len(y), int(y.sum())
        self._X, self._y = X, y
        bounds = self._bounds(X.shape[1])
        start = np.zeros(X.shape[1])
        start[1] = -1.0
        self.loglik_, self.beta_ = _maximise(X, y, bounds, start=start)
        self.cut_ = _chi2_half(self.confidence)
        self.estimates_ = self._estimates()
        return self

    def _quantities(self) -> dict:
        """name → (function of β, linear constraint builder for value v, bounds of v)."""
        p = len(self.beta_)
        q = {}

        def L_of(shift_idx):
            # L_level = −(β0 + γ·e)/β1 = v  ⇔  β0 = −v β1 − γ·e
            def value(b):
                return -(b[0] + sum(e * b[i] for i, e in shift_idx)) / b[1]

            def fix(v):
                c = np.zeros(p)
                c[1] = -v
                for i, e in shift_idx:
                    c[i] = -e
                return {0: (c, 0.0)}
            return value, fix, L_BOUNDS_KM

        q["L_km"] = L_of([])
        q["scale_km"] = (lambda b: -1.0 / b[1], lambda v: {1: (np.zeros(p), -1.0 / v)},
                         (self.min_scale_km, self.max_scale_km))
        for what, levels, off in (("technology", self.design_.technologies, 2),
                                  ("city", self.design_.cities, 2 + max(len(self.design_.technologies) - 1, 0))):
            if len(levels) < 2:
                continue
            k = len(levels) - 1
            for j, lv in enumerate(levels):
                idx = [(off + j, 1.0)] if j < k else [(off + i, -1.0) for i in range(k)]
                q[f"L_km[{what}={lv}]"] = L_of(idx)
        return q

    def _estimates(self) -> dict:
        """Every quantity with its estimate, interval, and whether the data identify it."""
        out = {}
        for name, (value, fix, vb) in self._quantities().items():
            lo, hi = self._interval(value, fix, vb)
            est = float(value(self.beta_))
            status, note, drop = self._identification(name)
            est = None if "estimate" in drop else est
            lo = None if "lo" in drop else lo
            hi = None if "hi" in drop else hi
            if name == "scale_km" and est is not None:   # open ends of s are its bounds
                lo = self.min_scale_km if lo is None else lo
                hi = self.max_scale_km if hi is None else hi
            if status == "identified" and (lo is None or hi is None):
                status, note = "partly identified", "the interval is open on one side"
            out[name] = {"estimate": _round(est), "interval": [_round(lo), _round(hi)], "status": status,
                         "note": note}
        return out

    def _identification(self, name) -> tuple[str, str, tuple]:
        """(status, note, which of estimate/lo/hi the data cannot give) for one quantity."""
        if name == "scale_km":
            if not self._y.any() or self._y.all():
                return "not identifiable", "all pairs have the same outcome", ("estimate", "lo", "hi")
            if math.isclose(self.beta_[1], -1.0 / self.min_scale_km, rel_tol=1e-6):
                note = ("separated data (every received pair nearer than every other): the softness is not "
                        f"identified, held at min_scale_km = {self.min_scale_km:g} km")
                return "at lower bound", note, ()
            return "identified", "", ()
        sub = self._level_rows(name)
        if not sub.any():
            return "not identifiable", "no received pair (no spill observed): only an upper bound", ("estimate", "lo")
        if sub.all():
            return "not identifiable", "every pair received: only a lower bound", ("estimate", "hi")
        levels_ok = all(self._level_rows(n).any() and not self._level_rows(n).all()
                        for n in self._quantities() if "[" in n)
        if "[" not in name and not levels_ok:
            return "not identifiable", "the average of the levels, one of which is not identifiable", ("estimate",)
        return "identified", "", ()

    def _level_mask(self, name) -> np.ndarray:
        if "[" not in name:
            return np.ones(len(self._y), bool)
        what, lv = name[name.index("[") + 1:-1].split("=", 1)
        levels = self.design_.technologies if what == "technology" else self.design_.cities
        off = 2 if what == "technology" else 2 + max(len(self.design_.technologies) - 1, 0)
        k = len(levels) - 1
        j = levels.index(lv)
        X = self._X
        if j < k:
            return X[:, off + j] == 1.0
        return np.all(X[:, off:off + k] == -1.0, axis=1)

    def _level_rows(self, name) -> np.ndarray:
        return self._y[self._level_mask(name)]

    def _profile(self, fix, v):
        return _maximise(self._X, self._y, self._bounds(len(self.beta_)), fixed=fix(v), start=self.beta_)[0]

    def _interval(self, value, fix, vb):
        """Profile-likelihood interval: the values v whose profile log-likelihood lies
        within χ²₁(confidence)/2 of the maximum; None where it stays inside to the bound."""
        from scipy.optimize import brentq

        est = float(np.clip(value(self.beta_), *vb))
        target = self.loglik_ - self.cut_

        def drop(v):
            return self._profile(fix, v) - target

        ends = []
        for direction, bound in ((-1, vb[0]), (1, vb[1])):
            step = max(0.05 * abs(est), 0.02)
            a, fa = est, drop(est)
            found = None
            while True:
                b = est + direction * step
                if (direction < 0 and b <= bound) or (direction > 0 and b >= bound):
                    b = bound
                fb = drop(b)
                if fb < 0:
                    found = brentq(drop, min(a, b), max(a, b), xtol=1e-5) if fa > 0 else b
                    break
                if b == bound:
                    break
                a, fa = b, fb
                step *= 2
            ends.append(found)
        return ends[0], ends[1]

    # ------------------------------------------------------------------ prediction
    def _check_fitted(self):
        if not hasattr(self, "beta_"):
            raise UserError("the reception model is not fitted", where="reception model",
                            fix="call fit(pairs) or load a saved model")

    def predict_proba(self, d, technology=None, city=None, beta=None) -> np.ndarray:
        """P(receive) for points at distances ``d`` (km) outside the sending sub-area;
        an unknown or unspecified technology or city gets the average term."""
        self._check_fitted()
        d = np.atleast_1d(np.asarray(d, float))
        if technology is not None and self.design_.technologies:
            technology = normalise_technology(pd.Series(np.broadcast_to(technology, d.shape)))
        else:
            technology = None
        city = None if city is None or not self.design_.cities else np.broadcast_to(np.asarray(city, object), d.shape)
        X = self.design_.matrix(d, technology, city)
        return _sigmoid(X @ (self.beta_ if beta is None else beta))

    def predict_pairs(self, pairs: pd.DataFrame) -> np.ndarray:
        """P(receive) for every row of a pairs frame (its technology / city when the model has
        those terms and the frame those columns)."""
        tech = pairs["technology"] if self.technology and "technology" in pairs.columns else None
        city = pairs[self.city_column] if self.city and self.city_column in pairs.columns else None
        return self.predict_proba(pairs["distance_km"].to_numpy(float), tech, city)

    def score(self, pairs: pd.DataFrame) -> dict:
        """Accuracy, Brier score, log loss and the confusion matrix on between-area pairs."""
        pairs = between_area_pairs(pairs)
        return scores(pairs["received"].astype(bool).to_numpy(), self.predict_pairs(pairs))

    def expected_total(self, d, weights, technology=None, city=None) -> tuple[float, float | None, float | None]:
        """Σ weights × P(d) with its profile-likelihood interval: the smallest and largest
        sum over the parameter sets whose (profile) log-likelihood lies within χ²₁/2 of the
        maximum. The sum depends on (β0, β1) only (average technology and city), its
        gradient never vanishes, so its extremes lie on the boundary of that 2-D region,
        traced once per model (:meth:`confidence_boundary`). With a technology or city
        given, only the estimate is returned (lo = hi = None)."""
        self._check_fitted()
        d = np.atleast_1d(np.asarray(d, float))
        w = np.asarray(weights, float)
        if not len(d) or not np.any(w):
            return 0.0, 0.0, 0.0
        if technology is not None or city is not None:
            return float(np.sum(w * self.predict_proba(d, technology, city))), None, None
        est = float(np.sum(w * self.predict_proba(d)))
        B = self.confidence_boundary()                      # (m, 2): β0, β1 on the boundary
        g = w @ _sigmoid(B[:, 0][None, :] + d[:, None] * B[:, 1][None, :])
        return est, min(float(g.min()), est), max(float(g.max()), est)

    def _profile_01(self, b01) -> float:
        """The log-likelihood maximised over every coefficient but β0, β1."""
        if len(self.beta_) == 2:
            return _loglik(np.asarray(b01, float), self._X, self._y)[0]
        z = np.zeros(len(self.beta_))
        fixed = {0: (z, float(b01[0])), 1: (z, float(b01[1]))}
        return _maximise(self._X, self._y, self._bounds(len(self.beta_)), fixed=fixed, start=self.beta_)[0]

    def confidence_boundary(self, n_angles: int = 360) -> np.ndarray:
        """Points (β0, β1) on the boundary of {profile log-likelihood ≥ max − χ²₁/2} within
        the parameter box, one per ray from the estimate (rays whitened by the observed
        information, so they are evenly spread over an elliptical region)."""
        from scipy.optimize import brentq

        cached = getattr(self, "_boundary_", None)
        if cached is not None and len(cached) == n_angles:
            return cached
        c = self.beta_[:2].copy()
        pr = _sigmoid(self._X @ self.beta_)
        Xs = self._X[:, :2]
        info = (Xs * (pr * (1 - pr))[:, None]).T @ Xs
        try:
            A = np.linalg.cholesky(np.linalg.inv(info + 1e-9 * np.eye(2)))
        except np.linalg.LinAlgError:
            A = np.eye(2)
        box = np.array(self._bounds(len(self.beta_))[:2], float)      # rows: β0, β1 → (lo, hi)
        target = self.loglik_ - self.cut_
        out = np.empty((n_angles, 2))
        for i, t in enumerate(np.arange(n_angles) * (2 * np.pi / n_angles)):
            v = A @ np.array([math.cos(t), math.sin(t)])
            with np.errstate(divide="ignore"):
                reach = np.where(v > 0, (box[:, 1] - c) / v, np.where(v < 0, (box[:, 0] - c) / v, np.inf))
            r_max = float(max(reach.min(), 0.0))
            def f(r, v=v):
                return self._profile_01(c + r * v) - target
            r = r_max if r_max == 0 or f(r_max) >= 0 else brentq(f, 0.0, r_max, xtol=1e-10, rtol=1e-9)
            out[i] = c + r * v
        self._boundary_ = out
        return out

    # ------------------------------------------------------------------ reporting
    def to_dict(self) -> dict:
        self._check_fitted()
        return {
            "model": "reception",
            "form": "P(receive | d) = 1 / (1 + exp(-((L - d) / s + terms))), d = km outside the sending sub-area",
            "options": {"technology": self.technology, "city": self.city, "confidence": self.confidence,
                        "min_scale_km": self.min_scale_km, "max_scale_km": self.max_scale_km,
                        "city_column": self.city_column},
            "levels": {"technology": list(self.design_.technologies), "city": list(self.design_.cities)},
            "coefficients": dict(zip(self.design_.names, [float(v) for v in self.beta_])),
            "n": self.n_, "n_received": self.n_received_, "loglik": float(self.loglik_),
            "parameters": self.estimates_,
            "fit": "maximum likelihood on between-area pairs; profile-likelihood intervals",
        }

    def save(self, path, *, force: bool = False) -> Path:
        """The fitted model as JSON (with its training pairs, so intervals can be redone)."""
        from subdivide.io.output import atomic_path

        with atomic_path(path, force=force) as tmp:
            tmp.write_text(self.dumps(), encoding="utf-8")
        return Path(path)

    def dumps(self) -> str:
        """The JSON text :meth:`save` writes and :meth:`load` reads."""
        d = self.to_dict()
        d["training"] = {"X": self._X.tolist(), "y": self._y.tolist()}
        return json.dumps(d, ensure_ascii=False, indent=1, allow_nan=False) + "\n"

    @classmethod
    def load(cls, path) -> ReceptionModel:
        p = Path(path)
        try:
            d = json.loads(p.read_text("utf-8"))
            o = d["options"]
            m = cls(**o)
            m.design_ = _Design(tuple(d["levels"]["technology"]), tuple(d["levels"]["city"]))
            m.beta_ = np.array([d["coefficients"][n] for n in m.design_.names], float)
            m._X = np.asarray(d["training"]["X"], float).reshape(-1, len(m.beta_))
            m._y = np.asarray(d["training"]["y"], float)
            m.n_, m.n_received_, m.loglik_ = int(d["n"]), int(d["n_received"]), float(d["loglik"])
            m.estimates_ = d["parameters"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UserError(f"{p} is not a reception model written by `subdivide calibrate` ({exc.__class__.__name__})",
                            where="--model", fix="give the calibration_model.json that `subdivide calibrate` wrote") from None
        m.cut_ = _chi2_half(m.confidence)
        return m

    def summary(self) -> str:
        self._check_fitted()
        lines = [(f"reception model: P(receive) = 1/(1+exp(-(L - d)/s)), {self.n_} between-area pairs, "
                  f"{self.n_received_} received; {self.confidence:.0%} profile-likelihood intervals")]
        for name, e in self.estimates_.items():
            lines.append(f"  {name:<28} {_fmt_estimate(e)}")
        return "\n".join(lines)


def _fmt_estimate(e: dict) -> str:
    lo, hi = e["interval"]
    est = "—" if e["estimate"] is None else f"{e['estimate']:.2f}"
    iv = f"[{'−∞' if lo is None else f'{lo:.2f}'}, {'+∞' if hi is None else f'{hi:.2f}'}]"
    s = f"{est:>6} km {iv}"
    if e["status"] != "identified":
        s += f"  {e['status'].upper()}: {e['note']}"
    return s


def _chi2_half(confidence: float) -> float:
    from scipy.stats import chi2

    return float(chi2.ppf(confidence, 1) / 2)


def _round(v):
    return None if v is None else round(float(v), 4)


# ====================================================================== scoring
def scores(y, p, *, eps: float = LOGLOSS_EPS) -> dict:
    """Confusion matrix (at P ≥ 0.5), accuracy, Brier score and log loss (probabilities
    clipped to [eps, 1 − eps] so that a hard 0/1 prediction gets a finite score)."""
    y = np.asarray(y, bool)
    p = np.asarray(p, float)
    n = len(y)
    if not n:
        return {"n": 0, "n_received": 0, "tp": 0, "fp": 0, "fn": 0, "tn": 0, "accuracy": None,
                "brier": None, "log_loss": None}
    hat = p >= 0.5
    pc = np.clip(p, eps, 1 - eps)
    return {"n": int(n), "n_received": int(y.sum()),
            "tp": int((hat & y).sum()), "fp": int((hat & ~y).sum()),
            "fn": int((~hat & y).sum()), "tn": int((~hat & ~y).sum()),
            "accuracy": float((hat == y).mean()), "brier": float(np.mean((p - y) ** 2)),
            "log_loss": float(-np.mean(np.where(y, np.log(pc), np.log(1 - pc))))}


def reliability(y, p, *, bins: int = 10) -> pd.DataFrame:
    """Predicted vs observed frequency in equal-width probability bins (empty bins dropped)."""
    y = np.asarray(y, bool)
    p = np.asarray(p, float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    b = np.clip(np.digitize(p, edges[1:-1], right=False), 0, bins - 1)
    rows = []
    for i in range(bins):
        m = b == i
        if m.any():
            rows.append({"bin_lo": edges[i], "bin_hi": edges[i + 1], "n": int(m.sum()),
                         "mean_predicted": float(p[m].mean()), "observed_frequency": float(y[m].mean()),
                         "n_received": int(y[m].sum())})
    return pd.DataFrame(rows, columns=["bin_lo", "bin_hi", "n", "mean_predicted", "observed_frequency",
                                       "n_received"])


# ====================================================================== evaluation
#: the predictors an evaluation compares, in output order
BASELINE = "baseline_own_area_only"
BASE_RATE = "base_rate"
MODEL = "fitted_model"
FITTED_THRESHOLD = "fitted_threshold"     # the model's P ≥ 0.5 as a hard 0/1 answer


def threshold_name(L: float) -> str:
    return f"threshold_{L:g}km"


@dataclass
class Evaluation:
    """Scores of the fitted model against the trivial answers, per group and pooled."""

    scores: pd.DataFrame        # predictor, scheme, city, n, …, accuracy, brier, log_loss
    reliability: pd.DataFrame   # scheme, bin_lo, bin_hi, n, mean_predicted, observed_frequency
    predictions: pd.DataFrame   # one row per pair: P(receive) of every predictor (held-out)
    model: ReceptionModel       # fitted on every group
    folds: dict                 # held-out group → the model's parameters fitted without it

    def verdict(self, metric: str = "brier") -> dict:
        """Pooled held-out score of the model against the baseline (lower is better)."""
        s = self.scores
        pooled = s[(s["scheme"] == "held_out") & (s["city"] == "pooled")].set_index("predictor")[metric]
        out = {"metric": metric, "model": float(pooled[MODEL]), "baseline": float(pooled[BASELINE])}
        out["model_beats_baseline"] = out["model"] < out["baseline"]
        others = {k: float(v) for k, v in pooled.items() if k not in (MODEL, BASELINE)}
        out["others"] = others
        out["best"] = min([(out["model"], MODEL), (out["baseline"], BASELINE)] + [(v, k) for k, v in others.items()])[1]
        return out

    def to_dict(self) -> dict:
        return {"verdict": {m: self.verdict(m) for m in ("brier", "log_loss")},
                "log_loss_eps": LOGLOSS_EPS,
                "model": self.model.to_dict(), "folds": self.folds,
                "scores": _records(self.scores), "reliability": _records(self.reliability)}


def evaluate(pairs: pd.DataFrame, *, group: str = "city_code", thresholds_km=(2.0,), progress=None,
             **model_options) -> Evaluation:
    """Leave-one-group-out (by default leave-one-city-out) evaluation of the reception
    model against the baseline "only the sending area's own office receives" (P = 0 for
    every between-area pair), the base rate of the training groups, and fixed thresholds
    (P = 1 within L, else 0). Also the in-sample scores of the model fitted on all groups."""
    pairs = between_area_pairs(pairs)
    if group not in pairs.columns:
        raise UserError(f"observations have no {group} column", where="observations",
                        fix="add a city_code column (one value per city) to evaluate leave-one-city-out")
    pairs = pairs.assign(**{group: pairs[group].astype(str)})
    groups = sorted(set(pairs[group]))
    if len(groups) < 2:
        raise UserError(f"leave-one-city-out needs at least two cities; the observations have {groups}",
                        where="observations", fix="give observations of two or more cities")
    d = pairs["distance_km"].to_numpy(float)
    y = pairs["received"].astype(bool).to_numpy()
    full = ReceptionModel(**model_options).fit(pairs)
    held = {MODEL: np.zeros(len(pairs)), BASELINE: np.zeros(len(pairs)), BASE_RATE: np.zeros(len(pairs))}
    for L in thresholds_km:
        held[threshold_name(L)] = (d <= L).astype(float)
    folds = {}
    held[FITTED_THRESHOLD] = np.zeros(len(pairs))
    for i, g in enumerate(groups):
        if progress is not None:
            progress("calibrate: leave-one-city-out", i, len(groups))
        test = (pairs[group] == g).to_numpy()
        m = ReceptionModel(**model_options).fit(pairs[~test])
        held[MODEL][test] = m.predict_pairs(pairs[test])
        held[FITTED_THRESHOLD][test] = (held[MODEL][test] >= 0.5).astype(float)
        held[BASE_RATE][test] = y[~test].mean()
        folds[g] = {"n": m.n_, "n_received": m.n_received_, "parameters": m.estimates_}
    if progress is not None:
        progress("calibrate: leave-one-city-out", len(groups), len(groups))
    inside = {MODEL: full.predict_pairs(pairs), BASE_RATE: np.full(len(pairs), y.mean())}
    inside[FITTED_THRESHOLD] = (inside[MODEL] >= 0.5).astype(float)
    rows = []
    for scheme, preds in (("held_out", held), ("in_sample", {**held, **inside})):
        for name, p in preds.items():
            for g in groups + ["pooled"]:
                m = np.ones(len(y), bool) if g == "pooled" else (pairs[group] == g).to_numpy()
                rows.append({"scheme": scheme, "predictor": name, "city": g, **scores(y[m], p[m])})
    sc = pd.DataFrame(rows)
    rel = pd.concat([reliability(y, held[MODEL]).assign(scheme="held_out"),
                     reliability(y, inside[MODEL]).assign(scheme="in_sample")], ignore_index=True)
    rel = rel[["scheme"] + [c for c in rel.columns if c != "scheme"]]
    keep = [c for c in (group, "city", "sending_area", "subarea", "point", "technology", "distance_km", "received")
            if c in pairs.columns]
    pred = pairs[keep].copy()
    for name, p in held.items():
        pred[f"p_{name}"] = p
    pred[f"p_{MODEL}_in_sample"] = inside[MODEL]
    return Evaluation(scores=sc, reliability=rel, predictions=pred, model=full, folds=folds)


def _records(df: pd.DataFrame) -> list[dict]:
    def conv(v):
        if isinstance(v, (np.bool_, bool)):
            return bool(v)
        if isinstance(v, np.integer):
            return int(v)
        if isinstance(v, (float, np.floating)):
            return float(v) if math.isfinite(float(v)) else None
        return v
    return [{c: conv(v) for c, v in zip(df.columns, row)} for row in df.itertuples(index=False, name=None)]


def format_evaluation(ev: Evaluation) -> str:
    """The leave-one-city-out table as text: per city and pooled, every predictor."""
    s = ev.scores[ev.scores["scheme"] == "held_out"]
    lines = [(f"leave-one-city-out (each city scored by a model fitted on the others); log loss clips "
              f"hard 0/1 at {LOGLOSS_EPS:g}"),
             (f"{'city':<8} {'predictor':<24} {'n':>4} {'recv':>4} {'TP':>3} {'FP':>3} {'FN':>3} {'TN':>3} "
              f"{'accuracy':>8} {'Brier':>7} {'log loss':>8}")]
    for r in s.sort_values(["city", "predictor"], key=lambda c: c.map(lambda v: "~" if v == "pooled" else v)
                           if c.name == "city" else c, kind="stable").itertuples():
        lines.append(f"{r.city:<8} {r.predictor:<24} {r.n:>4} {r.n_received:>4} {r.tp:>3} {r.fp:>3} {r.fn:>3} "
                     f"{r.tn:>3} {r.accuracy:>8.3f} {r.brier:>7.4f} {r.log_loss:>8.4f}")
    for metric in ("brier", "log_loss"):
        v = ev.verdict(metric)
        word = "BEATS" if v["model_beats_baseline"] else "DOES NOT BEAT"
        lines.append(f"pooled held-out {metric}: fitted model {v['model']:.4f} {word} the baseline "
                     f"{v['baseline']:.4f}; best predictor: {v['best']}")
    return "\n".join(lines)
