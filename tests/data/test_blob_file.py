"""rh.blob (in memory, then in a cluster's object store) and rh.file (an object persisted
as one file: a pickle, or raw bytes) here and on a cluster."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

import runhouse as rh


def test_a_blob_lives_in_memory_until_sent(cluster: rh.Cluster) -> None:
    b = rh.blob(data={"weights": [1, 2, 3]})
    assert b.fetch() == {"weights": [1, 2, 3]} and b.system is None
    on_c = b.to(cluster)
    assert on_c.key in cluster.keys() and on_c.exists_in_system()
    assert on_c.fetch() == {"weights": [1, 2, 3]}
    back = on_c.to("here")
    assert back.system is None and back.fetch() == {"weights": [1, 2, 3]}
    on_c.rm()
    assert on_c.key not in cluster.keys() and not on_c.exists_in_system()
    with pytest.raises(KeyError):
        on_c.fetch()


def test_a_named_blob_is_saved_and_loaded(cluster: rh.Cluster) -> None:
    b = rh.blob(data=b"raw", name="my_blob").to(cluster)
    assert b.key == "my_blob"
    b.save()
    saved = rh.load("my_blob", instantiate=False)
    assert saved["key"] == "my_blob" and "raw" not in str(saved)  # the data stays out
    loaded = rh.blob(name="my_blob")
    assert isinstance(loaded, rh.Blob) and loaded.fetch() == b"raw"
    cluster.delete("my_blob")


def test_a_file_holds_a_pickle_or_raw_bytes(tmp_path: Path) -> None:
    f = rh.file(data={"a": (1, 2)}, path=str(tmp_path / "obj.pkl")).write()
    assert f.exists_in_system() and f.serializer == "pickle"
    assert rh.file(path=str(tmp_path / "obj.pkl")).fetch() == {"a": (1, 2)}
    raw = rh.file(data=b"\x00raw", path=str(tmp_path / "raw.bin")).write()
    assert raw.serializer == "bytes" and (tmp_path / "raw.bin").read_bytes() == b"\x00raw"
    assert raw.fetch() == b"\x00raw"
    raw.save("raw_file")
    loaded = rh.file(name="raw_file")
    assert isinstance(loaded, rh.File) and loaded.fetch() == b"\x00raw"
    raw.rm()
    assert not raw.exists_in_system()
    with pytest.raises(FileNotFoundError):
        raw.fetch()


def test_a_file_on_a_cluster_and_back(cluster: rh.Cluster, tmp_path: Path) -> None:
    here = rh.file(data=[1, "two", 3.0], path=str(tmp_path / "list.pkl")).write()
    on_c = here.to(cluster, path=f"~/rh-test-{secrets.token_hex(4)}.pkl")
    assert on_c.exists_in_system() and on_c.fetch() == [1, "two", 3.0]
    back = on_c.to("here", path=str(tmp_path / "back.pkl"))
    assert back.fetch() == [1, "two", 3.0]
    written = rh.file(data=b"made there", path=f"~/rh-test-{secrets.token_hex(4)}", system=cluster)
    written.write()
    assert written.fetch() == b"made there"
    on_c.rm()
    written.rm()
    assert not on_c.exists_in_system()


def test_a_file_needs_a_path_in_a_bucket() -> None:
    with pytest.raises(ValueError, match="bucket/prefix"):
        rh.file(data=1, system="s3")


def fetch_inside(f: rh.File) -> tuple[bool, object]:
    """Runs in a worker: the file is read from the cluster's own disk."""
    return f._on_this_cluster(), f.fetch()


def test_a_file_passed_to_its_cluster_reads_its_disk(cluster: rh.Cluster) -> None:
    f = rh.file(data={"k": 1}, path=f"~/rh-test-{secrets.token_hex(4)}", system=cluster).write()
    assert rh.function(fetch_inside).to(cluster)(f) == (True, {"k": 1})
    f.rm()


def fetch_blob_inside(b: rh.Blob) -> tuple[object, object]:
    """Runs in a worker: the blob's cluster is this worker's own, reached on this machine."""
    return type(b.system.daemon_host).__name__ if b.system else None, b.fetch()


def test_a_blob_passed_to_its_cluster_fetches_there(cluster: rh.Cluster) -> None:
    b = rh.blob(data={"weights": [4, 5]}).to(cluster)
    host, value = rh.function(fetch_blob_inside).to(cluster)(b)
    assert (host, value) == ("LocalHost", {"weights": [4, 5]})
    b.rm()
