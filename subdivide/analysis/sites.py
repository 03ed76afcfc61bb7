"""Base-station sites → coverage polygons (DOMAIN.md §3.5–3.6).

When a carrier gives only its site list (position, azimuth, beamwidth, antenna height,
band, optionally EIRP), the coverage of each sector is estimated as

1. a **radius** from a path-loss model: Okumura–Hata (150–1500 MHz) or COST-231 Hata
   (1500–2000 MHz), solved for the largest loss the link can take
   (``eirp_dbm − min_rx_dbm``);
2. a **best-server partition** per carrier and band layer: the Voronoi diagram of the
   layer's site positions, each site's cell split among its sectors by the bisectors
   of their azimuths, clipped to the radius — "sector wedges clipped by a Voronoi-like
   partition";
3. **widened** by the idle-mode margin of §3.6: a handset stays on its cell until a
   neighbour is better by Δ = hysteresis + shadowing (dB), which for sites D km apart
   and path-loss exponent n moves the effective border ``x = (D/2)·tanh(Δ·ln10/(20n))``
   past the nominal one. D is the distance from each site to its nearest neighbour in
   the layer. The widened polygon is clipped to the radius again.

Units: distances in km in the public arguments (``isd_km``, ``d_km``), metres in
geometry; frequencies in MHz; heights in m; powers in dBm; losses and margins in dB;
angles in degrees, azimuth clockwise from grid north (the plane-rectangular grid; the
meridian convergence, under 2° in Japan's zones, is ignored).

Everything is vectorised over sectors (numpy arrays, shapely 2 array functions); the
only Python loop runs over (carrier, band) layers.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer
from scipy.spatial import cKDTree

from subdivide.core.crs import JAPAN_LAT, JAPAN_LON
from subdivide.core.errors import UserError
from subdivide.io.tables import read_text_table

#: geographic CRS of site lists (JGD2011 lat/lon; WGS84 differs by < 1 m in Japan)
SITES_CRS = "EPSG:6668"

#: defaults of the link budget (documented in docs/coverage.md)
DEFAULT_EIRP_DBM = 58.0        # 20 W + 17 dBi − 2 dB feeder
DEFAULT_MIN_RX_DBM = -95.0     # cell-edge level a handset still camps on
DEFAULT_MOBILE_HEIGHT_M = 1.5
DEFAULT_HYSTERESIS_DB = 4.0    # idle-mode Qhyst
DEFAULT_SHADOW_DB = 12.0       # shadowing margin (≈ 1.5 σ of 8 dB log-normal fading)
DEFAULT_PATH_LOSS_EXPONENT = 3.4
MAX_RADIUS_KM = 40.0           # radii are capped here (the models end at 20 km)

#: valid ranges (DOMAIN §3.5): frequency MHz, base height m, mobile height m, distance km
HATA_RANGE = {"f_mhz": (150.0, 1500.0), "hb_m": (30.0, 200.0), "hm_m": (1.0, 10.0), "d_km": (1.0, 20.0)}
COST231_RANGE = {"f_mhz": (1500.0, 2000.0), "hb_m": (30.0, 200.0), "hm_m": (1.0, 10.0), "d_km": (1.0, 20.0)}

ENVIRONMENTS = ("urban", "suburban", "open")

#: site-list columns: canonical name → accepted spellings (case-insensitive)
SITE_COLUMNS = {
    "lat": ("lat", "latitude", "緯度"),
    "lon": ("lon", "lng", "long", "longitude", "経度"),
    "azimuth_deg": ("azimuth_deg", "azimuth", "az", "方位角"),
    "beamwidth_deg": ("beamwidth_deg", "beamwidth", "bw", "ビーム幅"),
    "height_m": ("height_m", "antenna_height_m", "antenna_height", "height", "hb", "アンテナ高"),
    "band_mhz": ("band_mhz", "band", "frequency_mhz", "freq_mhz", "frequency", "周波数"),
}
OPTIONAL_SITE_COLUMNS = {
    "carrier": ("carrier", "operator", "mno", "事業者"),
    "site_id": ("site_id", "site", "siteid", "局番号"),
    "cell_id": ("cell_id", "cellid", "cell", "eci", "セルid"),
    "eirp_dbm": ("eirp_dbm", "eirp", "eirp_dbm_"),
}


#: physically meaningful ranges of the propagation options: name → (low, high, unit, option, why)
PROPAGATION_RANGES = {
    "min_rx_dbm": (-150.0, -30.0, "dBm", "--min-rx-dbm",
                   "a handset camps on signals of about −120 to −80 dBm (0 dBm is 1 mW)"),
    "hysteresis_db": (0.0, 30.0, "dB", "--hysteresis-db", "idle-mode hysteresis is 0–10 dB in practice"),
    "shadow_db": (0.0, 40.0, "dB", "--shadow-db", "the shadowing margin is about 0–20 dB"),
    "path_loss_exponent": (1.5, 7.0, "", "--exponent", "the path-loss exponent is 2 (free space) to about 6"),
}


def check_propagation_options(**values) -> None:
    """Refuse NaN, infinite or physically meaningless propagation options (a UserError naming
    the option, the value, the meaningful range and why)."""
    for name, v in values.items():
        if name not in PROPAGATION_RANGES or v is None:
            continue
        lo, hi, unit, opt, why = PROPAGATION_RANGES[name]
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise UserError(f"{opt} {v!r} is not a number", where=opt, fix=f"give {lo:g}–{hi:g} {unit}") from None
        if not math.isfinite(x) or not lo <= x <= hi:
            raise UserError(f"{opt} {x:g} {unit}".rstrip() + f" is outside the physically meaningful range "
                            f"{lo:g}–{hi:g} {unit}".rstrip(), where=opt,
                            fix=f"{why}; give a value in {lo:g}–{hi:g} (or leave the default)")


class PropagationRangeWarning(UserWarning):
    """A path-loss model was used outside the range it was fitted on."""


# ---------------------------------------------------------------------- propagation
def _range_flags(model: str, ranges: dict, **values) -> np.ndarray:
    """Boolean array: True where any argument is outside its valid range. Warns once."""
    bad = None
    parts = []
    for name, v in values.items():
        lo, hi = ranges[name]
        arr = np.asarray(v, dtype=float)
        out = (arr < lo) | (arr > hi)
        if out.any():
            parts.append(f"{name} outside {lo:g}–{hi:g}")
        bad = out if bad is None else (bad | out)
    if parts:
        warnings.warn(f"{model} used outside its valid range ({'; '.join(parts)}); "
                      "the loss is extrapolated", PropagationRangeWarning, stacklevel=3)
    return np.asarray(bad)


def mobile_height_correction_db(f_mhz, hm_m, *, large_city: bool = False):
    """Hata's a(hm) in dB. Small/medium city: ``(1.1 log f − 0.7) hm − (1.56 log f − 0.8)``;
    large city: ``8.29 (log 1.54 hm)² − 1.1`` (f ≤ 300 MHz) or ``3.2 (log 11.75 hm)² − 4.97``."""
    f = np.asarray(f_mhz, dtype=float)
    hm = np.asarray(hm_m, dtype=float)
    if not large_city:
        return (1.1 * np.log10(f) - 0.7) * hm - (1.56 * np.log10(f) - 0.8)
    return np.where(f <= 300.0, 8.29 * np.log10(1.54 * hm) ** 2 - 1.1,
                    3.2 * np.log10(11.75 * hm) ** 2 - 4.97)


def _hata_terms(f, hb, hm, env, large_city, *, cost231=False, metropolitan=False):
    """(loss at 1 km, slope per decade of distance) in dB, vectorised."""
    f = np.asarray(f, dtype=float)
    hb = np.asarray(hb, dtype=float)
    a_hm = mobile_height_correction_db(f, hm, large_city=large_city)
    slope = 44.9 - 6.55 * np.log10(hb)
    if cost231:
        base = 46.3 + 33.9 * np.log10(f) - 13.82 * np.log10(hb) - a_hm + (3.0 if metropolitan else 0.0)
        return base, slope
    base = 69.55 + 26.16 * np.log10(f) - 13.82 * np.log10(hb) - a_hm
    if env == "suburban":
        base = base - 2.0 * np.log10(f / 28.0) ** 2 - 5.4
    elif env == "open":
        base = base - 4.78 * np.log10(f) ** 2 + 18.33 * np.log10(f) - 40.94
    elif env != "urban":
        raise UserError(f"environment {env!r} is not one of {ENVIRONMENTS}", fix="use urban, suburban or open")
    return base, slope


def okumura_hata_loss(f_mhz, hb_m, hm_m, d_km, *, environment: str = "urban", large_city: bool = False,
                      return_flags: bool = False):
    """Okumura–Hata median path loss in dB (DOMAIN §3.5), vectorised.

    Urban: ``69.55 + 26.16 log f − 13.82 log hb − a(hm) + (44.9 − 6.55 log hb) log d``;
    suburban subtracts ``2 (log(f/28))² + 5.4``; open ``4.78 (log f)² − 18.33 log f + 40.94``.
    Valid for f 150–1500 MHz, hb 30–200 m, hm 1–10 m, d 1–20 km: outside, a
    :class:`PropagationRangeWarning` is issued; ``return_flags=True`` also returns the
    per-element out-of-range mask.

    >>> round(float(okumura_hata_loss(900, 30, 1.5, 1)), 1)
    126.4
    """
    flags = _range_flags("Okumura–Hata", HATA_RANGE, f_mhz=f_mhz, hb_m=hb_m, hm_m=hm_m, d_km=d_km)
    base, slope = _hata_terms(f_mhz, hb_m, hm_m, environment, large_city)
    loss = base + slope * np.log10(np.asarray(d_km, dtype=float))
    return (loss, flags) if return_flags else loss


def cost231_hata_loss(f_mhz, hb_m, hm_m, d_km, *, metropolitan: bool = False, large_city: bool = False,
                      return_flags: bool = False):
    """COST-231 Hata path loss in dB: ``46.3 + 33.9 log f − 13.82 log hb − a(hm) +
    (44.9 − 6.55 log hb) log d + C`` with C = 3 dB for metropolitan centres, else 0.
    Valid for f 1500–2000 MHz (other ranges as Hata); warns outside.

    >>> round(float(cost231_hata_loss(1800, 30, 1.5, 1)), 1)
    136.2
    """
    flags = _range_flags("COST-231 Hata", COST231_RANGE, f_mhz=f_mhz, hb_m=hb_m, hm_m=hm_m, d_km=d_km)
    base, slope = _hata_terms(f_mhz, hb_m, hm_m, "urban", large_city, cost231=True, metropolitan=metropolitan)
    loss = base + slope * np.log10(np.asarray(d_km, dtype=float))
    return (loss, flags) if return_flags else loss


def path_loss_db(f_mhz, hb_m, hm_m, d_km, *, environment: str = "suburban", model: str = "auto"):
    """Path loss in dB choosing the model per element: ``auto`` = Okumura–Hata up to
    1500 MHz, COST-231 above (warning above 2000 MHz). COST-231 has no open/suburban
    variants: for those environments it is used as is (its C = 0 is the suburban case)."""
    f = np.asarray(f_mhz, dtype=float)
    hb, hm, d = (np.broadcast_to(np.asarray(v, dtype=float), np.broadcast(f, hb_m, hm_m, d_km).shape)
                 for v in (hb_m, hm_m, d_km))
    f = np.broadcast_to(f, hb.shape)
    use_cost = _model_mask(f, model)
    out = np.empty(f.shape)
    if (~use_cost).any():
        out[~use_cost] = okumura_hata_loss(f[~use_cost], hb[~use_cost], hm[~use_cost], d[~use_cost],
                                           environment=environment)
    if use_cost.any():
        out[use_cost] = cost231_hata_loss(f[use_cost], hb[use_cost], hm[use_cost], d[use_cost],
                                          metropolitan=False)
    return out


def _model_mask(f: np.ndarray, model: str) -> np.ndarray:
    if model == "auto":
        return f > 1500.0
    if model in ("hata", "okumura-hata", "okumura_hata"):
        return np.zeros(f.shape, bool)
    if model in ("cost231", "cost-231"):
        return np.ones(f.shape, bool)
    raise UserError(f"path-loss model {model!r} is unknown", fix="use auto, hata or cost231")


def cell_radius_km(f_mhz, hb_m, *, hm_m=DEFAULT_MOBILE_HEIGHT_M, eirp_dbm=DEFAULT_EIRP_DBM,
                   min_rx_dbm=DEFAULT_MIN_RX_DBM, environment: str = "suburban", model: str = "auto",
                   max_km: float = MAX_RADIUS_KM):
    """Distance (km) at which the path loss reaches ``eirp_dbm − min_rx_dbm``, solved in
    closed form from the Hata form ``L = A + B log d`` → ``d = 10^((Lmax − A)/B)``.
    Vectorised; capped at ``max_km``; warns when the model is used outside its ranges
    (including radii outside 1–20 km)."""
    f = np.asarray(f_mhz, dtype=float)
    shape = np.broadcast(f, hb_m, hm_m, eirp_dbm, min_rx_dbm).shape
    f, hb, hm, eirp, rx = (np.broadcast_to(np.asarray(v, dtype=float), shape)
                           for v in (f, hb_m, hm_m, eirp_dbm, min_rx_dbm))
    use_cost = _model_mask(f, model)
    base = np.empty(shape)
    slope = np.empty(shape)
    h = ~use_cost
    if h.any():
        base[h], slope[h] = _hata_terms(f[h], hb[h], hm[h], environment, False)
    if use_cost.any():
        base[use_cost], slope[use_cost] = _hata_terms(f[use_cost], hb[use_cost], hm[use_cost], "urban", False,
                                                      cost231=True, metropolitan=False)
    d = 10.0 ** ((eirp - rx - base) / slope)
    if h.any():
        _range_flags("Okumura–Hata", HATA_RANGE, f_mhz=f[h], hb_m=hb[h], hm_m=hm[h], d_km=d[h])
    if use_cost.any():
        _range_flags("COST-231 Hata", COST231_RANGE, f_mhz=f[use_cost], hb_m=hb[use_cost],
                     hm_m=hm[use_cost], d_km=d[use_cost])
    return np.minimum(d, max_km)


def hysteresis_margin_km(d_km, delta_db, n=DEFAULT_PATH_LOSS_EXPONENT):
    """How far past the nominal border a cell still serves (DOMAIN §3.6), km:
    ``x = (D/2)·tanh(Δ·ln10/(20 n))``. D = 7 km, Δ = 16 dB, n = 3.4 → 1.73 km.

    >>> round(float(hysteresis_margin_km(7, 16, 3.4)), 2)
    1.73
    """
    d = np.asarray(d_km, dtype=float)
    return d / 2.0 * np.tanh(np.asarray(delta_db, dtype=float) * math.log(10.0) / (20.0 * float(n)))


# ---------------------------------------------------------------------- geometry
def _wedge_polygons(x, y, az_deg, half_deg, radius_m, n_arc: int = 16) -> np.ndarray:
    """Vectorised wedges (apex at the site, arc of ``n_arc`` points). ``half_deg`` ≥ 180
    gives a full disc (no apex). Azimuth clockwise from north."""
    x, y, az, half, r = (np.asarray(v, dtype=float) for v in np.broadcast_arrays(x, y, az_deg, half_deg, radius_m))
    n = len(x)
    out = np.empty(n, dtype=object)
    full = half >= 180.0
    if full.any():
        out[full] = shapely.buffer(shapely.points(x[full], y[full]), r[full], quad_segs=max(4, n_arc // 2))
    w = ~full
    if w.any():
        t = np.linspace(-1.0, 1.0, n_arc)
        ang = np.radians(az[w, None] + half[w, None] * t[None, :])   # (m, n_arc), from north, clockwise
        ax = x[w, None] + r[w, None] * np.sin(ang)
        ay = y[w, None] + r[w, None] * np.cos(ang)
        m = int(w.sum())
        coords = np.empty((m, n_arc + 2, 2))
        coords[:, 0, 0], coords[:, 0, 1] = x[w], y[w]
        coords[:, 1:-1, 0], coords[:, 1:-1, 1] = ax, ay
        coords[:, -1] = coords[:, 0]
        out[w] = shapely.polygons(coords)
    return out


def _project_sites(df: pd.DataFrame, crs) -> tuple[np.ndarray, np.ndarray]:
    t = Transformer.from_crs(SITES_CRS, CRS.from_user_input(crs), always_xy=True)
    return t.transform(df["lon"].to_numpy(float), df["lat"].to_numpy(float))


def sector_wedges(sites_df: pd.DataFrame, *, crs, radius_km=None, n_arc: int = 16,
                  environment: str = "suburban", min_rx_dbm: float = DEFAULT_MIN_RX_DBM,
                  hm_m: float = DEFAULT_MOBILE_HEIGHT_M) -> gpd.GeoDataFrame:
    """Nominal sector wedges: apex at the site, opening = beamwidth, radius from the
    path-loss model (or ``radius_km``: a number or a per-row array). Vectorised.
    Returns the site rows plus ``x``, ``y`` (m, in ``crs``), ``radius_km`` and geometry."""
    df = _normalise_sites(sites_df, where="sites")
    x, y = _project_sites(df, crs)
    if radius_km is None:
        radius_km = cell_radius_km(df["band_mhz"], df["height_m"], hm_m=hm_m, eirp_dbm=df["eirp_dbm"],
                                   min_rx_dbm=min_rx_dbm, environment=environment)
    r = np.broadcast_to(np.asarray(radius_km, dtype=float), (len(df),))
    geoms = _wedge_polygons(x, y, df["azimuth_deg"], df["beamwidth_deg"] / 2.0, r * 1000.0, n_arc)
    out = df.assign(x=x, y=y, radius_km=r)
    return gpd.GeoDataFrame(out, geometry=gpd.GeoSeries(geoms, crs=crs), crs=crs)


def _serving_half_widths(site: np.ndarray, az: np.ndarray, bw: np.ndarray):
    """Per sector: (centre azimuth, half-width) of the angular span it serves at its
    site — bounded by the bisectors towards the neighbouring sectors' azimuths (equal-
    gain directions); a sector alone at its site serves its beamwidth."""
    n = len(az)
    order = np.lexsort((az % 360.0, site))
    s_sorted, a_sorted = site[order], az[order] % 360.0
    first = np.r_[True, s_sorted[1:] != s_sorted[:-1]]
    start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    last = np.r_[s_sorted[1:] != s_sorted[:-1], True]
    end = np.minimum.accumulate(np.where(last, np.arange(n), n)[::-1])[::-1]
    nxt = np.where(last, start, np.arange(n) + 1)
    prv = np.where(first, end, np.arange(n) - 1)
    gap_next = (a_sorted[nxt] - a_sorted) % 360.0
    gap_prev = (a_sorted - a_sorted[prv]) % 360.0
    alone = end == start
    lo = np.where(alone, 0.0, gap_prev / 2.0)   # span: [az − lo, az + hi]
    hi = np.where(alone, 0.0, gap_next / 2.0)
    centre = np.empty(n)
    half = np.empty(n)
    c_sorted = a_sorted + (hi - lo) / 2.0
    h_sorted = (hi + lo) / 2.0
    h_sorted = np.where(alone, bw[order] / 2.0, h_sorted)
    c_sorted = np.where(alone, a_sorted, c_sorted)
    centre[order] = c_sorted
    half[order] = h_sorted
    return centre, half


def coverage_from_sites(sites: pd.DataFrame, *, crs, hysteresis_db: float = DEFAULT_HYSTERESIS_DB,
                        shadow_db: float = DEFAULT_SHADOW_DB,
                        path_loss_exponent: float = DEFAULT_PATH_LOSS_EXPONENT,
                        environment: str = "suburban", min_rx_dbm: float = DEFAULT_MIN_RX_DBM,
                        hm_m: float = DEFAULT_MOBILE_HEIGHT_M, radius_km=None, n_arc: int = 16,
                        widen: bool = True) -> gpd.GeoDataFrame:
    """Coverage polygons from a site list (one row per sector), in ``crs``.

    Per (carrier, band) layer: Voronoi cells of the distinct site positions, split among
    each site's sectors by azimuth bisectors, clipped to the model radius (best-server
    partition); then each polygon is buffered by the §3.6 margin
    ``x = (D/2)·tanh((hysteresis_db + shadow_db)·ln10/(20·path_loss_exponent))`` with D
    the distance to the nearest other site of the layer, and clipped to the radius again
    (``widen=False`` keeps the bare partition).

    Returns the columns of :func:`subdivide.analysis.coverage.read_coverage` (carrier, cell_id,
    band, site_x, site_y, geometry) plus site_id, radius_km, nearest_site_km, margin_km and
    ``nominal`` (a second geometry column: the un-widened best-server polygon, which the
    selection rules of :func:`subdivide.analysis.coverage.select_cells` look at).
    """
    check_propagation_options(min_rx_dbm=min_rx_dbm, hysteresis_db=hysteresis_db, shadow_db=shadow_db,
                              path_loss_exponent=path_loss_exponent)
    df = _normalise_sites(sites, where="sites")
    x, y = _project_sites(df, crs)
    if radius_km is None:
        radius = cell_radius_km(df["band_mhz"], df["height_m"], hm_m=hm_m, eirp_dbm=df["eirp_dbm"],
                                min_rx_dbm=min_rx_dbm, environment=environment)
    else:
        radius = np.broadcast_to(np.asarray(radius_km, dtype=float), (len(df),))
    radius_m = np.asarray(radius, dtype=float) * 1000.0
    delta = float(hysteresis_db) + float(shadow_db)
    geoms = np.empty(len(df), dtype=object)
    nearest_km = np.full(len(df), np.nan)
    layer = df["carrier"].astype(str) + "\x00" + df["band_mhz"].map(lambda v: f"{v:.6g}")
    for key in sorted(layer.unique()):
        idx = np.flatnonzero((layer == key).to_numpy())
        g, near = _layer_partition(x[idx], y[idx], df["azimuth_deg"].to_numpy(float)[idx],
                                   df["beamwidth_deg"].to_numpy(float)[idx], radius_m[idx], n_arc)
        geoms[idx] = g
        nearest_km[idx] = near / 1000.0
    margin_km = np.where(np.isfinite(nearest_km), hysteresis_margin_km(nearest_km, delta, path_loss_exponent), 0.0)
    nominal = _polygonal(shapely.make_valid(geoms))
    if widen and delta > 0:
        discs = shapely.buffer(shapely.points(x, y), radius_m, quad_segs=max(4, n_arc // 2))
        geoms = shapely.intersection(shapely.buffer(geoms, margin_km * 1000.0, quad_segs=4), discs)
    else:
        margin_km = np.zeros(len(df))
    geoms = shapely.make_valid(geoms)
    geoms = _polygonal(geoms)
    out = pd.DataFrame({
        "carrier": df["carrier"].to_numpy(object),
        "cell_id": df["cell_id"].to_numpy(object),
        "band": df["band_mhz"].to_numpy(float),
        "site_x": x, "site_y": y,
        "site_id": df["site_id"].to_numpy(object),
        "radius_km": radius_m / 1000.0,
        "nearest_site_km": nearest_km,
        "margin_km": margin_km,
    })
    out["nominal"] = gpd.GeoSeries(nominal, crs=crs).values
    gdf = gpd.GeoDataFrame(out, geometry=gpd.GeoSeries(geoms, crs=crs), crs=crs)
    gdf = gdf[~gdf.geometry.is_empty].sort_values(["carrier", "cell_id"], kind="stable").reset_index(drop=True)
    return gdf


def _polygonal(geoms: np.ndarray) -> np.ndarray:
    """Keep only the polygonal part of each geometry (make_valid may add lines)."""
    types = shapely.get_type_id(geoms)
    out = geoms.copy()
    coll = types == 7
    if coll.any():
        parts, idx = shapely.get_parts(geoms[coll], return_index=True)
        keep = np.isin(shapely.get_type_id(parts), (3, 6))
        poly = np.array([shapely.Polygon()] * int(coll.sum()), dtype=object)
        if keep.any():
            grouped = pd.Series(parts[keep]).groupby(idx[keep]).agg(lambda s: shapely.union_all(s.to_numpy()))
            poly[grouped.index.to_numpy()] = grouped.to_numpy()
        out[coll] = poly
    lines = np.isin(types, (0, 1, 2, 4, 5))
    out[lines] = shapely.Polygon()
    return out


def _layer_partition(x, y, az, bw, radius_m, n_arc):
    """Best-server partition of one layer: (polygon per sector, nearest-site distance m)."""
    xy = np.column_stack([x, y])
    uniq, site = np.unique(np.round(xy, 3), axis=0, return_inverse=True)
    site = site.ravel()
    rmax = float(np.max(radius_m)) if len(radius_m) else 0.0
    if len(uniq) >= 2:
        tree = cKDTree(uniq)
        dist, _ = tree.query(uniq, k=2)
        near = dist[:, 1]
        pts = shapely.multipoints(uniq)
        env = shapely.box(*(uniq.min(0) - 2 * rmax), *(uniq.max(0) + 2 * rmax))
        vor = shapely.get_parts(shapely.voronoi_polygons(pts, extend_to=env, ordered=True))
        if len(vor) != len(uniq):  # defensive: fall back to matching by containment
            order = shapely.STRtree(vor).query(shapely.points(uniq), predicate="intersects")
            m = np.empty(len(uniq), dtype=object)
            m[order[0]] = vor[order[1]]
            vor = m
    else:
        near = np.full(len(uniq), np.nan)
        vor = np.array([shapely.box(*(uniq.min(0) - 2 * rmax), *(uniq.max(0) + 2 * rmax))], dtype=object)
    centre, half = _serving_half_widths(site, az, bw)
    wedges = _wedge_polygons(x, y, centre, half, radius_m, n_arc)
    return shapely.intersection(wedges, vor[site]), near[site]


# ---------------------------------------------------------------------- site lists
def _find(cols: dict, names) -> str | None:
    for n in names:
        if n.lower() in cols:
            return cols[n.lower()]
    return None


def _normalise_sites(df: pd.DataFrame, *, where: str) -> pd.DataFrame:
    """Canonical site frame (lat, lon, azimuth_deg, beamwidth_deg, height_m, band_mhz,
    eirp_dbm, carrier, site_id, cell_id) with range checks; UserError on problems."""
    if len(df) == 0:
        raise UserError("the site list is empty", where=where, fix="give at least one sector row")
    cols = {str(c).strip().lower(): c for c in df.columns}
    out = {}
    missing = []
    for canon, names in SITE_COLUMNS.items():
        c = _find(cols, names)
        if c is None:
            missing.append(canon)
        else:
            out[canon] = df[c]
    if missing:
        raise UserError(f"site list lacks the columns {missing} (has {list(map(str, df.columns))})",
                        where=where,
                        fix="columns needed: lat, lon, azimuth_deg, beamwidth_deg, height_m, band_mhz "
                            "(optional: carrier, site_id, cell_id, eirp_dbm)")
    res = pd.DataFrame(index=range(len(df)))
    for canon in SITE_COLUMNS:
        vals = pd.to_numeric(pd.Series(out[canon]).reset_index(drop=True), errors="coerce")
        bad = vals.isna() | ~np.isfinite(vals.to_numpy(float, na_value=np.nan))
        if bad.any():
            rows = list(np.flatnonzero(bad.to_numpy())[:10] + 2)
            raise UserError(f"column {canon!r} has missing or non-numeric values", where=f"{where}, rows {rows}",
                            fix="fill in a number on every row")
        res[canon] = vals.astype(float)
    for canon, names in OPTIONAL_SITE_COLUMNS.items():
        c = _find(cols, names)
        res[canon] = None if c is None else pd.Series(df[c]).reset_index(drop=True)
    res["carrier"] = res["carrier"].fillna("A").astype(str).str.strip().astype(object)
    res.loc[res["carrier"] == "", "carrier"] = "A"
    eirp = pd.to_numeric(res["eirp_dbm"], errors="coerce")
    res["eirp_dbm"] = eirp.fillna(DEFAULT_EIRP_DBM).astype(float)
    _check_site_ranges(res, where)
    if res["site_id"].isna().all():
        key = res["lat"].round(7).astype(str) + "," + res["lon"].round(7).astype(str)
        codes = pd.factorize(key, sort=True)[0]
        res["site_id"] = [f"S{c + 1:05d}" for c in codes]
    res["site_id"] = res["site_id"].fillna("").astype(str).astype(object)
    if res["cell_id"].isna().all():
        n = res.groupby(["carrier", "site_id"]).cumcount() + 1
        res["cell_id"] = (res["site_id"] + "-" + n.astype(str)).astype(object)
    res["cell_id"] = res["cell_id"].map(_id_text).astype(object)
    blank = res["cell_id"] == ""
    if blank.any():
        raise UserError("some rows have no cell id", where=f"{where}, rows {list(np.flatnonzero(blank)[:10] + 2)}",
                        fix="give every sector a cell_id, or leave the whole column out to number them")
    dup = res.duplicated(["carrier", "cell_id"], keep=False)
    if dup.any():
        ids = sorted(set(res.loc[dup, "cell_id"]))[:10]
        raise UserError(f"duplicate cell ids within a carrier: {ids}", where=where,
                        fix="each sector of a carrier needs its own cell_id")
    return res


def _id_text(v) -> str:
    """Cell ids as text: 123 and 123.0 → '123'; None → ''."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v).strip()


