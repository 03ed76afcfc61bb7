"""Coordinate reference systems: the prefecture's plane-rectangular zone (JGD2011).

Area and distance are always computed in the prefecture's 平面直角座標系 zone,
EPSG = 6668 + zone (DOMAIN.md §4). e-Stat uses one zone per prefecture.
"""
from __future__ import annotations

from pyproj import CRS

from subdivide.core.errors import UserError

#: prefecture code (int) → plane-rectangular zone number (e-Stat convention)
PREF_ZONE: dict[int, int] = {
    42: 1,  # 長崎
    40: 2, 41: 2, 43: 2, 44: 2, 45: 2, 46: 2,  # 福岡 佐賀 熊本 大分 宮崎 鹿児島
    35: 3, 32: 3, 34: 3,  # 山口 島根 広島
    37: 4, 38: 4, 36: 4, 39: 4,  # 香川 愛媛 徳島 高知
    28: 5, 31: 5, 33: 5,  # 兵庫 鳥取 岡山
    26: 6, 27: 6, 18: 6, 25: 6, 24: 6, 29: 6, 30: 6,  # 京都 大阪 福井 滋賀 三重 奈良 和歌山
    17: 7, 16: 7, 21: 7, 23: 7,  # 石川 富山 岐阜 愛知
    15: 8, 20: 8, 19: 8, 22: 8,  # 新潟 長野 山梨 静岡
    13: 9, 7: 9, 9: 9, 8: 9, 11: 9, 12: 9, 10: 9, 14: 9,  # 東京 福島 栃木 茨城 埼玉 千葉 群馬 神奈川
    2: 10, 5: 10, 6: 10, 3: 10, 4: 10,  # 青森 秋田 山形 岩手 宮城
    1: 12,  # 北海道
    47: 15,  # 沖縄
}

PREF_NAMES = (
    "北海道 青森県 岩手県 宮城県 秋田県 山形県 福島県 茨城県 栃木県 群馬県 埼玉県 千葉県 東京都 神奈川県 "
    "新潟県 富山県 石川県 福井県 山梨県 長野県 岐阜県 静岡県 愛知県 三重県 滋賀県 京都府 大阪府 兵庫県 "
    "奈良県 和歌山県 鳥取県 島根県 岡山県 広島県 山口県 徳島県 香川県 愛媛県 高知県 福岡県 佐賀県 長崎県 "
    "熊本県 大分県 宮崎県 鹿児島県 沖縄県"
).split()

# Rough bounding box of Japan in lon/lat, for sanity checks on coordinates.
JAPAN_LON = (122.0, 154.5)
JAPAN_LAT = (20.0, 46.5)


def plane_rectangular_epsg(pref_code: int | str) -> int:
    """EPSG code of the JGD2011 plane-rectangular zone e-Stat uses for a prefecture.

    >>> plane_rectangular_epsg("03"), plane_rectangular_epsg(23), plane_rectangular_epsg(35)
    (6678, 6675, 6671)
    """
    p = int(pref_code)
    if p not in PREF_ZONE:
        raise UserError(f"prefecture code {pref_code!r} is not 01–47", fix="check the municipality code")
    return 6668 + PREF_ZONE[p]


def crs_for_municipality(muni_code5: str) -> CRS:
    return CRS.from_epsg(plane_rectangular_epsg(muni_code5[:2]))


def parse_crs(text: str, *, option: str = "--crs") -> CRS:
    """Parse a user-supplied CRS ('EPSG:6678', '6678', WKT, PROJ string) with a clear error."""
    t = str(text).strip()
    if t.isdigit():
        t = f"EPSG:{t}"
    try:
        return CRS.from_user_input(t)
    except Exception as exc:  # pyproj raises CRSError with a long message
        raise UserError(
            f"{option} {text!r} is not a CRS pyproj understands ({exc.__class__.__name__})",
            fix="use an EPSG code such as EPSG:6668 (JGD2011 lat/lon) or EPSG:6678 (zone X)",
        ) from None


# --------------------------------------------------------------------------- zones
#: the 19 plane-rectangular zones (平面直角座標系 I–XIX): EPSG code of zone I per datum
ZONE_FAMILIES: dict[str, int] = {"JGD2011": 6669, "JGD2000": 2443, "Tokyo": 30161}
ZONE_NUMERALS = "I II III IV V VI VII VIII IX X XI XII XIII XIV XV XVI XVII XVIII XIX".split()
#: how far (km, median over features) coordinates may sit from the reference points
ZONE_TOLERANCE_KM = 5.0


def plane_rectangular_zone(crs: CRS) -> tuple[str, int] | None:
    """(datum, zone 1–19) when ``crs`` is a Japanese plane-rectangular zone, else None.

    >>> plane_rectangular_zone(CRS.from_epsg(6673)), plane_rectangular_zone(CRS.from_epsg(2452))
    (('JGD2011', 5), ('JGD2000', 10))
    """
    epsg = crs.to_epsg() or crs.to_epsg(min_confidence=20)
    for datum, first in ZONE_FAMILIES.items():
        if epsg is not None and first <= epsg < first + 19:
            return datum, epsg - first + 1
    return None


