"""One client per cluster: keep-alive HTTP to its daemon, frames in, errors rebuilt.

The stdlib ``http.client`` is used on purpose: on a loopback round trip it costs a third of
httpx (see docs/testing.md), and a call's overhead is mostly its client.
"""

from __future__ import annotations

import json
import re
import select
import socket
import ssl
import sys
import weakref
from collections import deque
from collections.abc import Iterator
from http.client import HTTPConnection, HTTPException, HTTPResponse, HTTPSConnection
from typing import Any
from urllib.parse import quote, urlencode

from runhouse.exceptions import AuthError, DaemonError, EnvInstallError, ObjectNotFoundError
from runhouse.wire import errors
from runhouse.wire.frames import HEADER, KINDS, Kind
from runhouse.wire.serialization import loads

FRAMES = "application/x-runhouse-frames"
PICKLE = "application/octet-stream"
JSON_TYPE = "application/json"


_PLAIN = re.compile(r"^[A-Za-z0-9_./@\-]*$")


def _query(params: dict[str, str] | None) -> str:
    if not params:
        return ""
    if all(_PLAIN.match(k) and _PLAIN.match(v) for k, v in params.items()):
        return "?" + "&".join(f"{k}={v}" for k, v in params.items())
    return "?" + urlencode(params)


class _OneWrite:
    """Sends a small request's headers and body in one write (mixed into a connection).

    http.client writes them separately; two TCP segments make the daemon wake twice per
    call. ``_send_output`` is private but unchanged from Python 3.10 to 3.13.
    """

    def _send_output(self, message_body: Any = None, encode_chunked: bool = False) -> None:
        if isinstance(message_body, bytes) and len(message_body) <= _ONE_WRITE:
            buffer = self._buffer  # type: ignore[attr-defined]
            buffer.extend((b"", b""))
            request = b"\r\n".join(buffer) + message_body
            del buffer[:]
            self.send(request)  # type: ignore[attr-defined]
            return
        super()._send_output(message_body, encode_chunked)  # type: ignore[misc]


class _Connection(_OneWrite, HTTPConnection):
    """Plain HTTP (loopback, or an SSH tunnel)."""


class _TLSConnection(_OneWrite, HTTPSConnection):
    """HTTPS to an exposed daemon."""


def pinned_context(certificate: str) -> ssl.SSLContext:
    """TLS that trusts exactly the daemon's own certificate (PEM), whatever its hostname."""
    context = ssl.create_default_context(cadata=certificate)
    context.check_hostname = False  # the pinned certificate is the identity, not a name
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # a CA-issued leaf pins as well
    return context


_ONE_WRITE = 1 << 16
_READ_WHOLE = 1 << 16


class DaemonUnreachable(DaemonError):
    """Nothing answered at the daemon's address (it is not running, or not there)."""

    def __init__(self, message: str, before_sending: bool = False) -> None:
        super().__init__(message)
        self.before_sending = before_sending  # the request surely never reached the daemon


