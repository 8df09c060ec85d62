"""``runhouse den``: run Den (start, stop, status), manage its users and tokens, read its
audit log (``runhouse den audit``, Den admins), and rotate its master key
(``runhouse den rotate-master-key``, on Den's host, with Den stopped).

The user, token and audit commands talk to a running Den over HTTP, with the token from
``--token``, ``RH_TOKEN`` or the ``token`` setting, at ``--den-url``, the ``den_url``
setting, or http://127.0.0.1:8900.
"""

from __future__ import annotations

import argparse
import json
import re
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from runhouse.config import configs
from runhouse.exceptions import DenAuthError, DenError

DEFAULT_URL = "http://127.0.0.1:8900"
_TIMEOUT = 30.0
_AGO = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def register(commands: Any) -> None:
    """Add ``runhouse den ...`` to the CLI."""
    den = commands.add_parser("den", help="run Den (the metadata server); its users and tokens")
    verbs = den.add_subparsers(dest="den_command", metavar="COMMAND", required=True)

    start = verbs.add_parser("start", help="start Den (in the background unless --foreground)")
    start.add_argument("--db", help="database URL (default: SQLite in the data folder)")
    start.add_argument("--host", default="127.0.0.1", help="address to listen on")
    start.add_argument("--port", type=int, default=8900, help="port (0 picks a free one)")
    _data_dir(start)
    start.add_argument("--tls", action="store_true", help="serve HTTPS")
    start.add_argument("--certfile", help="TLS certificate (default: a self-signed one)")
    start.add_argument("--keyfile", help="TLS private key for --certfile")
    start.add_argument(
        "--insecure", action="store_true", help="allow a non-loopback --host without --tls"
    )
    _master_key_file(start)
    start.add_argument(
        "--foreground", action="store_true", help="serve in this process until Ctrl-C/SIGTERM"
    )
    start.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)
    start.set_defaults(handler=run_start)

    stop = verbs.add_parser("stop", help="stop the Den serving the data folder")
    _data_dir(stop)
    stop.set_defaults(handler=run_stop)

    status = verbs.add_parser("status", help="whether a Den serves the data folder, and where")
    _data_dir(status)
    status.add_argument("--json", action="store_true", help="print the info as JSON")
    status.set_defaults(handler=run_status)

    rotate = verbs.add_parser(
        "rotate-master-key",
        help="re-wrap every secret's data key with a new master key (Den stopped)",
    )
    _data_dir(rotate)
    rotate.add_argument("--db", help="database URL (default: SQLite in the data folder)")
    _master_key_file(rotate)
    rotate.set_defaults(handler=run_rotate)

    user = verbs.add_parser("user", help="add, list and remove users (Den admin)")
    user_verbs = user.add_subparsers(dest="user_command", metavar="COMMAND", required=True)
    add = user_verbs.add_parser("add", help="add a user and print their first token")
    add.add_argument("username")
    add.add_argument("--admin", action="store_true", help="make the user a Den admin")
    _client(add)
    add.set_defaults(handler=run_user_add)
    listing = user_verbs.add_parser("list", help="list the users")
    _client(listing)
    listing.set_defaults(handler=run_user_list)
    remove = user_verbs.add_parser("remove", help="remove a user and revoke their tokens")
    remove.add_argument("username")
    _client(remove)
    remove.set_defaults(handler=run_user_remove)

    token = verbs.add_parser("token", help="create, list and revoke your tokens")
    token_verbs = token.add_subparsers(dest="token_command", metavar="COMMAND", required=True)
    create = token_verbs.add_parser("create", help="make a new token and print it")
    create.add_argument("--name", help="a name to recognise it by in `token list`")
    create.add_argument("--expires-in-days", type=int, help="valid for N days (default: always)")
    create.add_argument("--user", help="for another user (Den admin only)")
    _client(create)
    create.set_defaults(handler=run_token_create)
    tokens = token_verbs.add_parser("list", help="list your tokens (prefixes, never tokens)")
    _client(tokens)
    tokens.set_defaults(handler=run_token_list)
    revoke = token_verbs.add_parser("revoke", help="revoke a token by its prefix")
    revoke.add_argument("prefix")
    _client(revoke)
    revoke.set_defaults(handler=run_token_revoke)

    audit = verbs.add_parser("audit", help="read the audit log, newest first (Den admin)")
    audit.add_argument("--user", help="only what this user did")
    audit.add_argument("--since", help="an ISO time (UTC if no zone) or an age: 30m, 1h, 2d, 1w")
    audit.add_argument("--limit", type=int, default=100, help="at most N events (default 100)")
    audit.add_argument("--json", action="store_true", help="print the events as JSON")
    _client(audit)
    audit.set_defaults(handler=run_audit)


def _data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="Den's data folder (default: ~/.rh/den)"
    )


