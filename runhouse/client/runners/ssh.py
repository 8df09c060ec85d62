"""The SSH runner: the system OpenSSH client, one multiplexed connection per host.

Options: ControlMaster/ControlPersist (one TCP connection reused by every command, rsync
and tunnel), BatchMode (never a password prompt that would hang), ``accept-new`` host keys
(first contact records the key; a changed key is refused, never ignored), ConnectTimeout and
keep-alives (no hangs). The user's ``~/.ssh/config`` applies, as with plain ``ssh``.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import shlex
import subprocess
import tempfile
from pathlib import Path

from runhouse.client.runners.base import CommandRunner, Result
from runhouse.exceptions import CommandError, SSHError

CONNECT_TIMEOUT = 10


def control_dir() -> Path:
    """A short folder for control sockets (a socket path must fit in 108 bytes);
    ``RH_SSH_CONTROL_DIR`` overrides it."""
    configured = os.environ.get("RH_SSH_CONTROL_DIR")
    folder = (
        Path(configured) if configured else Path(tempfile.gettempdir()) / f"rh-ssh-{os.getuid()}"
    )
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


class SSHRunner(CommandRunner):
    """Runs commands on a host over SSH."""

    def __init__(
        self,
        host: str,
        user: str | None = None,
        port: int | None = None,
        key: str | None = None,
        known_hosts: str | None = None,
    ) -> None:
        self.host = host
        self.user = user
        self.port = port
        self.key = str(Path(key).expanduser()) if key else None
        self.known_hosts = known_hosts

    @property
    def target(self) -> str:
        """``user@host`` (or the host alias from ``~/.ssh/config``)."""
        return f"{self.user}@{self.host}" if self.user else self.host

    def options(self) -> list[str]:
        """The ssh options every connection to this host uses."""
        # The control socket is per host, port, user *and* key/known_hosts: a runner with
        # other credentials must not ride on a connection opened with these.
        identity = hashlib.sha256(f"{self.key}|{self.known_hosts}".encode()).hexdigest()[:10]
        opts = [
            "-o", "BatchMode=yes",
            "-o", "LogLevel=ERROR",
            "-o", "StrictHostKeyChecking=accept-new",
            "-o", f"ConnectTimeout={CONNECT_TIMEOUT}",
            "-o", "ServerAliveInterval=5",
            "-o", "ServerAliveCountMax=3",
            "-o", "ControlMaster=auto",
            "-o", f"ControlPath={control_dir()}/{identity}-%C",
            "-o", "ControlPersist=300",
        ]  # fmt: skip
        if self.port:
            opts += ["-p", str(self.port)]
        if self.key:
            opts += ["-i", self.key, "-o", "IdentitiesOnly=yes"]
        if self.known_hosts:
            opts += ["-o", f"UserKnownHostsFile={self.known_hosts}"]
        return opts

    def argv(self, command: str) -> list[str]:
        """``ssh <options> target -- bash -c command``."""
        return ["ssh", *self.options(), self.target, "--", f"bash -c {shlex.quote(command)}"]

    def check_connection(self, result: Result, command: str) -> None:
        """ssh exits 255 when it could not connect or log in: say which, and what to do."""
        returncode, _, stderr = result
        if returncode == 255:
            raise ssh_error(self, stderr)

    def rsync(self, source: str, dest: str, up: bool = True, gitignore: bool = True) -> None:
        """rsync over this host's SSH connection, honouring ``.gitignore`` by default."""
        shell = " ".join(shlex.quote(part) for part in ["ssh", *self.options()])
        src, dst = (source, f"{self.target}:{dest}") if up else (f"{self.target}:{source}", dest)
        if up and Path(source).expanduser().is_dir() and not source.endswith("/"):
            src = f"{Path(source).expanduser()}/"
        if up:
            self._make_parent(dest)
        else:
            Path(dest).expanduser().parent.mkdir(parents=True, exist_ok=True)
        command = ["rsync", "-az", "-e", shell]
        if gitignore:
            command.append("--filter=:- .gitignore")
        result = subprocess.run([*command, src, dst], capture_output=True, text=True)
        if result.returncode == 255 or "Permission denied" in result.stderr:
            raise ssh_error(self, result.stderr)
        if result.returncode != 0:
            raise CommandError("rsync " + " ".join([src, dst]), result.returncode, result.stderr)

    def _make_parent(self, dest: str) -> None:
        # rsync creates the destination itself but not the folders above it (--mkpath needs
        # rsync 3.2.3 on both ends): make them first, keeping a leading ~/ unquoted.
        parent = posixpath.dirname(dest.rstrip("/"))
        if parent in ("", ".", "/", "~"):
            return
        home, rest = ("~/", parent[2:]) if parent.startswith("~/") else ("", parent)
        [(rc, _, err)] = self.run(f"mkdir -p -- {home}{shlex.quote(rest)}", stream_logs=False)
        if rc != 0:
            raise CommandError(f"mkdir -p {parent}", rc, err)

    def close(self) -> None:
        """End the multiplexed connection."""
        subprocess.run(["ssh", *self.options(), "-O", "exit", self.target], capture_output=True)


def close_all(folder: Path) -> None:
    """End every multiplexed connection whose control socket is in ``folder``."""
    for socket_path in folder.glob("*"):
        command = ["ssh", "-o", f"ControlPath={socket_path}", "-O", "exit", "unused"]
        subprocess.run(command, capture_output=True)


def ssh_error(runner: SSHRunner, stderr: str) -> SSHError:
    """An ``SSHError`` that says what went wrong and what to do about it."""
    text = stderr.strip()
    where = f"{runner.target}" + (f" port {runner.port}" if runner.port else "")
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in text or "Host key verification failed" in text:
        reason = (
            f"the host key of {where} changed since it was first recorded. If the host was "
            "rebuilt on purpose, remove its old key with `ssh-keygen -R HOST`; otherwise do "
            "not connect"
        )
    elif "Permission denied" in text:
        reason = (
            f"{where} refused the key. Check ssh_creds (ssh_user, ssh_private_key) and that "
            "the public key is in the user's ~/.ssh/authorized_keys there"
        )
    elif any(
        s in text for s in ("Connection refused", "timed out", "No route", "Could not resolve")
    ):
        reason = f"{where} cannot be reached. Check the host, the port and that sshd runs there"
    else:
        reason = f"ssh to {where} failed"
    return SSHError(runner.target, reason, text)
