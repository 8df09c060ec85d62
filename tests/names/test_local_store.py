"""The local store: conformance, on-disk layout, corruption, and concurrent saves."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

import runhouse as rh
from runhouse.exceptions import CorruptConfigError
from runhouse.names.address import Address
from runhouse.names.local import LocalStore
from tests.conformance.store_suite import MakeAddress, StoreConformance
from tests.processes import run_together


class TestLocalStoreConformance(StoreConformance):
    @pytest.fixture
    def store(self, tmp_path: Path) -> LocalStore:
        return LocalStore(tmp_path / "store" / "rh")

    @pytest.fixture
    def addr(self) -> MakeAddress:
        return lambda *parts: Address("local", tuple(parts))


def test_default_root_is_rh_in_the_working_dir(project: Path) -> None:
    sub = project / "src" / "pkg"
    sub.mkdir(parents=True)
    store = LocalStore()
    assert store.root == project / "rh"


def test_layout_is_plain_sorted_json(project: Path) -> None:
    store = LocalStore()
    a = Address("local", ("team", "x"))
    store.append(a, {"resource_type": "resource", "name": "~/team/x", "b": 1, "a": [1]}, "ana")
    store.append(a, {"resource_type": "resource", "name": "~/team/x", "b": 2, "a": [1]}, "ana")
    folder = project / "rh" / "team" / "x"
    text = (folder / "config.json").read_text()
    assert text.endswith("\n")
    assert list(json.loads(text)) == ["a", "b", "name", "resource_type"]
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"
    records = sorted((folder / ".history").iterdir())
    assert [p.name for p in records] == ["00000001.json", "00000002.json"]
    record = json.loads(records[0].read_text())
    assert set(record) == {"author", "config", "timestamp", "version"}
    assert record["config"]["b"] == 1
    leftovers = [p for p in folder.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_corrupt_config_names_file_and_line_and_hides_nothing_else(project: Path) -> None:
    rh.env(name="good", reqs=["numpy"]).save()
    bad = rh.env(name="bad", reqs=["x"]).save()
    path = project / "rh" / "bad" / "config.json"
    path.write_text('{\n  "name": "~/bad",\n  "reqs": [\n}\n')

    with pytest.raises(CorruptConfigError) as info:
        rh.load("bad")
    assert str(path) in str(info.value)
    assert "line 4" in str(info.value)
    assert info.value.line == 4
    assert isinstance(info.value, ValueError)

    assert rh.load("good").reqs == ["numpy"]
    entries = {e.name: e for e in LocalStore().ls(Address("local", ()))}
    assert entries["good"].kind == "resource"
    assert entries["bad"].kind == "corrupt"
    assert str(path) in (entries["bad"].error or "")
    # The history of the corrupt resource is intact, so it can be repaired by a rollback.
    assert bad.history()[0].config["reqs"] == ["x"]
    bad.rollback(1)
    assert rh.load("bad").reqs == ["x"]


def test_config_that_is_not_an_object(project: Path) -> None:
    rh.env(name="odd", reqs=[]).save()
    (project / "rh" / "odd" / "config.json").write_text("[1, 2]\n")
    with pytest.raises(rh.ConfigError, match="JSON object"):
        rh.load("odd")
    entry = LocalStore().ls(Address("local", ()))[0]
    assert entry.kind == "corrupt"


def test_list_skips_hidden_and_unaddressable_folders(project: Path) -> None:
    rh.env(name="a", reqs=[]).save()
    (project / "rh" / ".cache" / "x").mkdir(parents=True)
    (project / "rh" / "has space").mkdir()
    (project / "rh" / "s3").mkdir()
    assert [e.name for e in LocalStore().ls(Address("local", ()))] == ["a"]


def test_missing_resource_in_a_folder_lists_what_is_there(project: Path) -> None:
    rh.env(name="team/a", reqs=[]).save()
    with pytest.raises(KeyError) as info:
        rh.load("team")
    assert "is a folder holding: a" in str(info.value)


SAVER = textwrap.dedent(
    """
    import sys
    import runhouse as rh

    worker = sys.argv[1]
    env = rh.env(name="shared", reqs=[worker])
    print("ready", flush=True)
    sys.stdin.readline()  # wait until the parent says go, so both really run at once
    for i in range(50):
        env.env_vars = {"worker": worker, "i": str(i)}
        env.save()
    """
)


def test_two_processes_saving_the_same_name(
    project: Path, python: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    run_together([[python, "-c", SAVER, worker] for worker in ("p1", "p2")])

    folder = project / "rh" / "shared"
    files = sorted((folder / ".history").iterdir())
    assert [p.name for p in files] == [f"{n:08d}.json" for n in range(1, 101)]
    records = [json.loads(p.read_text()) for p in files]
    assert [r["version"] for r in records] == list(range(1, 101))
    per_worker = {"p1": [], "p2": []}
    for r in records:
        per_worker[r["config"]["env_vars"]["worker"]].append(int(r["config"]["env_vars"]["i"]))
    assert per_worker == {"p1": list(range(50)), "p2": list(range(50))}
    current = json.loads((folder / "config.json").read_text())
    assert current == records[-1]["config"]
    assert [v.version for v in rh.env(name="shared").history(limit=3)] == [100, 99, 98]
