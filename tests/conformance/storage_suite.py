"""What every storage system must do. Mix ``StorageConformance`` into a test class that
provides three fixtures: ``storage`` (the system under test), ``root`` (a fresh, empty
folder in it, as the system writes paths) and ``faults`` (ways to misconfigure it; a field
left None is a fault the system cannot have, or that its server cannot show quickly)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from runhouse.data.storage import PARTIAL, Storage
from runhouse.exceptions import StorageError

T = TypeVar("T")


@dataclass
class Faults:
    """A system's faults for the error tests."""

    missing_bucket: str | None = None  # a path in a bucket that does not exist
    no_credentials: Callable[[], Storage] | None = None  # no credentials from any source
    wrong_credentials: tuple[Callable[[], Storage], str] | None = None  # and the secret
    unreachable: Callable[[], Storage] | None = None  # pointed at a closed port


def tree(local: Path) -> dict[str, bytes]:
    """A folder of mixed sizes (one of a few MB, empty and tiny ones, nested folders)
    written at ``local``; returns its files by relative name."""
    files = {
        "big.bin": os.urandom(3 * 2**20 + 17),
        "empty.txt": b"",
        "a.txt": b"a",
        "nested/b.txt": b"b" * 1000,
        "nested/deeper/c.bin": os.urandom(70_000),
        **{f"many/{i:02}.txt": str(i).encode() for i in range(20)},
    }
    for name, data in files.items():
        (local / name).parent.mkdir(parents=True, exist_ok=True)
        (local / name).write_bytes(data)
    return files


def leftovers(storage: Storage, root: str) -> list[str]:
    """Everything under ``root`` with a temporary name, looked up past ``ls``'s filter."""
    return [p for p in storage.fs.find(root, withdirs=True) if PARTIAL in p]


