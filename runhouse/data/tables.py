"""Tables as parquet datasets on a storage system: writing one, scanning it, streaming it in
batches of an exact size, and turning batches into the format asked for.

    >>> storage = storage_for("file")
    >>> write(df, storage, "/data/sales", partition_cols=["region"])   # atomic
    >>> open_dataset(storage, "/data/sales").count_rows()              # from footers only
    >>> to_pandas = converter("pandas")
    >>> for batch in stream(open_dataset(storage, "/data/sales"), batch_size=1024):
    ...     df = to_pandas(batch)                                       # exactly 1024 rows

A table's folder holds hive-style partition folders (``region=eu/part-0.parquet``) and a
``_common_metadata`` file with the whole schema and the partition columns' names, so that
partition columns come back with the types and order they were written with. pyarrow, and
every library, is imported when used: clusters' workers import this module too, and it must
never import client-side code.
"""

from __future__ import annotations

import importlib
import json
import random
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from runhouse.exceptions import StorageError

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as ds

    from runhouse.data.storage import Storage

SCHEMA_FILE = "_common_metadata"  # pyarrow's discovery skips names starting with "_"
PARTITIONS_KEY = b"runhouse.partition_cols"  # in SCHEMA_FILE's metadata, a JSON list
ROWS_PER_GROUP = 1 << 17  # bounds what one read decodes: memory stays flat while streaming
ROWS_PER_FILE = 1 << 20  # several files per big table (a multiple of ROWS_PER_GROUP)
READAHEAD = 3  # row groups read at once while streaming: what keeps 2 cores busy, no more
TABLE_INSTALL = "pip install 'runhouse[table]'"

# format -> (the module it needs, how to install it)
FORMATS: dict[str, tuple[str, str]] = {
    "pyarrow": ("pyarrow", TABLE_INSTALL),
    "pandas": ("pandas", TABLE_INSTALL),
    "numpy": ("numpy", "pip install numpy"),
    "polars": ("polars", "pip install polars"),
    "torch": ("torch", "pip install torch"),
}


