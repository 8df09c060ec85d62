"""``python -m runhouse.daemon``: run a daemon in the foreground (``runhouse start`` uses it)."""

from __future__ import annotations

import argparse
from pathlib import Path

from runhouse.daemon.layout import default_dir
from runhouse.daemon.server import serve
from runhouse.wire import engine, exposure


def main() -> int:
    """Parse the daemon's options and serve."""
    parser = argparse.ArgumentParser(prog="python -m runhouse.daemon")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=32300, help="0 picks a free port")
    parser.add_argument("--dir", type=Path, default=None, help="the daemon's folder")
    parser.add_argument("--ready-fd", type=int, default=None, help=argparse.SUPPRESS)
    exposure.add_arguments(parser)
    engine.add_arguments(parser)
    args = parser.parse_args()
    how = exposure.from_arguments(args)
    choice = engine.from_arguments(args)
    return serve(how, args.port, args.dir or default_dir(), args.ready_fd, engine=choice)


if __name__ == "__main__":
    raise SystemExit(main())
