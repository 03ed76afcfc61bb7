"""``subdivide message``: lint and compose 緊急速報メール texts (docs/messages.md).

``lint`` checks one message (options) or many (a text / JSON / CSV / XLSX file) against the
rules of MESSAGES.md §12 and reports like ``subdivide validate``: a table, ``--json``, exit 0
clean, 1 errors, 2 unreadable. ``compose`` writes one message per sub-area × category of a
plan, linted, as an XLSX/CSV message sheet (plus ``--json``), with the spill figures.
"""
from __future__ import annotations

import sys

from subdivide.core.errors import UserError

HELP = "lint 緊急速報メール texts (exit 0 clean, 1 errors, 2 unreadable) and compose them per sub-area"
EXAMPLE = """
  subdivide message lint --category 避難指示 --title 避難指示 \\
      --body $'警戒レベル4 全員避難\\nこちらは花巻市です\\n詳しくは https://example.jp'     # → L09 ERROR, exit 1
  subdivide message lint messages.xlsx --muni-name 花巻市 --json lint.json
  subdivide plan data/hanamaki_03205/h27ka03205.shp --by OLD_MUNI --out hanamaki.plan.gpkg
  subdivide message compose hanamaki.plan.gpkg --category 避難指示 -o hanamaki-messages.xlsx --spill-km 2,3
  subdivide message compose hanamaki.plan.gpkg --category 高齢者等避難 --drill -o drill.csv
  subdivide message lint hanamaki-messages.xlsx           # after editing the sheet
"""


def _context_arguments(p) -> None:
    g = p.add_argument_group("context (MESSAGES.md §12 inputs; a sheet's columns override these)")
    g.add_argument("--sender", choices=("municipality", "prefecture"), default="municipality")
    g.add_argument("--muni-name", metavar="NAME", help="the sending municipality, e.g. 花巻市 (L35)")
    g.add_argument("--pref-name", metavar="NAME")
    g.add_argument("--drill", action="store_true", help="the message is a 訓練 (L18–L25)")
    g.add_argument("--drill-kind", choices=("municipal", "national-joint"))
    g.add_argument("--pre-announced", action="store_true", help="the drill was announced to residents (L25)")
    g.add_argument("--correction", action="store_true", help="the message is a 訂正 (L27–L29)")
    g.add_argument("--prior-corrections", type=int, metavar="N", help="corrections already sent (L28)")
    g.add_argument("--original", metavar="FILE", help="text file of the message being corrected (L27)")
    g.add_argument("--lifting", action="store_true", help="the message lifts (解除) an issuance (L06, L31)")
    g.add_argument("--continuation", action="store_true", help="message 2 of a split (L38)")
    g.add_argument("--continues-next", action="store_true", help="message 1 of a split (L38)")
    g.add_argument("--send-time", metavar="ISO", help="e.g. 2026-12-01T03:00 (L05, L40, L44)")
    g.add_argument("--hazard", metavar="CAUSE", help="洪水 / 土砂災害 / 高潮 / 内水氾濫 / 地震 … (L16)")
    g.add_argument("--governor-instruction", action="store_true", help="item 17 on the governor's instruction")
    g.add_argument("--proxy-basis", choices=("def1", "def2"), help="prefecture 代行 basis (L02)")
    g.add_argument("--trigger", choices=("started", "changed"), help="item 17 trigger (L04)")
    g.add_argument("--volcano-level", type=int, metavar="N")
    g.add_argument("--volcano-warning-type", metavar="TYPE")
    g.add_argument("--river-info", metavar="KIND", help="e.g. はん濫注意情報 (L41)")
    g.add_argument("--target-area", metavar="NAME", help="sub-area name 「●●地域」 or 'whole' (L42, L43)")
    g.add_argument("--operational-subareas", metavar="A,B", help="sub-areas in operation (L42)")
    g.add_argument("--auto-relay-jalert", choices=("yes", "no"), help="自動起動装置 setting (L08)")


