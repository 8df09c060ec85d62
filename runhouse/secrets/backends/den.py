"""Values on Den, for secrets whose configs are on Den: sealed there with envelope
encryption (a data key per version, wrapped by Den's master key; see ``runhouse/den``).

    /ana/aws version 3   ->   PUT/GET /v1/secret-values/ana/aws?version=3

Den checks access as for the config (read to read, write to write), records every read in
its audit log, and answers a secret the caller may not read as missing. Values travel in
request and answer bodies only: never in a URL, a log line or an error message. Any machine
logged in as a user who may read the secret gets its values.
"""

from __future__ import annotations

from collections.abc import Mapping

from runhouse.config import configs
from runhouse.exceptions import SecretValuesMissingError, StoreUnavailableError
from runhouse.names.address import Address
from runhouse.names.den import DenStore
from runhouse.names.resolver import store_for
from runhouse.secrets.backends.base import SecretBackend


class DenBackend(SecretBackend):
    """Values sealed on the Den that holds the secret's config (den_url, token)."""

    def describe(self, address: Address) -> str:
        """Den's URL, where the values of ``address`` are kept."""
        url = str(configs.get("den_url") or "").rstrip("/") or "(den_url is unset)"
        return f"Den at {url}"

    def put(self, address: Address, version: int, values: Mapping[str, str]) -> None:
        """Send version ``version``'s values to Den, which seals them."""
        self._store(address).put_secret_values(address, version, dict(values))

    def get(self, address: Address, version: int | None = None) -> dict[str, str]:
        """The values of ``version`` (default: the newest Den has) from Den."""
        found = self._store(address).secret_values(address, version)
        if found is None:
            raise SecretValuesMissingError(
                str(address),
                version,
                f"{self.describe(address)} (or you may not read them)",
                "Save the secret again while logged in (its values go with each save), or "
                "ask its owner to share it with you.",
            )
        return found[1]

    def delete(self, address: Address) -> None:
        """Delete every version's values on Den (none there is not an error)."""
        self._store(address).delete_secret_values(address)

    def _store(self, address: Address) -> DenStore:
        store = store_for(address)
        if not isinstance(store, DenStore):
            raise StoreUnavailableError(
                str(address),
                f"its store is a {type(store).__name__}, and Den's secrets backend talks to "
                "Den only",
            )
        return store
