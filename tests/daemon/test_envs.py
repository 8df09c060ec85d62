"""Envs built for real: one virtualenv per env content (uv), cached, isolated, and failing
clearly. The packages are tiny local projects the tests write, so nothing depends on what a
registry holds today."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import runhouse as rh


def make_package(root: Path, version: str, name: str = "tinypkg") -> Path:
    """A local project ``name`` whose module says its version."""
    folder = root / f"{name}-{version}"
    (folder / name).mkdir(parents=True)
    (folder / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
        f'[project]\nname = "{name}"\nversion = "{version}"\n'
    )
    (folder / name / "__init__.py").write_text(f"VERSION = {version!r}\n")
    return folder


def tiny_version() -> str:
    import tinypkg  # type: ignore[import-not-found]

    return str(tinypkg.VERSION)


def read_file(path: str) -> str:
    return Path(path).read_text()


def plain_helper() -> str:
    import helper_module  # type: ignore[import-not-found]

    return str(helper_module.GREETING)


def env_record(cluster: rh.Cluster, name: str) -> dict:
    return next(e for e in cluster.status()["envs"] if e["name"] == name)


def test_two_envs_hold_two_versions_of_one_package(cluster: rh.Cluster, tmp_path: Path) -> None:
    one = rh.env(name="tiny_one", reqs=[str(make_package(tmp_path, "1.0"))])
    two = rh.env(name="tiny_two", reqs=[str(make_package(tmp_path, "2.0"))])
    v1 = rh.function(tiny_version).to(cluster, env=one, name="v1")
    v2 = rh.function(tiny_version).to(cluster, env=two, name="v2")
    assert (v1(), v2()) == ("1.0", "2.0")
    record = env_record(cluster, "tiny_one")
    assert record["python"].endswith("/bin/python") and record["hash"]
    assert any(p.startswith("tinypkg") for p in record["packages"])
    with pytest.raises(ModuleNotFoundError):
        rh.function(tiny_version).to(cluster, name="v0")()  # the base env has neither


def test_an_unchanged_env_is_reused_and_a_changed_one_rebuilt(
    cluster: rh.Cluster, tmp_path: Path
) -> None:
    package = make_package(tmp_path, "1.0")
    env = rh.env(name="cached", reqs=[str(package)])
    rh.function(tiny_version).to(cluster, env=env, name="cv")
    first = env_record(cluster, "cached")["hash"]
    marker = Path(env_record(cluster, "cached")["python"]).parents[1] / ".rh-env.json"
    built = json.loads(marker.read_text())["built"]
    assert rh.function(tiny_version).to(cluster, env=env, name="cv")() == "1.0"
    assert json.loads(marker.read_text())["built"] == built  # not rebuilt
    (package / "tinypkg" / "__init__.py").write_text("VERSION = 'edited'\n")
    assert rh.function(tiny_version).to(cluster, env=env, name="cv")() == "edited"
    assert env_record(cluster, "cached")["hash"] != first


def test_a_cached_env_survives_a_daemon_restart(own_daemon_dir: Path, tmp_path: Path) -> None:
    c = rh.cluster(name="local", server_port=0).up_if_not()
    env = rh.env(name="persisted", reqs=[str(make_package(tmp_path, "3.0"))])
    rh.function(tiny_version).to(c, env=env)
    marker = Path(env_record(c, "persisted")["python"]).parents[1] / ".rh-env.json"
    built = json.loads(marker.read_text())["built"]
    c.restart_server()
    assert rh.function(tiny_version).to(c, env=env)() == "3.0"
    assert json.loads(marker.read_text())["built"] == built


def test_setup_commands_run_once_per_env_version(cluster: rh.Cluster, shared_tmp: Path) -> None:
    log = shared_tmp / "setup.log"
    env = rh.env(name="with_setup", setup_cmds=[f"echo ran >> {log}"])
    rh.function(read_file).to(cluster, env=env)
    rh.function(read_file).to(cluster, env=env)
    assert rh.function(read_file).to(cluster, env=env)(str(log)) == "ran\n"


def test_a_failing_setup_command_is_named_and_nothing_is_kept(
    cluster: rh.Cluster, tmp_path: Path, shared_tmp: Path
) -> None:
    stays = rh.function(tiny_version).to(
        cluster, env=rh.env(name="healthy", reqs=[str(make_package(tmp_path, "1.0"))]), name="ok"
    )
    marker = shared_tmp / "fixed"
    env = rh.env(name="fragile", setup_cmds=[f"test -e {marker} || exit 7"])
    with pytest.raises(rh.EnvInstallError) as info:
        rh.function(read_file).to(cluster, env=env)
    assert info.value.returncode == 7 and "exit 7" in info.value.command
    assert "fragile" not in {e["name"] for e in cluster.status()["envs"]}
    assert stays() == "1.0"  # other envs and their objects are untouched
    marker.write_text("")
    assert rh.function(read_file).to(cluster, env=env)(str(marker)) == ""  # the retry builds


def test_a_package_that_does_not_exist(cluster: rh.Cluster) -> None:
    with pytest.raises(rh.EnvInstallError) as info:
        rh.function(read_file).to(
            cluster, env=rh.env(name="nope", reqs=["rh-test-no-such-pkg-4711"])
        )
    assert "rh-test-no-such-pkg-4711" in info.value.command
    assert info.value.output  # the installer's own words


def test_a_missing_local_path_names_the_path(cluster: rh.Cluster, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does-not-exist"):
        rh.function(read_file).to(
            cluster, env=rh.env(name="x", reqs=[str(tmp_path / "does-not-exist")])
        )


def test_plain_code_and_requirements_files(cluster: rh.Cluster, tmp_path: Path) -> None:
    code = tmp_path / "plain"
    code.mkdir()
    (code / "helper_module.py").write_text("GREETING = 'hi from plain code'\n")
    package = make_package(tmp_path, "5.0")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"{package}\n")
    env = rh.env(name="mixed", reqs=[str(code), str(requirements)])
    assert rh.function(plain_helper).to(cluster, env=env)() == "hi from plain code"
    assert rh.function(tiny_version).to(cluster, env=env, name="mixed_v")() == "5.0"


def test_conda_env_without_conda_says_so(cluster: rh.Cluster) -> None:
    with pytest.raises(rh.EnvInstallError, match="neither was found") as info:
        spec = {"dependencies": ["python=3.11"]}
        rh.function(read_file).to(cluster, env=rh.conda_env(name="needs_conda", conda_env=spec))
    assert "micromamba" in str(info.value)


FAKE_MICROMAMBA = """#!/usr/bin/env bash
# A stand-in for micromamba: conda's channels cannot be reached from this machine, so the
# real tool cannot run in CI. It records how it was called and makes the prefix a venv.
echo "$@" > "$RH_TEST_FAKE_LOG"
prefix=""
while [ $# -gt 0 ]; do
  case "$1" in -p) prefix="$2"; shift;; esac
  shift
