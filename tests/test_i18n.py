"""Japanese at the CLI boundary (issue 17): language choice, the gettext catalogue (and that its
compiled .mo is up to date), the real parser's --help in Japanese, UserErrors raised by the real
readers rendered with エラー / 場所 / 対処, findings with their fix lines, progress stages."""
from __future__ import annotations

import argparse
import contextlib
import functools
import gettext
import io
import re
import shutil
import zipfile
from pathlib import Path

import pytest
import numpy as np
from conftest import SAMPLE_SHP, need

from subdivide.cli.main import build_parser
from subdivide.core.errors import UserError
from subdivide.core.findings import Finding
from subdivide.core.i18n import (
    _FIELD,
    CONTEXT,
    catalogue,
    error_line,
    language,
    lookup,
    mo_bytes,
    parser_strings,
    po_path,
    progress_translator,
    read_po,
    render_finding,
    translate_epilog,
    translate_error,
    translate_parser,
    translate_text,
)
from subdivide.core.progress import StderrProgress
from subdivide.core.rules import RULES

#: the commands whose --help must be wholly Japanese (issue 17, staff and carriers)
COMMANDS_JA = ("info", "plan", "spill", "package", "validate", "map", "report", "screen", "message")
JA = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def _subparsers(parser):
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


# ------------------------------------------------------------------------------ language
@pytest.mark.parametrize("argv, env, want", [
    (None, {}, "en"),
    (None, {"LANG": "ja_JP.UTF-8"}, "ja"),
    (None, {"LANG": "ja_JP.eucJP"}, "ja"),
    (None, {"LANG": "en_US.UTF-8"}, "en"),
    (None, {"LANG": "C.UTF-8"}, "en"),
    (None, {"LC_MESSAGES": "ja_JP.UTF-8", "LANG": "en_US.UTF-8"}, "ja"),
    (None, {"LC_ALL": "C", "LC_MESSAGES": "ja_JP.UTF-8", "LANG": "ja_JP.UTF-8"}, "en"),   # LC_ALL wins
    (None, {"LC_ALL": "ja_JP.UTF-8", "LANG": "en_US.UTF-8"}, "ja"),
    (None, {"LC_ALL": "", "LANG": "ja"}, "ja"),                                          # empty = unset
    ("ja", {"LANG": "en_US.UTF-8"}, "ja"),                                               # --lang wins
    ("en", {"LC_ALL": "ja_JP.UTF-8"}, "en"),
    ("ja_JP", {}, "ja"),
])
def test_language(argv, env, want):
    assert language(argv, env) == want


def test_language_refuses_unknown():
    with pytest.raises(ValueError, match="ja or en"):
        language("fr", {})


# ------------------------------------------------------------------------------ the catalogue
def test_mo_is_up_to_date_with_po():
    """The shipped .mo is exactly what the .po compiles to (rebuild: python -m subdivide.core.i18n)."""
    po = po_path("ja")
    assert po.with_suffix(".mo").read_bytes() == mo_bytes(read_po(po.read_text(encoding="utf-8"))), \
        "subdivide.mo is stale: run `python -m subdivide.core.i18n`"


def test_mo_reads_back_through_gettext():
    """The .mo is a valid GNU catalogue: the standard library reads back every translated entry."""
    entries = read_po(po_path("ja").read_text(encoding="utf-8"))
    with open(po_path("ja").with_suffix(".mo"), "rb") as fh:
        cat = gettext.GNUTranslations(fh)
    translated = {k: v for k, v in entries.items() if k and v}
    assert len(translated) > 400
    assert all(cat.gettext(k) == v for k, v in translated.items())
    assert cat.info()["content-type"] == "text/plain; charset=UTF-8"


def test_translations_keep_their_placeholders():
    """A template's {fields} and argparse's %-escapes are the same in msgid and msgstr."""
    for msgid, msgstr in read_po(po_path("ja").read_text(encoding="utf-8")).items():
        if not msgid or not msgstr:
            continue
        assert sorted(_FIELD.findall(msgid)) == sorted(_FIELD.findall(msgstr)), msgid
        assert re.findall(r"%[%(]", msgid) == re.findall(r"%[%(]", msgstr), msgid


#: a known phrase, for the {phrase…} fields of the templates
PHRASE = "out of memory"


def _sample(name: str, i: int) -> str:
    """A value for field ``name``: a number for {num…}, a known phrase for {phrase…}."""
    return str(12 + i) if name.startswith("num") else PHRASE if name.startswith("phrase") else f"V{i}x"


def test_every_template_matches_its_own_english():
    """Each template msgid, filled with values, is recognised and rendered with the same values
    (a {phrase…} value in its Japanese)."""
    cat = catalogue("ja")
    templates = [k for k in cat._catalog if isinstance(k, str) and _FIELD.search(k) and CONTEXT not in k]
    assert len(templates) > 50
    for msgid in templates:
        values = {name: _sample(name, i) for i, name in enumerate(dict.fromkeys(_FIELD.findall(msgid)))}
        shown = {k: lookup(v, "ja") if k.startswith("phrase") else v for k, v in values.items()}
        got = translate_text(msgid.format(**values), "ja")
        assert got == cat._catalog[msgid].format(**shown), msgid


