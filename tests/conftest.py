"""Every test runs in its own project folder and home, with no RH_* variables leaking in."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runhouse.names.folders import reset_folders

# The bucket servers (moto, the GCS emulator, Azurite) and their fixtures: s3, gcs, azure;
# PostgreSQL, Den, and Ray's nodes.
pytest_plugins = [
    "tests.storage_servers",
    "tests.postgres_server",
    "tests.den_servers",
    "tests.ray_nodes",  # ray_nodes: a Ray cluster of several nodes; ray_daemon_dir
]

# Set by session fixtures for every test: not settings, so not cleared between tests.
SESSION_VARIABLES = {"RH_SSH_CONTROL_DIR"}


@pytest.fixture(autouse=True)
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh project root (holding .git) as the cwd, and a fresh $HOME."""
    home = tmp_path / "home"
    home.mkdir()
    root = tmp_path / "project"
    (root / ".git").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    for name in list(os.environ):
        if name.startswith("RH_") and name not in SESSION_VARIABLES:
            monkeypatch.delenv(name)
    monkeypatch.chdir(root)
    reset_folders()
    yield root
    reset_folders()


@pytest.fixture
def python() -> str:
    """The interpreter running the tests, for child processes."""
    return sys.executable


@pytest.fixture(scope="session")
def shared_daemon_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One real daemon for the session (free port), started the way users start it."""
    from runhouse.client import local_daemon

    files = local_daemon.files_for(tmp_path_factory.mktemp("daemon"))
    local_daemon.start(files, port=0)
    yield files.root
    local_daemon.stop(files)


@pytest.fixture(scope="session")
def ssh_cluster(ssh_hosts: list[Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A cluster on the first SSH host, bootstrapped once for the session."""
    import runhouse as rh

    host = ssh_hosts[0]
    creds = {"ssh_user": host.user, "ssh_private_key": str(host.key)}
    c = rh.cluster(
        name="sshbox", host="127.0.0.1", ssh_creds=creds, ssh_port=host.port, server_port=0
    )
    with _home(tmp_path_factory.mktemp("ssh-cluster-home")):  # the wheel cache goes there
        c.up_if_not()
    yield c
    c.daemon_host.stop()


@pytest.fixture(params=["local", "ssh", "ray"])
def cluster(
    request: pytest.FixtureRequest, shared_daemon_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    """Each compute test runs three times: on the local cluster (the session's daemon), on
    an SSH host's cluster, and on a local daemon whose workers are Ray actors on a Ray
    cluster of three nodes; the cluster's objects are cleared after the test."""
    import runhouse as rh

    daemon_dir = shared_daemon_dir
    if request.param == "ray":
        daemon_dir = request.getfixturevalue("ray_daemon_dir")
    monkeypatch.setenv("RH_DAEMON_DIR", str(daemon_dir))
    monkeypatch.setenv("RH_AUTOSTART_DAEMON", "false")  # a test must never start another
    if request.param == "ssh":
        c = request.getfixturevalue("ssh_cluster")
        c.save()  # in this test's project, so saved functions and other processes find it
    else:
        c = rh.cluster(name="local")
    yield c
    c.clear()


@pytest.fixture
def shared_tmp(tmp_path: Path) -> Path:
    """A folder both this process and a cluster's workers can use, whoever they run as
    (the SSH hosts are users of this same machine)."""
    folder = tmp_path / "shared"
    folder.mkdir()
    for path in (folder, *folder.parents):
        if path == Path(tempfile.gettempdir()):
            break
        path.chmod(path.stat().st_mode | 0o711)  # traversable by the hosts' users
    folder.chmod(0o777)
    return folder


@contextlib.contextmanager
def _home(home: Path) -> Iterator[None]:
    previous = os.environ.get("HOME")
    os.environ["HOME"] = str(home)
    try:
        yield
    finally:
        if previous is None:
            del os.environ["HOME"]
        else:
            os.environ["HOME"] = previous


@pytest.fixture
def own_daemon_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A daemon folder of the test's own (for lifecycle tests); any daemon there is stopped."""
    from runhouse.client import local_daemon

    root = tmp_path / "own-daemon"
    monkeypatch.setenv("RH_DAEMON_DIR", str(root))
    yield root
    local_daemon.stop(local_daemon.files_for(root))


@pytest.fixture(scope="session")
def ssh_hosts() -> Iterator[list[Any]]:
    """Two real SSH hosts on loopback (different ports, users and homes)."""
    import shutil as _shutil

    from tests import sshd

    if os.geteuid() != 0 or not _shutil.which("rsync") or not os.path.exists(sshd.SSHD):
        pytest.skip("SSH hosts need root, openssh-server and rsync (scripts/test installs them)")
    from runhouse.client.runners.ssh import close_all

    root = sshd.make_root()
    key = sshd.client_key(root)
    control = root / "cm"  # the tests' own multiplexed connections, closed at the end
    control.mkdir(mode=0o700)
    os.environ["RH_SSH_CONTROL_DIR"] = str(control)
    hosts = [sshd.start_host(root, f"host{i}", f"rhtest{i}", key) for i in (1, 2)]
    yield hosts
    close_all(control)
    del os.environ["RH_SSH_CONTROL_DIR"]
    for host in hosts:
        host.stop()
    sshd.remove(root)
