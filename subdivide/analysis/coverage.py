"""Carrier coverage footprints: the honest spill model (DOMAIN.md §3.4).

A carrier delivers a sub-area's message through the cells it selects for it; the
delivered footprint is the union of those cells' coverage (best-server) polygons.
This module reads coverage polygons, applies a selection rule and reports, per sub-area
and carrier (and for the union over carriers, carrier ``ALL``):

- ``footprint_km2``;
- over-alert: footprint − sub-area, area and population, split by the neighbouring
  sub-area or municipality that receives it;
- under-alert: sub-area − footprint (parts no selected cell covers), area and population;
- overshoot: how far the footprint reaches beyond the sub-area — the maximum (directed
  Hausdorff distance from footprint to sub-area) and the P50 / P95 over the over-alert
  area — and the spill distance L the footprint implies (its P95 overshoot), shown next
  to the trial's 1.6–3.3 km.

Distances are computed in the plan's projected CRS (metres) and reported in km; areas in
km². Population is areal-weighted from the town-blocks' census counts (a town-block cut
by a footprint contributes its population × covered share of its area).

How the overshoot is computed
-----------------------------
The over-alert area is sampled on a regular lattice (``grid_m``, default 200 m; cell
centres at ``(i + ½)·grid_m``, so the samples are the same whatever the bounds) with a
vectorised ``shapely.contains_xy``; each sample point's distance to the sub-area comes
from one cKDTree query over the sub-area's boundary densified every 20 m (at most 10 m
high at the boundary, centimetres kilometres away; :class:`BoundaryDistance`). P50 /
P95 are percentiles of those distances, i.e. area-weighted over the over-alert area up
to the lattice resolution.

``shapely.hausdorff_distance`` is symmetric (it also measures how far the sub-area is
from the footprint) and so is *not* the overshoot. The directed distance
``max_{p ∈ footprint} d(p, sub-area)`` is computed as the maximum over the over-alert
polygon's vertices and the lattice samples, the candidates near the top re-measured
exactly (``STRtree.query_nearest`` over the boundary segments). It is exact when the maximum sits at a
vertex — always so for a convex sub-area, where ``d(·, sub-area)`` is convex — and
otherwise (a maximum inside the footprint, e.g. facing a concave bay of the sub-area)
it under-estimates by at most ``grid_m / √2``.
"""
from __future__ import annotations

import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from subdivide.core.errors import UserError
from subdivide.io.tables import read_text_table

#: the field trial's measured spill range (DOMAIN.md §2), km
TRIAL_L_KM = (1.6, 3.3)
TRIAL_BAND = "1.6–3.3 km"
#: carrier label of the union over carriers
ALL = "ALL"
SELECTIONS = ("any", "site", "share")
#: an overlap below this (m²) is a touching edge, not an overlap
MIN_OVERLAP_M2 = 1.0
#: cells further than this from the municipality are refused (likely a CRS mistake)
FAR_KM = 50.0
#: default lattice step for the overshoot percentiles, m
GRID_M = 200.0
#: at most this many lattice points per footprint (the step grows beyond)
MAX_POINTS = 250_000

COVERAGE_COLUMNS = ("carrier", "cell_id", "band", "site_x", "site_y")
#: accepted spellings (case-insensitive) of the coverage columns
ALIASES = {
    "carrier": ("carrier", "operator", "mno", "事業者"),
    "cell_id": ("cell_id", "cellid", "cell", "eci", "ci", "セルid"),
    "band": ("band", "band_mhz", "frequency_mhz", "freq_mhz", "frequency", "周波数"),
    "site_x": ("site_x",),
    "site_y": ("site_y",),
    "site_lon": ("site_lon", "lon", "longitude"),
    "site_lat": ("site_lat", "lat", "latitude"),
    "wkt": ("wkt", "geometry", "geom", "the_geom"),
    "nominal": ("nominal_wkt", "nominal"),
}

FOOTPRINT_COLUMNS = (
    "subarea", "name", "carrier", "n_cells", "subarea_km2", "footprint_km2",
    "over_alert_km2", "over_alert_pop", "under_alert_km2", "under_alert_pop", "under_alert_share",
    "overshoot_max_km", "overshoot_p50_km", "overshoot_p95_km", "implied_L_km", "trial_band",
    "vs_trial", "core_share_at_L",
)
BY_NEIGHBOUR_COLUMNS = ("subarea", "carrier", "neighbour", "neighbour_kind", "neighbour_subarea",
                        "area_km2", "population")


