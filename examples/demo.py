"""The Runhouse demo: save, load, version and roll back a resource in the local store.

Runs in a throwaway project folder so the checkout stays clean; no cluster, cloud or
metadata server is needed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import runhouse as rh


def main() -> None:
    """Walk through names, versions and rollback, checking each step."""
    project = Path(tempfile.mkdtemp(prefix="rh-demo-"))
    (project / "rh").mkdir()  # the local store; its presence also marks the project root
    os.chdir(project)
    print(f"project: {project}\n")

    env = rh.env(name="demo_env", reqs=["numpy"], env_vars={"MODE": "fast"}).save()
    print(f"saved {env.rns_address} -> {rh.locate('demo_env').where}")

    env.reqs.append("pandas")
    env.save()
    loaded = rh.load("demo_env")
    assert isinstance(loaded, rh.Env) and loaded.reqs == ["numpy", "pandas"]
    print(f"loaded {type(loaded).__name__} with reqs {loaded.reqs}")

    env.rollback(1)
    assert rh.load("demo_env").reqs == ["numpy"]
    print("\nhistory after rolling back to version 1:")
    for saved in env.history():
        print(f"  v{saved.version}  {saved.timestamp}  {saved.author}  reqs={saved.config['reqs']}")
    assert [v.version for v in env.history()] == [3, 2, 1]

    rh.set_folder("~/team")
    shared = rh.env(name="shared", reqs=["torch"]).save()
    print(f"\nin folder {rh.current_folder()}: saved {shared.rns_address}")
    rh.unset_folder()
    assert rh.exists("team/shared") and not rh.exists("shared")

    print("\n$ runhouse ls && runhouse ls team && runhouse history demo_env")
    for args in (["ls"], ["ls", "team"], ["history", "demo_env"]):
        subprocess.run([sys.executable, "-m", "runhouse", *args], check=True)

    print("\nrh/demo_env/config.json:")
    print((project / "rh" / "demo_env" / "config.json").read_text())
    print("demo OK")


if __name__ == "__main__":
    main()
