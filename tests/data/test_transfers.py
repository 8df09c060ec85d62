"""Folder transfers by their real paths: here <-> a cluster (rsync over SSH, a local copy,
or a tar through the daemon), cluster -> cluster, mv; and transfers killed mid-way, which
leave nothing that looks complete and finish when run again."""

from __future__ import annotations

import io
import logging
import os
import secrets
import signal
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import runhouse as rh
from runhouse.client.hosts import free_port
from runhouse.data import progress, through_daemon, transfers, trees
from runhouse.data.cluster_files import ClusterFiles
from runhouse.data.storage import PARTIAL

FILES = {
    "a.txt": b"alpha",
    "empty": b"",
    "sub/deeper/b.bin": bytes(range(256)) * 300,
    ".gitignore": b"ignored.txt\nsub/\n",
    "ignored.txt": b"sent anyway: data is never filtered by .gitignore",
}


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """An empty local folder of the test's own."""
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


def source(root: Path, files: dict[str, bytes] | None = None) -> rh.Folder:
    """A local folder holding ``files`` (default: FILES)."""
    f = rh.folder(path=str(root))
    f.put(files or FILES)
    return f


def contents(f: rh.Folder) -> dict[str, bytes]:
    """Every file of ``f`` and its bytes."""
    return {name: f.get(name) for name in f.sizes()}


MADE: list[str] = []  # cluster paths this test made, removed after it


def remote_path() -> str:
    """A fresh path in a cluster's home (removed after the test)."""
    MADE.append(f"~/rh-test-{secrets.token_hex(4)}")
    return MADE[-1]


@pytest.fixture(autouse=True)
def remove_remote_paths(request: pytest.FixtureRequest) -> Iterator[None]:
    """A failed test leaves nothing in the clusters' homes (the local daemon's is shared)."""
    MADE.clear()
    yield
    used = request.node.funcargs.get("cluster")
    for c in [used, rh.cluster(name="local")] if used is not None and MADE else []:
        disk = ClusterFiles(c)
        for path in MADE:
            for leftover in (path, f"{path}.pkl"):
                if disk.exists(leftover):
                    disk.rm(leftover, recursive=True)


def test_here_to_a_cluster_and_back(cluster: rh.Cluster, work: Path) -> None:
    src = source(work / "src")
    on_c = src.to(cluster, path=remote_path())
    assert isinstance(on_c.system, rh.Cluster) and contents(on_c) == FILES
    back = on_c.to("here", path=str(work / "back"))
    assert back.system == "file" and contents(back) == FILES
    assert contents(src) == FILES  # the source is untouched
    parent = rh.folder(path=str(work))
    assert not any(PARTIAL in name for name in os.listdir(work))
    assert parent.ls(full_paths=False) == ["back", "src"]
    on_c.rm()


def test_to_replaces_what_is_at_the_destination(cluster: rh.Cluster, work: Path) -> None:
    dest = rh.folder(path=remote_path(), system=cluster)
    dest.put({"old.txt": b"old", "a.txt": b"old a"})
    source(work / "src", {"a.txt": b"new a"}).to(cluster, path=dest.path)
    assert contents(dest) == {"a.txt": b"new a"}
    dest.rm()


def test_default_destinations(cluster: rh.Cluster, work: Path) -> None:
    name = remote_path().removeprefix("~/")
    src = source(work / name, {"x": b"1"})
    on_c = src.to(cluster)
    assert on_c.path == f"~/{name}"
    here = on_c.to("here")
    assert here.path == str(Path.cwd() / name) and here.get("x") == b"1"
    with pytest.raises(ValueError, match="already there"):
        here.to("here")
    with pytest.raises(ValueError, match="bucket/prefix"):
        here.to("s3")
    on_c.rm()


def test_a_copy_on_the_same_cluster_stays_there(cluster: rh.Cluster, work: Path) -> None:
    on_c = source(work / "src").to(cluster, path=remote_path())
    again = on_c.to(rh.cluster(name=cluster.rns_address), path=remote_path())
    assert contents(again) == FILES
    on_c.rm()
    again.rm()


