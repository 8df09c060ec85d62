"""Folders and files in S3 (moto, started by tests/storage_servers.py): every ``.to()`` pair
among here, a cluster and S3; cluster <-> bucket done by the cluster itself (counted at this
client's sockets); a cut upload that a re-run finishes. GCS and Azure: folder round trips."""

from __future__ import annotations

import importlib.util
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import runhouse as rh
from runhouse.data import trees
from tests.data.test_folder import exercise
from tests.data.test_transfers import (  # noqa: F401 (remove_remote_paths: a fixture)
    CUT_AFTER_TWO_FILES,
    FILES,
    contents,
    remote_path,
    remove_remote_paths,
    run_until_cut,
    source,
)
from tests.storage_servers import Service


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """An empty local folder of the test's own."""
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


def _has_s3fs() -> bool:
    return importlib.util.find_spec("s3fs") is not None


def with_s3(cluster: rh.Cluster) -> rh.Cluster:
    """The cluster, its base env able to reach S3 (a cluster installs the extra it needs)."""
    if not rh.function(_has_s3fs).to(cluster)():
        cluster.install_packages(["s3fs[boto3]>=2024.2"])
    return cluster


class Traffic:
    """Bytes through this process's sockets (HTTP to daemons, SSH tunnels' local ends,
    and any bucket service) while counting."""

    def __init__(self) -> None:
        self.bytes = 0


@contextmanager
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[Traffic]:
    traffic = Traffic()
    with monkeypatch.context() as patch:
        for name in ("send", "sendall", "sendmsg", "recv", "recv_into"):
            real = getattr(socket.socket, name)

            def wrapper(self: socket.socket, *args: Any, _real: Any = real, **kw: Any) -> Any:
                result = _real(self, *args, **kw)
                if isinstance(result, int):
                    traffic.bytes += result
                elif isinstance(result, (bytes, bytearray)):
                    traffic.bytes += len(result)
                elif result is None and args and isinstance(args[0], (bytes, memoryview)):
                    traffic.bytes += len(args[0])  # sendall
                return result

            patch.setattr(socket.socket, name, wrapper)
        yield traffic


def test_every_pair_among_here_a_cluster_and_s3(
    cluster: rh.Cluster, s3: Service, work: Path
) -> None:
    with_s3(cluster)
    bucket, options = s3.bucket(), s3.options
    here = source(work / "src")
    in_s3 = here.to("s3", path=f"s3://{bucket}/from-here", data_config=options)
    assert in_s3.path == f"{bucket}/from-here" and contents(in_s3) == FILES
    on_c = in_s3.to(cluster, path=remote_path())  # the cluster fetches it
    assert contents(on_c) == FILES
    again = on_c.to("s3", path=f"{bucket}/from-cluster", data_config=options)  # it sends it
    assert contents(again) == FILES
    copied = again.to("s3", path=f"{bucket}/copy")  # bucket to bucket, same data_config
    back = copied.to("here", path=str(work / "back"))
    assert contents(back) == FILES
    assert rh.folder(path=bucket, system="s3").ls(full_paths=False) == [
        "copy",
        "from-cluster",
        "from-here",
    ]
    assert sorted(os.listdir(work)) == ["back", "src"]
    on_c.rm()


def test_cluster_and_bucket_move_bytes_without_this_client(
    cluster: rh.Cluster, s3: Service, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_s3(cluster)
    bucket, options = s3.bucket(), s3.options
    data = {f"part{i}.bin": os.urandom(1 << 20) for i in range(3)}  # 3 MiB
    here = source(work / "src", data)
    on_c = here.to(cluster, path=remote_path())
    with counted(monkeypatch) as to_bucket:
        in_s3 = on_c.to("s3", path=f"{bucket}/data", data_config=options)
    with counted(monkeypatch) as from_bucket:
        on_c2 = in_s3.to(cluster, path=remote_path())
    with counted(monkeypatch) as in_service:  # bucket to bucket: the service's own copy
        in_s3.to("s3", path=f"{bucket}/copy")
    with counted(monkeypatch) as from_here:  # the same transfer from here: the bytes do pass
        here.to("s3", path=f"{bucket}/direct", data_config=options)
    assert from_here.bytes > 3 << 20
    assert to_bucket.bytes < 256 << 10 and from_bucket.bytes < 256 << 10
    assert in_service.bytes < 256 << 10
    assert on_c2.sizes() == {name: 1 << 20 for name in data}
    on_c.rm()
    on_c2.rm()


def test_folder_operations_in_s3(s3: Service) -> None:
    exercise(rh.folder(path=f"{s3.bucket()}/f", system="s3", data_config=s3.options))
    exercise(rh.folder(path=f"{s3.bucket()}/from-env", system="s3"))  # AWS_* point at moto


def test_a_missing_bucket_says_so(s3: Service, work: Path) -> None:
    with pytest.raises(rh.StorageError, match="does not exist") as caught:
        source(work / "src").to("s3", path="rh-no-such-bucket/x")
    assert "s3://rh-no-such-bucket" in str(caught.value)


def test_a_cut_upload_to_s3_never_looks_complete_and_a_rerun_finishes(
    s3: Service, work: Path, python: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3.bucket()
    src = source(work / "src")
    dest = f"{bucket}/data"
    run_until_cut(
        python,
        f"""
        rh.folder(path={src.path!r}).to("s3", path={dest!r}, data_config={s3.options!r})
        """,
        None,
        prelude=CUT_AFTER_TWO_FILES,
    )
    in_s3 = rh.folder(path=dest, system="s3")
    assert not in_s3.exists_in_system()
    assert rh.folder(path=bucket, system="s3").ls() == []  # the temporary prefix is hidden
    copied: list[str] = []
    real = trees.copy_files

    def record(src_: Any, sources: list[str], *rest: Any) -> None:
        copied.extend(sources)
        real(src_, sources, *rest)

    monkeypatch.setattr(trees, "copy_files", record)
    src.to("s3", path=dest)
    assert len(copied) == len(FILES) - 2 and contents(in_s3) == FILES


def test_files_between_here_a_cluster_and_s3(cluster: rh.Cluster, s3: Service) -> None:
    with_s3(cluster)
    bucket, options = s3.bucket(), s3.options
    f = rh.file(data={"w": [1, 2]}, path=f"{bucket}/obj.pkl", system="s3", data_config=options)
    f.write()
    assert f.exists_in_system() and f.fetch() == {"w": [1, 2]}
    on_c = f.to(cluster, path=f"{remote_path()}.pkl")  # the cluster fetches it
    assert on_c.fetch() == {"w": [1, 2]}
    back = on_c.to("s3", path=f"{bucket}/back.pkl", data_config=options)  # it sends it
    assert back.fetch() == {"w": [1, 2]}
    raw = rh.file(data=b"raw", path=f"{bucket}/raw.bin", system="s3").write()
    assert raw.to("here", path="raw.bin").fetch() == b"raw"
    on_c.rm()
    f.rm()
    assert not f.exists_in_system()


@pytest.mark.parametrize("service", ["gcs", "azure"])
def test_folder_round_trips_in_gcs_and_azure(
    service: str, request: pytest.FixtureRequest, work: Path
) -> None:
    server: Service = request.getfixturevalue(service)
    system = {"gcs": "gs", "azure": "azure"}[service]
    bucket = server.bucket()
    in_bucket = source(work / "src").to(system, path=f"{bucket}/data")
    assert contents(in_bucket) == FILES
    assert contents(in_bucket.to("here", path=str(work / "back"))) == FILES
    exercise(rh.folder(path=f"{bucket}/ops", system=system))