def zone_crs(datum: str, zone: int) -> CRS:
    return CRS.from_epsg(ZONE_FAMILIES[datum] + zone - 1)


def zone_label(datum: str, zone: int) -> str:
    """'zone V (JGD2011, EPSG:6673)'."""
    return f"zone {ZONE_NUMERALS[zone - 1]} ({datum}, EPSG:{ZONE_FAMILIES[datum] + zone - 1})"


def median_offset_km(x, y, crs: CRS, lon_ref, lat_ref) -> float:
    """Median distance (km) between points (x, y) in ``crs`` and reference lon/lat points."""
    import numpy as np
    from pyproj import Geod, Transformer

    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(np.asarray(x), np.asarray(y))
    ok = np.isfinite(lon) & np.isfinite(lat)
    if not ok.any():
        return float("inf")
    _, _, d = Geod(ellps="GRS80").inv(lon[ok], lat[ok], np.asarray(lon_ref)[ok], np.asarray(lat_ref)[ok])
    return float(np.median(d)) / 1000.0


def zone_that_fits(x, y, datum: str, lon_ref, lat_ref, *, tolerance_km: float = ZONE_TOLERANCE_KM) -> int | None:
    """The zone (1–19) of ``datum`` in which (x, y) land on the reference points, or None."""
    best = min(range(1, 20), key=lambda z: median_offset_km(x, y, zone_crs(datum, z), lon_ref, lat_ref))
    fits = median_offset_km(x, y, zone_crs(datum, best), lon_ref, lat_ref) <= tolerance_km
    return best if fits else None


#: prefectural offices (都道府県庁) in longitude/latitude: where a prefecture's data lies, roughly
PREF_OFFICE_LONLAT: dict[int, tuple[float, float]] = {
    1: (141.347, 43.064), 2: (140.740, 40.824), 3: (141.153, 39.704), 4: (140.872, 38.269),
    5: (140.102, 39.719), 6: (140.364, 38.240), 7: (140.468, 37.750), 8: (140.447, 36.342),
    9: (139.884, 36.566), 10: (139.061, 36.391), 11: (139.649, 35.857), 12: (140.123, 35.605),
    13: (139.692, 35.690), 14: (139.643, 35.448), 15: (139.023, 37.902), 16: (137.211, 36.695),
    17: (136.626, 36.594), 18: (136.222, 36.065), 19: (138.568, 35.664), 20: (138.181, 36.651),
    21: (136.722, 35.391), 22: (138.383, 34.977), 23: (136.907, 35.180), 24: (136.509, 34.730),
    25: (135.869, 35.004), 26: (135.756, 35.021), 27: (135.520, 34.686), 28: (135.183, 34.691),
    29: (135.833, 34.685), 30: (135.168, 34.226), 31: (134.238, 35.504), 32: (133.051, 35.472),
    33: (133.935, 34.662), 34: (132.460, 34.397), 35: (131.471, 34.186), 36: (134.559, 34.066),
    37: (134.043, 34.340), 38: (132.766, 33.842), 39: (133.531, 33.560), 40: (130.418, 33.607),
    41: (130.299, 33.249), 42: (129.874, 32.745), 43: (130.742, 32.790), 44: (131.613, 33.238),
    45: (131.424, 31.911), 46: (130.558, 31.560), 47: (127.681, 26.212),
}
#: prefectures the law splits over several zones (北海道 XI–XIII, 東京都 IX/XIV/XVIII/XIX,
#: 鹿児島県 I/II, 沖縄県 XV–XVII): a zone other than e-Stat's is legitimate there
MULTI_ZONE_PREFS = frozenset({1, 13, 46, 47})


def zone_against_prefecture(x: float, y: float, datum: str, zone: int, pref: int,
                            *, margin_km: float = 50.0, near_km: float = 150.0) -> tuple[int, float, float] | None:
    """For a point (x, y) in plane-rectangular ``zone``: when the prefecture's own zone puts
    it near the prefectural office (within ``near_km``) and ``zone`` puts it ``margin_km``
    further away, return (the prefecture's zone, km from the office in ``zone``, km in the
    prefecture's zone); else None (also for prefectures spanning several zones)."""
    from pyproj import Geod, Transformer

    if pref in MULTI_ZONE_PREFS or pref not in PREF_ZONE or PREF_ZONE[pref] == zone:
        return None
    lon0, lat0 = PREF_OFFICE_LONLAT[pref]
    geod = Geod(ellps="GRS80")

    def km(z: int) -> float:
        lon, lat = Transformer.from_crs(zone_crs(datum, z), "EPSG:4326", always_xy=True).transform(x, y)
        return geod.inv(lon, lat, lon0, lat0)[2] / 1000.0

    own = PREF_ZONE[pref]
    d_declared, d_own = km(zone), km(own)
    if d_own <= near_km and d_declared >= d_own + margin_km:
        return own, d_declared, d_own
    return None
