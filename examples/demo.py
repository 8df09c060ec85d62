"""The Runhouse demo: run a function and a module on the local cluster, then name and
version them.

Uses the daemon on this machine (started on demand; `runhouse stop` stops it) and a
throwaway project folder for the saved configs, so the checkout stays clean. No cloud and no
metadata server are needed.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import runhouse as rh


def hello(name: str) -> str:
    """Runs on the cluster: its print streams back here while it runs."""
    print(f"hello from pid {os.getpid()} on the cluster")
    return f"hello, {name}"


def countdown(n: int) -> Iterator[int]:
    """Yields on the cluster; each item arrives as soon as it is made."""
    yield from range(n, 0, -1)


class Counter:
    """A class whose instance lives on the cluster and keeps its state there."""

    def __init__(self, start: int = 0) -> None:
        self.count = start

    def increment(self, by: int = 1) -> int:
        """Add to the count and return it."""
        self.count += by
        return self.count


def fail() -> None:
    """Raises on the cluster; the error comes back as the same type."""
    raise ValueError("raised on the cluster")


def main() -> None:
    """Run code remotely, then save, load, version and roll back configs."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    project = Path(tempfile.mkdtemp(prefix="rh-demo-"))
    (project / "rh").mkdir()  # the local store; its presence also marks the project root
    os.chdir(project)

    cluster = rh.cluster(name="local")  # the daemon on this machine, started if needed
    greet = rh.function(hello).to(cluster)
    assert greet("demo") == "hello, demo"
    print(f"demo pid {os.getpid()}; got {greet('again')!r}")
    assert list(rh.function(countdown).to(cluster)(3)) == [3, 2, 1]

    RemoteCounter = rh.module(Counter).to(cluster)
    counter = RemoteCounter(start=10, name="counter")
    counter.increment(5)
    assert counter.increment() == 16 and counter.remote.count == 16
    print(f"counter on the cluster: {counter.remote.count}; keys there: {cluster.keys()}")

    try:
        rh.function(fail).to(cluster)()
    except ValueError as exc:
        print(f"remote error, rebuilt here: {exc!r}")

    env = rh.env(name="demo_env", reqs=["numpy"], env_vars={"MODE": "fast"}).save()
    env.reqs.append("pandas")
    env.save()
    greet.save(name="greet")
    assert rh.load("greet")("by name") == "hello, by name"  # rebuilt from its saved config
    env.rollback(1)
    assert rh.load("demo_env").reqs == ["numpy"]
    assert [v.version for v in env.history()] == [3, 2, 1]

    print("\n$ runhouse ls && runhouse history demo_env && runhouse status")
    for args in (["ls"], ["history", "demo_env"], ["status"]):
        subprocess.run([sys.executable, "-m", "runhouse", *args], check=True)
    print("\ndemo OK (the daemon keeps running; `runhouse stop` stops it)")


if __name__ == "__main__":
    main()
