"""The conformance suite of secret backends (``runhouse/secrets/backends/base.py``): a test
class mixes ``BackendSuite`` in and gives a ``backend`` fixture; every backend (local now, Den
and Vault later) passes the same tests."""

from __future__ import annotations

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


class BackendSuite:
    """What every backend does; ``backend`` is the one under test."""

    def test_versions_are_kept_apart(self, backend: SecretBackend) -> None:
        address = Address("local", ("team", "api"))
        backend.put(address, 1, {"K": "one"})
        backend.put(address, 2, {"K": "two", "L": "more"})
        assert backend.get(address, 1) == {"K": "one"}
        assert backend.get(address, 2) == {"K": "two", "L": "more"}
        assert backend.get(address) == {"K": "two", "L": "more"}  # the newest

    def test_values_come_back_exactly(self, backend: SecretBackend) -> None:
        address = Address("local", ("tricky",))
        backend.put(address, 1, TRICKY)
        assert backend.get(address, 1) == TRICKY

    def test_a_missing_version_or_secret_is_a_clear_error(self, backend: SecretBackend) -> None:
        address = Address("local", ("sparse",))
        with pytest.raises(rh.SecretValuesMissingError) as caught:
            backend.get(address)
        assert caught.value.address == "~/sparse" and caught.value.version is None
        backend.put(address, 1, {"K": "v"})
        with pytest.raises(rh.SecretValuesMissingError) as caught:
            backend.get(address, 5)
        assert caught.value.version == 5 and "not on this machine" in str(caught.value)

    def test_delete_forgets_every_version_and_only_those(self, backend: SecretBackend) -> None:
        gone, kept = Address("local", ("a", "gone")), Address("local", ("a", "kept"))
        backend.put(gone, 1, {"K": "1"})
        backend.put(gone, 2, {"K": "2"})
        backend.put(kept, 1, {"K": "k"})
        backend.delete(gone)
        backend.delete(gone)  # nothing left is not an error
        with pytest.raises(rh.SecretValuesMissingError):
            backend.get(gone)
        assert backend.get(kept) == {"K": "k"}

    def test_describe_says_where(self, backend: SecretBackend) -> None:
        assert backend.describe(Address("local", ("x",)))
