"""rh.folder on local disk and on a cluster (the local daemon and an SSH host): every
operation, names that escape, missing and read-only places, save/load without credentials,
and a folder passed to a function on its own cluster reading that cluster's disk."""

from __future__ import annotations

import posixpath
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

import runhouse as rh
from runhouse.data import remote_ops
from runhouse.data.storage import PARTIAL
from runhouse.wire import home


def on_cluster(cluster: rh.Cluster) -> rh.Folder:
    """A fresh folder path in the cluster's home."""
    return rh.folder(path=f"~/rh-test-{secrets.token_hex(4)}", system=cluster)


@pytest.fixture
def places(cluster: rh.Cluster, tmp_path: Path) -> Iterator[list[rh.Folder]]:
    """A fresh folder on local disk and one on the cluster (through its daemon)."""
    folders = [rh.folder(path=str(tmp_path / "f")), on_cluster(cluster)]
    yield folders
    if folders[1].exists_in_system():
        folders[1].rm()


def exercise(f: rh.Folder) -> None:
    """Every operation of a folder, on whatever system it is."""
    in_bucket = f.system not in ("file",) and isinstance(f.system, str)
    assert not f.exists_in_system()
    f.mkdir()
    if not in_bucket:  # (in a bucket a folder is a prefix: it exists once it holds a file)
        assert f.exists_in_system() and f.ls() == []
    f.put({"b.txt": b"bytes", "c.json": "{}", "sub/d.bin": b"\x00\x01"})
    assert f.exists_in_system()
    assert f.ls(full_paths=False) == ["b.txt", "c.json", "sub"]
    assert [posixpath.basename(p) for p in f.ls()] == ["b.txt", "c.json", "sub"]
    root = f"{f.path}/" if in_bucket else "/"  # full paths, ~ resolved where it lives
    assert all(p.startswith(root) for p in f.ls())
    assert f.get("b.txt") == b"bytes" and f.get("sub/d.bin") == b"\x00\x01"
    with pytest.raises(FileExistsError, match=r"b\.txt"):
        f.put({"new.txt": b"n", "b.txt": b"again"})
    assert "new.txt" not in f.ls(full_paths=False)  # a refused put writes nothing
    f.put({"b.txt": b"replaced"}, overwrite=True)
    assert f.get("b.txt") == b"replaced"
    with f.open("t.txt", "w") as w:
        w.write("text ü")
    with f.open("t.txt", "r") as r:
        assert r.read() == "text ü"
    with f.open("w.bin", "wb") as wb:
        wb.write(b"x" * 100_000)
    with f.open("w.bin", "rb") as rb:
        assert rb.read(10) == b"x" * 10 and len(rb.read()) == 99_990
    assert f.sizes() == {
        "b.txt": 8,
        "c.json": 2,
        "sub/d.bin": 2,
        "t.txt": len("text ü".encode()),
        "w.bin": 100_000,
    }
    f.rm(["c.json", "sub"])
    assert f.ls(full_paths=False) == ["b.txt", "t.txt", "w.bin"]
    f.rm("t.txt")
    f.rm()
    assert not f.exists_in_system()


def test_every_operation_here_and_on_the_cluster(places: list[rh.Folder]) -> None:
    for f in places:
        exercise(f)
    assert places[1].path.startswith("~/")


def test_a_failed_write_leaves_nothing(places: list[rh.Folder]) -> None:
    for f in places:
        f.mkdir()
        for mode in ("wb", "w"):
            with pytest.raises(RuntimeError), f.open("half", mode) as w:
                w.write(b"partial" if mode == "wb" else "partial")
                raise RuntimeError("cut")
        assert f.ls(full_paths=False) == []


def test_names_that_escape_the_folder_are_refused(places: list[rh.Folder]) -> None:
    for f in places:
        f.mkdir()
        for bad in ("../evil.txt", "sub/../../evil.txt", "/etc/evil"):
            with pytest.raises(rh.StorageError, match=r"may not start with / or hold '\.\.'"):
                f.put({bad: b"x"})
            with pytest.raises(rh.StorageError):
                f.get(bad)
            with pytest.raises(rh.StorageError):
                f.rm([bad])
            with pytest.raises(rh.StorageError):
                f.open(bad, "wb")
        assert f.ls() == []


def test_a_missing_path_says_which(places: list[rh.Folder]) -> None:
    for f in places:
        with pytest.raises(FileNotFoundError, match=r"missing\.txt"):
            f.get("missing.txt")
        with pytest.raises(FileNotFoundError, match=r"missing\.txt"):
            f.open("missing.txt")
        with pytest.raises(FileNotFoundError):
            f.rm()
        with pytest.raises(FileNotFoundError, match=re.escape(f.path.lstrip("~"))):
            f.to("here", path=str(Path.cwd() / "copy"))


