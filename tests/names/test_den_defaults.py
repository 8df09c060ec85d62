"""``rh.configs.upload_defaults()`` / ``download_defaults()`` and ``runhouse config
upload-defaults|download-defaults`` against a real Den: what leaves the machine (not the Den
login, not credentials), what comes back (groups three deep: the nearest wins, the user's
own win over all; the Den login untouched), and the error when not logged in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import runhouse as rh
from runhouse.cli import main
from runhouse.config import Configs
from tests.den_servers import DenServer
from tests.names.den_people import admin, become, person, unique


@pytest.fixture
def homes(tmp_path: Path) -> Path:
    """Where the people of a test keep their homes."""
    return tmp_path / "homes"


def den_defaults(den: DenServer, token: str, merged: bool = False) -> dict[str, Any]:
    """What Den keeps for the token's user (or, merged, what applies to them)."""
    route = "/v1/defaults?merged=1" if merged else "/v1/defaults"
    reply = den.request("GET", route, token=token)
    assert reply.status == 200, reply
    return dict(reply.body["defaults"])


def test_upload_sends_settings_but_not_the_login_nor_credentials(
    den: DenServer, homes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ana = person(den, homes)
    become(monkeypatch, ana)
    rh.configs.set("worker_idle_timeout", 60)
    rh.configs.set("progress", False)
    rh.configs.set("gpu", "A10G")
    rh.configs.set("openai_api_key", "sk-not-for-den")
    rh.configs.set("den_ca_cert", "/etc/den.pem")
    rh.configs.set("storage", {"bucket": "b", "secret_key": "hush", "nested": [{"Token": "t"}]})

    sent = rh.configs.upload_defaults()
    expected = {
        "gpu": "A10G",
        "progress": False,
        "storage": {"bucket": "b", "nested": [{}]},
        "worker_idle_timeout": 60,
    }
    assert sent == expected
    assert den_defaults(den, ana.token) == expected
    assert rh.configs.get("openai_api_key") == "sk-not-for-den"  # the file keeps it all

    rh.configs.delete("gpu")
    assert "gpu" not in rh.configs.upload_defaults()  # uploading replaces what Den had
    assert "gpu" not in den_defaults(den, ana.token)


def test_download_merges_groups_three_deep_under_the_users_own(
    den: DenServer, homes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = unique("org")
    ana = person(den, homes)
    client = admin(den)
    try:
        for path, defaults in (
            (org, {"autostop_mins": 60, "gpu": "T4", "region": "us", "progress": "loud"}),
            (f"{org}/ml", {"autostop_mins": 30, "gpu": "A10G", "spot": False}),
            (f"{org}/ml/vision", {"autostop_mins": 10, "token": "evil", "den_url": "http://x"}),
        ):
            client.request("PUT", f"/v1/groups/{path}")
            client.request("PUT", f"/v1/group-defaults/{path}", {"defaults": defaults})
        body = {"username": ana.name, "role": "reader"}
        client.request("PUT", f"/v1/group-members/{org}/ml/vision", body)
    finally:
        client.close()
    become(monkeypatch, ana)
    rh.configs.set("spot", True)
    rh.configs.upload_defaults()

    # The same user on a second machine: logged in, nothing else set.
    laptop = homes / f"{ana.name}-laptop"
    login = {"den_url": den.url, "token": ana.token, "username": ana.name}
    Configs(laptop / ".rh" / "config.yaml").update({**login, "default_folder": f"/{ana.name}"})
    become(monkeypatch, laptop)
    written = rh.configs.download_defaults()
    assert written == {"autostop_mins": 10, "gpu": "A10G", "region": "us", "spot": True}
    stored = rh.configs.stored()
    assert stored == {**written, **login, "default_folder": f"/{ana.name}"}
    # "progress" is a boolean setting: a group's "loud" is left out, not written.
    assert "progress" not in stored

    # Downloading keeps local settings Den does not have, and takes Den's over the file's.
    rh.configs.set("daemon_dir", "/tmp/mine")
    rh.configs.set("autostop_mins", 99)
    rh.configs.download_defaults()
    assert rh.configs.get("daemon_dir") == "/tmp/mine"
    assert rh.configs.get("autostop_mins") == 10


def test_group_defaults_through_rh_group_reach_members(
    den: DenServer, homes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = unique("org")
    lead, ana = person(den, homes), person(den, homes)
    client = admin(den)
    try:
        client.request("PUT", f"/v1/groups/{org}")
        client.request("PUT", f"/v1/group-members/{org}", {"username": lead.name, "role": "admin"})
    finally:
        client.close()
    become(monkeypatch, lead)
    team = rh.group(f"/{org}/team")
    team.add_member(ana.name)
    assert team.set_defaults({"autostop_mins": 30}) == {"autostop_mins": 30}
    become(monkeypatch, ana)
    assert team.defaults == {"autostop_mins": 30}
    assert den_defaults(den, ana.token, merged=True) == {"autostop_mins": 30}
    assert rh.configs.download_defaults() == {"autostop_mins": 30}
    assert rh.configs.get("autostop_mins") == 30


def test_not_logged_in_says_so(homes: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    become(monkeypatch, homes / "nobody")
    for verb in (rh.configs.upload_defaults, rh.configs.download_defaults):
        with pytest.raises(rh.DenAuthError, match="not logged in") as raised:
            verb()
        assert "runhouse login" in str(raised.value)
    rh.configs.set("den_url", "http://127.0.0.1:9")
    with pytest.raises(rh.DenAuthError, match="no token"):
        rh.configs.upload_defaults()
    assert rh.configs.stored() == {"den_url": "http://127.0.0.1:9"}


def test_the_config_commands(
    den: DenServer,
    homes: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ana = person(den, homes)
    become(monkeypatch, ana)
    rh.configs.set("gpu", "A10G")
    rh.configs.set("aws_secret_access_key", "hush")
    assert main(["config", "upload-defaults"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == ["Den keeps 1 default(s) for you:", "gpu=A10G"]
    rh.configs.delete("gpu")
    assert main(["config", "download-defaults"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1:] == ["gpu=A10G"] and "Wrote 1 default(s)" in out
    assert rh.configs.get("gpu") == "A10G"
    become(monkeypatch, homes / "nobody")
    assert main(["config", "upload-defaults"]) == 1
    assert "not logged in" in capsys.readouterr().err
