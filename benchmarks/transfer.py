"""Moving a folder of about ``--size-gb`` GiB of mixed files, by Runhouse and by the tools
a user would reach for otherwise, over the same servers in one run.

The folder (made here under the temporary folder, removed at the end): 10% of the bytes in
small files of 1-64 KiB in 32 subfolders (about 3,300 at 1 GiB), 40% in files of 1-16 MiB
(about 50) and 50% in four large files; random bytes, which do not compress (most data
people move, parquet, images, weights, is compressed already). Paths, each timed in
alternating rounds (``--rounds``, in forward then reverse order, so that a machine's drift
hits every path alike), each into a fresh destination that is removed afterwards:

* here -> an SSH cluster (a throwaway loopback sshd with its own user, see ssh_host.py):
  ``rh.folder(path).to(cluster, path=...)`` against raw ``rsync -a`` over the same sshd, with
  the ssh options and control connection the cluster's runner uses (only the tool differs);
* the SSH cluster -> here: ``rh.folder(path, system=cluster).to("here", path=...)`` against
  ``rsync -a`` the other way;
* here -> S3 (a fresh moto server for each transfer, so no run inherits another's objects):
  ``folder.to("s3", path=...)`` against ``s3fs``'s ``put`` of the folder and boto3's
  ``upload_file`` for every file from a pool of ``--threads`` threads;
* each of ours again with the progress bar on (stderr swapped for a pseudo-terminal during
  the transfer, as a user at a terminal has it), to show that drawing it costs nothing;
* a diagnostic without a target, ``ours_before_rename``: ours into S3 with the final rename
  left out (in a bucket a rename is a server-side copy of every object, then a delete), which
  shows what writing to a temporary name costs against an emulator that spends as much CPU
  on a copy as on an upload.

Before each timed transfer the page cache's dirty pages are flushed (``os.sync``), so none
pays for the writes of the one before; the SSH paths each run once untimed first. Prints one
JSON line on stdout (progress goes to stderr): MB/s (10^6 bytes/s, medians over rounds) per
path, the ratios and whether the targets are met. Targets: ours at least 0.8x rsync's
throughput each way; at least 0.9x the faster of s3fs and boto3 into S3; the bar on
at least 0.95x the bar off (a reference target: the client must not slow down).

    .venv/bin/python benchmarks/transfer.py [--size-gb 1.0] [--rounds 4] [--skip ssh|s3]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import pty
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: tests.*

GiB, MiB, KiB = 2**30, 2**20, 2**10
SMALL_SHARE, MEDIUM_SHARE, LARGE_FILES = 0.10, 0.40, 4
POOL = 64 * MiB  # files are slices of one random pool: random bytes without the cost
DRAWN: list[int] = []  # bytes each transfer with the bar on wrote to its terminal


def progress(message: str) -> None:
    """A progress line on stderr."""
    print(f"[transfer] {message}", file=sys.stderr, flush=True)


def make_folder(root: Path, size: int) -> tuple[int, int]:
    """Write the mixed folder of about ``size`` bytes into ``root``; (files, bytes)."""
    rng = random.Random(0)
    pool = os.urandom(POOL)
    sizes: list[tuple[str, int]] = []
    small = 0
    while small < size * SMALL_SHARE:
        n = rng.randint(KiB, 64 * KiB)
        sizes.append((f"small/{len(sizes) % 32:02d}/s{len(sizes):05d}.bin", n))
        small += n
    medium = 0
    while medium < size * MEDIUM_SHARE:
        n = rng.randint(MiB, 16 * MiB)
        sizes.append((f"medium/m{len(sizes):05d}.bin", n))
        medium += n
    large = max(0, size - small - medium) // LARGE_FILES
    sizes += [(f"large/l{k}.bin", large) for k in range(LARGE_FILES)]
    for rel, n in sizes:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            left = n
            while left:
                start = rng.randrange(0, POOL - min(left, POOL // 2))
                piece = pool[start : start + min(left, POOL // 2)]
                f.write(piece)
                left -= len(piece)
    return len(sizes), sum(n for _, n in sizes)


def tree_bytes(root: Path) -> tuple[int, int]:
    """(files, bytes) under ``root``."""
    files = total = 0
    for folder, _, names in os.walk(root):
        for name in names:
            files += 1
            total += os.path.getsize(os.path.join(folder, name))
    return files, total


@contextlib.contextmanager
def on_a_terminal() -> Iterator[None]:
    """``sys.stderr`` is a pseudo-terminal inside (drained by a thread), as for a user at a
    terminal: the progress bar draws (its bytes are counted in ``DRAWN``)."""
    leader, follower = pty.openpty()
    drained = [0]

    def drain() -> None:
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the follower closed
                return
            if not data:
                return
            drained[0] += len(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    previous = sys.stderr
    sys.stderr = os.fdopen(follower, "w", buffering=1)
    try:
        yield
    finally:
        sys.stderr.close()
        sys.stderr = previous
        reader.join(5)
        os.close(leader)
        DRAWN.append(drained[0])


def interleave(
    paths: dict[str, Callable[[int], Callable[[], Any]]],
    rounds: int,
    size: int,
    what: str,
    warmup: bool = False,
) -> dict[str, list[float]]:
    """MB/s of each path per round. A path is ``prepare(round) -> run``: ``prepare`` makes
    its fresh destination (untimed), ``run`` transfers and returns a cleanup (untimed).
    ``warmup``: each path once, untimed, first (the first transfers over a new sshd ran up
    to 1.8x faster than every later one, whichever tool made them)."""
    rates: dict[str, list[float]] = {name: [] for name in paths}
    names = list(paths)
    for name in names if warmup else []:
        paths[name](-1)()()
    for number in range(rounds):
        for name in names if number % 2 == 0 else reversed(names):
            run = paths[name](number)
            os.sync()  # no transfer pays for the dirty pages of the one before
            start = time.perf_counter()
            cleanup = run()
            seconds = time.perf_counter() - start
            cleanup()
            rates[name].append(size / seconds / 1e6)
        line = ", ".join(f"{n} {r[-1]:.0f}" for n, r in rates.items())
        progress(f"{what} round {number + 1}/{rounds} MB/s: {line}")
    return rates


def with_bar(run: Callable[[], Any]) -> Callable[[], Any]:
    """``run`` with stderr a terminal, so that the progress bar draws."""

    def on() -> Any:
        with on_a_terminal():
            return run()

    return on


def checked(
    folder: Path, expected: tuple[int, int], transfer: Callable[[], object]
) -> Callable[[], Callable[[], None]]:
    """A run of ``transfer`` into ``folder`` (on this machine's disk, an SSH host's home
    included) whose cleanup checks that the files arrived, then removes them."""

    def run() -> Callable[[], None]:
        transfer()

        def cleanup() -> None:
            got = tree_bytes(folder)
            shutil.rmtree(folder)
            if got != expected:
                raise RuntimeError(f"{folder} holds {got} (files, bytes), not {expected}")

        return cleanup

    return run


# -- here <-> an SSH cluster --------------------------------------------------------------


def ssh_paths(
    source: Path, work: Path, rounds: int, size: int, files: int
) -> dict[str, dict[str, list[float]]]:
    """Rates of here -> cluster and cluster -> here, ours against rsync over the same sshd."""
    from ssh_host import available, cluster_on, ssh_host

    import runhouse as rh

    reason = available()
    if reason is not None:
        progress(f"no SSH host: {reason}")
        return {}
    with ssh_host("rhbench1") as host:
        cluster = cluster_on(host)
        try:
            remote = f"{host.user}@127.0.0.1"
            rsync = ["rsync", "-a", "-e", shlex.join(["ssh", *cluster.runner.options()])]
            home = Path(host.home)
            progress("the cluster's copy of the folder; a warm-up round starts its daemon")
            subprocess.run([*rsync, f"{source}/", f"{remote}:source"], check=True)

            def up(number: int, name: str) -> Callable[[], Any]:
                dest = f"up-{number}-{name}"

                def transfer() -> None:
                    if name == "rsync":
                        subprocess.run([*rsync, f"{source}/", f"{remote}:{dest}"], check=True)
                    else:
                        rh.folder(path=str(source)).to(cluster, path=f"~/{dest}")

                bar = name == "ours_bar"
                return checked(home / dest, (files, size), with_bar(transfer) if bar else transfer)

            def down(number: int, name: str) -> Callable[[], Any]:
                dest = work / f"down-{number}-{name}"

                def transfer() -> None:
                    if name == "rsync":
                        subprocess.run([*rsync, f"{remote}:source/", str(dest)], check=True)
                    else:
                        rh.folder(path="~/source", system=cluster).to("here", path=str(dest))

                bar = name == "ours_bar"
                return checked(dest, (files, size), with_bar(transfer) if bar else transfer)

            names = ("ours", "ours_bar", "rsync")
            ups = {name: functools.partial(up, name=name) for name in names}
            downs = {name: functools.partial(down, name=name) for name in names}
            up_rates = interleave(ups, rounds, size, "here -> SSH cluster", warmup=True)
            down_rates = interleave(downs, rounds, size, "SSH cluster -> here", warmup=True)
            shutil.rmtree(home / "source")
            return {"ssh_up": up_rates, "ssh_down": down_rates}
        finally:
            cluster.daemon_host.stop()


# -- here -> S3 (moto) ----------------------------------------------------------------------


@contextlib.contextmanager
def fresh_s3(log_dir: Path) -> Iterator[str]:
    """A fresh moto server (the variables point every client at it) and a bucket on it."""
    from tests.storage_servers import start_moto

    server = start_moto(log_dir)
    saved = {k: os.environ.get(k) for k in server.env}
    os.environ.update(server.env)
    try:
        server.make_bucket("bench")
        yield "bench"
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()


def bucket_totals(bucket: str, prefix: str) -> tuple[int, int]:
    """(objects, bytes) under ``prefix`` in ``bucket``."""
    import boto3

    client = boto3.client("s3")
    objects = total = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            objects += 1
            total += entry["Size"]
    return objects, total


def s3_paths(
    source: Path, work: Path, rounds: int, size: int, files: int, threads: int
) -> dict[str, dict[str, list[float]]]:
    """Rates of here -> S3: ours against s3fs's put and boto3's upload_file in threads."""
    import boto3
    import s3fs
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config

    import runhouse as rh
    from runhouse.data.storage import PARTIAL
    from runhouse.data.systems.s3 import S3Storage

    os.environ.pop("AWS_CA_BUNDLE", None)  # set on these machines; moto is plain HTTP
    names = sorted(str(p.relative_to(source)) for p in source.rglob("*") if p.is_file())
    logs = work / "moto-logs"
    logs.mkdir()

    def in_fresh_s3(
        upload: Callable[[str], None], prefix: str = "data/"
    ) -> Callable[[int], Callable[[], Any]]:
        def prepare(number: int) -> Callable[[], Any]:
            server = contextlib.ExitStack()
            bucket = server.enter_context(fresh_s3(logs))

            def run() -> Callable[[], None]:
                upload(bucket)

                def cleanup() -> None:
                    with server:
                        got = bucket_totals(bucket, prefix)
                    if got != (files, size):
                        raise RuntimeError(f"s3://{bucket}/data holds {got}")

                return cleanup

            return run

        return prepare

    def ours(bucket: str) -> None:
        rh.folder(path=str(source)).to("s3", path=f"{bucket}/data")

    def s3fs_put(bucket: str) -> None:
        fs = s3fs.S3FileSystem(skip_instance_cache=True)
        fs.put(f"{source}/", f"{bucket}/data/", recursive=True)

    def boto3_upload_file(bucket: str) -> None:
        client = boto3.client("s3", config=Config(max_pool_connections=threads))
        config = TransferConfig(max_concurrency=threads)
        with ThreadPoolExecutor(threads) as pool:
            sent = [
                pool.submit(client.upload_file, str(source / n), bucket, f"data/{n}", Config=config)
                for n in names
            ]
            for done in sent:
                done.result()

    def ours_bar(bucket: str) -> None:
        with_bar(lambda: ours(bucket))()

    def ours_before_rename(bucket: str) -> None:
        # A diagnostic, no target: ours with the final rename (a server-side copy of every
        # object, then their deletion) left out, so the files stay under the temporary name.
        with mock.patch.object(S3Storage, "rename", lambda self, source, dest: None):
            ours(bucket)

    uploads = (ours, ours_bar, s3fs_put, boto3_upload_file)
    paths = {upload.__name__: in_fresh_s3(upload) for upload in uploads}
    paths["ours_before_rename"] = in_fresh_s3(ours_before_rename, f"data{PARTIAL}")
    return {"s3_up": interleave(paths, rounds, size, "here -> S3")}


# -- the report ---------------------------------------------------------------------------


def ratio(a: float | None, b: float | None) -> float | None:
    """``a / b`` rounded, or None when either was not measured."""
    return round(a / b, 3) if a and b else None


def target(value: float | None, at_least: float) -> dict[str, Any]:
    """A target and whether ``value`` meets it (None when not measured)."""
    return {"target": at_least, "met": value >= at_least if value is not None else None}


def main() -> None:
    """Make the folder, time every path in alternating rounds, print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-gb", type=float, default=1.0, help="GiB of files")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--threads", type=int, default=16, help="boto3's upload threads")
    parser.add_argument("--skip", choices=["ssh", "s3"], action="append", default=[])
    args = parser.parse_args()

    size = int(args.size_gb * GiB)
    free = shutil.disk_usage(tempfile.gettempdir()).free
    if free < 5 * size:  # the folder, the cluster's copy, a destination, moto's spill
        sys.exit(f"{tempfile.gettempdir()} has {free / GiB:.1f} GiB free; needs {5 * size / GiB}")
    os.environ.pop("RH_PROGRESS", None)  # the bar's setting at its default: on
    work = Path(tempfile.mkdtemp(prefix="rh-transfer-bench-"))
    try:
        source = work / "source"
        files, size = make_folder(source, size)
        progress(f"{files} files, {size / GiB:.2f} GiB in {source}")
        rates: dict[str, dict[str, list[float]]] = {}
        if "ssh" not in args.skip:
            rates |= ssh_paths(source, work, args.rounds, size, files)
        if "s3" not in args.skip:
            rates |= s3_paths(source, work, args.rounds, size, files, args.threads)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    mb = {
        kind: {name: round(statistics.median(r), 1) for name, r in paths.items()}
        for kind, paths in rates.items()
    }

    def get(kind: str, name: str) -> float | None:
        return mb.get(kind, {}).get(name)

    s3_best = max(
        filter(None, [get("s3_up", "s3fs_put"), get("s3_up", "boto3_upload_file")]), default=None
    )
    ratios = {
        "ssh_up_ours_to_rsync": ratio(get("ssh_up", "ours"), get("ssh_up", "rsync")),
        "ssh_down_ours_to_rsync": ratio(get("ssh_down", "ours"), get("ssh_down", "rsync")),
        "s3_up_ours_to_best": ratio(get("s3_up", "ours"), s3_best),
        "ssh_up_bar_on_to_off": ratio(get("ssh_up", "ours_bar"), get("ssh_up", "ours")),
        "ssh_down_bar_on_to_off": ratio(get("ssh_down", "ours_bar"), get("ssh_down", "ours")),
        "s3_up_bar_on_to_off": ratio(get("s3_up", "ours_bar"), get("s3_up", "ours")),
        "s3_up_ours_before_rename_to_best": ratio(get("s3_up", "ours_before_rename"), s3_best),
    }
    bar_ratios = [v for k, v in ratios.items() if "bar" in k]
    print(
        json.dumps(
            {
                "benchmark": "transfer",
                "files": files,
                "bytes": size,
                "rounds": args.rounds,
                "mb_per_s": mb,
                "bar_drew_bytes_at_least": min(DRAWN, default=None),
                "ratios": ratios,
                "targets": {
                    "ssh_up_ge_0_8x_rsync": target(ratios["ssh_up_ours_to_rsync"], 0.8),
                    "ssh_down_ge_0_8x_rsync": target(ratios["ssh_down_ours_to_rsync"], 0.8),
                    "s3_up_ge_0_9x_best": target(ratios["s3_up_ours_to_best"], 0.9),
                    "bar_on_ge_0_95x_off": target(
                        min(filter(None, bar_ratios), default=None), 0.95
                    ),
                },
            }
        )
    )


if __name__ == "__main__":
    main()