def test_typed_fields_and_phrases():
    """{num…} matches a number only; {phrase…} only a known text, so no half-translated sentence."""
    assert translate_text("178 characters in one paragraph", "ja") == "一つの段落に 178 文字"
    assert translate_text("many characters in one paragraph", "ja") == "many characters in one paragraph"
    assert translate_text("accept L ≤ 2.3 km or send to the whole municipality (no subdivision)", "ja") == \
        "L ≤ 2.3 km を許容する、または 市区町村全域に配信する（細分化しない）"
    assert translate_text("accept L ≤ 2.3 km or ask the mayor", "ja") == "accept L ≤ 2.3 km or ask the mayor"


def test_translate_columns_keeps_the_table_aligned():
    """A table line no entry knows whole is translated cell by cell; changed cells keep their
    right edge (display width), the last cell its left edge."""
    from subdivide.core.i18n import display_width, translate_line

    head = f"{'sub-area':<14} {'km²':>7}  {'circle % (2/2.5/3)':>22}  {'exact core %':>18}  flag"
    row = (f"{1:>2} {'Hanamaki':<11} {385.3:>7.1f}  {'67/60/53':>22}  {'55/46/38':>18}  "
           "below 50% from 2.5 km; accept L ≤ 2.3 km")
    ja_head, ja_row = translate_line(head, "ja"), translate_line(row, "ja")
    assert ja_head.split() == ["エリア", "km²", "円モデル", "%", "(2/2.5/3)", "厳密コア", "%", "判定"]
    assert ja_row.endswith("2.5 km から 50% 未満。L ≤ 2.3 km を許容する") and ja_row.startswith(row[:row.index("below")])
    end = lambda line, cell: display_width(line[:line.index(cell) + len(cell)])   # noqa: E731
    assert end(ja_head, "(2/2.5/3)") == end(head, "(2/2.5/3)") == end(row, "67/60/53")
    assert end(ja_head, "厳密コア %") == end(head, "exact core %")
    assert display_width(ja_head[:ja_head.index("判定")]) == display_width(head[:head.index("flag")])
    assert translate_line("  12  34  56", "ja") == "  12  34  56"
    assert translate_line(head, "en") == head


def test_column_labels_and_contexts():
    """msgctxt entries: a column heading and a registry word are looked up in their context only."""
    from subdivide.core.i18n import column_label, format_text, pgettext

    assert column_label("n_blocks", "ja") == "町丁・字数" and column_label("n_blocks", "en") == "n_blocks"
    assert column_label("not_a_column", "ja") == "not_a_column"
    assert pgettext("registry", "active", "ja") == "有効" and translate_text("active", "ja") == "active"
    assert format_text("{num} people", "ja", context="registry", num="1,234") == "1,234 人"
    assert format_text("{num} people", "en", context="registry", num="1,234") == "1,234 people"
    assert translate_text("2026-12-01 by hand", "ja") == "2026-12-01 by hand"   # a general template needs its context
    entries = read_po(po_path("ja").read_text(encoding="utf-8"))
    assert entries[f"column{CONTEXT}subarea"] == "エリア番号"


def test_frame_text_aligns_japanese():
    import pandas as pd

    from subdivide.core.i18n import display_width, frame_text

    df = pd.DataFrame({"subarea": [1, 2], "name": ["花巻地域", "石鳥谷地域"], "population": [69234, 14383]})
    assert frame_text(df, "en") == df.to_string(index=False)
    lines = frame_text(df, "ja").splitlines()
    assert lines[0].split() == ["エリア番号", "エリア名", "人口"]
    assert len({display_width(ln) for ln in lines}) == 1                   # every line as wide


def test_unknown_text_stays_english_and_english_is_untouched():
    assert translate_text("a message nobody translated", "ja") == "a message nobody translated"
    assert translate_text("output out/x already exists", "en") == "output out/x already exists"
    assert translate_text("output out/x already exists", "ja") == "出力 out/x は既にあります"


# ------------------------------------------------------------------------------ coverage
def test_help_of_the_staff_commands_is_fully_translated():
    parser = build_parser()
    sub = _subparsers(parser)
    missing = [(c.dest, c.help) for c in sub._choices_actions if lookup(c.help, "ja") is None]
    for name in COMMANDS_JA:
        missing += [(name, s) for s in parser_strings(sub.choices[name]) if lookup(s, "ja") is None]
    assert not missing, "add to subdivide.po (python -m subdivide.cli.catalogue --add): " + repr(missing[:10])


def test_whole_command_line_and_rules_translated():
    """Every command's help and every rule, not only the staff commands: nothing left English."""
    from subdivide.cli.catalogue import missing_strings

    missing = missing_strings("ja")
    assert not missing, "translate in subdivide.po (python -m subdivide.cli.catalogue --add): " + repr(missing[:10])


def test_every_rule_has_a_fix_and_both_languages():
    for r in RULES.values():
        assert r.fix, f"{r.id} has no fix line"
        assert JA.search(lookup(r.description, "ja") or ""), f"{r.id}: description not in Japanese"
        assert JA.search(lookup(r.fix, "ja") or ""), f"{r.id}: fix not in Japanese"
    assert RULES["ZIP-WINDOWS-NAMES"].severity == "info"


# ------------------------------------------------------------------------------ --help
def _help(parser, *path) -> str:
    p = parser
    for name in path:
        p = _subparsers(p).choices[name]
    return p.format_help()


def test_english_parser_unchanged():
    assert _help(translate_parser(build_parser(), "en"), "plan") == _help(build_parser(), "plan")


