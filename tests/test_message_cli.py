"""`subdivide message lint|compose` end to end: exit 0 clean / 1 errors / 2 unreadable, no
traceback, JSON like `subdivide validate`, sheets that survive Excel, --force."""
from __future__ import annotations

import json
import shlex
import subprocess
import sys

import pytest

from subdivide.cli.main import main

EVAC = ("警戒レベル4 全員避難\nこちらは花巻市です\n発令内容: 12月01日15時00分、以下の地域に避難指示を発令\n"
        "対象地域: 大迫地域\n理由: 大雨により稗貫川氾濫の恐れ\n"
        "行動要請: 対象の地域の方は速やかに安全な場所へ避難してください\n(花巻市)")
#: the guide's count, worked by hand: every character 1, each of the 6 line breaks 2
EVAC_COUNT = len(EVAC) + EVAC.count("\n")


def run(argv, capsys):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_lint_clean_message_exits_0(capsys):
    code, out, _ = run(["message", "lint", "--title", "避難指示", "--body", EVAC, "--category", "避難指示",
                        "--muni-name", "花巻市"], capsys)
    assert code == 0 and "CLEAN: 0 errors" in out and f"body {EVAC_COUNT}/200" in out and EVAC.count("\n") == 6


def test_lint_errors_exit_1_and_json_carries_rule_fix_reference(tmp_path, capsys):
    js = tmp_path / "r.json"
    code, out, _ = run(["message", "lint", "--title", "避難指示", "--body", EVAC + "\nbousai＠city.example.jp",
                        "--category", "避難指示", "--json", str(js)], capsys)
    assert code == 1 and "L11" in out and "ERRORS FOUND" in out
    d = json.loads(js.read_text(encoding="utf-8"))
    f = next(f for f in d["messages"][0]["findings"] if f["rule"] == "L11")
    assert f["severity"] == "error" and f["reference"] == "G§9 p.23" and f["fix"] and f["edition"] == "2021"
    assert d["status"] == 1 and d["counts"]["error"] == 1 and d["edition"] == "2021"
    # an existing --json is not replaced without --force (exit 2, file untouched)
    before = js.read_bytes()
    code, _, err = run(["message", "lint", "--title", "避難指示", "--body", EVAC, "--json", str(js)], capsys)
    assert code == 2 and "already exists" in err and js.read_bytes() == before


@pytest.mark.parametrize("name, data, what", [
    ("missing.txt", None, "does not exist"),
    ("bad.json", b"{not json", "not valid JSON"),
    ("nobody.csv", "title,category\n避難指示,避難指示\n".encode("utf-8-sig"), "no 'body' field"),
    ("binary.txt", bytes(range(128, 256)) * 3, "neither UTF-8 nor CP932"),
    ("bad.xlsx", b"PK\x03\x04 not really", "not a readable .xlsx"),
    ("baddrill.csv", "title,body,is_drill\n避難指示,本文,maybe\n".encode(), "is not yes/no"),
])
def test_unreadable_input_exits_2_without_traceback(tmp_path, capsys, name, data, what):
    p = tmp_path / name
    if data is not None:
        p.write_bytes(data)
    code, out, err = run(["message", "lint", str(p)], capsys)
    assert code == 2 and what in err and "Traceback" not in err + out


