"""Streaming a table: ``t.stream(batch_size=65536, format="pyarrow")`` against a raw
``pyarrow.dataset`` scan of the same files, and the peak memory of the streaming process.

The script writes a partitioned parquet dataset of about ``--size-gb`` (8 partitions; an
id, six random floats that do not compress, a short string) with ``rh.table(...).write()``
in a temporary folder, reads it once to warm the page cache, then times both readers in
alternating rounds (``--rounds``, in forward then reverse order) so that a machine's drift
hits both alike. Each read runs in a fresh process that reports its rows, seconds and peak
RSS (``VmHWM``), so no reader inherits another's memory or imports:

* ours: ``rh.table(path=...).stream(batch_size=65536, format="pyarrow")``;
* raw: ``pyarrow.dataset.dataset(path, partitioning="hive").to_batches(batch_size=65536)``
  with pyarrow's default read-ahead.

Prints one JSON line on stdout (progress goes to stderr). Targets: ours at least 0.8x the
raw scan's rows/s; the streaming process's peak RSS under 400 MB.

    .venv/bin/python benchmarks/table_stream.py [--size-gb 1.0] [--rounds 6]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

# One read in a fresh process: rows, seconds and peak RSS of that process.
READER = """
import json, sys, time
which, path, batch_size = sys.argv[1], sys.argv[2], int(sys.argv[3])
if which == "ours":
    import runhouse as rh
    batches = rh.table(path=path).stream(batch_size=batch_size, format="pyarrow")
else:
    import pyarrow.dataset as ds
    dataset = ds.dataset(path, format="parquet", partitioning="hive")
    batches = dataset.to_batches(batch_size=batch_size)
start = time.perf_counter()
rows = sum(batch.num_rows for batch in batches)
seconds = time.perf_counter() - start
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
peak = int(status["VmHWM"].split()[0]) * 1024
print(json.dumps({"rows": rows, "seconds": seconds, "peak_rss": peak}))
"""

ROWS_PER_CHUNK = 1_000_000
BYTES_PER_ROW = 58  # on disk: an int64 id, six random float64s, a dictionary-coded string
PARTITIONS = 8


def progress(message: str) -> None:
    """A progress line on stderr."""
    print(f"[table_stream] {message}", file=sys.stderr, flush=True)


def chunks(rows: int) -> Iterator[Any]:
    """The dataset's rows, a million at a time (the script never holds the whole table)."""
    import numpy as np
    import pyarrow as pa

    tags = pa.array([f"tag-{n:03d}" for n in range(64)])
    rng = np.random.default_rng(0)
    for start in range(0, rows, ROWS_PER_CHUNK):
        n = min(ROWS_PER_CHUNK, rows - start)
        columns = {"id": pa.array(np.arange(start, start + n, dtype=np.int64))}
        columns |= {f"x{k}": pa.array(rng.random(n)) for k in range(6)}
        columns["tag"] = tags.take(pa.array(rng.integers(0, 64, n)))
        columns["part"] = pa.array(rng.integers(0, PARTITIONS, n))
        yield pa.record_batch(columns)


def make_dataset(path: str, size_gb: float) -> int:
    """Write the partitioned dataset with rh.table; its row count."""
    import pyarrow as pa

    import runhouse as rh

    rows = int(size_gb * 1e9 / BYTES_PER_ROW)
    first = next(chunks(1))
    reader = pa.RecordBatchReader.from_batches(first.schema, chunks(rows))
    rh.table(data=reader, path=path, partition_cols=["part"]).write()
    return rows


def disk_bytes(path: str) -> int:
    """The bytes of every file under ``path``."""
    return sum(
        os.path.getsize(os.path.join(folder, name))
        for folder, _, names in os.walk(path)
        for name in names
    )


def read(which: str, path: str, batch_size: int) -> dict[str, Any]:
    """One read by ``which`` ("ours" or "raw") in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", READER, which, path, str(batch_size)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def main() -> None:
    """Write the dataset, read it by both readers in alternating rounds, print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-gb", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=65536)
    args = parser.parse_args()

    folder = tempfile.mkdtemp(prefix="rh-table-bench-")
    path = os.path.join(folder, "table")
    try:
        progress(f"writing about {args.size_gb} GB to {path}")
        rows = make_dataset(path, args.size_gb)
        size = disk_bytes(path)
        files = sum(len(names) for _, _, names in os.walk(path)) - 1  # not _common_metadata
        progress(f"{rows:,} rows, {size / 1e9:.2f} GB in {files} files; warming the page cache")
        read("raw", path, args.batch_size)
        runs: dict[str, list[dict[str, Any]]] = {"ours": [], "raw": []}
        for number in range(args.rounds):
            order = ["ours", "raw"] if number % 2 == 0 else ["raw", "ours"]
            for which in order:
                run = read(which, path, args.batch_size)
                if run["rows"] != rows:
                    raise RuntimeError(f"{which} read {run['rows']} rows of {rows}")
                runs[which].append(run)
            progress(f"round {number + 1}/{args.rounds} done")
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    def rate(which: str) -> float:
        return statistics.median(rows / run["seconds"] for run in runs[which])

    ours, raw = rate("ours"), rate("raw")
    ours_peak = max(run["peak_rss"] for run in runs["ours"])
    raw_peak = max(run["peak_rss"] for run in runs["raw"])
    ratio = ours / raw
    print(
        json.dumps(
            {
                "benchmark": "table_stream",
                "rows": rows,
                "dataset_bytes": size,
                "files": files,
                "batch_size": args.batch_size,
                "rounds": args.rounds,
                "ours_rows_per_s": round(ours),
                "raw_rows_per_s": round(raw),
                "ratio_ours_to_raw": round(ratio, 3),
                "ours_peak_rss_mb": round(ours_peak / 2**20, 1),
                "raw_peak_rss_mb": round(raw_peak / 2**20, 1),
                "targets": {
                    "rows_per_s_ge_0_8x_raw": {"target": 0.8, "met": ratio >= 0.8},
                    "peak_rss_lt_400_mb": {"target": 400, "met": ours_peak < 400 * 2**20},
                },
            }
        )
    )


if __name__ == "__main__":
    main()
