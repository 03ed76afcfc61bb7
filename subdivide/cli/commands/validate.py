"""``subdivide validate``: what a carrier runs on a package it receives.

Prints the findings (severity, rule id, message, offending features, and the rule's fix
line under each; in Japanese with ``--lang ja`` or a Japanese locale) and writes a JSON
report with ``--json FILE``. Exit status 0 clean, 1 errors found, 2 unreadable. See
docs/validation.md for every rule.

Several packages (``subdivide validate DIR/*``): one verdict line each, naming the
municipality (code and name), and with ``--summary FILE.csv|.xlsx`` one table with a row
per package (code, name, verdict, error / warning counts, the first errors), for Excel.
"""
from __future__ import annotations

import json
import sys
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

from subdivide.core.errors import UserError
from subdivide.core.names import visible

HELP = "validate a received package (directory or zip): exit 0 clean, 1 errors, 2 unreadable"
EXAMPLE = """
  subdivide validate hanamaki-package.zip
  subdivide validate hanamaki-package.zip --lang ja   # findings and their fixes in Japanese
  subdivide validate hanamaki-package.zip pkg/ --quiet --json reports.json   # several: a JSON list
  subdivide validate pkg/ --outline data/hanamaki_03205/outline.geojson --json report.json
  subdivide validate hanamaki-package.zip pkg.zip --quiet --summary summary.xlsx   # batch (or received/*): a row each
  subdivide validate pkg.zip --coverage coverage.gpkg --selection site --profile subdivide/carrier/profiles/default.toml
  # (packages from `subdivide package --help`, coverage.gpkg from `subdivide spill --help`)
"""


def add_arguments(p) -> None:
    p.add_argument("package", nargs="+", help="package directory or zip (several: one summary line each, "
                   "exit status the worst)")
    p.add_argument("--profile", metavar="FILE", help="carrier profile TOML (default profile if omitted)")
    p.add_argument("--outline", metavar="FILE", help="municipal outline: check gaps and overlaps against it")
    p.add_argument("--coverage", metavar="FILE", help="the carrier's coverage polygons: add its footprint report")
    p.add_argument("--selection", choices=("any", "site", "share"), help="cell selection rule for --coverage")
    p.add_argument("--spill-km", metavar="L,…", help="spill distances in km (default: the package's spill "
                   "summary, else 2,2.5,3); the smallest is the design distance")
    p.add_argument("--target-share", type=float, metavar="P", help="unreached share target (default 0.5)")
    p.add_argument("--json", metavar="FILE", help="write the JSON report to FILE ('-' for stdout)")
    p.add_argument("--quiet", action="store_true", help="print only the verdict line")
    p.add_argument("--summary", metavar="FILE", help="write one row per package to FILE (.csv: UTF-8 with BOM; "
                   ".xlsx: codes stored as text): municipality, verdict, counts, first errors")
    p.add_argument("--names", metavar="FILE", help="CSV/XLSX of municipality codes and names (columns code,name "
                   "or the 総務省 list's 団体コード, 市区町村名) to name municipalities whose package has no name")
    p.add_argument("--force", action="store_true", help="replace an existing --json / --summary file")


def _distances(text):
    if text is None:
        return None
    try:
        vals = tuple(float(x) for x in str(text).split(",") if x.strip())
    except ValueError:
        raise UserError(f"--spill-km {text!r} is not a list of numbers", fix="e.g. --spill-km 2,2.5,3") from None
    if not vals or any(v <= 0 for v in vals):
        raise UserError(f"--spill-km {text!r} must list positive distances", fix="e.g. --spill-km 2,2.5,3")
    return vals


# ---------------------------------------------------------------------------- batch view
#: the verdict of a report's status, per language
VERDICTS = {"en": {0: "CLEAN", 1: "ERRORS FOUND", 2: "UNREADABLE"},
            "ja": {0: "合格", 1: "エラーあり", 2: "読み取り不能"}}
#: errors quoted in the summary's first_errors cell
FIRST_ERRORS = 3
#: summary columns (English keys) and their Japanese headers
SUMMARY_COLUMNS = {
    "package": "パッケージ", "muni_code": "団体コード", "muni_name": "市区町村名", "verdict": "判定",
    "status": "終了コード", "errors": "エラー数", "warnings": "警告数", "notes": "情報数",
    "subareas": "エリア数", "townblocks": "町丁目数", "error_rules": "エラーの規則",
    "first_errors": "主なエラー", "first_fix": "最初のエラーの対処",
}
#: header spellings of a --names file (compared after NFKC and without spaces, lower case)
CODE_HEADERS = ("code", "muni_code", "団体コード", "市区町村コード", "全国地方公共団体コード")
NAME_HEADERS = ("name", "muni_name", "市区町村名(漢字)", "市区町村名", "名称")


