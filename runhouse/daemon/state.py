"""What a daemon knows: its envs and their workers, which env holds each key, and runs.

Functions and classes sent with ``.to()`` are kept here as bytes too, so a worker that dies
is replaced by one that has them again; plain objects and module instances die with it.
For the same reason an idle worker is stopped (``worker_idle_timeout``) only if it holds
nothing but such functions and classes; the next call to its env starts it again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from runhouse._version import __version__
from runhouse.daemon.engines.base import Engine, EnvSpec, Frame, WorkerHandle
from runhouse.daemon.envs import EnvBuilder
from runhouse.data import remote_ops
from runhouse.wire.frames import Kind

log = logging.getLogger("runhouse.daemon")
BASE_ENV = "base"
PROBE_TIMEOUT = 2.0  # seconds a worker has to answer a status probe
_MAX_SWEEP = 30.0  # seconds between idle checks, at most


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
    stream: Any = None  # the worker's frames of this call (a cancel answers on it at once)

    @property
    def status(self) -> str:
        """``running``, ``completed`` or ``failed``."""
        if not self.done.is_set():
            return "running"
        return "failed" if self.error else "completed"


class DaemonState:
    """The daemon's memory; every route works through it."""

    def __init__(
        self,
        engine: Engine,
        token: str | None,
        port: int,
        builder: EnvBuilder,
        worker_idle_timeout: float = 0,
    ) -> None:
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
        self.stopped: dict[str, str] = {}  # env -> why its worker was stopped (until restarted)
        # env -> secret variables its workers get at start: memory only, never written, logged
        # or reported (status shows env_vars' names, and these are not among them)
        self.secrets: dict[str, dict[str, str]] = {}
        self.worker_idle_timeout = worker_idle_timeout
        self._starting: dict[str, asyncio.Lock] = {}
        # worker -> (its request count, when that count was first seen): its idle clock
        self._idle_since: dict[WorkerHandle, tuple[int, float]] = {}
        self._reaper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the base env's worker (so the first call does not wait for it) and the
        check that stops idle workers."""
        await self.engine.start()
        await self.worker(BASE_ENV)
        if self.worker_idle_timeout > 0 and self._reaper is None:
            self._reaper = asyncio.get_running_loop().create_task(self._stop_idle_workers())

    async def stop(self) -> None:
        """Stop every worker."""
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        workers, self.workers = list(self.workers.values()), {}
        await asyncio.gather(*(w.stop() for w in workers), return_exceptions=True)
        await self.engine.stop()

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
            if self.secrets.get(env):  # before any call: code may read them at import
                try:
                    await _set_environ(worker, self.secrets[env])
                except BaseException:
                    await worker.stop()  # not left running unrecorded
                    raise
            for key, (blob, path) in self.resources.get(env, {}).items():
                frame = await worker.ask({"op": "put", "key": key, "path": path}, blob)
                if frame.kind != Kind.RESULT:
                    log.warning("could not restore %r in env %r after a restart", key, env)
            self.workers[env] = worker
            self.stopped.pop(env, None)
            log.info("started worker for env %r (pid %s)", env, worker.pid)
            return worker

    async def add_secrets(self, env: str, variables: dict[str, str]) -> None:
        """Set secret variables in ``env``'s worker now (if it runs) and in every worker the
        env starts later; they live in this process's memory only."""
        async with self._starting.setdefault(env, asyncio.Lock()):  # not while one starts
            self.secrets.setdefault(env, {}).update(variables)
            worker = self.workers.get(env)
            if worker is not None and worker.alive:
                await _set_environ(worker, variables)

    async def _stop_idle_workers(self) -> None:
        timeout = self.worker_idle_timeout
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(max(timeout / 4, 0.05), _MAX_SWEEP))
            now = loop.time()
            clocks, idle = {}, []
            for env, worker in self.workers.items():
                seen = self._idle_since.get(worker)
                if seen is None or seen[0] != worker.requests:
                    seen = (worker.requests, now)  # used since the last look: idle from now
                clocks[worker] = seen
                if env != BASE_ENV and now - seen[1] >= timeout and self._restorable(env):
                    idle.append((env, worker))
            self._idle_since = clocks
            outcomes = await asyncio.gather(
                *(self._stop_if_idle(env, w) for env, w in idle), return_exceptions=True
            )
            for (env, _), outcome in zip(idle, outcomes, strict=True):
                if isinstance(outcome, Exception):  # one env's trouble must not end the checks
                    log.warning("could not stop the idle worker of env %r: %r", env, outcome)

    def _restorable(self, env: str) -> bool:
        # Everything the daemon knows the worker holds, it can send again after a restart.
        kept = self.resources.get(env, {})
        return all(key in kept for key in self.keys(env))

    async def _stop_if_idle(self, env: str, worker: WorkerHandle) -> None:
        count = worker.requests
        frame = await worker.probe(PROBE_TIMEOUT)
        if frame is None or frame.kind != Kind.RESULT:
            return  # not answering (or gone): it may be busy; never stop it blind
        report = _json(frame)
        kept = self.resources.get(env, {})
        if report.get("running_calls") or any(k not in kept for k in report.get("objects", [])):
            # Busy, or holding what the daemon could not restore: its idle clock starts over.
            self._idle_since[worker] = (count, asyncio.get_running_loop().time())
            return
        if worker.requests != count or self.workers.get(env) is not worker:
            return  # used (or replaced) while it answered
        # Removed before any await: a call arriving now starts a fresh worker.
        del self.workers[env]
        self._idle_since.pop(worker, None)
        self.stopped[env] = "idle"
        log.info("stopping the idle worker of env %r (pid %s)", env, worker.pid)
        await worker.stop()

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
        """Daemon, envs, workers (PID, memory, state), objects per env; a worker that does
        not answer within ``PROBE_TIMEOUT`` is reported as not responding."""
        live = {name: w for name, w in self.workers.items() if w.alive}
        reports = await asyncio.gather(*(_worker_report(w) for w in live.values()))
        workers = dict(zip(live, reports, strict=True))
        envs = []
        for name in sorted(set(self.envs) | set(self.workers) | set(self.stopped)):
            info = workers.get(name)
            if info is None and name in self.stopped:
                info = {"state": "stopped", "reason": self.stopped[name]}
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


async def _set_environ(worker: WorkerHandle, variables: dict[str, str]) -> None:
    """Have a worker put ``variables`` in its ``os.environ`` (``remote_ops.set_environ``)."""
    request = {"op": "call", "key": remote_ops.KEY, "method": "set_environ", "fmt": "json"}
    body = json.dumps({"args": [variables], "kwargs": {}}).encode()
    frame = await worker.ask(request, body, timeout=PROBE_TIMEOUT * 5)
    if frame.kind != Kind.RESULT:  # its error names no value: set_environ raises none
        raise RuntimeError(f"the worker of env {worker.env.name!r} could not set its secrets")


async def _worker_report(worker: WorkerHandle) -> dict[str, Any] | None:
    frame = await worker.probe(PROBE_TIMEOUT)
    if frame is None:
        return {"pid": worker.pid, "state": "running", "responding": False}
    if frame.kind != Kind.RESULT:
        return None  # it died meanwhile
    return {**_json(frame), "state": "running", "responding": True}


def _json(frame: Frame) -> Any:
    import json

    return json.loads(frame.payload)
