"""The daemon's TLS certificate: the one given, or a self-signed one made once and kept.

Clients pin the certificate itself (they read it from the daemon's machine), so a
self-signed one is as safe as a CA-signed one and needs no hostname to match.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from runhouse.exceptions import DaemonError

_DAYS = 3650


def certificate(folder: Path, certfile: str | None, keyfile: str | None) -> tuple[Path, Path]:
    """The (certificate, key) to serve: the given files, or a self-signed pair in ``folder``."""
    if certfile and keyfile:
        cert, key = Path(certfile).expanduser(), Path(keyfile).expanduser()
        for path in (cert, key):
            if not path.is_file():
                raise DaemonError(f"TLS file {path} does not exist")
        return cert, key
    cert, key = folder / "cert.pem", folder / "key.pem"
    if cert.is_file() and key.is_file():
        return cert, key
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    command = [
        "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-days", str(_DAYS), "-subj", "/CN=runhouse-daemon",
        "-addext", f"subjectAltName={_alt_names()}",
        "-keyout", str(key), "-out", str(cert),
    ]  # fmt: skip
    try:
        result = subprocess.run(command, capture_output=True, text=True)
    except FileNotFoundError:
        raise DaemonError(
            "--tls without --certfile needs `openssl` to make a self-signed certificate; "
            "install it, or pass --certfile and --keyfile"
        ) from None
    if result.returncode != 0:
        raise DaemonError(f"openssl could not make a certificate: {result.stderr.strip()}")
    key.chmod(0o600)
    return cert, key


def _alt_names() -> str:
    # Python clients pin the certificate and ignore names; these let curl --cacert check it
    # when the daemon is reached as this machine's name or on loopback.
    names = {"localhost", socket.gethostname(), socket.getfqdn()}
    return ",".join([*(f"DNS:{n}" for n in sorted(names) if n), "IP:127.0.0.1", "IP:::1"])