def _check_site_ranges(res: pd.DataFrame, where: str) -> None:
    def fail(mask, what, fix):
        rows = list(np.flatnonzero(mask.to_numpy())[:10] + 2)
        raise UserError(what, where=f"{where}, rows {rows} (row 1 = header)", fix=fix)

    lat, lon = res["lat"], res["lon"]
    out = ~lat.between(*JAPAN_LAT) | ~lon.between(*JAPAN_LON)
    if out.any():
        swapped = (lon.between(*JAPAN_LAT) & lat.between(*JAPAN_LON))[out].all()
        fail(out, f"{int(out.sum())} sites lie outside Japan"
             + (" — latitude and longitude look swapped" if swapped else ""),
             "lat must be 20–46.5 and lon 122–154.5 (JGD2011/WGS84 degrees); swap the columns if reversed")
    az = res["azimuth_deg"]
    if (~az.between(0.0, 360.0)).any():
        fail(~az.between(0.0, 360.0), "azimuth outside 0–360°", "give the azimuth in degrees clockwise from north")
    bw = res["beamwidth_deg"]
    if (~((bw > 0) & (bw <= 360))).any():
        fail(~((bw > 0) & (bw <= 360)), "beamwidth must be > 0 and ≤ 360°", "360 means an omni antenna")
    h = res["height_m"]
    if (~((h > 0) & (h < 1000))).any():
        fail(~((h > 0) & (h < 1000)), "antenna height must be between 0 and 1000 m",
             "give the height above ground in m")
    f = res["band_mhz"]
    if (~f.between(100.0, 6000.0)).any():
        fail(~f.between(100.0, 6000.0), "band must be a frequency in MHz (100–6000)",
             "e.g. 800, 1800, 2100; a band number like 'B19' is not a frequency")


