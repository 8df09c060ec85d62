"""Every test runs in its own project folder and home, with no RH_* variables leaking in."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from runhouse.names.folders import reset_folders


@pytest.fixture(autouse=True)
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh project root (holding .git) as the cwd, and a fresh $HOME."""
    home = tmp_path / "home"
    home.mkdir()
    root = tmp_path / "project"
    (root / ".git").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    for name in list(os.environ):
        if name.startswith("RH_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(root)
    reset_folders()
    yield root
    reset_folders()


@pytest.fixture
def python() -> str:
    """The interpreter running the tests, for child processes."""
    return sys.executable
