"""The validator's .xlsx reader (subdivide.io.xlsx) answers as openpyxl's load_workbook does.

Checked cell by cell (coordinate, value, data type, number format) against openpyxl on the
area-code workbook of a real package (the 花巻 sample), on workbooks openpyxl writes the
way Excel does (shared strings, formulas, numbers, booleans, errors, gaps, text format),
and on hand-written SpreadsheetML Excel produces (rich text, phonetic runs, cells and rows
without references)."""
from __future__ import annotations

import io
import warnings
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook, load_workbook

from subdivide.io.output import xlsx_bytes
from subdivide.io.xlsx import XlsxError, column_letter, read_workbook


def _openpyxl(path):
    wb = load_workbook(path, read_only=False, data_only=False)
    return {n: [[(c.coordinate, c.value, c.data_type, c.number_format) for c in r] for r in wb[n].iter_rows()]
            for n in wb.sheetnames}


def _mine(path, **kw):
    return {n: [[tuple(c) for c in r] for r in rows] for n, rows in read_workbook(path, **kw).items()}


def _openpyxl_values(path):
    wb = load_workbook(path, read_only=False, data_only=True)
    return {n: [[(c.coordinate, c.value, c.data_type, c.number_format) for c in r] for r in wb[n].iter_rows()]
            for n in wb.sheetnames}


@pytest.mark.parametrize("which", ["hanamaki", "tottori"])
def test_same_cells_as_openpyxl_on_a_real_package(which, sample_plan, shared_data, tmp_path):
    from subdivide.carrier.package import write_lists
    from subdivide.carrier.profiles import load_profile

    plan = sample_plan
    if which == "tottori":       # real e-Stat polygons: 鳥取市 by its 旧市町村 (the block names' prefix)
        from subdivide.io.townblocks import read_townblocks
        from subdivide.model.plan import Plan

        blocks, _ = read_townblocks(shared_data / "tottori_31_estat2015" / "h27ka31.shp", muni_code="31201")
        old = blocks["name"].str.extract(r"^(国府町|福部町|河原町|用瀬町|佐治町|気高町|鹿野町|青谷町)")[0].fillna("鳥取")
        plan = Plan.from_assignment(blocks, old.set_axis(blocks["key"]))
    write_lists(plan, tmp_path, load_profile(None), encoding="utf-8-sig")
    p = tmp_path / "area_codes.xlsx"
    mine = _mine(p)
    assert mine == _openpyxl(p)
    assert len(mine["townblocks"]) == len(plan.blocks) + 1          # the header and a row per block
    assert {c[2:] for r in mine["townblocks"][1:] for c in r[:1]} == {("s", "@")}   # keys are text


def test_same_cells_as_openpyxl_on_an_excel_style_workbook(tmp_path):
    wb = Workbook()
    ws = wb.active
    ws.title = "subareas"
    ws.append(["code", "name", "n"])
    ws.append(["0320501", "花巻地域", 3])
    ws["A2"].number_format = "@"
    ws.append(["=1+1", "x", 2.5])
    ws.append([None, True, "#N/A"])
    ws["E7"] = "far away"
    ws["B8"] = "=SUM(C2:C3)"
    ws["C9"] = 1e20
    ws["D9"] = -0.0
    ws2 = wb.create_sheet("townblocks")
    ws2.append(["key"])
    ws2.append([32050010])
    ws2["A3"] = "032050020"
    ws2["A3"].number_format = "@"
    wb.create_sheet("empty")
    p = tmp_path / "excel.xlsx"
    wb.save(p)
    mine = _mine(p)
    assert mine == _openpyxl(p)
    assert mine["subareas"][2][0] == ("A3", "=1+1", "f", "General")
    assert mine["subareas"][6][4] == ("E7", "far away", "s", "General")
    assert mine["empty"] == []


# ---------------------------------------------------------------- what real and hostile files hold
_MAIN = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
_R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PR = "http://schemas.openxmlformats.org/package/2006/relationships"


_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml."
_CONTENT = {"workbook.xml": "sheet.main+xml", "sharedStrings.xml": "sharedStrings+xml", "styles.xml": "styles+xml"}