def _config_arguments(p) -> None:
    p.add_argument("--edition", choices=("2020", "2021"), default="2021",
                   help="category names: the guide's 2020 names or the 2021 names (default)")
    p.add_argument("--categories", metavar="TOML", help="your own category table (docs/messages.md)")
    p.add_argument("--night", metavar="HH:MM-HH:MM", default="22:00-06:00",
                   help="深夜/早朝 window (the guide does not define it; default 22:00-06:00)")
    p.add_argument("--repeat-window", type=float, metavar="MIN", default=60.0,
                   help="same category to the same area again within MIN minutes → L44 (default 60)")


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="message_command", metavar="SUBCOMMAND")
    lint = sub.add_parser("lint", help="check messages against MESSAGES.md §12 (L01–L45)",
                          description="Lint one message (--title/--body) or a file of messages.")
    lint.add_argument("file", nargs="?", help="a .txt (title line, then body), .json, .csv or .xlsx of messages")
    lint.add_argument("--title", help="title (≤ 15 characters)")
    lint.add_argument("--body", help="body (≤ 200 characters, a line break counts 2); '-' reads stdin")
    lint.add_argument("--category", default="", help="配信項目, e.g. 避難指示 (where a message names none)")
    lint.add_argument("--json", metavar="FILE", help="write the JSON report ('-' for stdout)")
    lint.add_argument("--quiet", action="store_true", help="print only the verdict line")
    lint.add_argument("--force", action="store_true", help="replace an existing --json file")
    lint.add_argument("--rules", action="store_true", help="list the rules and exit")
    _config_arguments(lint)
    _context_arguments(lint)
    comp = sub.add_parser("compose", help="one message per sub-area × category of a plan, linted",
                          description="Compose ready-to-edit messages for every sub-area of a plan.")
    comp.add_argument("plan", help="plan GeoPackage from `subdivide plan`")
    comp.add_argument("-o", "--output", metavar="FILE", help="message sheet: .xlsx or .csv")
    comp.add_argument("--json", metavar="FILE", help="write messages, lint report and limits as JSON ('-' stdout)")
    comp.add_argument("--category", action="append", metavar="NAME",
                      help="category to compose (repeat; default 避難指示)")
    comp.add_argument("--drill", action="store_true", help="compose 【訓練】 versions")
    comp.add_argument("--muni-name", metavar="NAME", help="default: from the plan (GST_NAME)")
    comp.add_argument("--issued", metavar="ISO", help="issue time for 発令内容 (default ●●月●●日●●時●●分)")
    comp.add_argument("--reason", metavar="TEXT", help="理由 (default ●●●●●●●● for staff to fill in)")
    comp.add_argument("--hazard", metavar="CAUSE", help="洪水 / 土砂災害 / 高潮 / 内水氾濫 (L16)")
    comp.add_argument("--shelters", action="append", metavar="SUBAREA=LIST",
                      help="e.g. 大迫地域=大迫小学校、大迫公民館 (repeat; default: 「市HPをご確認ください」)")
    comp.add_argument("--no-oaza", action="store_true", help="name the sub-area only, not its 大字")
    comp.add_argument("--spill-km", metavar="L,…", help="add 'people outside the sub-area who also receive "
                      "it' for these spill distances (km), e.g. 2,3")
    comp.add_argument("--neighbours", metavar="FILE", help="neighbouring municipalities' outlines (with --spill-km)")
    comp.add_argument("--force", action="store_true", help="replace existing outputs")
    _config_arguments(comp)


def run(args) -> int:
    if args.message_command == "lint":
        return _run_lint(args)
    if args.message_command == "compose":
        return _run_compose(args)
    raise UserError("say what to do: `subdivide message lint …` or `subdivide message compose PLAN …`",
                    fix="see `subdivide message --help`")


# ---------------------------------------------------------------------------- shared
def _night(text: str):
    from datetime import time

    from subdivide.carrier.messages.message import NightWindow

    try:
        a, b = text.split("-")
        return NightWindow(time.fromisoformat(a.strip()), time.fromisoformat(b.strip()))
    except ValueError:
        raise UserError(f"--night {text!r} is not HH:MM-HH:MM", fix="e.g. --night 22:00-06:00") from None


def _config(args):
    from subdivide.carrier.messages.categories import load_vocabulary
    from subdivide.carrier.messages.lint import LintConfig

    if args.repeat_window <= 0:
        raise UserError(f"--repeat-window {args.repeat_window:g} must be positive", fix="e.g. --repeat-window 60")
    return LintConfig(load_vocabulary(args.edition, args.categories), _night(args.night), args.repeat_window)