def require(module: str, install: str, purpose: str) -> Any:
    """``module`` imported, or an ImportError that says what needs it and how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{purpose} needs {module}, which is not installed: {install}") from exc


def arrow_filesystem(storage: Storage) -> Any:
    """The pyarrow filesystem for ``storage``: pyarrow's own for local disk (as pyarrow does
    for fsspec's local filesystem), else the fsspec filesystem behind pyarrow's handler."""
    fs = require("pyarrow.fs", TABLE_INSTALL, "a table")
    if storage.scheme == "file":
        return fs.LocalFileSystem()
    return fs.PyFileSystem(fs.FSSpecHandler(storage.fs))


# -- input kinds --------------------------------------------------------------------------


def _kind(data: Any) -> str:
    # By the defining module, through the MRO so that subclasses count: no library is
    # imported to ask whether a value is one of its types.
    for cls in type(data).__mro__:
        root = cls.__module__.partition(".")[0]
        if root in ("pyarrow", "pandas", "polars", "datasets", "ray"):
            return root
    return type(data).__name__


def to_arrow(data: Any) -> pa.Table | pa.RecordBatchReader | ds.Dataset:
    """Arrow data for a pandas or polars DataFrame, a pyarrow Table, RecordBatch, reader or
    dataset, a Hugging Face ``datasets.Dataset`` or a Ray dataset (streamed, not collected)."""
    pa = require("pyarrow", TABLE_INSTALL, "a table")
    kind = _kind(data)
    if kind == "pyarrow":
        if isinstance(data, pa.RecordBatch):
            return pa.Table.from_batches([data])
        return data
    if kind == "pandas":
        return pa.Table.from_pandas(data)
    if kind == "polars" and hasattr(data, "to_arrow"):
        return data.to_arrow()
    if kind == "datasets" and hasattr(data, "with_format"):
        return data.with_format("arrow")[:]  # memory-mapped by the library: no copy
    if kind == "ray" and hasattr(data, "iter_batches"):
        batches = data.iter_batches(batch_format="pyarrow", batch_size=None)
        return _reader(t.to_batches() for t in batches)
    if hasattr(data, "__arrow_c_stream__"):  # any library speaking the Arrow C stream
        return pa.RecordBatchReader.from_stream(data)
    raise TypeError(
        f"A table takes a pandas or polars DataFrame, a pyarrow Table, RecordBatch or "
        f"dataset, a Hugging Face Dataset or a Ray dataset; got {type(data).__name__}."
    )


def _reader(chunks: Iterable[list[pa.RecordBatch]]) -> pa.RecordBatchReader:
    # A reader needs its schema up front: take it from the first non-empty chunk.
    import pyarrow as pa

    iterator = iter(chunks)
    for first in iterator:
        if first:
            break
    else:
        raise ValueError("the dataset is empty: there is no schema to write")

    def batches() -> Iterator[pa.RecordBatch]:
        yield from first
        for chunk in iterator:
            yield from chunk

    return pa.RecordBatchReader.from_batches(first[0].schema, batches())


# -- writing and opening ------------------------------------------------------------------


def write(
    data: Any,
    storage: Storage,
    path: str,
    partition_cols: Sequence[str] | None = None,
    overwrite: bool = False,
) -> None:
    """Write ``data`` as a parquet dataset at ``path``, to a temporary sibling renamed at the
    end: a write cut short leaves no folder that looks complete."""
    pa = require("pyarrow", TABLE_INSTALL, "a table")
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    path = storage.normalize(path)
    if not overwrite and storage.exists(path):
        raise FileExistsError(f"{storage.url(path)} exists; pass overwrite=True to replace it")
    source = to_arrow(data)
    schema = source.schema
    partitioning = None
    if partition_cols:
        missing = [c for c in partition_cols if c not in schema.names]
        if missing:
            raise ValueError(f"partition_cols {missing} are not columns of {schema.names}")
        fields = [schema.field(c) for c in partition_cols]
        partitioning = ds.partitioning(pa.schema(fields), flavor="hive")
    filesystem = arrow_filesystem(storage)
    with _errors(storage, path), storage.staged(path) as temporary:
        ds.write_dataset(
            source,
            temporary,
            filesystem=filesystem,
            format="parquet",
            partitioning=partitioning,
            # Whole groups of ROWS_PER_GROUP rows: batches of a size dividing it (powers of
            # two) are then slices of one row group, never copies joining two.
            min_rows_per_group=ROWS_PER_GROUP,
            max_rows_per_group=ROWS_PER_GROUP,
            max_rows_per_file=ROWS_PER_FILE,
            preserve_order=True,
            existing_data_behavior="overwrite_or_ignore",
        )
        filesystem.create_dir(temporary, recursive=True)  # an empty table writes no file
        noted = {**(schema.metadata or {}), PARTITIONS_KEY: json.dumps(list(partition_cols or []))}
        pq.write_metadata(
            schema.with_metadata(noted), f"{temporary}/{SCHEMA_FILE}", filesystem=filesystem
        )


def open_dataset(storage: Storage, path: str) -> ds.Dataset:
    """The parquet dataset at ``path`` (hive partitions; the written schema where known)."""
    pa = require("pyarrow", TABLE_INSTALL, "a table")
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    path = storage.normalize(path)
    filesystem = arrow_filesystem(storage)
    with _errors(storage, path):
        if not storage.isdir(path):
            raise FileNotFoundError(f"{storage.url(path)}: no table there (write() it first)")
        try:
            schema = pq.read_schema(f"{path}/{SCHEMA_FILE}", filesystem=filesystem)
        except FileNotFoundError:  # a dataset written by another tool: discover it
            return ds.dataset(path, filesystem=filesystem, format="parquet", partitioning="hive")
        metadata = dict(schema.metadata or {})
        names = json.loads(metadata.pop(PARTITIONS_KEY, b"[]"))
        schema = schema.with_metadata(metadata)
        fields = []
        for name in names:
            field = schema.field(name)
            if pa.types.is_dictionary(field.type):
                # A folder name is a plain value: a categorical partition reads back as one.
                field = field.with_type(field.type.value_type)
                schema = schema.set(schema.get_field_index(name), field)
            fields.append(field)
        partitioning = ds.partitioning(pa.schema(fields), flavor="hive")
        return ds.dataset(
            path, filesystem=filesystem, format="parquet", partitioning=partitioning, schema=schema
        )


def check_columns(dataset: ds.Dataset, columns: Sequence[str] | None) -> list[str] | None:
    """``columns`` as a list, or a ValueError naming those the table does not have."""
    if columns is None:
        return None
    names = dataset.schema.names
    unknown = [c for c in columns if c not in names]
    if unknown:
        raise ValueError(f"columns {unknown} are not in the table; it has {names}")
    return list(columns)


def as_filter(value: Any) -> Any:
    """A pyarrow compute expression, from one or from pyarrow's ``filters`` list
    (``[("col", "==", v)]``, or a list of such lists for an OR of ANDs)."""
    if value is None or not isinstance(value, (list, tuple)):
        return value
    import pyarrow.parquet as pq

    return pq.filters_to_expression(value)


# -- streaming ----------------------------------------------------------------------------


def converter(fmt: str) -> Callable[[pa.RecordBatch], Any]:
    """The function turning a record batch into ``fmt``; ImportError naming the package to
    install when its library is missing, ValueError for an unknown format."""
    if fmt not in FORMATS:
        raise ValueError(f"format={fmt!r} is not one of {', '.join(FORMATS)}")
    module, install = FORMATS[fmt]
    lib = require(module, install, f"format={fmt!r}")
    if fmt == "pyarrow":
        return lambda batch: batch
    if fmt == "pandas":
        return lambda batch: batch.to_pandas()
    if fmt == "numpy":
        return _numpy
    if fmt == "polars":
        return lambda batch: lib.from_arrow(batch)
    return _torch_converter(lib)


def _numpy(batch: pa.RecordBatch) -> dict[str, Any]:
    return {
        name: column.to_numpy(zero_copy_only=False)
        for name, column in zip(batch.schema.names, batch.columns, strict=True)
    }


def _torch_converter(torch: Any) -> Callable[[pa.RecordBatch], dict[str, Any]]:
    numpy = require("numpy", "pip install numpy", "format='torch'")

    def convert(batch: pa.RecordBatch) -> dict[str, Any]:
        tensors = {}
        for name, array in _numpy(batch).items():
            if array.dtype.kind not in "biufc":
                raise TypeError(
                    f"column {name!r} ({batch.schema.field(name).type}) has no tensor form; "
                    "stream it with another format, or leave it out with columns=[...]"
                )
            # A copy only when arrow's buffer is read-only, which torch does not take.
            tensors[name] = torch.from_numpy(numpy.require(array, requirements="W"))
        return tensors

    return convert


def stream(
    dataset: ds.Dataset,
    batch_size: int,
    columns: Sequence[str] | None = None,
    shuffle_seed: int | None = None,
    drop_last: bool = False,
    shuffle_buffer: int | None = None,
) -> Iterator[pa.RecordBatch]:
    """Record batches of exactly ``batch_size`` rows (the last may be shorter unless
    ``drop_last``), read a few at a time: memory stays flat however large the dataset.

    With ``shuffle_seed``, the row groups are read in a seeded random order and rows are
    shuffled within a buffer of ``shuffle_buffer`` rows (default: 4 batches, at least
    10,000): a repeatable permutation of the rows, as random as that buffer allows.
    Memory holds a few row groups and that buffer, whatever the size of the table."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    import pyarrow.dataset as ds

    cols = check_columns(dataset, columns)
    scan_rows = max(batch_size, 8192)  # tiny scan batches would cost more than they save
    pieces = [part for fragment in dataset.get_fragments() for part in _row_groups(fragment)]
    rng = random.Random(shuffle_seed)
    if shuffle_seed is not None:
        rng.shuffle(pieces)
    # pyarrow's pre-buffering pays off on high-latency stores; on local disk it only copies.
    local = getattr(dataset.filesystem, "type_name", "") == "local"
    options = ds.ParquetFragmentScanOptions(pre_buffer=not local)
    batches = _scan(pieces, dataset.schema, cols, scan_rows, options)
    if shuffle_seed is not None:
        batches = _shuffled(batches, rng, shuffle_buffer or max(4 * batch_size, 10_000))
    return _exact(batches, batch_size, drop_last)


