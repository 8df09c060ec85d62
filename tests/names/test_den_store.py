"""The Den store against a real Den (SQLite and PostgreSQL): the store conformance suite,
logging in and out, routing names, an unreachable Den, check-and-set saves from several
processes, and every resource kind saved, versioned and deleted there."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import runhouse as rh
from runhouse.cli import main
from runhouse.names.address import Address
from runhouse.names.den import DenStore
from runhouse.names.store import ResourceVersion
from tests.conformance.store_suite import MakeAddress, StoreConformance
from tests.den_servers import DenServer, start_den
from tests.names.den_people import Person, become, person, token_for, unique


class AuthorsDenStore(DenStore):
    """Den records the token's user as a version's author, and the suite saves as "ana" and
    as "bo": so each save here goes with that author's own token (both real Den users)."""

    def __init__(self, url: str, tokens: dict[str, str]) -> None:
        super().__init__(url, tokens["ana"])
        self.by_author = {name: DenStore(url, token) for name, token in tokens.items()}

    def append(
        self,
        address: Address,
        config: dict[str, Any],
        author: str,
        overwrite: bool = True,
        expected_version: int | None = None,
    ) -> ResourceVersion:
        saved = self.by_author[author].append(address, config, author, overwrite, expected_version)
        assert saved.author == author  # Den's record, not the argument
        return saved


class TestDenStoreConformance(StoreConformance):
    @pytest.fixture
    def folder(self, den: DenServer) -> tuple[str, ...]:
        """A fresh folder of ana's for each test, which bo may write in too."""
        tokens = {name: token_for(den, name) for name in ("ana", "bo")}
        where = ("ana", unique("t"))
        DenStore(den.url, tokens["ana"]).share(Address("den", where), ["bo"], "write")
        return where

    @pytest.fixture
    def store(self, den: DenServer) -> Iterator[AuthorsDenStore]:
        store = AuthorsDenStore(den.url, {name: token_for(den, name) for name in ("ana", "bo")})
        yield store
        for each in (store, *store.by_author.values()):
            each.client().close()

    @pytest.fixture
    def addr(self, folder: tuple[str, ...]) -> MakeAddress:
        return lambda *parts: Address("den", folder + tuple(parts))


def test_the_client_never_imports_the_server(python: str) -> None:
    code = (
        "import sys, runhouse, runhouse.names.den, runhouse.names.login, runhouse.cli, "
        "runhouse.resources.group; "
        "print([m for m in sys.modules if m.startswith(('runhouse.den', 'fastapi', "
        "'sqlalchemy', 'uvicorn'))])"
    )
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_login_and_logout(den: DenServer, project: Path) -> None:
    name = unique()
    token = token_for(den, name)
    config = Path.home() / ".rh" / "config.yaml"

    with pytest.raises(rh.DenAuthError, match="runhouse login --token") as info:
        rh.login(token=token + "x", den_url=den.url)
    assert info.value.status == 401
    assert not config.exists()  # a refused token writes nothing

    assert rh.login(token=token, den_url=den.url) == name
    assert rh.configs.stored() == {
        "den_url": den.url,
        "token": token,
        "username": name,
        "default_folder": f"/{name}",
    }
    assert config.stat().st_mode & 0o777 == 0o600
    assert rh.current_folder() == f"/{name}"
    rh.env(name="on_den", reqs=["a"]).save()
    rh.env(name="~/kept_local", reqs=["b"]).save()
    assert (project / "rh" / "kept_local" / "config.json").is_file()

    rh.logout()
    assert rh.configs.stored() == {"den_url": den.url}
    assert rh.current_folder() == "~"
    assert rh.load("kept_local").reqs == ["b"]
    rh.env(name="after", reqs=[]).save()
    assert (project / "rh" / "after" / "config.json").is_file()
    # Logged out, Den still answers for what anyone may read, and nothing else.
    with pytest.raises(rh.ResourceNotFoundError):
        rh.load(f"/{name}/on_den")
    rh.login(token=token)  # den_url was kept
    assert rh.load(f"/{name}/on_den").reqs == ["a"]


