"""Concurrent saving clients for benchmarks/den.py: worker processes, forked once (before any
server pipe or thread exists), each running jobs the parent sends over a pipe. A job is a
list of clients, one thread each, every client with its own ``DenStore`` (so its own
keep-alive connection) and token, saving new versions of one name until a deadline.

A job goes: every client warms up (a few saves), the worker says ready; once all workers
are, the parent sends the deadline and each worker starts at once; they report their saves,
start and end times (``time.monotonic``, one clock for every process here) and CPU seconds.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import resource
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from runhouse.names.address import Address
from runhouse.names.den import DenStore

Client = tuple[str, tuple[str, ...]]  # a token, and the path it saves to


def _saver(conn: Connection) -> None:
    """A worker process: run each job it is sent (``None`` ends it)."""
    with contextlib.suppress(KeyboardInterrupt, EOFError, BrokenPipeError):
        while (job := conn.recv()) is not None:
            _run_job(conn, job)


def _run_job(conn: Connection, job: dict[str, Any]) -> None:
    """Warm up each client, say ready, wait for the deadline, save until it, report."""
    counts = [0] * len(job["clients"])
    errors: list[str] = []
    go = threading.Event()
    warm = threading.Barrier(len(counts) + 1)
    deadline = [0.0]

    def client(index: int, token: str, parts: tuple[str, ...]) -> None:
        store = DenStore(job["url"], token)
        address = Address("den", parts)
        try:
            for n in range(job["warmup"]):
                store.append(address, {**job["config"], "save": -n}, author="")
            warm.wait()
            go.wait()
            while time.monotonic() < deadline[0]:
                store.append(address, {**job["config"], "save": counts[index]}, author="")
                counts[index] += 1
        except threading.BrokenBarrierError:
            pass  # another client of this job failed: it reports why
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            warm.abort()
            go.set()
        finally:
            store.client().close()

    threads = [
        threading.Thread(target=client, args=(i, token, tuple(parts)), daemon=True)
        for i, (token, parts) in enumerate(job["clients"])
    ]
    for thread in threads:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        warm.wait()
    conn.send({"ready": not errors})
    deadline[0] = conn.recv()
    cpu_before = _own_cpu()
    start = time.monotonic()
    go.set()
    for thread in threads:
        thread.join()
    end = time.monotonic()
    conn.send(
        {
            "saves": sum(counts),
            "warmup": job["warmup"] * len(counts),
            "start": start,
            "end": end,
            "cpu": _own_cpu() - cpu_before,
            "errors": errors,
        }
    )


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return usage.ru_utime + usage.ru_stime


class Savers:
    """``count`` forked worker processes that run saving jobs; stopped by PID on close."""

    def __init__(self, count: int) -> None:
        context = multiprocessing.get_context("fork")
        self.workers: list[tuple[Any, Connection]] = []
        for _ in range(count):
            parent, child = context.Pipe()
            proc = context.Process(target=_saver, args=(child,), daemon=True)
            proc.start()
            child.close()
            self.workers.append((proc, parent))

    def run(
        self,
        url: str,
        groups: list[list[Client]],
        config: dict[str, Any],
        seconds: float,
        warmup: int,
    ) -> dict[str, Any]:
        """Worker ``i`` runs the clients of ``groups[i]``, saving ``config`` to Den at
        ``url`` for ``seconds`` after ``warmup`` saves each; the totals."""
        busy = self.workers[: len(groups)]
        job = {"url": url, "config": config, "warmup": warmup}
        for (_, conn), clients in zip(busy, groups, strict=True):
            conn.send({**job, "clients": clients})
        ready = [conn.recv()["ready"] for _, conn in busy]
        deadline = time.monotonic() + seconds
        for _, conn in busy:
            conn.send(deadline if all(ready) else 0.0)
        reports = [conn.recv() for _, conn in busy]
        errors = [e for r in reports for e in r["errors"]]
        if errors:
            raise RuntimeError(f"{len(errors)} client(s) failed; the first: {errors[0]}")
        return {
            "saves": sum(r["saves"] for r in reports),
            "warmup_saves": sum(r["warmup"] for r in reports),
            "seconds": max(r["end"] for r in reports) - min(r["start"] for r in reports),
            "clients_cpu_s": sum(r["cpu"] for r in reports),
        }

    def close(self) -> None:
        """End every worker: asked first, then by its PID."""
        for _, conn in self.workers:
            with contextlib.suppress(OSError):
                conn.send(None)
        for proc, _ in self.workers:
            proc.join(5)
            if proc.is_alive():
                proc.terminate()  # SIGTERM to its PID
                proc.join(5)
