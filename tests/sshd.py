"""Real SSH "hosts" for tests: an sshd per host, on a free loopback port, each with its own
user and home (see docs/testing.md). Needs root (to create users), openssh-server and rsync."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"
HOMES = Path(tempfile.gettempdir()) / "rh-test-homes"


@dataclass
class SSHHost:
    """One running sshd and how to log in to it."""

    name: str
    user: str
    home: Path
    port: int
    key: Path
    proc: subprocess.Popen[bytes]
    host_key: Path

    def stop(self) -> None:
        """Stop this sshd and its sessions (its own process group)."""
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(10)


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_user(user: str) -> Path:
    """A local user whose key login works with PAM off, with a fixed home; returns it."""
    home = HOMES / user
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        subprocess.run(["useradd", "-M", "-d", str(home), "-s", "/bin/bash", user], check=True)
        subprocess.run(["usermod", "-p", "*", user], check=True)  # '!' would refuse key logins
    else:
        if entry.pw_dir != str(home):
            raise RuntimeError(f"user {user} exists with another home ({entry.pw_dir})")
    HOMES.mkdir(mode=0o755, exist_ok=True)
    shutil.rmtree(home, ignore_errors=True)  # a fresh home each session
    home.mkdir()
    return home


def start_host(root: Path, name: str, user: str, client_key: Path, extra: str = "") -> SSHHost:
    """Start an sshd for ``user`` whose home lives under ``root`` (``extra``: more config)."""
    home = ensure_user(user)
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(parents=True, exist_ok=True)
    (ssh_dir / "authorized_keys").write_text(Path(f"{client_key}.pub").read_text())
    entry = pwd.getpwnam(user)
    for path in (home, ssh_dir, ssh_dir / "authorized_keys"):
        os.chown(path, entry.pw_uid, entry.pw_gid)
    home.chmod(0o700)
    ssh_dir.chmod(0o700)
    return _serve(root, name, user, home, client_key, "127.0.0.1", free_port(), extra)


def start_node(root: Path, first: SSHHost, name: str, address: str) -> SSHHost:
    """Another "node" for ``first``'s user: an sshd on another loopback address (such as
    127.0.0.2) at the same port, as the hosts of one cluster share their SSH settings."""
    return _serve(root, name, first.user, first.home, first.key, address, first.port, "")


def _serve(
    root: Path, name: str, user: str, home: Path, key: Path, address: str, port: int, extra: str
) -> SSHHost:
    host_key = root / f"{name}_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True)
    config = root / f"{name}_sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress {address}\nHostKey {host_key}\nPidFile {root / name}.pid\n"
        "PasswordAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\n"
        "UsePAM no\nAllowTcpForwarding yes\nSubsystem sftp internal-sftp\n"
        "MaxStartups 100:30:200\nMaxSessions 100\nStrictModes yes\n" + extra
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    proc = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE, start_new_session=True
    )
    assert proc.stderr is not None
    line = proc.stderr.readline().decode()  # sshd -e reports when it listens
    proc.stderr.close()
    if "Server listening" not in line:
        proc.kill()
        proc.wait()
        raise RuntimeError(f"sshd for {name} did not start: {line}")
    _trust(address, port, host_key)
    return SSHHost(name, user, home, port, key, proc, host_key)


def _trust(address: str, port: int, host_key: Path) -> None:
    """Record this host's key as the one for its address and port. ssh keeps host keys in
    the real home's known_hosts (not $HOME's), where a test host of an earlier run on the
    same port left another key: with StrictHostKeyChecking=accept-new that reads as a
    changed host key."""
    known = Path(pwd.getpwuid(os.getuid()).pw_dir) / ".ssh" / "known_hosts"
    known.parent.mkdir(mode=0o700, exist_ok=True)
    target = f"[{address}]:{port}"
    subprocess.run(["ssh-keygen", "-R", target, "-f", str(known)], capture_output=True)
    public = " ".join(Path(f"{host_key}.pub").read_text().split()[:2])
    with known.open("a") as file:
        file.write(f"{target} {public}\n")


def make_root() -> Path:
    """A folder every test user can traverse, for their homes."""
    root = Path(tempfile.mkdtemp(prefix="rh-ssh-hosts-"))
    root.chmod(0o755)
    return root


def client_key(root: Path) -> Path:
    """A fresh client key pair (no passphrase)."""
    key = root / "client_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


def remove(root: Path) -> None:
    """Delete the hosts' files."""
    shutil.rmtree(root, ignore_errors=True)