def test_names_go_to_den_when_logged_in(
    den: DenServer, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rh.login(token=token_for(den, name := unique()), den_url=den.url)
    env = rh.env(name="bare", reqs=["x"]).save()
    assert env.rns_address == f"/{name}/bare"
    assert rh.env(name="@/at", reqs=[]).save().rns_address == f"/{name}/at"
    assert rh.env(name="~/tilde", reqs=[]).save().rns_address == "~/tilde"
    assert sorted(p.name for p in (project / "rh").iterdir()) == ["tilde"]

    where = rh.locate("bare")
    assert (where.address, where.store, where.exists) == (f"/{name}/bare", "den", True)
    assert where.where == f"{den.url}/v1/resources/{name}/bare"
    entries = DenStore().ls(Address("den", (name,)))
    assert [(e.name, e.kind, e.resource_type, e.version) for e in entries] == [
        ("at", "resource", "env", 1),
        ("bare", "resource", "env", 1),
    ]
    rh.set_folder("~/team")
    assert rh.env(name="x", reqs=[]).save().rns_address == "~/team/x"
    rh.unset_folder()
    assert rh.exists("bare") and not rh.exists("x")

    assert main(["ls"]) == 0
    assert capsys.readouterr().out.split() == [
        "NAME",
        "TYPE",
        "VERSION",
        "at",
        "env",
        "1",
        "bare",
        "env",
        "1",
    ]
    assert main(["ls", "/"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert [f"{name}/", "folder"] in rows  # the column is as wide as the longest name
    assert main(["history", "bare", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert (record["version"], record["author"], record["config"]["reqs"]) == (1, name, ["x"])


def test_an_unreachable_den_fails_fast_and_local_names_keep_working(project: Path) -> None:
    with socket.socket() as closed:  # bound, never listening: connecting is refused
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        rh.configs.set("den_url", url)
        rh.configs.set("token", "rhd_whatever")
        rh.configs.set("username", "ana")
        rh.configs.set("default_folder", "/ana")  # as after logging in
        started = time.monotonic()
        with pytest.raises(rh.StoreUnavailableError) as info:
            rh.load("@/model")
        assert time.monotonic() - started < 5
        assert url in str(info.value) and "/ana/model" in str(info.value)
        assert "connection refused" in str(info.value)
        with pytest.raises(rh.StoreUnavailableError, match=url):
            rh.env(name="x", reqs=[]).save()  # a bare name goes to Den too
    rh.env(name="~/x", reqs=["ok"]).save()
    assert rh.load("~/x").reqs == ["ok"]


def test_a_den_that_never_answers_the_connection_times_out(project: Path) -> None:
    with contextlib.ExitStack() as stack:
        listener = stack.enter_context(socket.socket())
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)  # never accepted: once its queue is full, connecting hangs
        while True:
            filler = stack.enter_context(socket.socket())
            filler.settimeout(0.5)
            try:
                filler.connect(listener.getsockname())
            except TimeoutError:
                break
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        rh.configs.set("den_url", url)
        started = time.monotonic()
        with pytest.raises(rh.StoreUnavailableError, match=url) as info:
            rh.load("/acme/model")
        assert time.monotonic() - started < 5
        assert "no connection within 3 s" in str(info.value)


@pytest.fixture(scope="module")
def den_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DenServer]:
    """A Den serving HTTPS with a certificate of its own (not one the system trusts)."""
    server = start_den(tmp_path_factory.mktemp("den-tls") / "data", extra=("--tls",))
    yield server
    server.stop()


def test_https_verifies_den_s_certificate(den_tls: DenServer, project: Path) -> None:
    assert den_tls.url.startswith("https://") and den_tls.cafile
    user = den_tls.new_user()
    with pytest.raises(rh.StoreUnavailableError, match="den_ca_cert") as info:
        rh.login(token=user.token, den_url=den_tls.url)
    assert "not trust" in str(info.value)
    assert rh.configs.stored() == {}
    rh.configs.set("den_ca_cert", "~/nowhere.pem")
    with pytest.raises(rh.ConfigError, match="nowhere"):
        rh.login(token=user.token, den_url=den_tls.url)
    rh.configs.set("den_ca_cert", den_tls.cafile)
    assert rh.login(token=user.token, den_url=den_tls.url) == user.name
    rh.env(name="secure", reqs=["tls"]).save()
    assert rh.load(f"/{user.name}/secure").reqs == ["tls"]


def test_a_bad_den_url_says_what_to_set(project: Path) -> None:
    rh.configs.set("den_url", "den.example.com:8900")
    with pytest.raises(rh.ConfigError, match="http"):
        rh.load("/acme/model")


def test_a_revoked_or_wrong_token_says_to_log_in_again(den: DenServer) -> None:
    name = unique()
    rh.login(token=token_for(den, name), den_url=den.url)
    rh.configs.set("token", "rhd_00000000_wrong")
    with pytest.raises(rh.DenAuthError, match="runhouse login --token"):
        rh.load("@/anything")


def add(a: int, b: int) -> int:
    """A function to save."""
    return a + b


def test_every_resource_kind_saves_versions_and_deletes_on_den(
    den: DenServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = unique()
    become(monkeypatch, person(den, tmp_path / "homes", name))
    creds = {"ssh_user": "ubuntu", "ssh_private_key": "~/.ssh/id_ed25519"}
    env = rh.env(name="np", reqs=["numpy"]).save()
    box = rh.cluster(name="box", host="10.1.2.3", ssh_creds=creds, ssh_port=2222).save()
    made: dict[str, rh.Resource] = {
        "env": env,
        "function": rh.function(add, name="adder", env=env).save(),
        "cluster": box,
        "folder": rh.folder(path=str(tmp_path / "data"), name="data").save(),
    }
    for kind, resource in made.items():
        loaded = rh.load(f"/{name}/{resource.name}")
        assert type(loaded) is type(resource), kind
        assert loaded.config() == resource.config(), kind
        assert loaded.rns_address == f"/{name}/{resource.name}"
    assert rh.load("adder").config()["env"] == f"/{name}/np"  # named sub-resources by address

    env.reqs = ["numpy", "pandas"]
    env.save()
    assert [v.version for v in env.history()] == [2, 1]
    assert {v.author for v in env.history()} == {name}
    assert rh.load("np").reqs == ["numpy", "pandas"]
    assert env.rollback(1).reqs == ["numpy"]
    assert [v.config["reqs"] for v in env.history()] == [["numpy"], ["numpy", "pandas"], ["numpy"]]
    with pytest.raises(rh.VersionNotFoundError, match=r"1\.\.3"):
        env.rollback(9)

    box.ssh_port = 2200
    box.save()
    assert rh.cluster(name="box").ssh_port == 2200
    assert box.rollback(1).ssh_port == 2222
    with pytest.raises(rh.ResourceTypeMismatchError):
        rh.Env.from_name("box")

    for resource in made.values():
        resource.delete_configs()
        assert not rh.exists(f"/{name}/{resource.name}")
    with pytest.raises(rh.ResourceNotFoundError) as info:
        rh.load("np")
    assert info.value.looked_in == f"{den.url}/v1/resources/{name}/np"
    assert DenStore().ls(Address("den", (name,))) == []


def test_save_with_expected_version(
    den: DenServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    become(monkeypatch, person(den, tmp_path / "homes"))
    env = rh.env(name="cas", reqs=["a"]).save(expected_version=0)
    env.reqs = ["b"]
    env.save(expected_version=1)
    with pytest.raises(rh.VersionConflictError) as info:
        env.save(expected_version=1)
    assert (info.value.expected, info.value.current) == (1, 2)
    assert "version 2" in str(info.value)
    with pytest.raises(rh.VersionConflictError):
        rh.env(name="cas", reqs=[]).save(expected_version=0)
    assert [v.version for v in env.history()] == [2, 1]


RACER = textwrap.dedent(
    """
    import sys
    import runhouse as rh

    env = rh.env(name=sys.argv[1])
    seen = env.history(limit=1)[0].version
    env.reqs = [sys.argv[2]]
    print("ready", flush=True)
    sys.stdin.readline()  # the parent releases every client at once
    try:
        env.save(expected_version=seen)
    except rh.VersionConflictError as exc:
        print("lost", exc.current, flush=True)
    else:
        print("won", flush=True)
    """
)


def test_clients_saving_over_the_same_version_exactly_one_wins(
    den: DenServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, python: str
) -> None:
    ana = person(den, tmp_path / "homes")
    become(monkeypatch, ana)
    rh.env(name="raced", reqs=["start"]).save()
    child_env = {**os.environ, "HOME": str(ana.home), "PYTHONPATH": str(Path.cwd())}
    for round_ in range(3):
        workers = [f"r{round_}c{i}" for i in range(4)]
        with contextlib.ExitStack() as stack:
            procs = [
                stack.enter_context(
                    subprocess.Popen(
                        [python, "-c", RACER, "raced", worker],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        text=True,
                        env=child_env,
                    )
                )
                for worker in workers
            ]
            pipes = [(proc.stdin, proc.stdout) for proc in procs]
            for _, stdout in pipes:
                assert stdout is not None and stdout.readline().strip() == "ready"
            for stdin, _ in pipes:
                assert stdin is not None
                stdin.write("go\n")
                stdin.close()
            outcomes = [stdout.read().split() for _, stdout in pipes if stdout is not None]
            assert [proc.wait(timeout=60) for proc in procs] == [0] * len(procs)
        winners = [w for w, out in zip(workers, outcomes, strict=True) if out[0] == "won"]
        assert len(winners) == 1, outcomes
        assert all(out == ["lost", str(round_ + 2)] for out in outcomes if out[0] == "lost")
        assert rh.load("raced").reqs == winners
    assert [v.version for v in rh.env(name="raced").history()] == [4, 3, 2, 1]


def test_anonymous_reads_of_public_resources(
    den: DenServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ana: Person = person(den, tmp_path / "homes")
    become(monkeypatch, ana)
    env = rh.env(name="open", reqs=["x"]).save()
    env.visibility = "public"
    become(monkeypatch, tmp_path / "nobody")
    rh.configs.set("den_url", den.url)  # no token: anonymous
    assert rh.load(f"/{ana.name}/open").reqs == ["x"]
    with pytest.raises(rh.DenAuthError, match="runhouse login"):
        rh.env(name=f"/{ana.name}/open", reqs=["y"]).save()
    become(monkeypatch, ana)
    env.visibility = "private"
    become(monkeypatch, tmp_path / "nobody")
    with pytest.raises(rh.ResourceNotFoundError):
        rh.load(f"/{ana.name}/open")
