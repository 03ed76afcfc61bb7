"""Japanese throughout (issue 17): every command run as a user runs it, in a subprocess with
LANG=ja_JP.UTF-8 (conftest pins LC_ALL=C.UTF-8 for in-process tests; the subprocess gets a
Japanese locale of its own), prints Japanese: each line it prints on stdout and stderr either
holds Japanese or is made of numbers, paths, codes and identifiers — no English sentence left.
LANG=C keeps English.

Several commands run in one interpreter (``RUNNER``) so that the heavy imports are paid once."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SAMPLE_DIR, SAMPLE_SHP, SHARED_DATA, need

#: Japanese characters (kana, kanji, full-width forms and punctuation)
CJK = re.compile(r"[\u3000-\u30ff\u4e00-\u9fff\uff00-\uffef]")
#: what a line may hold in English: paths, file names, options, commands in backquotes or after
#: "subdivide", URLs, identifiers (snake_case, KEY_CODE), CRS codes
NOT_PROSE = [re.compile(p) for p in (
    r"`[^`]*`", r"'[^']*'", r"https?://\S+", r"^  場所: .*", r"\{.*\}$", r"--[a-z][a-z0-9-]* [a-z][\w|.-]*(?=[）)])", r"\bsubdivide(?: [a-z]+)?(?: (?:-{0,2}[\w.,:/=-]+|[A-Z]+))*",
    r"\S*[/\\]\S*", r"\S+\.(?:csv|json|gpkg|zip|html|pdf|xlsx|png|txt|sqlite|shp|geojson|toml|tif)\b",
    r"-{1,2}[a-z][a-z0-9-]*", r"\b\w+_\w+\b", r"\bEPSG:\d+", r"\[[^\]]*\]")]
#: words that are the same in a Japanese text: units, model and CRS names, the carriers' codes
ALLOWED = {"km", "min", "cpg", "prj", "dbf", "shx", "shp", "sha", "brier", "jgd", "japan", "plane", "rectangular", "rtk", "gsi", "pdf", "xlsx",
           "csv", "url", "web", "all", "alpha", "test"}


def english_words(line: str) -> list[str]:
    """The English words of a printed line, once paths, options, identifiers and commands are
    set aside: lower-case words of three letters or more; in a line without Japanese any
    word of three letters or more (a capitalised sentence too)."""
    rest = line
    for rx in NOT_PROSE:
        rest = rx.sub(" ", rest)
    pattern = r"\b[a-z]{3,}\b" if CJK.search(line) else r"\b[A-Za-z][a-z]{2,}\b"
    return [w for w in re.findall(pattern, rest) if w.lower() not in ALLOWED]


def untranslated(text: str) -> list[str]:
    """Lines of ``text`` that still hold English prose."""
    return [ln for ln in text.splitlines() if ln.strip() and english_words(ln)]


def test_the_check_itself():
    assert untranslated("書き出しました: spill/spill_subareas.csv, spill/spill.json") == []
    assert untranslated("  k= 1 |          0.0%\n03205  花巻市    1     4    463") == []
    assert untranslated("次に: subdivide validate pkg.zip\n  L_km   1.79 km [-0.04, 2.67]") == []
    assert untranslated("wrote spill/spill.json") == ["wrote spill/spill.json"]
    assert untranslated("花巻地域 → 石鳥谷地域: 73.6 km², 7,453 people") != []
    assert untranslated("Recommended: k = 11") != []


RUNNER = r"""
import json, sys
from subdivide.cli.main import main
for i, argv in enumerate(json.loads(sys.argv[1])):
    sys.stdout.write(f"\x1e{i}\n"); sys.stdout.flush(); sys.stderr.write(f"\x1e{i}\n"); sys.stderr.flush()
    try:
        rc = main(argv)
    except SystemExit as exc:
        rc = exc.code
    sys.stdout.flush(); sys.stderr.flush()
    sys.stdout.write(f"\x1d{rc}\n"); sys.stdout.flush()
