"""Atomic, non-overwriting, Excel-safe outputs."""
import time

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