# ====================================================================== reading
def read_coverage(path, crs, *, outline=None, carrier: str | None = None, source_crs=None,
                  far_km: float = FAR_KM, layer: str | None = None) -> gpd.GeoDataFrame:
    """Read base-station coverage polygons and reproject them to ``crs`` (the plan's).

    Formats: Shapefile, GeoPackage, GeoJSON (anything pyogrio reads) or CSV with a WKT
    column (``wkt``/``geometry``). Columns (case-insensitive, see :data:`ALIASES`):
    ``carrier``, ``cell_id``, ``band`` and optionally the site point as ``site_x``/
    ``site_y`` (in the file's CRS) or ``site_lon``/``site_lat`` (degrees).

    ``carrier``: when the file has no carrier column, every cell gets this carrier; when
    it has one, only that carrier's rows are kept. ``source_crs`` overrides the file's
    CRS (needed for a Shapefile without .prj; a CSV is taken as JGD2011 lat/lon when its
    coordinates look like degrees, else as already in ``crs``). ``outline`` (a geometry
    in ``crs``, GeoSeries or GeoDataFrame) enables the far-away check: cells more than
    ``far_km`` from it are refused as a likely CRS mistake.

    Returns columns carrier (str), cell_id (str), band (float, NaN when absent), site_x,
    site_y (float m in ``crs``, NaN when absent) and geometry (polygons in ``crs``),
    sorted by carrier and cell_id. Raises UserError on empty, non-polygonal or invalid
    geometry, duplicate cell ids within a carrier, missing columns and far-away cells.
    """
    p = Path(path)
    where = str(p)
    if not p.exists():
        raise UserError(f"coverage file {p} does not exist", where=where, fix="check the path")
    target = CRS.from_user_input(crs)
    if not target.is_projected:
        raise UserError("coverage must be compared in a projected (metre) CRS", where=where,
                        fix="pass the plan's CRS (the prefecture's plane-rectangular zone)")
    if p.suffix.lower() in (".csv", ".txt"):
        gdf = _read_wkt_csv(p, source_crs, target)
    else:
        gdf = _read_vector(p, layer)
        if source_crs is not None:
            gdf = gdf.set_crs(source_crs, allow_override=True)
    if len(gdf) == 0:
        raise UserError("the coverage file has no cells", where=where, fix="check the file and layer")
    if gdf.crs is None:
        raise UserError("the coverage file has no CRS (.prj missing?)", where=where,
                        fix="add the .prj, or pass the source CRS (e.g. EPSG:6668 for JGD2011 lat/lon)")
    df = _canonical_columns(gdf, carrier, where)
    _check_geometry(df, where)
    src = gdf.crs
    _check_source_bounds(df, src, where)
    df = df.to_crs(target)
    if "nominal" in df.columns:
        df["nominal"] = gpd.GeoSeries(df["nominal"].values, crs=src).to_crs(target).values
    if "site_lon" in df.columns:
        from pyproj import Transformer

        t = Transformer.from_crs("EPSG:6668", target, always_xy=True)
        df["site_x"], df["site_y"] = t.transform(df.pop("site_lon").to_numpy(float),
                                                 df.pop("site_lat").to_numpy(float))
    elif df["site_x"].notna().any() and not CRS.from_user_input(src).equals(target):
        from pyproj import Transformer

        t = Transformer.from_crs(src, target, always_xy=True)
        sx, sy = df["site_x"].to_numpy(float), df["site_y"].to_numpy(float)
        with np.errstate(invalid="ignore"):
            tx, ty = t.transform(sx, sy, errcheck=False)
        lost = np.isfinite(sx) & np.isfinite(sy) & ~(np.isfinite(tx) & np.isfinite(ty))
        if lost.any():
            raise UserError(f"site_x/site_y of {int(lost.sum())} cells are not coordinates of the file's CRS "
                            f"({CRS.from_user_input(src).to_string()})",
                            where=f"{where}: cells {list(df.loc[lost, 'cell_id'][:10])}",
                            fix="give site_x/site_y in the file's CRS, or the site as site_lon/site_lat degrees")
        df["site_x"], df["site_y"] = tx, ty
    bad = ~np.isfinite(shapely.area(df.geometry.values))
    if bad.any():
        raise UserError(f"{int(bad.sum())} cells could not be reprojected to {target.to_string()}",
                        where=f"{where}: cells {list(df.loc[bad, 'cell_id'][:10])}",
                        fix="check the file's CRS")
    if outline is not None:
        _check_far(df, outline, far_km, src, where)
    keep = ["carrier", "cell_id", "band", "site_x", "site_y"] + (["nominal"] if "nominal" in df.columns else [])
    df = df[keep + ["geometry"]]
    return df.sort_values(["carrier", "cell_id"], kind="stable").reset_index(drop=True)


def _check_source_bounds(df: gpd.GeoDataFrame, src, where: str) -> None:
    """Degrees outside ±90/±180 in a geographic file: swapped axes or metres labelled as degrees."""
    if not CRS.from_user_input(src).is_geographic:
        return
    b = np.asarray(shapely.bounds(np.asarray(df.geometry.values)))
    bad = (b[:, 1] < -90) | (b[:, 3] > 90) | (b[:, 0] < -180) | (b[:, 2] > 180)
    if not bad.any():
        return
    lonlat_swapped = bool(np.all((b[bad, 0] >= -90) & (b[bad, 2] <= 90)))
    raise UserError(
        f"{int(bad.sum())} cells have coordinates outside ±90° latitude / ±180° longitude"
        + (" — latitude and longitude look swapped" if lonlat_swapped else " — metres labelled as degrees?"),
        where=f"{where} (read as {CRS.from_user_input(src).to_string()}): cells "
              f"{list((df['carrier'] + ':' + df['cell_id'])[bad][:10])}",
        fix="check the file's CRS and axis order (x = longitude, y = latitude; projected x/y need their "
            "plane-rectangular zone's .prj)",
    )


def _read_vector(p: Path, layer) -> gpd.GeoDataFrame:
    import pyogrio

    try:
        return pyogrio.read_dataframe(p, layer=layer)
    except Exception as exc:
        raise UserError(f"cannot read {p.name} as a vector file ({exc.__class__.__name__}: {str(exc)[:160]})",
                        where=str(p), fix="give a Shapefile, GeoPackage, GeoJSON or a CSV with a WKT column") from None


def _read_wkt_csv(p: Path, source_crs, target: CRS) -> gpd.GeoDataFrame:
    df = read_text_table(p, what="coverage CSV", empty_as_nan=True,
                         fix="save it as comma-separated text with a header row and a WKT column")
    cols = {str(c).strip().lower(): c for c in df.columns}
    wkt_col = next((cols[a] for a in ALIASES["wkt"] if a in cols), None)
    if wkt_col is None:
        raise UserError(f"the CSV has no WKT column (has {list(map(str, df.columns))})", where=str(p),
                        fix="name the polygon column 'wkt' (e.g. POLYGON ((139.1 35.2, …)))")
    text_geoms = df[wkt_col].fillna("").astype(str).to_numpy(object)
    geoms = shapely.from_wkt(text_geoms, on_invalid="ignore")
    unparsed = pd.isna(geoms) & (df[wkt_col].fillna("").str.strip() != "").to_numpy()
    if unparsed.any():
        rows = list(np.flatnonzero(unparsed)[:10] + 2)
        raise UserError("some WKT values cannot be parsed", where=f"{p}, rows {rows} (row 1 = header)",
                        fix="write polygons as WKT, e.g. POLYGON ((x1 y1, x2 y2, x3 y3, x1 y1))")
    geoms = np.where(pd.isna(geoms), shapely.Polygon(), geoms)
    if source_crs is None:
        b = shapely.total_bounds(geoms)
        lonlat = np.all(np.isfinite(b)) and -180 <= b[0] and b[2] <= 180 and -90 <= b[1] and b[3] <= 90
        source_crs = "EPSG:6668" if lonlat else target
    return gpd.GeoDataFrame(df.drop(columns=[wkt_col]), geometry=gpd.GeoSeries(geoms, crs=source_crs),
                            crs=source_crs)


