"""Run last (the name sorts after every test folder and file): every file the suite wrote,
searched for this session's secret marker, holds it only where secrets are meant to be.

The secret tests hand out values starting with ``SESSION_MARK`` (tests/secrets/conftest.py).
Meant to hold them: the local backend (``~/.rh/secrets``), a provider's own files (its
credentials file, written by a test as the source or by ``s.to(cluster)``), and a test's
``credentials-source`` folder (a provider's file at a path of the test's choosing). Anything else —
daemon and Den logs, saved configs, Den's database and PostgreSQL's data files, temporary
tars, fake homes' other files — must not.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from runhouse.secrets.registry import known, provider_class
from tests.secrets.conftest import SESSION_MARK, SOURCE_FOLDER, USED

MAX_FILE = 256 << 20  # bytes; bigger files (datasets of the data tests) hold no secret


def provider_files() -> tuple[str, ...]:
    """Each provider's credentials files, as path endings (``/.aws/credentials``)."""
    endings = []
    for name in known():
        file = provider_class(name).file
        for path in file.paths if file is not None else ():
            endings.append(path.removeprefix("~"))
            endings.append(path.removeprefix("~") + ".pub")
    return tuple(endings)


def allowed(path: Path, endings: tuple[str, ...]) -> bool:
    """Whether ``path`` is a place meant to hold secret values."""
    text = str(path)
    return "/.rh/secrets/" in text or f"/{SOURCE_FOLDER}/" in text or text.endswith(endings)


def roots(basetemp: Path) -> Iterator[Path]:
    """Where the suite writes: pytest's temporary folders, the test servers' folders in the
    system's temporary folder, and the real home's runhouse folder."""
    yield basetemp
    yield from Path(tempfile.gettempdir()).glob("rh-*")
    yield Path.home() / ".rh"


def files_under(root: Path) -> Iterator[Path]:
    """Every regular file under ``root`` that this process may read."""
    for folder, _, names in os.walk(root, onerror=lambda _: None):
        for name in names:
            path = Path(folder, name)
            try:
                if path.is_file() and not path.is_symlink() and path.stat().st_size <= MAX_FILE:
                    yield path
            except OSError:
                continue


def test_no_secret_value_is_in_clear_outside_its_places(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    if not USED:
        pytest.skip("no secret test ran in this session (run the whole suite to check this)")
    mark = SESSION_MARK.encode()
    endings = provider_files()
    found = []
    for root in roots(tmp_path_factory.getbasetemp()):
        for path in files_under(root):
            if allowed(path, endings):
                continue
            try:
                if mark in path.read_bytes():
                    found.append(str(path))
            except OSError:
                continue
    assert found == [], f"secret values in clear in {len(found)} files: {found[:20]}"
