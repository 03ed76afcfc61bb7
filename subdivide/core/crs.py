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
