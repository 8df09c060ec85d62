"""What a daemon knows: its envs and their workers, which env (and replica) holds each key,
and runs.

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
from runhouse.daemon.replicas import Replicas
from runhouse.data import remote_ops
from runhouse.exceptions import EngineError
from runhouse.wire.frames import Kind

log = logging.getLogger("runhouse.daemon")
BASE_ENV = "base"
PROBE_TIMEOUT = 2.0  # seconds a worker has to answer a status probe
_START_TRIES = 3  # rounds of starting an env's missing replicas before giving up
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
    # A map dealt over several replicas: each part's worker and call id (else the one above)
    parts: tuple[tuple[WorkerHandle, int], ...] = ()

    @property
    def targets(self) -> tuple[tuple[WorkerHandle, int], ...]:
        """Each worker running this call, with the call's id there (what a cancel names)."""
        return self.parts or ((self.worker, self.call_id),)

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
        self.pools: dict[str, Replicas] = {}  # env -> its workers, one per replica
        self.key_env: dict[str, str] = {}
        # key -> the replica holding it: every object but functions and classes (which are
        # on every replica of their env)
        self.key_replica: dict[str, int] = {}
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
        workers = [w for pool in self.pools.values() for w in pool.take()]
        self.pools = {}
        await asyncio.gather(*(w.stop() for w in workers), return_exceptions=True)
        await self.engine.stop()

    def set_env(self, spec: EnvSpec) -> bool:
        """Record an env; returns whether it changed (its worker must then restart)."""
        previous = self.envs.get(spec.name)
        self.envs[spec.name] = spec
        return previous is not None and previous != spec

    async def restart_env(self, name: str) -> None:
        """Stop an env's workers so the next request starts them with its current spec."""
        pool = self.pools.pop(name, None)
        if pool is not None:
            log.info("restarting the workers of env %r", name)
            self._forget_objects(name)
            await asyncio.gather(*(w.stop() for w in pool.take()))

    def ready(self, env: str, replica: int | None = None) -> WorkerHandle | None:
        """The worker for a call now, if no worker must start first: replica ``replica``'s,
        or (None) the least busy one."""
        pool = self.pools.get(env)
        if pool is None:
            return None
        return pool.least_busy() if replica is None else pool.at(replica)

    async def worker(self, env: str, replica: int | None = None) -> WorkerHandle:
        """A live worker of ``env`` (replica ``replica``'s, or the least busy), starting the
        env's missing replicas (with their functions re-sent) first."""
        for _ in range(_START_TRIES):  # another replica's death may be noticed meanwhile
            worker = self.ready(env, replica)
            if worker is not None:
                return worker
            await self.replicas(env)
        worker = self.ready(env, replica)
        if worker is None:  # their causes are in the log, from on_death
            raise EngineError(
                self.engine.name,
                f"the workers of env {env!r} keep stopping as they start: see the daemon's log",
            )
        return worker

    async def replicas(self, env: str) -> list[WorkerHandle]:
        """Every replica's live worker of ``env``, starting the missing ones first."""
        lock = self._starting.setdefault(env, asyncio.Lock())
        async with lock:
            spec = self.envs.get(env) or EnvSpec(env)
            pool = self.pools.setdefault(env, Replicas(spec.replicas))
            missing = pool.missing()
            if missing:
                launched = await asyncio.gather(
                    *(self._launch(spec, pool, i) for i in missing), return_exceptions=True
                )
                for outcome in launched:
                    if isinstance(outcome, BaseException):
                        raise outcome  # the replicas that did start stay (and serve)
                self.stopped.pop(env, None)
            return pool.live()

    async def _launch(self, spec: EnvSpec, pool: Replicas, replica: int) -> None:
        env = spec.name
        worker = await self.engine.launch(spec, self._on_death, replica)
        try:
            if self.secrets.get(env):  # before any call: code may read them at import
                await _set_environ(worker, self.secrets[env])
            for key, (blob, path) in self.resources.get(env, {}).items():
                frame = await worker.ask({"op": "put", "key": key, "path": path}, blob)
                if frame.kind != Kind.RESULT:
                    log.warning("could not restore %r in env %r after a restart", key, env)
        except BaseException:
            await worker.stop()  # not left running unrecorded
            raise
        pool.slots[replica] = worker
        where = f" replica {replica}" if len(pool) > 1 else ""
        node = f" on node {worker.node}" if worker.node else ""
        log.info("started worker for env %r%s (pid %s)%s", env, where, worker.pid, node)

    async def add_secrets(self, env: str, variables: dict[str, str]) -> None:
        """Set secret variables in ``env``'s worker now (if it runs) and in every worker the
        env starts later; they live in this process's memory only."""
        async with self._starting.setdefault(env, asyncio.Lock()):  # not while one starts
            self.secrets.setdefault(env, {}).update(variables)
            pool = self.pools.get(env)
            for worker in pool.live() if pool is not None else []:
                await _set_environ(worker, variables)

    async def _stop_idle_workers(self) -> None:
        timeout = self.worker_idle_timeout
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(max(timeout / 4, 0.05), _MAX_SWEEP))
            now = loop.time()
            clocks, idle = {}, []
            for env, pool in self.pools.items():
                since = []
                for worker in pool.live():
                    seen = self._idle_since.get(worker)
                    if seen is None or seen[0] != worker.requests:
                        seen = (worker.requests, now)  # used since the last look: idle from now
                    clocks[worker] = seen
                    since.append(seen[1])
                quiet = bool(since) and now - max(since) >= timeout
                if env != BASE_ENV and quiet and self._restorable(env):
                    idle.append((env, pool))
            self._idle_since = clocks
            outcomes = await asyncio.gather(
                *(self._stop_if_idle(env, pool) for env, pool in idle), return_exceptions=True
            )
            for (env, _), outcome in zip(idle, outcomes, strict=True):
                if isinstance(outcome, Exception):  # one env's trouble must not end the checks
                    log.warning("could not stop the idle workers of env %r: %r", env, outcome)

    def _restorable(self, env: str) -> bool:
        # Everything the daemon knows the worker holds, it can send again after a restart.
        kept = self.resources.get(env, {})
        return all(key in kept for key in self.keys(env))

    async def _stop_if_idle(self, env: str, pool: Replicas) -> None:
        workers = pool.live()
        counts = [w.requests for w in workers]
        frames = await asyncio.gather(*(w.probe(PROBE_TIMEOUT) for w in workers))
        kept = self.resources.get(env, {})
        for worker, count, frame in zip(workers, counts, frames, strict=True):
            if frame is None or frame.kind != Kind.RESULT:
                return  # not answering (or gone): it may be busy; never stop it blind
            report = _json(frame)
            if report.get("running_calls") or any(k not in kept for k in report.get("objects", [])):
                # Busy, or holding what the daemon could not restore: its clock starts over.
                self._idle_since[worker] = (count, asyncio.get_running_loop().time())
                return
        used = any(w.requests != c for w, c in zip(workers, counts, strict=True))
        if used or self.pools.get(env) is not pool:
            return  # used (or replaced) while they answered
        # Removed before any await: a call arriving now starts fresh workers.
        del self.pools[env]
        for worker in workers:
            self._idle_since.pop(worker, None)
        self.stopped[env] = "idle"
        log.info("stopping the idle workers of env %r (pids %s)", env, [w.pid for w in workers])
        await asyncio.gather(*(w.stop() for w in pool.take()))

    def _on_death(self, worker: WorkerHandle, cause: str) -> None:
        name = worker.env.name
        pool = self.pools.get(name)
        replica = pool.index(worker) if pool is not None else None
        if pool is not None and replica is not None:
            pool.slots[replica] = None
            self._forget_objects(name, replica)
        log.warning("worker of env %r (pid %s) died: %s", name, worker.pid, cause)

    def _forget_objects(self, env: str, replica: int | None = None) -> None:
        # What only the stopped workers held (all of the env's, or one replica's) is gone.
        kept = self.resources.get(env, {})
        lost = [
            k
            for k, e in self.key_env.items()
            if e == env and k not in kept and replica in (None, self.key_replica.get(k))
        ]
        for key in lost:
            del self.key_env[key]
            self.key_replica.pop(key, None)

    def remember(
        self, key: str, env: str, blob: tuple[bytes, str | None] | None, replica: int = 0
    ) -> None:
        """Record that ``env`` holds ``key``: on every replica (``blob``, a function or class
        kept to restore it after a crash), or only on replica ``replica`` (an object)."""
        old_env = self.key_env.get(key)
        if old_env is not None and old_env != env:
            self.resources.get(old_env, {}).pop(key, None)
        self.key_env[key] = env
        if blob is not None:
            self.resources.setdefault(env, {})[key] = blob
            self.key_replica.pop(key, None)
        else:
            self.resources.get(env, {}).pop(key, None)
            self.key_replica[key] = replica

    def forget(self, key: str) -> None:
        """Drop ``key`` from the index."""
        env = self.key_env.pop(key, None)
        self.key_replica.pop(key, None)
        if env is not None:
            self.resources.get(env, {}).pop(key, None)

    def holders(self, key: str) -> list[WorkerHandle]:
        """The live workers holding ``key``: its replica's, or (functions and classes) every
        replica's of its env."""
        env = self.key_env.get(key)
        pool = self.pools.get(env) if env is not None else None
        if pool is None:
            return []
        replica = self.key_replica.get(key)
        if replica is None:
            return pool.live()
        worker = pool.at(replica)
        return [worker] if worker is not None else []

    def live_workers(self) -> list[WorkerHandle]:
        """Every live worker of every env."""
        return [w for pool in self.pools.values() for w in pool.live()]

    def keys(self, env: str | None = None) -> list[str]:
        """Every key, or those of one env."""
        return sorted(k for k, e in self.key_env.items() if env is None or e == env)

    async def status(self) -> dict[str, Any]:
        """Daemon, nodes, envs, workers (PID, memory, node, state), objects per env; a worker
        that does not answer within ``PROBE_TIMEOUT`` is reported as not responding."""
        live = [
            (name, i, w)
            for name, pool in self.pools.items()
            for i, w in enumerate(pool.slots)
            if w is not None and w.alive
        ]
        reports, nodes = await asyncio.gather(
            asyncio.gather(*(_worker_report(w) for _, _, w in live)), self._nodes()
        )
        by_id = {node["id"]: node for node in nodes}
        workers: dict[str, list[dict[str, Any]]] = {}
        for (name, replica, worker), report in zip(live, reports, strict=True):
            if report is None:
                continue  # it died meanwhile
            node = by_id.get(worker.node or "")
            where = {"node": worker.node, "node_address": node["address"] if node else None}
            workers.setdefault(name, []).append({**report, "replica": replica, **where})
            if node is not None:
                node["workers"].append(f"{name}/{replica}")
        envs = []
        for name in sorted(set(self.envs) | set(self.pools) | set(self.stopped)):
            own = workers.get(name, [])
            info: dict[str, Any] | None = own[0] if own else None
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
                    "compute": spec.compute,
                    "replicas": spec.replicas,
                    "keys": self.keys(name),
                    "worker": info,
                    "workers": own,
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
                "engine": self.engine.name,
                "ray_address": getattr(self.engine, "address", None),
            },
            "nodes": nodes,
            "envs": envs,
        }

    async def _nodes(self) -> list[dict[str, Any]]:
        try:
            nodes = await asyncio.wait_for(self.engine.nodes(), PROBE_TIMEOUT * 2)
        except Exception as exc:  # status must answer even when the engine cannot
            log.warning("could not list the %s engine's nodes: %r", self.engine.name, exc)
            return []
        return [{**node, "workers": []} for node in nodes]


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