done
exec "$RH_TEST_FAKE_PYTHON" -m venv "$prefix"
"""


def test_conda_env_is_built_with_micromamba(
    own_daemon_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "micromamba"
    fake.write_text(FAKE_MICROMAMBA)
    fake.chmod(0o755)
    log = tmp_path / "micromamba.args"
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("RH_TEST_FAKE_LOG", str(log))
    monkeypatch.setenv("RH_TEST_FAKE_PYTHON", sys.executable)
    c = rh.cluster(name="local", server_port=0).up_if_not()  # inherits the PATH above
    spec = {"channels": ["conda-forge"], "dependencies": ["python=3.11"]}
    env = rh.conda_env(name="condaish", conda_env=spec, reqs=[str(make_package(tmp_path, "7.0"))])
    assert rh.function(tiny_version).to(c, env=env)() == "7.0"
    args = log.read_text().split()
    assert args[:2] == ["create", "-y"] and "-f" in args
    assert json.loads(Path(args[args.index("-f") + 1]).read_text()) == spec
    assert env_record(c, "condaish")["python"] == str(
        Path(args[args.index("-p") + 1]) / "bin" / "python"
    )


def test_env_to_builds_ahead_and_wheels_install(cluster: rh.Cluster, tmp_path: Path) -> None:
    import subprocess
    import sys

    wheels = tmp_path / "wheels"
    source = make_package(tmp_path, "8.0")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(source)],
        check=True,
    )
    wheel = next(wheels.glob("tinypkg-8.0-*.whl"))
    env = rh.env(name="from_wheel", reqs=[str(wheel)])
    assert env.to(cluster) is env
    record = env_record(cluster, "from_wheel")
    assert any(p.startswith("tinypkg") and "8.0" in p for p in record["packages"])
    assert rh.function(tiny_version).to(cluster, env=env, name="wheel_v")() == "8.0"
