"""``runhouse secrets list|get|set|delete|import``: saved secrets, values shown only when asked.

runhouse secrets import aws              # ~/.aws/credentials (or AWS_*) saved as "aws"
runhouse secrets set openai OPENAI_API_KEY          # the value is asked for, hidden
runhouse secrets get openai              # its keys; --show prints KEY=VALUE lines
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from runhouse.names.folders import current, resolve, resource_address
from runhouse.names.resolver import exists, store_for
from runhouse.resources.secret import ProviderSecret, Secret, provider_secret
from runhouse.secrets.registry import known


def register(commands: Any) -> None:
    """Add ``secrets`` and its subcommands to the CLI."""
    secrets = commands.add_parser(
        "secrets",
        help="save, list and show secrets (values show only with get --show)",
        description="Secrets keep their values apart from their configs: in ~/.rh/secrets "
        "(mode 600) while logged out. Listing and history never show values.",
    )
    verbs = secrets.add_subparsers(dest="verb", metavar="VERB", required=True)

    list_ = verbs.add_parser("list", help="list the secrets saved in a folder")
    list_.add_argument("folder", nargs="?", help="folder to list (default: the current folder)")
    list_.set_defaults(handler=run_list)

    get = verbs.add_parser("get", help="show a secret's provider, version and keys")
    get.add_argument("name", help="name or address of the secret")
    get.add_argument("--show", action="store_true", help="print its values too (KEY=VALUE)")
    get.set_defaults(handler=run_get)

    set_ = verbs.add_parser(
        "set",
        help="set values of a secret (made if missing), as a new version",
        description="KEY=VALUE sets a value; a bare KEY asks for its value at a hidden prompt "
        "(or reads a line from stdin), which keeps it out of your shell's history and of "
        "the process list.",
    )
    set_.add_argument("name", help="name or address of the secret")
    set_.add_argument("items", nargs="+", metavar="KEY[=VALUE]")
    set_.set_defaults(handler=run_set)

    delete = verbs.add_parser("delete", help="delete a secret: its config, versions and values")
    delete.add_argument("name")
    delete.set_defaults(handler=run_delete)

    import_ = verbs.add_parser(
        "import", help=f"save a provider's local credentials ({', '.join(known())})"
    )
    import_.add_argument("provider")
    import_.add_argument(
        "--name", help="save it under this name (default: the provider's; azure_secret for azure)"
    )
    import_.add_argument("--path", help="read this file instead of the provider's default")
    import_.set_defaults(handler=run_import)


def run_list(args: argparse.Namespace) -> int:
    """Print the secrets in a folder: name, provider, version."""
    folder = resolve(args.folder) if args.folder else current()
    store = store_for(folder)
    rows = [("NAME", "PROVIDER", "VERSION")]
    for entry in store.ls(folder):
        if entry.kind != "resource" or entry.resource_type != "secret":
            continue
        config = store.read(resource_address(entry.address))
        provider = config.get("provider") or "(custom)"
        rows.append((entry.name, str(provider), str(entry.version or "")))
    if len(rows) == 1:
        print(f"(no secrets saved in {folder})", file=sys.stderr)
        return 0
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return 0


def run_get(args: argparse.Namespace) -> int:
    """Print the secret's address, provider, version and keys (``--show``: values too)."""
    secret = Secret.from_name(args.name)
    address = resource_address(args.name)
    version = store_for(address).history(address, 1)[0].version
    provider = secret.provider if isinstance(secret, ProviderSecret) else "(custom)"
    values = secret.values  # first: values kept elsewhere fail before anything is printed
    print(f"{secret.rns_address}  provider {provider}  version {version}")
    for key in sorted(values):
        print(f"{key}={values[key]}" if args.show else key)
    return 0


def run_set(args: argparse.Namespace) -> int:
    """Set the given values (the others stay) and save a new version."""
    updates = {}
    for item in args.items:
        key, sep, value = item.partition("=")
        if not key:
            raise ValueError(f"{item.partition('=')[0]!r}: give KEY=VALUE, or KEY alone")
        updates[key] = value if sep else _ask(key)
    secret = Secret.from_name(args.name) if exists(args.name) else Secret(args.name, {})
    secret.values = {**secret.values, **updates}
    secret.save()
    version = secret.history(1)[0].version
    print(f"Saved {secret.rns_address} (version {version}): set {', '.join(sorted(updates))}.")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    """Delete the secret with its values."""
    address = resource_address(args.name)
    if not exists(args.name):
        print(f"No secret saved at {address}.", file=sys.stderr)
        return 1
    Secret.from_name(args.name).delete_configs()
    print(f"Deleted {address} (config, versions and values).")
    return 0


def run_import(args: argparse.Namespace) -> int:
    """Read the provider's local credentials and save them."""
    secret = provider_secret(args.provider, path=args.path, name=args.name)
    secret.save()
    version = secret.history(1)[0].version
    print(f"Saved {secret.rns_address} (version {version}) from {secret.source}.")
    return 0


def _ask(key: str) -> str:
    """A value typed at a hidden prompt, or a line of stdin when it is not a terminal."""
    if sys.stdin.isatty():
        return getpass.getpass(f"{key}: ")
    line = sys.stdin.readline()
    if not line:
        raise ValueError(f"no value for {key!r}: give {key}=VALUE, or pipe it in")
    return line.rstrip("\n")