def _write_json(path: str | None, text: str, force: bool) -> None:
    if path == "-":
        sys.stdout.write(text)
    elif path:
        from subdivide.io.output import atomic_path

        with atomic_path(path, force=force) as tmp:
            tmp.write_text(text, encoding="utf-8")


# ---------------------------------------------------------------------------- lint
def _defaults(args):
    from pathlib import Path

    from subdivide.carrier.messages.message import Context
    from subdivide.carrier.messages.reading import parse_time

    original = None
    if args.original:
        from subdivide.io.tables import decode_text

        p = Path(args.original)
        if not p.is_file():
            raise UserError(f"--original {p} does not exist", where=str(p), fix="give the earlier message's text file")
        original = decode_text(p.read_bytes(), where=str(p))
    ops = tuple(x.strip() for x in args.operational_subareas.replace("、", ",").split(",") if x.strip()) \
        if args.operational_subareas else None
    return Context(
        sender_type=args.sender, muni_name=args.muni_name, pref_name=args.pref_name, is_drill=args.drill,
        drill_kind=args.drill_kind, pre_announced=True if args.pre_announced else None,
        is_correction=args.correction, prior_corrections=args.prior_corrections, original_body=original,
        is_lifting=args.lifting, is_continuation=args.continuation, continues_next=args.continues_next,
        send_time=parse_time(args.send_time, where="--send-time") if args.send_time else None,
        hazard_cause=args.hazard, governor_instruction=True if args.governor_instruction else None,
        proxy_basis=args.proxy_basis, trigger=args.trigger, volcano_level=args.volcano_level,
        volcano_warning_type=args.volcano_warning_type, river_info_kind=args.river_info,
        target_area=args.target_area, operational_subareas=ops,
        auto_relay_jalert=None if args.auto_relay_jalert is None else args.auto_relay_jalert == "yes")


def _print_rules(lang: str = "en") -> int:
    from subdivide.carrier.messages.rules import RULE_LIST
    from subdivide.core.i18n import FRAME, SEVERITY_JA, format_text, translate_text

    for r in RULE_LIST:
        needs = format_text("  (needs {names})", lang, names=", ".join(r.needs)) if r.needs else ""
        severity = f"{r.severity:<7}" if lang == "en" else f"{SEVERITY_JA[r.severity]:<4}"
        print(f"{r.id}  {severity}  {translate_text(r.what, lang)}  [{r.reference}]{needs}\n"
              f"      {FRAME[lang]['fix']}: {translate_text(r.fix, lang)}")
    return 0


def lint_text(report, lang: str = "en", *, quiet: bool = False) -> str:
    """The lint report for people: ``report.table()`` in English; in Japanese per message its
    counts, per finding the rule's words and the detail, and the rule's fix line (対処), then
    the verdict. ``quiet``: the verdict line only."""
    from subdivide.core.i18n import FRAME, SEVERITY_JA, format_text, pgettext, translate_text

    if lang == "en":
        table = report.table()
        return table.splitlines()[-1] if quiet else table
    from subdivide.carrier.messages.lint import BODY_LIMIT, TITLE_LIMIT
    from subdivide.carrier.messages.rules import RULES as LINT_RULES

    field = lambda x: pgettext("message field", str(x), lang)    # noqa: E731
    lines = []
    for r in report.results:
        lines.append(format_text("{id}: title {title}/{title_limit}, body {body}/{body_limit} (edition {edition})",
                                 lang, id=field(r.message.id), title=r.title_count, title_limit=TITLE_LIMIT,
                                 body=r.body_count, body_limit=BODY_LIMIT, edition=r.edition))
        for f in r.findings:
            rule = LINT_RULES.get(f.rule)
            what = rule.what if rule is not None else ""
            detail = f.message[len(what) + 2:] if what and f.message.startswith(what + ": ") else f.message
            text = (translate_text(what, lang) + ": " if what else "") + translate_text(detail, lang)
            feats = "、".join(field(x) for x in f.features[:5])
            lines.append(f"  {SEVERITY_JA.get(f.severity, f.severity):4} {f.rule}: {text}" + (f" [{feats}]" if feats else ""))
            if rule is not None:
                lines.append(f"        {FRAME[lang]['fix']}: {translate_text(rule.fix, lang)}")
    n = report.to_dict()["counts"]
    verdict = format_text("{verdict}: {errors} errors, {warnings} warnings, {notes} notes — {n} message(s), {source}",
                          lang, verdict=pgettext("verdict", {0: "CLEAN", 1: "ERRORS FOUND"}[report.status], lang),
                          errors=n["error"], warnings=n["warning"], notes=n["info"], n=len(report.results),
                          source=pgettext("message source", report.source, lang))
    return verdict if quiet else "\n".join([*lines, verdict])


