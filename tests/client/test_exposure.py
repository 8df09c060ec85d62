"""Exposed daemons: TLS with a pinned certificate, a token unless explicitly insecure, and
no listening beyond loopback without auth unless asked for."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

import runhouse as rh
from runhouse.client import local_daemon
from runhouse.client.http import ClusterClient
from runhouse.wire.exposure import Exposure


def add(a: int, b: int) -> int:
    return a + b


def status_of(url: str, token: str | None = None, **kwargs: Any) -> int:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10, **kwargs) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_no_auth_beyond_loopback_is_refused_unless_insecure(
    own_daemon_dir: Path, python: str
) -> None:
    files = local_daemon.files_for(own_daemon_dir)
    with pytest.raises(rh.DaemonError, match=r"without auth.*--insecure"):
        local_daemon.start(files, 0, Exposure(host="0.0.0.0", auth=False))
    cli = subprocess.run(
        [python, "-m", "runhouse.daemon", "--host", "0.0.0.0", "--port", "0", "--no-auth"],
        capture_output=True,
        text=True,
        env={"RH_DAEMON_DIR": str(own_daemon_dir), "PATH": "/usr/bin:/bin"},
    )
    assert cli.returncode == 2 and "refusing to listen on 0.0.0.0 without auth" in cli.stderr
    info = local_daemon.start(files, 0, Exposure(host="0.0.0.0", auth=False, insecure=True))
    assert info["auth"] is False
    assert status_of(f"http://127.0.0.1:{info['port']}/_rh/keys") == 200  # no token needed


def test_tls_daemon_pins_its_certificate_and_wants_the_token(own_daemon_dir: Path) -> None:
    c = rh.cluster(name="local", server_port=0, server_connection_type="tls").up_if_not()
    assert rh.function(add).to(c)(1, 2) == 3
    client = c._connected(autostart=False)
    assert client.base_url.startswith("https://") and client.certificate
    base = client.base_url
    pinned = c.certificate_file()
    assert pinned is not None
    import ssl

    context = ssl.create_default_context(cafile=str(pinned))
    assert status_of(f"{base}/_rh/keys", context=context) == 401
    assert status_of(f"{base}/_rh/keys", "wrong", context=context) == 403
    assert status_of(f"{base}/_rh/keys", c.token(), context=context) == 200
    with pytest.raises((urllib.error.URLError, ConnectionError)):  # plain HTTP is not served
        urllib.request.urlopen(base.replace("https", "http") + "/_rh/health", timeout=10)
    # curl, given the line http_curl makes, checks the certificate too
    curl = subprocess.run(
        rh.function(add).to(c).http_curl(2, 3), shell=True, capture_output=True, text=True
    )
    assert curl.returncode == 0, curl.stderr
    assert json.loads(curl.stdout) == 5
    log = (own_daemon_dir / "daemon.log").read_text()
    assert "https://" in log and c.token() not in log


def test_a_client_refuses_a_daemon_with_another_certificate(own_daemon_dir: Path) -> None:
    c = rh.cluster(name="local", server_port=0, server_connection_type="tls").up_if_not()
    client = c._connected(autostart=False)
    other = own_daemon_dir.parent / "other-tls"
    other_cert, _ = _self_signed(other)
    impostor = ClusterClient(
        client.host, client.port, client.token, certificate=other_cert.read_text()
    )
    with pytest.raises(rh.AuthError, match="certificate other than the one pinned"):
        impostor.json("GET", "/_rh/keys")


def test_a_given_certificate_is_served(own_daemon_dir: Path, tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path / "given")
    c = rh.cluster(
        name="local",
        server_port=0,
        server_connection_type="tls",
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
    ).up_if_not()
    assert c._connected(autostart=False).certificate == cert.read_text()
    assert c.keys() == []


def test_bad_connection_settings_fail_early() -> None:
    with pytest.raises(ValueError, match="server_connection_type must be one of"):
        rh.cluster(name="x", host="h", server_connection_type="telnet")
    with pytest.raises(ValueError, match="both ssl_certfile and ssl_keyfile"):
        rh.cluster(name="x", host="h", server_connection_type="tls", ssl_certfile="c.pem")
    with pytest.raises(ValueError, match='need server_connection_type="tls"'):
        rh.cluster(name="x", host="h", ssl_certfile="c.pem", ssl_keyfile="k.pem")
    with pytest.raises(ValueError, match="den_auth"):
        rh.cluster(name="x", host="h", den_auth=True)


@pytest.mark.parametrize("kind", ["tls", "none"])
def test_an_exposed_ssh_cluster_is_called_directly(ssh_hosts: list[Any], kind: str) -> None:
    host = ssh_hosts[1]  # the first host serves the session's `ssh_cluster`
    creds = {"ssh_user": host.user, "ssh_private_key": str(host.key)}
    c = rh.cluster(
        name=f"exposed-{kind}",
        host="127.0.0.1",
        ssh_creds=creds,
        ssh_port=host.port,
        server_port=0,
        server_connection_type=kind,
    )
    try:
        assert rh.function(add).to(c)(2, 2) == 4
        client = c._connected(autostart=False)
        daemon = c.status()["daemon"]
        assert client.port == daemon["port"]  # straight to the daemon, no tunnel
        assert client.base_url.startswith("https://" if kind == "tls" else "http://")
        assert client.token  # a token is still required
        assert c.save().config()["server_connection_type"] == kind
    finally:
        c.daemon_host.stop()


def test_an_insecure_ssh_cluster_needs_no_token(ssh_hosts: list[Any]) -> None:
    host = ssh_hosts[1]
    creds = {"ssh_user": host.user, "ssh_private_key": str(host.key)}
    c = rh.cluster(
        host="127.0.0.1",
        ssh_creds=creds,
        ssh_port=host.port,
        server_port=0,
        server_connection_type="none",
        insecure=True,
    )
    try:
        assert rh.function(add).to(c)(3, 4) == 7
        client = c._connected(autostart=False)
        assert client.token is None
        assert status_of(f"{client.base_url}/_rh/keys") == 200
    finally:
        c.daemon_host.stop()


def _self_signed(folder: Path) -> tuple[Path, Path]:
    from runhouse.daemon.tls import certificate

    return certificate(folder, None, None)
