"""Working-dir sync: .gitignore honoured (git's own rules in a repo), changes only."""

from __future__ import annotations

import importlib
import os
import subprocess
from pathlib import Path

import pytest

import runhouse as rh
from runhouse.client.workdir import project_files, sync


def write(root: Path, relative: str, text: str = "x") -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def sample_project(root: Path) -> None:
    write(root, ".gitignore", "*.log\ndata/\n")
    write(root, "pkg/__init__.py")
    write(root, "pkg/mod.py")
    write(root, "pkg/.gitignore", "secret.py\n")
    write(root, "pkg/secret.py")
    write(root, "run.log")
    write(root, "data/big.csv")
    write(root, "pkg/__pycache__/mod.cpython-311.pyc")
    write(root, "rh/saved/config.json", "{}")


def test_gitignore_rules_without_git(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    sample_project(root)
    assert project_files(root) == [".gitignore", "pkg/.gitignore", "pkg/__init__.py", "pkg/mod.py"]


def test_git_rules_in_a_repository(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    sample_project(root)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    assert project_files(root) == [".gitignore", "pkg/.gitignore", "pkg/__init__.py", "pkg/mod.py"]


def test_sync_copies_changes_and_removes_stale_files(tmp_path: Path) -> None:
    root, dest = tmp_path / "src", tmp_path / "dest"
    write(root, "a.py", "1")
    write(root, "sub/b.py", "2")
    sync(root, dest)
    assert (dest / "a.py").read_text() == "1"
    before = (dest / "sub" / "b.py").stat().st_mtime_ns
    write(root, "a.py", "changed")
    os.utime(root / "a.py", ns=(1, 1))  # a different mtime, whatever the clock
    (root / "sub" / "b.py").unlink()
    write(root, "c.py", "3")
    sync(root, dest)
    assert (dest / "a.py").read_text() == "changed"
    assert not (dest / "sub").exists() and (dest / "c.py").read_text() == "3"
    assert before  # b.py was copied once, then removed with its folder


def import_both() -> tuple[str, bool]:
    import visible_mod  # type: ignore[import-not-found]

    try:
        import ignored_mod  # type: ignore[import-not-found] # noqa: F401
    except ImportError:
        return visible_mod.NAME, False
    return visible_mod.NAME, True


def test_ignored_files_do_not_reach_the_cluster(
    cluster: rh.Cluster, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(project, ".gitignore", "ignored_mod.py\n")
    write(project, "visible_mod.py", "NAME = 'visible'\n")
    write(project, "ignored_mod.py", "NAME = 'ignored'\n")
    write(project, "wd_caller.py", "from tests.client.test_workdir import import_both\n")
    monkeypatch.syspath_prepend(str(project))
    caller = importlib.import_module("wd_caller")
    assert rh.function(caller.import_both).to(cluster)() == ("visible", False)


def test_only_regular_files_are_synced(tmp_path: Path) -> None:
    import socket

    root = tmp_path / "with_socket"
    write(root, "mod.py")
    os.mkfifo(root / "a_fifo")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(root / "a_socket"))
    try:
        assert project_files(root) == ["mod.py"]
    finally:
        server.close()


def test_no_sync_outside_a_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from runhouse.resources.env import code_root

    outside = tmp_path / "no_markers_anywhere"
    outside.mkdir()
    monkeypatch.chdir(outside)
    if any(
        (p / m).exists()
        for p in (outside, *outside.parents)
        for m in (".git", "pyproject.toml", "setup.py", "requirements.txt")
    ):
        pytest.skip("a parent of the temporary folder is itself a project")
    assert code_root(None) is None
    assert code_root(rh.env(working_dir="./", reqs=[])) is None
    assert code_root(rh.env(working_dir=str(outside), reqs=[])) == outside
