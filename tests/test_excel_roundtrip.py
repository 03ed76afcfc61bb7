"""Round trips that survive Excel (issue 17). `--export-csv` writes key,subarea,subarea_name,name;
a staffer who changes only the number (the natural edit: move a block by typing another sub-area
number) was refused with "sub-areas [4] have several names", no keys, no fix. Now the number
wins and names are re-derived from the other rows of the number; a real conflict is listed
with its rows and keys, numbered as the user's file numbers sub-areas; what Excel saves (CP932
or UTF-8 with BOM, CRLF, trailing ",,," rows, keys as numbers, .xlsx) reads back; the package's
own townblock_list.csv / area_codes.xlsx (Japanese headers) re-import as an assignment."""
from __future__ import annotations

import pandas as pd
import pytest

from subdivide.cli.main import main
from subdivide.core.errors import PlanCheckError, UserError
from subdivide.make.planning import (candidates_table, code_changes, export_assignment_csv, merge_subareas,
                                     plan_from_assignment_csv, read_candidates_table)
from subdivide.model.plan import read_plan


def _export(plan, tmp_path, name="a.csv", **kw) -> pd.DataFrame:
    """The plan's --export-csv table, read back as text."""
    return pd.read_csv(export_assignment_csv(plan, tmp_path / name, **kw), dtype=str, encoding="utf-8-sig")


def _import(plan, df: pd.DataFrame, path):
    """``df`` saved as an assignment CSV (UTF-8 with BOM) at ``path`` and imported onto ``plan``."""
    df.to_csv(path, index=False, encoding="utf-8-sig")
    return plan_from_assignment_csv(plan, path)


def _movable(plan, src: int, dst: int) -> list[str]:
    """Keys of blocks of ``src`` that touch ``dst`` (candidates for a move that keeps both whole)."""
    coo = plan.adjacency.tocoo()
    sub = plan.blocks["subarea"].to_numpy()
    rows = sorted(set(coo.row[(sub[coo.row] == src) & (sub[coo.col] == dst)].tolist()))
    return [plan.blocks["key"].iloc[i] for i in rows]


def _write_excel_csv(df: pd.DataFrame, path, *, encoding="cp932", blank_rows=3, keys_as_numbers=False):
    """What Excel's 「CSV (コンマ区切り)」 writes: CP932 (or UTF-8 with BOM), CRLF, rows of
    commas where cells were once formatted, keys that lost their leading zero."""
    d = df.copy()
    if keys_as_numbers:
        d.iloc[:, 0] = d.iloc[:, 0].str.lstrip("0")
    text = d.to_csv(index=False, lineterminator="\r\n") + ",,,\r\n" * blank_rows + ",,,,\r\n"
    path.write_bytes(text.encode(encoding))
    return path


# ---------------------------------------------------------------- the natural edit
@pytest.fixture(scope="module")
def natural(sample_plan, tmp_path_factory):
    """A 花巻 block next to 石鳥谷 whose subarea number alone was changed from 1 to 3."""
    tmp = tmp_path_factory.mktemp("natural")
    df = _export(sample_plan, tmp)
    for key in _movable(sample_plan, 1, 3):
        d = df.copy()
        d.loc[d["key"] == key, "subarea"] = "3"
        f = tmp / f"moved_{key}.csv"
        try:
            plan, report = _import(sample_plan, d, f)
        except PlanCheckError:
            continue
        return key, d, f, plan, report
    pytest.fail("no movable block")


def test_number_only_edit_is_accepted_number_wins(sample_plan, natural):
    key, d, f, plan, report = natural
    assert d.loc[d["key"] == key, "subarea_name"].item() == "花巻地域"        # the name was left as it was
    assert plan.blocks.loc[plan.blocks["key"] == key, "subarea"].item() == 3
    assert plan.subareas[["subarea", "name", "code"]].equals(sample_plan.subareas[["subarea", "name", "code"]])
    assert any("number decides" in n and key in n for n in report.notes)
    lines = code_changes(sample_plan, plan)
    assert lines[0] == "codes kept: 0320501, 0320502, 0320503, 0320504"
    assert lines[1].startswith(f"1 town-block moved: {key}") and "0320501 → 0320503" in lines[1]


def test_number_only_edit_without_a_base_plan(sample_blocks, natural):
    """Onto the town-blocks (no plan to compare with): the name most rows of a number carry wins."""
    key, _, f, plan, _ = natural
    back, report = plan_from_assignment_csv(sample_blocks, f)
    assert back.subareas[["subarea", "name"]].equals(plan.subareas[["subarea", "name"]])
    assert (back.blocks["subarea"].to_numpy() == plan.blocks["subarea"].to_numpy()).all()
    assert any(key in n for n in report.notes)


def test_cli_natural_edit_prints_the_move(sample_plan, natural, tmp_path, capsys):
    key, _, f, _, _ = natural
    base = sample_plan.save(tmp_path / "p.gpkg")
    assert main(["plan", str(base), "--import-csv", str(f), "--out", str(tmp_path / "q.gpkg")]) == 0
    out = capsys.readouterr()
    assert f"1 town-block moved: {key}" in out.out and "0320501 → 0320503" in out.out
    assert "number decides" in out.err