def read_sites(path) -> pd.DataFrame:
    """Read a site list (CSV, UTF-8 with or without BOM, or CP932) with one row per sector:
    lat, lon (JGD2011/WGS84 degrees), azimuth_deg, beamwidth_deg, height_m, band_mhz and
    optionally carrier, site_id, cell_id, eirp_dbm. Returns the canonical frame; raises
    UserError naming the row and column of any problem."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"site list {p} does not exist", where=str(p), fix="check the path")
    df = read_text_table(p, what="site list", empty_as_nan=True,
                         fix="save the site list as comma-separated text with a header row")
    return _normalise_sites(df, where=str(p))


# ---------------------------------------------------------------------- synthetic
def synthetic_sites(outline, *, isd_km: float, jitter: float = 0.0, seed: int = 0,
                    carriers=("A",), band_mhz: float = 800.0, height_m: float = 40.0,
                    beamwidth_deg: float = 65.0, eirp_dbm: float = DEFAULT_EIRP_DBM,
                    margin_km: float | None = None, crs=None) -> pd.DataFrame:
    """Seeded synthetic site list: a hexagonal grid of sites ``isd_km`` apart over the
    outline (a polygon, GeoSeries or GeoDataFrame in a projected CRS) and ``margin_km``
    around it (default 1.5 × ISD, so border cells have neighbours), three sectors per
    site at 0/120/240°. Each carrier gets its own grid offset (seeded); ``jitter`` moves
    each site uniformly within a disc of radius ``jitter × isd_km``.

    Returns the site-list columns (lat, lon in JGD2011 rounded to 1e-7°) — the same
    frame ``read_sites`` would return for it written to CSV."""
    geom, src_crs = _outline_geometry(outline, crs)
    if not isd_km or not math.isfinite(float(isd_km)) or isd_km <= 0 or isd_km > 100:
        raise UserError(f"inter-site distance {isd_km!r} km must be a positive number up to 100 km",
                        where="--isd-km", fix="e.g. --isd-km 7 (rural 5–15 km, urban 0.5–3 km)")
    if not math.isfinite(float(band_mhz)) or not 100.0 <= float(band_mhz) <= 100000.0:
        raise UserError(f"band {band_mhz!r} MHz is not a mobile band", where="--band", fix="e.g. --band 800")
    if not math.isfinite(float(height_m)) or not 1.0 <= float(height_m) <= 1000.0:
        raise UserError(f"antenna height {height_m!r} m is not meaningful", where="--height",
                        fix="give 1–1000 m, e.g. --height 40")
    if not math.isfinite(float(jitter)) or not 0.0 <= jitter <= 1.0:
        raise UserError(f"jitter {jitter!r} must be between 0 and 1 (a fraction of the ISD)", where="--jitter",
                        fix="e.g. --jitter 0.2 (sites moved up to 20 % of the inter-site distance)")
    isd = float(isd_km) * 1000.0
    margin = (1.5 * float(isd_km) if margin_km is None else float(margin_km)) * 1000.0
    area = geom.buffer(margin)
    minx, miny, maxx, maxy = area.bounds
    dy = isd * math.sqrt(3.0) / 2.0
    frames = []
    to_geo = Transformer.from_crs(src_crs, SITES_CRS, always_xy=True)
    for ci, carrier in enumerate(carriers):
        rng = np.random.default_rng([int(seed), ci])
        ox, oy = rng.uniform(0.0, isd), rng.uniform(0.0, dy)
        i0, i1 = math.floor((minx - ox) / isd) - 1, math.ceil((maxx - ox) / isd) + 1
        j0, j1 = math.floor((miny - oy) / dy) - 1, math.ceil((maxy - oy) / dy) + 1
        ii, jj = np.meshgrid(np.arange(i0, i1 + 1), np.arange(j0, j1 + 1))
        sx = ox + ii.ravel() * isd + (jj.ravel() % 2) * isd / 2.0
        sy = oy + jj.ravel() * dy
        if jitter > 0:
            r = jitter * isd * np.sqrt(rng.uniform(0.0, 1.0, len(sx)))
            t = rng.uniform(0.0, 2 * np.pi, len(sx))
            sx, sy = sx + r * np.cos(t), sy + r * np.sin(t)
        shapely.prepare(area)
        keep = shapely.contains_xy(area, sx, sy)
        sx, sy = sx[keep], sy[keep]
        order = np.lexsort((sx, -sy))  # north to south, west to east: stable numbering
        sx, sy = sx[order], sy[order]
        lon, lat = to_geo.transform(sx, sy)
        n = len(sx)
        site_ids = np.array([f"{carrier}{k + 1:05d}" for k in range(n)], dtype=object)
        frames.append(pd.DataFrame({
            "carrier": str(carrier),
            "site_id": np.repeat(site_ids, 3),
            "cell_id": [f"{s}-{k}" for s in site_ids for k in (1, 2, 3)],
            "lat": np.round(np.repeat(lat, 3), 7),
            "lon": np.round(np.repeat(lon, 3), 7),
            "azimuth_deg": np.tile([0.0, 120.0, 240.0], n),
            "beamwidth_deg": float(beamwidth_deg),
            "height_m": float(height_m),
            "band_mhz": float(band_mhz),
            "eirp_dbm": float(eirp_dbm),
        }))
    out = pd.concat(frames, ignore_index=True)
    for c in ("carrier", "site_id", "cell_id"):
        out[c] = out[c].astype(object)
    return out


def _outline_geometry(outline, crs):
    """(single polygonal geometry, its projected CRS) from a geometry / GeoSeries / GeoDataFrame."""
    if isinstance(outline, (gpd.GeoDataFrame, gpd.GeoSeries)):
        if outline.crs is None:
            raise UserError("the outline has no CRS", fix="set one (a projected plane-rectangular zone)")
        src = outline.crs
        geom = shapely.union_all(outline.geometry.values if isinstance(outline, gpd.GeoDataFrame) else outline.values)
    else:
        if crs is None:
            raise UserError("a bare outline geometry needs crs=", fix="pass the projected CRS of its coordinates")
        src, geom = CRS.from_user_input(crs), outline
    if not CRS.from_user_input(src).is_projected:
        raise UserError("the outline must be in a projected (metre) CRS",
                        fix="reproject it to the prefecture's plane-rectangular zone (e.g. EPSG:6678)")
    if geom is None or shapely.is_empty(geom) or shapely.area(geom) <= 0:
        raise UserError("the outline is empty", fix="pass the municipality's polygon")
    return geom, src
