"""Test helper: the e-Stat 2020 republications people actually pass round (issue 20),
built from the real 鳥取県 polygons and attributes.

- :func:`to_2020_layout`: e-Stat 2015 legacy records → the 2020 (r2ka) column layout, with
  the internal ArcInfo ids spelt as the CODH/NII republication spells them (``R2KAxx`` /
  ``R2KAxx_ID``), or dropped, plus an ``id`` column if asked;
- :func:`city_layer`: the municipality layer beside the town-blocks (dissolved by CITY);
- :func:`write_topojson`: both as one TopoJSON (objects ``town`` and ``city``, no CRS,
  quantised shared arcs) with the ``topojson`` package;
- :func:`write_geojson`: GeoJSON of the town layer without a CRS member, optionally with
  KEY_CODE (and the other codes) as numbers, as converters write them.
"""
from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely

ID_SPELLINGS = {"codh": ("R2KAxx", "R2KAxx_ID"), "kept": ("R2KA{PP}_", "R2KA{PP}_ID"), "dropped": ()}


def to_2020_layout(raw: gpd.GeoDataFrame, *, ids: str = "codh", add_id: bool = False,
                   extra: tuple[str, ...] = ()) -> gpd.GeoDataFrame:
    """2015 legacy records (KEN, MOJI …) in the 2020 layout (PREF, S_AREA, S_NAME …)."""
    r = raw.reset_index(drop=True)
    city_name = r["CSS_NAME"].fillna("").where(r["CSS_NAME"].fillna("") != "", r["GST_NAME"].fillna(""))
    cols = {
        "KEY_CODE": r["KEY_CODE"], "PREF": r["KEN"], "CITY": r["CITY"],
        "S_AREA": r["KIHON1"].fillna("") + r["KIHON2"].fillna(""),
        "PREF_NAME": r["KEN_NAME"], "CITY_NAME": city_name, "S_NAME": r["MOJI"].fillna(""),
        "KIGO_E": r["KIGO_E"].fillna(""), "HCODE": r["HCODE"], "AREA": r["AREA"], "PERIMETER": r["PERIMETER"],
    }
    pp = str(r["KEN"].iloc[0])
    spelt = ID_SPELLINGS[ids] if ids != "kept" else (f"R2KA{pp}_", f"R2KA{pp}_ID")
    for name, src in zip(spelt, (f"H27KA{pp}_", f"H27KA{pp}_ID")):
        cols[name] = r[src]
    for c in ("KIHON1", "DUMMY1", "KIHON2", "KEYCODE1", "KEYCODE2", "AREA_MAX_F", "KIGO_D", "N_KEN",
              "N_CITY", "KIGO_I", "KBSUM", "JINKO", "SETAI", "X_CODE", "Y_CODE", "KCODE1"):
        cols[c] = r[c]
    out = gpd.GeoDataFrame(cols, geometry=r.geometry.values, crs=raw.crs)
    for c in out.columns:          # e-Stat text fields are blank, never null
        if c != "geometry" and (out[c].dtype == object or pd.api.types.is_string_dtype(out[c])):
            out[c] = out[c].fillna("").astype(str).astype(object)
    for c in extra or ():
        out[c] = r[c].to_numpy()
    if add_id:
        out.insert(0, "id", range(1, len(out) + 1))
    return out


def city_layer(town: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """One polygon per municipality with its code, names and totals (the ``city`` object)."""
    g = town.assign(geometry=shapely.make_valid(town.geometry.values))
    return g.dissolve(by=["PREF", "CITY"], aggfunc={"PREF_NAME": "first", "CITY_NAME": "first",
                                                    "JINKO": "sum", "SETAI": "sum"}).reset_index()


def write_topojson(path: Path, town: gpd.GeoDataFrame, city: gpd.GeoDataFrame, *,
                   quantize: int | bool = 1_000_000) -> Path:
    """A TopoJSON with objects ``town`` and ``city`` (longitude/latitude, no CRS, shared arcs),
    quantised to ``quantize`` steps across the extent (False: full coordinates)."""
    import topojson

    for g in (town, city):
        if g.crs is not None and g.crs.to_epsg() not in (4612, 6668, 4326):
            raise ValueError("write longitude/latitude")
    strip = [pd.DataFrame(g.drop(columns="geometry")).pipe(gpd.GeoDataFrame, geometry=g.geometry.values)
             for g in (town, city)]
    topo = topojson.Topology(strip, object_name=["town", "city"], prequantize=quantize, topology=True)
    Path(path).write_text(topo.to_json(), encoding="utf-8")
    return Path(path)


def write_geojson(path: Path, town: gpd.GeoDataFrame, *, numeric_codes: bool = False) -> Path:
    """GeoJSON without a CRS member (RFC 7946); codes as numbers when a converter made them so."""
    g = town.copy()
    if numeric_codes:
        for c in ("KEY_CODE", "PREF", "CITY", "S_AREA"):
            g[c] = pd.to_numeric(g[c]).astype("int64")
    feats = json.loads(g.to_json(drop_id=True))
    feats.pop("crs", None)
    Path(path).write_text(json.dumps(feats, ensure_ascii=False), encoding="utf-8")
    return Path(path)
