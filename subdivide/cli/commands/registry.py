"""``subdivide registry``: the national registry of subdivided municipalities.

Embedded SQLite (``--db PATH``, else $SUBDIVIDE_REGISTRY, else ./subdivide-registry.sqlite).
Enforces at most 25 municipalities with an active subdivision and at most 14 sub-areas
each, atomically. Times are in JST (+09:00); the list's columns are padded by display width,
so that Japanese names (two columns a character in a terminal) line up. See docs/registry.md.
"""
from __future__ import annotations

import argparse
import json
import sys

HELP = "national registry: register a validated package, list, show, history, withdraw (≤ 25 municipalities)"
EXAMPLE = """
  subdivide registry register hanamaki-package.zip --name 花巻市
  subdivide registry list
  subdivide registry show 03205
  subdivide registry history 03205
  subdivide registry withdraw 03205 --reason "plan revised"
  subdivide registry --db registry.sqlite list --all --json
"""


def add_arguments(p) -> None:
    p.add_argument("--db", metavar="PATH", help="registry database (default: $SUBDIVIDE_REGISTRY or "
                   "./subdivide-registry.sqlite)")
    p.add_argument("--actor", metavar="NAME", help="who makes the change (recorded in the audit table; "
                   "default: the login name)")
    p.add_argument("--json", action="store_true", help="print JSON")
    sub = p.add_subparsers(dest="registry_command", metavar="ACTION", required=True)
    r = sub.add_parser("register", help="validate a package and register it (supersedes an active one)")
    r.add_argument("package", help="package directory or zip")
    r.add_argument("--name", help="municipality name, e.g. 花巻市 (default: the earlier registration's, "
                   "else the one the package's manifest states)")
    r.add_argument("--profile", metavar="FILE", help="carrier profile TOML used to validate")
    r.add_argument("--outline", metavar="FILE", help="municipal outline for the gap/overlap check")
    ls = sub.add_parser("list", help="municipalities with an active subdivision")
    ls.add_argument("--all", action="store_true", help="include superseded and withdrawn registrations")
    s = sub.add_parser("show", help="one municipality's registrations and sub-areas")
    s.add_argument("muni", help="municipality code (5 or 6 digits)")
    h = sub.add_parser("history", help="the audit log (one municipality, or all)")
    h.add_argument("muni", nargs="?", help="municipality code")
    w = sub.add_parser("withdraw", help="end a municipality's active subdivision")
    w.add_argument("muni", help="municipality code")
    w.add_argument("--reason", help="recorded in the audit table")
    for sp in (r, ls, s, h, w):   # `registry list --json` works as well as `registry --json list`
        sp.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")


#: widest name column of `registry list` (longer names are cut with …)
MAX_NAME_WIDTH = 24


def _clean(text) -> str:
    """A value for the terminal: control and format characters dropped (a name is data)."""
    import unicodedata

    return "".join(ch for ch in str(text) if unicodedata.category(ch) not in ("Cc", "Cf"))


def fit(text, width: int, *, right: bool = False) -> str:
    """``text`` padded (or cut with …) to ``width`` terminal columns, counting East Asian
    wide and full-width characters as two."""
    from subdivide.core.i18n import display_width

    text = _clean(text)
    if display_width(text) > width:
        while text and display_width(text + "…") > width:
            text = text[:-1]
        text += "…"
    pad = " " * (width - display_width(text))
    return pad + text if right else text + pad


def pad(text, width: int, *, right: bool = False) -> str:
    """``text`` padded to ``width`` terminal columns (never cut; a kanji counts two)."""
    from subdivide.core.i18n import display_width

    fill = " " * max(0, width - display_width(text))
    return fill + text if right else text + fill


def name_width(names) -> int:
    from subdivide.core.i18n import display_width

    return min(max([4, *(display_width(_clean(n or "")) for n in names)]), MAX_NAME_WIDTH)


