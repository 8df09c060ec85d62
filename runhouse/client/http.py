"""One client per cluster: keep-alive HTTP to its daemon, frames in, errors rebuilt.

The stdlib ``http.client`` is used on purpose: on a loopback round trip it costs a third of
httpx (see docs/testing.md), and a call's overhead is mostly its client.

A request whose pooled connection broke is sent once more; a call goes again under its run
key and the daemon instance it was meant for, which the daemon refuses if it saw the call,
so no call runs twice. A forked child drops the connections it inherited.
"""

from __future__ import annotations

import json
import os
import re
import socket
import ssl
import time
import weakref
from collections import deque
from collections.abc import Callable
from http.client import HTTPConnection, HTTPException, HTTPResponse
from typing import Any
from urllib.parse import quote, urlencode

from runhouse.client.response import Response, handle_side_frame, items, remaining
from runhouse.client.sent import Restored, Sent, not_found, run_keys
from runhouse.client.transport import Connection, TLSConnection, close_all, dropped, pinned_context
from runhouse.exceptions import (
    AuthError,
    CallInterruptedError,
    CallTimeoutError,
    DaemonError,
    EngineError,
    EnvInstallError,
    ObjectNotFoundError,
    PlacementError,
)
from runhouse.wire import errors
from runhouse.wire.frames import Kind
from runhouse.wire.serialization import loads

FRAMES = "application/x-runhouse-frames"
PICKLE = "application/octet-stream"
JSON_TYPE = "application/json"
Decode = Callable[[bytes, str], Any]  # a result's bytes and what it is -> its value


_PLAIN = re.compile(r"^[A-Za-z0-9_./@\-]*$")


def _query(params: dict[str, str] | None) -> str:
    if not params:
        return ""
    if all(_PLAIN.match(k) and _PLAIN.match(v) for k, v in params.items()):
        return "?" + "&".join(f"{k}={v}" for k, v in params.items())
    return "?" + urlencode(params)


