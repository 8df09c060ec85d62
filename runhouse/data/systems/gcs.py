"""Google Cloud Storage, through gcsfs.

Credentials are Google's application default credentials (``GOOGLE_APPLICATION_CREDENTIALS``,
``gcloud auth application-default login``, a VM's service account). With an emulator
(``STORAGE_EMULATOR_HOST``, or ``endpoint_url`` in ``data_config``) the token is anonymous
and the project ``test`` unless given. ``data_config`` holds gcsfs's own options
(``token``, ``project``, ``endpoint_url``, ...) and goes over all of that:

    >>> GCSStorage({"token": "/path/to/service-account.json", "project": "my-project"})
"""

from __future__ import annotations

import os
from typing import Any

from runhouse.data.systems.bucket import BucketStorage, Kind


class GCSStorage(BucketStorage):
    """Objects in Google Cloud Storage buckets."""

    scheme = "gs"
    prefixes = ("gs://", "gcs://")
    credentials_hint = (
        "run `gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS, "
        "or pass data_config={'token': <service account file>, 'project': ...}"
    )
    endpoint_hint = "STORAGE_EMULATOR_HOST or data_config={'endpoint_url': ...}"
    make_bucket_hint = "gcloud storage buckets create gs://{bucket}"
    variables = ("STORAGE_EMULATOR_HOST", "GOOGLE_", "GCSFS_", "CLOUDSDK_")

    def _filesystem(self) -> Any:
        # gcsfs's experimental bucket support (on by default) probes every bucket over gRPC,
        # and waits 60 s where gRPC cannot get through (emulators, proxies). It is read
        # when gcsfs is imported; setting the variable keeps it on.
        os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
        from gcsfs import GCSFileSystem

        emulator = os.environ.get("STORAGE_EMULATOR_HOST", "") not in ("", "default")
        options: dict[str, Any] = {"skip_instance_cache": True, "use_listings_cache": False}
        if emulator or "endpoint_url" in self.options:
            options.update(token="anon", project="test")
        else:
            # Not gcsfs's default chain, which ends in anonymous access and so would hide
            # missing credentials behind "access denied" later.
            options["token"] = "google_default"
        return self.reuse(lambda: GCSFileSystem(**{**options, **self.options}))

    def classify(self, exc: BaseException) -> Kind | None:
        """google-auth's, gcsfs's and aiohttp's errors, sorted."""
        import aiohttp
        from gcsfs.retry import HttpError
        from google.auth import exceptions as auth

        if isinstance(exc, (auth.DefaultCredentialsError, auth.RefreshError)):
            return "credentials"
        if isinstance(exc, HttpError) and exc.code == 401:
            return "credentials"
        if isinstance(exc, HttpError) and exc.code == 403:
            return "denied"
        if isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ServerTimeoutError)):
            return "unreachable"
        return None