def _canonical_columns(gdf: gpd.GeoDataFrame, carrier, where) -> gpd.GeoDataFrame:
    cols = {str(c).strip().lower(): c for c in gdf.columns if c != gdf.geometry.name}

    def col(name):
        return next((cols[a.lower()] for a in ALIASES[name] if a.lower() in cols), None)

    out = gpd.GeoDataFrame(geometry=gdf.geometry.reset_index(drop=True), crs=gdf.crs)
    c_car = col("carrier")
    if c_car is None:
        if carrier is None:
            raise UserError(f"the coverage file has no carrier column (has {sorted(cols)})", where=where,
                            fix="add a 'carrier' column, or say which carrier the file belongs to (carrier=…)")
        out["carrier"] = str(carrier)
    else:
        out["carrier"] = gdf[c_car].reset_index(drop=True).map(_text).astype(object)
        if (out["carrier"] == "").any():
            rows = list(np.flatnonzero((out["carrier"] == "").to_numpy())[:10])
            raise UserError("some cells have no carrier", where=f"{where}, features {rows}",
                            fix="fill in the carrier of every cell")
        if carrier is not None:
            keep = (out["carrier"] == str(carrier)).to_numpy()
            if not keep.any():
                raise UserError(f"no cells of carrier {carrier!r} (carriers: {sorted(set(out['carrier']))})",
                                where=where, fix="check the carrier name")
            out = out[keep].reset_index(drop=True)
            gdf = gdf[keep].reset_index(drop=True)
    c_id = col("cell_id")
    if c_id is None:
        raise UserError(f"the coverage file has no cell id column (has {sorted(cols)})", where=where,
                        fix="add a 'cell_id' column (the carrier's cell identifier, kept as text)")
    out["cell_id"] = gdf[c_id].reset_index(drop=True).map(_text).astype(object)
    blank = out["cell_id"] == ""
    if blank.any():
        raise UserError(f"{int(blank.sum())} cells have no cell id", where=f"{where}, features "
                        f"{list(np.flatnonzero(blank.to_numpy())[:10])}", fix="fill in every cell_id")
    dup = out.duplicated(["carrier", "cell_id"], keep=False)
    if dup.any():
        ids = sorted(set(out.loc[dup, "carrier"] + ":" + out.loc[dup, "cell_id"]))[:10]
        raise UserError(f"duplicate cell ids within a carrier: {ids}", where=where,
                        fix="each cell of a carrier must appear once (dissolve multi-part cells first)")
    c_band = col("band")
    out["band"] = (pd.to_numeric(gdf[c_band], errors="coerce").reset_index(drop=True).astype(float)
                   if c_band is not None else np.nan)
    cx, cy, clon, clat = col("site_x"), col("site_y"), col("site_lon"), col("site_lat")
    if cx is not None and cy is not None:
        out["site_x"] = pd.to_numeric(gdf[cx], errors="coerce").reset_index(drop=True).astype(float)
        out["site_y"] = pd.to_numeric(gdf[cy], errors="coerce").reset_index(drop=True).astype(float)
    elif clon is not None and clat is not None:
        out["site_lon"] = pd.to_numeric(gdf[clon], errors="coerce").reset_index(drop=True).astype(float)
        out["site_lat"] = pd.to_numeric(gdf[clat], errors="coerce").reset_index(drop=True).astype(float)
        out["site_x"] = np.nan
        out["site_y"] = np.nan
    else:
        out["site_x"] = np.nan
        out["site_y"] = np.nan
    c_nom = col("nominal")
    if c_nom is not None:
        txt = gdf[c_nom].reset_index(drop=True).map(_text).to_numpy(object)
        nom = shapely.from_wkt(np.where(txt == "", None, txt), on_invalid="ignore")
        bad = pd.isna(nom) & (txt != "")
        if bad.any():
            raise UserError("some nominal_wkt values cannot be parsed", where=f"{where}, cells "
                            f"{list(out.loc[bad, 'cell_id'][:10])}", fix="write them as WKT polygons or leave empty")
        nom = np.where(pd.isna(nom), shapely.Polygon(), nom)
        out["nominal"] = gpd.GeoSeries(shapely.make_valid(nom), crs=gdf.crs)
    return out


def _text(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return ""
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v).strip()


def _check_geometry(df: gpd.GeoDataFrame, where: str) -> None:
    g = df.geometry.values
    ids = df["carrier"].astype(str) + ":" + df["cell_id"].astype(str)
    empty = shapely.is_missing(np.asarray(g)) | shapely.is_empty(np.asarray(g))
    if empty.any():
        raise UserError(f"{int(empty.sum())} cells have an empty geometry: {list(ids[empty][:10])}",
                        where=where, fix="drop these cells or give them their coverage polygon")
    types = shapely.get_type_id(np.asarray(g))
    notpoly = ~np.isin(types, (3, 6))
    if notpoly.any():
        kinds = sorted(set(shapely.get_type_id(np.asarray(g)[notpoly]).tolist()))
        names = {0: "Point", 1: "LineString", 2: "LinearRing", 4: "MultiPoint", 5: "MultiLineString",
                 7: "GeometryCollection"}
        raise UserError(f"{int(notpoly.sum())} cells are not polygons ({[names.get(k, k) for k in kinds]}): "
                        f"{list(ids[notpoly][:10])}", where=where,
                        fix="coverage must be (Multi)Polygons; a site list goes through `subdivide coverage`")
    valid = shapely.is_valid(np.asarray(g))
    if not valid.all():
        reasons = shapely.is_valid_reason(np.asarray(g)[~valid])
        pairs = [f"{i} ({r})" for i, r in zip(list(ids[~valid][:5]), reasons[:5])]
        raise UserError(f"{int((~valid).sum())} cells have invalid polygons: {pairs}", where=where,
                        fix="repair them (QGIS 'Fix geometries' or shapely.make_valid) and check they "
                            "still describe the cell")
    zero = shapely.area(np.asarray(g)) <= 0
    if zero.any():
        raise UserError(f"{int(zero.sum())} cells have zero area: {list(ids[zero][:10])}", where=where,
                        fix="give these cells their coverage polygon")


