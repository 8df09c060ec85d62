"""Small ASGI helpers: read a bounded body, send JSON, bytes or a stream of frames."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

FRAMES = b"application/x-runhouse-frames"
_COPY_BELOW = 1 << 16
JSON = b"application/json"


class HTTPError(Exception):
    """An error answered as JSON with a 4xx status (``extra`` adds fields)."""

    def __init__(self, status: int, kind: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """The JSON error body."""
        return {"error": {"type": self.kind, "message": str(self), **self.extra}}


def header(scope: Scope, name: bytes) -> bytes | None:
    """A request header's value (lowercase name; the last one if it was sent twice)."""
    headers = scope.get("rh.headers")
    if headers is None:  # a call reads three headers: index them once
        headers = scope["rh.headers"] = dict(scope["headers"])
    return headers.get(name)


def query(scope: Scope) -> dict[str, str]:
    """The query string as a dict (last value wins)."""
    raw = scope.get("query_string") or b""
    if not raw:
        return {}
    text = raw.decode("latin-1")
    if "%" in text or "+" in text:
        return dict(parse_qsl(text))
    params = {}
    for part in text.split("&"):
        if part:
            name, _, value = part.partition("=")
            params[name] = value
    return params


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole request body; 413 past ``limit`` bytes."""
    declared = header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPError(413, "BodyTooLarge", f"request body over the {limit}-byte limit")
    message = await receive()
    if message["type"] == "http.request" and not message.get("more_body"):
        body: bytes = message.get("body", b"")  # it came whole: the usual small request
        if len(body) > limit:
            raise HTTPError(413, "BodyTooLarge", f"request body over the {limit}-byte limit")
        return body
    chunks: list[bytes] = []
    size = 0
    while True:
        if message["type"] == "http.disconnect":
            raise HTTPError(400, "Disconnected", "client disconnected while sending")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise HTTPError(413, "BodyTooLarge", f"request body over the {limit}-byte limit")
        chunks.append(chunk)
        if not message.get("more_body"):
            break
        message = await receive()
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def send_bytes(send: Send, status: int, content_type: bytes, *parts: bytes) -> None:
    """A complete response from one or more byte strings."""
    length = 0
    for part in parts:
        length += len(part)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", b"%d" % length)],
        }
    )
    for part in parts[:-1]:
        await send({"type": "http.response.body", "body": part, "more_body": True})
    await send({"type": "http.response.body", "body": parts[-1] if parts else b""})


async def send_frame(send: Send, status: int, header: bytes, payload: bytes) -> None:
    """A response holding one frame, written at once when small (one TCP segment)."""
    if len(payload) <= _COPY_BELOW:
        await send_bytes(send, status, FRAMES, header + payload)
    else:
        await send_bytes(send, status, FRAMES, header, payload)


async def send_json(send: Send, status: int, value: Any) -> None:
    """A JSON response."""
    await send_bytes(send, status, JSON, json.dumps(value).encode())


async def start_stream(send: Send, status: int = 200) -> None:
    """Begin a chunked response of frames."""
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", FRAMES)]}
    )


async def stream_part(send: Send, data: bytes, more: bool = True) -> None:
    """Send one piece of a chunked response."""
    await send({"type": "http.response.body", "body": data, "more_body": more})
