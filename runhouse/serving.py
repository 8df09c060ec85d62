"""Serving an ASGI app with uvicorn, as both the cluster daemon and Den do: a socket bound
and listening before uvicorn starts, the fastest HTTP parser and event loop installed, and a
server that leaves signals to its owner. uvicorn is imported only when a server is made, so
importing this module costs nothing on the client side.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Coroutine, Iterator
from typing import Any


def bind(host: str, port: int) -> socket.socket:
    """A non-blocking socket listening on ``host:port`` (port 0: a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    # Listening before uvicorn starts accepting: a client told "ready" can connect at once.
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def server_class() -> type:
    """uvicorn's ``Server`` minus its signal capture: it re-raises the signal after serving,
    which would end the process before its owner stops its children and removes its files."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return Server


def fastest_http() -> str:
    """uvicorn's ``http`` choice: httptools when installed, else h11."""
    try:
        import httptools  # noqa: F401
    except ImportError:
        return "h11"
    return "httptools"


def run(main: Coroutine[Any, Any, Any]) -> None:
    """Run ``main`` on uvloop when installed, else asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)
