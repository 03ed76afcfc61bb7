"""Keep the Japanese catalogue in step with the code: ``python -m subdivide.cli.catalogue``.

Lists the English strings of the command line (every command's HELP, description, argument
help and epilog prose) and of the rule vocabulary (descriptions and fixes) that
``subdivide/locale/ja/LC_MESSAGES/subdivide.po`` does not translate yet; ``--add`` appends
them to the .po with an empty msgstr (untranslated strings stay English at run time), for a
translator to fill in before ``python -m subdivide.core.i18n`` rebuilds the .mo.
See docs/i18n.md.
"""
from __future__ import annotations

import argparse
import sys

from subdivide.core.i18n import parser_strings, po_entry, po_path, read_po
from subdivide.core.rules import RULES


def english_strings() -> list[str]:
    """Every English string the CLI shows through the catalogue (parser tree and rules)."""
    from subdivide.cli.main import build_parser

    out = parser_strings(build_parser())
    for r in RULES.values():
        out += [r.description, r.fix]
    return [s for s in dict.fromkeys(out) if s]


def missing_strings(lang: str = "ja") -> list[str]:
    """English strings with no entry (or an empty one) in the ``lang`` catalogue."""
    known = read_po(po_path(lang).read_text(encoding="utf-8"))
    return [s for s in english_strings() if not known.get(s)]


def add_missing(lang: str = "ja") -> list[str]:
    """Append the strings that have no entry at all to the .po, untranslated; return them."""
    po = po_path(lang)
    text = po.read_text(encoding="utf-8")
    known = read_po(text)
    new = [s for s in english_strings() if s not in known]
    if new:
        po.write_text(text.rstrip("\n") + "\n\n" + "\n".join(po_entry(s, "", "(to translate)") for s in new),
                      encoding="utf-8")
    return new


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m subdivide.cli.catalogue", description=__doc__.split("\n\n")[0])
    ap.add_argument("--add", action="store_true", help="append the missing strings to the .po (empty msgstr)")
    args = ap.parse_args(argv)
    strings = add_missing() if args.add else missing_strings()
    for s in strings:
        print(s)
    print(f"{len(strings)} string(s) {'added to' if args.add else 'missing from'} {po_path()}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