def test_cluster_to_another_cluster_goes_daemon_to_daemon(
    cluster: rh.Cluster, work: Path, caplog: pytest.LogCaptureFixture, monkeypatch: Any
) -> None:
    on_c = source(work / "src").to(cluster, path=remote_path())
    local = rh.cluster(name="local")
    if not cluster.ips:  # only one local daemon runs here: take it for another cluster
        monkeypatch.setattr(transfers, "same_cluster", lambda a, b: False)
    asked: list[str] = []
    real = ClusterFiles.call

    def record(self: ClusterFiles, op: str, *args: Any) -> Any:
        asked.append(op)
        return real(self, op, *args)

    monkeypatch.setattr(ClusterFiles, "call", record)
    with caplog.at_level(logging.INFO, logger="runhouse"):
        other = on_c.to(local, path=remote_path())
    assert "through this machine" not in caplog.text
    # What this client asked of the clusters: where the destination is, whether the source
    # reaches it, and to send; no byte of the folder came here.
    assert set(asked) <= {"expand", "reaches", "push", "push_reporting"}, asked
    assert "push" in asked or "push_reporting" in asked
    monkeypatch.setattr(ClusterFiles, "call", real)
    assert contents(other) == FILES
    assert contents(on_c) == FILES  # the source is untouched
    on_c.rm()
    other.rm()


def test_cluster_to_an_unreachable_cluster_goes_through_here_and_says_so(
    cluster: rh.Cluster, work: Path, caplog: pytest.LogCaptureFixture, monkeypatch: Any
) -> None:
    on_c = source(work / "src").to(cluster, path=remote_path())
    local = rh.cluster(name="local")
    if not cluster.ips:
        monkeypatch.setattr(transfers, "same_cluster", lambda a, b: False)
    # A destination whose daemon the source cannot reach: an address nothing listens on.
    unreachable = {"address": "127.0.0.1", "info": {"port": free_port()}, "token": "x"}
    peer = {**unreachable, "certificate": None, "name": "nowhere"}
    monkeypatch.setattr(transfers, "reach", lambda a, b: peer)
    with caplog.at_level(logging.INFO, logger="runhouse"):
        other = on_c.to(local, path=remote_path())
    assert "through this machine" in caplog.text and "DaemonUnreachable" in caplog.text
    assert contents(other) == FILES
    on_c.rm()
    other.rm()


def test_a_file_goes_from_cluster_to_cluster(
    cluster: rh.Cluster, tmp_path: Path, monkeypatch: Any
) -> None:
    if not cluster.ips:  # only one local daemon runs here: take it for another cluster
        monkeypatch.setattr(transfers, "same_cluster", lambda a, b: False)
    f = rh.file(data=list(range(1000)), path=remote_path(), system=cluster).write()
    dest = str(tmp_path / "copy.pkl")
    asked: list[str] = []
    real = ClusterFiles.call

    def record(self: ClusterFiles, op: str, *args: Any) -> Any:
        asked.append(op)
        return real(self, op, *args)

    monkeypatch.setattr(ClusterFiles, "call", record)
    copied = f.to(rh.cluster(name="local"), path=dest)
    assert set(asked) == {"expand", "reaches", "push"}, asked  # no read, no write from here
    # A big file here <-> the cluster, with its progress drawn.
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 << 20))
    drawn = io.StringIO()
    with progress.forced(drawn):
        up = rh.file(path=str(big)).to(cluster, path=remote_path())
        down = up.to("here", path=str(tmp_path / "down.bin"))
    assert "100%" in drawn.getvalue() and Path(down.path).read_bytes() == big.read_bytes()
    assert [p.name for p in tmp_path.iterdir() if PARTIAL in p.name] == []
    up.rm()
    monkeypatch.setattr(ClusterFiles, "call", real)
    assert copied.fetch() == list(range(1000)) and f.fetch() == list(range(1000))
    f.rm()


def test_mv_deletes_the_source_after_the_copy_is_checked(cluster: rh.Cluster, work: Path) -> None:
    f = source(work / "src")
    moved = f.mv(cluster, path=remote_path())
    assert moved is f and isinstance(f.system, rh.Cluster)
    assert not (work / "src").exists() and contents(f) == FILES
    f.mv("here", path=str(work / "home_again"))
    assert contents(f) == FILES and f.system == "file"


