"""Progress bars for transfers: one line on stderr, redrawn in place (``\\r``) at most every
0.2 s, and only once a transfer has taken a second (a quick one shows nothing).

    >>> with progress.bar("here -> s3://bucket/data") as bar:
    ...     bar.begin(total_bytes)         # when the size is known (resumed: done=...)
    ...     bar.advance(len(part))         # bytes since the last call (any thread), or
    ...     bar.reach(done)                # bytes so far, as rsync counts them

    here -> s3://bucket/data [######--------------]  31%  320.0 MiB/1.0 GiB  98.2 MiB/s  ETA 0:07

A bar draws only when stderr is a terminal, the ``progress`` setting (``RH_PROGRESS``) is
on and the caller did not pass ``progress=False``; otherwise it is silent and only counts
(a cluster's worker uses one to count what it copied). ``forced(stream)`` turns bars on,
into any stream, for tests and benchmarks. Both sides import this module: it imports
nothing of the client.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, TextIO

SHOW_AFTER = 1.0  # seconds before a bar first draws
INTERVAL = 0.2  # seconds between two redraws
WIDTH = 20  # characters of the bar itself
_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
_forced: list[tuple[TextIO, float, float, int]] = []  # forced(): stream, timings, columns


class Stopped(Exception):
    """A transfer's counter was stopped: the transfer ends at its next update."""


class Bar:
    """A transfer's progress: bytes done of a total, drawn to ``stream`` (None: silent)."""

    def __init__(
        self,
        label: str = "",
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        show_after: float = SHOW_AFTER,
        interval: float = INTERVAL,
        columns: int | None = None,
    ) -> None:
        self.label = label
        self.stream = stream
        self.total: int | None = None
        self.done = 0
        self.first = 0  # bytes already there when the transfer began (a resumed one)
        self.stopped = False
        self._clock = clock
        self._interval = interval
        self._started = clock()
        self._next = self._started + show_after  # no drawing before this
        self._shown = 0  # length of the line on screen, 0 while nothing was drawn
        self._columns = columns or (shutil.get_terminal_size().columns if stream else 80)
        self._lock = threading.Lock()

    def begin(self, total: int, done: int = 0) -> None:
        """The transfer's size in bytes, and how much of it was there already."""
        with self._lock:
            self.total, self.done, self.first = total, done, done

    def advance(self, n: int) -> None:
        """``n`` more bytes arrived."""
        with self._lock:
            self.done += n
            self._tick()

    def reach(self, done: int) -> None:
        """``done`` bytes have arrived in all."""
        with self._lock:
            self.done = done
            self._tick()

    def stop(self) -> None:
        """Make the next update raise ``Stopped`` (the one who reads the bar has gone)."""
        self.stopped = True

    def _tick(self) -> None:
        if self.stopped:
            raise Stopped("the transfer was stopped")
        if self.stream is None:
            return
        now = self._clock()
        if now >= self._next:
            self._next = now + self._interval
            self._draw(now, end="")

    def _draw(self, now: float, end: str) -> None:
        assert self.stream is not None
        text = self.text(now)
        pad = " " * max(0, self._shown - len(text))
        self.stream.write(f"\r{text}{pad}{end}")
        self.stream.flush()
        self._shown = len(text)

    def text(self, now: float) -> str:
        """The line for the state at ``now``: label, bar, percent, bytes, rate, ETA."""
        done, total = self.done, self.total
        elapsed = now - self._started
        rate = (done - self.first) / elapsed if elapsed > 0 else 0.0
        if total:
            done = min(done, total)  # never past the total, whatever a tool counted
            share = done / total
            filled = int(share * WIDTH)
            head = f"[{'#' * filled}{'-' * (WIDTH - filled)}] {int(share * 100):3d}%"
            tail = f"{size_text(done)}/{size_text(total)}  {size_text(rate)}/s  "
            if done >= total:
                tail += f"in {duration_text(elapsed)}"
            else:
                tail += f"ETA {duration_text((total - done) / rate if rate > 0 else None)}"
        else:
            head, tail = "", f"{size_text(done)}  {size_text(rate)}/s"
        body = f"{head}  {tail}" if head else tail
        room = self._columns - len(body) - 2
        label = self.label if len(self.label) <= room else "..." + self.label[-(room - 3) :]
        return f"{label}  {body}" if room > 3 else body

    def close(self, failed: bool = False) -> None:
        """Finish the line (if one was drawn): its final state, then a new line."""
        with self._lock:
            if self.stream is not None and self._shown:
                if not failed and self.total is not None:
                    self.done = max(self.done, self.total)
                self._draw(self._clock(), end="\n")
                self._shown = 0

    def __enter__(self) -> Bar:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(failed=kind is not None)