# ---------------------------------------------------------------- real conflicts, listed with keys
def test_two_names_typed_for_one_number_are_listed_with_rows_and_keys(sample_plan, tmp_path):
    df = _export(sample_plan, tmp_path)
    rows = df.index[df["subarea"] == "3"][:2]
    df.loc[rows, "subarea_name"] = "北部地域"                    # two rows of 3 renamed, the rest not
    with pytest.raises(PlanCheckError) as exc:
        _import(sample_plan, df, tmp_path / "c.csv")
    msg = str(exc.value)
    assert "sub-area 3 has several names" in msg and "北部地域" in msg and "石鳥谷地域" in msg
    for i in rows:
        assert f"row {i + 2} ({df.loc[i, 'key']})" in msg                 # Excel's row number and the key
    assert "type one name" in exc.value.fix


def test_name_changed_to_another_subarea_with_the_number_unchanged_is_a_conflict(sample_plan, tmp_path):
    """Intent to move (the name says 石鳥谷) against the number (1, unchanged): not guessed."""
    df = _export(sample_plan, tmp_path)
    i = df.index[df["subarea"] == "1"][5]
    df.loc[i, "subarea_name"] = "石鳥谷地域"
    with pytest.raises(PlanCheckError) as exc:
        _import(sample_plan, df, tmp_path / "c.csv")
    assert f"row {i + 2} ({df.loc[i, 'key']})" in str(exc.value) and "石鳥谷地域" in str(exc.value)
    assert "change their sub-area number" in exc.value.fix


def test_errors_number_subareas_as_the_file_does(sample_plan, tmp_path):
    """A plan with a gap (1, 2, 4): a block moved to 4 across the municipality breaks 4; the
    error says sub-area 4 (the file's number), not 3 (a renumbered one)."""
    merged = merge_subareas(sample_plan, [2, 3])
    df = _export(merged, tmp_path)
    far = df.index[df["subarea"] == "2"][0]
    df.loc[far, "subarea"] = "4"
    with pytest.raises(PlanCheckError) as exc:
        _import(merged, df, tmp_path / "far.csv")
    assert "sub-area 4 (東和地域) is not contiguous" in str(exc.value)
    assert df.loc[far, "key"] in str(exc.value)


def test_rows_without_a_subarea_name_their_rows_and_numbers_outside_the_range(sample_plan, tmp_path):
    df = _export(sample_plan, tmp_path)
    d = df.copy()
    d.loc[7, "subarea"] = ""
    with pytest.raises(PlanCheckError, match=rf"row 9 \({df.loc[7, 'key']}\)"):
        _import(sample_plan, d, tmp_path / "e.csv")
    d = df.copy()
    d.loc[3, "subarea"] = "15"
    with pytest.raises(PlanCheckError, match=r"1–14.*row 5"):
        _import(sample_plan, d, tmp_path / "r.csv")


# ---------------------------------------------------------------- what Excel writes
@pytest.mark.parametrize("encoding", ["cp932", "utf-8-sig"])
def test_excel_saved_csv_with_trailing_blank_rows_and_lost_zeros(sample_plan, natural, tmp_path, encoding):
    key, d, _, plan, _ = natural
    f = _write_excel_csv(d, tmp_path / "excel.csv", encoding=encoding, keys_as_numbers=True)
    raw = f.read_bytes()
    assert raw.endswith(b",,,\r\n,,,,\r\n") and (raw.startswith(b"\xef\xbb\xbf") == (encoding == "utf-8-sig"))
    back, report = plan_from_assignment_csv(sample_plan, f)
    assert (back.blocks["subarea"].to_numpy() == plan.blocks["subarea"].to_numpy()).all()
    assert "ASSIGNMENT-LEADING-ZERO" in {x.rule for x in report.findings}


def test_xlsx_with_blank_formatted_rows_reads_back(sample_plan, natural, tmp_path):
    from openpyxl import Workbook

    key, d, _, plan, _ = natural
    wb = Workbook()
    ws = wb.active
    ws.append(list(d.columns) + [None])
    for row in d.itertuples(index=False):
        ws.append([int(row.key), int(row.subarea), row.subarea_name, row.name])   # Excel's numbers
    for r in range(ws.max_row + 1, ws.max_row + 6):                              # formatted, empty
        ws.cell(row=r, column=2).number_format = "0"
        ws.cell(row=r, column=3).value = ""
    wb.save(tmp_path / "a.xlsx")
    back, _ = plan_from_assignment_csv(sample_plan, tmp_path / "a.xlsx")
    assert (back.blocks["subarea"].to_numpy() == plan.blocks["subarea"].to_numpy()).all()


def test_export_with_japanese_headers_round_trips(sample_plan, tmp_path):
    f = export_assignment_csv(sample_plan, tmp_path / "ja.csv", headers="ja")
    assert f.read_text(encoding="utf-8-sig").splitlines()[0] == "町丁目コード,エリア番号,エリア名,町丁目名"
    back, _ = plan_from_assignment_csv(sample_plan.blocks, f)
    assert back.subareas[["subarea", "name", "code"]].equals(sample_plan.subareas[["subarea", "name", "code"]])


