"""``runhouse start|stop|restart|status``: the daemon on this machine."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from runhouse.cli.status_report import render
from runhouse.client import cluster_engines, local_daemon
from runhouse.exceptions import DaemonError
from runhouse.wire import engine, exposure


def register(commands: Any) -> None:
    """Add the daemon commands to the CLI."""
    start = commands.add_parser("start", help="start the daemon on this machine")
    _address_options(start)
    start.add_argument(
        "--foreground",
        action="store_true",
        help="run in this process (for supervisors, e.g. systemd)",
    )
    start.set_defaults(handler=run_start)

    stop = commands.add_parser("stop", help="stop the daemon and all its workers")
    stop.set_defaults(handler=run_stop)

    restart = commands.add_parser("restart", help="stop the daemon, then start it again")
    restart.add_argument("cluster", nargs="?", help="a saved cluster (default: this machine)")
    _address_options(restart)
    restart.set_defaults(handler=run_restart)

    status = commands.add_parser(
        "status", help="nodes, envs, workers (and where they run), objects, uptime, versions"
    )
    status.add_argument("cluster", nargs="?", help="a saved cluster (default: this machine)")
    status.add_argument("--json", action="store_true", help="print the raw status as JSON")
    status.set_defaults(handler=run_status)

    ssh = commands.add_parser("ssh", help="a shell (or one command) on a saved SSH cluster")
    ssh.add_argument("cluster", help="name of the saved cluster")
    ssh.add_argument("command", nargs=argparse.REMAINDER, help="run this instead of a shell")
    ssh.set_defaults(handler=run_ssh)


def _address_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port", type=int, default=local_daemon.DEFAULT_PORT, help="port (0 picks a free one)"
    )
    exposure.add_arguments(parser)
    engine.add_arguments(parser)
    # Unset, the engine follows --ray-address (Ray) or is the process engine; a daemon that
    # already runs is then taken as it is.
    parser.set_defaults(engine=None)


def _engine(args: argparse.Namespace) -> engine.EngineChoice:
    return cluster_engines.choose(args.engine, args.ray_address, hosts=0)


def run_start(args: argparse.Namespace) -> int:
    """Start the daemon (in the background unless --foreground)."""
    files = local_daemon.files_for()
    choice = _engine(args)
    if problem := cluster_engines.problem(args.engine, args.ray_address):
        print(f"runhouse: {problem}", file=sys.stderr)
        return 1
    if args.foreground:
        from runhouse.daemon.server import serve

        return serve(exposure.from_arguments(args), args.port, files.root, engine=choice)
    info = local_daemon.running_info(files)
    if info is not None:
        running = info.get("engine") or "process"
        print(
            f"The daemon already runs (pid {info['pid']}, port {info['port']}, engine {running})."
        )
        if (args.engine or args.ray_address) and running != choice.engine:
            print(
                f"It runs engine {running!r}, not {choice.engine!r}: `runhouse restart "
                f"--engine {choice.engine}` starts it again with that engine.",
                file=sys.stderr,
            )
            return 1
        return 0
    how = exposure.from_arguments(args)
    try:
        info = local_daemon.start(files, args.port, how, engine=choice)
    except DaemonError as exc:
        print(exc, file=sys.stderr)
        return 1
    scheme = "https" if info.get("tls_cert") else "http"
    print(
        f"Started the daemon (pid {info['pid']}, engine {choice.engine}) on "
        f"{scheme}://{info['host']}:{info['port']}"
    )
    print(f"Log: {files.log}")
    return 0


def run_stop(args: argparse.Namespace) -> int:
    """Stop the daemon and its workers."""
    if local_daemon.stop(local_daemon.files_for()):
        print("Stopped the daemon.")
    else:
        print("No daemon was running.")
    return 0


def run_restart(args: argparse.Namespace) -> int:
    """Stop, then start (a saved cluster's daemon, or this machine's)."""
    if args.cluster:
        _saved(args.cluster).restart_server()
        print(f"Restarted the daemon of {args.cluster}.")
        return 0
    run_stop(args)
    args.foreground = False
    return run_start(args)


def run_status(args: argparse.Namespace) -> int:
    """Print the daemon's status; exit 1 if it is not running."""
    from runhouse.resources.cluster import Cluster

    if args.cluster:
        cluster = _saved(args.cluster)
        if not cluster.is_up():
            print(f"No daemon runs on {args.cluster}.")
            return 1
        status = cluster.status()
    else:
        files = local_daemon.files_for()
        if local_daemon.running_info(files) is None:
            print(f"No daemon runs for {files.root}. Start one with `runhouse start`.")
            return 1
        status = Cluster(name="local").status()
    if args.json:
        print(json.dumps(status, indent=2, sort_keys=True))
        return 0
    for line in render(status):
        print(line)
    return 0


def run_ssh(args: argparse.Namespace) -> int:
    """Replace this process with ssh to the cluster's host (its options and key)."""
    from runhouse.client.runners.ssh import SSHRunner

    runner = _saved(args.cluster).runner
    if not isinstance(runner, SSHRunner):
        print(f"{args.cluster} is this machine; no ssh needed.")
        return 1
    command = ["ssh", *runner.options(), runner.target, *args.command]
    os.execvp("ssh", command)
    return 0  # not reached: exec replaced this process


def _saved(name: str) -> Any:
    from runhouse.resources.cluster import Cluster

    return Cluster.from_name(name)
