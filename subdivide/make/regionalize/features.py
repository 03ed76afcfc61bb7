"""Attribute features and the additive SSD algebra of the compactness score."""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from subdivide.core.errors import UserError


def attribute_frame(blocks: gpd.GeoDataFrame, attributes=(), rasters: dict | None = None
                    ) -> tuple[pd.DataFrame, list[str]]:
    """Raw attribute values per block: named columns, then raster zonal means
    (``rasters``: name → GeoTIFF path). Missing values are filled with the column mean
    and reported (returned notes)."""
    from subdivide.model.hazard import sample_rasters

    notes: list[str] = []
    cols = {}
    for a in attributes:
        if a not in blocks.columns:
            raise UserError(f"attribute column {a!r} is not in the town-blocks",
                            fix=f"use one of {sorted(c for c in blocks.columns if c != 'geometry')[:30]}")
        v = pd.to_numeric(blocks[a], errors="coerce")
        bad = v.isna() & blocks[a].notna() & (blocks[a].astype(str).str.strip() != "")
        if bad.any():
            raise UserError(f"attribute {a!r} is not numeric for {int(bad.sum())} town-blocks: "
                            f"{list(blocks.loc[bad, 'key'][:10])}", fix="give numeric hazard columns")
        cols[a] = v.astype("float64")
    if rasters:
        df, reports = sample_rasters(blocks, rasters)
        for c in df.columns:
            if c in cols:
                raise UserError(f"raster name {c!r} clashes with an attribute column",
                                fix="rename it: --raster other_name=path.tif")
            cols[c] = df[c]
        for r in reports:
            if r.n_point_sampled:
                notes.append(f"{r.raster}: {r.n_point_sampled} blocks smaller than a pixel sampled at a point")
    frame = pd.DataFrame(cols, index=blocks.index)
    for c in frame.columns:
        miss = frame[c].isna()
        if miss.all():
            raise UserError(f"attribute {c!r} has no value for any town-block",
                            fix="check the column or that the raster covers the municipality")
        if miss.any():
            notes.append(f"{c}: {int(miss.sum())} blocks without a value took the mean "
                         f"(e.g. {list(blocks.loc[miss, 'key'][:5])})")
            frame[c] = frame[c].fillna(frame[c].mean())
    return frame, notes


def standardize(frame: pd.DataFrame) -> np.ndarray:
    """z-scores per column (population std); constant columns become 0."""
    x = frame.to_numpy(dtype="float64")
    if x.shape[1] == 0:
        return x
    sd = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def ssd_of(W, S, Q):
    """Weighted sum of squared deviations of groups, per column then summed: weights W,
    weighted sums S and weighted sums of squares Q, all shaped (..., d):
    ``Σ_c Q_c − S_c² / W_c``. Vectorised; 0 for empty groups."""
    W = np.asarray(W, dtype="float64")
    S = np.asarray(S, dtype="float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(W > 0, np.asarray(Q, dtype="float64") - S ** 2 / np.where(W > 0, W, 1.0), 0.0)
    return t.sum(axis=-1)


def _sum_by(lab, M, k):
    """Row sums of ``M`` (n, d) per label 0..k-1 → (k, d)."""
    out = np.zeros((k, M.shape[1]))
    np.add.at(out, lab, M)
    return out


def group_ssd(lab, W, S, Q, k) -> float:
    """Total weighted SSD of a labelling from per-row W, S, Q (n, d)."""
    return float(np.sum(ssd_of(_sum_by(lab, W, k), _sum_by(lab, S, k), _sum_by(lab, Q, k))))



def within_ssd(Z: np.ndarray, labels: np.ndarray) -> float:
    """Within-area dispersion: SSD of the rows of ``Z`` (n, d) from their group means."""
    Z = np.asarray(Z, dtype="float64")
    _, lab = np.unique(np.asarray(labels), return_inverse=True)
    W = np.ones_like(Z)
    return group_ssd(lab, W, Z, Z ** 2, int(lab.max()) + 1)


def objective_matrix(blocks: gpd.GeoDataFrame, Z: np.ndarray, compactness: float, old, old_penalty: float,
                     nest: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """The compactness score's matrix: standardized attributes, area-weighted centroid
    coordinates × √compactness, one-hot 旧市町村 × √old_penalty (unless nesting).
    Returns (X, per-column weights Wb, number of attribute columns)."""
    n = len(blocks)
    area = blocks.geometry.area.to_numpy()
    parts, weights = [Z], [np.ones_like(Z)]
    if compactness > 0:
        # area-weighted moment of inertia: compact sub-areas in km², not in block counts
        pts = shapely.point_on_surface(blocks.geometry.values)
        xy = np.column_stack([shapely.get_x(pts), shapely.get_y(pts)])
        wa = area / max(float(area.mean()), 1e-9)
        c = np.average(xy, axis=0, weights=wa)
        rms = np.sqrt(np.sum(wa[:, None] * (xy - c) ** 2) / max(float(wa.sum()), 1e-9) / 2)
        parts.append((xy - c) / max(float(rms), 1e-9) * np.sqrt(compactness))
        weights.append(np.column_stack([wa, wa]))
    onehot_cols = 0
    if old is not None and not nest and old_penalty > 0:
        cats, inv = np.unique(old, return_inverse=True)
        oh = np.zeros((n, len(cats)))
        oh[np.arange(n), inv] = 1.0
        oh -= oh.mean(axis=0)
        parts.append(oh * np.sqrt(old_penalty))
        weights.append(np.ones_like(oh))
        onehot_cols = len(cats)
    X = np.column_stack(parts) if sum(p.shape[1] for p in parts) else np.zeros((n, 0))
    Wb = np.column_stack(weights) if X.shape[1] else np.zeros((n, 0))
    d_attr = Z.shape[1] if Z.shape[1] else X.shape[1] - onehot_cols
    return X, Wb, d_attr
