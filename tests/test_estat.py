"""e-Stat layout definitions and layout detection."""

import pandas as pd
import pytest
from conftest import SHARED_DATA, need

from subdivide.io.estat import LAYOUTS, detect_layout, field_kind, field_names, missing_for_layout
from subdivide.core.errors import UserError

HANAMAKI_CSV = SHARED_DATA / "hanamaki_03205" / "estat2015_town_blocks_hanamaki.csv"


def test_field_counts_match_domain_brief():
    assert [len(field_names(x)) for x in ("2015_legacy", "2015_current", "2020")] == [30, 35, 29]


def test_legacy_layout_is_the_real_hanamaki_table():
    need(HANAMAKI_CSV, "../shared/data (real 花巻 attribute table)")
    cols = pd.read_csv(HANAMAKI_CSV, nrows=1, dtype=str).columns[:30].tolist()
    assert cols == field_names("2015_legacy", "03")
    assert detect_layout(cols) == "2015_legacy"


def test_current_adds_five_fields_and_2020_drops_six():
    legacy = set(LAYOUTS["2015_legacy"])
    current = set(LAYOUTS["2015_current"])
    assert current - legacy == {"PREF", "S_AREA", "PREF_NAME", "CITY_NAME", "S_NAME"}
    r2 = {c.replace("R2KA", "H27KA") for c in LAYOUTS["2020"]}
    assert current - r2 == {"KEN", "KEN_NAME", "SITYO_NAME", "GST_NAME", "CSS_NAME", "MOJI"}
    assert "R2KA{PP}_ID" in LAYOUTS["2020"]


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("pref", ["01", "03", "47"])
def test_detect_each_layout_with_extra_columns_and_any_prefecture(layout, pref):
    cols = field_names(layout, pref) + ["OLD_MUNI", "geometry"]
    assert detect_layout(cols) == layout
    assert detect_layout(list(reversed(cols))) == layout


def test_detect_refuses_incomplete_or_foreign_columns():
    cols = field_names("2015_current")
    cols.remove("JINKO")
    # every layout needs JINKO, so none is complete
    assert detect_layout(cols) is None
    assert "JINKO" in missing_for_layout(cols)["2015_current"]
    assert detect_layout(["key", "name", "pop"]) is None


def test_field_kinds():
    assert field_kind("KEY_CODE") == "str"
    assert field_kind("KIHON1") == "str"
    assert field_kind("JINKO") == "int"
    assert field_kind("H27KA03_ID") == "int"
    assert field_kind("R2KA47_") == "int"
    assert field_kind("AREA") == "float"


def test_unknown_layout_is_a_user_error():
    with pytest.raises(UserError, match="unknown e-Stat layout"):
        field_names("2010")
