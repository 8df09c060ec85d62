"""Sharing and groups through the client, between real users of a real Den, each with a
$HOME (config and token) of their own: share, revoke, deny, visibility, groups three deep,
and the ``runhouse login``, ``logout`` and ``group`` commands."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

import runhouse as rh
from runhouse.cli import main
from runhouse.names.address import Address
from runhouse.names.den import DenStore
from tests.den_servers import DenServer
from tests.names.den_people import admin, become, person, token_for, unique


@pytest.fixture
def homes(tmp_path: Path) -> Path:
    """Where the people of a test keep their homes."""
    return tmp_path / "homes"


def test_share_revoke_and_visibility_between_two_users(
    den: DenServer, homes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ana, bo = person(den, homes), person(den, homes)
    model = f"/{ana.name}/model"

    become(monkeypatch, ana)
    env = rh.env(name="model", reqs=["v1"]).save()
    assert env.visibility == "private"

    become(monkeypatch, bo)
    with pytest.raises(rh.ResourceNotFoundError):  # existence is not revealed
        rh.load(model)
    assert not rh.exists(model)
    with pytest.raises(rh.PermissionDeniedError) as denied:
        rh.env(name=model, reqs=["mine"]).save()
    assert isinstance(denied.value, PermissionError) and model in str(denied.value)
    with pytest.raises(rh.PermissionDeniedError):
        rh.Env(name=model).share([bo.name])  # only who administers it may share it

    become(monkeypatch, ana)
    assert env.share(bo.name) == [bo.name]
    become(monkeypatch, bo)
    assert rh.load(model).reqs == ["v1"]
    with pytest.raises(rh.PermissionDeniedError):
        rh.env(name=model, reqs=["mine"]).save()

    become(monkeypatch, ana)
    assert env.share([bo.name], access_level="write") == [bo.name]
    grants = DenStore().grants(Address("den", (ana.name, "model")))
    assert [(g.principal, g.access) for g in grants] == [(bo.name, "write")]
    become(monkeypatch, bo)
    rh.env(name=model, reqs=["by bo"]).save()
    assert [v.author for v in rh.env(name=model).history()] == [bo.name, ana.name]

    become(monkeypatch, ana)
    assert env.revoke() == [bo.name]
    become(monkeypatch, bo)
    assert not rh.exists(model)

    become(monkeypatch, ana)
    env.visibility = "unlisted"
    assert env.visibility == "unlisted"
    become(monkeypatch, bo)
    assert rh.load(model).reqs == ["by bo"]  # anyone logged in who knows the address
    assert DenStore().ls(Address("den", (ana.name,))) == []  # but it is not listed

    become(monkeypatch, ana)
    env.share(bo.name, access_level="deny")
    become(monkeypatch, bo)
    assert not rh.exists(model)  # deny beats visibility
    become(monkeypatch, ana)
    assert env.revoke([bo.name]) == [bo.name]
    with pytest.raises(ValueError, match="visibility"):
        env.visibility = "everyone"
    with pytest.raises(ValueError, match="access_level"):
        env.share(bo.name, access_level="admin")


def test_a_share_to_an_unknown_user_names_them(
    den: DenServer, homes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    become(monkeypatch, person(den, homes))
    env = rh.env(name="x", reqs=[]).save()
    ghost = unique("ghost")
    with pytest.raises(rh.DenError, match=ghost) as info:
        env.share([ghost])
    assert info.value.status == 404


def test_sharing_a_local_resource_says_it_needs_den(project: Path) -> None:
    env = rh.env(name="~/local", reqs=[]).save()
    for attempt in (lambda: env.share(["bo"]), env.revoke, lambda: env.visibility):
        with pytest.raises(rh.StoreUnavailableError) as info:
            attempt()
        assert "runhouse login" in str(info.value) and "@/local" in str(info.value)


def test_groups_three_deep(den: DenServer, homes: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lead, ana, bo, out = (person(den, homes) for _ in range(4))
    org = unique("org")
    # A top-level group is Den's admin's to create; its admin runs it from there.
    client = admin(den)
    client.request("PUT", f"/v1/groups/{org}")
    client.request("PUT", f"/v1/group-members/{org}", {"username": lead.name, "role": "admin"})
    client.close()

    become(monkeypatch, lead)
    top = rh.group(f"/{org}")
    team = rh.group(f"/{org}/team")
    sub = rh.group(f"/{org}/team/sub")
    assert repr(sub) == f"Group('/{org}/team/sub')"
    top.add_member(ana.name, role="reader")
    sub.add_member(ana.name, role="writer")  # a role in a subgroup can raise it
    team.add_member(bo.name, role="reader")
    members = {(m.username, m.role, m.via) for m in sub.members()}
    assert members == {
        (lead.name, "admin", org),  # inherited from /org
        (ana.name, "writer", f"{org}/team/sub"),  # the highest of her roles on the way down
        (bo.name, "reader", f"{org}/team"),
    }
    rh.env(name=f"/{org}/team/sub/model", reqs=["deep"]).save()
    rh.env(name=f"/{org}/team/notes", reqs=["mid"]).save()

    become(monkeypatch, ana)
    assert rh.load(f"/{org}/team/sub/model").reqs == ["deep"]  # reader from /org
    rh.env(name=f"/{org}/team/sub/model", reqs=["ana's"]).save()  # writer in sub
    with pytest.raises(rh.PermissionDeniedError):
        rh.env(name=f"/{org}/team/notes", reqs=["no"]).save()  # only a reader there
    with pytest.raises(rh.PermissionDeniedError):
        rh.group(f"/{org}/team/other")  # creating a subgroup needs admin of the parent

    become(monkeypatch, bo)
    assert rh.load(f"/{org}/team/sub/model").reqs == ["ana's"]  # reader from /org/team
    with pytest.raises(rh.PermissionDeniedError):
        rh.env(name=f"/{org}/team/sub/model", reqs=["bo's"]).save()
    with pytest.raises(rh.PermissionDeniedError):
        sub.add_member(bo.name, role="admin")

    become(monkeypatch, out)
    assert not rh.exists(f"/{org}/team/sub/model")

    become(monkeypatch, lead)
    assert team.remove_member(bo.name) is True
    assert team.remove_member(bo.name) is False
    model = f"/{org}/team/sub/model"
    rh.env(name=model).share(f"/{org}/team/sub", access_level="deny")
    become(monkeypatch, ana)
    assert not rh.exists(model)  # a deny to a group covers its members
    become(monkeypatch, lead)
    assert not rh.exists(model)  # and the members of groups above it: deny beats roles
    client = admin(den)  # only a Den admin is above a deny
    client.request("DELETE", f"/v1/grants{model}", {"principals": None})
    client.close()
    assert rh.exists(model)

    become(monkeypatch, lead)
    with pytest.raises(rh.DenError, match="delete or move them first"):
        sub.delete()  # resources are saved beneath it
    rh.env(name=f"/{org}/team/sub/model").delete_configs()
    assert sub.delete() is True
    assert not sub.exists()
    with pytest.raises(KeyError, match="No group"):
        sub.members()


def test_group_defaults(
    den: DenServer, homes: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    org = unique("org")
    lead = person(den, homes)
    client = admin(den)
    client.request("PUT", f"/v1/groups/{org}")
    client.request("PUT", f"/v1/group-members/{org}", {"username": lead.name, "role": "admin"})
    client.close()
    become(monkeypatch, lead)
    team = rh.group(f"/{org}/team")
    assert team.defaults == {}
    assert team.set_defaults({"autostop_mins": 30}) == {"autostop_mins": 30}
    assert team.defaults == {"autostop_mins": 30}

    code, out, _ = run_cli(capsys, "group", "defaults", f"/{org}/team", "gpu=A10G", "spot=true")
    assert code == 0 and out.splitlines() == ["autostop_mins=30", 'gpu="A10G"', "spot=true"]
    assert run_cli(capsys, "group", "defaults", f"/{org}/team", "gpu=")[0] == 0
    assert team.defaults == {"autostop_mins": 30, "spot": True}
    code, out, _ = run_cli(capsys, "group", "show", f"/{org}/team")
    assert "default autostop_mins=30" in out and "default spot=true" in out
    code, _, err = run_cli(capsys, "group", "defaults", f"/{org}/team", "novalue")
    assert code == 1 and "KEY=VALUE" in err


def test_group_paths_must_be_on_den(project: Path) -> None:
    with pytest.raises(rh.InvalidNameError, match="/acme"):
        rh.group("~/team")


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run ``runhouse ARGV`` in this process; its exit code, stdout and stderr."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_login_group_and_logout(
    den: DenServer, capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    lead, ana = unique(), unique()
    lead_token, _ = token_for(den, lead), token_for(den, ana)
    org = unique("org")
    client = admin(den)
    client.request("PUT", f"/v1/groups/{org}")
    client.request("PUT", f"/v1/group-members/{org}", {"username": lead, "role": "admin"})
    client.close()

    code, out, err = run_cli(capsys, "login", "--token", lead_token + "x", "--den-url", den.url)
    assert code == 1 and "runhouse login --token" in err
    assert not (Path.home() / ".rh" / "config.yaml").exists()
    code, out, _ = run_cli(capsys, "login", "--token", lead_token, "--den-url", den.url)
    assert code == 0 and f"as {lead}" in out
    assert rh.configs.get("default_folder") == f"/{lead}"

    assert run_cli(capsys, "group", "create", f"/{org}/ml")[:2] == (
        0,
        f"Created group /{org}/ml.\n",
    )
    assert (
        run_cli(capsys, "group", "create", f"/{org}/ml")[1] == f"Group /{org}/ml exists already.\n"
    )
    assert run_cli(capsys, "group", "add", f"/{org}/ml", ana, "--role", "writer")[0] == 0
    code, out, _ = run_cli(capsys, "group", "show", f"/{org}/ml", "--json")
    shown = json.loads(out)
    assert shown["defaults"] == {}
    assert {"username": ana, "role": "writer", "via": f"{org}/ml"} in shown["members"]
    assert {"username": lead, "role": "admin", "via": org} in shown["members"]
    code, out, _ = run_cli(capsys, "group", "show", f"/{org}/ml")
    assert out.splitlines()[0].split() == ["USER", "ROLE", "VIA"]
    assert [ana, "writer", f"{org}/ml"] in [line.split() for line in out.splitlines()]
    assert run_cli(capsys, "group", "remove", f"/{org}/ml", ana)[0] == 0
    assert run_cli(capsys, "group", "remove", f"/{org}/ml", ana)[0] == 1
    with pytest.raises(SystemExit) as exited:  # argparse refuses it before anything runs
        main(["group", "add", f"/{org}/ml", ana, "--role", "owner"])
    assert exited.value.code == 2 and "invalid choice" in capsys.readouterr().err
    assert run_cli(capsys, "group", "delete", f"/{org}/ml")[0] == 0
    code, _, err = run_cli(capsys, "group", "show", f"/{org}/ml")
    assert code == 1 and "No group" in err

    code, out, _ = run_cli(capsys, "logout")
    assert code == 0 and "Logged out" in out
    assert rh.configs.stored() == {"den_url": den.url}
    code, _, err = run_cli(capsys, "group", "create", f"/{org}/other")
    assert code == 1 and "runhouse login" in err


def test_cli_login_without_a_token_off_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO())  # not a terminal: no prompt
    code, _, err = run_cli(capsys, "login")
    assert code == 1 and "--token" in err
