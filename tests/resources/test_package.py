"""rh.package: a requirement as a resource, usable in an env's reqs."""

from __future__ import annotations

from pathlib import Path

import pytest

import runhouse as rh
from tests.daemon.test_envs import make_package, tiny_version


def test_forms_and_requirements(project: Path) -> None:
    assert rh.package(install_target="numpy>=2").requirement() == "numpy>=2"
    local = rh.package(path="./lib")
    assert local.install_method == "local"
    assert local.requirement() == str(project / "lib")
    assert rh.package(path="reqs.txt").install_method == "reqs"
    reqs_dir = rh.Package.from_string("reqs:./")
    assert reqs_dir.requirement() == str(project / "requirements.txt")
    assert str(rh.Package.from_string("pandas")) == "pip:pandas"


def test_save_and_load() -> None:
    rh.package(name="pinned", install_target="numpy==2.1").save()
    loaded = rh.package(name="pinned")
    assert isinstance(loaded, rh.Package) and loaded.requirement() == "numpy==2.1"


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="install_method must be one of"):
        rh.package(install_method="apt", install_target="curl")
    with pytest.raises(TypeError, match="needs a path"):
        rh.package()


def test_a_package_in_an_env_installs(cluster: rh.Cluster, tmp_path: Path) -> None:
    env = rh.env(name="with_package", reqs=[rh.package(path=str(make_package(tmp_path, "9.0")))])
    assert all(isinstance(r, str) for r in env.reqs)
    assert rh.function(tiny_version).to(cluster, env=env, name="pkg_v")() == "9.0"


def test_the_originals_install_str() -> None:
    assert rh.package(install_method="pip", install_str="numpy<3").requirement() == "numpy<3"
    with pytest.raises(ValueError, match="install arguments"):
        rh.package(install_str="torch --no-deps")
