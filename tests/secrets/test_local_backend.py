"""The local backend passes the backend suite; its files are private and whole."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from runhouse.exceptions import ConfigError
from runhouse.names.address import Address
from runhouse.secrets.backends.local import LocalBackend
from tests.secrets.backend_suite import BackendSuite


class TestLocalBackend(BackendSuite):
    """~/.rh/secrets of the test's own HOME."""

    @pytest.fixture
    def backend(self) -> LocalBackend:
        return LocalBackend()

    def test_folders_are_700_and_files_600_whatever_the_umask(self, backend: LocalBackend) -> None:
        previous = os.umask(0)  # the most permissive: modes must not depend on it
        try:
            backend.put(Address("local", ("deep", "er", "x")), 1, {"K": "v"})
        finally:
            os.umask(previous)
        root = Path.home() / ".rh" / "secrets"
        for path in (root, *root.rglob("*")):
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode == (0o700 if path.is_dir() else 0o600), path
        assert [p.name for p in root.rglob("*.tmp")] == []  # nothing half-written left

    def test_a_corrupt_file_is_named_but_never_quoted(self, backend: LocalBackend) -> None:
        address = Address("local", ("broken",))
        backend.put(address, 1, {"K": "v"})
        path = backend.folder(address) / "00000001.json"
        path.write_text('{"values": {"K": "s3cr3t-value"')
        with pytest.raises(ConfigError) as caught:
            backend.get(address, 1)
        assert str(path) in str(caught.value) and "s3cr3t" not in str(caught.value)
