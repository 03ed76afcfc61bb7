"""Tables users hand us as .xlsx go through the one workbook reader (subdivide.io.xlsx).

What it must keep from the pandas/openpyxl reader it replaces: every cell as the text Excel
shows (numbers without ``.0``, codes with their zeros, dates), Excel's empty rows and notes
beside the table dropped, a row's index its Excel line − 2. What it adds: formulas read as
the value Excel cached, and a workbook that is a zip bomb or damaged refused with a message
naming the file, before anything is inflated."""
from __future__ import annotations

import datetime as dt
import zipfile

import pandas as pd
import pytest
from openpyxl import Workbook

from subdivide.cli.main import main
from subdivide.core.errors import UserError
from subdivide.io.tables import read_text_table, read_text_tables

from test_xlsx_reader import _workbook


def _pandas(path, sheet=0) -> pd.DataFrame:
    """What the reader used to give: pandas/openpyxl as text, then the same cleaning."""
    from subdivide.io.tables import _clean

    df = pd.read_excel(path, dtype=str, sheet_name=sheet, engine="openpyxl").fillna("")
    return _clean(df, False)


def test_a_staff_workbook_reads_as_pandas_read_it(sample_blocks, tmp_path):
    """Keys as numbers and as text, names, a date, a blank formatted row, a note beside the
    table: the same table as pandas read before (index included)."""
    wb = Workbook()
    ws = wb.active
    ws.append(["key", "subarea", "メモ", "日付", "n", "島"])
    for i, key in enumerate(sample_blocks["key"].head(40)):
        ws.append([int(key) if i % 2 else key, f"第{i % 4 + 1}地域", "", dt.datetime(2026, 12, 1, 9, i), i / 2,
                   i % 3 == 0])
    ws.append([None, None, None, None, None, None])
    ws["B44"].number_format = "@"                     # a row Excel keeps for its format only
    ws.append(["0320500990", "花巻地域", "  空白つき  ", None, 1e3])
    ws["H3"] = "作成: 防災課"                            # a note beside the table
    p = tmp_path / "staff.xlsx"
    wb.save(p)
    mine = read_text_table(p)
    old = _pandas(p)
    pd.testing.assert_frame_equal(mine, old, check_dtype=False, check_index_type=False)
    assert mine.loc[1, "key"] == str(int(sample_blocks["key"].iloc[1]))      # a number: no ".0"
    assert mine.loc[0, "日付"] == "2026-12-01 09:00:00"
    assert list(mine["島"].head(3)) == ["True", "False", "False"]                # a boolean as Excel shows it
    last = mine.index[-1]
    assert last == 45 - 2                                  # Excel line 45 (after the format-only row 44)
    assert mine.loc[last, "メモ"] == "空白つき" and mine.loc[last, "n"] == "1000"
    assert 44 - 2 not in mine.index                                           # the blank row dropped


def test_every_sheet_in_order_and_an_empty_one(tmp_path):
    wb = Workbook()
    wb.active.title = "対応表"
    wb.active.append(["key", "subarea"])
    wb.active.append(["032050010", "花巻地域"])
    wb.create_sheet("空")
    s = wb.create_sheet("second")
    s.append([None])
    s.append(["code", "name"])                       # the header is the first row with a value
    s.append([3205001, "大迫地域"])
    p = tmp_path / "three.xlsx"
    wb.save(p)
    tables = read_text_tables(p)
    assert list(tables) == ["対応表", "空", "second"]
    assert tables["空"].empty
    assert tables["second"].to_dict("index") == {1: {"code": "3205001", "name": "大迫地域"}}   # Excel line 3


def test_formulas_read_as_what_excel_showed(tmp_path):
    """A key built by a formula (="0"&A2) is its cached text; an error cell is empty."""
    sheet = ('<row r="1"><c r="A1" t="inlineStr"><is><t>key</t></is></c>'
             '<c r="B1" t="inlineStr"><is><t>subarea</t></is></c></row>'
             '<row r="2"><c r="A2" t="str"><f>"0"&amp;"320500010"</f><v>0320500010</v></c>'
             '<c r="B2" t="inlineStr"><is><t>花巻地域</t></is></c></row>'
             '<row r="3"><c r="A3"><f>320500020</f><v>320500020</v></c><c r="B3" t="e"><f>1/0</f>'
             "<v>#DIV/0!</v></c></row>")
    p = tmp_path / "f.xlsx"
    p.write_bytes(_workbook(sheet))
    t = read_text_table(p)
    assert t.to_dict("list") == {"key": ["0320500010", "320500020"], "subarea": ["花巻地域", ""]}


