"""``subdivide validate DIR/*``: verdict lines that name the municipality and a CSV/XLSX
summary with a row per package, on the 花巻 sample, on real 鳥取市 polygons (its 旧市町村
from the town-block names) and on a broken package."""
from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import pytest

from subdivide.carrier.package import build_package
from subdivide.carrier.validation import validate_package
from subdivide.cli.commands.validate import read_names
from subdivide.cli.main import main

from conftest import SHARED_DATA, need

TOTTORI_SHP = SHARED_DATA / "tottori_31_estat2015" / "h27ka31.shp"
#: 鳥取市's merged towns (2004); its town-block names keep them as prefixes (鹿野町今市 …)
TOTTORI_OLD = ("国府町", "福部町", "河原町", "用瀬町", "佐治町", "気高町", "鹿野町", "青谷町")


def tottori_city_plan():
    """鳥取市 (31201), one sub-area per 旧市町村 read from the real block names."""
    from subdivide.io.townblocks import read_townblocks
    from subdivide.model.plan import Plan

    blocks, _ = read_townblocks(need(TOTTORI_SHP, "鳥取県 e-Stat town-blocks"), muni_code="31201")
    old = blocks.set_index("key")["name"].map(lambda n: next((o for o in TOTTORI_OLD if str(n).startswith(o)), "鳥取"))
    return Plan.from_assignment(blocks, old)


def broken_copy(src: Path, dst: Path) -> str:
    """A copy of a package zip with one town-block row dropped from the list; returns its key."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for name in zin.namelist():
            data = zin.read(name)
            if name == "townblock_list.csv":
                lines = data.split(b"\r\n")
                dropped = lines.pop(7).decode("utf-8").split(",")[0]
                data = b"\r\n".join(lines)
            zout.writestr(name, data)
    return dropped


@pytest.fixture(scope="module")
def packages(sample_plan, tmp_path_factory):
    d = tmp_path_factory.mktemp("received")
    build_package(sample_plan, d / "a_hanamaki.zip", spill=False)
    build_package(tottori_city_plan(), d / "b_tottori.zip", spill=False)
    dropped = broken_copy(d / "a_hanamaki.zip", d / "c_broken.zip")
    (d / "d_notes.txt").write_text("not a package", encoding="utf-8")
    names = d.parent / "names.csv"
    # the 総務省 list's headers (with a line break, full-width brackets) and 6-digit codes
    names.write_text("団体コード,\"都道府県名\n（漢字）\",\"市区町村名\n（漢字）\"\n032051,岩手県,花巻市\n312011,鳥取県,鳥取市\n",
                     encoding="utf-8-sig")
    return {"dir": d, "files": sorted(str(p) for p in d.iterdir()), "dropped": dropped, "names": names}


def _rows(path: Path) -> list[dict]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))


@pytest.mark.slow
def test_batch_summary_csv_names_municipalities(packages, tmp_path, capsys):
    out = tmp_path / "summary.csv"
    status = main(["validate", *packages["files"], "--quiet", "--summary", str(out), "--names", str(packages["names"])])
    cap = capsys.readouterr()
    lines = cap.out.splitlines()
    assert status == 2, cap.err                 # the worst: one file is not a package
    assert [ln.split(":")[0] for ln in lines] == ["CLEAN", "CLEAN", "ERRORS FOUND", "UNREADABLE"]
    assert "03205 花巻市" in lines[0] and "31201 鳥取市" in lines[1] and "03205 花巻市" in lines[2]
    rows = _rows(out)
    assert [r["package"] for r in rows] == [Path(f).name for f in packages["files"]]
    for row, f in zip(rows, packages["files"]):     # the counts are the validator's own
        rep = validate_package(f).to_dict()
        assert (int(row["status"]), int(row["errors"]), int(row["warnings"])) == \
            (rep["status"], rep["counts"]["error"], rep["counts"]["warning"])
    assert rows[1]["muni_code"] == "31201" and rows[1]["subareas"] == "9"
    assert rows[0]["townblocks"] == "463"
    broken = rows[2]
    assert "BLOCK-NOT-IN-LIST" in broken["error_rules"].split(", ")
    assert packages["dropped"] in broken["first_errors"] and broken["first_fix"]
    assert rows[3]["verdict"] == "UNREADABLE" and rows[3]["muni_code"] == "" and rows[3]["first_errors"]


@pytest.mark.slow
def test_batch_summary_xlsx_in_japanese_keeps_codes_as_text(packages, tmp_path, capsys):
    from openpyxl import load_workbook

    out = tmp_path / "summary.xlsx"
    files = packages["files"][:3]
    assert main(["validate", *files, "--quiet", "--summary", str(out), "--lang", "ja"]) == 1
    text = capsys.readouterr().out
    # named by the packages' manifests (subdivide package writes the town-block file's name)
    assert "— 03205 花巻市 —" in text and "— 31201 鳥取市 —" in text and "合格" in text and "エラーあり" in text
    ws = load_workbook(out)["summary"]
    header = [c.value for c in ws[1]]
    assert header[:4] == ["パッケージ", "団体コード", "市区町村名", "判定"]
    code = ws.cell(row=2, column=2)
    assert code.value == "03205" and code.data_type == "s" and code.number_format == "@"
    again = tmp_path / "again.xlsx"
    assert main(["validate", *files, "--quiet", "--summary", str(again), "--lang", "ja"]) == 1
    assert again.read_bytes() == out.read_bytes()    # deterministic


@pytest.mark.slow
def test_hostile_names_are_neutralised(packages, tmp_path, capsys):
    names = tmp_path / "hostile.csv"
    names.write_text('code,name\n03205,"=HYPERLINK(""http://x"",""y"")"\n', encoding="utf-8")
    out = tmp_path / "s.csv"
    assert main(["validate", packages["files"][0], "--quiet", "--summary", str(out), "--names", str(names)]) == 0
    assert _rows(out)[0]["muni_name"].startswith("'=HYPERLINK")
    capsys.readouterr()


def test_summary_refusals(packages, tmp_path, capsys):
    one = packages["files"][3]        # the non-package: quick to "validate"
    bad = tmp_path / "s.txt"
    assert main(["validate", one, "--summary", str(bad)]) == 2 and not bad.exists()
    assert ".csv or .xlsx" in capsys.readouterr().err
    kept = tmp_path / "s.csv"
    kept.write_text("mine", encoding="utf-8")
    assert main(["validate", one, "--summary", str(kept)]) == 2
    assert kept.read_text(encoding="utf-8") == "mine"
    capsys.readouterr()
    # a summary left in the folder by an earlier run is among the inputs of DIR/*: refused
    inside = packages["dir"] / "zz_summary.csv"
    inside.write_text("x", encoding="utf-8")
    try:
        assert main(["validate", one, str(inside), "--summary", str(inside), "--force"]) == 2
        assert inside.read_text(encoding="utf-8") == "x"
    finally:
        inside.unlink()
    assert main(["validate", one, "--names", str(kept)]) == 2
    assert "no code and name columns" in capsys.readouterr().err


def test_read_names_accepts_both_header_styles(tmp_path):
    a = tmp_path / "a.csv"
    a.write_text("code,name\n3205,x\n03205,花巻市\n312011,鳥取市\n", encoding="utf-8")
    assert read_names(a) == {"03205": "花巻市", "31201": "鳥取市"}
