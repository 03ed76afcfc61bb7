"""全国地方公共団体コード check digits and sub-area codes (DOMAIN.md §4)."""
import pytest
from hypothesis import given, strategies as st

from subdivide.core.codes import (check_digit, is_valid_code6, normalize_municipality_code,
                             subarea_code, subarea_code6, with_check_digit)
from subdivide.core.crs import plane_rectangular_epsg, parse_crs
from subdivide.core.errors import UserError


@pytest.mark.parametrize("code5,code6", [
    ("03205", "032051"),  # 花巻市
    ("35204", "352047"),  # 萩市
    ("13101", "131016"),  # 千代田区
    ("14130", "141305"),  # 川崎市
])
def test_check_digit_reference_values(code5, code6):
    assert with_check_digit(code5) == code6
    assert is_valid_code6(code6)
    assert normalize_municipality_code(code6) == code5


@given(st.from_regex(r"\d{5}", fullmatch=True))
def test_exactly_one_check_digit_validates(code5):
    valid = [d for d in "0123456789" if is_valid_code6(code5 + d)]
    assert valid == [check_digit(code5)]


@pytest.mark.parametrize("bad,msg", [
    ("3205", "5 digits"),
    ("032052", "check digit is 2, expected 1"),
    ("99205", "prefecture part 99"),
    ("0320a", "5 digits"),
])
def test_bad_codes_have_clear_messages(bad, msg):
    with pytest.raises(UserError, match=msg):
        normalize_municipality_code(bad)


def test_int_code_lost_leading_zero_is_recovered_only_when_unambiguous():
    assert normalize_municipality_code(3205) == "03205"


def test_subarea_codes():
    assert subarea_code("03205", 1) == "0320501"
    assert subarea_code6("03205", 14) == "03205114"


def test_plane_rectangular_zone_per_prefecture():
    assert plane_rectangular_epsg("03") == 6678   # 岩手 X
    assert plane_rectangular_epsg("23") == 6675   # 愛知 VII
    assert plane_rectangular_epsg("35") == 6671   # 山口 III
    assert plane_rectangular_epsg("01") == 6680   # 北海道 XII (e-Stat convention)
    assert plane_rectangular_epsg("47") == 6683   # 沖縄 XV
    assert plane_rectangular_epsg("13") == 6677   # 東京 IX


def test_parse_crs_errors_suggest_a_code():
    assert parse_crs("6678").to_epsg() == 6678
    with pytest.raises(UserError, match="EPSG:6668"):
        parse_crs("not-a-crs")
