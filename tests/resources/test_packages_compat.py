"""The original's package forms: prefixes, conda packages, git packages and ``package.to``."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import runhouse as rh
from tests.daemon.test_envs import make_package, tiny_version


@pytest.fixture
def local_cluster(shared_daemon_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[rh.Cluster]:
    """The session's local daemon (these tests need no SSH host)."""
    monkeypatch.setenv("RH_DAEMON_DIR", str(shared_daemon_dir))
    monkeypatch.setenv("RH_AUTOSTART_DAEMON", "false")
    c = rh.cluster(name="local")
    yield c
    c.clear()


def git(repo: Path, *args: str) -> None:
    identity = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "-C", str(repo), *identity, *args], check=True)


def git_repo(root: Path) -> Path:
    """A git repository of ``tinypkg``: version 1.0 tagged v1, then 2.0 on the branch."""
    repo = make_package(root, "1.0")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "one")
    git(repo, "tag", "v1")
    (repo / "tinypkg" / "__init__.py").write_text("VERSION = '2.0'\n")
    git(repo, "commit", "-q", "-am", "two")
    return repo


@pytest.mark.parametrize(
    ("spec", "method", "target"),
    [
        ("numpy", "pip", "numpy"),
        ("pip:numpy==2.1", "pip", "numpy==2.1"),
        ("conda:pytorch", "conda", "pytorch"),
        ("local:./lib", "local", "./lib"),
        ("reqs:./", "reqs", "./"),
        ("requirements.txt", "reqs", "./"),
    ],
)
def test_prefixes_read_as_the_original(spec: str, method: str, target: str) -> None:
    package = rh.Package.from_string(spec)
    assert (type(package), package.install_method, package.install_target) == (
        rh.Package,
        method,
        target,
    )


def test_a_bare_existing_path_is_its_requirements(project: Path) -> None:
    (project / "lib").mkdir()
    assert rh.Package.from_string("./lib").install_method == "reqs"


def test_prefixed_requirements_in_an_env_resolve(project: Path) -> None:
    make_package(project, "1.0")  # ./tinypkg-1.0, a Python project
    (project / "tools").mkdir()
    (project / "requirements.txt").write_text("rich\n")
    env = rh.env(
        reqs=["pip:numpy", "local:./tinypkg-1.0", "local:./tools", "reqs:./", "pip:./tinypkg-1.0"]
    )
    assert env.resolved_reqs() == [
        {"kind": "pip", "value": "numpy"},
        {"kind": "path", "value": str(project / "tinypkg-1.0")},
        {"kind": "code", "value": str(project / "tools")},
        {"kind": "requirements", "value": str(project / "requirements.txt")},
        {"kind": "path", "value": str(project / "tinypkg-1.0")},
    ]