def test_lint_sheet_of_many_messages_with_context_columns(tmp_path, capsys):
    import pandas as pd

    from subdivide.io.output import write_csv, write_xlsx

    df = pd.DataFrame({
        "id": ["ok", "drill-no-marker", "night", "repeat"],
        "title": ["避難指示", "避難指示", "避難指示", "避難指示"],
        "body": [EVAC, EVAC, EVAC, EVAC],
        "category": ["避難指示"] * 4,
        "is_drill": ["", "はい", "", ""],
        "send_time": ["2026-12-01 15:00", "2026-12-01 10:00", "2026-12-01 02:00", "2026-12-01 15:30"],
        "target_area": ["大迫地域"] * 4,
    })
    for path in (tmp_path / "m.csv", tmp_path / "m.xlsx"):
        write_csv(df, path) if path.suffix == ".csv" else write_xlsx({"messages": df}, path)
        js = tmp_path / (path.stem + path.suffix[1:] + ".json")
        code, out, _ = run(["message", "lint", str(path), "--muni-name", "花巻市", "--json", str(js)], capsys)
        d = json.loads(js.read_text(encoding="utf-8"))
        rules = {m["id"]: {f["rule"] for f in m["findings"]} for m in d["messages"]}
        assert code == 1 and d["n_messages"] == 4
        assert rules["ok"] == set()
        assert {"L19", "L20"} <= rules["drill-no-marker"]
        assert rules["night"] == {"L40"}
        assert rules["repeat"] == {"L44"}          # 30 min after "ok", same category and area
        assert d["messages"][0]["body"] == EVAC    # line breaks inside cells survive


def test_sheet_cells_are_read_as_written_spaces_and_dates_included(tmp_path, capsys):
    """Spaces and line breaks around a body count (cells are not stripped), in a CSV and in an
    Excel workbook; a send time typed into Excel as a date reads as that time."""
    import datetime as dt

    import pandas as pd
    from openpyxl import Workbook

    from subdivide.carrier.messages.reading import read_messages
    from subdivide.io.output import write_csv

    body = "  " + EVAC + "\n"
    write_csv(pd.DataFrame({"title": ["避難指示"], "body": [body], "category": ["避難指示"]}), tmp_path / "m.csv")
    wb = Workbook()
    wb.active.append(["title", "body", "category", "send_time"])
    wb.active.append(["避難指示", body, "避難指示", dt.datetime(2026, 12, 1, 15, 0)])
    wb.save(tmp_path / "m.xlsx")
    for name in ("m.csv", "m.xlsx"):
        (m,) = read_messages(tmp_path / name)
        assert m.body == body and m.id == "row 2"
    (m,) = read_messages(tmp_path / "m.xlsx")
    assert m.context.send_time == dt.datetime(2026, 12, 1, 15, 0)


def test_text_file_crlf_counts_like_lf(tmp_path, capsys):
    lf, crlf = tmp_path / "lf.txt", tmp_path / "crlf.txt"
    lf.write_text("避難指示\n" + EVAC + "\n", encoding="utf-8")
    crlf.write_bytes(("避難指示\r\n" + EVAC.replace("\n", "\r\n") + "\r\n").encode("utf-8"))
    outs = []
    for p in (lf, crlf):
        code, out, _ = run(["message", "lint", str(p), "--category", "避難指示", "--quiet"], capsys)
        js = tmp_path / (p.stem + ".json")
        main(["message", "lint", str(p), "--category", "避難指示", "--json", str(js)])
        capsys.readouterr()
        outs.append(json.loads(js.read_text(encoding="utf-8"))["messages"][0]["counts"])
        assert code == 0 and out.startswith("CLEAN")
    assert outs[0] == outs[1] and outs[0]["body"] == EVAC_COUNT


def test_rules_listing_names_all_45(capsys):
    code, out, _ = run(["message", "lint", "--rules"], capsys)
    assert code == 0 and all(f"L{i:02d}" in out for i in range(1, 46))


@pytest.fixture(scope="module")
def plan_file(sample_plan, tmp_path_factory):
    path = tmp_path_factory.mktemp("plan") / "hanamaki.plan.gpkg"
    sample_plan.save(path)
    return path