def test_info_help_in_japanese_keeps_options_and_examples():
    from subdivide.cli.commands import info

    en = _help(build_parser(), "info")
    ja = _help(translate_parser(build_parser(), "ja"), "info")
    assert ja.startswith("使い方: subdivide info")
    assert "位置引数:" in ja and "オプション:" in ja and "例:" in ja
    assert "usage:" not in ja and "options:" not in ja and "example:" not in ja
    assert "町丁・字ファイルの中身を表示します" in ja and "このヘルプを表示して終了します" in ja
    for opt in re.findall(r"(?m)^  (--[a-z-]+ [A-Z]+)", en):     # every option and metavar kept
        assert opt in ja
    for line in info.EXAMPLE.splitlines():                       # command lines exactly as in English
        if line.strip().startswith("subdivide "):
            assert line in ja


def test_plan_help_keeps_continued_command_lines():
    from subdivide.cli.commands import plan

    ja = _help(translate_parser(build_parser(), "ja"), "plan")
    continued = [ln for ln in plan.EXAMPLE.splitlines() if ln.strip().startswith("--")]
    assert continued and all(ln in ja for ln in continued)
    assert "案の作り方（いずれか一つ）" in ja and "不要な通知を免れる住民で評価" in ja


def test_message_subcommands_translated():
    ja = _help(translate_parser(build_parser(), "ja"), "message", "lint")
    assert "件名（15 文字以内）" in ja and JA.search(ja.split("\n\n")[1])


def test_japanese_locale_gives_japanese_help():
    """What the CLI does with LANG=ja_JP.UTF-8: choose the language, translate the parser."""
    parser = translate_parser(build_parser(), language(None, {"LANG": "ja_JP.UTF-8"}))
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exc:
        parser.parse_args(["validate", "--help"])
    assert exc.value.code == 0
    assert "受け取ったパッケージ" in out.getvalue() and "判定の行だけを表示します" in out.getvalue()


def test_argparse_errors_in_japanese():
    parser = translate_parser(build_parser(), "ja")
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exc:
        parser.parse_args(["info"])
    assert exc.value.code == 2
    assert "subdivide info: エラー: 次の引数が必要です: file" in err.getvalue()
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit):
        parser.parse_args(["validate", "p.zip", "--selection", "nope"])
    assert "選べない値です" in err.getvalue() and "'nope'" in err.getvalue()


def test_epilog_prose_and_commands():
    text = "example:\n  # the same judged on a hazard layer (one event per connected flood zone)\n" \
           "  subdivide plan a.shp --auto \\\n      --out b.gpkg\n  an untranslated sentence"
    ja = translate_epilog(text, "ja").splitlines()
    assert ja[0] == "例:" and ja[1] == "  # 同じ評価をハザードレイヤで行う（つながった浸水区域ごとに一事象）"
    assert ja[2:4] == text.splitlines()[2:4] and ja[4] == "  an untranslated sentence"


# ------------------------------------------------------------------------------ errors from the real code
def _raised(fn, *a, **kw) -> UserError:
    with pytest.raises(UserError) as exc:
        fn(*a, **kw)
    return exc.value


@pytest.fixture(scope="module")
def sample_copy(tmp_path_factory):
    need(SAMPLE_SHP, "bundled 花巻 sample")
    d = tmp_path_factory.mktemp("sample")
    for p in SAMPLE_SHP.parent.glob(SAMPLE_SHP.stem + ".*"):
        shutil.copy(p, d / p.name)
    return d / SAMPLE_SHP.name


def _errors(sample_copy, tmp_path):
    from subdivide.core.crs import parse_crs
    from subdivide.io.output import check_can_write
    from subdivide.io.townblocks import read_townblocks

    no_prj = tmp_path / "noprj"
    no_prj.mkdir()
    for p in sample_copy.parent.glob(sample_copy.stem + ".*"):
        if p.suffix != ".prj":
            shutil.copy(p, no_prj / p.name)
    exists = tmp_path / "out.gpkg"
    exists.write_bytes(b"x")
    two = tmp_path / "two.zip"
    with zipfile.ZipFile(two, "w") as zf:
        for p in sample_copy.parent.glob(sample_copy.stem + ".*"):
            for stem in ("a", "b"):
                zf.write(p, stem + p.suffix)
    from subdivide.cli.main import check_numbers
    from subdivide.core.codes import normalize_municipality_code

    return {
        "two-shapefiles": _raised(read_townblocks, two),
        "nan": _raised(check_numbers, argparse.Namespace(command="spill", target_share=float("nan"))),
        "muni-code": _raised(normalize_municipality_code, "3205", where="--muni"),
        "missing": _raised(read_townblocks, tmp_path / "nothing.shp"),
        "no-prj": _raised(read_townblocks, no_prj / sample_copy.name),
        "muni": _raised(read_townblocks, sample_copy, muni_code="03206"),
        "encoding": _raised(read_townblocks, sample_copy, encoding="klingon"),
        "crs": _raised(parse_crs, "EPSG:nonsense"),
        "exists": _raised(check_can_write, exists, False),
    }


