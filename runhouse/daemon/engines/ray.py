"""The Ray engine: each env worker is a Ray actor placed by the env's ``compute``.

Calls do not go through Ray's actor methods. Each actor opens a TCP connection back to the
daemon (a listener on the daemon's node, one random nonce per launch as proof) and serves the
same framed protocol as a worker process (``ray_actor.serve``). Ray places and runs the
actor; the daemon holds the result of its lifelong ``serve`` call, which Ray fails with the
cause (killed, node died, out of memory) when the actor ends.

Without an address the daemon starts a Ray head of its own (``ray_head.RayHead``); with one
it joins that running cluster and never stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import os
import secrets
import socket
from pathlib import Path
from typing import Any

from runhouse.exceptions import EngineError, PlacementError

try:
    import ray
except ImportError as missing:  # the registry's hint: this engine is an optional extra
    raise EngineError(
        "ray", "The Ray engine needs Ray on this host: pip install 'runhouse[ray]'"
    ) from missing
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from runhouse import serving
from runhouse.daemon.engines import placement
from runhouse.daemon.engines.base import Engine, EnvSpec, OnDeath, WorkerHandle
from runhouse.daemon.engines.ray_actor import actor_class
from runhouse.daemon.engines.ray_causes import actor_cause, lost_contact
from runhouse.daemon.engines.ray_cluster import actor_state, cluster_nodes, join, write_site
from runhouse.daemon.engines.ray_head import RayHead
from runhouse.daemon.engines.socket_worker import FrameProtocol, SocketWorker

PENDING_TIMEOUT = 60.0  # seconds an actor may wait for resources before its launch fails
HELLO_TIMEOUT = 10.0  # seconds a new connection has to prove which launch it is
DEATH_WAIT = 3.0  # seconds to wait for Ray's word on an actor whose connection closed
KILL_WAIT = 5.0  # seconds to wait for Ray to confirm a killed actor is gone
_HELLO_MAX = 4096
# Passed on to every actor: settings and the daemon's identity (runhouse.wire.home).
_INHERITED = ("RH_", "RUNHOUSE_")


class RayWorker(SocketWorker):
    """An env's worker running as a Ray actor, reached over its TCP connection."""

    def __init__(
        self,
        env: EnvSpec,
        protocol: FrameProtocol,
        on_death: OnDeath,
        actor: Any,
        ended: asyncio.Future[Any],
        about: dict[str, Any],
    ) -> None:
        self._actor = actor  # the handle keeps the actor alive: Ray ends unreferenced actors
        self._ended = ended
        self._about = about
        self._killing: asyncio.Task[None] | None = None
        super().__init__(env, protocol, on_death)
        # Ray may learn first that the actor is gone (a node lost without closing sockets).
        ended.add_done_callback(lambda _: self.disconnect() if self._alive else None)

    @property
    def pid(self) -> int | None:
        """The actor's process id (on its node)."""
        return int(self._about["pid"])

    @property
    def node(self) -> str | None:
        """The Ray node id the actor runs on."""
        return str(self._about["node"])

    @property
    def node_address(self) -> str:
        """The IP address of the actor's node."""
        return str(self._about["address"])

    def where(self) -> str:
        """The actor's node as errors name it."""
        return f"its Ray actor on node {self.node_address} (id {str(self.node)[:8]})"

    async def stop(self) -> None:
        """Kill the actor, then close the connection (in that order, Ray knows the actor
        was stopped on purpose, rather than reporting a worker that exited)."""
        self._alive = False
        await self._end()
        self.disconnect()

    async def _end(self) -> None:
        await _kill(self._actor, self._ended)

    async def _death_cause(self) -> str:
        error: BaseException | None = None
        try:
            await asyncio.wait_for(asyncio.shield(self._ended), DEATH_WAIT)
        except asyncio.TimeoutError:
            pass  # Ray has not heard yet: ask the node
        except Exception as exc:  # Ray's word on how the actor ended
            error = exc
        loop = asyncio.get_running_loop()
        cause = actor_cause(error)
        if cause is None:
            cause = await loop.run_in_executor(None, lost_contact, self.node, error)
        # Never left running unreachable; not awaited, so the calls fail now.
        self._killing = loop.create_task(_kill(self._actor, self._ended))
        return f"{self.where()} {cause}"


