"""Japanese (and English) at the CLI boundary: a gettext message catalogue.

The code keeps its English strings; they are the catalogue's keys (msgids). The Japanese
lives in one place, ``subdivide/locale/ja/LC_MESSAGES/subdivide.po``, compiled to the
``.mo`` that :mod:`gettext` reads at run time (standard library only). Rebuild the ``.mo``
after editing the ``.po`` with ``python -m subdivide.core.i18n`` (a test checks that it is
up to date); docs/i18n.md says how to add a string.

- :func:`language` chooses ``ja`` or ``en`` (``--lang`` wins, else LC_ALL / LC_MESSAGES /
  LANG, POSIX precedence).
- :func:`translate_text` translates one string: an exact msgid, else a *template* msgid
  (``"{what} {path} does not exist"``) matched as a regular expression, its values kept
  (and translated themselves when they are msgids, e.g. ``the town-block file``). A field
  ``{num…}`` matches only a number; a field ``{phrase…}`` only a text the catalogue knows.
  :func:`format_text` is gettext's ``_(template).format(…)`` for text a command composes.
- :func:`translate_parser` translates an :mod:`argparse` parser and its subcommands in
  place (descriptions, help, usage heading, section titles, epilog prose, parse errors).
- :func:`translate_error` renders a :class:`~subdivide.core.errors.UserError` with
  エラー / 場所 / 対処; :func:`render_finding` a validator or plan finding with its rule's
  description and fix line; :func:`progress_translator` names progress stages.
- :func:`translate_lines` translates a printed report line by line; a line no entry knows
  whole is translated column by column (its runs of two or more spaces are column gaps,
  re-padded by display width so that the columns stay aligned).
- :func:`column_label` names a table column (``msgctxt "column"``); :func:`frame_text`
  prints a DataFrame with those labels, aligned by display width; :func:`printer` and
  :func:`stderr_progress` are what a command prints and reports progress with, in the
  language :func:`command_language` reads from its arguments.
"""
from __future__ import annotations

import argparse
import ast
import functools
import gettext
import os
import re
import struct
import sys
import types
import unicodedata
from collections.abc import Callable, Mapping
from pathlib import Path

from subdivide.core.findings import Finding
from subdivide.core.rules import RULES

DOMAIN = "subdivide"
LOCALE_DIR = Path(__file__).resolve().parents[1] / "locale"
LANGUAGES = ("en", "ja")
#: gettext's separator of a msgctxt and its msgid in a compiled catalogue
CONTEXT = "\x04"

#: frame words of an error and of a finding, per language
FRAME = {
    "en": {"error": "error", "where": "where", "fix": "fix", "usage": "usage: ", "example": "example:",
           "internal": "internal error", "warning": "warning", "yes": "True", "no": "False"},
    "ja": {"error": "エラー", "where": "場所", "fix": "対処", "usage": "使い方: ", "example": "例:",
           "internal": "内部エラー", "warning": "警告", "yes": "はい", "no": "いいえ"},
}
SEVERITY_JA = {"error": "エラー", "warning": "警告", "info": "情報"}


# ----------------------------------------------------------------------------- language
def language(argv_lang: str | None = None, env: Mapping[str, str] = os.environ) -> str:
    """``"ja"`` or ``"en"``: ``--lang`` when given, else the first set of LC_ALL, LC_MESSAGES,
    LANG (POSIX precedence) starting with ``ja``, else English.

    >>> language("ja", {"LANG": "C"}), language(None, {"LANG": "ja_JP.UTF-8"})
    ('ja', 'ja')
    >>> language(None, {"LC_ALL": "C", "LANG": "ja_JP.UTF-8"}), language("en", {"LANG": "ja_JP.UTF-8"})
    ('en', 'en')
    """
    if argv_lang:
        code = argv_lang.strip().lower().replace("-", "_")
        if code.startswith("ja"):
            return "ja"
        if code.startswith("en"):
            return "en"
        raise ValueError(f"unknown language {argv_lang!r}: use ja or en")
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = (env.get(var) or "").strip()
        if value:
            return "ja" if value.lower().startswith("ja") else "en"
    return "en"