class Response:
    """A response whose connection goes back to the pool once it is read to the end."""

    def __init__(self, client: ClusterClient, conn: HTTPConnection, raw: HTTPResponse) -> None:
        self._client = client
        self._conn: HTTPConnection | None = conn
        self.raw = raw
        self.status = raw.status
        self.content_type = raw.getheader("content-type", "")

    def frames(self) -> Iterator[tuple[Kind, bytes]]:
        """Frames as they arrive; the stream ends after a terminal frame."""
        size = HEADER.size
        remaining = self.raw.length  # None for a chunked body: a stream, read frame by frame
        if remaining is not None and remaining <= _READ_WHOLE:
            body = self.raw.read()  # a call answered at once: one read, not three
            offset = 0
            while len(body) - offset >= size:
                kind, length = HEADER.unpack_from(body, offset)
                offset += size + length
                if offset > len(body):
                    break
                yield KINDS[kind], body[offset - length : offset]
        else:
            read = self.raw.read
            while len(head := read(size)) == size:
                kind, length = HEADER.unpack(head)
                yield KINDS[kind], read(length) if length else b""
        self.abandon()
        raise DaemonError("the daemon's response ended in the middle of a call")

    def json(self) -> Any:
        """The whole body as JSON."""
        return json.loads(self.read())

    def read(self) -> bytes:
        """The rest of the body; releases the connection."""
        data = self.raw.read()
        self.release()
        return data

    def release(self) -> None:
        """Finish the response and return the connection for reuse."""
        if self._conn is not None:
            self.raw.read()  # consume the end of a chunked body
            self._client._release(self._conn)
            self._conn = None

    def abandon(self) -> None:
        """Drop a response that will not be read to the end (its connection is closed)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class ClusterClient:
    """Talks to one daemon over pooled keep-alive connections; safe to share across threads."""

    def __init__(
        self,
        host: str,
        port: int,
        token: str | None,
        timeout: float | None = None,
        certificate: str | None = None,
    ):
        self.host = host
        self.port = port
        self.token = token
        self.timeout = timeout
        self.certificate = certificate  # the daemon's TLS certificate (PEM), pinned
        self._tls = pinned_context(certificate) if certificate else None
        self._idle: deque[HTTPConnection] = deque()
        self._auth = f"Bearer {token}" if token else None
        # Idle pooled sockets are closed when the client goes away, not left to the GC.
        weakref.finalize(self, _close_all, self._idle)

    @property
    def base_url(self) -> str:
        """The daemon's URL."""
        return f"{'https' if self._tls else 'http'}://{self.host}:{self.port}"

    def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        content_type: str | None = None,
        params: dict[str, str] | None = None,
    ) -> Response:
        """Send one request; the response body is left to read (or stream)."""
        target = (path if _PLAIN.match(path) else quote(path)) + _query(params)
        conn, reused = self._acquire()
        try:
            raw = self._send(conn, method, target, body, content_type)
        except (ConnectionError, HTTPException, OSError) as exc:
            conn.close()
            if not reused or isinstance(exc, ConnectionRefusedError):
                raise self._unreachable(exc) from exc
            # A pooled connection the daemon closed: try once more on a fresh one.
            conn = self._connect()
            try:
                raw = self._send(conn, method, target, body, content_type)
            except (ConnectionError, HTTPException, OSError) as again:
                conn.close()
                raise self._unreachable(again) from again
        return Response(self, conn, raw)

    def call(
        self, key: str, method: str, payload: bytes, params: dict[str, str], stream_logs: bool
    ) -> Any:
        """Call ``key.method``; prints streamed logs; returns the value (or an item iterator)."""
        response = self.checked(self.request("POST", f"/{key}/{method}", payload, PICKLE, params))
        frames = response.frames()
        for kind, data in frames:
            if kind == Kind.RESULT:
                response.release()
                return loads(data, f"the result of {key}.{method}") if data else None
            if kind == Kind.ITEM:
                return _items(response, frames, data, key)
            _handle_side_frame(response, kind, data, stream_logs)
        raise DaemonError("unreachable")  # frames() raises before ending without a result

    def checked(self, response: Response) -> Response:
        """The response if it succeeded; otherwise the error it carries, raised."""
        if response.status == 200:
            return response
        if response.content_type.startswith(FRAMES):
            for kind, data in response.frames():
                if kind in (Kind.ERROR, Kind.REJECTED):
                    response.release()
                    raise errors.unpack(data)
        body = response.read()
        try:
            error = json.loads(body)["error"]
            error_type, message = error.get("type"), error.get("message", "")
        except (ValueError, KeyError, TypeError, AttributeError):
            error, error_type, message = {}, None, body.decode("utf-8", "replace")[:500]
        if error_type == "ObjectNotFoundError":
            raise ObjectNotFoundError(error.get("key", "?"), error.get("keys", []))
        if error_type == "EnvInstallError":
            raise EnvInstallError(
                error.get("env", "?"),
                error.get("command", "?"),
                error.get("returncode", -1),
                error.get("output", ""),
            )
        if response.status in (401, 403):
            raise AuthError(
                f"The daemon at {self.base_url} refused the request: {message}", response.status
            )
        raise DaemonError(
            f"The daemon at {self.base_url} answered {response.status}: {message}", response.status
        )

    def json(
        self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None
    ) -> Any:
        """A JSON request and its JSON answer."""
        data = json.dumps(body).encode() if body is not None else b""
        return self.checked(self.request(method, path, data, JSON_TYPE, params)).json()

    def value(self, method: str, path: str, what: str) -> Any:
        """A request answered by one frame holding a value."""
        response = self.checked(self.request(method, path))
        for kind, data in response.frames():
            if kind == Kind.RESULT:
                response.release()
                return loads(data, what) if data else None
            if kind in (Kind.ERROR, Kind.REJECTED):
                response.release()
                raise errors.unpack(data)
        raise DaemonError("unreachable")

    def send_object(
        self,
        key: str,
        body: bytes,
        env: str,
        resource: bool,
        path: str | None = None,
        unique: bool = False,
    ) -> dict[str, Any]:
        """Store a serialized object under ``key`` in ``env``'s worker (``path``: add to its
        import path first); answers ``{key, env, moved_from}``: the key it is held under
        (``unique``: a key held in another env is left alone, and this object gets a key of
        its own) and the env it was taken from, if another env held it."""
        params = {"env": env, "resource": "1" if resource else "0"}
        if path is not None:
            params["path"] = str(path)
        if unique:
            params["unique"] = "1"
        response = self.request("PUT", f"/_rh/objects/{key}", body, PICKLE, params)
        answer: dict[str, Any] = self.checked(response).json()
        return answer

    def env_info(self, name: str) -> dict[str, Any] | None:
        """What the daemon knows of env ``name`` (its Python, variables), or None."""
        response = self.request("GET", f"/_rh/envs/{name}")
        if response.status == 404:
            response.read()
            return None
        info: dict[str, Any] = self.checked(response).json()
        return info

    def close(self) -> None:
        """Close pooled connections."""
        _close_all(self._idle)

    def _send(
        self, conn: HTTPConnection, method: str, target: str, body: bytes, content_type: str | None
    ) -> HTTPResponse:
        conn.putrequest(method, target, skip_accept_encoding=True)
        if self._auth:
            conn.putheader("Authorization", self._auth)
        if content_type:
            conn.putheader("Content-Type", content_type)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body or None)
        return conn.getresponse()

    def _connect(self) -> HTTPConnection:
        conn: HTTPConnection
        if self._tls is None:
            conn = _Connection(self.host, self.port, timeout=self.timeout)
        else:
            conn = _TLSConnection(self.host, self.port, timeout=self.timeout, context=self._tls)
        try:
            conn.connect()
        except ssl.SSLCertVerificationError as exc:
            conn.close()
            raise AuthError(
                f"The daemon at {self.base_url} presented a certificate other than the one "
                f"pinned for it ({exc.verify_message}): this is not that daemon, or its "
                "certificate changed. Reconnect through the cluster to pin the new one."
            ) from None
        except OSError as exc:
            raise self._unreachable(exc, before_sending=True) from exc
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def _acquire(self) -> tuple[HTTPConnection, bool]:
        while self._idle:
            try:
                conn = self._idle.pop()
            except IndexError:
                break
            if not _dropped(conn):
                return conn, True
            conn.close()
        return self._connect(), False

    def _release(self, conn: HTTPConnection) -> None:
        self._idle.append(conn)

    def _unreachable(self, exc: BaseException, before_sending: bool = False) -> DaemonUnreachable:
        message = f"Cannot reach the daemon at {self.base_url}: {exc}"
        return DaemonUnreachable(message, before_sending)


