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
    """The first value of a request header (lowercase name)."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def query(scope: Scope) -> dict[str, str]:
    """The query string as a dict (last value wins)."""
    raw = scope.get("query_string") or b""
    if not raw:
        return {}
    text = raw.decode("latin-1")
    if "%" in text or "+" in text:
        return dict(parse_qsl(text))
    return dict(part.partition("=")[::2] for part in text.split("&") if part)


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole request body; 413 past ``limit`` bytes."""
    declared = header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPError(413, "BodyTooLarge", f"request body over the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise HTTPError(400, "Disconnected", "client disconnected while sending")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise HTTPError(413, "BodyTooLarge", f"request body over the {limit}-byte limit")
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def send_bytes(send: Send, status: int, content_type: bytes, *parts: bytes) -> None:
    """A complete response from one or more byte strings."""
    length = sum(len(p) for p in parts)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", b"%d" % length)],
        }
    )
    for i, part in enumerate(parts):
        await send({"type": "http.response.body", "body": part, "more_body": i < len(parts) - 1})
    if not parts:
        await send({"type": "http.response.body", "body": b""})


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
