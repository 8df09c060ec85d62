"""Code shipping: by reference from the working dir (imported by the worker), by value from
__main__ and from files the worker cannot import."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import runhouse as rh
from runhouse.client.shipping import ship


def write_project_module(project: Path, package: str) -> None:
    (project / package).mkdir()
    (project / package / "__init__.py").write_text("")
    (project / package / "util.py").write_text(
        textwrap.dedent(
            """
            import os

            def where():
                return __file__, os.getcwd() is not None

            def explode():
                raise RuntimeError("raised in a project file")
            """
        )
    )


def test_code_from_the_working_dir_goes_by_reference(
    cluster: rh.Cluster, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_project_module(project, "shipproj_a")
    monkeypatch.syspath_prepend(str(project))
    for name in [m for m in sys.modules if m.split(".")[0] == "shipproj_a"]:
        monkeypatch.delitem(sys.modules, name)  # imported by another run, from its project
    util = importlib.import_module("shipproj_a.util")
    assert b"raised in a project file" not in ship(util.explode, "fn", project)  # a reference
    assert b"raised in a project file" in ship(util.explode, "fn", None)  # by value otherwise
    where = rh.function(util.where).to(cluster)
    file, _ = where()
    mirror = cluster.daemon_host.sync_workdir(project)
    assert file == f"{mirror}/shipproj_a/util.py"  # synced, and imported from there
    with pytest.raises(RuntimeError) as info:
        rh.function(util.explode).to(cluster)()
    remote_tb = info.value.remote_traceback  # type: ignore[attr-defined]
    assert "shipproj_a/util.py" in remote_tb  # a real file and line
    assert 'raise RuntimeError("raised in a project file")' in remote_tb


def test_functions_from_main_go_by_value(
    cluster: rh.Cluster, python: str, shared_daemon_dir: Path
) -> None:
    script = textwrap.dedent(
        """
        import runhouse as rh

        def square(x):
            return x * x

        print(rh.function(square).to(rh.cluster(name="local"))(7))
        """
    )
    env = {**os.environ, "RH_DAEMON_DIR": str(shared_daemon_dir)}
    out = subprocess.run(
        [python, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "49"


def read_var(name: str) -> str | None:
    return os.environ.get(name)


def test_env_vars_from_a_dotenv_file(cluster: rh.Cluster, tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text('# settings\nexport RH_DOTENV_A="quoted value"\nRH_DOTENV_B=plain\n')
    env = rh.env(name="dotenv_env", env_vars=str(dotenv))
    fn = rh.function(read_var).to(cluster, env=env)
    assert (fn("RH_DOTENV_A"), fn("RH_DOTENV_B")) == ("quoted value", "plain")
    with pytest.raises(FileNotFoundError, match=r"missing\.env"):
        rh.function(read_var).to(
            cluster, env=rh.env(name="bad_dotenv", env_vars=str(tmp_path / "missing.env"))
        )
