"""An env's worker as a Ray actor: the same ``WorkerServer`` as a worker process, on a TCP
connection the actor opens back to the daemon instead of an inherited socket.

The actor's one method, ``serve``, runs for the actor's whole life: the daemon holds its
result to learn, from Ray, how the actor ended (killed, its node gone, out of memory).
"""

from __future__ import annotations

import json
import os
import platform
import socket

import ray

from runhouse.daemon.worker import logcapture
from runhouse.daemon.worker.server import WorkerServer

CONNECT_TIMEOUT = 30.0  # seconds to reach the daemon's listener


def hello(nonce: str) -> bytes:
    """The first line on the connection: the launch's nonce, then who this worker is."""
    about = {
        "pid": os.getpid(),
        "node": ray.get_runtime_context().get_node_id(),
        "address": ray.util.get_node_ip_address(),
        "ray": ray.__version__,
        "python": platform.python_version(),
    }
    return f"{nonce} {json.dumps(about)}\n".encode()


def serve(host: str, port: int, nonce: str, env: str) -> None:
    """Connect to the daemon at ``host:port``, prove the launch with ``nonce``, then run
    ``env``'s calls until the daemon closes the connection; the actor then exits."""
    sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
    sock.settimeout(None)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # frames are small
    sock.sendall(hello(nonce))
    logcapture.install()
    WorkerServer(sock, env).serve_forever()
    # The daemon is gone or stopped this worker: leave now, without waiting for calls still
    # running on threads (as a worker process does).
    os._exit(0)


def actor_class() -> type:
    """A new class for ``ray.remote``, whose one method ``serve`` runs for the actor's whole
    life. New each time: Ray rewrites the signatures of the methods it wraps, in place."""

    class EnvActor:
        def serve(self, host: str, port: int, nonce: str, env: str) -> None:
            serve(host, port, nonce, env)

    return EnvActor
