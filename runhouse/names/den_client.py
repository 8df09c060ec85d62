"""HTTP to Den, the metadata server: keep-alive connections, the token, and its errors.

    >>> client = DenClient("http://127.0.0.1:8900", token="rhd_...")
    >>> client.request("GET", "/v1/whoami").body
    {'username': 'ana', 'admin': False, 'groups': []}

The stdlib ``http.client`` keeps this side light (no client library to install) and fast on
keep-alive. Each thread has its own connection. Connecting waits ``CONNECT_TIMEOUT`` seconds
and an answer ``READ_TIMEOUT``, so an unreachable Den fails fast with ``StoreUnavailableError``
naming its URL. Error bodies (``{"error": CODE, "message": TEXT}``) become ``DenAuthError``
(401), ``PermissionDeniedError`` (403) or ``DenError``; a caller that knows better (a 404 on a
resource means ``ResourceNotFoundError``) lists the statuses it handles in ``accept``.
"""

from __future__ import annotations

import json
import os
import select
import ssl
import threading
import weakref
from collections.abc import Collection
from dataclasses import dataclass, field
from http.client import HTTPConnection, HTTPException, HTTPSConnection
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from runhouse._version import __version__
from runhouse.exceptions import (
    ConfigError,
    DenAuthError,
    DenError,
    PermissionDeniedError,
    StoreUnavailableError,
)

CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 30.0
# Methods whose second sending changes nothing, so a broken keep-alive connection may be
# retried once. A resource PUT appends a version: sent twice, it would save twice.
_IDEMPOTENT = frozenset({"GET", "DELETE"})


@dataclass(frozen=True)
class Reply:
    """A Den answer: its status and JSON body."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)


class DenClient:
    """Requests to one Den as one token's user; safe to share across threads."""

    def __init__(self, url: str, token: str | None, ca_cert: str | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"den_url {url!r} is not an http(s) URL; set one such as http://127.0.0.1:8900 "
                "(`runhouse login --den-url URL`)."
            )
        self.url = url.rstrip("/")
        self.token = token
        self.ca_cert = ca_cert
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._prefix = parts.path.rstrip("/")  # Den behind a proxy under a path
        self._tls = _tls_context(ca_cert) if self._https else None
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._conns: dict[int, HTTPConnection] = {}  # by thread id
        weakref.finalize(self, _close_all, self._conns)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        accept: Collection[int] = (),
        what: str = "",
    ) -> Reply:
        """Send one request; 2xx and statuses in ``accept`` come back, other errors raise.
        ``what`` (an address) names the target in errors."""
        # Encode first: a value that is not JSON fails here, before anything is sent.
        payload = None if body is None else json.dumps(body, allow_nan=False).encode()
        target = self._prefix + quote(path, safe="/")
        if params:
            target += "?" + urlencode({k: v for k, v in params.items() if v is not None})
        headers = {"Accept": "application/json", "User-Agent": f"runhouse/{__version__}"}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        status, raw = self._exchange(method, target, payload, headers, what)
        reply = Reply(status, _parse(raw))
        if 200 <= status < 300 or status in accept:
            return reply
        raise self._error(status, reply.body, raw, what)

    def close(self) -> None:
        """Close every connection this client holds."""
        with self._lock:
            _close_all(self._conns)

    def _exchange(
        self, method: str, target: str, payload: bytes | None, headers: dict[str, str], what: str
    ) -> tuple[int, bytes]:
        conn, reused = self._connection(what)
        while True:
            try:
                conn.request(method, target, body=payload, headers=headers)
                response = conn.getresponse()
                return response.status, response.read()
            except TimeoutError as exc:
                conn.close()
                raise self._unreachable(
                    what, f"it did not answer within {READ_TIMEOUT:g} s ({method} {target})"
                ) from exc
            except (OSError, HTTPException) as exc:
                conn.close()
                if not (reused and method in _IDEMPOTENT):
                    raise self._unreachable(what, _reason(exc)) from exc
                conn, reused = self._connection(what)

    def _connection(self, what: str) -> tuple[HTTPConnection, bool]:
        """This thread's connection, opened (or reopened) as needed; whether it was reused."""
        with self._lock:
            if os.getpid() != self._pid:  # a forked child must not share its parent's sockets
                _close_all(self._conns)
                self._pid = os.getpid()
            conn = self._conns.get(threading.get_ident())
        if conn is not None and conn.sock is not None and not _stale(conn):
            return conn, True
        if conn is None:
            conn = (
                HTTPSConnection(self._host, self._port, timeout=CONNECT_TIMEOUT, context=self._tls)
                if self._https
                else HTTPConnection(self._host, self._port, timeout=CONNECT_TIMEOUT)
            )
            with self._lock:
                self._conns[threading.get_ident()] = conn
        conn.close()
        try:
            conn.connect()
        except ssl.SSLCertVerificationError as exc:
            conn.close()
            raise StoreUnavailableError(
                what or self.url,
                f"Den at {self.url} has a TLS certificate this client does not trust "
                f"({exc.verify_message}). If Den uses a certificate of its own, point the "
                "den_ca_cert setting at it: `runhouse config set den_ca_cert PATH`.",
            ) from exc
        except (OSError, HTTPException) as exc:
            conn.close()
            raise self._unreachable(what, _reason(exc)) from exc
        assert conn.sock is not None
        conn.sock.settimeout(READ_TIMEOUT)  # the connect timeout was short on purpose
        return conn, False

    def _unreachable(self, what: str, reason: str) -> StoreUnavailableError:
        return StoreUnavailableError(
            what or self.url,
            f"Den at {self.url} is not reachable: {reason}. Check that Den runs there "
            "(`runhouse den status` on its host) and that den_url is right "
            "(`runhouse config get den_url`); names under ~/ keep working without Den.",
        )

    def _error(self, status: int, body: dict[str, Any], raw: bytes, what: str) -> Exception:
        message = str(body.get("message") or raw[:300].decode(errors="replace").strip())
        code = str(body.get("error") or f"http_{status}")
        if status == 401:
            return DenAuthError(self.url, message)
        if status == 403:
            return PermissionDeniedError(what or self.url, message)
        if status >= 500:
            message += " (an error inside Den: its log says more)"
        return DenError(self.url, status, code, message)


def _tls_context(ca_cert: str | None) -> ssl.SSLContext:
    """Verification as usual, trusting ``ca_cert`` (a PEM file) if given."""
    try:
        return ssl.create_default_context(cafile=os.path.expanduser(ca_cert) if ca_cert else None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"den_ca_cert {ca_cert!r} cannot be used as Den's certificate: {exc}; point it at "
            "Den's PEM certificate (`runhouse config set den_ca_cert PATH`) or unset it.",
            ca_cert,
        ) from exc


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {"value": data}


def _stale(conn: HTTPConnection) -> bool:
    """Whether an idle keep-alive connection was closed by Den (readable means EOF, since
    nothing is due): checked before reuse, so that a request is not sent into a dead one."""
    assert conn.sock is not None
    try:
        readable, _, _ = select.select([conn.sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return f"no connection within {CONNECT_TIMEOUT:g} s"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _close_all(conns: dict[int, HTTPConnection]) -> None:
    for conn in conns.values():
        conn.close()
    conns.clear()