def read_names(path) -> dict[str, str]:
    """municipality code (5 digits) → name from a CSV/XLSX with a code and a name column;
    6-digit codes (with the check digit, as in the 総務省 list) are cut to 5."""
    from subdivide.io.tables import read_text_table

    df = read_text_table(path, what="--names file")
    from subdivide.io.tables import header_key

    cols = {header_key(c): c for c in df.columns}
    code_col = next((cols[k] for k in CODE_HEADERS if k in cols), None)
    name_col = next((cols[k] for k in NAME_HEADERS if k in cols), None)
    if code_col is None or name_col is None:
        raise UserError(f"{Path(path).name} has no code and name columns (it has: {', '.join(map(str, df.columns))[:200]})",
                        where=str(path), fix="give columns code,name (e.g. 03205,花巻市), or the 総務省 "
                        "全国地方公共団体コード list (団体コード, 市区町村名)")
    out = {}
    for code, name in zip(df[code_col], df[name_col]):
        c, n = unicodedata.normalize("NFKC", str(code)).strip(), str(name).strip()
        if c.isdigit() and len(c) in (5, 6) and n:
            out[c[:5]] = n
    return out


def municipality_of(report, names: dict) -> tuple[str, str]:
    """(code, name) of a validated package: the manifest's code, else the one inferred from
    the town-blocks; the name from ``names`` (the carrier's official list), else the one
    the manifest states (control characters dropped), else ""."""
    from subdivide.core.names import without_controls

    man = (report.manifest or {}).get("municipality")
    man = man if isinstance(man, dict) else {}
    code = str(man.get("code") or (report.summary or {}).get("muni_code") or "")
    stated = without_controls(man["name"]) if isinstance(man.get("name"), str) else ""
    return code, (names.get(code, "") or stated)


def municipality_label(code: str, name: str, lang: str = "en") -> str:
    """'03205 花巻市', '31202 (鳥取県, name unknown)', or 'municipality unknown'."""
    from subdivide.core.crs import PREF_NAMES

    ja = lang == "ja"
    if not code:
        return "市区町村不明" if ja else "municipality unknown"
    if name:
        return f"{code} {visible(name)}"
    pref = int(code[:2]) if code[:2].isdigit() else 0
    unknown = "名称不明" if ja else "name unknown"
    sep = "、" if ja else ", "
    return f"{code} ({PREF_NAMES[pref - 1]}{sep}{unknown})" if 1 <= pref <= 47 else f"{code} ({unknown})"


def verdict_line(report, code: str, name: str, lang: str = "en") -> str:
    """The verdict of one package, naming its municipality before its file."""
    n = report.to_dict()["counts"]
    verdict = VERDICTS[lang][report.status]
    if lang == "ja":
        counts = f"エラー {n['error']} 件、警告 {n['warning']} 件、情報 {n['info']} 件"
    else:
        counts = f"{n['error']} errors, {n['warning']} warnings, {n['info']} notes"
    return f"{verdict}: {counts} — {municipality_label(code, name, lang)} — {visible(report.package)}"


def summary_row(report, code: str, name: str, lang: str = "en") -> dict:
    """One row of the batch summary (English keys)."""
    from subdivide.core.i18n import render_finding, rule_text

    n = report.to_dict()["counts"]
    errors = report.errors
    first = [render_finding(f, lang, with_fix=False).split(None, 1)[-1] for f in errors[:FIRST_ERRORS]]
    more = len(errors) - FIRST_ERRORS
    if more > 0:
        first.append(f"(+{more})")
    summary = report.summary or {}
    return {
        "package": Path(report.package).name, "muni_code": code, "muni_name": name,
        "verdict": VERDICTS[lang][report.status], "status": report.status,
        "errors": n["error"], "warnings": n["warning"], "notes": n["info"],
        "subareas": len(summary.get("subareas") or []) if summary else None,
        "townblocks": summary.get("n_townblocks"),
        "error_rules": ", ".join(sorted({f.rule for f in errors})),
        "first_errors": " / ".join(first),
        "first_fix": rule_text(errors[0].rule, lang)[1] if errors else "",
    }


