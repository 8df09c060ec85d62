"""The SSH runner: the system OpenSSH client, one multiplexed connection per host.

Options: ControlMaster/ControlPersist (one TCP connection reused by every command, rsync
and tunnel), BatchMode (never a password prompt that would hang), ``accept-new`` host keys
(first contact records the key; a changed key is refused, never ignored), ConnectTimeout and
keep-alives (no hangs). The user's ``~/.ssh/config`` applies, as with plain ``ssh``.

Password logins (``ssh_creds={"ssh_user": ..., "password": ...}``) go through ``sshpass -e``:
the password reaches it in the child's environment (``SSHPASS``), never on a command line, and
is kept in memory only (a ``Password`` is hidden in reprs and dropped when pickled).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import posixpath
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from runhouse.client.runners.base import CommandRunner, Result, run_rsync
from runhouse.exceptions import CommandError, ConfigError, SSHError

CONNECT_TIMEOUT = 10
# The original named its control socket with this; ours is named per host, user and key.
_IGNORED_CRED_FIELDS = ("ssh_control_name",)
_SOCKET_SALT = os.urandom(16)  # per process: a socket name never reveals a password


class Password:
    """A password kept in memory only: hidden in reprs, and dropped when pickled (a cluster
    sent to a worker does not carry it)."""

    def __init__(self, value: str | None) -> None:
        self._value = value

    def reveal(self) -> str | None:
        """The password itself (``None`` once it has been through pickle)."""
        return self._value

    def __repr__(self) -> str:
        return "Password('***')"

    def __reduce__(self) -> tuple[type[Password], tuple[None]]:
        return (Password, (None,))

    def __copy__(self) -> Password:
        return self  # a copy in memory keeps it; only pickling drops it

    def __deepcopy__(self, memo: dict[int, object]) -> Password:
        return self


def parse_creds(
    creds: Mapping[str, str] | None, saved: Sequence[str]
) -> tuple[dict[str, str], Password | None]:
    """``ssh_creds`` split into the ``saved`` fields (those a config keeps) and the password
    (memory only). An unknown field, or a password without ``sshpass`` here, is a
    ``ConfigError``."""
    fields = dict(creds or {})
    unknown = sorted(set(fields) - {*saved, "password", *_IGNORED_CRED_FIELDS})
    if unknown:
        raise ConfigError(
            f"ssh_creds has unknown fields {unknown}; use {[*saved, 'password']} "
            "(ssh_private_key is the path of a key file, not its contents)"
        )
    password = fields.pop("password", None)
    if password is not None:
        if not isinstance(password, str) or not password:
            raise ConfigError("ssh_creds['password'] must be a non-empty string")
        if shutil.which("sshpass") is None:
            raise ConfigError(
                "ssh_creds has a password, and password logins need `sshpass` on this "
                "machine's PATH (apt-get install sshpass; brew install sshpass). Or log in "
                "with a key: ssh_creds={'ssh_user': ..., 'ssh_private_key': '~/.ssh/id_ed25519'}"
            )
    kept = {k: v for k, v in fields.items() if k in saved}
    return kept, Password(password) if password is not None else None


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
        password: Password | str | None = None,
        proxy_command: str | None = None,
    ) -> None:
        self.host = host
        self.user = user
        self.port = port
        self.key = str(Path(key).expanduser()) if key else None
        self.known_hosts = known_hosts
        self.password = Password(password) if isinstance(password, str) else password
        self.proxy_command = proxy_command

    @property
    def uses_password(self) -> bool:
        """Whether this runner logs in with a password (through ``sshpass``)."""
        return self.password is not None and self.password.reveal() is not None

    @property
    def target(self) -> str:
        """``user@host`` (or the host alias from ``~/.ssh/config``)."""
        return f"{self.user}@{self.host}" if self.user else self.host

    def options(self) -> list[str]:
        """The ssh options every connection to this host uses."""
        # The control socket is per host, port, user *and* key/known_hosts/password: a runner
        # with other credentials must not ride on a connection opened with these.
        secret = (self.password.reveal() if self.password else None) or ""
        salted = hmac.new(_SOCKET_SALT, secret.encode(), "sha256").hexdigest() if secret else ""
        identity = hashlib.sha256(
            f"{self.key}|{self.known_hosts}|{salted}|{self.proxy_command}".encode()
        ).hexdigest()[:10]
        opts = [
            # A password login answers a prompt (sshpass does): BatchMode would forbid it.
            "-o", "BatchMode=no" if self.uses_password else "BatchMode=yes",
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
        if self.proxy_command:
            opts += ["-o", f"ProxyCommand={self.proxy_command}"]
        if self.uses_password:
            opts += ["-o", "NumberOfPasswordPrompts=1"]  # a wrong password fails at once
        return opts

    def argv(self, command: str) -> list[str]:
        """``ssh <options> target -- bash -c command``."""
        return ["ssh", *self.options(), self.target, "--", f"bash -c {shlex.quote(command)}"]

    def check_connection(self, result: Result, command: str) -> None:
        """ssh exits 255 when it could not connect or log in: say which, and what to do."""
        returncode, _, stderr = result
        if returncode == 255:
            raise ssh_error(self, stderr)

    def run(
        self,
        commands: str | Sequence[str],
        env: Mapping[str, str] | None = None,
        stream_logs: bool = True,
        cwd: str | None = None,
        path: str | None = None,
    ) -> list[Result]:
        """Run each command in order (see ``CommandRunner.run``); a password login is made
        first, so that the commands ride on its connection."""
        if self.uses_password:
            self.login()
        return super().run(commands, env=env, stream_logs=stream_logs, cwd=cwd, path=path)

    def login(self) -> None:
        """Open (or reuse, which keeps it alive) the multiplexed connection, answering the
        password prompt with ``sshpass``."""
        command = ["ssh", *self.options(), self.target, "--", "true"]
        argv, environ = self._with_password(command)
        result = subprocess.run(
            argv, env=environ, stdin=subprocess.DEVNULL, capture_output=True, text=True
        )
        if result.returncode == 5:  # sshpass: the password was refused
            raise ssh_error(self, result.stderr or "Permission denied (password)")
        if result.returncode != 0:
            raise ssh_error(self, result.stderr)

    def _with_password(self, argv: list[str]) -> tuple[list[str], dict[str, str] | None]:
        """``argv`` run through ``sshpass -e``, and the environment that gives it the password
        (the password never appears on a command line)."""
        secret = self.password.reveal() if self.password else None
        if secret is None:
            return argv, None
        return ["sshpass", "-e", *argv], {**os.environ, "SSHPASS": secret}

    def rsync(
        self,
        source: str,
        dest: str,
        up: bool = True,
        gitignore: bool = True,
        progress: Callable[[int], None] | None = None,
        compress: bool = True,
    ) -> None:
        """rsync over this host's SSH connection, honouring ``.gitignore`` by default;
        ``progress`` gets the bytes sent so far; ``compress``: rsync's ``-z``."""
        shell = " ".join(shlex.quote(part) for part in ["ssh", *self.options()])
        src, dst = (source, f"{self.target}:{dest}") if up else (f"{self.target}:{source}", dest)
        if up and Path(source).expanduser().is_dir() and not source.endswith("/"):
            src = f"{Path(source).expanduser()}/"
        if up:
            self._make_parent(dest)
        else:
            Path(dest).expanduser().parent.mkdir(parents=True, exist_ok=True)
        command = ["rsync", "-az" if compress else "-a", "-e", shell]
        if gitignore:
            command.append("--filter=:- .gitignore")
        argv, environ = self._with_password([*command, src, dst])
        returncode, _, stderr = run_rsync(argv, environ, progress)
        refused = self.uses_password and returncode == 5  # sshpass: a wrong password
        if refused or returncode == 255 or "Permission denied" in stderr:
            raise ssh_error(self, stderr)
        if returncode != 0:
            raise CommandError("rsync " + " ".join([src, dst]), returncode, stderr)

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
    elif "Permission denied" in text and runner.uses_password:
        reason = f"{where} refused the password. Check ssh_creds (ssh_user, password)"
    elif "Permission denied" in text:
        reason = (
            f"{where} refused the key. Check ssh_creds (ssh_user, ssh_private_key) and that "
            "the public key is in the user's ~/.ssh/authorized_keys there. A password is never "
            "saved with a cluster: a loaded one needs it again (rh.cluster(name=..., host=..., "
            "ssh_creds={'ssh_user': ..., 'password': ...}))"
        )
    elif any(
        s in text for s in ("Connection refused", "timed out", "No route", "Could not resolve")
    ):
        reason = f"{where} cannot be reached. Check the host, the port and that sshd runs there"
    else:
        reason = f"ssh to {where} failed"
    return SSHError(runner.target, reason, text)