"""


def _env(lang: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE")}
    env.update(LANG=lang, PYTHONPATH=str(ROOT), PYTHONIOENCODING="utf-8", SOURCE_DATE_EPOCH="1700000000")
    return env


def run_commands(commands: list[list[str]], cwd: Path, lang: str = "ja_JP.UTF-8", timeout: int = 600):
    """Run the CLI commands one after the other in one interpreter with LANG=``lang``; return
    (exit status, stdout, stderr) of each."""
    p = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(commands)], cwd=cwd, env=_env(lang),
                       capture_output=True, text=True, encoding="utf-8", timeout=timeout)
    assert p.returncode == 0, p.stderr[-2000:]
    outs = p.stdout.split("\x1e")[1:]
    errs = p.stderr.split("\x1e")[1:]
    assert len(outs) == len(errs) == len(commands), (p.stdout[-2000:], p.stderr[-2000:])
    result = []
    for out, err in zip(outs, errs):
        body, status = out.split("\x1d")
        result.append((int(status.strip()), body.split("\n", 1)[1], err.split("\n", 1)[1]))
    return result


def assert_japanese(results, commands, *, statuses=None):
    for i, ((rc, out, err), argv) in enumerate(zip(results, commands)):
        want = 0 if statuses is None else statuses[i]
        assert rc == want, (argv, rc, out[-1500:], err[-1500:])
        assert CJK.search(out + err), (argv, out, err)
        left = untranslated(out) + untranslated(err)
        assert not left, (argv, left[:8])


@pytest.fixture(scope="module")
def work(tmp_path_factory, sample_plan):
    """A folder with the 旧市町村 plan of the bundled sample (made through the API)."""
    d = tmp_path_factory.mktemp("ja")
    sample_plan.save(d / "h.plan.gpkg")
    shutil.copy(SAMPLE_DIR / "offices.geojson", d / "offices.geojson")
    return d


# --------------------------------------------------------------------------- quick commands
def test_message_and_errors_in_japanese(work):
    """message lint / --rules, and the errors users meet most: a missing file, a bad option
    value, an output that exists without --force, a refused combination."""
    (work / "exists.gpkg").write_bytes(b"x")
    commands = [
        ["message", "lint", "--category", "避難指示", "--title", "避難指示",
         "--body", "警戒レベル4 全員避難\nこちらは花巻市です\n詳しくは https://example.jp"],
        ["message", "lint", "--rules"],
        ["info", "nothing.shp"],
        ["spill", "h.plan.gpkg", "--out", "s/", "--distances", "abc"],
        ["coverage", "--synthetic", "--isd-km", "7", "--outline", "h.plan.gpkg", "--out", "exists.gpkg"],
        ["package", "h.plan.gpkg", "--out", "p.zip", "--online-map", "--offline-map"],
        ["map", "h.plan.gpkg", "-o", "m.html", "--tolerance", "-3"],
        ["screen", "nothing.shp", "--out", "x/", "--k", "1-99"],
        ["message", "compose", "h.plan.gpkg"],
        ["registry", "--db", "r.sqlite", "show", "3205x"],
    ]
    results = run_commands(commands, work)
    assert_japanese(results, commands, statuses=[1, 0, 2, 2, 2, 2, 2, 2, 2, 2])
    out = {i: r[1] + r[2] for i, r in enumerate(results)}
    assert "  エラー  L09:" in out[0] and "対処: アドレスを削除し" in out[0] and out[0].rstrip().endswith("コマンドライン")
    assert "エラー: ファイルが見つかりません" in out[2] and "対処:" in out[2]
    assert "スピル距離 'abc' は数ではありません" in out[3]
    assert "出力 exists.gpkg は既にあります" in out[4] and "--force" in out[4]
    assert "両立しません" in out[5]
    for i in range(2, 10):
        err = results[i][2]
        assert err.startswith(f"subdivide {commands[i][0]}: エラー: ") and "\n  対処: " in err, err


def test_english_stays_the_default_under_lang_c(work):
    commands = [["message", "lint", "--rules"], ["info", "nothing.shp"]]
    results = run_commands(commands, work, lang="C.UTF-8")
    assert results[0][1].startswith("L01  error    category is not one of")
    assert results[1][2].startswith("subdivide info: error: file not found")
    assert not CJK.search(results[1][2].split("nothing.shp")[0])


def test_registry_in_japanese(work, monkeypatch):
    """list / show / history / withdraw on a registry holding one record (register: below)."""
    from subdivide.carrier.registry import Registry

    for var in ("LOGNAME", "USER", "LNAME", "USERNAME"):     # the audit names who made the registry
        monkeypatch.setenv(var, "山田")

    db = work / "reg.sqlite"
    rec = {"muni_code": "03205", "muni_name": "花巻市", "n_townblocks": 463, "package_sha256": "0123456789" * 6 + "0123",
           "subareas": [{"subarea": i, "code": f"03205{i:02d}", "name": n, "display_order": i, "n_blocks": b,
                         "population": p, "area_km2": a}
                        for i, (n, b, p, a) in enumerate([("花巻地域", 378, 69234, 385.3),
                                                          ("大迫地域", 4, 5331, 246.2)], 1)]}
    Registry(db).register_record(rec, actor="山田")
    commands = [["registry", "--db", str(db), c, *a] for c, *a in
                (["list", "--all"], ["show", "03205"], ["history"], ["withdraw", "03205", "--reason", "revised"],
                 ["list"], ["show", "03205"])]
    results = run_commands(commands, work)
    assert_japanese(results, commands)
    listed = results[0][1].splitlines()
    assert listed[0].split()[:3] == ["コード", "名称", "#"] and "有効" in listed[1] and "登録者 山田" in listed[1]
    assert "町丁・字    378" in results[1][1] and "69,234 人" in results[1][1]
    assert results[3][1].startswith("取り下げました: 03205（#1）")


@pytest.mark.slow
def test_edit_prints_its_address_in_japanese(work):
    """The editor server: its first lines, then stopped (by this test, by its pid)."""
    p = subprocess.Popen([sys.executable, "-m", "subdivide", "edit", "h.plan.gpkg", "--no-browser"], cwd=work,
                         env=_env("ja_JP.UTF-8"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         encoding="utf-8")
    try:
        lines = [p.stdout.readline() for _ in range(2)]
    finally:
        p.terminate()
        p.wait(timeout=30)
    assert lines[0].startswith("subdivide edit: エディタの URL: http://127.0.0.1:"), lines
    assert not untranslated("".join(lines)), lines


# --------------------------------------------------------------------------- the pipeline
@pytest.mark.slow
def test_pipeline_commands_in_japanese(work):
    """info, spill, coverage, package, validate, registry register, map, report, message compose:
    everything they print (progress included) is Japanese."""
    commands = [
        ["info", str(SAMPLE_SHP), "--progress"],
        ["spill", "h.plan.gpkg", "--out", "spill/", "--points", "offices.geojson", "--point-name", "office_name",
         "--progress"],
        ["coverage", "--synthetic", "--isd-km", "7", "--carriers", "A,B", "--outline", "h.plan.gpkg",
         "--out", "cov.gpkg", "--sites-out", "sites.csv"],
        ["spill", "h.plan.gpkg", "--out", "spill-cov/", "--coverage", "cov.gpkg"],
        ["package", "h.plan.gpkg", "--out", "pkg.zip", "--progress"],
        ["validate", "pkg.zip"],
        ["registry", "--db", "r.sqlite", "--actor", "山田", "register", "pkg.zip", "--name", "花巻市"],
        ["map", "h.plan.gpkg", "-o", "m.html", "--progress"],
        ["report", "h.plan.gpkg", "-o", "rep/", "--progress"],
        ["message", "compose", "h.plan.gpkg", "--category", "避難指示", "-o", "msgs.xlsx", "--spill-km", "2,3"],
        ["message", "lint", "msgs.xlsx"],
    ]
    results = run_commands(commands, work)
    assert_japanese(results, commands)
    assert "ファイル:" in results[0][1] and "読み込み: 1/1 (100%)" in results[0][2]
    spill = results[1][1]
    assert "スピル: エリア 4" in spill and "円モデル %" in spill and "km から 50% 未満" in spill
    assert "書き出しました: spill/spill_subareas.csv" in spill and "スピル: コア" in results[1][2]
    assert results[2][1].splitlines()[1].split()[0] == "セル数"
    assert results[4][1].startswith("パッケージを書き出しました: pkg.zip")
    assert results[6][1].startswith("登録しました: 03205 花巻市（#1）")


@pytest.mark.slow
def test_plan_in_japanese(work):
    commands = [["plan", str(SAMPLE_SHP), "--by", "OLD_MUNI", "--out", "p.plan.gpkg"],
                ["plan", str(SAMPLE_SHP), "--auto", "--k", "2-4", "--out", "auto.plan.gpkg"]]
    results = run_commands(commands, work)
    assert_japanese(results, commands)


@pytest.mark.slow
def test_calibrate_and_expected_view_in_japanese(work):
    polygons = need(SHARED_DATA / "derived_approx_old_municipalities" / "approx_old_municipalities_voronoi.geojson",
                    "approximate 旧市町村 polygons")
    offices = need(SHARED_DATA / "offices" / "p34_offices_hanamaki_toyota_hagi.geojson", "P34 offices")
    commands = [
        ["calibrate", "--trial", "--polygons", str(polygons), "--area-name", "old_muni_name", "--points",
         str(offices), "--point-name", "office_name", "--out", "cal/", "--progress"],
        ["spill", "h.plan.gpkg", "--out", "spill-model/", "--model", "cal/calibration_model.json"],
    ]
    results = run_commands(commands, work)
    assert_japanese(results, commands)
    assert "[全体] 受信モデル" in results[0][1] and "識別できません" in results[0][1]
    assert "期待値の見方" in results[1][1] and "見込み" in results[1][1]


@pytest.mark.slow
def test_screen_in_japanese(work):
    commands = [["screen", str(SAMPLE_SHP), "--out", "screen_out/", "--workers", "0", "--k", "2-3", "--progress"]]
    results = run_commands(commands, work)
    assert_japanese(results, commands)
    assert "市区町村を評価しました" in results[0][1] and "通知を免れます" in results[0][1]


@pytest.mark.slow
def test_demo_in_japanese(work):
    """The whole demo under a Japanese locale: stage titles, tables, findings, the closing list."""
    commands = [["demo", "--out", "demo"]]
    results = run_commands(commands, work)
    assert_japanese(results, commands)
    out = results[0][1]
    assert "== 1. 町丁・字（subdivide info）" in out and "デモが終わりました" in out
    assert " エリア番号 " in out and "合格: エラー 0 件" in out and "  印刷用資料  " in out
    summary = json.loads((work / "demo" / "summary.json").read_text(encoding="utf-8"))
    assert "print packet" in summary["outputs"]            # the files keep their English keys