def size_text(n: float) -> str:
    """Bytes for people: ``512 B``, ``1.5 KiB``, ``320.0 MiB``, ``1.0 GiB``."""
    if n < 1024:
        return f"{int(n)} B"
    for unit in _UNITS[1:]:
        n /= 1024
        if n < 1024 or unit == _UNITS[-1]:
            return f"{n:.1f} {unit}"
    raise AssertionError("unreachable")


def duration_text(seconds: float | None) -> str:
    """``m:ss`` (``h:mm:ss`` from an hour on); ``--:--`` when unknown."""
    if seconds is None:
        return "--:--"
    whole = int(seconds + 0.5)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def wanted(requested: bool | None = None, stream: TextIO | None = None) -> bool:
    """Whether a bar draws: not if ``requested`` is False, nor (when it is None) if the
    ``progress`` setting is off, nor when ``stream`` (default stderr) is not a terminal."""
    if requested is False:
        return False
    if requested is None:
        from runhouse.config import configs

        if not configs.get("progress"):
            return False
    stream = stream if stream is not None else sys.stderr
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty())


def bar(label: str, requested: bool | None = None) -> Bar:
    """A bar for a transfer called ``label``: drawn on stderr if ``wanted(requested)``
    (or, unless ``requested`` is False, into the stream ``forced`` gives), else silent."""
    if _forced and requested is not False:
        stream, show_after, interval, columns = _forced[-1]
        return Bar(label, stream, show_after=show_after, interval=interval, columns=columns)
    return Bar(label, sys.stderr if wanted(requested) else None)


@contextmanager
def forced(
    stream: TextIO, show_after: float = 0.0, interval: float = 0.0, columns: int = 200
) -> Iterator[None]:
    """Inside, every bar not refused by its caller draws into ``stream`` whatever it is and
    whatever the settings say, after ``show_after`` seconds, at most every ``interval``,
    in lines of at most ``columns`` (for tests and benchmarks)."""
    entry = (stream, show_after, interval, columns)
    _forced.append(entry)
    try:
        yield
    finally:
        _forced.remove(entry)


def fsspec_callback(progress: Bar, sizes: dict[str, int]) -> Any:
    """An fsspec callback for a batched ``put``/``get`` of files whose source paths and sizes
    are ``sizes``: each file's bytes reach ``progress`` as the library reports them, and a
    file whose library reports none (local disk) counts whole when it is done."""
    from fsspec.callbacks import Callback

    class File(Callback):
        def __init__(self, size: int) -> None:
            super().__init__(size=size)
            self.counted = 0

        def relative_update(self, inc: int = 1) -> None:
            self.absolute_update(self.counted + inc)

        def absolute_update(self, value: int) -> None:
            add = max(0, min(value, self.size) - self.counted)  # a retried part counts once
            if add:
                self.counted += add
                progress.advance(add)

        def set_size(self, size: int) -> None:
            pass  # the size known beforehand is the one counted

        def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
            if kind is None:
                self.absolute_update(self.size)

    class Files(Callback):
        # The library counts files on this one (set_size, relative_update): not bytes.
        def branched(self, path_1: str, path_2: str, **kwargs: Any) -> Callback:
            return File(sizes.get(path_1, 0))

    return Files()
