"""What a daemon knows: its envs and their workers, which env holds each key, and runs.

Functions and classes sent with ``.to()`` are kept here as bytes too, so a worker that dies
is replaced by one that has them again; plain objects and module instances die with it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from runhouse._version import __version__
from runhouse.daemon.engines.base import Engine, EnvSpec, Frame, WorkerHandle
from runhouse.daemon.envs import EnvBuilder
from runhouse.wire.frames import Kind

log = logging.getLogger("runhouse.daemon")
BASE_ENV = "base"


@dataclass
class Run:
    """A call the daemon tracks by run key: running, or finished with its outcome."""

    run_key: str
    key: str
    env: str
    worker: WorkerHandle
    call_id: int
    detached: bool
    done: asyncio.Event = field(default_factory=asyncio.Event)
    error: Frame | None = None  # the ERROR frame if it failed

    @property
    def status(self) -> str:
        """``running``, ``completed`` or ``failed``."""
        if not self.done.is_set():
            return "running"
        return "failed" if self.error else "completed"


class DaemonState:
    """The daemon's memory; every route works through it."""

    def __init__(self, engine: Engine, token: str | None, port: int, builder: EnvBuilder) -> None:
        self.engine = engine
        self.builder = builder
        self.token = token
        self.port = port
        self.started = time.time()
        self.envs: dict[str, EnvSpec] = {BASE_ENV: EnvSpec(BASE_ENV)}
        self.workers: dict[str, WorkerHandle] = {}
        self.key_env: dict[str, str] = {}
        # env -> key -> (pickled callable, import path it needs), sent again after a restart
        self.resources: dict[str, dict[str, tuple[bytes, str | None]]] = {}
        self.runs: dict[str, Run] = {}
        self._starting: dict[str, asyncio.Lock] = {}

    async def start(self) -> None:
        """Start the base env's worker, so the first call does not wait for it."""
        await self.worker(BASE_ENV)

    async def stop(self) -> None:
        """Stop every worker."""
        workers, self.workers = list(self.workers.values()), {}
        await asyncio.gather(*(w.stop() for w in workers), return_exceptions=True)

    def set_env(self, spec: EnvSpec) -> bool:
        """Record an env; returns whether it changed (its worker must then restart)."""
        previous = self.envs.get(spec.name)
        self.envs[spec.name] = spec
        return previous is not None and previous != spec

    async def restart_env(self, name: str) -> None:
        """Stop an env's worker so the next request starts one with its current spec."""
        worker = self.workers.pop(name, None)
        if worker is not None:
            log.info("restarting the worker of env %r: its spec changed", name)
            self._forget_objects(name)
            await worker.stop()

    async def worker(self, env: str) -> WorkerHandle:
        """The env's live worker, started (with its functions re-sent) if needed."""
        worker = self.workers.get(env)
        if worker is not None and worker.alive:
            return worker
        lock = self._starting.setdefault(env, asyncio.Lock())
        async with lock:
            worker = self.workers.get(env)
            if worker is not None and worker.alive:
                return worker
            spec = self.envs.get(env) or EnvSpec(env)
            worker = await self.engine.launch(spec, self._on_death)
            for key, (blob, path) in self.resources.get(env, {}).items():
                frame = await worker.ask({"op": "put", "key": key, "path": path}, blob)
                if frame.kind != Kind.RESULT:
                    log.warning("could not restore %r in env %r after a restart", key, env)
            self.workers[env] = worker
            log.info("started worker for env %r (pid %s)", env, worker.pid)
            return worker

    def _on_death(self, worker: WorkerHandle, cause: str) -> None:
        name = worker.env.name
        if self.workers.get(name) is worker:
            del self.workers[name]
        self._forget_objects(name)
        log.warning("worker of env %r (pid %s) died: %s", name, worker.pid, cause)

    def _forget_objects(self, env: str) -> None:
        kept = self.resources.get(env, {})
        for key in [k for k, e in self.key_env.items() if e == env and k not in kept]:
            del self.key_env[key]

    def remember(self, key: str, env: str, blob: tuple[bytes, str | None] | None) -> None:
        """Record that ``env`` holds ``key`` (and keep ``blob`` to restore it after a crash)."""
        old_env = self.key_env.get(key)
        if old_env is not None and old_env != env:
            self.resources.get(old_env, {}).pop(key, None)
        self.key_env[key] = env
        if blob is not None:
            self.resources.setdefault(env, {})[key] = blob
        else:
            self.resources.get(env, {}).pop(key, None)

    def forget(self, key: str) -> None:
        """Drop ``key`` from the index."""
        env = self.key_env.pop(key, None)
        if env is not None:
            self.resources.get(env, {}).pop(key, None)

    def keys(self, env: str | None = None) -> list[str]:
        """Every key, or those of one env."""
        return sorted(k for k, e in self.key_env.items() if env is None or e == env)

    async def status(self) -> dict[str, Any]:
        """Daemon, envs, workers (PID, memory), objects per env."""
        envs = []
        for name in sorted(set(self.envs) | set(self.workers)):
            worker = self.workers.get(name)
            info: dict[str, Any] | None = None
            if worker is not None and worker.alive:
                frame = await worker.ask({"op": "status"})
                info = _json(frame) if frame.kind == Kind.RESULT else None
            spec = self.envs.get(name, EnvSpec(name))
            envs.append(
                {
                    "name": name,
                    "env_vars": sorted(spec.env_vars),
                    "python": spec.python or sys.executable,
                    "hash": spec.content_hash,
                    "packages": list(spec.packages),
                    "keys": self.keys(name),
                    "worker": info,
                }
            )
        running = sum(1 for r in self.runs.values() if not r.done.is_set())
        return {
            "daemon": {
                "pid": os.getpid(),
                "port": self.port,
                "uptime_seconds": round(time.time() - self.started, 1),
                "runhouse": __version__,
                "python": ".".join(map(str, sys.version_info[:3])),
                "running_calls": running,
            },
            "envs": envs,
        }


def _json(frame: Frame) -> Any:
    import json

    return json.loads(frame.payload)
