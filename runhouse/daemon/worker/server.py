"""The worker's side of its socket to the daemon: read requests, run them, send frames.

One reader thread takes requests off the socket; calls run on a thread pool (sync code) or
on the worker's event loop (coroutines); any thread sends frames, under one lock.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from runhouse.daemon.worker import calls
from runhouse.daemon.worker.logcapture import CallOutput
from runhouse.data import remote_ops
from runhouse.exceptions import ObjectNotFoundError
from runhouse.wire.frames import ROUTED_HEADER, Kind, unpack_request
from runhouse.wire.versions import local_versions

_SMALL = 1 << 16
_INLINE_OPS = frozenset({"keys", "delete", "clear", "cancel", "status", "rename"})
_MAX_THREADS = 512
_ACTIVE_FOR = 1.0  # seconds after a call during which the sentinel checks often
_CHECK_ACTIVE = 0.002
_CHECK_IDLE = 0.05


class WorkerServer:
    """Serves one env's objects and calls over a connected socket.

    Threads take turns as the one reader of the socket; the thread that reads a request runs
    it itself, then reads again, so a call in sequence involves no thread switch at all (on a
    small machine a wake-up costs more than a whole call). A sentinel thread checks now and
    then whether requests wait while every thread is busy, and if so becomes a reader too:
    calls run concurrently when they overlap, and only then are more threads involved.
    Coroutines run on the worker's event loop.
    """

    def __init__(self, sock: socket.socket, env: str) -> None:
        self.env = env
        self.objects: dict[str, Any] = {}
        self._sock = sock
        self._reader = sock.makefile("rb", buffering=_SMALL)
        self._send_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._turns = threading.Condition()
        self._sentinel = False
        self._waiting = 0
        self._last_done = 0.0
        self._closed = threading.Event()
        self._running: dict[int, calls.Call] = {}
        self._pool = ThreadPoolExecutor(max_workers=256, thread_name_prefix="rh-map")
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, name="rh-loop", daemon=True).start()

    def serve_forever(self) -> None:
        """Handle requests until the daemon closes the socket."""
        self._spawn()  # the first reader
        self._spawn()  # and the sentinel
        self._closed.wait()

    def _spawn(self) -> None:
        if threading.active_count() < _MAX_THREADS:
            threading.Thread(target=self._take_turns, name="rh-call", daemon=True).start()

    def _take_turns(self) -> None:
        while not self._closed.is_set():
            if not self._read_lock.acquire(blocking=False):
                self._wait_for_turn()
                continue
            try:
                message = self._read()
            finally:
                self._read_lock.release()
            if message is None:
                self._closed.set()
                with self._turns:
                    self._turns.notify_all()
                return
            try:
                self._process(*message)
            finally:
                self._last_done = time.monotonic()

    def _wait_for_turn(self) -> None:
        with self._turns:
            if self._sentinel:
                self._waiting += 1
                self._turns.wait()  # until a sentinel is needed
                self._waiting -= 1
                return
            self._sentinel = True
            while not self._closed.is_set():
                active = time.monotonic() - self._last_done < _ACTIVE_FOR
                self._turns.wait(_CHECK_ACTIVE if active else _CHECK_IDLE)
                if not self._read_lock.locked():
                    break  # nobody is reading: every thread is busy with a call
            self._sentinel = False
            if self._waiting:
                self._turns.notify()  # one of them becomes the next sentinel
                return
        self._spawn()  # the next sentinel

    def _read(self) -> tuple[int, dict[str, Any], memoryview, calls.Call | None] | None:
        size = ROUTED_HEADER.size
        while True:
            header = self._reader.read(size)
            if len(header) < size:
                return None
            call_id, kind, length = ROUTED_HEADER.unpack(header)
            payload = self._reader.read(length)
            if len(payload) < length:
                return None
            if kind != Kind.REQUEST:
                continue
            request, body = unpack_request(payload)
            if request["op"] in _INLINE_OPS:
                return call_id, request, body, None
            # Registered while still the reader, so a cancel read next always finds it.
            call = self._running[call_id] = calls.Call(call_id, request, self.send)
            return call_id, request, body, call

    def _process(
        self, call_id: int, request: dict[str, Any], body: memoryview, call: calls.Call | None
    ) -> None:
        if call is None:
            self._reply(call_id, self._inline(request))
            return
        try:
            self._handle(call, body)
        finally:
            if call.task is None:
                self._running.pop(call_id, None)  # async calls unregister when their task ends

    def send(self, call_id: int, kind: Kind, payload: bytes = b"") -> None:
        """Send one frame of call ``call_id`` to the daemon (thread-safe)."""
        header = ROUTED_HEADER.pack(call_id, kind, len(payload))
        with self._send_lock:
            if len(payload) < _SMALL:
                self._sock.sendall(header + payload)
            else:
                self._sock.sendall(header)
                self._sock.sendall(payload)

    def _reply(self, call_id: int, value: Any) -> None:
        self.send(call_id, Kind.RESULT, json.dumps(value).encode())

    def _inline(self, request: dict[str, Any]) -> Any:
        op = request["op"]
        if op == "keys":
            return sorted(self.objects)
        if op == "delete":
            return [k for k in request["keys"] if self.objects.pop(k, _MISSING) is not _MISSING]
        if op == "clear":
            count = len(self.objects)
            self.objects.clear()
            return count
        if op == "rename":
            if request["key"] not in self.objects:
                return False
            self.objects[request["to"]] = self.objects.pop(request["key"])
            return True
        if op == "cancel":
            running = self._running.get(request["target"])
            return running.cancel(self._loop) if running else False
        return {
            **local_versions(),
            "pid": os.getpid(),
            "rss_bytes": _rss_bytes(),
            "objects": sorted(self.objects),
            "running_calls": len(self._running),
            "threads": threading.active_count(),
        }

    def _handle(self, call: calls.Call, body: memoryview) -> None:
        request = call.request
        op = request["op"]
        fmt = call.fmt
        try:
            if op == "put":
                path = request.get("path")
                if path and path not in sys.path:
                    sys.path.insert(0, path)  # the user's working dir: code sent by reference
                self.objects[request["key"]] = calls.load_value(body, f"object {request['key']!r}")
                return call.send(Kind.RESULT, b"")
            target = self._object(request["key"])
            if op == "get":
                return call.send(Kind.RESULT, calls.encode_value(target, fmt, repr(request["key"])))
            name = request.get("method") or "__call__"
            if name[0] == "_" and name != "__call__" and fmt == "json":
                # Plain HTTP reaches public names only; the Python client (c.call, m.remote._x,
                # m.fetch("_x")) reaches private ones too, as the original's did.
                raise AttributeError(
                    f"{name!r} is private; over plain HTTP only public names can be used"
                )
            refs = request.get("refs")  # ObjectRefs among the arguments (see wire/refs.py)
            if op == "getattr":
                return call.send(Kind.RESULT, calls.encode_value(getattr(target, name), fmt, name))
            if op == "setattr":
                if refs is None:
                    args, _ = calls.decode_args(body, fmt)
                else:
                    args, _ = calls.decode_with_refs(body, fmt, refs, self._object)
                setattr(target, name, args[0])
                return call.send(Kind.RESULT, b"")
            method = _method(target, name)
            if request.get("attr") and not callable(method):  # GET /counter/count
                return call.send(Kind.RESULT, calls.encode_value(method, fmt, name))
            if op == "map":
                if refs is None:
                    items = calls.decode_items(body)
                else:
                    decode = calls.decode_items
                    items = calls.decode_with_refs(body, fmt, refs, self._object, decode)
                return self._run_map(call, method, items)
            if refs is None:
                call.args, call.kwargs = calls.decode_args(body, fmt)
            else:
                call.args, call.kwargs = calls.decode_with_refs(body, fmt, refs, self._object)
        except Exception as exc:
            return call.send(Kind.REJECTED, calls.encode_error(exc, fmt))
        call.target = method
        if request.get("logs"):
            call.output = CallOutput(call.send)
        store_as = request.get("store_as")
        if store_as:
            call.store = lambda value: self.objects.__setitem__(store_as, value)
        if calls.is_async(method):
            call.task = calls.PENDING_TASK
            future = calls.start_async(call, self._loop)
            future.add_done_callback(lambda _: self._running.pop(call.call_id, None))
            return
        calls.run_sync(call)

    def _run_map(self, call: calls.Call, method: Any, items: list[Any]) -> None:
        output = CallOutput(call.send) if call.request.get("logs") else None
        try:
            collect = bool(call.request.get("return_exceptions"))
            values = calls.run_map(method, items, output, self._pool, self._loop, collect)
            what = f"the results of {call.request['key']}"
            payload = calls.encode_results(values, what, collect)
        except BaseException as exc:
            if output is not None:
                output.flush()
            return call.send(Kind.ERROR, calls.encode_error(exc, "pickle"))
        if output is not None:
            output.flush()
        call.send(Kind.RESULT, payload)

    def _object(self, key: str) -> Any:
        if key == remote_ops.KEY:  # the daemon's built-in: folders' operations on this disk
            return remote_ops.OPS
        try:
            return self.objects[key]
        except KeyError:
            raise ObjectNotFoundError(key, sorted(self.objects)) from None


def _method(target: Any, name: str) -> Any:
    # A function or class is called as itself; anything else by its attribute.
    if name in ("__call__", "call") and (inspect.isroutine(target) or inspect.isclass(target)):
        return target
    return getattr(target, name)


_MISSING = object()


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None
