"""An env's workers, one per replica (``rh.env(replicas=N)``), and which one takes a call.

Functions and classes sent with ``.to()`` live on every replica; an object (a module
instance, a value put or kept under a run's name) lives on the one it was made on, and
calls on it go there. Calls on the rest go to the replica with the fewest requests in flight.
"""

from __future__ import annotations

from runhouse.daemon.engines.base import WorkerHandle


class Replicas:
    """The worker slots of one env: a slot is empty until its worker starts (or after it
    died or was stopped)."""

    def __init__(self, count: int) -> None:
        self.slots: list[WorkerHandle | None] = [None] * max(1, count)

    def __len__(self) -> int:
        return len(self.slots)

    @property
    def complete(self) -> bool:
        """Whether every replica has a live worker."""
        return all(w is not None and w.alive for w in self.slots)

    def live(self) -> list[WorkerHandle]:
        """The replicas' live workers, in replica order."""
        return [w for w in self.slots if w is not None and w.alive]

    def missing(self) -> list[int]:
        """The replicas without a live worker."""
        return [i for i, w in enumerate(self.slots) if w is None or not w.alive]

    def at(self, replica: int) -> WorkerHandle | None:
        """Replica ``replica``'s worker, if it is live."""
        worker = self.slots[replica] if replica < len(self.slots) else None
        return worker if worker is not None and worker.alive else None

    def least_busy(self) -> WorkerHandle | None:
        """The live worker with the fewest requests in flight (the first on a tie), if
        every replica is live (else None: the caller starts the missing ones first)."""
        slots = self.slots
        if len(slots) == 1:  # the usual case, as cheap as the dict lookup it replaces
            only = slots[0]
            return only if only is not None and only.alive else None
        best: WorkerHandle | None = None
        for worker in slots:
            if worker is None or not worker.alive:
                return None
            if best is None or worker.in_flight < best.in_flight:
                best = worker
        return best

    def index(self, worker: WorkerHandle) -> int | None:
        """The replica ``worker`` serves, if it is one of these."""
        for i, w in enumerate(self.slots):
            if w is worker:
                return i
        return None

    def take(self) -> list[WorkerHandle]:
        """Empty every slot; returns the workers that were in them."""
        workers = [w for w in self.slots if w is not None]
        self.slots = [None] * len(self.slots)
        return workers
