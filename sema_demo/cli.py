"""Command line: ``sema-demo`` / ``python -m sema_demo``."""
from __future__ import annotations

import argparse
import sys

from . import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sema-demo",
        description="SEMA Lab: Switch EMA weight averaging, from the command line.",
    )
    parser.add_argument("--version", action="version", version=f"sema-demo {__version__}")
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