class StorageConformance:
    """The storage contract: paths, files, folders, atomic writes and clear errors."""

    def test_write_then_read_bytes(self, storage: Storage, root: str) -> None:
        path = storage.join(root, "a.bin")
        storage.write_bytes(path, b"\x00hello")
        assert storage.read_bytes(path) == b"\x00hello"

    def test_write_replaces_a_file(self, storage: Storage, root: str) -> None:
        path = storage.join(root, "a.txt")
        storage.write_bytes(path, b"old")
        storage.write_bytes(path, b"new")
        assert storage.read_bytes(path) == b"new"

    def test_reading_a_missing_file_is_file_not_found(self, storage: Storage, root: str) -> None:
        with pytest.raises(FileNotFoundError):
            storage.read_bytes(storage.join(root, "nothing"))

    def test_ls_gives_full_sorted_paths(self, storage: Storage, root: str) -> None:
        for name in ("b.txt", "a.txt", "sub/c.txt"):
            storage.write_bytes(storage.join(root, name), b"x")
        assert storage.ls(root) == [storage.join(root, n) for n in ("a.txt", "b.txt", "sub")]
        assert storage.ls(storage.join(root, "sub")) == [storage.join(root, "sub/c.txt")]

    def test_temporary_names_are_never_listed(self, storage: Storage, root: str) -> None:
        storage.write_bytes(storage.join(root, "kept"), b"x")
        storage.fs.pipe_file(storage.join(root, f"file{PARTIAL}0000"), b"half")
        storage.fs.pipe_file(storage.join(root, f"dir{PARTIAL}0000", "f"), b"half")
        assert storage.ls(root) == [storage.join(root, "kept")]
        assert storage.files(root) == ["kept"]

    def test_exists_and_isdir(self, storage: Storage, root: str) -> None:
        sub, path = storage.join(root, "sub"), storage.join(root, "sub", "f")
        storage.write_bytes(path, b"x")
        assert storage.exists(path) and not storage.isdir(path)
        assert storage.exists(sub) and storage.isdir(sub)
        missing = storage.join(root, "missing")
        assert not storage.exists(missing) and not storage.isdir(missing)

    def test_mkdir_twice_then_write_inside(self, storage: Storage, root: str) -> None:
        folder = storage.join(root, "made", "deep")
        storage.mkdir(folder)
        storage.mkdir(folder)
        storage.write_bytes(storage.join(folder, "f"), b"x")
        assert storage.isdir(folder)
        assert storage.ls(folder) == [storage.join(folder, "f")]

    def test_open_binary_write_then_read(self, storage: Storage, root: str) -> None:
        path = storage.join(root, "f.bin")
        with storage.open(path, "wb") as f:
            f.write(b"\x00\x01")
            f.write(b"\x02")
        with storage.open(path, "rb") as f:
            assert f.read() == b"\x00\x01\x02"

    def test_open_text_write_then_read(self, storage: Storage, root: str) -> None:
        path = storage.join(root, "f.txt")
        with storage.open(path, "w") as f:
            f.write("héllo\n")
            f.write("world\n")
        with storage.open(path, "r") as f:
            assert f.read() == "héllo\nworld\n"

    def test_a_failed_write_keeps_the_old_file(self, storage: Storage, root: str) -> None:
        path = storage.join(root, "f.bin")
        storage.write_bytes(path, b"old")
        with pytest.raises(RuntimeError, match="cut"), storage.open(path, "wb") as f:
            f.write(b"new, but only half of it")
            raise RuntimeError("cut")
        assert storage.read_bytes(path) == b"old"
        assert storage.ls(root) == [path]
        assert leftovers(storage, root) == []

    def test_a_failed_text_write_leaves_no_file(self, storage: Storage, root: str) -> None:
        path = storage.join(root, "f.txt")
        with pytest.raises(RuntimeError, match="cut"), storage.open(path, "w") as f:
            f.write("half")
            raise RuntimeError("cut")
        assert not storage.exists(path)
        assert leftovers(storage, root) == []

    def test_a_staged_folder_appears_whole(self, storage: Storage, root: str) -> None:
        dest = storage.join(root, "out")
        with storage.staged(dest) as temporary:
            storage.write_bytes(storage.join(temporary, "a"), b"1")
            storage.write_bytes(storage.join(temporary, "sub", "b"), b"2")
            assert not storage.exists(dest)
        assert storage.files(dest) == ["a", "sub/b"]
        assert storage.ls(root) == [dest]
        assert leftovers(storage, root) == []

    def test_a_failed_staged_folder_leaves_nothing(self, storage: Storage, root: str) -> None:
        dest = storage.join(root, "out")
        with pytest.raises(RuntimeError, match="cut"), storage.staged(dest) as temporary:
            storage.write_bytes(storage.join(temporary, "a"), b"1")
            raise RuntimeError("cut")
        assert not storage.exists(dest)
        assert leftovers(storage, root) == []

    def test_rm_a_file(self, storage: Storage, root: str) -> None:
        gone, kept = storage.join(root, "gone"), storage.join(root, "kept")
        storage.write_bytes(gone, b"x")
        storage.write_bytes(kept, b"x")
        storage.rm(gone)
        assert not storage.exists(gone) and storage.exists(kept)

    def test_rm_a_folder(self, storage: Storage, root: str) -> None:
        folder = storage.join(root, "sub")
        storage.write_bytes(storage.join(folder, "a"), b"x")
        storage.write_bytes(storage.join(folder, "deeper", "b"), b"x")
        storage.rm(folder, recursive=True)
        assert not storage.exists(folder)
        assert storage.files(root) == []

    def test_rm_of_nothing_is_file_not_found(self, storage: Storage, root: str) -> None:
        with pytest.raises(FileNotFoundError, match="nothing"):
            storage.rm(storage.join(root, "nothing"))

    def test_files_are_relative_recursive_and_sorted(self, storage: Storage, root: str) -> None:
        for name in ("z.txt", "a/b/c.txt", "a/a.txt"):
            storage.write_bytes(storage.join(root, name), b"x")
        assert storage.files(root) == ["a/a.txt", "a/b/c.txt", "z.txt"]

    def test_upload_then_download_a_folder(
        self, storage: Storage, root: str, tmp_path: Path
    ) -> None:
        source, back = tmp_path / "source", tmp_path / "back"
        files = tree(source)
        dest = storage.join(root, "up")
        storage.upload(str(source), dest)
        assert storage.files(dest) == sorted(files)
        storage.download(dest, str(back))
        assert {
            str(p.relative_to(back)): p.read_bytes() for p in back.rglob("*") if p.is_file()
        } == files

    def test_rename_a_file_over_another(self, storage: Storage, root: str) -> None:
        source, dest = storage.join(root, "a"), storage.join(root, "b")
        storage.write_bytes(source, b"new")
        storage.write_bytes(dest, b"old")
        storage.rename(source, dest)
        assert storage.read_bytes(dest) == b"new"
        assert not storage.exists(source)

    def test_rename_a_folder_over_another(self, storage: Storage, root: str) -> None:
        source, dest = storage.join(root, "src"), storage.join(root, "dst")
        for name in ("a", "sub/b"):
            storage.write_bytes(storage.join(source, name), name.encode())
        for name in ("a", "stale"):
            storage.write_bytes(storage.join(dest, name), b"old")
        storage.rename(source, dest)
        assert storage.files(dest) == ["a", "sub/b"]
        assert storage.read_bytes(storage.join(dest, "a")) == b"a"
        assert not storage.exists(source)

    def test_join_refuses_names_that_escape(self, storage: Storage, root: str) -> None:
        assert storage.join(root, "a/b") == f"{root}/a/b"
        for bad in ("../x", "a/../../x", "/etc/passwd"):
            with pytest.raises(StorageError, match="may not"):
                storage.join(root, bad)

    def test_a_missing_bucket_is_a_storage_error(self, storage: Storage, faults: Faults) -> None:
        path = needs(faults.missing_bucket, storage, "buckets")
        for attempt in (lambda: storage.read_bytes(path), lambda: storage.write_bytes(path, b"")):
            with pytest.raises(StorageError) as info:
                attempt()
            assert (info.value.system, info.value.path) == (storage.scheme, path)
            assert f"bucket {path.split('/')[0]!r} does not exist" in str(info.value)

    def test_missing_credentials_are_a_storage_error(
        self, storage: Storage, root: str, faults: Faults
    ) -> None:
        broken = needs(faults.no_credentials, storage, "credentials")()
        with pytest.raises(StorageError) as info:
            broken.ls(root)
        assert (info.value.system, info.value.path) == (storage.scheme, root)
        assert "no valid credentials" in str(info.value) and "data_config" in str(info.value)

    def test_wrong_credentials_are_a_storage_error(
        self, storage: Storage, root: str, faults: Faults
    ) -> None:
        make, secret = needs(faults.wrong_credentials, storage, "credentials its server checks")
        broken = make()
        with pytest.raises(StorageError) as info:
            broken.ls(root)
        assert (info.value.system, info.value.path) == (storage.scheme, root)
        assert "no valid credentials" in str(info.value)
        assert secret not in str(info.value) and secret not in repr(broken)

    def test_an_unreachable_service_is_a_storage_error(
        self, storage: Storage, root: str, faults: Faults
    ) -> None:
        broken = needs(faults.unreachable, storage, "quick failure on a closed port")()
        with pytest.raises(StorageError) as info:
            broken.ls(root)
        assert (info.value.system, info.value.path) == (storage.scheme, root)
        assert "cannot reach the service" in str(info.value)


def needs(fault: T | None, storage: Storage, what: str) -> T:
    """The fault, or a skip saying the system has no such thing to test."""
    if fault is None:
        pytest.skip(f"{storage.scheme} has no {what} (see its Faults)")
    return fault
