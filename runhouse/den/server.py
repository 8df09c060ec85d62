"""Run Den in this process: check the address, open the database, make the first admin,
bind, and serve with uvicorn until SIGINT or SIGTERM.

Files in the data folder: ``den.sqlite`` (the default database), ``admin_token`` (mode
600), ``master_key`` (mode 600: wraps secrets' data keys, unless ``--master-key-file``
names another file), ``den.lock`` (held while a Den serves this folder), ``den.json``
(pid, URL: for ``runhouse den stop|status``), ``tls/`` (a self-signed certificate, with
``--tls``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sys
from typing import Any

from runhouse import fileio, serving
from runhouse._version import __version__
from runhouse.den import files
from runhouse.den.settings import DenSettings
from runhouse.exceptions import DaemonError, DenServerError
from runhouse.wire.exposure import is_loopback

log = logging.getLogger("runhouse.den")
FAILED = 1
REFUSED = 2
ALREADY_RUNNING = 3
_GRACE = 5  # seconds in-flight requests get to finish once told to stop
_KEEP_ALIVE = 30  # seconds an idle client connection stays open


def problem(settings: DenSettings) -> str | None:
    """Why Den must not start with these settings, or None."""
    if bool(settings.certfile) != bool(settings.keyfile):
        return "give both --certfile and --keyfile (or neither, for a self-signed certificate)"
    if settings.certfile and not settings.tls:
        return "--certfile/--keyfile need --tls"
    if not settings.tls and not settings.insecure and not is_loopback(settings.host):
        return (
            f"refusing to serve Den on {settings.host} without TLS: tokens would cross the "
            "network in clear. Add --tls (a self-signed certificate is made for you, or pass "
            "--certfile/--keyfile), or add --insecure if this network is trusted."
        )
    return None


def serve(settings: DenSettings, ready_fd: int | None = None) -> int:
    """Serve until SIGTERM/SIGINT; returns the process exit code. With ``ready_fd`` (a
    background start), the first admin's token goes to that pipe, not to stdout (a log)."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)  # a line per plugin, per start
    refusal = problem(settings)
    if refusal is not None:
        print(f"runhouse: {refusal}", file=sys.stderr)
        return REFUSED
    paths = files.DenFiles(settings.data_dir)
    try:
        paths.ensure_root()
    except OSError as exc:
        print(f"runhouse: cannot use Den's data folder {settings.data_dir}: {exc}", file=sys.stderr)
        return FAILED
    lock_fd = fileio.hold_lock(paths.lock)  # held until this process exits
    if lock_fd is None:
        info = paths.read_info() or {}
        print(
            f"runhouse: a Den already serves {settings.data_dir} (pid {info.get('pid')}, "
            f"{info.get('url')}); stop it with `runhouse den stop`",
            file=sys.stderr,
        )
        return ALREADY_RUNNING
    try:
        return _serve_locked(settings, paths, ready_fd)
    except DenServerError as exc:
        print(f"runhouse: {exc}", file=sys.stderr)
        return FAILED
    finally:
        os.close(lock_fd)


def _serve_locked(settings: DenSettings, paths: files.DenFiles, ready_fd: int | None) -> int:
    import uvicorn

    from runhouse.den.app import create_app
    from runhouse.den.bootstrap import ensure_admin, master_keyring, open_database

    tls: dict[str, Any] = {}
    if settings.tls:
        from runhouse.daemon.tls import certificate

        try:
            cert, key = certificate(paths.root / "tls", settings.certfile, settings.keyfile)
        except DaemonError as exc:
            raise DenServerError(str(exc)) from None
        tls = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    db = open_database(settings)
    try:
        keyring = master_keyring(settings, db)  # before the admin: a missing key stops here
        token = ensure_admin(db, settings)
        try:
            sock = serving.bind(settings.host, settings.port)
        except OSError as exc:
            raise DenServerError(
                f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}; "
                "choose another --port (or stop what uses it)"
            ) from None
        port = sock.getsockname()[1]
        scheme = "https" if tls else "http"
        url = f"{scheme}://{_url_host(settings.host)}:{port}"
        config = uvicorn.Config(
            create_app(settings, db, keyring),
            loop="none",
            http=serving.fastest_http(),
            ws="none",
            lifespan="off",
            access_log=False,
            log_level="warning",
            proxy_headers=False,
            server_header=False,
            date_header=False,
            timeout_keep_alive=_KEEP_ALIVE,
            timeout_graceful_shutdown=_GRACE,
            **tls,
        )
        server = serving.server_class()(config)
        info = {
            "pid": os.getpid(),
            "url": url,
            "host": settings.host,
            "port": port,
            "database": db.describe(),
            "tls_cert": tls.get("ssl_certfile"),
            "runhouse": __version__,
        }
        _announce(settings, info, token, ready_fd)
        serving.run(_main(server, sock, paths, info))
    finally:
        db.close()
    return 0


def _announce(
    settings: DenSettings, info: dict[str, Any], token: str | None, ready_fd: int | None
) -> None:
    if ready_fd is not None:
        os.write(ready_fd, (json.dumps({**info, "admin_token": token}) + "\n").encode())
        os.close(ready_fd)
    elif token is not None:
        print(
            "Den made its admin user 'admin'. Its token, shown only this once (also kept in "
            f"{settings.admin_token_file}, mode 600):\n{token}",
            flush=True,
        )
    print(
        f"Den {__version__} listening on {info['url']} (pid {info['pid']}); "
        f"database {info['database']}",
        flush=True,
    )


async def _main(server: Any, sock: socket.socket, paths: files.DenFiles, info: dict) -> None:
    import anyio.to_thread

    from runhouse.den.db.session import THREADS

    loop = asyncio.get_running_loop()
    # Routes that use the database run in these threads; more of them would only contend
    # for the GIL (with 32 clients saving, 40 threads cost 20% more CPU per save than 16).
    anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.handle_exit, sig, None)
    paths.write_info(info)
    try:
        await server.serve(sockets=[sock])
    finally:
        paths.clear_info()
        log.info("Den stopped")


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::"):
        host = socket.gethostname()
    return f"[{host}]" if ":" in host else host
