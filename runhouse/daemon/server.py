"""Run a daemon in this process: bind, start the base worker, serve until told to stop."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from runhouse import fileio, serving
from runhouse._version import __version__
from runhouse.config import configs
from runhouse.daemon import engines
from runhouse.daemon.app import DEFAULT_MAX_BODY, create_app, instance
from runhouse.daemon.den_auth import DenGate
from runhouse.daemon.envs import EnvBuilder
from runhouse.daemon.layout import DaemonFiles
from runhouse.daemon.state import DaemonState
from runhouse.daemon.tls import certificate
from runhouse.exceptions import ConfigError, DaemonError, EngineError
from runhouse.wire import home
from runhouse.wire.engine import EngineChoice
from runhouse.wire.exposure import Exposure

log = logging.getLogger("runhouse.daemon")
ALREADY_RUNNING = 3
REFUSED = 2
_GRACE = 5  # seconds for responses to finish once workers are stopped (a backstop)
_FOREVER = 10 * 365 * 24 * 3600  # seconds: "no limit" for uvicorn
PROCESSES = EngineChoice()
_SETTINGS = (
    "worker_idle_timeout",
    "connection_idle_timeout",
    "request_head_timeout",
    "max_connections",
    "den_auth_ttl",
)


def serve(
    how: Exposure,
    port: int,
    root: Path,
    ready_fd: int | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    engine: EngineChoice = PROCESSES,
) -> int:
    """Serve until SIGTERM/SIGINT; returns the process exit code."""
    import uvicorn

    from runhouse.daemon import guards

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    problem = how.problem() or engine.problem()
    if problem is not None:
        print(f"runhouse: {problem}", file=sys.stderr)
        return REFUSED
    host = how.host
    files = DaemonFiles(root)
    files.ensure_root()
    lock_fd = fileio.hold_lock(files.lock)  # held until this process exits
    if lock_fd is None:
        info = files.read_info() or {}
        print(
            f"runhouse: a daemon already runs for {root} (pid {info.get('pid')})", file=sys.stderr
        )
        return ALREADY_RUNNING
    token = files.ensure_token() if how.auth else None
    tls: dict[str, Any] = {}
    if how.tls:
        try:
            cert, key = certificate(root / "tls", how.certfile, how.keyfile)
        except DaemonError as exc:
            print(f"runhouse: {exc}", file=sys.stderr)
            return REFUSED
        tls = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    try:
        settings = _settings()
    except ConfigError as exc:
        print(f"runhouse: {exc}", file=sys.stderr)
        return REFUSED
    den = None
    if how.den_url and how.den_resource:
        ttl = settings["den_auth_ttl"]
        try:
            den = DenGate(how.den_url, how.den_resource, ttl, configs.get("den_ca_cert"))
        except ValueError as exc:
            print(f"runhouse: {exc}", file=sys.stderr)
            return REFUSED
    sock = serving.bind(host, port)
    port = sock.getsockname()[1]
    builder = EnvBuilder(root / "envs", root / "support")
    state = DaemonState(
        engines.make(engine, root), token, port, builder, settings["worker_idle_timeout"]
    )
    # Workers inherit these: a cluster object or a folder on this cluster, unpickled in one,
    # reaches this daemon on this machine and reads its own disk.
    home.mark(instance(), str(root))
    limits = guards.Limits(
        head_timeout=settings["request_head_timeout"],
        max_connections=guards.connection_cap(
            settings["max_connections"], guards.raise_file_limit()
        ),
        authorization=f"Bearer {token}".encode() if token else None,
        vouching=den is not None,
    )
    idle = settings["connection_idle_timeout"]
    config = uvicorn.Config(
        create_app(state, max_body, den),
        loop="none",
        http=guards.protocol_class(serving.fastest_http(), limits),
        ws="none",  # no websocket routes: an upgrade must not slip past the guards
        lifespan="off",
        access_log=False,
        log_level="warning",
        proxy_headers=False,
        server_header=False,
        date_header=False,
        timeout_keep_alive=idle if idle > 0 else _FOREVER,
        timeout_graceful_shutdown=_GRACE,
        h11_max_incomplete_event_size=limits.max_head,
        **tls,
    )
    server = serving.server_class()(config)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stopping: list[asyncio.Task[None]] = []

        def on_signal(sig: int) -> None:
            # Workers go first: calls still running fail at once with a "stopped" error, so
            # uvicorn's wait for in-flight responses ends instead of outlasting `stop`.
            stopping.append(loop.create_task(state.stop()))
            server.handle_exit(sig, None)

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal, sig)
        try:
            await state.start()
        except EngineError as exc:  # Ray missing, unreachable, of another version...
            await state.stop()  # a Ray head it started goes too
            print(f"runhouse: {exc}", file=sys.stderr)
            raise SystemExit(REFUSED) from None
        files.write_info(
            {
                "pid": os.getpid(),
                "host": host,
                "port": port,
                "runhouse": __version__,
                "started": time.time(),
                "auth": how.auth,
                "tls_cert": tls.get("ssl_certfile"),
                "den_url": how.den_url,
                "den_resource": how.den_resource,
                "engine": engine.engine,
                # The Ray cluster's GCS "ip:port" other hosts join (None on the process engine).
                "ray_address": getattr(state.engine, "address", None),
            }
        )
        log.info(
            "runhouse daemon %s listening on %s://%s:%d (pid %d)%s",
            __version__,
            "https" if tls else "http",
            host,
            port,
            os.getpid(),
            "" if how.auth else ", without auth",
        )
        if den is not None:
            log.info("den_auth: Den users who may write %s come in too (%s)", den.resource, den.url)
        if ready_fd is not None:
            os.write(ready_fd, f"ready {port}\n".encode())
            os.close(ready_fd)
        try:
            await server.serve(sockets=[sock])
        finally:
            await state.stop()
            if den is not None:
                den.close()
            files.clear_info()
            log.info("runhouse daemon stopped")

    serving.run(main())
    return 0


def _settings() -> dict[str, int]:
    # A value stored in the file with the wrong type would fail later, mid-serve: check now.
    values = {key: configs.get(key) for key in _SETTINGS}
    for key, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"Setting {key!r} takes a whole number, got {value!r}.")
    return values