def _package(tmp_path, parts: dict[str, str | bytes], name="p.xlsx"):
    """``parts`` zipped into ``tmp_path / name``."""
    p = tmp_path / name
    p.write_bytes(_zip_bytes(parts))
    return p


def _zip_bytes(parts: dict[str, str | bytes]) -> bytes:
    """A deflated zip of ``parts``, with the content types openpyxl looks parts up by (and the
    root relationship) when not given."""
    parts = dict(parts)
    parts.setdefault("_rels/.rels", _rels(("rId1", "officeDocument", "xl/workbook.xml")))
    overrides = "".join(
        f'<Override PartName="/{n}" ContentType="{_CT}{_CONTENT.get(n.rsplit("/", 1)[-1], "worksheet+xml")}"/>'
        for n in parts if n.startswith("xl/") and n.endswith(".xml"))
    parts.setdefault("[Content_Types].xml", '<Types xmlns="http://schemas.openxmlformats.org/package/2006/'
                     'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-'
                     f'package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>{overrides}'
                     "</Types>")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for n, d in parts.items():
            z.writestr(n, d)
    return buf.getvalue()


def _rels(*rels) -> str:
    return f'<Relationships xmlns="{_PR}">' + "".join(
        f'<Relationship Id="{i}" Type="{_R}/{t}" Target="{target}"/>' for i, t, target in rels) + "</Relationships>"


def _sheet(rows: str) -> str:
    return f"<worksheet {_MAIN}><sheetData>{rows}</sheetData></worksheet>"


def _one_sheet_parts(rows: str | bytes, *, name: str = "s", strings: str | None = None,
                     styles: str | None = None) -> dict[str, str | bytes]:
    """The parts of a one-sheet workbook: ``rows`` (the sheetData's rows, or a whole worksheet
    part as bytes), and the shared strings (their ``<si>``) and style sheet when given."""
    rels = [("a", "worksheet", "worksheets/s.xml")]
    parts = {"xl/worksheets/s.xml": rows if isinstance(rows, bytes) else _sheet(rows)}
    if strings is not None:
        rels.append(("b", "sharedStrings", "sharedStrings.xml"))
        parts["xl/sharedStrings.xml"] = f"<sst {_MAIN}>{strings}</sst>"
    if styles is not None:
        rels.append(("c", "styles", "styles.xml"))
        parts["xl/styles.xml"] = f"<styleSheet {_MAIN}>{styles}</styleSheet>"
    return {"xl/workbook.xml": f'<workbook {_MAIN} xmlns:r="{_R}"><sheets><sheet name="{name}" sheetId="1" r:id="a"/>'
                               "</sheets></workbook>",
            "xl/_rels/workbook.xml.rels": _rels(*rels), **parts}


def _workbook(sheet_xml: str, shared: str | None = None) -> bytes:
    """A one-sheet workbook ("s1") of hand-written SpreadsheetML rows, as bytes (deflated)."""
    return _zip_bytes(_one_sheet_parts(sheet_xml, name="s1", strings=shared))


def test_rich_text_phonetic_runs_and_missing_references(tmp_path):
    shared = ("<si><t>大迫</t></si>"
              "<si><r><t>石鳥</t></r><r><rPr><b/></rPr><t>谷</t></r><rPh sb=\"0\" eb=\"2\"><t>イシドリヤ</t></rPh></si>")
    sheet = ('<row><c t="s"><v>0</v></c><c t="s"><v>1</v></c></row>'          # no references at all
             '<row r="3"><c r="B3" t="inlineStr"><is><r><t>東</t></r><r><t>和</t></r></is></c>'
             '<c t="b"><v>1</v></c><c r="E3" t="e"><v>#N/A</v></c><c r="F3" t="str"><f>A1&amp;B1</f>'
             "<v>大迫石鳥谷</v></c></row>")
    p = tmp_path / "hand.xlsx"
    p.write_bytes(_workbook(sheet, shared))
    mine = _mine(p)
    assert mine == _openpyxl(p)
    assert [c[1] for c in mine["s1"][0][:2]] == ["大迫", "石鳥谷"]      # phonetic run left out
    assert mine["s1"][2][1][1:3] == ("東和", "s")
    assert mine["s1"][2][5][1:3] == ("=A1&B1", "f")


