"""The connections a client pools: plain HTTP or pinned TLS, a small request in one write.

>>> conn = Connection("127.0.0.1", 32300)
>>> conn = TLSConnection(host, port, context=pinned_context(pem))
"""

from __future__ import annotations

import select
import ssl
from collections import deque
from http.client import HTTPConnection, HTTPSConnection
from typing import Any

_ONE_WRITE = 1 << 16


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


class Connection(_OneWrite, HTTPConnection):
    """Plain HTTP (loopback, or an SSH tunnel)."""


class TLSConnection(_OneWrite, HTTPSConnection):
    """HTTPS to an exposed daemon."""


def pinned_context(certificate: str) -> ssl.SSLContext:
    """TLS that trusts exactly the daemon's own certificate (PEM), whatever its hostname."""
    context = ssl.create_default_context(cadata=certificate)
    context.check_hostname = False  # the pinned certificate is the identity, not a name
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # a CA-issued leaf pins as well
    return context


def close_all(idle: deque[HTTPConnection]) -> None:
    """Close every connection in ``idle`` (only this process's copy of a forked socket)."""
    while idle:
        idle.pop().close()


def dropped(conn: HTTPConnection) -> bool:
    """Whether an idle keep-alive connection was closed (or broken) by the server."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)  # an idle socket that is readable has reached its end