def test_mv_keeps_the_source_when_the_copy_differs(
    cluster: rh.Cluster, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = source(work / "src")
    real = rh.Folder.sizes

    def one_file_short(self: rh.Folder) -> dict[str, int]:
        found = real(self)
        return found if self is f else dict(list(found.items())[1:])

    monkeypatch.setattr(rh.Folder, "sizes", one_file_short)
    with pytest.raises(rh.StorageError, match="not complete"):
        f.mv(cluster, path=remote_path())
    assert contents(f) == FILES and f.system == "file"


def test_streamed_through_the_daemon_both_ways(
    cluster: rh.Cluster, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The path of tls/none clusters (no SSH), driven here through each cluster's daemon.
    monkeypatch.setattr(trees, "CHUNK", 4096)  # several parts each way
    src = source(work / "src")
    disk = ClusterFiles(cluster)
    dest = disk.expand(remote_path())
    through_daemon.http_upload(disk, src.path, dest)
    on_c = rh.folder(path=dest, system=cluster)
    assert contents(on_c) == FILES
    through_daemon.http_download(disk, dest, str(work / "back"))
    assert contents(rh.folder(path=str(work / "back"))) == FILES
    assert sorted(os.listdir(work)) == ["back", "src"]  # no tar or temporary left here
    on_c.rm()


def test_each_cluster_kind_takes_its_path(cluster: rh.Cluster) -> None:
    assert transfers.route(rh.cluster(name="local")) == "local"
    assert transfers.route(rh.Cluster(host="10.1.2.3", server_connection_type="tls")) == "http"
    assert transfers.route(rh.Cluster(host="10.1.2.3", server_connection_type="none")) == "http"
    assert transfers.route(rh.Cluster(host="10.1.2.3")) == "rsync"
    assert transfers.route(cluster) == ("rsync" if cluster.ips else "local")


# -- transfers cut in the middle -----------------------------------------------------------

CUT = """
import sys, threading
import runhouse as rh
from runhouse.data import through_daemon, transfers, trees
from runhouse.data.cluster_files import ClusterFiles

def cut(*args, **kwargs):
    print("cut", flush=True)  # the test kills this process by its PID now
    threading.Event().wait()

cluster = rh.cluster(name=sys.argv[1]) if sys.argv[1] != "-" else None
{body}
print("finished", flush=True)
"""


def run_until_cut(python: str, body: str, cluster: rh.Cluster | None, prelude: str = "") -> None:
    """Run ``prelude`` and ``body`` in a child process until it calls ``cut()``, then kill
    it (SIGKILL)."""
    script = CUT.format(body=prelude + textwrap.dedent(body))
    name = cluster.rns_address if cluster is not None else "-"
    proc = subprocess.Popen(
        [python, "-c", script, str(name)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line != b"cut\n":
        _, err = proc.communicate()
        pytest.fail(f"the transfer was not cut: {line!r} {err.decode()}")
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()


def test_a_cut_upload_never_looks_complete_and_a_rerun_finishes(
    cluster: rh.Cluster, work: Path, python: str
) -> None:
    src = source(work / "src")
    dest = remote_path()
    # Killed once every file arrived (rsync, or a local copy) but before the rename.
    run_until_cut(
        python,
        f"""
        ClusterFiles.rename = cut
        rh.folder(path={src.path!r}).to(cluster, path={dest!r})
        """,
        cluster,
    )
    on_c = rh.folder(path=dest, system=cluster)
    assert not on_c.exists_in_system()
    parent = rh.folder(path="~", system=cluster)
    assert on_c.path.removeprefix("~/") not in parent.ls(full_paths=False)
    src.to(cluster, path=dest)
    assert contents(on_c) == FILES
    on_c.rm()


def test_a_cut_download_never_looks_complete_and_a_rerun_finishes(
    cluster: rh.Cluster, work: Path, python: str
) -> None:
    on_c = source(work / "src").to(cluster, path=remote_path())
    dest = work / "back"
    run_until_cut(
        python,
        f"""
        from runhouse.data.systems.local import LocalStorage
        LocalStorage.rename = cut
        rh.folder(path={on_c.path!r}, system=cluster).to("here", path={str(dest)!r})
        """,
        cluster,
    )
    assert not dest.exists()
    assert [n for n in os.listdir(work) if PARTIAL in n]  # kept for the re-run
    assert rh.folder(path=str(work)).ls(full_paths=False) == ["src"]
    on_c.to("here", path=str(dest))
    assert contents(rh.folder(path=str(dest))) == FILES
    assert sorted(os.listdir(work)) == ["back", "src"]
    on_c.rm()


def test_a_stream_cut_mid_file_resumes_where_it_stopped(
    cluster: rh.Cluster, work: Path, python: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = source(work / "src")
    dest = ClusterFiles(cluster).expand(remote_path())
    run_until_cut(
        python,
        f"""
        trees.CHUNK = 4096
        real = ClusterFiles.call
        parts = []
        def call(self, op, *args):
            if op == "write_at":
                parts.append(args[1])
                if len(parts) == 3:
                    cut()
            return real(self, op, *args)
        ClusterFiles.call = call
        through_daemon.http_upload(ClusterFiles(cluster), {src.path!r}, {dest!r})
        """,
        cluster,
    )
    on_c = rh.folder(path=dest, system=cluster)
    assert not on_c.exists_in_system()
    offsets: list[int] = []
    real = ClusterFiles.call

    def record(self: ClusterFiles, op: str, *args: Any) -> Any:
        if op == "write_at":
            offsets.append(args[1])
        return real(self, op, *args)

    monkeypatch.setattr(ClusterFiles, "call", record)
    through_daemon.http_upload(ClusterFiles(cluster), src.path, dest)
    # Two parts (of 4096 bytes or a little more) had arrived: the re-run sends the rest.
    assert 2 * 4096 <= offsets[0] < trees.tar_size(trees.manifest(src.path)) - 4096
    assert contents(on_c) == FILES
    on_c.rm()


# Copies one file at a time and cuts the process after the second (run_until_cut's `cut`).
CUT_AFTER_TWO_FILES = """
trees.BATCH = 1
real = trees.copy_files
done = []
def copy_files(*args):
    if len(done) == 2:
        cut()
    done.append(args)
    real(*args)
trees.copy_files = copy_files
"""


def test_a_cut_local_copy_resumes_with_the_missing_files(
    work: Path, python: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = source(work / "src")
    dest = work / "copy"
    run_until_cut(
        python,
        f"""
        rh.folder(path={src.path!r}).to("here", path={str(dest)!r})
        """,
        None,
        prelude=CUT_AFTER_TWO_FILES,
    )
    assert not dest.exists()
    copied: list[str] = []
    real = trees.copy_files

    def record(src: Any, sources: list[str], *rest: Any) -> None:
        copied.extend(sources)
        real(src, sources, *rest)

    monkeypatch.setattr(trees, "copy_files", record)
    src.to("here", path=str(dest))
    assert len(copied) == len(FILES) - 2  # the two files that arrived are not sent again
    assert contents(rh.folder(path=str(dest))) == FILES


def _master_pid(runner: Any) -> int:
    """The PID of the SSH control connection (``ssh -O check`` says it)."""
    check = subprocess.run(
        ["ssh", *runner.options(), "-O", "check", runner.target], capture_output=True, text=True
    )
    return int(check.stderr.split("pid=")[1].split(")")[0])


def test_an_upload_whose_ssh_connection_dies_midway_is_finished_by_a_rerun(
    ssh_cluster: rh.Cluster, work: Path, monkeypatch: Any
) -> None:
    from runhouse.client.runners import ssh as ssh_runner

    big = {"big.bin": os.urandom(24 << 20), "small.txt": b"small"}
    src = source(work / "src", big)
    dest = remote_path()
    real = ssh_runner.run_rsync
    killed: list[int] = []

    def slow_then_cut(argv: list[str], env: Any, fed: Any) -> Any:
        at = argv.index("rsync") + 1
        argv = [*argv[:at], "--bwlimit=4096", *argv[at:]]  # 4 MiB/s: still sending when cut

        def count(done: int) -> None:
            if done > 0 and not killed:  # bytes of the big file are on their way
                killed.append(_master_pid(ssh_cluster.runner))
                os.kill(killed[0], signal.SIGKILL)  # the SSH connection (and its tunnels) dies
            fed(done)

        return real(argv, env, count)

    monkeypatch.setattr(ssh_runner, "run_rsync", slow_then_cut)
    with progress.forced(io.StringIO()), pytest.raises(rh.RunhouseError) as cut:
        src.to(ssh_cluster, path=dest)
    assert killed, "the connection was not cut"
    assert "run the same transfer again to finish it" in str(cut.value)
    monkeypatch.setattr(ssh_runner, "run_rsync", real)
    on_c = rh.folder(path=dest, system=ssh_cluster)
    assert not on_c.exists_in_system()  # nothing that looks complete
    again = src.to(ssh_cluster, path=dest)  # a new connection; rsync sends what is missing
    assert again.sizes() == {"big.bin": 24 << 20, "small.txt": 5}
    assert again.get("big.bin") == big["big.bin"]
    [(_, listed, _)] = ssh_cluster.run(f"ls -A {dest}", stream_logs=False)
    assert listed.split() == ["big.bin", "small.txt"]  # no rsync temporary file came along
    assert [e for e in ClusterFiles(ssh_cluster).ls("~") if PARTIAL in e] == []
