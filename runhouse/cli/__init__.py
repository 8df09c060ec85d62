"""The ``runhouse`` command: one module per noun, each adding its subcommands here."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from runhouse._version import __version__
from runhouse.cli import config as config_cli
from runhouse.cli import daemon as daemon_cli
from runhouse.cli import den as den_cli
from runhouse.cli import group as group_cli
from runhouse.cli import login as login_cli
from runhouse.cli import resources as resources_cli
from runhouse.cli import secrets as secrets_cli
from runhouse.exceptions import RunhouseError

NOUNS = (daemon_cli, login_cli, resources_cli, den_cli, group_cli, config_cli, secrets_cli)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every noun's subcommands."""
    parser = argparse.ArgumentParser(
        prog="runhouse",
        description="Run code on your clusters, and name, version and share what you build.",
    )
    parser.add_argument("--version", action="version", version=f"runhouse {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for noun in NOUNS:
        noun.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except (RunhouseError, KeyError, ValueError, TypeError, IndexError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"runhouse: error: {message}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `runhouse ls | head`
        return 0