# ----------------------------------------------------------------------------- catalogue
@functools.cache
def catalogue(lang: str) -> gettext.NullTranslations:
    """The compiled catalogue of ``lang`` (a no-op one for English or when absent)."""
    if lang == "en":
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, localedir=str(LOCALE_DIR), languages=[lang], fallback=True)


_FIELD = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
#: what a ``{num…}`` field matches: a number as printed (1,234 / -0.5 / 12%)
_NUMBER = r"[-+−]?\d[\d,]*(?:\.\d+)?%?"


@functools.cache
def _templates(lang: str, context: str | None = None) -> tuple[tuple[re.Pattern, str], ...]:
    """(regex, translated template) for every msgid with ``{name}`` fields, the most literal
    first: those without a context, or only those of ``context``."""
    cat = catalogue(lang)
    entries = getattr(cat, "_catalog", {})
    if context is not None:
        head = f"{context}{CONTEXT}"
        entries = {k[len(head):]: v for k, v in entries.items() if isinstance(k, str) and k.startswith(head)}
    # a {what} is a subject the catalogue knows ("the town-block file"), tried before any text
    subjects = sorted((k for k in entries if isinstance(k, str) and k.startswith("the ") and "{" not in k
                       and len(k) <= 40), key=len, reverse=True)
    what = "|".join(map(re.escape, subjects)) + "|" if subjects else ""
    out = []
    for msgid, msgstr in entries.items():
        if not isinstance(msgid, str) or CONTEXT in msgid or not _FIELD.search(msgid) or not msgstr:
            continue
        parts, pos = [], 0
        for m in _FIELD.finditer(msgid):
            parts.append(re.escape(msgid[pos:m.start()]))
            name = m.group(1)
            body = f"{what}.+?" if name == "what" else _NUMBER if name.startswith("num") else ".+?"
            parts.append(f"(?P<{name}>{body})" if f"(?P<{name}>" not in "".join(parts) else f"(?P={name})")
            pos = m.end()
        parts.append(re.escape(msgid[pos:]))
        literal = len(_FIELD.sub("", msgid))
        out.append((literal, re.compile("".join(parts), re.DOTALL), msgstr))
    out.sort(key=lambda t: -t[0])
    return tuple((rx, tr) for _, rx, tr in out)


def lookup(text: str, lang: str) -> str | None:
    """The exact translation of ``text``, or None."""
    if lang == "en" or not text:
        return None
    tr = catalogue(lang).gettext(text)
    return tr if tr != text else None


def translate_text(text: str | None, lang: str) -> str | None:
    """``text`` in ``lang``: exact msgid, else the first matching template (its values kept,
    and translated when they are msgids themselves), else ``text`` unchanged.

    A field named ``{phrase…}`` must itself translate: ``"{phrase_a} or {phrase_b}"`` joins
    two known phrases and is skipped when either is unknown (no half-translated sentence)."""
    if text is None or lang == "en":
        return text
    return _translate(text, lang)


@functools.cache
def _translate(text: str, lang: str) -> str:
    exact = lookup(text, lang)
    if exact is not None:
        return exact
    for rx, tr in _templates(lang):
        m = rx.fullmatch(text)
        if m:
            values = {}
            for k, v in m.groupdict().items():   # shorter: ends; a value of several lines: line by line
                values[k] = translate_lines(v, lang) if "\n" in v else _translate(v, lang)
                if k.startswith("phrase") and values[k] == v:
                    break
            else:
                return tr.format(**values)
    return text


def translate_where(where: str | None, lang: str) -> str | None:
    """The ``where`` of an error in ``lang``: a file, row or option stays as written; the
    words around it (「, rows [3, 5] (row 1 = header)」, 「--muni (not given)」) come from the
    catalogue's ``msgctxt "where"`` entries, whose templates apply only here."""
    if where is None or lang == "en":
        return where
    return _translate_where(where, lang)


@functools.cache
def _translate_where(text: str, lang: str) -> str:
    exact = lookup(f"where{CONTEXT}{text}", lang)
    if exact is not None:
        return exact
    for rx, tr in _templates(lang, "where"):
        m = rx.fullmatch(text)
        if m:
            return tr.format(**{k: _translate_where(v, lang) for k, v in m.groupdict().items()})
    return text


