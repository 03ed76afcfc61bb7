"""The command line: a thin layer over the Python API.

Each subcommand lives in ``subdivide/cli/commands/<name>.py`` and defines

- ``HELP``: one line for the command list;
- ``EXAMPLE``: a worked example shown at the end of ``--help``;
- ``add_arguments(parser)``;
- ``run(args) -> int``: the exit status.

User errors (:class:`subdivide.core.errors.UserError`) print a message and exit 2, never a
traceback.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from subdivide import __version__
from subdivide.core.errors import UserError

#: the subcommands, in the order ``--help`` lists them
COMMANDS = ("demo", "info", "plan", "spill", "coverage", "package", "validate", "registry", "map", "report")


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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0
    try:
        return int(args._run(args) or 0)
    except UserError as exc:
        print(f"subdivide {args.command}: error: {exc.message}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `subdivide info … | head`: the reader went away; not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