def _master_key_file(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--master-key-file",
        type=Path,
        default=None,
        help="the file (mode 600) holding the master key that seals secrets "
        "(default: DATA_DIR/master_key, made at the first start)",
    )


def _client(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--den-url", help=f"Den's URL (default: den_url setting, {DEFAULT_URL})")
    parser.add_argument("--token", help="your token (default: RH_TOKEN or the token setting)")
    parser.add_argument("--cacert", help="CA file to check an https Den's certificate against")


def _settings(args: argparse.Namespace) -> Any:
    from runhouse.den.settings import DenSettings, default_data_dir

    data_dir = (args.data_dir or default_data_dir()).expanduser().absolute()
    key_file = getattr(args, "master_key_file", None)
    key_file = key_file.expanduser().absolute() if key_file is not None else None
    if not hasattr(args, "host"):
        return DenSettings(
            data_dir=data_dir, db_url=getattr(args, "db", None), master_key_file=key_file
        )
    return DenSettings(
        data_dir=data_dir,
        db_url=args.db,
        host=args.host,
        port=args.port,
        tls=args.tls,
        certfile=args.certfile,
        keyfile=args.keyfile,
        insecure=args.insecure,
        master_key_file=key_file,
    )


def run_start(args: argparse.Namespace) -> int:
    """Start Den (background, or in this process with --foreground)."""
    from runhouse.den import process, server
    from runhouse.den.files import DenFiles

    settings = _settings(args)
    if args.foreground:
        return server.serve(settings, args.ready_fd)
    refusal = server.problem(settings)
    if refusal is not None:
        print(f"runhouse: {refusal}", file=sys.stderr)
        return server.REFUSED
    files = DenFiles(settings.data_dir)
    info = process.running_info(files)
    if info is not None:
        print(f"Den already runs for {files.root} (pid {info.get('pid')}, {info.get('url')}).")
        return 0
    info = process.start(files, _start_argv(settings))
    if info.get("admin_token"):
        print(
            "Den made its admin user 'admin'. Its token, shown only this once (also kept in "
            f"{settings.admin_token_file}, mode 600):\n{info['admin_token']}"
        )
    print(f"Started Den (pid {info['pid']}) on {info['url']}; database {info['database']}")
    print(f"Log: {files.log}")
    return 0


def _start_argv(settings: Any) -> list[str]:
    argv = ["--host", settings.host, "--port", str(settings.port)]
    argv += ["--data-dir", str(settings.data_dir)]
    if settings.db_url:
        argv += ["--db", settings.db_url]
    if settings.tls:
        argv.append("--tls")
    if settings.certfile and settings.keyfile:
        argv += ["--certfile", settings.certfile, "--keyfile", settings.keyfile]
    if settings.insecure:
        argv.append("--insecure")
    if settings.master_key_file is not None:
        argv += ["--master-key-file", str(settings.master_key_file)]
    return argv


def run_stop(args: argparse.Namespace) -> int:
    """Stop the Den serving the data folder."""
    from runhouse.den import process
    from runhouse.den.files import DenFiles

    files = DenFiles(_settings(args).data_dir)
    if process.stop(files):
        print("Stopped Den.")
    else:
        print(f"No Den was serving {files.root}.")
    return 0


def run_status(args: argparse.Namespace) -> int:
    """Print where Den serves; exit 1 if it does not."""
    from runhouse.den import process
    from runhouse.den.files import DenFiles

    files = DenFiles(_settings(args).data_dir)
    info = process.running_info(files)
    if info is None:
        print(f"No Den serves {files.root}. Start one with `runhouse den start`.")
        return 1
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True))
        return 0
    print(
        f"Den  pid {info.get('pid')}  {info.get('url')}  database {info.get('database')}  "
        f"runhouse {info.get('runhouse')}"
    )
    return 0


def run_rotate(args: argparse.Namespace) -> int:
    """Re-wrap every data key with a new master key; exit 1 if some rows could not be."""
    from runhouse.den.rotation import rotate

    settings = _settings(args)
    report = rotate(settings)
    again = " (resumed an interrupted rotation)" if report.resumed else ""
    print(
        f"Re-wrapped {report.rewrapped} data keys with the new master key {report.new_id}"
        f"{again}; {report.total} sealed values in all, their ciphertexts unchanged."
    )
    if not report.finished:
        print(
            f"runhouse: {len(report.skipped)} sealed values could not be re-wrapped (sealed "
            "with another master key, or altered): " + ", ".join(report.skipped[:20]) + ". "
            f"The old master key {report.old_id} stays in {settings.master_key_path} until "
            "they are gone: delete those secrets (or save them again), then run this again.",
            file=sys.stderr,
        )
        return 1
    print(
        f"The new master key replaced the old one ({report.old_id}) in "
        f"{settings.master_key_path}. Backups of the database made before now need the old "
        "key: keep a copy of it with them if you need them. Start Den again."
    )
    return 0