def _outline_geom(outline, crs):
    if isinstance(outline, gpd.GeoDataFrame):
        g = outline.to_crs(crs).geometry.values if outline.crs is not None else outline.geometry.values
        return shapely.union_all(g)
    if isinstance(outline, gpd.GeoSeries):
        g = outline.to_crs(crs).values if outline.crs is not None else outline.values
        return shapely.union_all(g)
    if hasattr(outline, "dissolved"):  # a Plan
        return shapely.union_all(outline.dissolved.geometry.values)
    return outline


def _check_far(df: gpd.GeoDataFrame, outline, far_km: float, src_crs, where: str) -> None:
    if far_km is None:
        return
    geom = _outline_geom(outline, df.crs)
    dist = shapely.distance(df.geometry.values, geom)
    far = dist > far_km * 1000.0
    if not far.any():
        return
    ids = list((df["carrier"] + ":" + df["cell_id"])[far][:10])
    all_far = bool(far.all())
    med = float(np.median(dist[far])) / 1000.0
    raise UserError(
        f"{int(far.sum())} of {len(df)} cells lie more than {far_km:g} km from the municipality "
        f"(median {med:,.0f} km): {ids}" + (" — none is near it, which points to a CRS mistake" if all_far else ""),
        where=f"{where} (read as {CRS.from_user_input(src_crs).to_string()})",
        fix="check the file's CRS (.prj; lat/lon must be JGD2011/WGS84 degrees, x/y the right "
            "plane-rectangular zone and axis order); if the file covers a wider region, cut it to "
            "the municipality's surroundings",
    )


# ====================================================================== selection
def _subarea_frame(plan) -> gpd.GeoDataFrame:
    d = plan.dissolved
    return d[["subarea", "name", "geometry"]].reset_index(drop=True)


def _geoms(gdf) -> np.ndarray:
    """Geometries as a plain numpy object array (shapely calls skip pandas' ufunc layer)."""
    return np.asarray(gdf.geometry.values, dtype=object)


def _check_coverage(coverage, plan) -> gpd.GeoDataFrame:
    if not isinstance(coverage, gpd.GeoDataFrame):
        raise UserError("coverage must be a GeoDataFrame (see read_coverage)")
    missing = [c for c in ("carrier", "cell_id") if c not in coverage.columns]
    if missing:
        raise UserError(f"coverage lacks the columns {missing}", fix="read it with read_coverage")
    if coverage.crs is not None and plan.crs is not None and not CRS.from_user_input(coverage.crs).equals(plan.crs):
        coverage = coverage.to_crs(plan.crs)
    if len(coverage) == 0:
        raise UserError("the coverage has no cells")
    return coverage


def _overlap_pairs(sub_geoms: np.ndarray, cell_geoms: np.ndarray):
    """(subarea index, cell index, overlap area m²) for every overlapping pair."""
    tree = shapely.STRtree(cell_geoms)
    si, ci = tree.query(sub_geoms, predicate="intersects")
    shapely.prepare(sub_geoms)
    inside = shapely.contains_properly(sub_geoms[si], cell_geoms[ci])
    inter = shapely.area(cell_geoms[ci])
    cut = ~inside
    inter[cut] = shapely.area(shapely.intersection(sub_geoms[si[cut]], cell_geoms[ci[cut]]))
    keep = inter > MIN_OVERLAP_M2
    return si[keep], ci[keep], inter[keep]


def selection_geometry(coverage: gpd.GeoDataFrame) -> np.ndarray:
    """The polygons selection rules look at: the nominal best-server polygon when the
    coverage carries one (column ``nominal``, as :func:`~subdivide.analysis.sites.coverage_from_sites`
    writes it; ``nominal_wkt`` in files), else the coverage polygon itself."""
    if "nominal" in coverage.columns:
        nom = np.asarray(gpd.GeoSeries(coverage["nominal"]).values, dtype=object)
        absent = shapely.is_missing(nom)
        absent[~absent] = shapely.is_empty(nom[~absent])
        return np.where(absent, _geoms(coverage), nom)
    return _geoms(coverage)


