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
  (and translated themselves when they are msgids, e.g. ``the town-block file``).
- :func:`translate_parser` translates an :mod:`argparse` parser and its subcommands in
  place (descriptions, help, usage heading, section titles, epilog prose, parse errors).
- :func:`translate_error` renders a :class:`~subdivide.core.errors.UserError` with
  エラー / 場所 / 対処; :func:`render_finding` a validator or plan finding with its rule's
  description and fix line; :func:`progress_translator` names progress stages.
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

#: frame words of an error and of a finding, per language
FRAME = {
    "en": {"error": "error", "where": "where", "fix": "fix", "usage": "usage: ", "example": "example:",
           "internal": "internal error"},
    "ja": {"error": "エラー", "where": "場所", "fix": "対処", "usage": "使い方: ", "example": "例:",
           "internal": "内部エラー"},
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


@functools.cache
def _templates(lang: str) -> tuple[tuple[re.Pattern, str], ...]:
    """(regex, translated template) for every msgid with ``{name}`` fields, the most literal first."""
    cat = catalogue(lang)
    entries = getattr(cat, "_catalog", {})
    # a {what} is a subject the catalogue knows ("the town-block file"), tried before any text
    subjects = sorted((k for k in entries if isinstance(k, str) and k.startswith("the ") and "{" not in k
                       and len(k) <= 40), key=len, reverse=True)
    what = "|".join(map(re.escape, subjects)) + "|" if subjects else ""
    out = []
    for msgid, msgstr in entries.items():
        if not isinstance(msgid, str) or not _FIELD.search(msgid) or not msgstr:
            continue
        parts, pos = [], 0
        for m in _FIELD.finditer(msgid):
            parts.append(re.escape(msgid[pos:m.start()]))
            name = m.group(1)
            body = f"{what}.+?" if name == "what" else ".+?"
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
    and translated when they are msgids themselves), else ``text`` unchanged."""
    if text is None or lang == "en":
        return text
    exact = lookup(text, lang)
    if exact is not None:
        return exact
    for rx, tr in _templates(lang):
        m = rx.fullmatch(text)
        if m:
            values = {k: translate_text(v, lang) for k, v in m.groupdict().items()}   # shorter: ends
            return tr.format(**values)
    return text


def translate_lines(text: str, lang: str) -> str:
    """A multi-line report translated line by line (each line's indentation kept), e.g. the
    text of ``subdivide info``: its English lines are catalogue templates."""
    if lang == "en":
        return text
    out = []
    for line in text.split("\n"):
        body = line.lstrip(" ")
        out.append(line[: len(line) - len(body)] + translate_text(body, lang) if body else line)
    return "\n".join(out)


def gettext_for(lang: str) -> Callable[[str], str]:
    """A ``_`` function for ``lang``."""
    return lambda s: translate_text(s, lang)


# ----------------------------------------------------------------------------- errors
def translate_error(user_error, lang: str) -> str:
    """A UserError's text (what / where / fix) in ``lang``; English is ``user_error.message``."""
    if lang == "en":
        return user_error.message
    words = FRAME[lang]
    parts = [translate_text(user_error.what, lang)]
    if user_error.where:
        parts.append(f"  {words['where']}: {user_error.where}")
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
    """One finding for the findings table: ``SEVERITY RULE: message [features]`` and, on a
    second line, the rule's fix. In Japanese the message is translated when the catalogue
    knows it, else the rule's Japanese description is given with the original detail."""
    if lang == "en":
        head = str(finding)
    else:
        feats = ""
        if finding.features:
            shown = "、".join(finding.features[:10])
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
    entry counts as untranslated)."""
    entries: dict[str, str] = {}
    for block in re.split(r"\n[ \t]*\n", text):
        msgid = msgstr = None
        field, fuzzy = None, False
        for line in (ln.strip() for ln in block.splitlines()):
            if line.startswith("#,") and "fuzzy" in line:
                fuzzy = True
            elif line.startswith("msgid "):
                msgid, field = _unquote(line[6:]), "msgid"
            elif line.startswith("msgstr "):
                msgstr, field = _unquote(line[7:]), "msgstr"
            elif line.startswith('"') and field == "msgid":
                msgid += _unquote(line)
            elif line.startswith('"') and field == "msgstr":
                msgstr += _unquote(line)
        if msgid is not None:
            entries[msgid] = "" if fuzzy else (msgstr or "")
    return entries


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t").replace("\n", "\\n") + '"'


def po_entry(msgid: str, msgstr: str, comment: str = "") -> str:
    """One .po entry (multi-line strings split after their line breaks)."""
    def field(name, s):
        lines = s.split("\n")
        if len(lines) == 1:
            return f"{name} {_quote(s)}"
        chunks = [ln + "\n" for ln in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
        return f'{name} ""\n' + "\n".join(_quote(c) for c in chunks)
    head = "".join(f"#. {c}\n" for c in comment.splitlines()) if comment else ""
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
    return mo


if __name__ == "__main__":   # python -m subdivide.core.i18n  → rebuild every .mo
    for lang in LANGUAGES[1:]:
        print(compile_catalogue(lang))