def run_user_add(args: argparse.Namespace) -> int:
    """Add a user; print their token (shown only this once)."""
    answer = _call(args, "POST", "/v1/users", {"username": args.username, "admin": args.admin})
    kind = "Den admin" if args.admin else "user"
    print(f"Added {kind} {answer['username']}. Their token, shown only this once:")
    print(answer["token"])
    return 0


def run_user_list(args: argparse.Namespace) -> int:
    """List the users."""
    answer = _call(args, "GET", "/v1/users")
    rows = [("USERNAME", "ADMIN", "CREATED (UTC)")]
    for user in answer["users"]:
        rows.append((user["username"], "yes" if user["admin"] else "", user["created"]))
    _print_table(rows)
    return 0


def run_user_remove(args: argparse.Namespace) -> int:
    """Remove a user."""
    answer = _call(args, "DELETE", f"/v1/users/{_quote(args.username)}")
    print(f"Removed {args.username}." if answer["deleted"] else f"No user {args.username}.")
    return 0


def run_token_create(args: argparse.Namespace) -> int:
    """Make a token; print it (shown only this once)."""
    body = {"name": args.name, "expires_in_days": args.expires_in_days, "username": args.user}
    answer = _call(args, "POST", "/v1/tokens", body)
    expiry = f", expires {answer['expires_at']}" if answer["expires_at"] else ""
    print(f"Token {answer['prefix']}{expiry}. Shown only this once:")
    print(answer["token"])
    return 0


def run_token_list(args: argparse.Namespace) -> int:
    """List your tokens."""
    answer = _call(args, "GET", "/v1/tokens")
    rows = [("PREFIX", "NAME", "CREATED (UTC)", "EXPIRES", "STATE")]
    for t in answer["tokens"]:
        state = "revoked" if t["revoked"] else "valid"
        rows.append((t["prefix"], t["name"] or "", t["created"], t["expires_at"] or "never", state))
    _print_table(rows)
    return 0


def run_token_revoke(args: argparse.Namespace) -> int:
    """Revoke a token by prefix."""
    _call(args, "DELETE", f"/v1/tokens/{_quote(args.prefix)}")
    print(f"Revoked token {args.prefix}.")
    return 0


def run_audit(args: argparse.Namespace) -> int:
    """Print the audit log's events, newest first."""
    query: dict[str, Any] = {"limit": args.limit}
    if args.user:
        query["user"] = args.user
    if args.since:
        query["since"] = since(args.since)
    answer = _call(args, "GET", "/v1/audit?" + urllib.parse.urlencode(query))
    events = answer["events"]
    if args.json:
        print(json.dumps(events, indent=2))
        return 0
    rows = [("AT (UTC)", "ACTOR", "ACTION", "TARGET", "OUTCOME", "FROM", "DETAIL")]
    for e in events:
        at = datetime.fromisoformat(e["at"]).strftime("%Y-%m-%d %H:%M:%S")
        detail = json.dumps(e["detail"], sort_keys=True, separators=(",", ":"))
        rows.append(
            (
                at,
                e["actor"] or "-",
                e["action"],
                e["target"] or "-",
                e["outcome"],
                e["remote"] or "-",
                detail if detail != "{}" else "",
            )
        )
    _print_table(rows)
    return 0


def since(text: str, now: datetime | None = None) -> str:
    """``--since`` as an ISO time in UTC: an age (``90s``, ``30m``, ``1h``, ``2d``, ``1w``)
    before ``now``, or an ISO time (UTC if it has no zone)."""
    ago = _AGO.match(text.strip())
    if ago:
        delta = timedelta(**{_UNITS[ago.group(2)]: int(ago.group(1))})
        return ((now or datetime.now(timezone.utc)) - delta).isoformat()
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"--since {text!r} is neither an ISO time (2024-06-01T12:00) nor an age "
            "(30m, 1h, 2d, 1w)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.isoformat()


def _quote(part: str) -> str:
    return urllib.parse.quote(part, safe="")


def _call(
    args: argparse.Namespace, method: str, route: str, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    url = (args.den_url or configs.get("den_url") or DEFAULT_URL).rstrip("/")
    token = args.token or configs.get("token")
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url + route, data=data, headers=headers, method=method)
    context = ssl.create_default_context(cafile=args.cacert) if args.cacert else None
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT, context=context) as response:
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as exc:
        raise _error(url, exc) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DenError(
            url,
            0,
            "unreachable",
            f"cannot reach Den ({reason}); is it running (`runhouse den status`), "
            "and is --den-url right?",
        ) from None


def _error(url: str, exc: urllib.error.HTTPError) -> DenError:
    try:
        payload = json.loads(exc.read())
        code, message = str(payload["error"]), str(payload["message"])
    except (ValueError, KeyError, TypeError):
        code, message = "error", f"HTTP {exc.code} {exc.reason}"
    if exc.code == 401:
        return DenAuthError(url, message)
    return DenError(url, exc.code, code, message)


def _print_table(rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