def translate_lines(text: str, lang: str) -> str:
    """A multi-line report translated line by line (each line's indentation kept), e.g. the
    text of ``subdivide info``: its English lines are catalogue templates. A line that no
    entry knows whole is translated column by column (:func:`translate_columns`)."""
    if lang == "en":
        return text
    return "\n".join(translate_line(line, lang) for line in text.split("\n"))


def translate_line(line: str, lang: str) -> str:
    """One printed line: the exact msgid, else its columns (when one of them is known), else
    the first matching template; the indentation is kept."""
    body = line.lstrip(" ")
    if lang == "en" or not body:
        return line
    indent = line[: len(line) - len(body)]
    exact = lookup(body, lang)
    if exact is not None:
        return indent + exact
    columns = translate_columns(line, lang)
    if columns != line:
        return columns
    return indent + translate_text(body, lang)


_GAP = re.compile(r" {2,}")


def translate_columns(line: str, lang: str) -> str:
    """A table line translated cell by cell: cells are separated by runs of two or more
    spaces; each known cell is translated and the gaps re-padded by display width, a
    changed cell keeping its right edge (numbers and headers are right-aligned) and the
    last cell its left edge, with at least two spaces between cells. Unchanged when no
    cell is known."""
    cells, pos = [], 0
    for m in _GAP.finditer(line):
        if m.start() > pos:
            cells.append((pos, line[pos:m.start()]))
        pos = m.end()
    if pos < len(line):
        cells.append((pos, line[pos:]))
    if len(cells) < 2:
        return line
    new = [translate_text(c, lang) for _, c in cells]
    if all(a == b for (_, a), b in zip(cells, new)):
        return line
    out, col = "", 0
    for i, ((start, old), text) in enumerate(zip(cells, new)):
        left = display_width(line[:start])               # the cell's columns in the English line
        right = left + display_width(old)
        if i == 0:
            pad = left
        elif text == old or i == len(cells) - 1:
            pad = left - col
        else:
            pad = right - display_width(text) - col
        out += " " * max(pad, 2 if i else 0) + text
        col = display_width(out)
    return out


def gettext_for(lang: str) -> Callable[[str], str]:
    """A ``_`` function for ``lang``."""
    return lambda s: translate_text(s, lang)


def format_text(template: str, lang: str, *, context: str | None = None, **values) -> str:
    """``template.format(**values)`` with the template translated first (gettext's usual
    ``_("…{n}…").format(n=…)``): for text a command composes itself. A ``context`` (msgctxt)
    keeps a short, general template (``{at} by {actor}``) out of the regular-expression
    matching of :func:`translate_text`."""
    found = lookup(template if context is None else f"{context}{CONTEXT}{template}", lang)
    return (found or template).format(**values)


def pgettext(context: str, text: str, lang: str) -> str:
    """``text`` in ``lang`` from the catalogue's ``msgctxt context`` entry (a short word whose
    meaning depends on where it stands: a column heading, a status), else ``text``."""
    return lookup(f"{context}{CONTEXT}{text}", lang) or text


def column_label(name: str, lang: str) -> str:
    """The heading of table column ``name`` (an English column key such as ``n_blocks``) in
    ``lang``: the catalogue's ``msgctxt "column"`` entry, else ``name``."""
    return pgettext("column", name, lang) if isinstance(name, str) else name


def frame_text(df, lang: str, *, index: bool = False) -> str:
    """``df.to_string()`` for a terminal: in Japanese with :func:`column_label` headings, the
    cells translated where the catalogue knows them (True / False as はい / いいえ), and
    aligned by display width."""
    if lang == "en":
        return df.to_string(index=index)
    import pandas as pd

    shown = df.rename(columns=lambda c: column_label(c, lang))
    if shown.index.name:
        shown.index.name = column_label(shown.index.name, lang)
    for c in shown.columns:
        if shown[c].dtype == bool:
            shown[c] = shown[c].map({True: FRAME[lang]["yes"], False: FRAME[lang]["no"]})
        elif shown[c].dtype == object:
            shown[c] = [translate_text(v, lang) if isinstance(v, str) else v for v in shown[c]]
    with pd.option_context("display.unicode.east_asian_width", True):
        return shown.to_string(index=index)