def _scan(
    pieces: list[Any], schema: pa.Schema, columns: list[str] | None, rows: int, options: Any
) -> Iterator[pa.RecordBatch]:
    # Row group by row group, READAHEAD of them read at once in threads. Not pyarrow's
    # Dataset.to_batches: its ordered scan pre-buffers whole files and, with a consumer
    # slower than the disk, piles decoded batches up without bound (apache/arrow#33759).
    with ThreadPoolExecutor(READAHEAD, thread_name_prefix="rh-table") as pool:
        pending: deque[Future[pa.Table]] = deque()
        for piece in pieces:
            read = pool.submit(
                piece.to_table, schema=schema, columns=columns, fragment_scan_options=options
            )
            pending.append(read)
            if len(pending) > READAHEAD:
                yield from pending.popleft().result().to_batches(max_chunksize=rows)
        while pending:
            yield from pending.popleft().result().to_batches(max_chunksize=rows)


def _row_groups(fragment: Any) -> list[Any]:
    split = getattr(fragment, "split_by_row_group", None)
    return list(split()) if split is not None else [fragment]


def _shuffled(
    batches: Iterator[pa.RecordBatch], rng: random.Random, buffer_rows: int
) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa
    import pyarrow.compute as pc

    pending: list[pa.RecordBatch] = []
    held = 0
    finished = False
    while not finished:
        batch = next(batches, None)
        if batch is not None:
            pending.append(batch)
            held += batch.num_rows
        finished = batch is None
        if held and (held >= buffer_rows or finished):
            table = pa.Table.from_batches(pending)
            # A permutation from seeded random keys, computed in pyarrow, not in Python.
            keys = pc.random(table.num_rows, initializer=rng.getrandbits(63))
            yield from table.take(pc.sort_indices(keys)).to_batches()
            pending, held = [], 0