def select_cells(plan, coverage: gpd.GeoDataFrame, *, selection: str = "any", min_share: float = 0.5,
                 cell_ids=None) -> pd.DataFrame:
    """Cells each carrier selects for each sub-area.

    ``selection``: ``any`` — every cell overlapping the sub-area (more than 1 m²);
    ``site`` — cells whose site point lies inside the sub-area (needs site_x/site_y);
    ``share`` — cells with at least ``min_share`` of their coverage area inside.
    The rules look at the nominal best-server polygon when the coverage has one
    (:func:`selection_geometry`) — carriers plan on best-server plots, while handsets
    camp further out — and at the coverage polygon otherwise.
    ``cell_ids``: explicit lists supplied by carriers — a DataFrame (or CSV path) with
    columns subarea (number or name), carrier, cell_id; for the carriers it names it
    replaces the rule, other carriers keep the rule.

    Returns a DataFrame (subarea int, carrier str, cell_id str) sorted by those columns.
    """
    if selection not in SELECTIONS:
        raise UserError(f"selection {selection!r} is not one of {SELECTIONS}",
                        fix="any (overlap), site (site inside) or share (overlap share ≥ min_share)")
    if not 0.0 < float(min_share) <= 1.0:
        raise UserError(f"min_share {min_share!r} must be in (0, 1]", fix="e.g. 0.5")
    coverage = _check_coverage(coverage, plan)
    subs = _subarea_frame(plan)
    sg = _geoms(subs)
    cg = selection_geometry(coverage)
    numbers = subs["subarea"].to_numpy()
    if selection == "site":
        sx = coverage["site_x"].to_numpy(float) if "site_x" in coverage.columns else np.full(len(coverage), np.nan)
        sy = coverage["site_y"].to_numpy(float) if "site_y" in coverage.columns else np.full(len(coverage), np.nan)
        nosite = ~(np.isfinite(sx) & np.isfinite(sy))
        if nosite.any():
            raise UserError(f"selection 'site' needs every cell's site point; {int(nosite.sum())} cells have none "
                            f"({list(coverage.loc[nosite, 'cell_id'][:5])})",
                            fix="add site_x/site_y (or site_lon/site_lat) to the coverage, or use selection any/share")
        pts = shapely.points(sx, sy)
        si, ci = shapely.STRtree(pts).query(sg, predicate="contains")
    else:
        si, ci, inter = _overlap_pairs(sg, cg)
        if selection == "share":
            share = inter / shapely.area(cg[ci])
            keep = share >= float(min_share) - 1e-12
            si, ci = si[keep], ci[keep]
    out = pd.DataFrame({
        "subarea": numbers[si].astype("int64"),
        "carrier": coverage["carrier"].to_numpy(object)[ci],
        "cell_id": coverage["cell_id"].to_numpy(object)[ci],
    })
    if cell_ids is not None:
        explicit = _explicit_cells(cell_ids, subs, coverage)
        out = pd.concat([out[~out["carrier"].isin(set(explicit["carrier"]))], explicit], ignore_index=True)
    out = out.drop_duplicates().sort_values(["subarea", "carrier", "cell_id"], kind="stable")
    for c in ("carrier", "cell_id"):
        out[c] = out[c].astype(object)
    return out.reset_index(drop=True)


def _explicit_cells(cell_ids, subs: pd.DataFrame, coverage: pd.DataFrame) -> pd.DataFrame:
    where = "cell id list"
    if isinstance(cell_ids, (str, Path)):
        where = str(cell_ids)
        if not Path(cell_ids).exists():
            raise UserError(f"cell id list {cell_ids} does not exist", where=where, fix="check the path")
        cell_ids = read_text_table(cell_ids, what="cell id list")
    df = pd.DataFrame(cell_ids).copy()
    df.columns = [str(c).strip().lower() for c in df.columns]
    missing = [c for c in ("subarea", "carrier", "cell_id") if c not in df.columns]
    if missing:
        raise UserError(f"the cell id list lacks the columns {missing}", where=where,
                        fix="columns: subarea (number or name), carrier, cell_id")
    by_name = dict(zip(subs["name"].astype(str), subs["subarea"]))
    by_num = {str(int(s)): int(s) for s in subs["subarea"]}
    labels = df["subarea"].map(_text)
    num = labels.map(lambda s: by_num.get(s, by_name.get(s)))
    if num.isna().any():
        bad = sorted(set(labels[num.isna()]))[:10]
        raise UserError(f"unknown sub-areas in the cell id list: {bad}", where=where,
                        fix=f"use the sub-area numbers {sorted(by_num)} or names {sorted(by_name)}")
    out = pd.DataFrame({"subarea": num.astype("int64"), "carrier": df["carrier"].map(_text).astype(object),
                        "cell_id": df["cell_id"].map(_text).astype(object)})
    known = set(zip(coverage["carrier"], coverage["cell_id"]))
    unknown = [f"{c}:{i}" for c, i in zip(out["carrier"], out["cell_id"]) if (c, i) not in known]
    if unknown:
        raise UserError(f"{len(unknown)} cell ids in the list are not in the coverage: {sorted(unknown)[:10]}",
                        where=where, fix="check the carrier and cell_id spelling against the coverage file")
    return out


# ====================================================================== metrics
def _segments(geom) -> np.ndarray:
    """The boundary of a (multi)polygon as an array of 2-point LineStrings."""
    b = shapely.get_parts(shapely.get_parts(shapely.boundary(geom)))
    coords, idx = shapely.get_coordinates(b, return_index=True)
    same = idx[1:] == idx[:-1]
    seg = np.stack([coords[:-1][same], coords[1:][same]], axis=1)
    return shapely.linestrings(seg)


def lattice_points(geom, step: float, *, max_points: int = MAX_POINTS) -> tuple[np.ndarray, float]:
    """Centres of the global lattice ``(i + ½)·step`` lying inside ``geom`` (x, y arrays
    stacked as (n, 2)) and the step actually used: it grows when the bounding box would
    hold more than ``max_points`` points, and shrinks (to at least 1 m) when the area
    would hold fewer than about 100 points, so small areas are still sampled."""
    if geom is None or shapely.is_empty(geom):
        return np.empty((0, 2)), step
    area = shapely.area(geom)
    minx, miny, maxx, maxy = shapely.bounds(geom)
    step = float(step)
    if area > 0:
        step = min(step, max(math.sqrt(area / 100.0), 1.0))
    bbox = (maxx - minx) * (maxy - miny)
    if bbox / step ** 2 > max_points:
        step = math.sqrt(bbox / max_points)
    xs = (np.arange(math.floor(minx / step), math.ceil(maxx / step)) + 0.5) * step
    ys = (np.arange(math.floor(miny / step), math.ceil(maxy / step)) + 0.5) * step
    xx, yy = np.meshgrid(xs, ys)
    xx, yy = xx.ravel(), yy.ravel()
    shapely.prepare(geom)
    inside = shapely.contains_xy(geom, xx, yy)
    return np.column_stack([xx[inside], yy[inside]]), step


