"""Azure Blob Storage (and Azurite), through adlfs; paths are ``container/prefix``.

Credentials come from ``AZURE_STORAGE_CONNECTION_STRING`` or the other ``AZURE_STORAGE_*``
variables adlfs reads (``ACCOUNT_NAME`` with ``ACCOUNT_KEY`` or ``SAS_TOKEN``, or with Azure
AD through azure-identity). ``data_config`` holds adlfs's own options and goes over them:

    >>> AzureStorage({"account_name": "myaccount", "account_key": "..."})
"""

from __future__ import annotations

import asyncio
import io
import os
from typing import Any

from runhouse.data.systems.bucket import BucketStorage, Kind, MissingCredentials

# What names an account or a credential, in data_config or the environment; with none of
# them adlfs would have nothing to connect to.
_OPTIONS = ("connection_string", "account_name", "account_key", "sas_token", "credential")
_VARIABLES = ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT_NAME")
_CREDENTIAL_CODES = {"AuthenticationFailed", "AuthorizationFailure", "InvalidAuthenticationInfo"}


class AzureStorage(BucketStorage):
    """Blobs in Azure Storage containers."""

    scheme = "azure"
    prefixes = ("az://", "abfs://", "abfss://", "azure://")
    credentials_hint = (
        "set AZURE_STORAGE_CONNECTION_STRING (or AZURE_STORAGE_ACCOUNT_NAME with "
        "AZURE_STORAGE_ACCOUNT_KEY), or pass data_config={'connection_string': ...}"
    )
    endpoint_hint = "the BlobEndpoint of the connection string"
    make_bucket_hint = "az storage container create --name {bucket}"
    variables = ("AZURE_",)

    def _filesystem(self) -> Any:
        if not any(self.options.get(o) for o in _OPTIONS) and not any(
            os.environ.get(v) for v in _VARIABLES
        ):
            raise MissingCredentials()
        from adlfs import AzureBlobFileSystem

        options = {"skip_instance_cache": True, "use_listings_cache": False, **self.options}
        return self.reuse(lambda: AzureBlobFileSystem(**options))

    def url(self, path: str) -> str:
        """``az://container/prefix``, the form fsspec and adlfs read."""
        return f"az://{self.normalize(path)}"

    def _abandon(self, file: Any) -> None:
        raw = file.buffer if isinstance(file, io.TextIOWrapper) else file
        super()._abandon(file)
        # close() would have released the blob's client too.
        from adlfs.utils import close_container_client

        asyncio.run_coroutine_threadsafe(close_container_client(raw), loop=raw.loop).result()

    def classify(self, exc: BaseException) -> Kind | None:
        """azure-core's errors, sorted."""
        from azure.core import exceptions as az

        code = getattr(exc, "error_code", None)  # the service's own name for the fault
        if isinstance(exc, az.ClientAuthenticationError):
            return "credentials"
        if isinstance(exc, az.ResourceNotFoundError) and code == "ContainerNotFound":
            return "bucket"
        if isinstance(exc, az.HttpResponseError) and exc.status_code == 403:
            return "credentials" if code in _CREDENTIAL_CODES else "denied"
        if isinstance(exc, az.ServiceRequestError):
            return "unreachable"
        return None
