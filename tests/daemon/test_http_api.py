"""The daemon's HTTP API driven raw: auth, bad input answered 4xx, the schema, JSON calls."""

from __future__ import annotations

import json
import stat
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import pytest

import runhouse as rh


def add(a: int, b: int) -> int:
    return a + b


def fail() -> None:
    raise RuntimeError("it broke")


def raw(
    cluster: rh.Cluster,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    token: str | None = "use-the-real-one",
) -> tuple[int, Any]:
    """One request on a fresh connection; returns the status and the JSON (or raw) body."""
    client = cluster._connected(autostart=False)
    conn = HTTPConnection(client.host, client.port, timeout=30)
    sent = dict(headers or {})
    if token == "use-the-real-one":
        token = client.token
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    conn.request(method, path, body=body, headers=sent)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    try:
        return response.status, json.loads(data)
    except ValueError:
        return response.status, data


def test_health_needs_no_token_and_reports_versions(cluster: rh.Cluster) -> None:
    status, body = raw(cluster, "GET", "/_rh/health", token=None)
    assert status == 200
    assert body["status"] == "ok" and body["runhouse"] == rh.__version__
    assert {"python", "cloudpickle"} <= set(body)


def test_missing_token_401_wrong_token_403(cluster: rh.Cluster) -> None:
    rh.function(add).to(cluster)
    status, body = raw(cluster, "POST", "/add/call", token=None)
    assert status == 401 and body["error"]["type"] == "AuthError"
    status, body = raw(cluster, "POST", "/add/call", token="not-the-token")
    assert status == 403
    for path in ("/_rh/status", "/_rh/keys"):
        assert raw(cluster, "GET", path, token=None)[0] == 401


def test_token_file_is_private_and_never_logged(
    cluster: rh.Cluster, shared_daemon_dir: Path
) -> None:
    token_file = shared_daemon_dir / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    raw(cluster, "GET", "/_rh/status", token="wrong")
    rh.function(add).to(cluster)(1, 2)
    assert token not in (shared_daemon_dir / "daemon.log").read_text()


def test_a_client_with_a_wrong_token_gets_auth_error(cluster: rh.Cluster) -> None:
    from runhouse.client.http import ClusterClient

    real = cluster._connected(autostart=False)
    client = ClusterClient(real.host, real.port, "wrong")
    with pytest.raises(rh.AuthError, match=r"403|wrong token") as info:
        client.json("GET", "/_rh/keys")
    assert info.value.status == 403
    client.close()


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status"),
    [
        ("POST", "/add/call", b"\x80\x04garbage", {}, 400),
        ("POST", "/add/call", b"{not json", {"Content-Type": "application/json"}, 400),
        ("POST", "/add/call", b'["a list"]', {"Content-Type": "application/json"}, 400),
        ("POST", "/add/call?op=explode", b"", {}, 400),
        ("POST", "/no_such_key/call", b"", {}, 404),
        ("POST", "/bad%0Akey/call", b"", {}, 400),
        ("PUT", "/_rh/objects/_rh", b"", {}, 400),
        ("PUT", "/_rh/objects/%20padded", b"", {}, 400),
        ("DELETE", "/add/call", b"", {}, 405),
        ("GET", "/_rh/nothing-here", b"", {}, 404),
        ("PUT", "/_rh/envs/e", b"[1]", {}, 400),
        ("PUT", "/_rh/envs/e", b'{"env_vars": {"A": 1}}', {}, 400),
        ("PUT", "/_rh/objects/x", b"not a pickle", {}, 400),
        ("GET", "/_rh/runs/never-started", b"", {}, 404),
        ("POST", "/_rh/cancel/never-started", b"", {}, 404),
    ],
)
def test_bad_requests_get_4xx_with_a_message(
    cluster: rh.Cluster, method: str, path: str, body: bytes, headers: dict[str, str], status: int
) -> None:
    rh.function(add).to(cluster)
    got, answer = raw(cluster, method, path, body, headers)
    assert got == status, answer
    if isinstance(answer, dict):
        assert answer["error"]["message"]
    else:
        assert answer  # a frame carrying the packed error
    assert rh.function(add).to(cluster)(1, 1) == 2  # the daemon and worker are fine


def test_json_calls_for_plain_http_clients(cluster: rh.Cluster) -> None:
    rh.function(add).to(cluster)
    rh.function(fail).to(cluster)
    headers = {"Content-Type": "application/json"}
    assert raw(cluster, "POST", "/add/call", b'{"args": [2], "kwargs": {"b": 3}}', headers) == (
        200,
        5,
    )
    status, answer = raw(cluster, "POST", "/fail/call", b"{}", headers)
    assert status == 500
    assert answer["error"]["type"] == "RuntimeError" and "it broke" in answer["error"]["message"]
    assert "in fail" in answer["error"]["traceback"]


def test_body_size_limit_is_413(cluster: rh.Cluster) -> None:
    rh.function(add).to(cluster)
    client = cluster._connected(autostart=False)
    conn = HTTPConnection(client.host, client.port, timeout=30)
    try:
        conn.putrequest("POST", "/add/call")
        conn.putheader("Authorization", f"Bearer {client.token}")
        conn.putheader("Content-Length", str(3 * 1024**3))  # declared, never sent
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 413
        assert "limit" in json.loads(response.read())["error"]["message"]
    finally:
        conn.close()


def test_openapi_schema_lists_every_route(cluster: rh.Cluster) -> None:
    status, schema = raw(cluster, "GET", "/_rh/openapi.json", token=None)
    assert status == 200 and schema["openapi"].startswith("3.")
    assert {"/_rh/health", "/_rh/status", "/_rh/objects/{key}", "/{key}/{method}"} <= set(
        schema["paths"]
    )


def test_put_get_keys_delete_clear(cluster: rh.Cluster) -> None:
    cluster.put("numbers", [1, 2, 3])
    cluster.put("other_env_obj", {"a": 1}, env=rh.Env(name="side"))
    assert cluster.get("numbers") == [1, 2, 3]
    assert cluster.get("missing", "default") == "default"
    assert set(cluster.keys()) >= {"numbers", "other_env_obj"}
    assert cluster.keys(env="side") == ["other_env_obj"]
    cluster.delete("numbers")
    assert "numbers" not in cluster.keys()
    with pytest.raises(KeyError, match="numbers"):
        cluster.delete("numbers")
    cluster.clear()
    assert cluster.keys() == []