class BoundaryDistance:
    """Fast distances (m) from points outside/inside a polygon to its boundary.

    A cKDTree over the boundary densified every ``spacing_m`` gives, for each point, an
    upper bound ``d ≤ d_true·… ≤ sqrt(d_true² + (spacing/2)²)`` — off by at most
    ``spacing_m/2`` (at the boundary) and by centimetres kilometres away. Points whose
    bound is within ``spacing_m`` of the running maximum are then refined exactly with a
    ``STRtree.query_nearest`` over the boundary segments, so the maximum is exact."""

    def __init__(self, geom, spacing_m: float = 20.0):
        self.spacing = float(spacing_m)
        boundary = shapely.boundary(geom)
        self.segments = _segments(geom)
        coords = shapely.get_coordinates(shapely.segmentize(boundary, self.spacing))
        from scipy.spatial import cKDTree

        self.kd = cKDTree(coords)
        self._tree = None

    @property
    def tree(self):
        if self._tree is None:
            self._tree = shapely.STRtree(self.segments)
        return self._tree

    def approx(self, xy: np.ndarray) -> np.ndarray:
        if not len(xy):
            return np.empty(0)
        d, _ = self.kd.query(xy, k=1)
        return d

    def exact(self, xy: np.ndarray) -> np.ndarray:
        if not len(xy):
            return np.empty(0)
        _, d = self.tree.query_nearest(shapely.points(xy), return_distance=True, all_matches=False)
        return d

    def max_exact(self, xy: np.ndarray) -> float:
        """Exact maximum distance over ``xy`` (approximate pass, exact refinement)."""
        if not len(xy):
            return 0.0
        d = self.approx(xy)
        cand = xy[d >= d.max() - self.spacing]
        return float(self.exact(cand).max())


def overshoot_km(over_alert, subarea_geom, *, grid_m: float = GRID_M,
                 boundary: BoundaryDistance | None = None) -> tuple[float, float, float]:
    """(max, P50, P95) in km of the distance from the over-alert area to the sub-area.

    The max is the directed Hausdorff distance from the footprint to the sub-area (over
    the over-alert polygon's vertices and the lattice samples, exact distances); P50/P95
    are over the lattice samples (area-weighted; distances within 10 m, see
    :class:`BoundaryDistance`). All 0 when there is no over-alert area."""
    if over_alert is None or shapely.is_empty(over_alert) or shapely.area(over_alert) <= 0:
        return 0.0, 0.0, 0.0
    bd = boundary if boundary is not None else BoundaryDistance(subarea_geom)
    pts, _ = lattice_points(over_alert, grid_m)
    verts = shapely.get_coordinates(over_alert)
    d_pts = bd.approx(pts)
    dmax = bd.max_exact(np.vstack([pts, verts]))
    sample = d_pts if len(d_pts) else bd.exact(verts)
    # the lattice distances are approximate (within 10 m): never let a percentile pass the exact max
    p50, p95 = (min(float(np.percentile(sample, q)), dmax) for q in (50, 95))
    return (dmax / 1000.0, p50 / 1000.0, p95 / 1000.0)


def _inner_distances(geom, grid_m: float, bd: BoundaryDistance) -> tuple[np.ndarray, float]:
    """Distances (m) from lattice points inside a sub-area to its boundary, and the step."""
    pts, step = lattice_points(geom, grid_m)
    return bd.approx(pts), step


def core_share_lattice(inner: np.ndarray, step: float, spill_m: float) -> float:
    """The exact polygon model's core share ``area(A.buffer(−L)) / area(A)`` estimated
    from lattice distances (each point counts by how much of its cell lies beyond L,
    linearly: within 0.1 % of the buffer on a square) — no slow negative buffer."""
    if not len(inner):
        return 0.0
    return float(np.mean(np.clip((inner - spill_m) / step + 0.5, 0.0, 1.0)))


def _areal_population(geoms: np.ndarray, blocks: gpd.GeoDataFrame):
    """Pairs (geometry index, block index, intersected area m², weighted population)."""
    bg = _geoms(blocks)
    gi, bi = shapely.STRtree(bg).query(geoms, predicate="intersects")
    if len(gi) == 0:
        return gi, bi, np.empty(0), np.empty(0)
    a = shapely.area(shapely.intersection(geoms[gi], bg[bi]))
    barea = shapely.area(bg[bi])
    pop = blocks["population"].to_numpy(float)[bi] * np.where(barea > 0, a / np.where(barea > 0, barea, 1), 0)
    return gi, bi, a, pop


def _neighbour_frame(neighbours, plan) -> gpd.GeoDataFrame | None:
    """Neighbouring municipalities in the plan CRS minus the municipality itself (the
    same reading as ``subdivide spill --neighbours``): columns neighbour (name),
    population (NaN when unknown), density (people per m² of the whole outline), geometry."""
    if neighbours is None:
        return None
    from subdivide.analysis.spill import read_neighbours

    own = shapely.union_all(_geoms(plan.dissolved))
    nb = read_neighbours(neighbours, plan.crs, exclude_code=plan.muni_code, own=own)
    return nb.rename(columns={"name": "neighbour"})


def _cell_members(coverage: gpd.GeoDataFrame, selected: pd.DataFrame) -> dict:
    """(subarea, carrier) → positions in ``coverage`` of the selected cells, in selection order."""
    pos = pd.Series(np.arange(len(coverage)),
                    index=pd.MultiIndex.from_arrays([coverage["carrier"].to_numpy(object),
                                                     coverage["cell_id"].to_numpy(object)]))
    cidx = pos.reindex(pd.MultiIndex.from_arrays([selected["carrier"].to_numpy(object),
                                                  selected["cell_id"].to_numpy(object)])).to_numpy()
    sel_key = list(zip(selected["subarea"].astype(int), selected["carrier"]))
    members: dict = {}
    for k, ci in zip(sel_key, cidx):
        members.setdefault(k, []).append(int(ci))
    return members


