"""``runhouse group create|show|delete|add|remove|defaults``: groups on Den."""

from __future__ import annotations

import argparse
import json
from typing import Any

from runhouse.names.den import ROLES
from runhouse.resources.group import Group


def register(commands: Any) -> None:
    """Add ``group`` and its subcommands to the CLI."""
    group = commands.add_parser("group", help="create groups on Den and manage their members")
    verbs = group.add_subparsers(dest="verb", metavar="VERB", required=True)

    create = verbs.add_parser("create", help="create a group (admin of its parent, or Den's)")
    create.add_argument("path", help="the group's path, e.g. /acme or /acme/ml")
    create.set_defaults(handler=run_create)

    show = verbs.add_parser("show", help="print a group's members and defaults")
    show.add_argument("path")
    show.add_argument("--json", action="store_true", help="print it as JSON")
    show.set_defaults(handler=run_show)

    delete = verbs.add_parser("delete", help="delete a group")
    delete.add_argument("path")
    delete.set_defaults(handler=run_delete)

    add = verbs.add_parser("add", help="give a user a role in a group")
    add.add_argument("path")
    add.add_argument("user")
    add.add_argument("--role", choices=ROLES, default="reader", help="default: reader")
    add.set_defaults(handler=run_add)

    remove = verbs.add_parser("remove", help="take a user out of a group")
    remove.add_argument("path")
    remove.add_argument("user")
    remove.set_defaults(handler=run_remove)

    defaults = verbs.add_parser("defaults", help="set the settings a group's members get")
    defaults.add_argument("path")
    defaults.add_argument(
        "settings",
        nargs="+",
        metavar="KEY=VALUE",
        help="VALUE is read as a YAML scalar; KEY= (nothing after =) removes KEY",
    )
    defaults.set_defaults(handler=run_defaults)


def run_create(args: argparse.Namespace) -> int:
    """Create the group, saying whether it was there already."""
    group = Group(args.path)
    made = group.create()
    print(f"Created group {group.path}." if made else f"Group {group.path} exists already.")
    return 0


def run_show(args: argparse.Namespace) -> int:
    """Print the members (with the group each role comes from) and the defaults."""
    info = Group(args.path).info()
    if args.json:
        members = [{"username": m.username, "role": m.role, "via": m.via} for m in info.members]
        print(json.dumps({"path": info.path, "members": members, "defaults": info.defaults}))
        return 0
    rows = [("USER", "ROLE", "VIA")] + [(m.username, m.role, m.via) for m in info.members]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    for key, value in sorted(info.defaults.items()):
        print(f"default {key}={json.dumps(value)}")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    """Delete the group."""
    group = Group(args.path)
    existed = group.delete()
    print(f"Deleted group {group.path}." if existed else f"No group {group.path} to delete.")
    return 0 if existed else 1


def run_add(args: argparse.Namespace) -> int:
    """Give a user a role in the group."""
    group = Group(args.path)
    group.add_member(args.user, role=args.role)
    print(f"{args.user} is now {args.role} in {group.path}.")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    """Take a user out of the group."""
    group = Group(args.path)
    removed = group.remove_member(args.user)
    print(f"Removed {args.user} from {group.path}." if removed else f"{args.user} was not in it.")
    return 0 if removed else 1


def run_defaults(args: argparse.Namespace) -> int:
    """Set the KEY=VALUE pairs among the group's defaults (``KEY=`` removes one)."""
    import yaml  # only here: the CLI stays quick for other commands

    group = Group(args.path)
    defaults = group.defaults
    for item in args.settings:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{item!r} is not KEY=VALUE (e.g. autostop_mins=30).")
        if value:
            defaults[key] = yaml.safe_load(value)
        else:
            defaults.pop(key, None)
    stored = group.set_defaults(defaults)
    for key, value in sorted(stored.items()):
        print(f"{key}={json.dumps(value)}")
    return 0