def test_a_reqs_folder_without_requirements_is_put_on_the_path(
    project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (project / "lib").mkdir()
    with caplog.at_level(logging.WARNING, logger="runhouse"):
        resolved = rh.env(reqs=["reqs:./lib"]).resolved_reqs()
    assert resolved == [{"kind": "code", "value": str(project / "lib")}]
    assert "has no requirements.txt" in caplog.text


def test_pip_prefix_installs_in_an_env(local_cluster: rh.Cluster, project: Path) -> None:
    make_package(project, "3.0")
    env = rh.env(name="pip_prefixed", reqs=["pip:./tinypkg-3.0"])
    assert rh.function(tiny_version).to(local_cluster, env=env, name="pip_v")() == "3.0"


def test_install_arguments_are_refused_not_dropped() -> None:
    with pytest.raises(ValueError, match="install arguments"):
        rh.Package.from_string("pip:torch --index-url https://download.pytorch.org/whl/cpu")
    with pytest.raises(ValueError, match="install arguments"):
        rh.env(reqs=["pip:torch --no-deps"]).resolved_reqs()


def test_rh_prefix_is_a_saved_package() -> None:
    rh.package(name="pinned", install_target="numpy==2.1").save()
    assert rh.env(reqs=["rh:pinned"]).resolved_reqs() == [{"kind": "pip", "value": "numpy==2.1"}]


def test_conda_packages_join_a_conda_envs_dependencies() -> None:
    env = rh.conda_env(
        name="cenv",
        conda_env={"dependencies": ["python=3.11"]},
        reqs=["conda:pytorch -c pytorch", rh.Package.from_string("conda:numpy"), "rich"],
    ).save()
    assert env.reqs == ["rich"]
    assert env.conda_env == {
        "dependencies": ["python=3.11", "pytorch", "numpy"],
        "channels": ["pytorch"],
    }
    assert rh.load("cenv").config() == env.config()  # loading does not add them twice


def test_a_conda_package_in_a_plain_env_says_to_use_conda_env() -> None:
    with pytest.raises(ValueError, match=r"rh\.conda_env"):
        rh.env(reqs=["conda:pytorch"])
    with pytest.raises(ValueError, match=r"rh\.conda_env"):
        rh.env(reqs=[rh.package(install_method="conda", install_target="pytorch")])


def test_git_package_forms_save_and_load() -> None:
    pkg = rh.git_package(
        name="rhgit", git_url="https://github.com/org/repo.git", revision="v1", install_method="pip"
    ).save()
    loaded = rh.load("rhgit")
    assert isinstance(loaded, rh.GitPackage) and loaded.config() == pkg.config()
    assert loaded.requirement() == "git+https://github.com/org/repo.git@v1"
    from_url = rh.Package.from_string("https://github.com/org/repo")
    assert isinstance(from_url, rh.GitPackage) and from_url.install_method == "local"
    pinned = rh.Package.from_string("pip:git+ssh://git@github.com/org/repo.git@abc123")
    assert (pinned.git_url, pinned.revision) == ("ssh://git@github.com/org/repo.git", "abc123")
    assert rh.git_package(name="rhgit").config() == pkg.config()


def test_git_package_with_pip_installs_the_revision(
    local_cluster: rh.Cluster, tmp_path: Path
) -> None:
    repo = git_repo(tmp_path)
    pkg = rh.git_package(git_url=f"file://{repo}", revision="v1", install_method="pip")
    env = rh.env(name="git_pip", reqs=[pkg])
    assert env.reqs == [f"git+file://{repo}@v1"]
    assert rh.function(tiny_version).to(local_cluster, env=env, name="git_v")() == "1.0"


def test_git_package_local_clones_here_at_the_revision(tmp_path: Path) -> None:
    repo = git_repo(tmp_path)
    tagged = rh.git_package(git_url=f"file://{repo}", revision="v1")
    clone = tagged.clone()
    assert (clone / "tinypkg" / "__init__.py").read_text() == "VERSION = '1.0'\n"
    assert rh.env(reqs=[tagged]).resolved_reqs() == [{"kind": "path", "value": str(clone)}]
    branch = rh.git_package(git_url=f"file://{repo}", revision="main")
    on_main = branch.clone()
    assert on_main != clone  # one clone per revision: code in use does not change
    assert (on_main / "tinypkg" / "__init__.py").read_text() == "VERSION = '2.0'\n"
    (repo / "tinypkg" / "__init__.py").write_text("VERSION = '2.1'\n")
    git(repo, "commit", "-q", "-am", "2.1")
    assert branch.clone() == on_main  # fetched again: a branch is up to date
    assert (on_main / "tinypkg" / "__init__.py").read_text() == "VERSION = '2.1'\n"
    assert (clone / "tinypkg" / "__init__.py").read_text() == "VERSION = '1.0'\n"


def test_a_package_to_the_local_cluster_is_the_same_folder(
    local_cluster: rh.Cluster, project: Path, tmp_path: Path
) -> None:
    (project / "lib").mkdir()
    (project / "lib" / "helper.py").write_text("X = 1\n")
    pkg = rh.package(path="./lib")
    same = pkg.to(local_cluster)
    assert same.install_target == str(project / "lib") and same.system is local_cluster
    copied = pkg.to(local_cluster, path=str(tmp_path / "copy"))
    assert (tmp_path / "copy" / "helper.py").read_text() == "X = 1\n"
    assert rh.env(reqs=[copied]).reqs == [str(project / "lib")]  # an env sends the source


def test_an_index_package_has_nothing_to_copy(local_cluster: rh.Cluster) -> None:
    with pytest.raises(TypeError, match="package index"):
        rh.package(install_target="numpy").to(local_cluster)
    with pytest.raises(TypeError, match="package index"):
        rh.git_package(git_url="https://github.com/org/repo", install_method="pip").to(
            local_cluster
        )