def _footprints(coverage: gpd.GeoDataFrame, selected: pd.DataFrame, subs, carriers: list, progress):
    """One union of selected cells per (subarea, carrier), sub-areas in display order and
    carriers sorted, then per sub-area the union over carriers (``ALL``). Returns the
    footprints, their cell counts, and each row's sub-area position and carrier."""
    members = _cell_members(coverage, selected)
    cg = _geoms(coverage)
    groups = [(int(s), c) for s in subs["subarea"] for c in carriers]
    fp = np.empty(len(groups) + len(subs), dtype=object)
    n_cells = np.zeros(len(fp), dtype="int64")
    for i, key in enumerate(groups):
        idx = np.array(sorted(members.get(key, [])), dtype=int)
        fp[i] = shapely.union_all(cg[idx]) if len(idx) else shapely.Polygon()
        n_cells[i] = len(idx)
        progress("footprints", i + 1, len(groups))
    nc = len(carriers)
    for j in range(len(subs)):
        fp[len(groups) + j] = shapely.union_all(fp[j * nc:(j + 1) * nc])
        n_cells[len(groups) + j] = n_cells[j * nc:(j + 1) * nc].sum()
    rows_sub = np.r_[np.repeat(np.arange(len(subs)), nc), np.arange(len(subs))]
    rows_car = np.array([c for _, c in groups] + [ALL] * len(subs), dtype=object)
    return fp, n_cells, rows_sub, rows_car


def _overshoots(over: np.ndarray, sg: np.ndarray, rows_sub: np.ndarray, grid_m: float, progress):
    """Overshoot (max, P50, P95 km) of every over-alert area beyond its sub-area, and each
    row's core share at L = its P95 overshoot (the exact polygon model, by lattice)."""
    trees = [BoundaryDistance(g) for g in sg]
    shoot = np.zeros((len(over), 3))
    for i in range(len(over)):
        shoot[i] = overshoot_km(over[i], sg[rows_sub[i]], grid_m=grid_m, boundary=trees[rows_sub[i]])
        progress("overshoot", i + 1, len(over))
    L = shoot[:, 2]
    inner = [_inner_distances(g, grid_m, t) for g, t in zip(sg, trees)]
    core = np.array([core_share_lattice(*inner[j], L[i] * 1000.0) for i, j in enumerate(rows_sub)])
    return shoot, core


def _footprint_table(subs, rows_sub, rows_car, n_cells, fp, over, under, sub_geom, over_pop, under_pop,
                     shoot, core, order: dict) -> pd.DataFrame:
    """The footprints table: display order, carriers sorted, ALL last."""
    L = shoot[:, 2]
    sub_area = shapely.area(sub_geom)
    under_area = shapely.area(under)
    table = pd.DataFrame({
        "subarea": subs["subarea"].to_numpy()[rows_sub].astype("int64"),
        "name": subs["name"].to_numpy(object)[rows_sub],
        "carrier": rows_car,
        "n_cells": n_cells,
        "subarea_km2": sub_area / 1e6,
        "footprint_km2": shapely.area(fp) / 1e6,
        "over_alert_km2": shapely.area(over) / 1e6,
        "over_alert_pop": over_pop,
        "under_alert_km2": under_area / 1e6,
        "under_alert_pop": under_pop,
        "under_alert_share": np.where(sub_area > 0, under_area / np.where(sub_area > 0, sub_area, 1), 0.0),
        "overshoot_max_km": shoot[:, 0],
        "overshoot_p50_km": shoot[:, 1],
        "overshoot_p95_km": shoot[:, 2],
        "implied_L_km": L,
        "trial_band": TRIAL_BAND,
        "vs_trial": np.where(L < TRIAL_L_KM[0], "below", np.where(L > TRIAL_L_KM[1], "above", "within")),
        "core_share_at_L": core,
    })
    table["_o"] = table["subarea"].map(order)
    table["_c"] = np.where(table["carrier"] == ALL, 1, 0)
    table = table.sort_values(["_o", "_c", "carrier"], kind="stable").drop(columns=["_o", "_c"])
    for col in ("name", "carrier", "trial_band", "vs_trial"):
        table[col] = table[col].astype(object)
    return table.reset_index(drop=True)[list(FOOTPRINT_COLUMNS)]


def _sorted_by_neighbour(by_nb: pd.DataFrame, order: dict) -> pd.DataFrame:
    """The over-alert split in display order, carriers sorted (ALL last), then sub-areas,
    municipalities and the unidentified outside."""
    by_nb = by_nb.drop(columns=["_row"])
    by_nb["_o"] = by_nb["subarea"].map(order)
    by_nb["_c"] = np.where(by_nb["carrier"] == ALL, 1, 0)
    kind_order = {"subarea": 0, "municipality": 1, "outside": 2}
    by_nb["_k"] = by_nb["neighbour_kind"].map(kind_order)
    by_nb = (by_nb.sort_values(["_o", "_c", "carrier", "_k", "neighbour_subarea", "neighbour"], kind="stable")
             .drop(columns=["_o", "_c", "_k"]).reset_index(drop=True))
    return by_nb[list(BY_NEIGHBOUR_COLUMNS)]


