"""Running one call in a worker: sync code on a thread, coroutines on the worker's loop.

Every call ends with exactly one terminal frame (RESULT, ERROR, END or REJECTED). Results
are serialized here, so an unpicklable result becomes an error for that call only.
"""

from __future__ import annotations

import asyncio
import ctypes
import inspect
import json
import os
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from types import CoroutineType, GeneratorType, TracebackType
from typing import Any, TypeVar

from runhouse.daemon.worker.logcapture import CallOutput, current_output
from runhouse.exceptions import CallCancelledError, ObjectNotFoundError, SerializationError
from runhouse.wire import batch, errors, refs
from runhouse.wire.frames import Kind
from runhouse.wire.serialization import dumps, loads

SendFrame = Callable[[int, Kind, bytes], None]
T = TypeVar("T")


class Cancelled(BaseException):
    """Raised inside a cancelled call's thread (a BaseException: user code should not catch it)."""


class Call:
    """A call in flight: what it runs, where its frames go, and how to stop it.

    Registered as soon as its request is read, so a cancel read next always finds it; the
    target and arguments are filled in once they are resolved. Plain slots, not a
    dataclass: a no-op call is dominated by such per-call costs.
    """

    __slots__ = (
        "_send",
        "args",
        "call_id",
        "cancelled",
        "done",
        "fmt",
        "kwargs",
        "lock",
        "output",
        "request",
        "store",
        "target",
        "task",
        "thread_id",
    )

    def __init__(self, call_id: int, request: dict[str, Any], send: SendFrame) -> None:
        self.call_id = call_id
        self.request = request
        self._send = send
        self.lock = threading.Lock()
        self.thread_id: int | None = None
        self.task: asyncio.Task[Any] | object | None = None  # PENDING_TASK until it exists
        self.done = False
        self.cancelled = False
        self.target: Callable[..., Any] = _unset
        self.args: tuple[Any, ...] = ()
        self.kwargs: dict[str, Any] = {}
        self.fmt: str = request.get("fmt", "pickle")  # "pickle" or "json"
        self.output: CallOutput | None = None
        self.store: Callable[[Any], None] | None = None  # keep the result instead of sending

    @property
    def run_key(self) -> str:
        """The run key the daemon gave this call."""
        return self.request.get("run_key") or str(self.call_id)

    @property
    def what(self) -> str:
        """``key.method``, for messages."""
        return f"{self.request['key']}.{self.request.get('method') or '__call__'}"

    def send(self, kind: Kind, data: bytes) -> None:
        """Send one frame of this call."""
        self._send(self.call_id, kind, data)

    def cancel(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Stop the call: cancel its task, or raise ``Cancelled`` in its thread."""
        with self.lock:
            if self.done:
                return False
            self.cancelled = True  # a call that has not started yet checks this first
            if isinstance(self.task, asyncio.Task):
                loop.call_soon_threadsafe(self.task.cancel)
            elif self.thread_id is not None:
                # Delivered at the thread's next bytecode: a call blocked inside C code
                # stops when that returns.
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(self.thread_id), ctypes.py_object(Cancelled)
                )
            return True

    def start_thread(self) -> bool:
        """Bind the call to this thread; False if it was cancelled before it started."""
        with self.lock:
            self.thread_id = threading.get_ident()
            return not self.cancelled

    def start_task(self, task: asyncio.Task[Any] | None) -> bool:
        """Bind the call to its task; False if it was cancelled before it started."""
        with self.lock:
            self.task = task
            return not self.cancelled

    def finish(self) -> None:
        """Mark the call finished; no cancellation is delivered after this."""
        with self.lock:
            self.done = True

    def cancelled_error(self) -> bytes:
        """The ERROR payload of a call that was cancelled."""
        return encode_error(CallCancelledError(self.run_key), self.fmt)


def _unset(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("the call's target was never resolved")


PENDING_TASK = object()


def decode_args(body: bytes | memoryview, fmt: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The call's positional and keyword arguments from a pickle or JSON body."""
    if fmt == "json":
        try:
            data = json.loads(bytes(body) or b"{}")
        except ValueError as exc:
            raise SerializationError("the request body", None, f"invalid JSON: {exc}") from exc
        except RecursionError:
            # A rejection, not a crash; and no chained RecursionError to carry into the answer.
            raise SerializationError(
                "the request body", None, "JSON nested too deeply to decode"
            ) from None
        if not isinstance(data, dict):
            raise SerializationError(
                "the request body", None, 'expected {"args": [], "kwargs": {}}'
            )
        args, kwargs = data.get("args", []), data.get("kwargs", {})
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise SerializationError(
                "the request body", None, '"args" must be a list, "kwargs" an object'
            )
        return tuple(args), kwargs
    if not len(body):
        return (), {}
    decoded = loads(body, "the call's arguments")
    if not (isinstance(decoded, tuple) and len(decoded) == 2 and isinstance(decoded[1], dict)):
        raise SerializationError("the call's arguments", None, "expected (args, kwargs)")
    return tuple(decoded[0]), decoded[1]


def decode_with_refs(
    body: bytes | memoryview,
    fmt: str,
    fetched: dict[str, bytes | None],
    held: Callable[[str], Any],
    decode: Callable[[bytes | memoryview, str], T] = decode_args,  # type: ignore[assignment]
) -> T:
    """The call's arguments (``decode``: a map's argument sets), each ObjectRef in them
    replaced by its object: one this worker holds (``held(key)``), or one the daemon brought
    from another env's worker (``fetched``, pickled; loaded once however often it appears)."""
    loaded: dict[str, Any] = {}

    def lookup(key: str) -> Any:
        payload = fetched.get(key)
        if payload is None:
            return held(key)
        if key not in loaded:
            loaded[key] = load_value(payload, f"object {key!r}")
        return loaded[key]

    try:
        with refs.resolving(lookup):
            return decode(body, fmt)
    except SerializationError as exc:
        if isinstance(exc.__cause__, ObjectNotFoundError):  # a ref to nothing: say so plainly
            raise exc.__cause__ from None
        raise


def decode_items(
    body: bytes | memoryview, fmt: str = "pickle"
) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """The argument sets of a map: a batch (``wire/batch.py``) of pickled (args, kwargs)."""
    try:
        parts = batch.unpack(body)
    except batch.BatchError as exc:
        raise SerializationError("the map's arguments", None, str(exc)) from None
    items = [loads(part, "the map's arguments") for part in parts]
    if not all(isinstance(i, tuple) and len(i) == 2 and isinstance(i[1], dict) for i in items):
        raise SerializationError("the map's arguments", None, "expected (args, kwargs) items")
    return items


def encode_results(values: list[Any], what: str, return_exceptions: bool) -> bytes:
    """A map's results as a batch, each pickled on its own; with ``return_exceptions`` a
    result that cannot be pickled answers its error in its place."""
    parts = []
    for index, value in enumerate(values):
        try:
            parts.append(dumps(value, f"{what} (item {index})"))
        except SerializationError as exc:
            if not return_exceptions:
                raise
            parts.append(dumps(_packed(exc), "an error"))
    return batch.pack(parts)


def run_map(
    target: Callable[..., Any],
    items: list[tuple[tuple[Any, ...], dict[str, Any]]],
    output: CallOutput | None,
    pool: Executor,
    loop: asyncio.AbstractEventLoop,
    return_exceptions: bool = False,
) -> list[Any]:
    """Run ``target`` once per argument set, concurrently; results in order. With
    ``return_exceptions``, an item that failed answers its error, packed (``errors.Packed``),
    instead of failing the map."""
    if is_async(target):

        async def gather() -> list[Any]:
            current_output.set(output)
            runs = (target(*a, **k) for a, k in items)
            return list(await asyncio.gather(*runs, return_exceptions=return_exceptions))

        values = asyncio.run_coroutine_threadsafe(gather(), loop).result()
        return [_packed(v) if isinstance(v, BaseException) else v for v in values]

    def one(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        token = current_output.set(output)
        try:
            return target(*args, **kwargs)
        finally:
            current_output.reset(token)

    futures = [pool.submit(one, a, k) for a, k in items]
    if not return_exceptions:
        return [f.result() for f in futures]
    return [_packed(f.exception()) if f.exception() else f.result() for f in futures]


def _packed(exc: BaseException | None) -> errors.Packed:
    assert exc is not None
    exc.__traceback__ = _user_frames(exc.__traceback__)
    return errors.Packed(errors.pack(exc))


def encode_value(value: Any, fmt: str, what: str) -> bytes:
    """A result or item as frame payload."""
    if fmt == "json":
        try:
            return json.dumps(value).encode()
        except (TypeError, ValueError) as exc:
            raise SerializationError(what, type(value).__name__, f"not JSON ({exc})") from exc
    return dumps(value, what)


_NONE = dumps(None, "None")


def encode_error(exc: BaseException, fmt: str) -> bytes:
    """An exception as frame payload (packed for Python clients, JSON for curl)."""
    exc.__traceback__ = _user_frames(exc.__traceback__)
    if fmt == "json":
        record = {"type": type(exc).__name__, "message": str(exc)}
        record["traceback"] = errors.format_traceback(exc)
        return json.dumps(record).encode()
    return errors.pack(exc)


def run_sync(call: Call) -> None:
    """Run a sync callable (or generator) on this thread, sending its frames."""
    # Threads start with an empty context and every call resets what it set, so a call
    # without log capture leaves the variable alone.
    token = current_output.set(call.output) if call.output is not None else None
    try:
        if not call.start_thread():
            call.finish()
            return call.send(Kind.ERROR, call.cancelled_error())
        try:
            value = call.target(*call.args, **call.kwargs)
            if isinstance(value, _SPECIAL_RESULTS):
                if isinstance(value, GeneratorType):
                    for item in value:
                        call.send(Kind.ITEM, encode_value(item, call.fmt, _item_of(call)))
                    call.finish()
                    _flush(call)
                    return call.send(Kind.END, b"")
                raise TypeError(f"{call.what} returned a coroutine; declare it `async def`")
            call.finish()
        except Cancelled:
            call.finish()
            _flush(call)
            return call.send(Kind.ERROR, call.cancelled_error())
        _finish(call, value)
    except Cancelled:  # delivered just as the call returned: it still counts as cancelled
        call.finish()
        call.send(Kind.ERROR, call.cancelled_error())
    except BaseException as exc:
        call.finish()
        _flush(call)
        call.send(Kind.ERROR, encode_error(exc, call.fmt))
    finally:
        if token is not None:
            current_output.reset(token)


_SPECIAL_RESULTS = (GeneratorType, CoroutineType)


def _item_of(call: Call) -> str:
    return f"an item of {call.what}"


async def run_async(call: Call) -> None:
    """Run a coroutine function or async generator on the worker's loop."""
    current_output.set(call.output)  # this task's own context
    if not call.start_task(asyncio.current_task()):
        call.finish()
        call.send(Kind.ERROR, call.cancelled_error())
        return
    try:
        if inspect.isasyncgenfunction(call.target):
            async for item in call.target(*call.args, **call.kwargs):
                call.send(Kind.ITEM, encode_value(item, call.fmt, _item_of(call)))
            call.finish()
            _flush(call)
            call.send(Kind.END, b"")
            return
        value = await call.target(*call.args, **call.kwargs)
        call.finish()
        _finish(call, value)
    except asyncio.CancelledError:
        call.finish()
        _flush(call)
        call.send(Kind.ERROR, call.cancelled_error())
    except BaseException as exc:
        call.finish()
        _flush(call)
        call.send(Kind.ERROR, encode_error(exc, call.fmt))


_ASYNC_FLAGS = inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR


def is_async(target: Callable[..., Any]) -> bool:
    """Whether the target runs on the event loop."""
    code = getattr(getattr(target, "__func__", target), "__code__", None)
    if code is not None:  # plain functions and methods: read the flags directly (fast path)
        return bool(code.co_flags & _ASYNC_FLAGS)
    return inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target)


def start_async(call: Call, loop: asyncio.AbstractEventLoop) -> Future[None]:
    """Schedule ``run_async`` on ``loop`` from any thread."""
    return asyncio.run_coroutine_threadsafe(run_async(call), loop)


def _finish(call: Call, value: Any) -> None:
    _flush(call)
    try:
        if call.store is not None:
            call.store(value)
            payload = b""
        elif value is None and call.fmt == "pickle":
            payload = _NONE  # the usual result of a call made for its effect
        else:
            payload = encode_value(value, call.fmt, f"the result of {call.what}")
    except BaseException as exc:
        call.send(Kind.ERROR, encode_error(exc, call.fmt))
        return
    call.send(Kind.RESULT, payload)


def _user_frames(tb: TracebackType | None) -> TracebackType | None:
    # The worker's own frames above the user's code say nothing to the user.
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_WORKER_DIR):
        tb = tb.tb_next
    return tb


_WORKER_DIR = os.path.dirname(os.path.abspath(__file__))


def _flush(call: Call) -> None:
    if call.output is not None:
        call.output.flush()


def load_value(body: bytes | memoryview, what: str) -> Any:
    """An object sent to the worker (put, setattr)."""
    return loads(body, what)
