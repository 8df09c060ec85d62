"""One ``map`` dealt over an env's replicas, answered as if one worker had run it.

The items (a batch, ``wire/batch.py``) are split into contiguous shares, one per replica;
each replica runs its share concurrently as any map; their log frames pass through as
they come, and their results are joined back in input order into one RESULT. The first
share to fail ends the map with its error (as a single worker's map would) and the other
shares are cancelled.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from runhouse.daemon.engines.base import Frame, Stream, WorkerHandle
from runhouse.wire import batch, errors
from runhouse.wire.frames import HEADER, TERMINAL, Kind

log = logging.getLogger("runhouse.daemon")
_CANCEL_ANSWER = 10.0  # seconds a worker has to acknowledge a cancel


class MapFanOut:
    """A map's shares in flight on several workers, and the one stream of their frames."""

    def __init__(self, workers: list[WorkerHandle], request: dict[str, Any], body: bytes) -> None:
        shares = batch.split(body, len(workers))
        # As many shares as items when there are fewer items than workers.
        self.parts = [(w, w.open(request, b)) for w, b in zip(workers, shares, strict=False)]
        self.stream = Stream(self.parts[0][1].call_id)
        self._task = asyncio.get_running_loop().create_task(self._merge())

    @property
    def targets(self) -> tuple[tuple[WorkerHandle, int], ...]:
        """Each share's worker and call id there (what a cancel names)."""
        return tuple((worker, stream.call_id) for worker, stream in self.parts)

    async def drain(self) -> None:
        """Wait until every share has been handed to its worker."""
        for worker, _ in self.parts:
            await worker.drain()

    async def _merge(self) -> None:
        loop = asyncio.get_running_loop()
        follows = [loop.create_task(self._follow(stream)) for _, stream in self.parts]
        try:
            for finished in asyncio.as_completed(follows):
                frame = await finished
                if frame.kind != Kind.RESULT:
                    self.stream.put(frame)  # the first failure is the map's
                    await self._cancel_rest(follows)
                    return
            payload = batch.join([f.result().payload for f in follows])
        except batch.BatchError as exc:  # a worker of another version answered its share
            problem = errors.pack(RuntimeError(f"a share of the map came back malformed: {exc}"))
            self.stream.put(Frame(Kind.ERROR, HEADER.pack(Kind.ERROR, len(problem)), problem))
            return
        self.stream.put(Frame(Kind.RESULT, HEADER.pack(Kind.RESULT, len(payload)), payload))

    async def _follow(self, stream: Stream) -> Frame:
        # A share's side frames (logs) go out as they come; its terminal frame is returned.
        while True:
            frame = await stream.next()
            if frame.kind in TERMINAL:
                return frame
            self.stream.put(frame)

    async def _cancel_rest(self, follows: list[asyncio.Task[Frame]]) -> None:
        for (worker, stream), follow in zip(self.parts, follows, strict=True):
            if follow.done():
                continue
            follow.cancel()
            worker.abandon(stream)
            try:
                await worker.ask({"op": "cancel", "target": stream.call_id}, timeout=_CANCEL_ANSWER)
            except Exception as exc:  # a share that cannot be cancelled runs to its end unread
                log.warning("could not cancel a share of a failed map: %r", exc)
