"""Atomic, non-overwriting, Excel-safe outputs."""
import time
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook

from subdivide.core.errors import UserError
from subdivide.io.output import (atomic_dir, atomic_path, csv_bytes, neutralise_cell, write_csv,
                              write_xlsx)

NAME = "大字椿東中津江の１"


def test_csv_is_utf8_bom_crlf_and_neutralises_formulas(tmp_path):
    df = pd.DataFrame({"key": ["032050011", "=1+1", "@SUM(A1)"], "name": [NAME, "-x", "+y"], "n": [1, -2, 3]})
    p = write_csv(df, tmp_path / "a.csv")
    raw = p.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert b"\r\n" in raw and raw.count(b"\n") == raw.count(b"\r\n")
    back = pd.read_csv(p, dtype=str, encoding="utf-8-sig")
    assert list(back["key"]) == ["032050011", "'=1+1", "'@SUM(A1)"]
    assert list(back["name"]) == [NAME, "'-x", "'+y"]
    assert list(back["n"]) == ["1", "-2", "3"]  # numbers stay numbers


def test_cp932_fails_loudly_on_unencodable_characters(tmp_path):
    df = pd.DataFrame({"name": ["花巻", "𠮷野家"]})  # 𠮷 is outside CP932
    with pytest.raises(UserError, match="cannot be written in cp932.*") as ei:
        write_csv(df, tmp_path / "b.csv", encoding="cp932")
    assert "line 3" in ei.value.message
    assert not (tmp_path / "b.csv").exists()
    ok = csv_bytes(pd.DataFrame({"name": [NAME]}), encoding="cp932")
    assert ok.decode("cp932").splitlines()[1] == NAME


def test_never_overwrites_without_force(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("keep")
    with pytest.raises(UserError, match="--force"):
        write_csv(pd.DataFrame({"a": [1]}), p)
    assert p.read_text() == "keep"
    write_csv(pd.DataFrame({"a": [1]}), p, force=True)
    assert "a" in p.read_text(encoding="utf-8-sig")


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as d:
            (d / "half.txt").write_text("partial")
            raise RuntimeError("boom")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "f.txt") as t:
            t.write_text("partial")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_xlsx_codes_are_text_and_bytes_are_deterministic(tmp_path):
    df = pd.DataFrame({"code": ["0320501", "0320502"], "name": [NAME, "=cmd|' /C calc'!A0"], "pop": [10, 20]})
    a = write_xlsx({"一覧": df}, tmp_path / "a.xlsx", text_columns=["code"])
    time.sleep(1.1)  # openpyxl stamps the save time: the writer must pin it
    b = write_xlsx({"一覧": df}, tmp_path / "b.xlsx", text_columns=["code"])
    assert a.read_bytes() == b.read_bytes()
    ws = load_workbook(a)["一覧"]
    assert ws["A2"].value == "0320501" and ws["A2"].number_format == "@"
    assert ws["B2"].value == NAME
    assert ws["B3"].value.startswith("'=")
    assert ws["C2"].value == 10


def test_neutralise_cell_leaves_non_strings():
    assert neutralise_cell(-5) == -5
    assert neutralise_cell("花巻") == "花巻"
    assert neutralise_cell("\t=x") == "'\t=x"


def test_a_folder_is_never_replaced_by_a_file_nor_a_file_by_a_folder(tmp_path):
    d = tmp_path / "results"
    d.mkdir()
    (d / "keep.txt").write_text("keep")
    with pytest.raises(UserError, match="is a folder"):
        write_csv(pd.DataFrame({"a": [1]}), d, force=True)
    assert (d / "keep.txt").read_text() == "keep"
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(UserError, match="is a file"):
        with atomic_dir(f, force=True):
            pass
    with pytest.raises(UserError, match="is a file, not a folder"):
        write_csv(pd.DataFrame({"a": [1]}), f / "x.csv")
    assert f.read_text() == "x"


# ---------------------------------------------------------------------- XLSX writer
def _openpyxl_reference(sheets, text_columns=()) -> dict:
    """The workbook as openpyxl's normal mode writes it (the writer used before issue 19's
    round 2): name → member bytes, save-time stamps pinned."""
    import io
    import re
    import zipfile

    from openpyxl import Workbook

    from subdivide.io.output import _safe_frame

    text_columns = set(text_columns)
    wb = Workbook()
    wb.remove(wb.active)
    for sheet_name, df in sheets.items():
        ws = wb.create_sheet(title=sheet_name[:31])
        safe = _safe_frame(df)
        ws.append(list(map(str, safe.columns)))
        text_idx = [i for i, c in enumerate(df.columns) if c in text_columns]
        for row in safe.itertuples(index=False):
            values = []
            for i, v in enumerate(row):
                if pd.isna(v):
                    v = None
                elif i in text_idx:
                    v = str(v)
                elif hasattr(v, "item"):
                    v = v.item()
                values.append(v)
            ws.append(values)
        for i in text_idx:
            for col in ws.iter_cols(min_col=i + 1, max_col=i + 1, min_row=2):
                for c in col:
                    c.number_format = "@"
                    c.data_type = "s"
    wb.properties.creator = "subdivide"
    fixed = pd.Timestamp("2000-01-01").to_pydatetime()
    wb.properties.created = wb.properties.modified = fixed
    buf = io.BytesIO()
    wb.save(buf)
    z = zipfile.ZipFile(buf)
    out = {n: z.read(n) for n in z.namelist()}
    out["docProps/core.xml"] = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)",
                                      rb"\g<1>2000-01-01T00:00:00Z\g<2>", out["docProps/core.xml"])
    return out