def footprint_report(plan, coverage: gpd.GeoDataFrame, *, selection: str = "any", min_share: float = 0.5,
                     cell_ids=None, neighbours=None, grid_m: float = GRID_M, selected: pd.DataFrame | None = None,
                     progress=None) -> dict[str, pd.DataFrame]:
    """Footprint metrics per sub-area × carrier, plus the union over carriers (``ALL``).

    Returns ``{"footprints": …, "over_alert_by_neighbour": …, "selected": …}``:

    footprints (one row per sub-area × carrier, display order, carriers sorted, ALL last):
        subarea, name, carrier, n_cells, subarea_km2, footprint_km2, over_alert_km2,
        over_alert_pop (areal-weighted: town-blocks of other sub-areas, plus neighbouring
        municipalities whose population is given), under_alert_km2, under_alert_pop,
        under_alert_share, overshoot_max_km (directed Hausdorff footprint → sub-area),
        overshoot_p50_km, overshoot_p95_km, implied_L_km (= P95 overshoot), trial_band
        ("1.6–3.3 km"), vs_trial (below / within / above), core_share_at_L (share of the
        sub-area further than implied_L_km inside its boundary, the exact polygon model).
    over_alert_by_neighbour:
        subarea, carrier, neighbour (sub-area name, municipality name, or "(outside,
        unidentified)"), neighbour_kind (subarea / municipality / outside),
        neighbour_subarea (number or <NA>), area_km2, population (NaN when unknown).
    selected: the (subarea, carrier, cell_id) rows of :func:`select_cells`.
    """
    progress = progress or (lambda *a: None)
    coverage = _check_coverage(coverage, plan)
    if selected is None:
        selected = select_cells(plan, coverage, selection=selection, min_share=min_share, cell_ids=cell_ids)
    subs = _subarea_frame(plan)
    blocks = plan.blocks
    carriers = sorted(set(coverage["carrier"]))
    fp, n_cells, rows_sub, rows_car = _footprints(coverage, selected, subs, carriers, progress)
    sg = _geoms(subs)
    sub_geom = sg[rows_sub]
    over = shapely.difference(fp, sub_geom)
    under = shapely.difference(sub_geom, fp)
    # ---- population, areal-weighted
    gi, bi, _, pop = _areal_population(under, blocks)
    own = blocks["subarea"].to_numpy()[bi] == subs["subarea"].to_numpy()[rows_sub[gi]]
    under_pop = np.bincount(gi[own], weights=pop[own], minlength=len(fp))
    # ---- over-alert split by neighbour
    by_nb = _split_over_alert(over, rows_sub, rows_car, subs, blocks, _neighbour_frame(neighbours, plan))
    over_pop = by_nb.groupby("_row")["population"].sum(min_count=1).reindex(range(len(fp))).fillna(0.0).to_numpy()
    shoot, core = _overshoots(over, sg, rows_sub, grid_m, progress)
    order = {s: i for i, s in enumerate(subs["subarea"])}
    table = _footprint_table(subs, rows_sub, rows_car, n_cells, fp, over, under, sub_geom, over_pop, under_pop,
                             shoot, core, order)
    return {"footprints": table,
            "over_alert_by_neighbour": _sorted_by_neighbour(by_nb, order),
            "selected": selected}


def _split_over_alert(over, rows_sub, rows_car, subs, blocks, nb) -> pd.DataFrame:
    """Over-alert area and population per receiving neighbour (vectorised pairs)."""
    sg = _geoms(subs)
    numbers = subs["subarea"].to_numpy()
    names = subs["name"].to_numpy(object)
    frames = []
    # other sub-areas: area by intersection, population by blocks
    oi, sj = shapely.STRtree(sg).query(over, predicate="intersects")
    if len(oi):
        a = shapely.area(shapely.intersection(over[oi], sg[sj]))
        keep = (a > MIN_OVERLAP_M2) & (sj != rows_sub[oi])
        oi, sj, a = oi[keep], sj[keep], a[keep]
    else:
        a = np.empty(0)
    gi, bi, _, pop = _areal_population(over, blocks)
    bsub = blocks["subarea"].to_numpy()
    pop_df = (pd.DataFrame({"_row": gi, "nsub": bsub[bi], "population": pop})
              .groupby(["_row", "nsub"])["population"].sum())
    sub_df = pd.DataFrame({"_row": oi, "nsub": numbers[sj], "area_km2": a / 1e6})
    pairs = pd.MultiIndex.from_arrays([sub_df["_row"], sub_df["nsub"]])
    sub_df["population"] = pop_df.reindex(pairs).fillna(0.0).to_numpy()
    sub_df["neighbour"] = names[sj]
    sub_df["neighbour_kind"] = "subarea"
    sub_df["neighbour_subarea"] = sub_df.pop("nsub")
    frames.append(sub_df)
    outline = shapely.union_all(sg)
    outside = shapely.difference(over, outline)
    if nb is not None and len(nb):
        ng = _geoms(nb)
        oi2, nj = shapely.STRtree(ng).query(outside, predicate="intersects")
        a2 = shapely.area(shapely.intersection(outside[oi2], ng[nj])) if len(oi2) else np.empty(0)
        keep = a2 > MIN_OVERLAP_M2
        oi2, nj, a2 = oi2[keep], nj[keep], a2[keep]
        mun = pd.DataFrame({"_row": oi2, "area_km2": a2 / 1e6,
                            "population": a2 * nb["density"].to_numpy(float)[nj],
                            "neighbour": nb["neighbour"].to_numpy(object)[nj],
                            "neighbour_kind": "municipality", "neighbour_subarea": -1})
        frames.append(mun)
        outside = shapely.difference(outside, shapely.union_all(ng))
    rest = shapely.area(outside)
    has = rest > MIN_OVERLAP_M2
    frames.append(pd.DataFrame({"_row": np.flatnonzero(has), "area_km2": rest[has] / 1e6, "population": np.nan,
                                "neighbour": "(outside, unidentified)", "neighbour_kind": "outside",
                                "neighbour_subarea": -1}))
    df = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(len(f) for f in frames) else \
        pd.DataFrame({"_row": pd.Series([], dtype="int64"), "area_km2": [], "population": [], "neighbour": [],
                      "neighbour_kind": [], "neighbour_subarea": pd.Series([], dtype="int64")})
    df["_row"] = df["_row"].astype("int64")
    df["subarea"] = numbers[rows_sub[df["_row"].to_numpy()]].astype("int64")
    df["carrier"] = rows_car[df["_row"].to_numpy()]
    ns = df["neighbour_subarea"].astype("int64")
    df["neighbour_subarea"] = pd.array(np.where(ns > 0, ns, 0), dtype="Int64")
    df.loc[ns <= 0, "neighbour_subarea"] = pd.NA
    for c in ("carrier", "neighbour", "neighbour_kind"):
        df[c] = df[c].astype(object)
    df["area_km2"] = df["area_km2"].astype(float)
    df["population"] = df["population"].astype(float)
    return df
