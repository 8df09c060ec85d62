"""Bootstrap time of an SSH cluster: a fresh host to the first result, and a warm host (daemon
up) from a fresh client process.

Measured in one run, against a throwaway sshd host on loopback (benchmarks/ssh_host.py):

* by hand (the baseline): what a person types to get the same code onto a fresh host: copy
  the same runhouse wheel there and, in one ssh command, make a venv and pip install it;
* ours, fresh: ``rh.function(noop).to(cluster)()`` on a host with an empty home (install,
  daemon start, tunnel, first call); the host's pip cache is emptied first, as it was for
  the baseline;
* ours, warm: a new Python process that loads the saved cluster and calls a function;
* a fresh ``ssh host true`` (a new TCP connection and login), the floor of any remote action.

The client's wheel of this checkout is built first and reported apart (it is cached by
content, so it is paid once per change of the code). Prints one JSON line.

    .venv/bin/python benchmarks/bootstrap.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from ssh_host import available, cluster_on, ssh_host

WARM_CLIENT = textwrap.dedent(
    """
    import runhouse as rh

    def noop():
        return "ok"

    print(rh.function(noop).to(rh.cluster(name="benchbox"))())
    """
)


def noop() -> str:
    """The function called remotely."""
    return "ok"


def progress(message: str) -> None:
    """A progress line on stderr."""
    print(f"[bootstrap] {message}", file=sys.stderr, flush=True)


def main() -> None:
    """Measure the baseline, a fresh bootstrap and a warm start; print one JSON line."""
    reason = available()
    if reason is not None:
        print(json.dumps({"benchmark": "bootstrap", "skipped": reason}))
        return
    project = Path(tempfile.mkdtemp(prefix="rh-bench-project-"))
    (project / ".git").mkdir()
    os.chdir(project)
    os.environ["HOME"] = str(project / "home")  # a fresh wheel cache for this client
    import runhouse as rh
    from runhouse.client.hosts import build_wheel

    with ssh_host() as host:
        cluster = cluster_on(host, name="benchbox")
        runner = cluster.daemon_host.runner

        start = time.perf_counter()
        wheel, _ = build_wheel()
        wheel_build = time.perf_counter() - start

        start = time.perf_counter()
        runner.run("true", stream_logs=False)
        first_ssh = time.perf_counter() - start
        runner.close()

        progress("baseline: venv + pip install of the wheel by hand")
        start = time.perf_counter()
        runner.run("mkdir -p by-hand", stream_logs=False)
        runner.rsync(str(wheel), f"by-hand/{wheel.name}", up=True, gitignore=False)
        [(rc, _, err)] = runner.run(
            f"python3 -m venv by-hand/venv && by-hand/venv/bin/pip install -q by-hand/{wheel.name}",
            stream_logs=False,
        )
        by_hand = time.perf_counter() - start
        if rc != 0:
            raise RuntimeError(f"the by-hand install failed: {err}")
        runner.run("rm -rf by-hand ~/.cache/pip", stream_logs=False)
        runner.close()

        progress("ours: a fresh host to the first result")
        start = time.perf_counter()
        result = rh.function(noop).to(cluster)()
        fresh = time.perf_counter() - start
        assert result == "ok"
        cluster.save()

        progress("ours: a warm host, from a fresh client process")
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", WARM_CLIENT], capture_output=True, text=True, check=True
        )
        warm = time.perf_counter() - start
        assert out.stdout.strip() == "ok", out.stderr
        cluster.daemon_host.stop()

    print(
        json.dumps(
            {
                "benchmark": "bootstrap",
                "wheel_build_s": round(wheel_build, 3),
                "fresh_ssh_connection_s": round(first_ssh, 3),
                "by_hand_venv_and_install_s": round(by_hand, 3),
                "fresh_host_to_first_result_s": round(fresh, 3),
                "ratio_fresh_to_by_hand": round(fresh / by_hand, 3),
                "warm_host_fresh_process_to_result_s": round(warm, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
