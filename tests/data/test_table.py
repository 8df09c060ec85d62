"""rh.table: every input kind and stream format, partitions and filters, exact batches,
seeded shuffles, atomic writes, save/load, copies between systems, flat memory."""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

import runhouse as rh
from runhouse.data import tables
from runhouse.data.storage import PARTIAL
from tests.storage_servers import Service
from tests.test_sides import CLIENT_ONLY, modules_after

ROWS = 1000


def frame(rows: int = ROWS) -> pd.DataFrame:
    """Rows with a partition column, an int, a float and a string."""
    return pd.DataFrame(
        {
            "region": np.array(["eu", "us", "ap", "sa"])[np.arange(rows) % 4],
            "i": np.arange(rows, dtype=np.int64),
            "f": np.arange(rows) / 2,
            "s": [f"row{n}" for n in range(rows)],
        }
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """An empty folder for tables (``tmp_path`` also holds the test's home and project)."""
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


@pytest.fixture
def small_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many files and row groups even for small tables, so batches straddle them."""
    monkeypatch.setattr(tables, "ROWS_PER_GROUP", 70)
    monkeypatch.setattr(tables, "ROWS_PER_FILE", 210)


def written(data_dir: Path, **kwargs: Any) -> rh.Table:
    """A partitioned table of ``frame()`` written under ``data_dir``."""
    kwargs.setdefault("partition_cols", ["region"])
    return rh.table(data=frame(), path=str(data_dir / "t"), **kwargs).write()


def ids(batches: Iterator[pa.RecordBatch]) -> list[int]:
    """The ``i`` column of every batch, in order."""
    return [v for b in batches for v in b.column("i").to_pylist()]


# -- input kinds ---------------------------------------------------------------------------


INPUTS = {
    "pandas": lambda df: df,
    "pyarrow_table": lambda df: pa.Table.from_pandas(df, preserve_index=False),
    "pyarrow_batch": lambda df: pa.RecordBatch.from_pandas(df, preserve_index=False),
    "pyarrow_reader": lambda df: pa.Table.from_pandas(df, preserve_index=False).to_reader(64),
    "pyarrow_dataset": lambda df: ds.dataset(pa.Table.from_pandas(df, preserve_index=False)),
    "polars": lambda df: pytest.importorskip("polars").from_pandas(df),
    "hf_datasets": lambda df: pytest.importorskip("datasets").Dataset.from_pandas(
        df, preserve_index=False
    ),
}


@pytest.mark.parametrize("kind", sorted(INPUTS))
def test_every_input_kind_round_trips(data_dir: Path, kind: str) -> None:
    data = INPUTS[kind](frame())
    t = rh.table(data=data, path=str(data_dir / kind), partition_cols=["region"]).write()
    assert len(t) == ROWS
    assert t.columns == ["region", "i", "f", "s"]
    got = t.fetch().sort_by("i")
    assert got.column("i").to_pylist() == list(range(ROWS))
    assert got.column("s").to_pylist() == [f"row{n}" for n in range(ROWS)]
    region = got.schema.field("region").type  # each library has its own string type
    assert pa.types.is_string(region) or pa.types.is_large_string(region), region


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # ray.data's own, at its import
def test_a_ray_dataset_round_trips(data_dir: Path, ray_nodes: Any) -> None:
    import ray

    # A driver on the session's Ray nodes: ray.data alone would start a Ray of its own here.
    ray.init(address=ray_nodes.address, log_to_driver=False, configure_logging=False)
    try:
        data = ray.data.from_pandas(frame())
        t = rh.table(data=data, path=str(data_dir / "ray"), partition_cols=["region"]).write()
    finally:
        ray.shutdown()
    assert len(t) == ROWS and t.columns == ["region", "i", "f", "s"]
    assert sorted(t.fetch().column("i").to_pylist()) == list(range(ROWS))


def test_a_value_of_no_known_kind_is_refused(data_dir: Path) -> None:
    with pytest.raises(TypeError, match="pandas or polars DataFrame"):
        rh.table(data=[1, 2, 3], path=str(data_dir / "t")).write()
    assert not (data_dir / "t").exists()


# -- partitions, filters, len and columns ---------------------------------------------------


def test_partitioned_layout_keeps_types_and_order(data_dir: Path) -> None:
    df = frame().assign(year=lambda d: 2020 + d.i % 3)
    t = rh.table(data=df, path=str(data_dir / "t"), partition_cols=["year", "region"]).write()
    assert sorted(p.name for p in (data_dir / "t").iterdir()) == [
        "_common_metadata",
        "year=2020",
        "year=2021",
        "year=2022",
    ]
    assert (data_dir / "t" / "year=2021" / "region=eu").is_dir()
    assert t.columns == ["region", "i", "f", "s", "year"]
    assert t.fetch().schema.field("year").type == pa.int64()  # not the int32 discovery infers


def test_a_categorical_partition_reads_back_as_its_values(data_dir: Path) -> None:
    df = frame().astype({"region": "category"})
    t = rh.table(data=df, path=str(data_dir / "t"), partition_cols=["region"]).write()
    assert t.fetch(filter=[("region", "==", "sa")]).column("region").to_pylist() == ["sa"] * 250
    assert len(ids(t.stream(batch_size=100, shuffle_seed=1))) == ROWS


def test_an_empty_table(data_dir: Path) -> None:
    t = rh.table(data=frame(0), path=str(data_dir / "t")).write()
    assert len(t) == 0 and t.columns == ["region", "i", "f", "s"]
    assert t.fetch().num_rows == 0 and list(t.stream()) == []


def test_filtered_fetch_by_list_and_expression(data_dir: Path) -> None:
    t = written(data_dir)
    eu = t.fetch(filter=[("region", "==", "eu")])
    assert eu.num_rows == ROWS // 4 and set(eu.column("region").to_pylist()) == {"eu"}
    either = t.fetch(filter=[[("region", "==", "eu")], [("region", "==", "us")]])
    assert either.num_rows == ROWS // 2
    some = t.fetch(columns=["i"], filter=(pc.field("i") < 10) & (pc.field("region") == "us"))
    assert some.column_names == ["i"] and sorted(some.column("i").to_pylist()) == [1, 5, 9]


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="counts reads in /proc")
def test_len_reads_footers_only(data_dir: Path) -> None:
    data = pa.table({"x": np.random.default_rng(0).random(1_000_000)})  # 8 MB of parquet
    t = rh.table(data=data, path=str(data_dir / "t")).write()

    def bytes_read() -> int:
        lines = Path("/proc/self/io").read_text().splitlines()
        return int(dict(line.split(": ") for line in lines)["rchar"])

    len(t)  # the first call may import modules, which reads their files
    before = bytes_read()
    assert len(t) == 1_000_000
    assert bytes_read() - before < 1_000_000  # footers and the schema, not the data


def test_an_unpartitioned_table_and_one_written_by_another_tool(data_dir: Path) -> None:
    t = rh.table(data=frame(), path=str(data_dir / "plain")).write()
    assert len(t) == ROWS and t.columns == ["region", "i", "f", "s"]
    ds.write_dataset(
        pa.Table.from_pandas(frame()),
        data_dir / "foreign",
        format="parquet",
        partitioning=["region"],
        partitioning_flavor="hive",
    )
    foreign = rh.table(path=str(data_dir / "foreign"))
    assert len(foreign) == ROWS and set(foreign.columns) == {"region", "i", "f", "s"}
    assert foreign.fetch(filter=[("region", "==", "ap")]).num_rows == ROWS // 4


# -- streaming ------------------------------------------------------------------------------


@pytest.mark.usefixtures("small_files")
@pytest.mark.parametrize("batch_size", [1, 7, 64, 250, 999, 1000, 4096])
def test_batches_are_exact_and_complete(data_dir: Path, batch_size: int) -> None:
    t = written(data_dir, partition_cols=None)
    sizes = [b.num_rows for b in t.stream(batch_size=batch_size)]
    full, rest = divmod(ROWS, batch_size)
    assert sizes == [batch_size] * full + ([rest] if rest else [])
    assert ids(t.stream(batch_size=batch_size)) == list(range(ROWS))  # in written order
    dropped = [b.num_rows for b in t.stream(batch_size=batch_size, drop_last=True)]
    assert dropped == [batch_size] * full


@pytest.mark.usefixtures("small_files")
def test_seeded_shuffle_is_a_repeatable_permutation(data_dir: Path) -> None:
    t = written(data_dir)
    first = ids(t.stream(batch_size=64, shuffle_seed=7, shuffle_buffer=100))
    assert sorted(first) == list(range(ROWS))
    assert first != sorted(first)
    assert ids(t.stream(batch_size=64, shuffle_seed=7, shuffle_buffer=100)) == first
    assert ids(t.stream(batch_size=64, shuffle_seed=8, shuffle_buffer=100)) != first
    sizes = [b.num_rows for b in t.stream(batch_size=64, shuffle_seed=7, drop_last=True)]
    assert sizes == [64] * (ROWS // 64)


def test_stream_columns(data_dir: Path) -> None:
    t = written(data_dir)
    batch = next(t.stream(batch_size=10, columns=["i", "region"]))
    assert batch.schema.names == ["i", "region"]


def test_every_stream_format(data_dir: Path) -> None:
    t = written(data_dir, partition_cols=None)
    arrow = next(t.stream(batch_size=5))
    assert isinstance(arrow, pa.RecordBatch) and arrow.num_rows == 5
    df = next(t.stream(batch_size=5, format="pandas"))
    assert isinstance(df, pd.DataFrame) and df["i"].tolist() == [0, 1, 2, 3, 4]
    arrays = next(t.stream(batch_size=5, format="numpy"))
    assert set(arrays) == {"region", "i", "f", "s"}
    assert arrays["f"].tolist() == [0.0, 0.5, 1.0, 1.5, 2.0] and arrays["i"].dtype == np.int64
    polars = pytest.importorskip("polars")
    pl = next(t.stream(batch_size=5, format="polars"))
    assert isinstance(pl, polars.DataFrame) and pl["s"].to_list()[:2] == ["row0", "row1"]


def test_torch_format(data_dir: Path) -> None:
    torch = pytest.importorskip("torch", reason="torch is not installed here")
    t = written(data_dir, partition_cols=None)
    batches = list(t.stream(batch_size=300, format="torch", columns=["i", "f"]))
    assert [b["i"].shape[0] for b in batches] == [300, 300, 300, 100]
    assert batches[0]["i"].dtype == torch.int64 and batches[0]["f"].dtype == torch.float64
    assert batches[1]["i"][:3].tolist() == [300, 301, 302]
    with pytest.raises(TypeError, match=r"'region'.*no tensor form.*columns="):
        next(t.stream(batch_size=5, format="torch"))


@pytest.mark.parametrize(("fmt", "package"), [("polars", "polars"), ("torch", "torch")])
def test_a_format_whose_library_is_missing_says_what_to_install(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, package: str
) -> None:
    t = written(data_dir)
    monkeypatch.setitem(sys.modules, package, None)  # what an absent library looks like
    with pytest.raises(ImportError, match=f"format='{fmt}' needs {package}.*pip install"):
        t.stream(format=fmt)  # said when asked, before any batch


def test_bad_stream_arguments(data_dir: Path) -> None:
    t = written(data_dir)
    with pytest.raises(ValueError, match="not one of pyarrow, pandas, numpy, polars, torch"):
        t.stream(format="csv")
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        t.stream(batch_size=0)
    with pytest.raises(ValueError, match=r"columns \['nope'\] are not in the table"):
        t.stream(columns=["i", "nope"])
    with pytest.raises(ValueError, match=r"columns \['nope'\] are not in the table"):
        t.fetch(columns=["nope"])


# -- writes: atomic, overwrite, errors -------------------------------------------------------


def failing_reader(good_batches: int) -> pa.RecordBatchReader:
    """A reader that gives some batches, then fails as a cut source would."""
    schema = pa.Table.from_pandas(frame(10), preserve_index=False).schema

    def batches() -> Iterator[pa.RecordBatch]:
        for n in range(good_batches):
            yield pa.RecordBatch.from_pandas(frame(10).assign(i=n), preserve_index=False)
        raise OSError("the source went away")

    return pa.RecordBatchReader.from_batches(schema, batches())


def test_a_failed_write_leaves_nothing(data_dir: Path) -> None:
    path = data_dir / "t"
    with pytest.raises(Exception, match="the source went away"):
        rh.table(data=failing_reader(5), path=str(path), partition_cols=["region"]).write()
    assert list(data_dir.iterdir()) == []  # neither the table nor its temporary sibling


def test_a_failed_overwrite_keeps_the_old_table(data_dir: Path) -> None:
    t = written(data_dir)
    with pytest.raises(Exception, match="the source went away"):
        rh.table(data=failing_reader(5), path=t.path).write(overwrite=True)
    assert len(t) == ROWS


def test_a_killed_write_never_looks_complete(data_dir: Path, python: str) -> None:
    path = data_dir / "t"
    script = textwrap.dedent(
        f"""
        import sys, pyarrow as pa, runhouse as rh
        schema = pa.schema([("i", pa.int64())])
        def batches():
            for n in range(50):
                yield pa.record_batch([pa.array(range(n * 1000, (n + 1) * 1000))], schema)
            print("half written", flush=True)
            sys.stdin.read()  # held here until killed
        reader = pa.RecordBatchReader.from_batches(schema, batches())
        rh.table(data=reader, path={str(path)!r}).write()
        """
    )
    with subprocess.Popen(
        [python, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "half written\n"
        proc.send_signal(signal.SIGKILL)
    assert not path.exists()
    assert all(PARTIAL in p.name for p in data_dir.iterdir())
    with pytest.raises(FileNotFoundError, match="no table there"):
        len(rh.table(path=str(path)))


def test_overwrite(data_dir: Path) -> None:
    t = written(data_dir)
    again = rh.table(data=frame(10), path=t.path)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        again.write()
    again.write(overwrite=True)
    assert len(t) == 10 and t.columns == ["region", "i", "f", "s"]


def test_bad_tables(data_dir: Path) -> None:
    with pytest.raises(ValueError, match="no data to write"):
        rh.table(path=str(data_dir / "t")).write()
    with pytest.raises(ValueError, match=r"partition_cols \['nope'\]"):
        rh.table(data=frame(), path=str(data_dir / "t"), partition_cols=["nope"]).write()
    with pytest.raises(FileNotFoundError, match="no table there"):
        rh.table(path=str(data_dir / "t")).fetch()
    with pytest.raises(ValueError, match=r"'s3', 'gs', 'azure' or a cluster .*; not on 'mars'"):
        rh.table(path="x", system="mars")
    with pytest.raises(ValueError, match="needs a path"):
        rh.table(data=frame(), system="s3")


# -- saving and loading ---------------------------------------------------------------------


def test_save_and_load_keep_place_but_not_credentials() -> None:
    options = {"endpoint_url": "http://127.0.0.1:1", "key": "AKIA", "secret": "s3cr3t"}
    options["client_kwargs"] = {"region_name": "x", "aws_session_token": "tok"}
    t = rh.table(name="sales", path="bucket/sales", system="s3", data_config=options)
    t.save()
    saved = rh.load("sales", instantiate=False)
    assert saved["path"] == "bucket/sales" and saved["system"] == "s3"
    assert saved["data_config"] == {
        "endpoint_url": "http://127.0.0.1:1",
        "client_kwargs": {"region_name": "x"},
    }
    assert "s3cr3t" not in json.dumps(saved) and "tok" not in json.dumps(saved)


def test_a_saved_table_loads_and_reads(data_dir: Path) -> None:
    written(data_dir, name="sales").save()
    t = rh.table(name="sales")
    assert isinstance(t, rh.Table) and t.partition_cols == ["region"]
    assert len(t) == ROWS and t.fetch(filter=[("region", "==", "sa")]).num_rows == ROWS // 4
    assert type(rh.load("sales")) is rh.Table


def test_paths(project: Path) -> None:
    assert rh.table(path="rel").path == str(project / "rel")
    assert rh.table(path="~/x").path == str(Path.home() / "x")
    assert rh.table(data=frame(), name="n").path == str(Path.home() / ".rh/tables/n")
    assert rh.table(path="s3://b/k", system="s3").path == "b/k"
    assert rh.table(path="./here", system="here").system == "file"


def test_default_path_is_written_and_removed(project: Path) -> None:
    t = rh.table(data=frame(10), name="scratch").write()
    assert t.exists_in_system() and len(t) == 10
    t.rm()
    assert not t.exists_in_system()


# -- copies between systems -----------------------------------------------------------------


def test_to_another_local_path(data_dir: Path) -> None:
    t = written(data_dir)
    copy = t.to("here", path=str(data_dir / "copy"))
    assert copy.system == "file" and copy.partition_cols == ["region"]
    assert copy.fetch().sort_by("i").equals(t.fetch().sort_by("i"))
    with pytest.raises(FileExistsError):
        t.to("file", path=str(data_dir / "copy"))
    assert sorted(p.name for p in data_dir.iterdir()) == ["copy", "t"]


def test_to_here_defaults_to_the_current_folder(data_dir: Path, project: Path) -> None:
    copy = written(data_dir).to("here")
    assert copy.path == str(project / "t") and len(copy) == ROWS


def test_to_a_missing_table_says_so(data_dir: Path) -> None:
    with pytest.raises(FileNotFoundError, match="write"):
        rh.table(path=str(data_dir / "none")).to("here", path=str(data_dir / "copy"))


def test_local_to_s3_and_back(s3: Service, data_dir: Path) -> None:
    t = written(data_dir)
    bucket = s3.bucket()
    on_s3 = t.to("s3", path=f"s3://{bucket}/sales")  # credentials and endpoint from AWS_*
    assert on_s3.system == "s3" and on_s3.path == f"{bucket}/sales"
    assert len(on_s3) == ROWS and on_s3.columns == ["region", "i", "f", "s"]
    assert on_s3.fetch(filter=[("region", "==", "eu")]).num_rows == ROWS // 4
    shuffled = ids(on_s3.stream(batch_size=128, shuffle_seed=3))
    assert sorted(shuffled) == list(range(ROWS))
    assert shuffled == ids(on_s3.stream(batch_size=128, shuffle_seed=3))
    copy = on_s3.to("s3", path=f"{bucket}/copy")  # bucket to bucket
    back = copy.to("here", path=str(data_dir / "back"))
    assert back.fetch().sort_by("i").equals(t.fetch().sort_by("i"))
    assert not [p for p in on_s3.storage.files(bucket) if PARTIAL in p]


def test_written_straight_to_s3_with_a_data_config(
    s3: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)  # everything comes from data_config
    path = f"{s3.bucket()}/direct"
    t = rh.table(data=frame(), name="s3t", path=path, system="s3", data_config=s3.options)
    t.write().save()
    assert len(t) == ROWS
    saved = rh.load("s3t", instantiate=False)
    assert "key" not in saved["data_config"] and "secret" not in saved["data_config"]
    assert saved["data_config"]["endpoint_url"] == s3.options["endpoint_url"]
    with pytest.raises(Exception, match="the source went away"):
        rh.table(
            data=failing_reader(3), path=f"{path}-2", system="s3", data_config=s3.options
        ).write()
    assert t.storage.ls(path.split("/")[0]) == [path]  # nothing of the failed write


@pytest.fixture
def local_cluster(shared_daemon_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The local cluster: the session's daemon on this machine (no SSH)."""
    monkeypatch.setenv("RH_DAEMON_DIR", str(shared_daemon_dir))
    monkeypatch.setenv("RH_AUTOSTART_DAEMON", "false")
    c = rh.cluster(name="local")
    yield c
    c.clear()


def inside(table: rh.Table) -> tuple[bool, int, list[str], list[int]]:
    """Runs in a worker of the table's cluster: reads the cluster's disk there."""
    first = next(table.stream(batch_size=4, format="numpy", columns=["i"]))
    return table._on_this_cluster(), len(table), table.columns, first["i"].tolist()


def test_to_a_cluster_and_read_there(local_cluster: Any, data_dir: Path) -> None:
    t = written(data_dir)
    on_c = t.to(local_cluster, path=str(data_dir / "on-cluster"))
    assert isinstance(on_c.system, rh.Cluster) and on_c.exists_in_system()
    with pytest.raises(ValueError, match="reached there"):
        on_c.dataset()  # its files are the cluster's: the verbs below read them there
    here, rows, columns, first = rh.function(inside).to(local_cluster)(on_c)
    assert (here, rows, columns) == (True, ROWS, ["region", "i", "f", "s"])
    assert len(first) == 4
    back = on_c.to("here", path=str(data_dir / "back"))
    assert back.fetch().sort_by("i").equals(t.fetch().sort_by("i"))
    with pytest.raises(FileExistsError):
        t.to(local_cluster, path=on_c.path)


def test_a_table_on_a_cluster_is_read_from_here(cluster: rh.Cluster, data_dir: Path) -> None:
    on_c = written(data_dir).to(cluster, path=f"~/rh-test-table-{secrets.token_hex(4)}")
    if cluster.ips:  # the SSH test host's runhouse has no table extra: the cluster says so
        with pytest.raises(ImportError, match=r"pip install 'runhouse\[table\]'"):
            len(on_c)
        on_c.rm()
        return
    assert len(on_c) == ROWS and on_c.columns == ["region", "i", "f", "s"]
    eu = on_c.fetch(columns=["i"], filter=[("region", "==", "eu")])
    assert eu.column_names == ["i"] and sorted(eu["i"].to_pylist()) == list(range(0, ROWS, 4))
    batches = list(on_c.stream(batch_size=300, format="pandas", shuffle_seed=1))
    assert [len(b) for b in batches] == [300, 300, 300, 100]
    streamed = sorted(i for b in batches for i in b["i"].tolist())
    assert streamed == list(range(ROWS))
    with pytest.raises(ValueError, match=r"'nope'.*not in the table"):
        on_c.fetch(columns=["nope"])
    on_c.rm()
    with pytest.raises(FileNotFoundError, match="no table there"):
        len(on_c)


def test_write_straight_to_a_cluster(local_cluster: Any, data_dir: Path) -> None:
    path = str(data_dir / "written-there")
    t = rh.table(data=frame(), system=local_cluster, path=path, partition_cols=["region"])
    t.write()
    assert t.exists_in_system() and rh.table(path=path).columns == ["region", "i", "f", "s"]
    with pytest.raises(FileExistsError):
        t.write()
    t.save("on_cluster")
    loaded = rh.table(name="on_cluster")
    assert isinstance(loaded.system, rh.Cluster) and loaded.partition_cols == ["region"]
    t.rm()
    assert not t.exists_in_system()


# -- memory and sides ------------------------------------------------------------------------

MEASURE = """
import json, resource, sys, pyarrow as pa, runhouse as rh
t = rh.table(path=sys.argv[1])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
rows = sum(b.num_rows for b in t.stream(batch_size=4096, shuffle_seed=int(sys.argv[2]) or None))
print(json.dumps({"rows": rows, "arrow_peak": pa.default_memory_pool().max_memory(),
                  "rss_growth": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
                  * 1024}))
"""


def test_streaming_memory_does_not_grow_with_the_table(
    data_dir: Path, python: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small row groups, so that even the small table fills pyarrow's read-ahead window.
    monkeypatch.setattr(tables, "ROWS_PER_GROUP", 16_384)
    monkeypatch.setattr(tables, "ROWS_PER_FILE", 262_144)
    schema = pa.schema([(f"c{n}", pa.float64()) for n in range(4)])

    def table_of(rows: int) -> str:
        chunks = (
            pa.record_batch(
                [np.random.default_rng(n + c).random(100_000) for c in range(4)], schema
            )
            for n in range(rows // 100_000)
        )  # written a chunk at a time: the test never holds the table either
        path = str(data_dir / str(rows))
        rh.table(data=pa.RecordBatchReader.from_batches(schema, chunks), path=path).write()
        return path

    def peak(path: str, seed: int) -> dict[str, int]:
        out = subprocess.run(
            [python, "-c", MEASURE, path, str(seed)], capture_output=True, text=True, check=True
        )
        return json.loads(out.stdout)

    small, large = table_of(400_000), table_of(3_200_000)  # 13 MB and 102 MB of floats
    large_bytes = 3_200_000 * 4 * 8
    for seed in (0, 5):  # a plain scan and a shuffled one
        a, b = peak(small, seed), peak(large, seed)
        assert (a["rows"], b["rows"]) == (400_000, 3_200_000)
        assert b["arrow_peak"] < 1.5 * a["arrow_peak"] + (4 << 20), (a, b)
        assert b["arrow_peak"] < large_bytes / 8, (b, large_bytes)
        assert b["rss_growth"] < large_bytes / 4, (b, large_bytes)


def test_the_table_engine_imports_no_client_code(python: str) -> None:
    loaded = modules_after(python, "runhouse.data.tables")
    assert sorted(m for m in loaded if m.startswith(CLIENT_ONLY)) == []
    assert "pyarrow" not in loaded  # imported when a table is used, not with the module
