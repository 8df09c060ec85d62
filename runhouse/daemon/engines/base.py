"""The engine interface: launch a worker for an env, send it requests, stream frames back.

    worker = await engine.launch(EnvSpec("base"))
    stream = worker.open({"op": "call", "key": "fn", "logs": True}, body)
    while (frame := await stream.next()).kind not in TERMINAL:
        ...  # frame.data is ready to forward to the client as-is

An implementation writes ``launch`` and a ``WorkerHandle`` with ``open`` (which counts
``requests``), ``stop`` and the properties below, and ``abandon`` if it keeps streams; the
daemon never knows which engine it is talking to.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from runhouse.wire.frames import Kind


@dataclass(frozen=True)
class EnvSpec:
    """What the daemon needs to start an env's worker."""

    name: str
    env_vars: dict[str, str] = field(default_factory=dict)
    python: str | None = None  # None: the daemon's own interpreter
    pythonpath: tuple[str, ...] = ()
    content_hash: str | None = None
    packages: tuple[str, ...] = field(default=(), compare=False)
    # Where its workers run: resources each needs ("CPU", "GPU", "memory" in bytes, custom
    # names) and "node" (a node's id or address) to pin them; engines that place workers
    # honour it, and every engine refuses what no node has (Engine.check).
    compute: dict[str, Any] = field(default_factory=dict)
    replicas: int = 1  # workers of this env; calls and map items are balanced over them


class Frame(NamedTuple):
    """One frame from a worker: its kind and its bytes as the client will read them."""

    kind: Kind
    header: bytes  # kind + length, as encoded by frames.HEADER
    payload: bytes

    @property
    def data(self) -> bytes:
        """Header and payload together (copies the payload: use for small frames)."""
        return self.header + self.payload


class Stream:
    """The frames of one request, in order, as the worker sends them."""

    def __init__(self, call_id: int) -> None:
        self.call_id = call_id
        self._frames: deque[Frame] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def put(self, frame: Frame) -> None:
        """Called by the engine's reader for each frame of this request."""
        self._frames.append(frame)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def next(self) -> Frame:
        """The next frame, waiting for it if needed."""
        while not self._frames:
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
            self._waiter = None
        return self._frames.popleft()


class WorkerHandle(ABC):
    """The daemon's handle on one env's worker."""

    env: EnvSpec
    # Requests sent with open() (an implementation adds 1 in open); the daemon tells idle
    # workers by it. Probes take theirs back: polling status must not keep a worker up.
    requests: int = 0

    @property
    @abstractmethod
    def pid(self) -> int | None:
        """The worker's process id, if it has one."""

    @property
    @abstractmethod
    def alive(self) -> bool:
        """Whether the worker can take requests."""

    @property
    def in_flight(self) -> int:
        """Requests sent and not yet answered (the daemon balances replicas by it)."""
        return 0

    @property
    def node(self) -> str | None:
        """The id of the node the worker runs on (``Engine.nodes()``' ``id``), if known."""
        return None

    @abstractmethod
    def open(self, request: dict[str, Any], body: bytes | memoryview = b"") -> Stream:
        """Send a request; its frames arrive on the returned stream."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop the worker (its in-flight calls fail)."""

    async def drain(self) -> None:
        """Wait until a large request has been handed to the worker (flow control)."""
        return None  # engines whose transport buffers without limit have nothing to wait for

    async def ask(
        self, request: dict[str, Any], body: bytes | memoryview = b"", timeout: float | None = None
    ) -> Frame:
        """Send a request whose answer is a single frame; ``WorkerNotResponding`` past
        ``timeout`` seconds (a hung or stopped worker)."""
        stream = self.open(request, body)
        if timeout is None:
            return await stream.next()
        try:
            return await asyncio.wait_for(stream.next(), timeout)
        except asyncio.TimeoutError:
            self.abandon(stream)
            raise WorkerNotResponding(self.env.name, self.pid, timeout) from None

    async def probe(self, timeout: float) -> Frame | None:
        """The worker's status frame, or None if it does not answer within ``timeout``
        seconds (a hung or stopped worker); not counted in ``requests``."""
        stream = self.open({"op": "status"})
        self.requests -= 1
        try:
            return await asyncio.wait_for(stream.next(), timeout)
        except asyncio.TimeoutError:
            self.abandon(stream)
            return None

    def abandon(self, stream: Stream) -> None:
        """Stop waiting for a request's frames (they are dropped if they come)."""
        return None  # engines that keep nothing per request have nothing to drop


class WorkerNotResponding(Exception):
    """A worker did not answer a request that should take no time."""

    def __init__(self, env: str, pid: int | None, timeout: float) -> None:
        super().__init__(
            f"the worker of env {env!r} (pid {pid}) did not answer within {timeout:g} s: it is "
            "hung or stopped. Cancel its calls with force=True, or restart the daemon."
        )
        self.env = env


OnDeath = Callable[["WorkerHandle", str], None]


class Engine(ABC):
    """Starts workers for envs, on the nodes it knows.

    ``nodes()`` entries: ``{"id", "address", "head", "alive", "resources", "available",
    "load_1m"}``: ``resources``/``available`` map resource names ("CPU", "GPU", "memory" in
    bytes, custom ones) to amounts; ``available`` and ``load_1m`` may be None where the engine
    cannot tell.
    """

    name: str = "engine"

    async def start(self) -> None:
        """Get ready to launch workers (connect to, or start, what the engine runs on)."""
        return None

    async def stop(self) -> None:
        """Release what ``start`` took (after every worker was stopped)."""
        return None

    async def nodes(self) -> list[dict[str, Any]]:
        """The nodes workers can run on, with their resources and load."""
        return []

    async def check(self, env: EnvSpec) -> None:
        """Raise ``PlacementError`` if no node can ever hold one of ``env``'s workers."""
        return None

    @abstractmethod
    async def launch(self, env: EnvSpec, on_death: OnDeath, replica: int = 0) -> WorkerHandle:
        """Start replica ``replica``'s worker for ``env``; ``on_death(worker, cause)`` runs
        if it dies."""