@pytest.mark.parametrize("bad", [
    b"PK\x03\x04 not a zip",
    _workbook('<row r="1"><c r="A1" t="s"><v>7</v></c></row>', "<si><t>only one</t></si>"),   # no string 7
    _workbook('<row r="1"><c r="A1"><v>1</v></c>'),                                            # malformed XML
])
def test_unreadable_workbooks_raise_xlsx_error(bad, tmp_path):
    p = tmp_path / "bad.xlsx"
    p.write_bytes(bad)
    with pytest.raises(XlsxError):
        read_workbook(p)


def test_a_dtd_is_refused(tmp_path):
    p = tmp_path / "dtd.xlsx"
    p.write_bytes(_workbook('<row r="1"><c r="A1" t="inlineStr"><is><t>x</t></is></c></row>'))
    assert _mine(p) == {"s1": [[("A1", "x", "s", "General")]]}
    with zipfile.ZipFile(p) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    parts["xl/worksheets/s.xml"] = b'<!DOCTYPE x [<!ENTITY e "eeee">]>' + parts["xl/worksheets/s.xml"]
    with zipfile.ZipFile(p, "w") as z:
        for n, d in parts.items():
            z.writestr(n, d)
    with pytest.raises(XlsxError, match="DTD"):
        read_workbook(p)


def test_column_letters():
    assert [column_letter(i) for i in (1, 26, 27, 52, 703)] == ["A", "Z", "AA", "AZ", "AAA"]


cell_text = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(cell_text, st.one_of(st.none(), st.integers(-10**12, 10**12),
                                                st.floats(allow_nan=False, allow_infinity=False), cell_text)),
                min_size=0, max_size=12))
def test_the_writer_and_reader_agree_with_openpyxl(tmp_path_factory, rows):
    import pandas as pd

    df = pd.DataFrame({"code": [r[0] for r in rows], "value": pd.Series([r[1] for r in rows], dtype=object)})
    p = tmp_path_factory.mktemp("x") / "w.xlsx"
    p.write_bytes(xlsx_bytes({"sheet": df}, text_columns=["code"]))
    assert _mine(p) == _openpyxl(p)