def _varied_frames():
    import numpy as np

    n = 60
    rng = np.random.default_rng(3)
    big = pd.DataFrame({
        "key": [f"{i:011d}" for i in range(n)],
        "name": [NAME, "=cmd|' /C calc'!A0", " sp ", "   ", "", "a&b<c>d\"e'", "@x", "-y", "+z", "\tt",
                 "改行\nあり", "末尾 ", None, float("nan"), "x" * 40000] + [f"町{i}" for i in range(n - 15)],
        "n": rng.integers(-10**6, 10**6, n),
        "f": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n) * 10.0 ** rng.integers(-8, 12, n)),
        "b": rng.random(n) < 0.5,
        "nullable": pd.array([None if i % 7 == 0 else i for i in range(n)], dtype="Int64"),
        "mixed": [1, 2.5, True, "t", None, np.int64(7), np.float32(0.5), 3.0, -0.0, 10**15] * (n // 10),
        "code_num": rng.integers(0, 99999, n),
    })
    return {
        "一覧": big, "empty_rows": big.head(0), "no_columns": pd.DataFrame(),
        "sheet name with a very long title, cut at 31": big.head(3),
        "all none": pd.DataFrame({"a": [None, None], "b": [float("nan"), float("inf")], "c": ["", "  "]}),
    }


def test_xlsx_writer_writes_what_openpyxl_wrote(tmp_path):
    """The direct writer (issue 19) gives the same workbook XML as openpyxl's normal mode:
    same cells, types, styles and markup, member for member (only the application name in
    docProps/app.xml differs)."""
    import zipfile

    sheets = _varied_frames()
    text = ["key", "code_num", "name"]
    ref = _openpyxl_reference(sheets, text)
    p = write_xlsx(sheets, tmp_path / "w.xlsx", text_columns=text)
    z = zipfile.ZipFile(p)
    assert z.namelist() == list(ref)
    for name in ref:
        if name != "docProps/app.xml":
            assert z.read(name) == ref[name], name
    assert b"<Application>subdivide</Application>" in z.read("docProps/app.xml")
    assert {i.date_time for i in z.infolist()} == {(2000, 1, 1, 0, 0, 0)}


def test_xlsx_reads_back_in_pandas_and_openpyxl(tmp_path):
    sheets = _varied_frames()
    p = write_xlsx(sheets, tmp_path / "r.xlsx", text_columns=["key"])
    back = pd.read_excel(p, sheet_name=None, dtype={"key": str})
    assert list(back) == [k[:31] for k in sheets]
    b, src = back["一覧"], sheets["一覧"]
    assert list(b["key"]) == list(src["key"])                      # leading zeros kept
    assert b["n"].tolist() == src["n"].tolist()
    assert b["f"].to_numpy() == pytest.approx(src["f"].to_numpy(), rel=1e-15, nan_ok=True)
    assert b["b"].tolist() == src["b"].tolist()
    ws = load_workbook(p)["一覧"]
    assert ws["B3"].value == "'=cmd|' /C calc'!A0" and ws["B4"].value == " sp "
    assert ws["B12"].value == "改行\nあり" and ws["B1"].value == "name"
    assert ws["A2"].data_type == "s" and ws["A2"].number_format == "@"
    assert len(ws["B16"].value) == 32767                              # Excel's cell limit
    assert not any(c.data_type == "f" for row in ws.iter_rows() for c in row)


def test_xlsx_never_writes_a_formula_whatever_the_dtype(tmp_path):
    """Formula-like text is neutralised in every column: object, string, category, header,
    and text columns."""
    df = pd.DataFrame({"=h": ["=1+1"], "cat": pd.Categorical(["=2+2"]), "s": pd.array(["@x"], dtype="string"),
                       "code": ["-1"]})
    ws = load_workbook(write_xlsx({"s": df}, tmp_path / "f.xlsx", text_columns=["code"]))["s"]
    values = [c.value for row in ws.iter_rows() for c in row]
    assert values == ["'=h", "cat", "s", "code", "'=1+1", "'=2+2", "'@x", "'-1"]
    assert all(c.data_type == "s" for row in ws.iter_rows() for c in row)


def test_xlsx_refuses_control_characters_and_bad_values(tmp_path):
    with pytest.raises(UserError, match="U\\+0001") as ei:
        write_xlsx({"s": pd.DataFrame({"name": ["ok", "bad\x01"]})}, tmp_path / "c.xlsx")
    assert "s sheet, cell A3" in ei.value.where
    with pytest.raises(ValueError, match="Cannot convert"):
        write_xlsx({"s": pd.DataFrame({"when": [pd.Timestamp("2020-01-01").to_pydatetime()]}, dtype=object)},
                   tmp_path / "d.xlsx")
    with pytest.raises(ValueError, match="sheet name"):
        write_xlsx({"a/b": pd.DataFrame({"x": [1]})}, tmp_path / "e.xlsx")
    assert not any(tmp_path.iterdir())


def test_the_vendored_xlsx_theme_is_openpyxls():
    """assets/xlsx_theme1.xml is openpyxl's theme part, byte for byte (the writer no longer
    imports openpyxl for it)."""
    from openpyxl.writer.theme import theme_xml

    import subdivide

    vendored = Path(subdivide.__file__).parent / "assets" / "xlsx_theme1.xml"
    assert vendored.read_text(encoding="utf-8") == theme_xml