def summary_frame(rows: list[dict], lang: str = "en") -> "pd.DataFrame":
    import pandas as pd

    df = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS)).astype({"subareas": "Int64", "townblocks": "Int64"})
    return df.rename(columns=SUMMARY_COLUMNS) if lang == "ja" else df


def write_summary(df: "pd.DataFrame", path, *, force: bool) -> None:
    """CSV (UTF-8 with BOM, CRLF) or XLSX (the code column as text); formulas neutralised."""
    from subdivide.io.output import write_csv, write_xlsx

    if Path(path).suffix.lower() == ".xlsx":
        code_col = [c for c in df.columns if c in ("muni_code", SUMMARY_COLUMNS["muni_code"])]
        write_xlsx({"summary": df}, path, text_columns=code_col, force=force)
    else:
        write_csv(df, path, force=force)


def _check_summary_path(path) -> None:
    if path is not None and Path(path).suffix.lower() not in (".csv", ".xlsx"):
        raise UserError(f"--summary {path}: the summary is a .csv or .xlsx file", where="--summary",
                        fix="e.g. --summary summary.csv or --summary summary.xlsx")


def _check_outputs(args, inputs: list) -> None:
    """Refuse --json / --summary before a long validation, not after; never over a package."""
    from subdivide.io.output import check_can_write

    _check_summary_path(args.summary)
    if args.json and args.summary and Path(args.json).resolve() == Path(args.summary).resolve():
        raise UserError(f"--json and --summary both name {args.json}", fix="give two different files")
    for path in (args.json, args.summary):
        if path and path != "-":
            check_can_write(path, args.force, inputs=inputs)


def _write_json(args, reports: list, inputs: list) -> None:
    from subdivide.io.output import atomic_path

    if len(reports) == 1:
        text = reports[0].to_json()
    else:   # a JSON list of the single-package reports, in the order given
        text = json.dumps([r.to_dict() for r in reports], ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    if args.json == "-":
        sys.stdout.write(text)
    elif args.json:
        with atomic_path(args.json, force=args.force, inputs=inputs) as tmp:
            tmp.write_text(text, encoding="utf-8")


def report_text(report, line: str, lang: str = "en") -> str:
    """The findings of one package (each with its rule's fix line, in ``lang``), then its
    verdict ``line``."""
    findings = report.render(lang)
    return f"{findings}\n{line}" if findings else line


def _print_report(report, line: str, first: bool, quiet: bool, out, lang: str = "en") -> None:
    if quiet:
        print(line, file=out)
        return
    print(("" if first else "\n") + report_text(report, line, lang), file=out)


def run(args) -> int:
    from subdivide.carrier.validation import validate_package
    from subdivide.core.i18n import language

    out = sys.stderr if args.json == "-" else sys.stdout
    lang = language(getattr(args, "lang", None))
    distances = _distances(args.spill_km)
    if args.target_share is not None and not 0 < args.target_share <= 1:
        raise UserError(f"--target-share {args.target_share:g} must be a share in (0, 1]",
                        fix="e.g. --target-share 0.5 for 50 %")
    inputs = [*args.package, args.profile, args.outline, args.coverage, args.names]
    _check_outputs(args, inputs)
    names = read_names(args.names) if args.names else {}
    reports, rows, lines = [], [], []
    for i, pkg in enumerate(args.package):
        report = validate_package(pkg, profile=args.profile, outline=args.outline,
                                  coverage=args.coverage, coverage_selection=args.selection,
                                  spill_km=distances, target_share=args.target_share)
        code, name = municipality_of(report, names)
        reports.append(report)
        rows.append(summary_row(report, code, name, lang))
        lines.append(verdict_line(report, code, name, lang))
        _print_report(report, lines[-1], i == 0, args.quiet, out, lang)
    if len(reports) > 1 and not args.quiet:
        print(f"\n{len(reports)} 件のパッケージ:" if lang == "ja" else f"\n{len(reports)} packages:", file=out)
        print("\n".join("  " + ln for ln in lines), file=out)
    _write_json(args, reports, inputs)
    if args.summary:
        write_summary(summary_frame(rows, lang), args.summary, force=args.force)
        print(f"一覧: {args.summary}（{len(rows)} 件）" if lang == "ja" else
              f"summary: {args.summary} ({len(rows)} packages)", file=sys.stderr)
    return max(r.status for r in reports)