def command_language(args) -> str:
    """The language of a command's output: ``args.lang``, which the CLI sets from ``--lang``
    or the locale; English when a command's ``run`` is called without it."""
    return getattr(args, "lang", None) or "en"


def printer(lang: str, file=None) -> Callable[..., None]:
    """``print`` for a command's report: each line through :func:`translate_lines`."""
    def say(*parts) -> None:
        print(translate_lines(" ".join(str(p) for p in parts), lang), file=file or sys.stdout, flush=True)
    return say


def stderr_progress(lang: str, enabled: bool = True):
    """The progress callable of a command: stage names in ``lang`` on stderr, or silent."""
    from subdivide.core.progress import StderrProgress, silent

    return StderrProgress(translate=progress_translator(lang)) if enabled else silent


# ----------------------------------------------------------------------------- errors
def translate_error(user_error, lang: str) -> str:
    """A UserError's text (what / where / fix, then its ``findings`` if it carries any) in
    ``lang``; English is ``user_error.message``."""
    if lang == "en":
        return user_error.message
    words = FRAME[lang]
    # the findings behind a refusal (a plan that breaks the rules, a package the registry
    # refuses), each in the findings table's words
    parts = [translate_text(user_error.what, lang),
             *(f"  {render_finding(f, lang, with_fix=False)}" for f in getattr(user_error, "findings", ()))]
    if user_error.where:
        parts.append(f"  {words['where']}: {translate_where(user_error.where, lang)}")
    if user_error.fix:
        parts.append(f"  {words['fix']}: {translate_text(user_error.fix, lang)}")
    return "\n".join(parts)


def error_line(command: str | None, user_error, lang: str) -> str:
    """``subdivide CMD: error: …`` (``エラー`` in Japanese), as the CLI prints it on stderr."""
    prog = f"subdivide {command}" if command else "subdivide"
    return f"{prog}: {FRAME[lang]['error']}: {translate_error(user_error, lang)}"


# ----------------------------------------------------------------------------- findings
def rule_text(rule_id: str, lang: str) -> tuple[str, str]:
    """(description, fix) of a rule in ``lang`` ("" when the rule is unknown)."""
    r = RULES.get(rule_id)
    if r is None:
        return "", ""
    return translate_text(r.description, lang), translate_text(r.fix, lang)


def render_finding(finding: Finding, lang: str, *, with_fix: bool = True) -> str:
    from subdivide.core.names import visible

    """One finding for the findings table: ``SEVERITY RULE: message [features]`` and, on a
    second line, the rule's fix. In Japanese the message is translated when the catalogue
    knows it, else the rule's Japanese description is given with the original detail."""
    if lang == "en":
        head = str(finding)
    else:
        feats = ""
        if finding.features:
            shown = "、".join(visible(f) for f in finding.features[:10])
            more = f" ほか{len(finding.features) - 10}件" if len(finding.features) > 10 else ""
            feats = f" [{shown}{more}]"
        msg = translate_text(finding.message, lang)
        if msg == finding.message:
            desc, _ = rule_text(finding.rule, lang)
            msg = f"{desc}（{finding.message}）" if desc and desc != finding.message else finding.message
        head = f"{SEVERITY_JA.get(finding.severity, finding.severity):4} {finding.rule}: {msg}{feats}"
    _, fix = rule_text(finding.rule, lang)
    if with_fix and fix:
        head += f"\n        {FRAME[lang]['fix']}: {fix}"
    return head


# ----------------------------------------------------------------------------- progress
def progress_translator(lang: str) -> Callable[[str], str] | None:
    """The ``translate`` hook of :class:`~subdivide.core.progress.StderrProgress` (None in English)."""
    return None if lang == "en" else gettext_for(lang)


# ----------------------------------------------------------------------------- argparse
#: argparse's own texts (its gettext domain is not ours)
_ARGPARSE_TITLES = ("positional arguments", "options", "optional arguments")


def _is_command_line(line: str) -> bool:
    s = line.strip()
    return s.startswith(("subdivide ", "python ", "$ ", "curl ", "qgis ", "-")) or s == "subdivide"


def epilog_lines(epilog: str | None) -> list[tuple[str, bool]]:
    """(line, is_command) for each line of an epilog: a command line, or the continuation of
    one (after a trailing backslash), is kept as written."""
    out, continued = [], False
    for line in (epilog or "").split("\n"):
        code = continued or _is_command_line(line)
        out.append((line, code))
        continued = code and line.rstrip().endswith("\\")
    return out


