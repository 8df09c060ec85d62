"""``runhouse login`` and ``runhouse logout``: the token for Den, the metadata server."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from runhouse.config import configs
from runhouse.names.login import DEFAULT_DEN_URL, login, logout


def register(commands: Any) -> None:
    """Add ``login`` and ``logout`` to the CLI."""
    login_ = commands.add_parser(
        "login",
        help="log in to Den (the metadata server): names then save there",
        description="Check a token with Den and record den_url, token and username in "
        "~/.rh/config.yaml; /<username> becomes the default folder.",
    )
    login_.add_argument("--token", help="your Den token (asked for when not given)")
    login_.add_argument(
        "--den-url", help=f"Den's URL (default: the den_url setting, else {DEFAULT_DEN_URL})"
    )
    login_.set_defaults(handler=run_login)

    logout_ = commands.add_parser(
        "logout", help="forget the Den token; bare names go back to the local store"
    )
    logout_.set_defaults(handler=run_logout)


def run_login(args: argparse.Namespace) -> int:
    """Log in with the given token, or one typed at a hidden prompt."""
    token = args.token
    if not token:
        if not sys.stdin.isatty():
            raise ValueError("no token given: pass --token TOKEN (or run this in a terminal).")
        token = getpass.getpass("Den token: ").strip()
    username = login(token=token, den_url=args.den_url)
    print(f"Logged in to {configs.get('den_url')} as {username}; bare names and @/ now save to")
    print(f"/{username} on Den, and ~/ names stay local.")
    return 0


def run_logout(args: argparse.Namespace) -> int:
    """Remove the token and username from the config file."""
    logout()
    print("Logged out; bare names save to the local store again.")
    return 0