# ---------------------------------------------------------------- the package's own lists
@pytest.fixture(scope="module")
def package_dir(sample_plan, tmp_path_factory):
    """A real package of the trial plan with 石鳥谷 merged into 大迫 (codes 01, 02, 04)."""
    tmp = tmp_path_factory.mktemp("pkg")
    plan = merge_subareas(sample_plan, [2, 3])
    plan.save(tmp / "m.gpkg")
    assert main(["package", str(tmp / "m.gpkg"), "--out", str(tmp / "pkg"), "--no-spill", "--no-map"]) == 0
    return tmp / "pkg", plan


def test_package_townblock_list_reimports_as_an_assignment(package_dir, sample_shp, tmp_path, capsys):
    pkg, plan = package_dir
    header = (pkg / "townblock_list.csv").read_text(encoding="utf-8-sig").splitlines()[0]
    assert header == "町丁目コード,町丁目名,エリア番号,エリアコード,エリア名"
    out = tmp_path / "back.gpkg"
    assert main(["plan", str(sample_shp), "--import-csv", str(pkg / "townblock_list.csv"), "--out", str(out)]) == 0
    back = read_plan(out)
    assert back.subareas[["subarea", "name", "code"]].equals(plan.subareas[["subarea", "name", "code"]])
    assert (back.blocks["subarea"].to_numpy() == plan.blocks["subarea"].to_numpy()).all()
    # the workbook too: its town-block sheet is the second one
    capsys.readouterr()
    assert main(["plan", str(out), "--import-csv", str(pkg / "area_codes.xlsx"), "--out",
                 str(tmp_path / "x.gpkg")]) == 0
    assert "codes unchanged" in capsys.readouterr().out


def test_package_list_edited_in_excel_number_only(package_dir, tmp_path):
    """In the package list a staffer changes エリア番号 only: エリアコード and エリア名 still say
    the old sub-area; the number wins (the code follows it)."""
    pkg, plan = package_dir
    df = pd.read_csv(pkg / "townblock_list.csv", dtype=str, encoding="utf-8-sig")
    for key in _movable(plan, 1, 2):
        d = df.copy()
        d.loc[d["町丁目コード"] == key, "エリア番号"] = "2"
        f = _write_excel_csv(d, tmp_path / "list.csv")
        try:
            back, report = plan_from_assignment_csv(plan, f)
        except PlanCheckError:
            continue
        assert back.blocks.loc[back.blocks["key"] == key, "subarea"].item() == 2
        assert list(back.subareas["code"]) == ["0320501", "0320502", "0320504"]
        assert any("code follows" in n for n in report.notes)
        return
    pytest.fail("no movable block")


def test_package_list_code_changed_but_not_the_number_is_a_conflict(package_dir, tmp_path):
    pkg, plan = package_dir
    df = pd.read_csv(pkg / "townblock_list.csv", dtype=str, encoding="utf-8-sig")
    df.loc[3, "エリアコード"] = "0320504"
    f = _write_excel_csv(df, tmp_path / "list.csv", encoding="utf-8-sig")
    with pytest.raises(PlanCheckError, match=rf"row 5 \({df.loc[3, '町丁目コード']}\)") as exc:
        plan_from_assignment_csv(plan, f)
    assert "エリア番号" in exc.value.fix


def test_subarea_list_is_not_an_assignment(package_dir, sample_blocks):
    pkg, _ = package_dir
    with pytest.raises(UserError, match="key column") as exc:
        plan_from_assignment_csv(sample_blocks, pkg / "subarea_list.csv")
    assert "townblock_list.csv" in exc.value.fix


# ---------------------------------------------------------------- the candidates table
def test_candidates_headers_japanese_by_default_english_on_request_and_read_back():
    t = pd.DataFrame({"rank": [1, 2], "k": [4, 3], "recommended": [True, False], "feasible": [True, True],
                      "spared_share_mean": [0.31, 0.29], "objective": [1.5, 2.0], "ssd": [0.1, 0.2],
                      "ch_score": [3.0, 2.0], "old_mixing": [0.0, 0.1], "core_shares": ["0.50 0.40", "0.6 0.5 0.4"],
                      "violations": ["", ""]})
    ja = candidates_table(t)
    assert not {"ssd", "ch_score", "old_mixing"} & set(ja.columns)
    assert all(any("\u3040" <= ch <= "\u9fff" for ch in c) for c in ja.columns if c not in ("CH指標",))
    assert list(candidates_table(t, headers="en").columns) == list(t.columns)
    import tempfile
    from pathlib import Path

    from subdivide.io.output import write_csv
    with tempfile.TemporaryDirectory() as d:
        for headers in ("ja", "en"):
            f = write_csv(candidates_table(t, headers=headers), Path(d) / f"{headers}.csv")
            back = read_candidates_table(f)
            assert list(back.columns) == list(t.columns)
            assert back["k"].tolist() == [4, 3] and back["recommended"].tolist() == [True, False]
            assert back["spared_share_mean"].tolist() == [0.31, 0.29]