def translate_epilog(epilog: str | None, lang: str) -> str | None:
    """An epilog with its prose translated line by line; command lines stay as written
    (a ``# comment`` line is translated after its ``#``)."""
    if not epilog or lang == "en":
        return epilog
    out = []
    for line, code in epilog_lines(epilog):
        indent = line[: len(line) - len(line.lstrip())]
        s = line.strip()
        if not s or code:
            out.append(line)
        elif s == "example:":
            out.append(indent + FRAME[lang]["example"])
        elif s.startswith("#"):
            body = s[1:].strip()
            out.append(f"{indent}# {translate_text(body, lang)}")
        else:
            out.append(indent + translate_text(s, lang))
    return "\n".join(out)


def display_width(text: str) -> int:
    """Terminal columns of ``text``: East Asian wide and full-width characters count 2."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


#: characters a line may not start with (kinsoku): kept on the line before, even past the width
_NO_LINE_START = set("、。，．・：；？！）」』】〕’”ー～…%,.;:)]}")
_NO_LINE_END = set("（「『【〔‘“(")   # … and may not end with (moved to the next line)
_TOKEN = re.compile(r"[!-~]+|\s+|.", re.DOTALL)   # a run of printable ASCII, a space run, or one character


def wrap_display(text: str, width: int) -> list[str]:
    """``text`` wrapped to ``width`` terminal columns: ASCII words stay whole, Japanese may
    break between any two characters except before closing punctuation."""
    lines, cur = [], ""
    for tok in _TOKEN.findall(" ".join(text.split())):
        if tok.isspace():
            cur += " " if cur else ""
            continue
        if cur and display_width(cur + tok) > width and not set(tok) <= _NO_LINE_START:
            keep = len(cur) - 1 if cur[-1] in _NO_LINE_END and len(cur) > 1 else len(cur)
            lines.append(cur[:keep].rstrip())
            cur = cur[keep:]
        cur += tok
    return lines + ([cur.rstrip()] if cur.strip() else [])


def _formatter(base: type, lang: str) -> type:
    heading = FRAME[lang]["usage"]

    class Translated(base):
        def add_usage(self, usage, actions, groups, prefix=None):
            return super().add_usage(usage, actions, groups, heading)

        def _split_lines(self, text, width):   # option help wrapped by display width, not len()
            return wrap_display(text, width)

    Translated.__name__ = f"{base.__name__}_{lang}"
    return Translated


def _error_method(lang: str):
    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: {FRAME[lang]['error']}: {translate_text(message, lang)}\n")
    return error


def translate_parser(parser: argparse.ArgumentParser, lang: str) -> argparse.ArgumentParser:
    """Translate ``parser`` and its subparsers in place (and return it). English: unchanged."""
    if lang == "en":
        return parser
    parser.description = translate_text(parser.description, lang)
    parser.epilog = translate_epilog(parser.epilog, lang)
    parser.formatter_class = _formatter(parser.formatter_class, lang)
    parser.error = types.MethodType(_error_method(lang), parser)
    for group in parser._action_groups:
        group.title = translate_text(group.title, lang)
        group.description = translate_text(group.description, lang)
    for action in parser._actions:
        if action.help and action.help is not argparse.SUPPRESS:
            action.help = translate_text(action.help, lang)
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                choice.help = translate_text(choice.help, lang)
            for sub in dict.fromkeys(action.choices.values()):
                translate_parser(sub, lang)
    return parser


def parser_strings(parser: argparse.ArgumentParser) -> list[str]:
    """Every translatable string of a parser tree (for the catalogue's coverage)."""
    out = [parser.description or ""]
    out += [ln.strip().lstrip("#").strip() for ln, code in epilog_lines(parser.epilog)
            if ln.strip() and not code and ln.strip() != "example:"]
    out += [g.title for g in parser._action_groups if g.title]
    for action in parser._actions:
        if action.help and action.help is not argparse.SUPPRESS:
            out.append(action.help)
        if isinstance(action, argparse._SubParsersAction):
            out += [c.help for c in action._choices_actions if c.help]
            for sub in dict.fromkeys(action.choices.values()):
                out += parser_strings(sub)
    return [s for s in dict.fromkeys(out) if s]


# ----------------------------------------------------------------------------- .po → .mo
def _unquote(s: str) -> str:
    return ast.literal_eval(s) if s.startswith('"') else s


def read_po(text: str) -> dict[str, str]:
    """msgid → msgstr of a .po file whose entries are separated by blank lines (a fuzzy
    entry counts as untranslated; an entry with a ``msgctxt`` is keyed ``context\\x04msgid``,
    as gettext stores it)."""
    entries: dict[str, str] = {}
    for block in re.split(r"\n[ \t]*\n", text):
        msgid = msgstr = context = None
        field, fuzzy = None, False
        for line in (ln.strip() for ln in block.splitlines()):
            if line.startswith("#,") and "fuzzy" in line:
                fuzzy = True
            elif line.startswith("msgctxt "):
                context, field = _unquote(line[8:]), "msgctxt"
            elif line.startswith('"') and field == "msgctxt":
                context += _unquote(line)
            elif line.startswith("msgid "):
                msgid, field = _unquote(line[6:]), "msgid"
            elif line.startswith("msgstr "):
                msgstr, field = _unquote(line[7:]), "msgstr"
            elif line.startswith('"') and field == "msgid":
                msgid += _unquote(line)
            elif line.startswith('"') and field == "msgstr":
                msgstr += _unquote(line)
        if msgid is not None:
            key = msgid if context is None else f"{context}{CONTEXT}{msgid}"
            entries[key] = "" if fuzzy else (msgstr or "")
    return entries


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t").replace("\n", "\\n") + '"'


def po_entry(msgid: str, msgstr: str, comment: str = "", context: str | None = None) -> str:
    """One .po entry (multi-line strings split after their line breaks; ``context``: its msgctxt)."""
    def field(name, s):
        lines = s.split("\n")
        if len(lines) == 1:
            return f"{name} {_quote(s)}"
        chunks = [ln + "\n" for ln in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
        return f'{name} ""\n' + "\n".join(_quote(c) for c in chunks)
    head = "".join(f"#. {c}\n" for c in comment.splitlines()) if comment else ""
    if context is not None:
        head += f"msgctxt {_quote(context)}\n"
    return f"{head}{field('msgid', msgid)}\n{field('msgstr', msgstr)}\n"


def mo_bytes(entries: dict[str, str]) -> bytes:
    """A GNU .mo file (no hash table) for the translated entries, byte-identical for equal input."""
    items = sorted((k.encode("utf-8"), v.encode("utf-8")) for k, v in entries.items() if v or k == "")
    n = len(items)
    header = 7 * 4
    orig_at, trans_at = header, header + 8 * n
    data_at = trans_at + 8 * n
    ids = b"".join(k + b"\0" for k, _ in items)
    strs = b"".join(v + b"\0" for _, v in items)
    offsets, pos = [], data_at
    for k, _ in items:
        offsets.append((len(k), pos))
        pos += len(k) + 1
    toffsets = []
    for _, v in items:
        toffsets.append((len(v), pos))
        pos += len(v) + 1
    out = struct.pack("<7I", 0x950412DE, 0, n, orig_at, trans_at, 0, data_at)
    out += b"".join(struct.pack("<2I", *o) for o in offsets)
    out += b"".join(struct.pack("<2I", *o) for o in toffsets)
    return out + ids + strs


def po_path(lang: str = "ja") -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def compile_catalogue(lang: str = "ja") -> Path:
    """Write ``subdivide.mo`` next to ``subdivide.po`` (atomic); return its path."""
    po = po_path(lang)
    mo = po.with_suffix(".mo")
    tmp = mo.with_suffix(".mo.tmp")
    tmp.write_bytes(mo_bytes(read_po(po.read_text(encoding="utf-8"))))
    os.replace(tmp, mo)
    catalogue.cache_clear()
    _templates.cache_clear()
    _translate.cache_clear()
    _translate_where.cache_clear()
    return mo


if __name__ == "__main__":   # python -m subdivide.core.i18n  → rebuild every .mo
    for lang in LANGUAGES[1:]:
        print(compile_catalogue(lang))