def test_a_zip_bomb_is_refused_before_it_is_inflated(sample_shp, tmp_path, capsys):
    """A 200 MB sheet of one repeated row in a 200 kB file: refused by its declared sizes
    (exit 2, the file and the reason named), never parsed."""
    row = '<row><c t="inlineStr"><is><t>x</t></is></c></row>'
    big = row * (200_000_000 // len(row))
    p = tmp_path / "bomb.xlsx"
    p.write_bytes(_workbook(big))
    assert p.stat().st_size < 2_000_000
    with pytest.raises(UserError, match="bomb.xlsx is not a readable .xlsx.*(bytes|ratio)"):
        read_text_table(p)
    out = tmp_path / "plan.gpkg"
    assert main(["plan", str(sample_shp), "--mapping", str(p), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "bomb.xlsx" in err and "Traceback" not in err and not out.exists()


@pytest.mark.parametrize("data", [b"PK\x03\x04 not a workbook", b"plain text, not a zip"])
def test_a_file_that_is_not_a_workbook_is_named(data, tmp_path):
    p = tmp_path / "m.xlsx"
    p.write_bytes(data)
    with pytest.raises(UserError, match="m.xlsx is not a readable .xlsx"):
        read_text_table(p)


def test_a_workbook_without_a_sheet_is_named(tmp_path):
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    p = tmp_path / "none.xlsx"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("xl/workbook.xml", f"<workbook {ns}><sheets/></workbook>")
        z.writestr("xl/_rels/workbook.xml.rels",
                   '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"/>')
    with pytest.raises(UserError, match="none.xlsx has no sheet"):
        read_text_table(p)


def test_missing_value_marks_read_empty_as_before(tmp_path):
    """A sub-area typed as N/A (or NULL, NaN …) was empty to pandas, so the row is refused as
    having no sub-area rather than creating a sub-area called N/A; a message sheet keeps them."""
    from subdivide.carrier.messages.reading import read_messages

    wb = Workbook()
    wb.active.append(["key", "subarea", "title", "body", "category"])
    for v in ("N/A", "NULL", "nan", "None", "#N/A", "n/a ", "NA地域"):
        wb.active.append(["032050010", v, "NA", "NA", "避難指示"])
    p = tmp_path / "na.xlsx"
    wb.save(p)
    t = read_text_table(p)
    assert list(t["subarea"]) == ["", "", "", "", "", "n/a", "NA地域"]        # "n/a " is not a mark
    pd.testing.assert_series_equal(t["subarea"], _pandas(p)["subarea"])
    assert {m.title for m in read_messages(p)} == {"NA"}


def test_repeated_headers_get_unique_names(tmp_path):
    wb = Workbook()
    wb.active.append(["key", "key", "key.1"])
    wb.active.append(["1", "2", "3"])
    p = tmp_path / "dup.xlsx"
    wb.save(p)
    t = read_text_table(p)
    assert list(t.columns) == ["key", "key.1", "key.1.1"] and t.columns.is_unique


def test_message_rows_are_numbered_as_excel_numbers_them(tmp_path):
    """A blank row and a header below a title row: the message ids name the Excel rows."""
    from subdivide.carrier.messages.reading import read_messages

    wb = Workbook()
    ws = wb.active
    ws["A2"], ws["B2"], ws["C2"] = "title", "body", "category"
    ws.append(["避難指示", "本文一", "避難指示"])
    ws.append([None, None, None])
    ws["A5"], ws["B5"], ws["C5"] = "避難指示", "本文二", "避難指示"
    p = tmp_path / "rows.xlsx"
    wb.save(p)
    assert [m.id for m in read_messages(p)] == ["row 3", "row 5"]


def test_reading_never_needs_openpyxl(sample_shp, tmp_path):
    """openpyxl is a test dependency only: plan with an .xlsx mapping, package and validate
    run in a process where it cannot be imported."""
    import subprocess
    import sys

    wb = Workbook()
    wb.active.append(["OLD_MUNI", "subarea"])
    for old in ("花巻", "大迫", "石鳥谷", "東和"):
        wb.active.append([old, f"{old}地域"])
    wb.save(tmp_path / "m.xlsx")
    script = (
        "import sys; sys.modules['openpyxl'] = None\n"
        "from subdivide.cli.main import main\n"
        f"assert main(['plan', {str(sample_shp)!r}, '--mapping', 'm.xlsx', '--by', 'OLD_MUNI', '--out', 'p.gpkg']) == 0\n"
        "assert main(['package', 'p.gpkg', '--out', 'pkg', '--no-map']) == 0\n"
        "assert main(['validate', 'pkg']) == 0\n"
        "assert 'openpyxl' not in {m for m in sys.modules if sys.modules[m] is not None}\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
