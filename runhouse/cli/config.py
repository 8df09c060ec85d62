"""``runhouse config get|set|delete|list``: the settings in ``~/.rh/config.yaml``;
``upload-defaults`` and ``download-defaults`` keep them on Den (see ``runhouse.config``)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from runhouse.config import SETTINGS, configs, parse_text


def register(commands: Any) -> None:
    """Add ``config`` and its subcommands to the CLI."""
    config = commands.add_parser("config", help="read and write settings (~/.rh/config.yaml)")
    verbs = config.add_subparsers(dest="verb", metavar="VERB", required=True)

    get = verbs.add_parser("get", help="print a setting's effective value")
    get.add_argument("key")
    get.set_defaults(handler=run_get)

    set_ = verbs.add_parser("set", help="store a setting in the config file")
    set_.add_argument("key")
    set_.add_argument("value", help="a YAML scalar for keys outside the settings table")
    set_.set_defaults(handler=run_set)

    delete = verbs.add_parser("delete", help="remove a setting from the config file")
    delete.add_argument("key")
    delete.set_defaults(handler=run_delete)

    list_ = verbs.add_parser("list", help="every setting, its value and where it comes from")
    list_.set_defaults(handler=run_list)

    upload = verbs.add_parser(
        "upload-defaults",
        help="keep your settings on Den as your defaults (not the Den login, nor credentials)",
    )
    upload.set_defaults(handler=run_upload_defaults)

    download = verbs.add_parser(
        "download-defaults",
        help="write the defaults Den has for you (yours over your groups') into the file",
    )
    download.set_defaults(handler=run_download_defaults)


def run_get(args: argparse.Namespace) -> int:
    """Print the effective value of one key (JSON for non-strings)."""
    print(_show(configs.get(args.key)))
    return 0


def run_set(args: argparse.Namespace) -> int:
    """Store a value: typed by the settings table, else read as a YAML scalar."""
    if args.key in SETTINGS:
        value = parse_text(args.key, args.value, args.key)
    else:
        import yaml

        value = yaml.safe_load(args.value)
    configs.set(args.key, value)
    return 0


def run_delete(args: argparse.Namespace) -> int:
    """Remove a key from the config file."""
    configs.delete(args.key)
    return 0


def run_list(args: argparse.Namespace) -> int:
    """Print KEY=VALUE (source) lines; secret values are masked."""
    for key, (value, source) in configs.effective().items():
        setting = SETTINGS.get(key)
        shown = "****" if setting and setting.secret and value else _show(value)
        print(f"{key}={shown}  ({source})")
    return 0


def run_upload_defaults(args: argparse.Namespace) -> int:
    """Send your stored settings to Den as your defaults; print what Den keeps."""
    stored = configs.upload_defaults()
    print(f"Den keeps {len(stored)} default(s) for you" + (":" if stored else "."))
    for key, value in sorted(stored.items()):
        print(f"{key}={_show(value)}")
    return 0


def run_download_defaults(args: argparse.Namespace) -> int:
    """Write your defaults from Den into the config file; print what was written."""
    written = configs.download_defaults()
    print(
        f"Wrote {len(written)} default(s) from Den into {configs.path}" + (":" if written else ".")
    )
    for key, value in sorted(written.items()):
        print(f"{key}={_show(value)}")
    return 0


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