@pytest.mark.parametrize("epoch", ["1900", "1904"])
def test_dates_and_times_as_openpyxl_reads_them(epoch, tmp_path):
    """Dates, times and durations (built-in, custom and Japanese formats, both epochs,
    Excel's 1900 leap-year slip, a serial beyond the dates) come back as openpyxl gives them."""
    import datetime as dt

    from openpyxl.utils.datetime import CALENDAR_MAC_1904

    wb = Workbook()
    if epoch == "1904":
        wb.epoch = CALENDAR_MAC_1904
    ws = wb.active
    ws.append(["送信時刻", "日付", "時刻", "経過"])
    ws.append([dt.datetime(2026, 12, 1, 10, 30), dt.date(2026, 12, 2), dt.time(7, 15), dt.timedelta(hours=30)])
    ws["B2"].number_format = 'yyyy"年"m"月"d"日"'
    ws["D2"].number_format = "[h]:mm"
    for ref, serial, fmt in (("A3", 45, "mm-dd-yy"), ("B3", 61.5, "m/d/yy h:mm"), ("C3", 0.25, "h:mm"),
                             ("D3", 1e12, "yyyy-mm-dd"), ("A4", 46357, "[$-411]ge.m.d"), ("B4", 2.5, "0.00"),
                             ("C4", 3, '0"d"')):
        ws[ref] = serial
        ws[ref].number_format = fmt
    p = tmp_path / "dates.xlsx"
    wb.save(p)
    mine = _mine(p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                    # openpyxl warns about the 1e12 serial
        assert mine == _openpyxl(p)
    row = {c[0]: c[1:3] for c in mine["Sheet"][1]}
    assert row["A2"] == (dt.datetime(2026, 12, 1, 10, 30), "d") and row["C2"] == (dt.time(7, 15), "d")
    assert row["D2"] == (dt.timedelta(hours=30), "d")
    assert {c[0]: c[1:3] for c in mine["Sheet"][2]}["D3"] == ("#VALUE!", "e")
    assert {c[0]: c[1:3] for c in mine["Sheet"][3]}["C4"] == (3, "n")     # a quoted "d" is text


def test_cached_values_instead_of_formulas(tmp_path):
    """formulas=False reads what Excel last showed (openpyxl's data_only=True)."""
    sheet = ('<row r="1"><c r="A1"><f>1+1</f><v>2</v></c><c r="B1" t="str"><f>"a"&amp;"b"</f><v>ab</v></c>'
             '<c r="C1"><f>NOW()</f></c><c r="D1" t="e"><f>1/0</f><v>#DIV/0!</v></c></row>')
    p = tmp_path / "f.xlsx"
    p.write_bytes(_workbook(sheet))
    assert _mine(p) == _openpyxl(p)
    assert _mine(p, formulas=False) == _openpyxl_values(p)
    assert [c[1] for c in _mine(p, formulas=False)["s1"][0]] == [2, "ab", None, "#DIV/0!"]


def test_a_damaged_deflate_stream_is_an_xlsx_error(tmp_path):
    """A part whose compressed bytes are damaged (zlib fails before the CRC check) is an
    unreadable workbook, not a crash."""
    p = tmp_path / "z.xlsx"
    p.write_bytes(_workbook('<row r="1"><c r="A1" t="inlineStr"><is><t>x</t></is></c></row>'))
    with zipfile.ZipFile(p) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
        for n, d in parts.items():
            z.writestr(n, d)
    with zipfile.ZipFile(p) as z:
        info = z.getinfo("xl/workbook.xml")
    data = bytearray(p.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start] = 0xFF                                     # block type 11: invalid
    p.write_bytes(bytes(data))
    with pytest.raises(XlsxError, match="error"):
        read_workbook(p)


def test_parts_are_found_through_the_relationships(tmp_path):
    """The workbook at the zip's root (found through _rels/.rels), shared strings under
    another name, a chart sheet first: the data sheet is read, the chart sheet left out."""
    p = _package(tmp_path, {
        "_rels/.rels": _rels(("rId1", "officeDocument", "/book.xml")),
        "book.xml": f'<workbook {_MAIN} xmlns:r="{_R}"><sheets><sheet name="グラフ" sheetId="1" r:id="c"/>'
                    '<sheet name="対応表" sheetId="2" r:id="w"/></sheets></workbook>',
        "_rels/book.xml.rels": _rels(("c", "chartsheet", "charts/c1.xml"), ("w", "worksheet", "sheets/s.xml"),
                                     ("s", "sharedStrings", "SharedStrings.xml")),
        "charts/c1.xml": "<chartsheet/>",
        "sheets/s.xml": _sheet('<row r="1"><c r="A1" t="s"><v>0</v></c></row>'),
        "SharedStrings.xml": f"<sst {_MAIN}><si><t>key</t></si></sst>",
    })
    assert _mine(p) == {"対応表": [[("A1", "key", "s", "General")]]}
    assert list(read_workbook(p, sheets=1)) == ["対応表"]
    two = tmp_path / "two.xlsx"
    wb = Workbook()
    wb.create_sheet("second")
    wb.save(two)
    assert list(read_workbook(two)) == ["Sheet", "second"] and list(read_workbook(two, sheets=1)) == ["Sheet"]


def test_a_far_away_formatted_cell_does_not_grow_the_grid(tmp_path):
    """An empty styled cell at XFD1048576 (real files have them) is left out; a value there,
    or a reference outside the sheet, is an XlsxError, not a 17-billion-cell grid."""
    import time

    def book(cells: str):
        return _package(tmp_path, _one_sheet_parts('<row r="1"><c r="A1" t="inlineStr"><is><t>key</t></is></c></row>'
                                                   + cells), name=f"b{len(cells)}.xlsx")

    t0 = time.process_time()
    assert _mine(book('<row r="1048576"><c r="XFD1048576" s="1"/></row>')) == {"s": [[("A1", "key", "s", "General")]]}
    assert time.process_time() - t0 < 2
    for bad in ('<row r="1048576"><c r="XFD1048576"><v>1</v></c></row>', '<row r="1048576999"><c><v>1</v></c></row>',
                '<row r="2"><c r="ZZZZZZZ2"><v>1</v></c></row>'):
        with pytest.raises(XlsxError, match="outside a worksheet|at most"):
            read_workbook(book(bad))


def test_a_dtd_in_utf16_is_refused(tmp_path):
    sheet = ('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE w [<!ENTITY a "INJECTED">]>'
             + _sheet('<row r="1"><c r="A1" t="inlineStr"><is><t>&a;</t></is></c></row>')).encode("utf-16")
    p = _package(tmp_path, _one_sheet_parts(sheet))
    with pytest.raises(XlsxError, match="DTD"):
        read_workbook(p)


def test_strings_dates_and_formats_as_openpyxl_gives_them(tmp_path):
    """ISO dates (t="d"), a plain text and runs in one string item, the _x005F_ escape, a
    differential format that must not override the cell's own, an empty <v/>, booleans."""
    p = _package(tmp_path, _one_sheet_parts(
        '<row r="1"><c r="A1" t="d"><v>2026-12-01</v></c><c r="B1" t="d"><v>2026-12-01T10:30:00</v></c>'
        '<c r="C1" t="d"><v>07:15:00</v></c><c r="D1" t="d"><v>PT30H</v></c>'
        '<c r="E1" t="d"><v>2026-12-01T10:30:00+09:00</v></c></row>'
        '<row r="2"><c r="A2" t="s"><v>0</v></c><c r="B2" t="s"><v>1</v></c><c r="C2" s="1"><v>45000</v></c>'
        '<c r="D2"><v></v></c><c r="E2" t="b"><v>0</v></c></row>',
        strings="<si><t>tval</t><r><t>rval1</t></r><r><t>rval2</t></r></si><si><t>_x005F_x0041_</t></si>",
        styles='<numFmts count="1"><numFmt numFmtId="164" formatCode="0.0"/></numFmts>'
               '<cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="164"/></cellXfs>'
               '<dxfs count="1"><dxf><numFmt numFmtId="164" formatCode="yyyy/mm/dd"/></dxf></dxfs>'))
    assert _mine(p) == _openpyxl(p)
    import datetime as dt

    rows = _mine(p)["s"]
    assert [c[1] for c in rows[0]] == [dt.date(2026, 12, 1), dt.datetime(2026, 12, 1, 10, 30), dt.time(7, 15),
                                      dt.timedelta(hours=30), dt.datetime(2026, 12, 1, 10, 30)]
    assert [c[1] for c in rows[1]] == ["tvalrval1rval2", "_x0041_", 45000, None, False]


def test_japanese_builtin_date_ids_are_dates(tmp_path):
    """Japanese Excel writes 和暦 and 年月日 formats by id (57, 31 …) without defining them;
    openpyxl reads those cells as numbers, here they are the dates Excel shows."""
    import datetime as dt

    p = _package(tmp_path, _one_sheet_parts(
        '<row r="1"><c r="A1" s="1"><v>46357</v></c><c r="B1" s="2"><v>46357.625</v></c>'
        '<c r="C1" s="3"><v>0.625</v></c></row>',
        styles='<cellXfs count="4"><xf numFmtId="0"/><xf numFmtId="57"/><xf numFmtId="31"/><xf numFmtId="32"/></cellXfs>'))
    (row,) = _mine(p)["s"]
    assert [c[1] for c in row] == [dt.datetime(2026, 12, 1), dt.datetime(2026, 12, 1, 15, 0), dt.time(15, 0)]
    assert [c[2] for c in row] == ["d", "d", "d"] and row[0][3] == '[$-411]ge.m.d'
