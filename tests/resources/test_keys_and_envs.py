"""Keys and envs never give a silent wrong answer: a handle calls what it sent, an env named
by a string is the real env (never an empty one), commands in an env reach that env's venv."""

from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path

import pytest

import runhouse as rh
from tests.daemon.test_envs import make_package, tiny_version


def which_env() -> str:
    return os.environ.get("WHICH", "base")


def test_one_function_in_two_envs_keeps_two_handles(cluster: rh.Cluster) -> None:
    two = rh.env(name="keys_two", env_vars={"WHICH": "two"})
    first = rh.function(which_env).to(cluster)
    second = rh.function(which_env).to(cluster, env=two)
    assert (first(), second()) == ("base", "two")
    assert first.key != second.key
    assert {first.key, second.key} <= set(cluster.keys())
    assert cluster.keys(env="keys_two") == [second.key]
    again = rh.function(which_env).to(cluster, env=two)  # the same env: replaces
    assert again.key == second.key and again() == "two"
    assert first() == "base"


def test_an_explicit_name_moves_between_envs_and_says_so(
    cluster: rh.Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    two = rh.env(name="keys_move", env_vars={"WHICH": "moved"})
    rh.function(which_env).to(cluster, name="chosen")
    with caplog.at_level(logging.WARNING, logger="runhouse"):
        moved = rh.function(which_env).to(cluster, env=two, name="chosen")
    assert moved.key == "chosen" and moved() == "moved"
    assert "now lives in env 'keys_move'" in caplog.text
    assert cluster.keys(env="keys_move") == ["chosen"]


def test_an_env_named_by_a_string_is_the_clusters_env(cluster: rh.Cluster) -> None:
    rh.env(name="keys_named", env_vars={"WHICH": "real"}).to(cluster)
    fn = rh.function(which_env).to(cluster, env="keys_named")  # nothing saved locally
    assert fn() == "real"  # the env kept its variables: it was not replaced by an empty one
    with pytest.raises(rh.ResourceNotFoundError, match=r"rh.env\(name='keys_nowhere'"):
        rh.function(which_env).to(cluster, env="keys_nowhere")
    assert "keys_nowhere" not in {e["name"] for e in cluster.status()["envs"]}


def test_an_env_named_by_a_string_falls_back_to_the_saved_one(cluster: rh.Cluster) -> None:
    rh.env(name="keys_saved", env_vars={"WHICH": "saved"}).save()
    assert rh.function(which_env).to(cluster, env="keys_saved")() == "saved"


def test_pip_in_an_env_installs_into_that_env_alone(cluster: rh.Cluster, shared_tmp: Path) -> None:
    package = make_package(shared_tmp, "3.0")
    for path in [package, *package.rglob("*")]:
        path.chmod(0o777)  # pip writes its build metadata next to the sources, as any user
    env = rh.env(name="keys_pip", env_vars={"WHICH": "pip"})
    [(code, out, err)] = cluster.run([f"pip install -q {package}"], env=env, stream_logs=False)
    assert code == 0, out + err
    [(_, python, _)] = cluster.run(["command -v python"], env="keys_pip", stream_logs=False)
    assert "/envs/" in python  # the env's own venv comes first on PATH
    assert rh.function(tiny_version).to(cluster, env="keys_pip")() == "3.0"
    with pytest.raises(ModuleNotFoundError):
        rh.function(tiny_version).to(cluster, name="tiny_in_base")()  # not the daemon's


def test_keys_may_hold_slashes_and_other_printable_characters(cluster: rh.Cluster) -> None:
    for key in ("org/model-7b", "a key with spaces?", "100%/ü&=#"):
        cluster.put(key, {"key": key})
        assert cluster.get(key) == {"key": key}
    assert {"org/model-7b", "a key with spaces?", "100%/ü&=#"} <= set(cluster.keys())
    cluster.delete("org/model-7b")
    assert cluster.get("org/model-7b") is None


class Counter:
    def __init__(self) -> None:
        self.count = 3

    def add(self, by: int = 1) -> int:
        self.count += by
        return self.count


def test_get_calls_with_query_parameters_and_reads_attributes(cluster: rh.Cluster) -> None:
    cluster.put("org/counter", Counter())
    base = cluster.endpoint()
    auth = ["-H", f"Authorization: Bearer {cluster.token()}"] if cluster.token() else []
    if cluster.certificate_file() is not None:
        auth += ["--cacert", str(cluster.certificate_file())]

    def curl(path: str) -> object:
        done = subprocess.run(
            ["curl", "-sS", "-f", *auth, base + path], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    assert curl("/org/counter/count") == 3
    assert curl("/org/counter/add?by=4") == 7
    assert curl("/org/counter/count") == 7
