"""``python -m runhouse.daemon.worker --fd N --env NAME``: started by the process engine."""

from __future__ import annotations

import argparse
import os
import socket

from runhouse.daemon.worker import logcapture
from runhouse.daemon.worker.server import WorkerServer


def main() -> None:
    """Serve on the inherited socket until the daemon goes away, then exit at once."""
    parser = argparse.ArgumentParser(prog="runhouse-worker")
    parser.add_argument("--fd", type=int, required=True, help="inherited socket to the daemon")
    parser.add_argument("--env", required=True, help="name of the env this worker runs")
    args = parser.parse_args()
    sock = socket.socket(fileno=args.fd)
    logcapture.install()
    WorkerServer(sock, args.env).serve_forever()
    # The daemon is gone: leave now, without waiting for calls still running on threads.
    os._exit(0)


if __name__ == "__main__":
    main()
