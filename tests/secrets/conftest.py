"""Fixtures for secrets: a marker value to hunt for, fake homes, and clusters whose home is
the test's own (a secret sent to a cluster writes into the daemon user's home: never the
home of whoever runs the tests)."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runhouse.client import local_daemon
from runhouse.secrets.registry import known, provider_class

# Variables of every provider, cleared for each test so the machine's own never leak in.
PROVIDER_VARIABLES = sorted(
    {
        name
        for provider in known()
        for name in [
            *provider_class(provider).variables.values(),
            provider_class(provider).path_variable or "",
        ]
        if name
    }
)


# Every marker of this session starts so: tests/test_zz_secrets_stay_hidden.py, run last,
# looks for it in every file the suite wrote.
SESSION_MARK = f"rhmark{secrets.token_hex(4)}"
USED: list[str] = []  # the markers handed out this session
# A folder a test writes credentials to as a provider's source at a path of its own choosing
# (not the provider's default file): a place meant to hold values.
SOURCE_FOLDER = "credentials-source"


@pytest.fixture
def marker() -> str:
    """A value that must show only where it is meant to (values, the files written)."""
    USED.append(f"{SESSION_MARK}{secrets.token_hex(6)}")
    return USED[-1]


@pytest.fixture(autouse=True)
def no_provider_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """No provider's variables from the machine running the tests."""
    for name in PROVIDER_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@contextlib.contextmanager
def environment(**changes: str | None) -> Iterator[None]:
    """``os.environ`` changed for a block (``None`` removes), for fixtures wider than a test."""
    before = {name: os.environ.get(name) for name in changes}
    for name, value in changes.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="module")
def home_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """A real daemon whose user's home is a folder of the test's: (daemon folder, home).
    It is started with no provider variables, so its workers read only files."""
    root = tmp_path_factory.mktemp("secrets-daemon")
    home = tmp_path_factory.mktemp("secrets-daemon-home")
    files = local_daemon.files_for(root)
    cleared: dict[str, str | None] = {name: None for name in PROVIDER_VARIABLES}
    with environment(HOME=str(home), **cleared):
        local_daemon.start(files, port=0)
    yield root, home
    local_daemon.stop(files)


@pytest.fixture
def home_cluster(home_daemon: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The local cluster of ``home_daemon`` (for tests that need no SSH variant)."""
    import runhouse as rh

    monkeypatch.setenv("RH_DAEMON_DIR", str(home_daemon[0]))
    monkeypatch.setenv("RH_AUTOSTART_DAEMON", "false")
    c = rh.cluster(name="local")
    yield c
    c.clear()


@pytest.fixture(params=["local", "ssh"])
def secrets_cluster(
    request: pytest.FixtureRequest,
    home_daemon: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Any, Path, Path]]:
    """(cluster, its daemon user's home, its daemon's log): the daemon of ``home_daemon``,
    or the SSH host's (a user of this machine with a home of its own)."""
    import runhouse as rh

    if request.param == "ssh":
        c = request.getfixturevalue("ssh_cluster")
        host = request.getfixturevalue("ssh_hosts")[0]
        c.save()
        yield c, host.home, host.home / ".rh" / "daemon" / "daemon.log"
    else:
        root, home = home_daemon
        monkeypatch.setenv("RH_DAEMON_DIR", str(root))
        monkeypatch.setenv("RH_AUTOSTART_DAEMON", "false")  # never start another
        c = rh.cluster(name="local")
        yield c, home, local_daemon.files_for(root).log
    c.clear()