@pytest.mark.slow
def test_compose_csv_survives_excel_and_lints_clean_again(plan_file, tmp_path, capsys):
    out_csv, js = tmp_path / "messages.csv", tmp_path / "messages.json"
    code, out, _ = run(["message", "compose", str(plan_file), "--category", "避難指示", "-o", str(out_csv),
                        "--json", str(js), "--issued", "2026-12-01T15:00", "--reason", "大雨により河川氾濫の恐れ",
                        "--shelters", "大迫地域=大迫小学校、大迫中学校"], capsys)
    assert code == 0 and "CLEAN" in out
    raw = out_csv.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw and raw.count(b"\r\n") >= 5
    d = json.loads(js.read_text(encoding="utf-8"))
    bodies = {m["subarea_name"]: m["body"] for m in d["messages"]}
    assert "開設されている避難所: 大迫小学校、大迫中学校" in bodies["大迫地域"]
    assert "12月01日15時00分" in bodies["東和地域"]
    assert len(d["limits_of_reach"]) >= 5
    code, out, _ = run(["message", "lint", str(out_csv)], capsys)      # the sheet reads back as it is
    assert code == 0 and "4 message(s)" in out
    # nothing is replaced without --force; with --force the same command may replace its output
    code, _, err = run(["message", "compose", str(plan_file), "-o", str(out_csv)], capsys)
    assert code == 2 and "already exists" in err and out_csv.read_bytes() == raw
    code, _, _ = run(["message", "compose", str(plan_file), "-o", str(out_csv), "--force", "--drill"], capsys)
    assert code == 0 and "【訓練】" in out_csv.read_bytes().decode("utf-8-sig")


@pytest.mark.slow
def test_compose_xlsx_neutralises_formulas(sample_blocks, tmp_path, capsys):
    from openpyxl import load_workbook

    from subdivide.model.plan import Plan

    plan = Plan.from_assignment(sample_blocks, sample_blocks.set_index("key")["OLD_MUNI"],
                                names={"大迫": "=1+1地域"})
    p = tmp_path / "hostile.plan.gpkg"
    plan.save(p)
    x = tmp_path / "m.xlsx"
    code, _, _ = run(["message", "compose", str(p), "-o", str(x)], capsys)
    assert code == 0
    ws = load_workbook(x)["messages"]
    header = [c.value for c in ws[1]]
    cells = [row[header.index("subarea_name")].value for row in ws.iter_rows(min_row=2)]
    assert "'=1+1地域" in cells and all(c.data_type != "f" for row in ws.iter_rows() for c in row)
    assert {"messages", "limits"} <= set(load_workbook(x).sheetnames)


def test_compose_bad_options_exit_2(plan_file, tmp_path, capsys):
    for argv, what in [
        (["-o", str(tmp_path / "m.txt")], ".xlsx or .csv"),
        (["-o", str(tmp_path / "m.csv"), "--category", "避難勧告"], "2021"),
        (["-o", str(tmp_path / "m.csv"), "--shelters", "無い地域=学校"], "unknown sub-areas"),
        ([], "no output"),
    ]:
        code, out, err = run(["message", "compose", str(plan_file), *argv], capsys)
        assert code == 2 and what in err and "Traceback" not in err, (argv, err)
        assert not (tmp_path / "m.csv").exists()


@pytest.mark.parametrize("argv", [["message", "--help"], ["message", "lint", "--help"],
                                  ["message", "compose", "--help"]])
def test_help_imports_no_heavy_library(argv):
    code = ("import sys, io, contextlib\nfrom subdivide.cli.main import main\nbuf = io.StringIO()\n"
            f"with contextlib.redirect_stdout(buf):\n    try:\n        main({argv!r})\n    except SystemExit:\n        pass\n"
            "print(sorted(m for m in ('pandas', 'geopandas', 'shapely', 'pyogrio') if m in sys.modules))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.strip().splitlines()[-1] == "[]", res.stdout + res.stderr


def test_worked_example_in_help_runs():
    """The first EXAMPLE line (a URL in the body) runs as printed and exits 1 with L09."""
    from subdivide.cli.commands.message import EXAMPLE

    lines = EXAMPLE.strip("\n").split("\n")
    cmd = (lines[0].rstrip("\\").strip() + " " + lines[1].split("#")[0].strip())
    cmd = cmd.replace("subdivide ", f"{shlex.quote(sys.executable)} -m subdivide.cli.main ", 1)
    res = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and "L09" in res.stdout, res.stdout + res.stderr
