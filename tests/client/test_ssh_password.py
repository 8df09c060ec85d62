"""SSH logins with a password (``ssh_creds={"ssh_user": ..., "password": ...}``) through
sshpass, on a real sshd of their own that accepts only a password for its own user."""

from __future__ import annotations

import os
import pickle
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import runhouse as rh

USER = "rhtestpw"  # no other test uses this user, nor this host's port


@dataclass
class PasswordHost:
    port: int
    password: str

    def creds(self, password: str | None = None) -> dict[str, str]:
        return {"ssh_user": USER, "password": password or self.password}


@pytest.fixture(scope="module")
def password_host() -> Iterator[PasswordHost]:
    """An sshd on a free loopback port where ``rhtestpw`` logs in with a password only."""
    from runhouse.client.runners.ssh import close_all
    from tests import sshd

    tools = all(shutil.which(t) for t in ("rsync", "sshpass"))
    if os.geteuid() != 0 or not tools or not os.path.exists(sshd.SSHD):
        pytest.skip("needs root, openssh-server, rsync and sshpass (scripts/test installs them)")
    root = sshd.make_root()
    extra = f"Match User {USER}\n  PasswordAuthentication yes\n  PubkeyAuthentication no\n"
    host = sshd.start_host(root, "pwhost", USER, sshd.client_key(root), extra=extra)
    password = secrets.token_urlsafe(12)
    subprocess.run(["chpasswd"], input=f"{USER}:{password}\n", text=True, check=True)
    control = root / "cm"  # this module's own multiplexed connections, closed at the end
    control.mkdir(mode=0o700)
    previous = os.environ.get("RH_SSH_CONTROL_DIR")
    os.environ["RH_SSH_CONTROL_DIR"] = str(control)
    yield PasswordHost(host.port, password)
    close_all(control)
    if previous is None:
        del os.environ["RH_SSH_CONTROL_DIR"]
    else:
        os.environ["RH_SSH_CONTROL_DIR"] = previous
    host.stop()
    sshd.remove(root)


def password_cluster(host: PasswordHost, **kwargs: Any) -> rh.Cluster:
    return rh.cluster(
        host="127.0.0.1", ssh_creds=host.creds(), ssh_port=host.port, server_port=0, **kwargs
    )


def whoami() -> str:
    import getpass

    return getpass.getuser()


def test_commands_and_rsync_log_in_with_the_password(
    password_host: PasswordHost, tmp_path: Path
) -> None:
    c = password_cluster(password_host)
    [(rc, out, _)] = c.run("whoami", stream_logs=False)
    assert (rc, out.strip()) == (0, USER)
    (tmp_path / "up").mkdir()
    (tmp_path / "up" / "a.txt").write_text("hello")
    c.rsync(str(tmp_path / "up"), "~/copied/up", up=True)
    c.rsync("~/copied/up/", str(tmp_path / "down"), up=False)
    assert (tmp_path / "down" / "a.txt").read_text() == "hello"


def test_the_password_is_never_on_a_command_line(
    password_host: PasswordHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[list[str], dict[str, str] | None]] = []

    class Recording(subprocess.Popen):  # type: ignore[type-arg]
        def __init__(self, args: Any, *rest: Any, **kwargs: Any) -> None:
            seen.append(([str(a) for a in args], kwargs.get("env")))
            super().__init__(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", Recording)
    c = password_cluster(password_host)
    c.run("true", stream_logs=False)
    (tmp_path / "f.txt").write_text("x")
    c.rsync(str(tmp_path / "f.txt"), "~/f.txt")
    assert seen and all(password_host.password not in " ".join(argv) for argv, _ in seen)
    through_sshpass = [env for argv, env in seen if argv[0] == "sshpass"]
    assert through_sshpass and all(
        env["SSHPASS"] == password_host.password for env in through_sshpass
    )  # type: ignore[index]
    assert "SSHPASS" not in os.environ


def test_the_password_is_never_saved_nor_pickled(
    password_host: PasswordHost, project: Path
) -> None:
    c = password_cluster(password_host, name="pwbox").save()
    assert c.config()["ssh_creds"] == {"ssh_user": USER}
    saved = "".join(p.read_text() for p in (project / "rh").rglob("*") if p.is_file())
    assert password_host.password not in saved
    assert password_host.password.encode() not in pickle.dumps(c)
    assert password_host.password not in repr(c.__dict__)


def test_a_loaded_cluster_needs_the_password_again(password_host: PasswordHost) -> None:
    password_cluster(password_host, name="pwsaved").save()
    loaded = rh.cluster(name="pwsaved")
    with pytest.raises(rh.SSHError, match="A password is never saved"):
        loaded.run("true", stream_logs=False)
    again = rh.cluster(name="pwsaved", ssh_creds={"password": password_host.password})
    assert again.run("echo in", stream_logs=False) == [(0, "in\n", "")]
    assert again.config()["ssh_creds"] == {"ssh_user": USER}  # still saved without it


def test_a_wrong_password_says_so(password_host: PasswordHost) -> None:
    c = rh.cluster(
        host="127.0.0.1", ssh_creds=password_host.creds("wrong"), ssh_port=password_host.port
    )
    with pytest.raises(rh.SSHError, match="refused the password"):
        c.run("true", stream_logs=False)


def test_a_local_package_is_copied_to_the_cluster(
    password_host: PasswordHost, project: Path
) -> None:
    (project / "lib").mkdir()
    (project / "lib" / "helper.py").write_text("X = 1\n")
    (project / "lib" / ".gitignore").write_text("*.log\n")
    (project / "lib" / "debug.log").write_text("noise")
    c = password_cluster(password_host)
    copied = rh.package(path="./lib").to(c)
    assert copied.install_target.startswith(c.daemon_host.home + "/.rh/packages/lib-")  # type: ignore[attr-defined]
    [(_, listing, _)] = c.run(f"ls -A {copied.install_target}", stream_logs=False)
    assert sorted(listing.split()) == [".gitignore", "helper.py"]


def test_a_function_runs_over_a_password_login(password_host: PasswordHost) -> None:
    c = password_cluster(password_host)
    try:
        assert rh.function(whoami).to(c)() == USER  # bootstrap, daemon and tunnel
    finally:
        c.daemon_host.stop()


def test_without_sshpass_a_password_is_refused_at_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no sshpass there
    with pytest.raises(rh.ConfigError, match="password logins need `sshpass`"):
        rh.cluster(host="10.0.0.9", ssh_creds={"ssh_user": "u", "password": "p"})


def test_unknown_ssh_creds_fields_are_refused_not_dropped() -> None:
    with pytest.raises(rh.ConfigError, match="unknown fields"):
        rh.cluster(host="10.0.0.9", ssh_creds={"ssh_user": "u", "pasword": "p"})
    proxied = rh.cluster(
        host="10.0.0.9", ssh_creds={"ssh_user": "u", "ssh_proxy_command": "ssh -W %h:%p jump"}
    )
    assert proxied.config()["ssh_creds"]["ssh_proxy_command"] == "ssh -W %h:%p jump"
