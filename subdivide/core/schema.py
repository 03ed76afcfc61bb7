"""The canonical in-memory schema for town-blocks and plans, defined once.

Readers (``townblocks.read_townblocks``, ``plan.read_plan``) convert whatever arrives to
this schema and call :func:`check_townblocks` / :func:`check_plan_blocks` at the
boundary; everything inside the package trusts it.

Town-blocks (one row per 町丁・字, multipart units already dissolved):

========================  ========  ====================================================
column                    dtype     meaning
========================  ========  ====================================================
key                       str       KEY_CODE (9 or 11 digits) or the mapped id column
name                      str       name verbatim (may be empty); NFKC only for matching
muni_code                 str       5-digit 全国地方公共団体コード
population                int64     人口 (JINKO), summed over parts; the known count (0 when unknown)
households                int64     世帯 (SETAI), summed over parts; the known count (0 when unknown)
area_official_m2          float64   official AREA in m² (NaN when the source has none)
island                    bool      KIGO_I set (離島)
enclave                   bool      KIGO_D set (飛び地)
multipart                 bool      several source rows (KIGO_E E1, E2 …) were dissolved
repaired                  bool      geometry was invalid and has been repaired
population_unknown        bool      the population is unknown: withheld (秘匿 X, -, …, *) or empty
households_unknown        bool      the households are unknown: withheld or empty
geometry                  Polygon/MultiPolygon in a projected CRS (metres)
========================  ========  ====================================================

Original attributes are kept verbatim as further columns (e-Stat names are upper
case, so they never clash with the lower-case canonical names).

Unknown counts. e-Stat withholds small figures (secrecy marks X, -, …, *); the reader
keeps them **unknown**, never a guessed number: ``population_unknown`` /
``households_unknown`` are True and the count column holds 0, so every sum downstream is
the total of the *known* figures (pandas and numpy alike, no NaN to poison an areal
weighting or a package's integer field), and :func:`unknown_count` says how many
town-blocks it leaves out. Frames from before these flags existed (an older plan file)
get them as False.

A plan's town-blocks add ``subarea`` (int, 1–14). Its sub-area table has the columns
in :data:`SUBAREA_COLUMNS`.
"""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from subdivide.core.errors import UserError

TOWNBLOCK_COLUMNS: dict[str, str] = {
    "key": "str",
    "name": "str",
    "muni_code": "str",
    "population": "int64",
    "households": "int64",
    "area_official_m2": "float64",
    "island": "bool",
    "enclave": "bool",
    "multipart": "bool",
    "repaired": "bool",
    "population_unknown": "bool",
    "households_unknown": "bool",
}
#: canonical columns a frame written before they existed may lack (filled with this value)
DEFAULTED_COLUMNS: dict[str, object] = {"population_unknown": False, "households_unknown": False}
#: count column → its "unknown" flag
UNKNOWN_FLAG = {"population": "population_unknown", "households": "households_unknown"}
FLAG_COLUMNS = ("island", "enclave", "multipart", "repaired")

#: plan town-blocks = town-block schema + this column
SUBAREA_COLUMN = "subarea"

#: the sub-area table of a plan
SUBAREA_COLUMNS: dict[str, str] = {
    "subarea": "int64",        # number 1–14
    "name": "str",             # 「●●地域」
    "display_order": "int64",  # 表示順, 1-based
    "code": "str",             # municipality 5 digits + 2-digit number, e.g. 0320501
}


def empty_townblocks(crs) -> gpd.GeoDataFrame:
    """An empty frame with the canonical columns (useful for tests and builders)."""
    data = {c: pd.Series([], dtype=("object" if t == "str" else t)) for c, t in TOWNBLOCK_COLUMNS.items()}
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries([], crs=crs), crs=crs)


def _already(s: pd.Series, dtype: str) -> bool:
    """Whether column ``s`` is already what :func:`coerce_townblocks` makes of it (then it is
    kept as it is: the same values, no new array or string objects)."""
    if dtype == "str":
        return s.dtype == object and pd.api.types.infer_dtype(s, skipna=False) == "string"
    if dtype == "bool":
        return s.dtype == bool
    return str(s.dtype) == dtype              # int64 / float64 as they are