def _messages(args, defaults):
    from subdivide.carrier.messages.message import Message
    from subdivide.carrier.messages.reading import read_messages

    if args.file and (args.title is not None or args.body is not None):
        raise UserError("give either a FILE or --title/--body, not both", fix="lint them in two runs")
    if args.file:
        return read_messages(args.file, defaults, category=args.category), args.file
    if args.title is None or args.body is None:
        raise UserError("nothing to lint", fix="give --title T --body B --category C, or a message FILE")
    body = sys.stdin.read() if args.body == "-" else args.body
    return [Message(args.title, body, args.category, "message", defaults)], "command line"


def _run_lint(args) -> int:
    from subdivide.carrier.messages.lint import lint_messages
    from subdivide.core.i18n import command_language

    lang = command_language(args)
    if args.rules:
        return _print_rules(lang)
    if args.json and args.json != "-":
        from subdivide.io.output import check_can_write

        check_can_write(args.json, args.force)
    cfg = _config(args)
    msgs, source = _messages(args, _defaults(args))
    report = lint_messages(msgs, cfg, source=source)
    out = sys.stderr if args.json == "-" else sys.stdout
    print(lint_text(report, lang, quiet=args.quiet), file=out)
    _write_json(args.json, report.to_json(), args.force)
    return report.status


# ---------------------------------------------------------------------------- compose
def _shelters(items) -> dict:
    out = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise UserError(f"--shelters {item!r} is not SUBAREA=LIST", fix="e.g. --shelters 大迫地域=大迫小学校、大迫公民館")
        out[name.strip()] = value.strip()
    return out


def _run_compose(args) -> int:
    from subdivide.carrier.messages.compose import ComposeOptions, compose_plan
    from subdivide.carrier.messages.reading import parse_time
    from subdivide.carrier.messages.templates import PLACEHOLDER_REASON
    from subdivide.core.i18n import command_language, format_text
    from subdivide.io.output import check_can_write

    if not args.output and not args.json:
        raise UserError("no output asked for", fix="pass -o messages.xlsx (or .csv) and/or --json FILE")
    for path in (args.output, args.json):
        if path and path != "-":
            check_can_write(path, args.force)
    if args.output and args.output.lower().rsplit(".", 1)[-1] not in ("xlsx", "csv"):
        raise UserError(f"-o {args.output}: the message sheet is .xlsx or .csv", fix="e.g. -o messages.xlsx")
    spill = None
    if args.spill_km:
        from subdivide.analysis.spill import parse_distances

        spill = parse_distances(args.spill_km)
    cfg = _config(args)
    opts = ComposeOptions(
        categories=tuple(args.category or ("避難指示",)), drill=args.drill, muni_name=args.muni_name,
        issued=parse_time(args.issued, where="--issued") if args.issued else None,
        reason=args.reason if args.reason is not None else PLACEHOLDER_REASON, hazard_cause=args.hazard,
        shelters=_shelters(args.shelters), include_oaza=not args.no_oaza)
    from subdivide.model.plan import read_plan

    plan = read_plan(args.plan)
    unknown = sorted(set(opts.shelters) - set(plan.subareas["name"]))
    if unknown:
        raise UserError(f"--shelters names unknown sub-areas {unknown}",
                        fix=f"use the plan's names: {', '.join(plan.subareas['name'])}")
    sheet = compose_plan(plan, opts, cfg, spill_km=spill, neighbours=args.neighbours)
    out = sys.stderr if args.json == "-" else sys.stdout
    lang = command_language(args)
    print(lint_text(sheet.report, lang), file=out)
    if args.output:
        sheet.write(args.output, force=args.force)
        print(format_text("wrote {path} ({n} messages)", lang, path=args.output, n=len(sheet.rows)), file=out)
    _write_json(args.json, sheet.to_json(), args.force)
    return sheet.status