def _close_all(idle: deque[HTTPConnection]) -> None:
    while idle:
        idle.pop().close()


def _dropped(conn: HTTPConnection) -> bool:
    # An idle keep-alive socket that is readable has been closed (or broken) by the server.
    sock = conn.sock
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _handle_side_frame(response: Response, kind: Kind, data: bytes, stream_logs: bool) -> None:
    if kind == Kind.STDOUT:
        if stream_logs:
            sys.stdout.write(data.decode("utf-8", "replace"))
            sys.stdout.flush()
    elif kind == Kind.STDERR:
        if stream_logs:
            sys.stderr.write(data.decode("utf-8", "replace"))
            sys.stderr.flush()
    elif kind in (Kind.ERROR, Kind.REJECTED):
        response.release()
        raise errors.unpack(data)
    elif kind == Kind.END:
        response.release()
        raise DaemonError("the daemon ended a non-generator call with END")


def _items(
    response: Response, frames: Iterator[tuple[Kind, bytes]], first: bytes, key: str
) -> Iterator[Any]:
    finished = False
    try:
        yield loads(first, f"an item of {key}")
        for kind, data in frames:
            if kind == Kind.ITEM:
                yield loads(data, f"an item of {key}")
            elif kind == Kind.END or kind == Kind.RESULT:
                finished = True
                response.release()
                return
            else:
                if kind in (Kind.ERROR, Kind.REJECTED):
                    finished = True
                _handle_side_frame(response, kind, data, True)
    finally:
        if not finished:
            response.abandon()  # left early: the rest of the stream cannot be reused