class RayEngine(Engine):
    """Runs env workers as Ray actors on a Ray cluster (its own, or one at ``address``)."""

    name = "ray"

    def __init__(
        self, address: str | None, root: Path, pending_timeout: float = PENDING_TIMEOUT
    ) -> None:
        self.address = address  # the GCS "ip:port" other hosts join (known after start)
        self.root = root
        self.pending_timeout = pending_timeout
        self._joins = address is not None
        self._head: RayHead | None = None
        self._listener: socket.socket | None = None
        self._accepting: asyncio.Task[None] | None = None
        self._host = ""  # the daemon node's IP: actors connect back to it
        self._node_id = ""
        self._launches: dict[str, asyncio.Future[tuple[socket.socket, dict[str, Any]]]] = {}
        self._workers: set[RayWorker] = set()
        self._greetings: set[asyncio.Task[None]] = set()
        self._stopping: asyncio.Future[None] | None = None
        self._site = root / "ray" / "site"
        self._actor_class: Any = None  # Ray's wrapper of ray_actor.actor_class(), made once

    async def start(self) -> None:
        """Start a Ray head (without an address) and connect to the cluster as its driver."""
        loop = asyncio.get_running_loop()
        if not self._joins:
            self._head = RayHead.launch(self.root / "ray-head.log")  # on the loop's thread
            try:
                self.address = await loop.run_in_executor(None, self._head.wait_ready)
            except BaseException:
                await loop.run_in_executor(None, self._head.stop)
                raise
            self._head.watch()
        try:
            await loop.run_in_executor(None, join, self.address)
        except BaseException:
            if self._head is not None:
                await loop.run_in_executor(None, self._head.stop)
            raise
        self._host = ray.util.get_node_ip_address()
        self._node_id = ray.get_runtime_context().get_node_id()
        self._listener = serving.bind(self._host, 0)
        self._accepting = loop.create_task(self._accept(self._listener))
        write_site(self._site)

    async def stop(self) -> None:
        """Kill the actors still running, leave the cluster, and stop the head if it is ours
        (once: the daemon may ask again while it is under way)."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop())
        await asyncio.shield(self._stopping)

    async def _stop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._accepting is not None:
            self._accepting.cancel()
            self._accepting = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        workers, self._workers = list(self._workers), set()
        await asyncio.gather(*(w.stop() for w in workers), return_exceptions=True)
        if ray.is_initialized():
            await loop.run_in_executor(None, ray.shutdown)
        if self._head is not None:
            await loop.run_in_executor(None, self._head.stop)
            self._head = None

    async def nodes(self) -> list[dict[str, Any]]:
        """The cluster's alive nodes, their resources and what of them is free now."""
        return await asyncio.get_running_loop().run_in_executor(None, cluster_nodes)

    async def check(self, env: EnvSpec) -> None:
        """Raise ``PlacementError`` if no node of the cluster can ever hold ``env``'s worker."""
        why = placement.problem(env.compute, await self.nodes())
        if why is not None:
            raise PlacementError(env.name, env.compute, why)

    async def launch(self, env: EnvSpec, on_death: OnDeath, replica: int = 0) -> WorkerHandle:
        """Create ``env``'s actor where its compute says, and wait until it connects back
        (``PlacementError`` if no node has the resources free within ``pending_timeout``)."""
        loop = asyncio.get_running_loop()
        options = await self._options(env, replica)
        nonce = secrets.token_hex(16)
        connected: asyncio.Future[tuple[socket.socket, dict[str, Any]]] = loop.create_future()
        self._launches[nonce] = connected
        actor: Any = None
        ended: asyncio.Future[Any] | None = None
        try:
            try:
                actor, future = await loop.run_in_executor(
                    None, self._create, options, nonce, env.name
                )
            except Exception as exc:  # options this Ray refuses
                message = f"Ray refused to create the worker of env {env.name!r}: {exc}"
                raise EngineError("ray", message) from exc
            ended = asyncio.wrap_future(future, loop=loop)
            ended.add_done_callback(_retrieved)
            await asyncio.wait(
                {connected, ended},
                timeout=self.pending_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if not connected.done():
                raise await self._not_started(env, actor, ended)
            sock, about = connected.result()
            if about.get("ray") != ray.__version__:
                sock.close()
                raise EngineError("ray", _version_mismatch(env, about))
            _, protocol = await loop.create_connection(FrameProtocol, sock=sock)
        except BaseException:
            if actor is not None and ended is not None:
                await _kill(actor, ended)  # a launch given up leaves no actor behind
            raise
        finally:
            self._launches.pop(nonce, None)
        worker = RayWorker(env, protocol, self._forget(on_death), actor, ended, about)
        self._workers.add(worker)
        return worker

    async def _not_started(self, env: EnvSpec, actor: Any, ended: asyncio.Future[Any]) -> Exception:
        # Why an actor did not connect back in time: it failed, it runs but cannot reach the
        # daemon, or it waits for resources that are all taken.
        if ended.done():
            error = ended.exception()
            cause = actor_cause(error) or f"ended: {error}"
            return EngineError("ray", f"The worker of env {env.name!r} on Ray {cause}")
        loop = asyncio.get_running_loop()
        state = await loop.run_in_executor(None, actor_state, actor)
        if state == "ALIVE":
            return EngineError(
                "ray",
                f"The worker of env {env.name!r} started on Ray but did not connect back to "
                f"the daemon at {self._host}:{self._port()} within {self.pending_timeout:g} s: "
                "can every node reach this host on that address?",
            )
        nodes = await self.nodes()
        asked = placement.asked_resources(env.compute)
        fits = [n for n in nodes if not placement.short_of(asked, n["available"] or {})]
        if fits and asked:
            return EngineError(
                "ray",
                f"Ray did not start the worker of env {env.name!r} within "
                f"{self.pending_timeout:g} s although {placement.name(fits[0])} has its "
                "resources free (its runtime environment may still be setting up: see the "
                "node's Ray logs)",
            )
        return PlacementError(env.name, env.compute, self._busy(nodes))

    def _forget(self, on_death: OnDeath) -> OnDeath:
        def died(worker: WorkerHandle, cause: str) -> None:
            if isinstance(worker, RayWorker):
                self._workers.discard(worker)
            on_death(worker, cause)

        return died

    async def _options(self, env: EnvSpec, replica: int) -> dict[str, Any]:
        try:
            asked = placement.asked_resources(env.compute)
        except ValueError as exc:
            raise PlacementError(env.name, env.compute, str(exc)) from None
        wants = bool(asked)
        options: dict[str, Any] = {
            "num_cpus": asked.pop("CPU", 0.0),  # none asked: none reserved, as processes
            "max_restarts": 0,
            "max_task_retries": 0,
            "runtime_env": self._runtime_env(env),
        }
        if "GPU" in asked:
            options["num_gpus"] = asked.pop("GPU")
        if "memory" in asked:
            options["memory"] = asked.pop("memory")
        if asked:
            options["resources"] = asked
        pin = env.compute.get(placement.NODE)
        if pin is not None:
            nodes = await self.nodes()
            node = placement.find_node(str(pin), nodes)
            if node is None:
                why = placement.problem(env.compute, nodes) or f"no node is {pin!r}"
                raise PlacementError(env.name, env.compute, why)
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node["id"], soft=False)
        elif env.replicas > 1:
            # Replicas dealt over the nodes that can hold one, in turn: Ray's own "SPREAD"
            # is a hint it often does not follow (two of three on one node, of three free).
            wanted = placement.asked_resources(env.compute)  # all of it (`asked` was used up)
            nodes = [
                n for n in await self.nodes() if not placement.short_of(wanted, n["resources"])
            ]
            if nodes:
                nodes.sort(key=lambda n: (n["id"] != self._node_id, str(n["address"]), n["id"]))
                node = nodes[replica % len(nodes)]
                options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(
                    node["id"], soft=False
                )
        elif not wants:
            # A worker that asks for nothing stays by the daemon (its files, its venvs), as
            # under the process engine. (Ray's soft affinity would move it now and then.)
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(
                self._node_id, soft=False
            )
        return options

    def _runtime_env(self, env: EnvSpec) -> dict[str, Any]:
        variables = {k: v for k, v in os.environ.items() if k.startswith(_INHERITED)}
        variables.update(env.env_vars)
        paths = list(env.pythonpath)
        if env.python is not None:
            paths.append(str(self._site))  # the venv's Python must import the daemon's Ray
        if os.environ.get("PYTHONPATH"):
            paths.append(os.environ["PYTHONPATH"])
        if paths:
            variables["PYTHONPATH"] = os.pathsep.join(paths)
        runtime_env: dict[str, Any] = {"env_vars": variables}
        if env.python is not None:
            runtime_env["py_executable"] = env.python
        return runtime_env

    def _create(self, options: dict[str, Any], nonce: str, env: str) -> tuple[Any, Any]:
        if self._actor_class is None:
            self._actor_class = ray.remote(actor_class())
        actor = self._actor_class.options(**options).remote()
        ref = actor.serve.remote(self._host, self._port(), nonce, env)
        return actor, ref.future()

    def _port(self) -> int:
        assert self._listener is not None, "RayEngine.start() was not awaited"
        return int(self._listener.getsockname()[1])

    def _busy(self, nodes: list[dict[str, Any]]) -> str:
        free = "; ".join(
            f"{placement.name(n)} {placement.describe(n['available'] or {})}" for n in nodes
        )
        return (
            f"no node had it free for {self.pending_timeout:g} s (free now: {free}). Stop "
            "other envs' workers, lower the env's compute, or add nodes"
        )

    async def _accept(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            conn, _ = await loop.sock_accept(listener)
            greeting = loop.create_task(self._greet(conn))
            self._greetings.add(greeting)
            greeting.add_done_callback(self._greetings.discard)

    async def _greet(self, conn: socket.socket) -> None:
        # The first line must carry a pending launch's nonce; anything else is dropped.
        loop = asyncio.get_running_loop()
        try:
            line = await asyncio.wait_for(_read_line(loop, conn), HELLO_TIMEOUT)
            nonce, _, about = line.partition(b" ")
            for key, connected in self._launches.items():
                if hmac.compare_digest(key.encode(), nonce) and not connected.done():
                    connected.set_result((conn, json.loads(about)))
                    return
        except (asyncio.TimeoutError, OSError, ValueError):
            pass
        conn.close()


async def _kill(actor: Any, ended: asyncio.Future[Any]) -> None:
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, ray.kill, actor)
    # Its call ends with Ray's error, as a killed actor's call does (or is still going).
    with contextlib.suppress(Exception):
        await asyncio.wait_for(asyncio.shield(ended), KILL_WAIT)


def _retrieved(future: asyncio.Future[Any]) -> None:
    # Ray fails the actor's call whenever it ends, stopped on purpose too: not worth a warning.
    if not future.cancelled():
        future.exception()


async def _read_line(loop: asyncio.AbstractEventLoop, conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = await loop.sock_recv(conn, _HELLO_MAX - len(data))
        if not chunk or len(data) + len(chunk) >= _HELLO_MAX:
            raise ValueError("no hello")
        data += chunk
    return data[:-1]


def _version_mismatch(env: EnvSpec, about: dict[str, Any]) -> str:
    return (
        f"The worker of env {env.name!r} on node {about.get('address')} runs Ray "
        f"{about.get('ray')}, but the daemon runs Ray {ray.__version__}. Install "
        f"ray=={ray.__version__} in that env (or on that node) so both sides run one version."
    )
