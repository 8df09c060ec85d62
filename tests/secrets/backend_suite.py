"""The conformance suite of secret backends (``runhouse/secrets/backends/base.py``): a test
class mixes ``BackendSuite`` in and gives a ``backend`` fixture; every backend (local, Den;
Vault has no server here) passes the same tests.

A class may also override ``at`` (the address of a secret named by its path segments, in
the backend's kind of store) and ``saved`` (make a secret's config versions exist, for a
backend that keeps values only beside saved versions, as Den does)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import runhouse as rh
from runhouse.names.address import Address
from runhouse.secrets.backends.base import SecretBackend

TRICKY = {
    "percent": "100%{x}",
    "newlines": "-----BEGIN KEY-----\nabc\n-----END KEY-----\n",
    "equals": "a=b;c==",
    "unicode": "clé-秘密",
    "empty": "",
}
At = Callable[..., Address]
Saved = Callable[[Address, int], None]


class BackendSuite:
    """What every backend does; ``backend`` is the one under test."""

    @pytest.fixture
    def at(self) -> At:
        """The address of a secret by its segments: the local store's by default."""
        return lambda *parts: Address("local", tuple(parts))

    @pytest.fixture
    def saved(self) -> Saved:
        """Make versions 1..N of a secret's config exist (nothing to do by default)."""
        return lambda address, version: None

    def test_versions_are_kept_apart(self, backend: SecretBackend, at: At, saved: Saved) -> None:
        address = at("team", "api")
        saved(address, 2)
        backend.put(address, 1, {"K": "one"})
        backend.put(address, 2, {"K": "two", "L": "more"})
        assert backend.get(address, 1) == {"K": "one"}
        assert backend.get(address, 2) == {"K": "two", "L": "more"}
        assert backend.get(address) == {"K": "two", "L": "more"}  # the newest

    def test_values_come_back_exactly(self, backend: SecretBackend, at: At, saved: Saved) -> None:
        address = at("tricky")
        saved(address, 1)
        backend.put(address, 1, TRICKY)
        assert backend.get(address, 1) == TRICKY

    def test_a_missing_version_or_secret_is_a_clear_error(
        self, backend: SecretBackend, at: At, saved: Saved
    ) -> None:
        address = at("sparse")
        with pytest.raises(rh.SecretValuesMissingError) as caught:
            backend.get(address)
        assert caught.value.address == str(address) and caught.value.version is None
        saved(address, 1)
        backend.put(address, 1, {"K": "v"})
        with pytest.raises(rh.SecretValuesMissingError) as caught:
            backend.get(address, 5)
        message = str(caught.value)
        assert caught.value.version == 5 and f"version 5 of secret '{address}'" in message
        assert backend.describe(address) in message  # says where it looked

    def test_delete_forgets_every_version_and_only_those(
        self, backend: SecretBackend, at: At, saved: Saved
    ) -> None:
        gone, kept = at("a", "gone"), at("a", "kept")
        saved(gone, 2)
        saved(kept, 1)
        backend.put(gone, 1, {"K": "1"})
        backend.put(gone, 2, {"K": "2"})
        backend.put(kept, 1, {"K": "k"})
        backend.delete(gone)
        backend.delete(gone)  # nothing left is not an error
        with pytest.raises(rh.SecretValuesMissingError):
            backend.get(gone)
        assert backend.get(kept) == {"K": "k"}

    def test_describe_says_where(self, backend: SecretBackend, at: At) -> None:
        assert backend.describe(at("x"))