def _print_json(obj) -> None:
    json.dump(obj, sys.stdout, ensure_ascii=False, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")


def run(args) -> int:
    from subdivide.carrier.registry import Registry

    reg = Registry(args.db)   # refuses a file that is not (yet) a registry before writing to it
    ACTIONS[args.registry_command](reg, args)
    return 0


def _register(reg, args) -> None:
    from subdivide.core.constants import MAX_MUNICIPALITIES
    from subdivide.core.i18n import command_language, format_text

    out = reg.register(args.package, actor=args.actor, name=args.name, profile=args.profile, outline=args.outline)
    a = out["active"]
    if args.json:
        _print_json(out)
    else:
        name = f" {_clean(a['muni_name'])}" if a["muni_name"] else ""
        print(format_text("registered {muni} as #{id}: {subareas} sub-areas, {blocks} town-blocks "
                          "({active}/{limit} active) at {at}", command_language(args), muni=f"{a['muni_code']}{name}",
                          id=a["id"], subareas=a["n_subareas"], blocks=a["n_townblocks"],
                          active=reg.active_count(), limit=MAX_MUNICIPALITIES, at=a["registered_at"]))


def _list(reg, args) -> None:
    from subdivide.core.constants import MAX_MUNICIPALITIES
    from subdivide.core.i18n import command_language, display_width, format_text, pgettext

    rows = reg.list(include_ended=args.all)
    if args.json:
        _print_json(rows)
        return
    lang = command_language(args)
    word = lambda text: pgettext("registry", text, lang)    # noqa: E731   headings and statuses
    head = {k: word(k) for k in ("code", "name", "#", "areas", "blocks", "status", "registered (JST)")}
    widths = {k: max(n, display_width(head[k])) for k, n in (("code", 6), ("#", 4), ("areas", 5), ("blocks", 6))}
    widths["status"] = max([10, display_width(head["status"]), *(display_width(word(r["status"])) for r in rows)])
    w = max(name_width(r["muni_name"] for r in rows), display_width(head["name"]))
    print(f"{pad(head['code'], widths['code'])} {fit(head['name'], w)} {pad(head['#'], widths['#'], right=True)} "
          f"{pad(head['areas'], widths['areas'], right=True)} {pad(head['blocks'], widths['blocks'], right=True)} "
          f"{pad(head['status'], widths['status'])} {head['registered (JST)']}")
    for r in rows:
        print(f"{pad(r['muni_code'], widths['code'])} {fit(r['muni_name'] or '', w)} "
              f"{pad(str(r['id']), widths['#'], right=True)} {pad(str(r['n_subareas']), widths['areas'], right=True)} "
              f"{pad(str(r['n_townblocks']), widths['blocks'], right=True)} {pad(word(r['status']), widths['status'])} "
              + format_text("{at} by {actor}", lang, context="registry", at=r["registered_at"],
                            actor=_clean(r["registered_by"])))
    print(format_text("{active}/{limit} municipalities active", lang, active=reg.active_count(),
                      limit=MAX_MUNICIPALITIES))


def _show(reg, args) -> None:
    from subdivide.core.i18n import command_language, format_text, pgettext

    out = reg.show(args.muni)
    if args.json:
        _print_json(out)
        return
    lang = command_language(args)
    a = out["active"]
    name = f" {_clean(a['muni_name'])}" if a and a["muni_name"] else ""
    muni = f"{out['muni_code']}{name}"
    print(format_text("{muni}: active #{id} since {at}", lang, muni=muni, id=a["id"], at=a["registered_at"]) if a
          else format_text("{muni}: no active subdivision", lang, muni=muni))
    if a:
        w = name_width(s["name"] for s in a["subareas"])
        for s in a["subareas"]:
            area = "" if s["area_km2"] is None else f"{s['area_km2']:,.1f} km²"
            blocks = format_text("{num} blocks", lang, context="registry", num=f"{_count(s['n_blocks']):>6}")
            people = format_text("{num} people", lang, context="registry", num=f"{_count(s['population']):>9}")
            print(f"  {s['display_order']:>2}. {s['code']} {fit(s['name'], w)} {blocks} {people} {area:>12}")
    for r in out["registrations"]:
        status = pad(pgettext("registry", r["status"], lang), 10)
        print(f"  #{r['id']} {status} {r['registered_at']} sha256 {r['package_sha256'][:12]}…")


def _count(v) -> str:
    return "–" if v is None else f"{int(v):,}"


def _history(reg, args) -> None:
    from subdivide.core.i18n import command_language, format_text, pgettext

    rows = reg.history(args.muni)
    if args.json:
        _print_json(rows)
        return
    lang = command_language(args)
    for r in rows:
        action = pad(pgettext("registry", r["action"], lang), 9)
        print(f"{r['at']}  {action} {r['muni_code'] or '-':<6} #{r['registration_id'] or '-'} "
              + format_text("by {actor}", lang, context="registry", actor=r["actor"])
              + f"  {json.dumps(r['detail'], ensure_ascii=False)}")


def _withdraw(reg, args) -> None:
    from subdivide.core.constants import MAX_MUNICIPALITIES
    from subdivide.core.i18n import command_language, format_text

    out = reg.withdraw(args.muni, actor=args.actor, reason=args.reason)
    if args.json:
        _print_json(out)
    else:
        print(format_text("withdrew {muni} (#{id}); {active}/{limit} active", command_language(args), muni=out["muni_code"],
                          id=out["registration_id"], active=reg.active_count(), limit=MAX_MUNICIPALITIES))


ACTIONS = {"register": _register, "list": _list, "show": _show, "history": _history, "withdraw": _withdraw}