def coerce_townblocks(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Cast canonical columns to their dtypes, canonical columns first, index 0..n-1,
    rows sorted by key (deterministic order everywhere downstream).

    The input is never changed. The copy is shallow (pandas copy-on-write: a column is
    copied only when written), so a frame that is already canonical — every plan the
    planner scores, every reload — shares its other columns instead of duplicating the
    whole town-block table (issue 19: 13 candidate plans of 50,000 blocks)."""
    out = gdf.copy(deep=False)
    for col, value in DEFAULTED_COLUMNS.items():
        if col not in out.columns:
            out[col] = value
    for col, dtype in TOWNBLOCK_COLUMNS.items():
        if _already(out[col], dtype):     # canonical already (a plan's blocks): no new objects
            continue
        if dtype == "str":
            out[col] = out[col].fillna("").astype(str).astype(object)
        elif dtype == "bool":
            out[col] = out[col].fillna(False).astype(bool)
        elif dtype == "int64":
            out[col] = pd.to_numeric(out[col], errors="coerce").fillna(0).round().astype("int64")
        else:
            out[col] = pd.to_numeric(out[col], errors="coerce").astype("float64")
    rest = [c for c in out.columns if c not in TOWNBLOCK_COLUMNS and c != out.geometry.name]
    out = out[list(TOWNBLOCK_COLUMNS) + rest + [out.geometry.name]]
    if not out["key"].is_monotonic_increasing:      # already in key order: no reordering copy
        out = out.sort_values("key", kind="stable")
    return out.reset_index(drop=True)


def unknown_count(blocks: pd.DataFrame, column: str = "population") -> int:
    """How many town-blocks have an unknown ``column`` (population or households)."""
    flag = UNKNOWN_FLAG[column]
    return int(blocks[flag].sum()) if flag in blocks.columns else 0


def check_townblocks(gdf: gpd.GeoDataFrame, *, where: str = "town-blocks") -> gpd.GeoDataFrame:
    """Assert the canonical schema; raise UserError naming what is off. Returns gdf."""
    missing = [c for c in TOWNBLOCK_COLUMNS if c not in gdf.columns and c not in DEFAULTED_COLUMNS]
    if missing:
        raise UserError(f"missing canonical columns {missing}", where=where,
                        fix="read the file with subdivide.read_townblocks, which normalises it")
    if not isinstance(gdf, gpd.GeoDataFrame) or gdf.crs is None:
        raise UserError("town-blocks have no CRS", where=where, fix="pass --crs")
    if not gdf.crs.is_projected:
        raise UserError("town-blocks must be in a projected (metre) CRS", where=where,
                        fix="read them with read_townblocks, which projects to the plane-rectangular zone")
    if len(gdf) == 0:
        raise UserError("no town-blocks", where=where, fix="check the file and the municipality code")
    dup = gdf["key"][gdf["key"].duplicated()]
    if len(dup):
        raise UserError(f"duplicate keys after dissolving: {sorted(dup.unique())[:10]}", where=where)
    gt = gdf.geometry.geom_type
    bad = gdf.loc[~gt.isin(["Polygon", "MultiPolygon"]), "key"]
    if len(bad):
        raise UserError(f"{len(bad)} town-blocks are not polygons: {list(bad[:10])}", where=where)
    return gdf


def check_plan_blocks(gdf: gpd.GeoDataFrame, *, where: str = "plan") -> gpd.GeoDataFrame:
    check_townblocks(gdf, where=where)
    if SUBAREA_COLUMN not in gdf.columns:
        raise UserError("plan town-blocks have no 'subarea' column", where=where)
    if gdf[SUBAREA_COLUMN].isna().any():
        keys = list(gdf.loc[gdf[SUBAREA_COLUMN].isna(), "key"][:10])
        raise UserError(f"unassigned town-blocks: {keys}", where=where)
    if not np.issubdtype(gdf[SUBAREA_COLUMN].dtype, np.integer):
        raise UserError("'subarea' must hold integers 1–14", where=where)
    return gdf
