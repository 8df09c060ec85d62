"""Secrets' values on Den through the client, on a real Den (SQLite and PostgreSQL): the
backend suite; a secret saved logged in loads with its values on another machine (a second
HOME) logged in as the same user; another user finds nothing; a group it is shared with
reads it until revoked; every read is in the audit log; values never reach this machine's
disk, nor Den's answers' errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import runhouse as rh
from runhouse.exceptions import ResourceNotFoundError
from runhouse.names.address import Address
from runhouse.names.den import DenStore
from runhouse.secrets.backends.base import backend_for
from runhouse.secrets.backends.den import DenBackend
from runhouse.secrets.backends.local import LocalBackend
from tests.den_servers import DenServer
from tests.names.den_people import Person, become, person, unique
from tests.secrets.backend_suite import BackendSuite


@pytest.fixture
def homes(tmp_path: Path) -> Path:
    """Where the people (and machines) of a test keep their homes."""
    return tmp_path / "homes"


def aws_values(marker: str) -> dict[str, str]:
    return {"access_key": f"AKIA{marker}", "secret_key": f"s-{marker}"}


def files_holding(marker: str, *folders: Path) -> list[Path]:
    """The files under ``folders`` that hold ``marker``."""
    needle = marker.encode()
    return [p for f in folders for p in f.rglob("*") if p.is_file() and needle in p.read_bytes()]


def audit_events(den: DenServer, user: str) -> list[dict[str, Any]]:
    """The audit log's events of ``user`` (as Den's admin), oldest first."""
    reply = den.request("GET", f"/v1/audit?user={user}", token=den.admin_token)
    assert reply.status == 200, reply
    return list(reversed(reply.body["events"]))


class TestDenBackend(BackendSuite):
    """The suite against Den, as a logged-in user, in their own folder."""

    @pytest.fixture
    def user(self, den: DenServer, homes: Path, monkeypatch: pytest.MonkeyPatch) -> Person:
        who = person(den, homes)
        become(monkeypatch, who)
        return who

    @pytest.fixture
    def backend(self, user: Person) -> DenBackend:
        return DenBackend()

    @pytest.fixture
    def at(self, user: Person) -> Callable[..., Address]:
        return lambda *parts: Address("den", (user.name, *parts))

    @pytest.fixture
    def saved(self, user: Person) -> Callable[[Address, int], None]:
        def save(address: Address, version: int) -> None:
            store = DenStore()
            try:
                current = store.history(address, 1)[0].version
            except ResourceNotFoundError:
                current = 0
            for _ in range(current, version):
                store.append(address, {"resource_type": "secret", "name": str(address)}, "")

        return save

    def test_values_go_to_den_not_to_this_machine(
        self, backend: DenBackend, user: Person, saved: Callable[[Address, int], None]
    ) -> None:
        address = Address("den", (user.name, "mine"))
        assert isinstance(backend_for(address), DenBackend)
        assert isinstance(backend_for(Address("local", ("x",))), LocalBackend)
        saved(address, 1)
        backend.put(address, 1, {"K": "v"})
        assert not (user.home / ".rh" / "secrets").exists()


def test_a_secret_saved_logged_in_loads_on_another_machine(
    den: DenServer, homes: Path, project: Path, marker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ana = person(den, homes)
    become(monkeypatch, ana)
    rh.provider_secret("aws", values=aws_values(marker)).save()
    k = rh.secret(name="openai", values={"OPENAI_API_KEY": marker}).save()
    k.values = {"OPENAI_API_KEY": f"v2-{marker}"}
    k.save()
    assert not (ana.home / ".rh" / "secrets").exists()  # nothing on this machine's disk
    assert files_holding(marker, ana.home, project) == []

    laptop = person(den, homes / "laptop", name=ana.name)  # the same user, another HOME
    assert laptop.home != ana.home
    become(monkeypatch, laptop)
    there = rh.load("aws")
    assert isinstance(there, rh.ProviderSecret) and there.rns_address == f"/{ana.name}/aws"
    assert there.values == aws_values(marker)
    assert rh.secret(name="openai").values == {"OPENAI_API_KEY": f"v2-{marker}"}
    restored = rh.secret(name="openai").rollback(1)
    assert restored.values == {"OPENAI_API_KEY": marker}
    assert rh.secret(name="openai").values == {"OPENAI_API_KEY": marker}  # as version 3
    assert [v.version for v in restored.history()] == [3, 2, 1]
    assert marker not in repr(there) + str(there) + json.dumps(there.config())
    assert files_holding(marker, laptop.home, project) == []

    rh.secret(name="openai").delete_configs()
    assert not rh.exists("openai")
    rows = den.sql(
        "SELECT count(*) FROM secret_values v JOIN resources r ON r.id = v.resource_id "
        "WHERE r.path = :path",
        path=f"{ana.name}/openai",
    )
    assert rows == [(0,)]


def test_another_user_finds_nothing(
    den: DenServer, homes: Path, marker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ana, bo = person(den, homes), person(den, homes)
    become(monkeypatch, ana)
    rh.provider_secret("aws", values=aws_values(marker)).save()
    address = Address("den", (ana.name, "aws"))

    become(monkeypatch, bo)
    with pytest.raises(rh.ResourceNotFoundError):
        rh.load(f"/{ana.name}/aws")
    with pytest.raises(rh.SecretValuesMissingError) as caught:
        DenBackend().get(address, 1)
    assert "or you may not read them" in str(caught.value)
    with pytest.raises(rh.PermissionDeniedError):
        DenBackend().put(address, 1, {"access_key": "mine"})


def test_sharing_with_a_group_lets_members_read_the_values_until_revoked(
    den: DenServer, homes: Path, marker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ana, bo = person(den, homes), person(den, homes)
    team = unique("team")
    group = den.request("PUT", f"/v1/groups/{team}", token=den.admin_token)
    assert group.status == 200
    member = {"username": bo.name, "role": "reader"}
    added = den.request("PUT", f"/v1/group-members/{team}", member, token=den.admin_token)
    assert added.status == 200
    name = f"/{ana.name}/hf"

    become(monkeypatch, ana)
    s = rh.secret(name="hf", values={"HF_TOKEN": marker}).save()
    assert s.share([f"/{team}"]) == [f"/{team}"]

    become(monkeypatch, bo)
    assert rh.secret(name=name).values == {"HF_TOKEN": marker}

    become(monkeypatch, ana)
    assert s.revoke() == [f"/{team}"]
    become(monkeypatch, bo)
    with pytest.raises(rh.ResourceNotFoundError):
        rh.secret(name=name)
    with pytest.raises(rh.SecretValuesMissingError):
        DenBackend().get(Address("den", (ana.name, "hf")))

    reads = [
        e
        for who in (ana.name, bo.name)
        for e in audit_events(den, who)
        if e["action"] == "secret.read"
    ]
    assert [(e["actor"], e["outcome"]) for e in reads] == [
        (bo.name, "ok"),
        (bo.name, "denied"),
    ]
    assert all(e["target"] == name for e in reads)
    assert marker not in json.dumps(audit_events(den, ana.name) + audit_events(den, bo.name))
    assert marker not in den.output
