"""People on a real Den for client tests: a user, their token, and a $HOME of their own in
which they are logged in, so that a test can switch between users the way two people on
two machines would (each reads their own ~/.rh/config.yaml)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

import pytest

from runhouse.config import Configs
from runhouse.names.den_client import DenClient
from runhouse.names.folders import reset_folders
from tests.den_servers import DenServer


@dataclass(frozen=True)
class Person:
    """A Den user, their token, and their home folder (holding .rh/config.yaml)."""

    name: str
    token: str
    home: Path


def unique(prefix: str = "u") -> str:
    """A name no other test in the session uses (users, groups and folders share Den)."""
    return f"{prefix}{secrets.token_hex(5)}"


def admin(den: DenServer) -> DenClient:
    """A client that talks to Den as its admin."""
    return DenClient(den.url, den.admin_token)


def token_for(den: DenServer, name: str) -> str:
    """A token for user ``name``, who is created if Den does not know them yet."""
    client = admin(den)
    try:
        reply = client.request(
            "POST", "/v1/users", {"username": name, "admin": False}, accept=(409,)
        )
        if reply.status != 409:
            return str(reply.body["token"])
        body = {"name": "tests", "expires_in_days": None, "username": name}
        return str(client.request("POST", "/v1/tokens", body).body["token"])
    finally:
        client.close()


def person(den: DenServer, homes: Path, name: str | None = None) -> Person:
    """A user with a token and a home of their own, logged in to ``den`` there."""
    name = name or unique()
    token = token_for(den, name)
    home = homes / name
    home.mkdir(parents=True, exist_ok=True)
    configs = Configs(home / ".rh" / "config.yaml")
    for key, value in (
        ("den_url", den.url),
        ("token", token),
        ("username", name),
        ("default_folder", f"/{name}"),
    ):
        configs.set(key, value)
    return Person(name, token, home)


def become(monkeypatch: pytest.MonkeyPatch, who: Person | Path) -> None:
    """From now on this process is ``who`` (their $HOME, so their config and token)."""
    monkeypatch.setenv("HOME", str(who.home if isinstance(who, Person) else who))
    reset_folders()