def _exact(
    batches: Iterator[pa.RecordBatch], batch_size: int, drop_last: bool
) -> Iterator[pa.RecordBatch]:
    # Slices (no copies) of the scanner's batches, joined only where a batch straddles two.
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        while batch.num_rows:
            if not pending and batch.num_rows >= batch_size:
                yield batch.slice(0, batch_size)
                batch = batch.slice(batch_size)
                continue
            piece = batch.slice(0, batch_size - held)
            pending.append(piece)
            held += piece.num_rows
            batch = batch.slice(piece.num_rows)
            if held == batch_size:
                yield _concat(pending)
                pending, held = [], 0
    if held and not drop_last:
        yield _concat(pending)


def _concat(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    import pyarrow as pa

    if len(batches) == 1:
        return batches[0]
    if hasattr(pa, "concat_batches"):  # pyarrow >= 19
        return pa.concat_batches(batches)
    return pa.Table.from_batches(batches).combine_chunks().to_batches()[0]


@contextmanager
def _errors(storage: Storage, path: str) -> Iterator[None]:
    # pyarrow's I/O errors become ones that name the system and path.
    try:
        yield
    except (FileNotFoundError, FileExistsError, StorageError):
        raise
    except OSError as exc:
        described = storage.describe(exc, path)
        raise (described or StorageError(storage.scheme, path, str(exc))) from exc
