"""How long an env takes to set up: first time, and cached, against doing it by hand.

Measured in one run, each on a fresh small local package (a new one each round, so no build
is reused across rounds):

* first: ``rh.function(fn).to(cluster, env=rh.env(reqs=[package]))`` for a new env;
* cached: the same ``.to()`` again (the env is unchanged);
* by hand: ``uv venv`` + ``uv pip install <package>`` run directly, the floor.

Prints one JSON line. Targets (issue 4): cached <= 0.2 s; first <= 1.5x by hand.

    .venv/bin/python benchmarks/env_setup.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_package(root: Path, name: str) -> Path:
    """A one-module setuptools project named ``name``."""
    folder = root / name
    (folder / name).mkdir(parents=True)
    (folder / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
        f'[project]\nname = "{name}"\nversion = "1.0"\n'
    )
    (folder / name / "__init__.py").write_text("VALUE = 1\n")
    return folder


def by_hand(package: Path, venv: Path) -> float:
    """Seconds for ``uv venv`` + ``uv pip install`` of ``package``."""
    from uv import find_uv_bin

    uv = str(find_uv_bin())
    start = time.perf_counter()
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), str(package)],
        check=True,
    )
    return time.perf_counter() - start


def noop() -> None:
    """The function sent to each env."""


def main() -> None:
    """Measure rounds of first/cached/by-hand setups and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rh-bench-env-"))
    os.environ["RH_DAEMON_DIR"] = str(work / "daemon")
    import runhouse as rh

    cluster = rh.cluster(name="local", server_port=0).up_if_not()
    first, cached, hand = [], [], []
    try:
        rh.function(noop).to(cluster)  # the daemon and base worker are warm
        for i in range(args.rounds):
            env = rh.env(name=f"bench{i}", reqs=[str(make_package(work, f"benchpkg_a{i}"))])
            start = time.perf_counter()
            rh.function(noop).to(cluster, env=env)
            first.append(time.perf_counter() - start)
            start = time.perf_counter()
            rh.function(noop).to(cluster, env=env)
            cached.append(time.perf_counter() - start)
            hand.append(by_hand(make_package(work, f"benchpkg_b{i}"), work / f"venv{i}"))
    finally:
        cluster.daemon_host.stop()
        shutil.rmtree(work, ignore_errors=True)
    first_s, cached_s, hand_s = (statistics.median(x) for x in (first, cached, hand))
    print(
        json.dumps(
            {
                "benchmark": "env_setup",
                "rounds": args.rounds,
                "first_s": round(first_s, 3),
                "cached_s": round(cached_s, 4),
                "by_hand_s": round(hand_s, 3),
                "ratio_first_to_by_hand": round(first_s / hand_s, 2),
                "targets": {
                    "cached_le_0_2_s": {"target": 0.2, "met": cached_s <= 0.2},
                    "first_le_1_5x_by_hand": {"target": 1.5, "met": first_s <= 1.5 * hand_s},
                },
            }
        )
    )


if __name__ == "__main__":
    main()
