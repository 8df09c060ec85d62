"""Per-call capture of stdout, stderr and logging, without swapping streams per call.

``sys.stdout`` and ``sys.stderr`` are replaced once, at worker start, by ``RoutedStream``s
that look up the running call in a context variable. Each call's thread (or task) sets that
variable, so two concurrent calls never mix their output. Text is sent line by line as it
is written, so the first line reaches the client while the call still runs.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import TextIO

from runhouse.wire.frames import Kind

Send = Callable[[Kind, bytes], None]


class CallOutput:
    """One call's output: buffered to whole lines, then sent as frames."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._lock = threading.Lock()
        self._partial = {Kind.STDOUT: "", Kind.STDERR: ""}

    def write(self, kind: Kind, text: str) -> None:
        """Add text; every completed line is sent at once."""
        with self._lock:
            pending = self._partial[kind] + text
            cut = pending.rfind("\n") + 1
            self._partial[kind] = pending[cut:]
        if cut:
            self._send(kind, pending[:cut].encode("utf-8", "replace"))

    def flush(self) -> None:
        """Send whatever partial lines remain."""
        with self._lock:
            partial, self._partial = self._partial, {Kind.STDOUT: "", Kind.STDERR: ""}
        for kind, text in partial.items():
            if text:
                self._send(kind, text.encode("utf-8", "replace"))


current_output: ContextVar[CallOutput | None] = ContextVar("rh_call_output", default=None)


class RoutedStream(io.TextIOBase):
    """A ``sys.stdout``/``sys.stderr`` that writes into the running call's output, if any."""

    def __init__(self, real: TextIO, kind: Kind) -> None:
        self._real = real
        self._kind = kind

    def write(self, text: str) -> int:
        """Write to the current call's output, or to the worker's own stream outside calls."""
        output = current_output.get()
        if output is None:
            return self._real.write(text)
        output.write(self._kind, text)
        return len(text)

    def flush(self) -> None:
        """Flush the current call's partial line, or the worker's own stream."""
        output = current_output.get()
        if output is None:
            self._real.flush()
        else:
            output.flush()

    def fileno(self) -> int:
        """The worker's real descriptor (for code that writes to it directly)."""
        return self._real.fileno()

    def isatty(self) -> bool:
        """Never a terminal: output travels to the client."""
        return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        """Always UTF-8."""
        return "utf-8"

    def writable(self) -> bool:
        """Streams are writable."""
        return True


def install() -> None:
    """Route stdout, stderr and logging through the running call; once per worker."""
    sys.stdout = RoutedStream(sys.__stdout__ or sys.stdout, Kind.STDOUT)
    sys.stderr = RoutedStream(sys.__stderr__ or sys.stderr, Kind.STDERR)
    # Like a server, show INFO and up; the handler writes to the routed stderr at emit time.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s | %(name)s | %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