def test_a_read_only_place_says_so(cluster: rh.Cluster, tmp_path: Path) -> None:
    # /sys refuses new files for every user, root included (who may write anywhere else).
    for f in (rh.folder(path="/sys/rh-readonly"), rh.folder(path="/sys/rh-ro", system=cluster)):
        with pytest.raises(rh.StorageError, match="permission denied") as caught:
            f.put({"a.txt": b"x"})
        assert "/sys/rh-" in str(caught.value)
    cluster_error = caught.value
    assert cluster.rns_address is not None and cluster.rns_address in str(cluster_error)


def test_here_is_this_machines_disk(tmp_path: Path) -> None:
    f = rh.folder(path="data", system="here")
    assert f.system == "file" and f.path == str(Path.cwd() / "data")
    assert rh.folder().system == "file"


def test_saved_and_loaded_by_name_without_credentials(cluster: rh.Cluster) -> None:
    options = {
        "endpoint_url": "http://127.0.0.1:9",
        "key": "AKIA-secret",
        "secret": "s3cret",
        "client_kwargs": {"region_name": "us-east-1", "aws_session_token": "tok"},
        "connection_string": "AccountKey=abc",
    }
    s = rh.folder(path="s3://bucket/data/", system="s3", name="in_s3", data_config=options)
    s.save()
    saved = rh.load("in_s3", instantiate=False)
    assert saved["system"] == "s3" and saved["path"] == "bucket/data"
    assert saved["data_config"] == {
        "endpoint_url": "http://127.0.0.1:9",
        "client_kwargs": {"region_name": "us-east-1"},
    }
    assert "s3cret" not in str(saved) and "AKIA" not in str(saved) and "tok" not in str(saved)
    assert s.data_config == options  # kept in memory, for this process's transfers
    loaded = rh.folder(name="in_s3")
    assert isinstance(loaded, rh.Folder) and loaded.path == "bucket/data"

    on_c = on_cluster(cluster).mkdir()
    on_c.save("on_c")
    again = rh.Folder.from_name("on_c")
    assert isinstance(again.system, rh.Cluster) and again.path == on_c.path
    assert again.exists_in_system()
    on_c.rm()


def test_a_bucket_folder_needs_a_path() -> None:
    with pytest.raises(ValueError, match="bucket/prefix"):
        rh.folder(system="s3")


def read_inside(folder: rh.Folder) -> tuple[bool, list[str], bytes, rh.Folder]:
    """Runs in a worker: the folder reads the cluster's disk directly."""
    names = folder.ls(full_paths=False)
    folder.put({"from_worker.txt": b"made there"})
    return folder._on_this_cluster(), names, folder.get("a.txt"), folder


def test_a_folder_passed_to_its_cluster_reads_its_disk(cluster: rh.Cluster) -> None:
    f = on_cluster(cluster)
    f.put({"a.txt": b"on the cluster"})
    fn = rh.function(read_inside).to(cluster)
    here_of_cluster, names, data, returned = fn(f)
    assert here_of_cluster is True
    assert names == ["a.txt"] and data == b"on the cluster"
    # Back here, the same folder: on the cluster, reached through its daemon again.
    assert isinstance(returned.system, rh.Cluster) and not returned._on_this_cluster()
    assert returned.ls(full_paths=False) == ["a.txt", "from_worker.txt"]
    f.rm()


def test_a_folder_of_another_daemon_is_not_taken_for_this_one(
    cluster: rh.Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = on_cluster(cluster)
    monkeypatch.setenv(home.INSTANCE_VARIABLE, "some-other-daemon")
    f._instance = "the-clusters-daemon"
    assert not f._on_this_cluster()
    f._instance = "some-other-daemon"
    assert f._on_this_cluster()
    assert f.place().system == "file"


def test_the_data_route_is_the_daemons_own(cluster: rh.Cluster) -> None:
    with pytest.raises(AttributeError, match="no data operation 'nope'"):
        cluster.request_call(remote_ops.KEY, "nope", stream_logs=False, run_key="rh-data@t1")
    assert remote_ops.KEY not in cluster.keys()
    with pytest.raises(AttributeError):  # only the operations, not the module's names
        cluster.request_call(remote_ops.KEY, "os", stream_logs=False, run_key="rh-data@t2")


def test_temporary_names_are_hidden(tmp_path: Path) -> None:
    f = rh.folder(path=str(tmp_path / "top" / "f"))
    f.put({"a.txt": b"a"})
    (tmp_path / "top" / f"f{PARTIAL}abc").mkdir()
    assert rh.folder(path=str(tmp_path / "top")).ls(full_paths=False) == ["f"]
