"""The command line: a thin layer over the Python API.

Each subcommand lives in ``subdivide/cli/commands/<name>.py`` and defines

- ``HELP``: one line for the command list;
- ``EXAMPLE``: a worked example shown at the end of ``--help``;
- ``add_arguments(parser)``;
- ``run(args) -> int``: the exit status.

User errors (:class:`subdivide.core.errors.UserError`) print a message and exit 2, never a
traceback. So do file-system and database faults raised anywhere (a full disk or TMPDIR, a
read-only folder, an unreadable file, a name that is too long, a corrupted SQLite /
GeoPackage file): :func:`subdivide.core.faults.fault_to_user_error` names what, where and how
to fix. Before a command runs, NaN / infinite numeric options and arguments naming a FIFO,
socket or device are refused; the command runs inside
:class:`subdivide.cli.outputs.OutputTransaction`, so that a failure leaves none of its
outputs behind (all or nothing). Anything else unexpected prints a one-paragraph "internal
error" (exit 70; the traceback only with ``SUBDIVIDE_DEBUG=1``).
"""
from __future__ import annotations

import argparse
import importlib
import math
import os
import sqlite3
import sys
import traceback
import warnings

from subdivide import __version__
from subdivide.cli.outputs import OutputTransaction, database_paths, output_paths
from subdivide.core.errors import UserError
from subdivide.core.faults import (
    existing_paths,
    fault_to_user_error,
    refuse_special_files,
)
from subdivide.core.i18n import FRAME, command_language, error_line, language, translate_parser, translate_text

LANG_HELP = "choose the language of messages and help: ja (日本語) or en (default: from LANG / LC_ALL)"

#: the subcommands, in the order ``--help`` lists them
COMMANDS = ("demo", "run", "info", "plan", "spill", "calibrate", "coverage", "package", "validate", "registry", "map", "report", "message", "edit", "screen")


def _load(name: str):
    try:
        return importlib.import_module(f"subdivide.cli.commands.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"subdivide.cli.commands.{name}":
            return None
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="subdivide",
        description="Split a municipality into emergency-alert (緊急速報メール) sub-areas, "
        "estimate broadcast spill, and build the carriers' submission package.",
        epilog="Start with:  subdivide demo   (runs everything on the bundled 花巻市 sample)\n"
        "Then:        subdivide info data/hanamaki_03205/h27ka03205.shp",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"subdivide {__version__}")
    parser.add_argument("--lang", choices=("ja", "en"), default=argparse.SUPPRESS, help=LANG_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        mod = _load(name)
        if mod is None:
            continue
        p = sub.add_parser(
            name,
            help=mod.HELP,
            description=mod.HELP,
            epilog="example:\n" + mod.EXAMPLE.strip("\n"),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def check_numbers(args) -> None:
    """Refuse NaN / infinite values of numeric options (argparse's float() accepts 'nan')."""
    for name, v in sorted(vars(args).items()):
        items = v if isinstance(v, (list, tuple)) else [v]
        for x in items:
            if isinstance(x, float) and not math.isfinite(x):
                opt = "--" + name.replace("_", "-")
                raise UserError(f"{opt} {x}: not a finite number", where=opt,
                                fix=f"give {opt} an ordinary number (see `subdivide {args.command} --help`)")


def _warning_printer(command: str, fallback, lang: str = "en"):
    """Show subdivide's own warnings as one line ``subdivide CMD: warning: …`` (no source line;
    ``警告`` and the message in Japanese when the catalogue knows it)."""
    word = FRAME[lang]["warning"]

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, UserWarning) and "subdivide" in str(filename):
            print(f"subdivide {command}: {word}: {translate_text(str(message), lang)}", file=file or sys.stderr)
        else:
            fallback(message, category, filename, lineno, file, line)
    return show


def cli_language(argv: list[str], env=os.environ) -> tuple[str, list[str]]:
    """(``ja`` or ``en``, the arguments without ``--lang``): ``--lang`` anywhere on the command
    line (``subdivide info FILE --lang ja`` too), else the locale (LC_ALL, LC_MESSAGES, LANG).
    An unknown --lang value stays in the arguments for argparse to refuse."""
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--lang")
    known, rest = pre.parse_known_args(argv)
    try:
        return language(known.lang, env), rest
    except ValueError:
        return language(None, env), argv


def _error(args, exc: UserError) -> int:
    print(error_line(args.command, exc, command_language(args)), file=sys.stderr)
    return exc.exit_status


#: the where and fix lines of an internal error
INTERNAL_WHERE = "inside subdivide (not caused by a file or option we could recognise)"
INTERNAL_FIX = ("nothing was written; please report the command line to the subdivide maintainers "
                "(run it again with SUBDIVIDE_DEBUG=1 to see the details)")


def _internal_error(args, exc: BaseException) -> int:
    """An unexpected failure: a short message (the traceback only with SUBDIVIDE_DEBUG=1)."""
    if os.environ.get("SUBDIVIDE_DEBUG"):
        traceback.print_exc()
    text = " ".join(str(exc).split())[:300]
    lang = command_language(args)
    words = FRAME[lang]
    fix_pad = "   " if lang == "en" else " "
    print(f"subdivide {args.command}: {words['internal']}: {exc.__class__.__name__}: {text}\n"
          f"  {words['where']}: {translate_text(INTERNAL_WHERE, lang)}\n"
          f"  {words['fix']}:{fix_pad}{translate_text(INTERNAL_FIX, lang)}", file=sys.stderr)
    return 70  # EX_SOFTWARE


def main(argv: list[str] | None = None) -> int:
    lang, argv = cli_language(sys.argv[1:] if argv is None else list(argv))
    parser = translate_parser(build_parser(), lang)
    args = parser.parse_args(argv)
    args.lang = lang
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warning_printer(args.command, warnings.showwarning, args.lang)
            check_numbers(args)
            refuse_special_files(args, args.command)
            with OutputTransaction(output_paths(args), database_paths(args)):
                return int(args._run(args) or 0)
    except UserError as exc:
        return _error(args, exc)
    except KeyboardInterrupt:
        print(translate_text("interrupted", args.lang), file=sys.stderr)
        return 130
    except BrokenPipeError:  # `subdivide info … | head`: the reader went away; not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except (OSError, sqlite3.DatabaseError, RuntimeError, MemoryError, Exception) as exc:
        err = fault_to_user_error(exc, command=args.command, paths=existing_paths(args))
        if err is not None:
            return _error(args, err)
        if isinstance(exc, MemoryError):
            return _error(args, UserError("out of memory", where=f"subdivide {args.command}",
                                          fix="close other programs, or work on a smaller area"))
        return _internal_error(args, exc)


if __name__ == "__main__":
    raise SystemExit(main())
