"""``rh.table``: a parquet dataset (partitioned when asked) on local disk, in a bucket or on
a cluster's disk, named and saved like every resource, fetched whole or streamed batch by
batch.

    >>> t = rh.table(data=df, name="sales", path="bucket/sales", system="s3",
    ...              partition_cols=["region"]).write().save()
    >>> t.fetch(columns=["x"], filter=[("region", "==", "eu")])   # a pyarrow.Table
    >>> len(t), t.columns
    >>> for batch in t.stream(batch_size=1024, format="pandas", shuffle_seed=0): ...
    >>> on_c = t.to(c, path="~/sales")          # moved as a folder is, by the shortest path
    >>> rh.function(train).to(c)(on_c)          # there, it streams from the cluster's disk

The pyarrow side lives in ``runhouse.data.tables`` (clusters' workers import it too); this
module holds what is saved (system, path, partition columns, storage options without
credentials) and the verbs. Copies go through the folders' transfers
(``runhouse.data.transfers``).
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from runhouse.data import tables, transfers
from runhouse.data.cluster_files import ClusterFiles
from runhouse.data.storage import Storage, storage_for
from runhouse.exceptions import ResourceNotFoundError
from runhouse.resources.cluster import Cluster
from runhouse.resources.folder import OnASystem, as_path, as_system

if TYPE_CHECKING:
    import pyarrow as pa

_DEFAULT_FOLDER = "~/.rh/tables"  # on local disk or a cluster's, when no path is given


class Table(OnASystem):
    """A parquet dataset on a storage system or a cluster, written from a DataFrame or a
    dataset. Passed to a function on its own cluster, it reads that cluster's disk there."""

    resource_type = "table"

    def __init__(
        self,
        name: str | None = None,
        path: str | None = None,
        system: Cluster | str | dict[str, Any] | None = None,
        data_config: dict[str, Any] | None = None,
        partition_cols: Sequence[str] | None = None,
        data: Any = None,
    ) -> None:
        super().__init__(name)
        self.system = _system(system)
        self.data_config = dict(data_config or {})
        self.partition_cols = list(partition_cols) if partition_cols else None
        if path is None and not (isinstance(self.system, str) and self.system != "file"):
            path = f"{_DEFAULT_FOLDER}/{self.name or secrets.token_hex(8)}"
        self.path = as_path(self.system, path)
        self.data = data  # kept here until write()
        self._storage: tuple[str, Storage] | None = None

    @property
    def storage(self) -> Storage:
        """The storage system the table is read and written through here (its fsspec
        filesystem is ``.fs``); a table on a cluster is reached this way only on that
        cluster."""
        place = self.place()
        if place.cluster is not None:
            raise ValueError(
                f"{self!r} is on cluster {place.cluster.rns_address or place.cluster}'s disk: "
                "its files are reached there (pass it to a function on that cluster, where "
                "it reads its own disk) or here after t.to('here')"
            )
        assert isinstance(place.system, str)
        if self._storage is None or self._storage[0] != place.system:
            self._storage = (place.system, place.storage())
        return self._storage[1]

    def config(self) -> dict[str, Any]:
        """Name, system, path, partition columns and storage options without credentials."""
        return {**super().config(), "partition_cols": self.partition_cols}

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_storage"] = None  # rebuilt where it is used, with that side's credentials
        return state

    # -- writing --------------------------------------------------------------------------

    def write(self, overwrite: bool = False) -> Table:
        """Write the data as a parquet dataset at ``path`` and return ``self``; the dataset
        appears whole or not at all. ``FileExistsError`` if a table is there, unless
        ``overwrite``."""
        if self.data is None:
            raise ValueError(f"{self!r} has no data to write; give it some: rh.table(data=df, ...)")
        place = self.place()
        if place.cluster is None:
            tables.write(self.data, self.storage, self.path, self.partition_cols, overwrite)
            return self
        # On a cluster's disk from here: written on this disk, then sent as a folder is.
        if not overwrite and place.files().exists(self.path):
            raise FileExistsError(f"{place.url()} exists; pass overwrite=True to replace it")
        with tempfile.TemporaryDirectory(prefix="rh-table-") as folder:
            local = os.path.join(folder, "table")
            tables.write(self.data, storage_for("file"), local, self.partition_cols)
            transfers.copy(transfers.Place("file", local), place)
        return self

    def exists_in_system(self) -> bool:
        """Whether the dataset is written at ``path`` (on any system, a cluster's too)."""
        return self.place().files().isdir(self.path)

    def rm(self) -> None:
        """Delete the dataset (``FileNotFoundError`` if there is none)."""
        self.place().files().rm(self.path, recursive=True)

    # -- reading --------------------------------------------------------------------------

    def dataset(self) -> Any:
        """The ``pyarrow.dataset.Dataset`` over the written files, for what the verbs here
        do not cover."""
        return tables.open_dataset(self.storage, self.path)

    def fetch(self, columns: Sequence[str] | None = None, filter: Any = None) -> pa.Table:
        """The table (or ``columns`` of it, or the rows matching ``filter``) in memory, as
        a ``pyarrow.Table``. ``filter`` is a pyarrow compute expression
        (``pc.field("x") > 1``) or pyarrow's ``filters`` list (``[("region", "==", "eu")]``);
        partitions it rules out are not read."""
        there = self._on_cluster()
        if there is not None:  # read by the cluster's worker, the result sent here
            return there.call("table_fetch", self.path, _listed(columns), filter)
        dataset = self.dataset()
        cols = tables.check_columns(dataset, columns)
        return dataset.to_table(columns=cols, filter=tables.as_filter(filter))

    def __len__(self) -> int:
        """The number of rows, from the parquet files' footers (no data is read)."""
        there = self._on_cluster()
        if there is not None:
            return int(there.call("table_rows", self.path))
        return int(self.dataset().count_rows())

    @property
    def columns(self) -> list[str]:
        """The column names, partition columns included, in the order written."""
        there = self._on_cluster()
        if there is not None:
            return list(there.call("table_columns", self.path))
        return list(self.dataset().schema.names)

    def _on_cluster(self) -> ClusterFiles | None:
        # A table on another cluster's disk is read by that cluster's worker.
        cluster = self.place().cluster
        return ClusterFiles(cluster) if cluster is not None else None

    def stream(
        self,
        batch_size: int = 1024,
        format: str = "pyarrow",
        shuffle_seed: int | None = None,
        drop_last: bool = False,
        columns: Sequence[str] | None = None,
        shuffle_buffer: int | None = None,
    ) -> Iterator[Any]:
        """Batches of exactly ``batch_size`` rows (the last may be shorter unless
        ``drop_last``) as ``"pyarrow"`` record batches, ``"pandas"`` or ``"polars"``
        DataFrames, or dicts of ``"numpy"`` arrays or ``"torch"`` tensors by column. The
        table is read a few batches at a time, so memory stays flat however large it is.

        ``shuffle_seed`` shuffles repeatably: the row groups are read in a seeded random
        order and the rows shuffled within a buffer of ``shuffle_buffer`` rows (default 4
        batches, at least 10,000), so the order is as random as that buffer allows."""
        convert = tables.converter(format)  # a missing library is said here, not mid-loop
        there = self._on_cluster()
        if there is not None:  # the cluster's worker reads it; batches arrive as they go
            options = {
                "batch_size": batch_size,
                "columns": _listed(columns),
                "shuffle_seed": shuffle_seed,
                "drop_last": drop_last,
                "shuffle_buffer": shuffle_buffer,
            }
            batches = there.stream("table_stream", self.path, options)
        else:
            batches = tables.stream(
                self.dataset(), batch_size, columns, shuffle_seed, drop_last, shuffle_buffer
            )
        return (convert(batch) for batch in batches)

    # -- moving ---------------------------------------------------------------------------

    def to(
        self,
        system: Cluster | str,
        path: str | None = None,
        data_config: dict[str, Any] | None = None,
        overwrite: bool = False,
    ) -> Table:
        """A copy of the written table on ``system`` (``"here"``/``"file"``, ``"s3"``,
        ``"gs"``, ``"azure"``, a cluster or its name) at ``path`` (default, as for a folder:
        its name in the cluster's home or the current folder; a bucket needs one), by the
        folder transfers' shortest path (a cluster moves bucket data itself), to a temporary
        name renamed at the end. ``FileExistsError`` if a table is there, unless
        ``overwrite``. The copy is unnamed: ``save(name)`` it to keep it."""
        target = _system(system)
        path, data_config = self._copy_options(target, path, data_config)
        dest = Table(
            path=path, system=target, data_config=data_config, partition_cols=self.partition_cols
        )
        source, there = self.place(), dest.place()
        if not source.files().isdir(self.path):
            raise FileNotFoundError(f"{source.url()}: no table there (write() it first)")
        if there.files().exists(dest.path):
            if source.url() == there.url():
                raise ValueError(f"{source.url()} is already there: give another path")
            if not overwrite:
                raise FileExistsError(f"{there.url()} exists; pass overwrite=True to replace it")
        transfers.copy(source, there)
        return dest

    def __repr__(self) -> str:
        system = self.system if isinstance(self.system, str) else repr(self.system)
        return f"Table(name={self.rns_address!r}, system={system!r}, path={self.path!r})"


def table(
    data: Any = None,
    name: str | None = None,
    path: str | None = None,
    system: str | None = None,
    data_config: dict[str, Any] | None = None,
    partition_cols: Sequence[str] | None = None,
) -> Table:
    """A ``Table`` of ``data`` (written by ``.write()``); given only ``name``, the one saved
    under that name."""
    only_name = data is None and path is None and system is None and data_config is None
    if name is not None and only_name and partition_cols is None:
        return Table.from_name(name)
    return Table(name, path, system, data_config, partition_cols, data)


def _listed(columns: Sequence[str] | None) -> list[str] | None:
    return list(columns) if columns is not None else None


def _system(system: Any) -> str | Cluster:
    # A storage scheme or a cluster, as for folders; anything else says what is possible.
    try:
        return as_system(system)
    except (ResourceNotFoundError, TypeError) as exc:
        shown = system if isinstance(system, str) else type(system).__name__
        raise ValueError(
            "A table lives on 'here' or 'file' (local disk), 's3', 'gs', 'azure' or a cluster "
            f"(a Cluster or a saved cluster's name); not on {shown!r}."
        ) from exc
