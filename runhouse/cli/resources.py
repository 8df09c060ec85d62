"""``runhouse ls`` and ``runhouse history``: what is saved, and its versions."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from runhouse.names.folders import current, resolve, resource_address
from runhouse.names.resolver import store_for


def register(commands: Any) -> None:
    """Add ``ls`` and ``history`` to the CLI."""
    ls = commands.add_parser("ls", help="list the resources and folders in a folder")
    ls.add_argument("folder", nargs="?", help="folder to list (default: the current folder)")
    ls.set_defaults(handler=run_ls)

    history = commands.add_parser("history", help="show the saved versions of a resource")
    history.add_argument("name", help="name or address of the resource, e.g. ~/team/x")
    history.add_argument("--limit", type=int, default=None, help="show at most N versions")
    history.add_argument("--json", action="store_true", help="print each version as JSON")
    history.set_defaults(handler=run_history)


def run_ls(args: argparse.Namespace) -> int:
    """Print one row per resource or sub-folder; corrupt configs are flagged, not fatal."""
    folder = resolve(args.folder) if args.folder else current()
    entries = store_for(folder).ls(folder)
    if not entries:
        print(f"(nothing saved in {folder})", file=sys.stderr)
        return 0
    rows = [("NAME", "TYPE", "VERSION")]
    for entry in entries:
        if entry.kind == "folder":
            rows.append((entry.name, "folder", ""))
        elif entry.kind == "corrupt":
            rows.append((entry.name, "CORRUPT", ""))
            print(f"runhouse: warning: {entry.error}", file=sys.stderr)
        else:
            version = str(entry.version) if entry.version is not None else ""
            rows.append((entry.name, entry.resource_type or "?", version))
    _print_table(rows)
    return 0


def run_history(args: argparse.Namespace) -> int:
    """Print the versions of a resource, newest first."""
    address = resource_address(args.name)
    versions = store_for(address).history(address, args.limit)
    if args.json:
        for saved in versions:
            record = {
                "author": saved.author,
                "config": saved.config,
                "timestamp": saved.timestamp,
                "version": saved.version,
            }
            print(json.dumps(record, sort_keys=True))
        return 0
    rows = [("VERSION", "SAVED (UTC)", "AUTHOR", "TYPE")]
    for saved in versions:
        rtype = saved.config.get("resource_type")
        rows.append((str(saved.version), saved.timestamp, saved.author, str(rtype)))
    _print_table(rows)
    return 0


def _print_table(rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