def test_real_user_errors_render_in_japanese(sample_copy, tmp_path):
    """Errors users meet most (missing file, missing .prj, wrong --muni, bad encoding, bad CRS,
    existing output without --force), raised by the real code: wholly Japanese frame, message
    and fix; values (paths, codes) kept."""
    errors = _errors(sample_copy, tmp_path)
    for name, exc in errors.items():
        ja = translate_error(exc, "ja")
        lines = ja.splitlines()
        assert JA.search(lines[0]) and lines[0] != exc.what, (name, ja)
        assert any(ln.startswith("  対処: ") and JA.search(ln) for ln in lines), (name, ja)
        assert "fix:" not in ja and "where:" not in ja
        assert translate_error(exc, "en") == exc.message
    assert str(tmp_path / "nothing.shp") in translate_error(errors["missing"], "ja")
    assert "03205" in translate_error(errors["muni"], "ja") and "03206" in translate_error(errors["muni"], "ja")
    assert "別の出力先を選ぶか、置き換えるなら --force を付けてください" in translate_error(errors["exists"], "ja")


def test_error_line_as_the_cli_prints_it():
    e = UserError("output out/a.gpkg already exists", where="out/a.gpkg",
                  fix="choose another output path or pass --force to replace it")
    assert error_line("plan", e, "ja") == ("subdivide plan: エラー: 出力 out/a.gpkg は既にあります\n"
                                            "  場所: out/a.gpkg\n"
                                            "  対処: 別の出力先を選ぶか、置き換えるなら --force を付けてください")
    assert error_line("plan", e, "en") == f"subdivide plan: error: {e.message}"


# ------------------------------------------------------------------------------ findings
def test_render_finding_windows_zip_note(tmp_path):
    """A real ZIP-WINDOWS-NAMES note from staging a CP932 zip, in both languages."""
    from test_safezip_windows import windows_zip

    from subdivide.io.safezip import stage_package

    z = windows_zip(tmp_path / "a.zip", [("提出表\\manifest.json".encode("cp932"), b"{}")])
    notes: list = []
    with stage_package(z, notes=notes):
        pass
    note = next(n for n in notes if n.rule == "ZIP-WINDOWS-NAMES")
    ja = render_finding(note, "ja")
    assert ja.startswith("情報   ZIP-WINDOWS-NAMES: UTF-8 フラグのない CP932 のファイル名 1 件")
    assert "[提出表/manifest.json]" in ja and "\n        対処: 対処不要（記録のみ）" in ja
    en = render_finding(note, "en")
    assert en.startswith(str(note)) and "\n        fix: nothing to do" in en


def test_render_finding_untranslated_detail_gets_the_rule_description():
    f = Finding("CONTIGUITY", "error", "sub-area 3 (東和地域) is in 2 pieces", ("032050011", "032050012"))
    ja = render_finding(f, "ja")
    assert ja.startswith("エラー  CONTIGUITY: エリアがいくつかに分かれています")
    assert "（sub-area 3 (東和地域) is in 2 pieces）" in ja and "[032050011、032050012]" in ja
    assert "対処: 表示された町丁・字を割り当て直す" in ja


# ------------------------------------------------------------------------------ progress
def test_progress_stages_of_the_reader_in_japanese(sample_copy):
    """Every stage the real reader reports has a Japanese name, and StderrProgress prints it."""
    from subdivide.io.townblocks import read_townblocks

    stages: list[str] = []
    read_townblocks(sample_copy, progress=lambda s, d, t: stages.append(s))
    assert stages and all(lookup(s, "ja") for s in stages), [s for s in stages if not lookup(s, "ja")]
    out = io.StringIO()
    p = StderrProgress(stream=out, translate=progress_translator("ja"))
    for s in dict.fromkeys(stages):
        p(s, 1, 1)
    assert "  読み込み: 1/1 (100%)" in out.getvalue() and "  投影変換: 1/1 (100%)" in out.getvalue()
    plain = io.StringIO()
    StderrProgress(stream=plain)("reading", 1, 1)
    assert plain.getvalue() == "  reading: 1/1 (100%)\n"
    assert progress_translator("en") is None


# ------------------------------------------------------------------------------ through the real CLI
def _hooked_main():
    """subdivide.cli.main once the i18n hook-up is applied (cli_language); skips before that
    locally, fails under CI (the hook-up is part of issue 17)."""
    from conftest import IN_CI

    from subdivide.cli import main as cli_main

    if not hasattr(cli_main, "cli_language"):
        if IN_CI:
            pytest.fail("subdivide/cli/main.py lacks the i18n hook-up (cli_language, --lang)")
        pytest.skip("subdivide/cli/main.py lacks the i18n hook-up (cli_language, --lang) — see docs/i18n.md")
    return cli_main