class DaemonUnreachable(DaemonError):
    """Nothing answered at the daemon's address (it is not running, or not there)."""

    def __init__(self, message: str, before_sending: bool = False, address: str = "") -> None:
        super().__init__(message)
        self.before_sending = before_sending  # the request surely never reached the daemon
        self.address = address
        self.daemon = "connection"  # or "died", "restarted": what became of it (connection.py)


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
        self.instance: str | None = None  # the daemon instance last heard from ("": unknown)
        self.sent = Sent()  # what this client sent, to send again to a restarted daemon
        # Idle pooled sockets are closed when the client goes away, not left to the GC.
        weakref.finalize(self, close_all, self._idle)
        _live_clients.add(self)

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
        timeout: float | None = None,
    ) -> Response:
        """Send one request; the response body is left to read (or stream). ``timeout``:
        seconds to wait for the answer to start (``TimeoutError`` past it)."""
        target = (path if _PLAIN.match(path) else quote(path)) + _query(params)
        conn, reused = self._acquire()
        while True:
            try:
                raw = self._send(conn, method, target, body, content_type, timeout)
            except (ConnectionError, HTTPException, OSError) as exc:
                conn.close()
                if timeout is not None and isinstance(exc, TimeoutError):
                    raise
                if not reused or isinstance(exc, ConnectionRefusedError):
                    raise self._unreachable(exc) from exc
            else:
                return Response(self._release, conn, raw)
            # A pooled connection broke: closed while idle (the daemon never saw this request)
            # or during it. A call goes again with its run key and the instance it was meant
            # for, and the daemon refuses it if it saw it (or is another instance): at most once.
            if params is not None and "run_key" in params:
                resent = {**params, "instance": self.instance or "unknown"}
                target = target.partition("?")[0] + _query(resent)
            try:
                conn, reused = self._connect(), False  # a fresh connection is tried only once
            except DaemonUnreachable as again:  # not before sending: the first try may have
                raise self._unreachable(again.__cause__ or again) from again

    def call(
        self,
        key: str,
        method: str,
        payload: bytes,
        params: dict[str, str],
        stream_logs: bool,
        timeout: float | None = None,
        decode: Decode = loads,
    ) -> Any:
        """Call ``key.method`` (``params["run_key"]`` names the call); prints streamed logs;
        returns the value (``decode`` turns a result's bytes into it) or an item iterator.
        Past ``timeout`` seconds it is cancelled."""
        if self.instance is None:
            self.learn_instance()  # once: a call sent again must name the instance it meant
        if "store_as" in params:  # a result kept on the daemon: lost if it restarts
            self.sent.stateful(params["store_as"])
        if timeout is None:
            return self._call(key, method, payload, params, stream_logs, None, decode)

        def expired() -> CallTimeoutError:
            return self._timed_out(f"{key}.{method}", params["run_key"], timeout)

        deadline = time.monotonic() + timeout
        try:
            return self._call(key, method, payload, params, stream_logs, deadline, decode, expired)
        except TimeoutError:
            raise expired() from None

    def _call(
        self,
        key: str,
        method: str,
        payload: bytes,
        params: dict[str, str],
        stream_logs: bool,
        deadline: float | None,
        decode: Decode,
        expired: Callable[[], CallTimeoutError] | None = None,
    ) -> Any:
        response = self._post(f"/{key}/{method}", payload, params, deadline)
        frames = response.frames()
        try:
            for kind, data in frames:
                if kind == Kind.RESULT:
                    response.release()
                    return decode(data, f"the result of {key}.{method}") if data else None
                if kind == Kind.ITEM:
                    return items(response, frames, data, key, deadline, expired)
                handle_side_frame(response, kind, data, stream_logs)
                if deadline is not None:
                    response.wait_until(deadline)
        except TimeoutError:
            response.abandon()
            raise
        raise DaemonError("unreachable")  # frames() raises before ending without a result

    def start(self, key: str, method: str, payload: bytes, params: dict[str, str]) -> str:
        """Start ``key.method`` detached (``params["run_key"]`` names it); its run key."""
        if self.instance is None:
            self.learn_instance()
        self.sent.stateful(params["run_key"])  # its result is kept under the run key
        return str(self._post(f"/{key}/{method}", payload, params, None).json()["run_key"])

    def _post(
        self, path: str, payload: bytes, params: dict[str, str], deadline: float | None
    ) -> Response:
        timeout = None if deadline is None else remaining(deadline)
        try:
            return self.checked(self.request("POST", path, payload, PICKLE, params, timeout))
        except Restored:  # refused before it ran; the daemon now has the code again
            timeout = None if deadline is None else remaining(deadline)
            response = self.request("POST", path, payload, PICKLE, params, timeout)
            return self.checked(response, restore=False)

    def missing(self, key: str) -> ObjectNotFoundError:
        """The error for ``key``, which the daemon lacks: ``ObjectLostError`` if it held it
        before a restart (found out now, sending the code it lost again)."""
        return not_found(self, key, [], restore=True)

    def learn_instance(self) -> str:
        """Ask the daemon for its instance id (new at each start) and remember it."""
        self.instance = str(self.json("GET", "/_rh/health").get("instance") or "")
        return self.instance

    def _timed_out(self, call: str, run_key: str, timeout: float) -> CallTimeoutError:
        try:
            answer = self.json("POST", f"/_rh/cancel/{run_key}")
            cancelled = run_key in answer.get("cancelled", [])
        except DaemonError:  # it finished (and was forgotten), or the daemon is unreachable
            cancelled = False
        return CallTimeoutError(call, timeout, run_key, cancelled)

    def checked(self, response: Response, restore: bool = True) -> Response:
        """The response if it succeeded; otherwise the error it carries, raised. A key this
        client sent and the daemon lacks makes it check whether the daemon restarted (and
        ``restore`` what it had)."""
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
            raise not_found(self, error.get("key", "?"), error.get("keys", []), restore)
        if error_type in _REFUSED_CALLS:  # a call sent again that the daemon would not run
            self.instance = error.get("instance") or self.instance
            raise CallInterruptedError(
                error.get("call", "?"),
                error.get("run_key", "?"),
                _REFUSED_CALLS[error_type],
                self.base_url,
            )
        if error_type == "EnvInstallError":
            raise EnvInstallError(
                error.get("env", "?"),
                error.get("command", "?"),
                error.get("returncode", -1),
                error.get("output", ""),
            )
        if error_type == "EngineError":
            raise EngineError(error.get("engine", "?"), message)
        if error_type == "PlacementError":
            raise PlacementError(
                error.get("env", "?"), error.get("asked", {}), error.get("why", "")
            )
        if response.status in (401, 403):
            raise AuthError(
                f"The daemon at {self.base_url} refused the request: {message}", response.status
            )
        raise DaemonError(
            f"The daemon at {self.base_url} answered {response.status}: {message}", response.status
        )

    def json(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """A JSON request and its JSON answer (``CallTimeoutError`` past ``timeout`` s)."""
        data = json.dumps(body).encode() if body is not None else b""
        try:
            response = self.checked(self.request(method, path, data, JSON_TYPE, params, timeout))
            return response.json()
        except TimeoutError:
            if timeout is None:
                raise
            raise CallTimeoutError(f"{method} {path}", timeout) from None

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
        its own) and the env it was taken from, if another env held it. A ``resource`` (code)
        is kept here, to send again to a restarted daemon."""
        params = {"env": env, "resource": "1" if resource else "0"}
        if path is not None:
            params["path"] = str(path)
        if unique:
            params["unique"] = "1"
        if self.sent.instance is None:  # what is sent from now on lives in this instance
            self.sent.instance = self.learn_instance() if self.instance is None else self.instance
        response = self.request("PUT", f"/_rh/objects/{key}", body, PICKLE, params)
        answer: dict[str, Any] = self.checked(response).json()
        self.sent.sent(str(answer.get("key", key)), body, env, path, resource)
        return answer

    def declare_env(self, name: str, spec: dict[str, Any]) -> Any:
        """Declare env ``name`` (its variables, requirements, setup commands); kept here, to
        declare again to a restarted daemon."""
        if self.sent.instance is None:
            self.sent.instance = self.learn_instance() if self.instance is None else self.instance
        answer = self.json("PUT", f"/_rh/envs/{name}", spec)
        self.sent.envs[name] = spec
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
        close_all(self._idle)

    def _send(
        self,
        conn: HTTPConnection,
        method: str,
        target: str,
        body: bytes,
        content_type: str | None,
        timeout: float | None,
    ) -> HTTPResponse:
        if timeout is not None and conn.sock is not None:
            conn.timeout = timeout  # set back to the client's when it returns to the pool
            conn.sock.settimeout(timeout)
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
            conn = Connection(self.host, self.port, timeout=self.timeout)
        else:
            conn = TLSConnection(self.host, self.port, timeout=self.timeout, context=self._tls)
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
            if not dropped(conn):
                return conn, True
            conn.close()
        return self._connect(), False

    def _release(self, conn: HTTPConnection) -> None:
        if conn.timeout != self.timeout and conn.sock is not None:  # a call's own timeout
            conn.timeout = self.timeout
            conn.sock.settimeout(self.timeout)
        self._idle.append(conn)

    def _unreachable(self, exc: BaseException, before_sending: bool = False) -> DaemonUnreachable:
        message = f"Cannot reach the daemon at {self.base_url}: {exc}"
        return DaemonUnreachable(message, before_sending, self.base_url)


_REFUSED_CALLS = {"DuplicateCall": "connection", "DaemonRestarted": "restarted"}
_live_clients: weakref.WeakSet[ClusterClient] = weakref.WeakSet()


def _drop_inherited_connections() -> None:
    # A forked child shares its parent's sockets, so the two would read each other's answers.
    # Closing the child's copies leaves the parent's connections open; the child opens its
    # own, and makes run keys of its own.
    for client in list(_live_clients):
        close_all(client._idle)
    run_keys.renew()


os.register_at_fork(after_in_child=_drop_inherited_connections)