def test_cli_japanese_under_japanese_locale(monkeypatch, capsys, tmp_path):
    cli = _hooked_main()
    monkeypatch.setenv("LANG", "ja_JP.UTF-8")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)
    assert cli.main(["info", str(tmp_path / "nothing.shp")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("subdivide info: エラー: ファイルが見つかりません: ") and "  対処: パスを確認してください" in err
    with pytest.raises(SystemExit):
        cli.main(["plan", "--help"])
    assert capsys.readouterr().out.startswith("使い方: subdivide plan")
    assert cli.main(["info", str(tmp_path / "nothing.shp"), "--lang", "en"]) == 2
    assert capsys.readouterr().err.startswith("subdivide info: error: file not found")


def test_staff_walkthrough_commands_are_real():
    """Every command line of docs/ja/staff.md parses with the real CLI (options exist, values valid)
    and names files that the walkthrough itself makes or that are bundled."""
    import shlex

    doc = (Path(__file__).resolve().parents[1] / "docs" / "ja" / "staff.md").read_text(encoding="utf-8")
    lines = [ln.strip() for ln in re.findall(r"```\n(.*?)```", doc, re.DOTALL) for ln in ln.splitlines()]
    commands = [shlex.split(ln)[1:] for ln in lines if ln.startswith("subdivide ") and "--help" not in ln]
    assert {a[0] for a in commands} >= {"info", "plan", "spill", "package", "validate"}
    parser = build_parser()
    for argv in commands:
        args = parser.parse_args(argv)
        assert args.command == argv[0]
    need(SAMPLE_SHP, "bundled sample")
    assert all((SAMPLE_SHP.parents[2] / a).exists() for argv in commands for a in argv if a.startswith("data/"))


def test_japanese_help_fits_the_terminal(monkeypatch):
    """Option help is wrapped by display width (a kanji is 2 columns), not by len(): at 80
    columns no help line of the staff commands overflows, and no line starts with 、 or ）."""
    from subdivide.core.i18n import display_width, wrap_display

    monkeypatch.setenv("COLUMNS", "80")
    parser = translate_parser(build_parser(), "ja")
    for name in COMMANDS_JA:
        text = _help(parser, name)
        options = text.split("\n\n例:")[0].split("\n\n", 2)[-1]       # the argument sections
        for line in options.splitlines():
            kinsoku = line.rstrip()[-1:] in "、。）」"                   # pushed in: may pass by one character
            assert display_width(line) <= 80 + 2 * kinsoku or " " not in line.strip(), (name, line)
            assert not line.strip()[:1] in ("、", "。", "）"), (name, line)
    assert wrap_display("あいうえお（かきくけこ）", 12) == ["あいうえお", "（かきくけこ）"]
    assert display_width("花巻 ab") == 7


# ------------------------------------------------------------------------------ every UserError, every layer
def _texts(node, names, counter) -> list[str] | None:
    """Every English text an expression can give: a literal, an f-string (each value a
    placeholder ``V1x``), a name bound to a text (``names``: name → expressions), both
    branches of ``a if c else b``, the texts of ``x or "…"``, a ``+`` of texts (a side
    that is not text becomes a placeholder); None when the expression gives no known text."""
    import ast

    def hole(value=None) -> str:
        """A made-up value: a number where the code prints one (a format such as ``:,`` or
        ``:.1f``, ``len(…)``, ``int(…)``, ``….sum()``), else a word ``V1x``."""
        counter.append(1)
        spec = ast.unparse(value.format_spec) if value is not None and value.format_spec else ""
        inner = value.value if value is not None else None
        call = getattr(getattr(inner, "func", None), "id", None) or getattr(getattr(inner, "func", None), "attr", None)
        numeric = any(c in spec for c in ",dfg%") or call in ("len", "int", "float", "round", "sum", "mean")
        return str(10 + len(counter)) if numeric else f"V{len(counter)}x"

    def shown(v) -> str:
        """A value of an f-string: a constant the module names (MAX_SUBAREAS → 14) as printed."""
        bound = names.get(getattr(v.value, "id", None)) or []
        if len(bound) == 1 and isinstance(bound[0], ast.Constant) and not v.format_spec and \
                isinstance(bound[0].value, (int, float, str)) and not isinstance(bound[0].value, bool):
            return repr(bound[0].value) if v.conversion == ord("r") else str(bound[0].value)
        return hole(v)

    if isinstance(node, ast.Constant):
        return [node.value] if isinstance(node.value, str) else None
    if isinstance(node, ast.JoinedStr):
        return ["".join(v.value if isinstance(v, ast.Constant) else shown(v) for v in node.values)]
    if isinstance(node, ast.Name) and node.id in names:
        found = [t for value in names[node.id] for t in (_texts(value, {**names, node.id: []}, counter) or [])]
        return found or None
    if isinstance(node, ast.IfExp):
        found = (_texts(node.body, names, counter) or []) + (_texts(node.orelse, names, counter) or [])
        return found or None
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
        found = [t for v in node.values for t in (_texts(v, names, counter) or [])]
        return found or None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("strip", "rstrip") \
            and not node.args:
        found = _texts(node.func.value, names, counter)
        return None if found is None else [getattr(t, node.func.attr)() for t in found]
    if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "join" and len(node.args) == 1 and \
            isinstance(node.args[0], (ast.GeneratorExp, ast.ListComp)):   # "\n".join(f"  {f}" for f in …): one item
        return _texts(node.args[0].elt, names, counter)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        a, b = _texts(node.left, names, counter), _texts(node.right, names, counter)
        if a is None and b is None:
            return None
        return [x + y for x in (a or [hole()]) for y in (b or [hole()])]
    return None


@functools.cache
def _error_texts() -> tuple[list[tuple[str, str]], list[str]]:
    """(place, English) of every text a user can meet as a UserError's message or fix, read
    from every module under subdivide/: the calls of UserError and of its subclasses (found
    by reading the class definitions), their first argument and ``fix=``; a name bound to a
    text in the module or the function (or imported from another module); a parameter of a
    function that raises it, at every call of that function in the module; a function's
    returned texts; the message of an exception caught and raised again as a UserError
    (``except ShapefileError as exc: raise UserError(str(exc))``). Also the expressions whose
    text could not be read (second list), for the test to keep small."""
    import ast

    root = Path(__file__).resolve().parents[1] / "subdivide"
    trees = {f.relative_to(root.parent).as_posix(): ast.parse(f.read_text(encoding="utf-8"))
             for f in sorted(root.rglob("*.py"))}
    modules = {f[:-3].replace("/", ".").removesuffix(".__init__"): f for f in trees}

    def defs(body) -> dict:
        """Names bound at one level of a body (module or function), not inside nested defs."""
        out: dict[str, list] = {}
        stack = list(body)
        while stack:
            n = stack.pop(0)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                continue
            if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name):
                out.setdefault(n.targets[0].id, []).append(n.value)
            elif isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name) and n.value is not None:
                out.setdefault(n.target.id, []).append(n.value)
            stack.extend(ast.iter_child_nodes(n))
        return out

    nodes = {f: list(ast.walk(t)) for f, t in trees.items()}
    top = {f: defs(t.body) for f, t in trees.items()}
    functions = {f: {n.name: n for n in ns if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
                 for f, ns in nodes.items()}
    imported: dict[str, dict[str, tuple[str, str]]] = {}
    for f, ns in nodes.items():
        for n in ns:
            if isinstance(n, ast.ImportFrom) and n.module in modules:
                for a in n.names:
                    imported.setdefault(f, {})[a.asname or a.name] = (modules[n.module], a.name)

    def names_in(f: str, chain: list) -> dict:
        """The text bindings seen from a function nested as ``chain`` in module ``f``."""
        out = {k: v for k, (g, name) in imported.get(f, {}).items() if name in top[g] for v in [top[g][name]]}
        out.update(top[f])
        for fn in chain:
            out.update(defs(fn.body))
        return out

    def returns(f: str, name: str) -> list | None:
        g, name = imported.get(f, {}).get(name, (f, name))
        fn = functions.get(g, {}).get(name)
        if fn is None:
            return None
        return [(g, [fn], n.value) for n in ast.walk(fn) if isinstance(n, ast.Return) and n.value is not None]

    def name_of(call) -> str | None:
        return getattr(call.func, "id", None) or getattr(call.func, "attr", None)

    def calls(t):
        """(call, chain of enclosing functions) for every call in tree ``t``."""
        stack = [(t, [])]
        while stack:
            n, chain = stack.pop()
            if isinstance(n, ast.Call):
                yield n, chain
            inner = chain + [n] if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) else chain
            stack.extend((c, inner) for c in ast.iter_child_nodes(n))

    all_calls = [(f, call, chain) for f, t in trees.items() for call, chain in calls(t)]

    # UserError and its subclasses, with where their constructor takes the message and the fix; a
    # class that takes its own Japanese (``ja``: the editor's EditError, shown in its web page) is left out
    signature = {"UserError": {0: "what", "fix": "fix"}}
    own_japanese: set = set()
    class_defs = [n for ns in nodes.values() for n in ns if isinstance(n, ast.ClassDef)]
    for _ in range(3):
        for c in class_defs:
            base = next((b for b in (getattr(x, "id", None) or getattr(x, "attr", None) for x in c.bases)
                         if b in signature), None)
            if base is None or c.name in signature or c.name in own_japanese:
                continue
            init = next((n for n in c.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
            if init is None:
                signature[c.name] = signature[base]
                continue
            params = [a.arg for a in init.args.args[1:]]
            if "ja" in params + [a.arg for a in init.args.kwonlyargs]:
                own_japanese.add(c.name)
                continue
            sup = next(n for n in ast.walk(init) if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "__init__")
            first = getattr(sup.args[0], "id", None) if sup.args else None
            signature[c.name] = {**({params.index(first): "what"} if first in params else {}), "fix": "fix"}

    # exceptions whose message is raised again as a UserError's (``raise UserError(str(exc))``)
    for h in (n for ns in nodes.values() for n in ns if isinstance(n, ast.ExceptHandler) and n.name):
        for c in (n for n in ast.walk(h) if isinstance(n, ast.Call) and name_of(n) in signature):
            arg = c.args[0] if c.args else None
            if isinstance(arg, ast.Call) and name_of(arg) == "str" and arg.args and \
                    getattr(arg.args[0], "id", None) == h.name:
                for x in (h.type.elts if isinstance(h.type, ast.Tuple) else [h.type]):
                    signature.setdefault(getattr(x, "id", None) or getattr(x, "attr", None), {0: "what"})

    # raisers: name → {module (None: any) → where the call takes a message / fix}; a function
    # whose parameter becomes a UserError's message or fix joins them, for the calls in its module
    raisers: dict[str, dict] = {name: {None: sig} for name, sig in signature.items()}
    found, unread, done = [], [], set()
    while True:
        new: dict[tuple[str, str], dict] = {}
        for f, call, chain in all_calls:
            by_module = raisers.get(name_of(call), {})
            sig = by_module.get(None) or by_module.get(f)
            if sig is None or (id(call), id(sig)) in done:
                continue
            done.add((id(call), id(sig)))
            fn = chain[-1] if chain else None
            args = fn.args.args if fn else []
            shift = 1 if args and args[0].arg in ("self", "cls") else 0
            params = {a.arg: i - shift for i, a in enumerate(args)} | \
                ({a.arg: None for a in fn.args.kwonlyargs} if fn else {})
            names = names_in(f, chain)
            for pos, kind in sig.items():
                part = call.args[pos] if isinstance(pos, int) and len(call.args) > pos else \
                    next((k.value for k in call.keywords if k.arg == pos or k.arg == kind), None)
                if part is None or (isinstance(part, ast.Constant) and part.value is None):
                    continue
                place = f"{f}:{call.lineno}: {kind}"
                if isinstance(part, ast.Name) and part.id in params and part.id not in defs(fn.body):
                    into = new.setdefault((f, fn.name), {})
                    into[part.id] = kind
                    if params[part.id] is not None:
                        into[params[part.id]] = kind
                    continue
                made = [part] if isinstance(part, ast.Call) else names.get(getattr(part, "id", None), [])
                if made and all(isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and
                                returns(f, v.func.id) for v in made):      # a function's returned texts
                    rets = [r for v in made for r in returns(f, v.func.id)]
                    texts = [x for g, ch, r in rets for x in (_texts(r, names_in(g, ch), []) or [])] or None
                else:
                    texts = _texts(part, names, [])
                if texts is None:
                    unread.append(f"{place}: {ast.unparse(part)}")
                found += [(place, x) for x in texts or []]
        fresh = {k: v for k, v in new.items() if raisers.get(k[1], {}).get(k[0]) != v}
        if not fresh:
            return list(dict.fromkeys(found)), unread
        for (f, name), sig in fresh.items():
            raisers.setdefault(name, {})[f] = sig


#: expressions whose text the scan cannot read, and why each is covered elsewhere
UNREAD = {
    "exc.what", "exc.fix",                            # a UserError raised again with its own texts
    "str(exc)",                                       # the caught exception's raise sites are scanned (ShapefileError)
    "fix.replace('{path}', where or 'the file')",     # faults.ERRNO_TEXT: test_file_system_faults_read_japanese
    "fixes_for(errors)",                              # the rules' fixes: test_every_rule_has_a_fix_and_both_languages
}


def _reads_japanese(text: str) -> bool:
    """``text`` translates into Japanese (and not into itself). A made-up value ``V1x`` may
    stand for one of a fixed set of known phrases (a ``{phrase…}`` field), so a text that
    fails with the words is tried again with a known phrase in their place."""
    for shown in (text, re.sub(r"V\d+x", PHRASE, text)):
        ja = translate_text(shown, "ja")
        if ja != shown and JA.search(ja):
            return True
    return False


def test_every_user_error_reads_japanese():
    """Each UserError any module under subdivide/ raises (UserError and its subclasses: message
    and fix; the texts of helpers that raise it, of names bound to text, of exceptions raised
    again as UserErrors), with made-up values, translates into Japanese: found by reading the
    modules, so a new error in any layer cannot slip through in English."""
    found, unread = _error_texts()
    assert len(found) > 850, len(found)                 # 878 texts when written: the scan still reads them all
    assert {u.split(": ", 2)[2] for u in unread} <= UNREAD, unread
    missing = [f"{place}: {text}" for place, text in found if not _reads_japanese(text)]
    assert not missing, missing


def test_the_error_scan_reads_what_the_code_raises():
    """The scan finds the texts behind names, helpers, conditional parts and constants: a
    UserError subclass, a helper's parameter, a module constant (REBUILD_FIX), MAX_SUBAREAS
    printed as 14, both branches of ``… if … else …``, and leaves out the editor's own-Japanese
    EditError."""
    texts = {text for _, text in _error_texts()[0]}
    from subdivide.model.plan import REBUILD_FIX

    assert REBUILD_FIX in texts                                                     # fix=REBUILD_FIX
    assert "no candidate meets the constraints" in texts                            # InfeasibleError
    assert "azimuth outside 0–360°" in texts                                        # fail(mask, what, fix)
    assert "use 1–14" in texts                                                      # f"use 1–{MAX_SUBAREAS}"
    assert {"11 sites lie outside Japan", "11 sites lie outside Japan — latitude and longitude look swapped"} <= texts
    assert any(t.startswith("the .shx indexes ") for t in texts)                   # count_problem's return
    assert any(t.startswith("the V1x has no valid Shapefile header") for t in texts)  # ShapefileError
    assert not any(t.startswith("town-blocks V1x are not in the plan") for t in texts)  # EditError: own Japanese


def test_file_system_faults_read_japanese():
    """Every errno the fault translator names reads Japanese, message and fix (the fix names the path)."""
    from subdivide.core.faults import ERRNO_TEXT, _errno_error

    for code in ERRNO_TEXT:
        for detail in ("", "some detail"):
            e = _errno_error(code, "out/a.gpkg", None, detail)
            what, fix = translate_text(e.what, "ja"), translate_text(e.fix, "ja")
            assert JA.search(what) and what != e.what and JA.search(fix) and fix != e.fix, (code, e.message)


def test_num_fields_get_numbers_only():
    """A list where a {num…} field stands never matches: the sub-area list of a name clash and
    of an out-of-range check is a plain field (it read [1, 2] as no number before)."""
    assert translate_text("sub-areas [3, 5] would have the same name 東和地域", "ja") == \
        "エリア [3, 5] が同じ名前 東和地域 になります"
    assert translate_text("sub-area numbers must be 1–14 (codes 0320501–0320514): [15, 16]", "ja") == \
        "エリア番号は 1〜14 にしてください（コード 0320501〜0320514）: [15, 16]"


def test_infeasible_plans_explain_themselves_in_japanese():
    """An InfeasibleError lists a reason per k, one line each: the lines are Japanese too."""
    text = ("no requested k could be met:\n  k=3: area below 300 km²: ['a 120 km²']; core share below 50% at "
            "L=2.5 km: ['b 40%']\n  k=4: no contiguous partition into 4 sub-areas meeting the floor was found")
    assert translate_text(text, "ja").splitlines() == [
        "指定したどの k も満たせませんでした:",
        "  k=3: 面積が 300 km² 未満: ['a 120 km²']。L=2.5 km で非到達コア率が 50% 未満: ['b 40%']",
        "  k=4: 下限を満たす 4 個のつながったエリアへの分け方が見つかりませんでした"]
    one = "no requested k is feasible:\n  k=3 with a 100000 km² floor in a 908 km² municipality: max feasible k = 0"
    assert translate_text(one, "ja") == ("指定したどの k も実現できません:\n  k=3: 908 km² の市区町村では、"
                                         "条件「面積の下限 100000 km²」のもとで実現できる k は最大 0 です")


def test_warnings_and_internal_errors_in_japanese(capsys):
    from subdivide.cli.main import _internal_error, _warning_printer

    show = _warning_printer("plan", None, "ja")
    show(UserWarning("input is JGD2000; transformed to JGD2011 (shift of a few metres at most; use a "
                     "grid-shift-aware tool for survey-grade work)"), UserWarning, "/x/subdivide/io/a.py", 1)
    assert capsys.readouterr().err.startswith("subdivide plan: 警告: 入力は JGD2000 です。")
    assert _internal_error(argparse.Namespace(command="spill", lang="ja"), ValueError("boom")) == 70
    err = capsys.readouterr().err
    assert err.startswith("subdivide spill: 内部エラー: ValueError: boom\n  場所: subdivide の内部")
    assert "\n  対処: 何も書き出していません" in err
    assert _internal_error(argparse.Namespace(command="spill", lang="en"), ValueError("boom")) == 70
    assert "\n  where: inside subdivide" in capsys.readouterr().err


def test_every_progress_stage_has_japanese():
    """Each stage name the code reports (``progress("…", done, total)``, read from the modules)
    and the stages with figures in them are shown in Japanese by StderrProgress."""
    import ast

    root = Path(__file__).resolve().parents[1] / "subdivide"
    stages = {"partitions (floor ×1)", "partitions (restart 2)", "municipalities screened (4.7/min)",
              "municipalities screened (4.7/min, ETA 12 s)"}
    for f in root.rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            name = getattr(getattr(node, "func", None), "id", None) or getattr(getattr(node, "func", None), "attr", None)
            if isinstance(node, ast.Call) and name == "progress" and node.args and \
                    isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                stages.add(node.args[0].value)
    assert len(stages) >= 40
    translate = progress_translator("ja")
    missing = sorted(s for s in stages if not JA.search(translate(s)))
    assert not missing, missing


def test_no_two_templates_read_the_same_english():
    """Two templates whose English differs only in field names would race for the same text
    (one of them never used): the catalogue holds each English sentence once."""
    seen: dict[str, str] = {}
    for msgid in read_po(po_path("ja").read_text(encoding="utf-8")):
        if CONTEXT in msgid or not _FIELD.search(msgid):
            continue
        shape = _FIELD.sub(lambda m: "{num}" if m.group(1).startswith("num") else "{}", msgid)
        assert shape not in seen, (seen.get(shape), msgid)
        seen[shape] = msgid


def test_where_words_translate_but_files_and_options_stay_as_written():
    """The ``where`` of an error: file names, rows and options kept, the words around them in
    Japanese (msgctxt "where" templates), and those templates never touch other text."""
    from subdivide.core.errors import UserError
    from subdivide.core.i18n import translate_where

    assert translate_where("/x/町丁.csv, rows [3, 5] (row 1 = header)", "ja") == "/x/町丁.csv、[3, 5] 行目（1 行目は見出し）"
    assert translate_where("plan.gpkg: layer townblocks", "ja") == "plan.gpkg: レイヤ townblocks"
    assert translate_where("sites.csv (read as EPSG:6668), cells ['d:1']", "ja") == \
        "sites.csv（EPSG:6668 として読み込み）、セル ['d:1']"
    assert translate_where("--muni (not given)", "ja") == "--muni（指定なし）"
    for kept in ("/x/y.shp", "--k", "h27ka31.shp [KEY_CODE]"):
        assert translate_where(kept, "ja") == kept
    assert translate_where("b.csv, row 7", "en") == "b.csv, row 7"
    assert translate_text("the value is bad, row 7", "ja") == "the value is bad, row 7"   # no leak
    err = UserError("no observations given", where="observations", fix="give observation files, or --trial")
    assert "\n  場所: 観測データ\n" in translate_error(err, "ja") + "\n"


def test_a_plan_that_breaks_the_rules_lists_its_findings_in_japanese(sample_plan):
    """PlanCheckError carries its findings: in Japanese each reads as the findings table does."""
    from subdivide.core.errors import PlanCheckError

    sub = sample_plan.blocks["subarea"].to_numpy().copy()
    far = int(np.flatnonzero(sub == sub.max())[0])       # one block of the last sub-area, moved to the first
    sub[far] = sub.min()
    with pytest.raises(PlanCheckError) as exc:
        sample_plan.with_assignment(sub)
    assert exc.value.findings and exc.value.message.startswith("the plan breaks the rules:\n  ERROR")
    ja = translate_error(exc.value, "ja")
    assert ja.startswith("案が規則を満たしていません:\n  エラー")
    rows = [line for line in ja.splitlines() if line.startswith("  エラー")]
    assert rows and all(JA.search(r.split(":", 1)[1]) for r in rows), ja
