"""Amazon S3 and S3-compatible services (MinIO, moto), through s3fs.

Credentials, region and endpoint come from where the AWS tools find them (``AWS_*``
variables including ``AWS_ENDPOINT_URL``, ``AWS_PROFILE``, ``~/.aws/config`` and
``~/.aws/credentials``, an instance role); ``data_config`` holds s3fs's own options and goes
over them:

    >>> S3Storage({"endpoint_url": "http://127.0.0.1:9000", "key": "...", "secret": "..."})
"""

from __future__ import annotations

from typing import Any

from runhouse.data.systems.bucket import BucketStorage, Kind

# s3fs raises these as PermissionError; they mean the credentials, not the bucket's rules.
_CREDENTIAL_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken"}


class S3Storage(BucketStorage):
    """Objects in S3 buckets."""

    scheme = "s3"
    prefixes = ("s3://", "s3a://")
    credentials_hint = (
        "set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) or ~/.aws/credentials, "
        "or pass data_config={'key': ..., 'secret': ...}"
    )
    endpoint_hint = "AWS_ENDPOINT_URL or data_config={'endpoint_url': ...}"
    make_bucket_hint = "aws s3 mb s3://{bucket}"
    variables = ("AWS_",)

    def _filesystem(self) -> Any:
        from s3fs import S3FileSystem

        # botocore reads the usual sources itself when data_config leaves them out. A fresh
        # instance and no listings cache: credentials differ between storages, and other
        # processes (a cluster's daemon) write to the same buckets.
        options = {"skip_instance_cache": True, "use_listings_cache": False, **self.options}
        return self.reuse(lambda: S3FileSystem(**options))

    def classify(self, exc: BaseException) -> Kind | None:
        """botocore's and s3fs's errors, sorted."""
        from botocore import exceptions as boto

        if isinstance(
            exc, (boto.NoCredentialsError, boto.PartialCredentialsError, boto.ProfileNotFound)
        ):
            return "credentials"
        if isinstance(exc, (boto.EndpointConnectionError, boto.ConnectTimeoutError)):
            return "unreachable"
        if isinstance(exc, PermissionError):
            cause = exc.__cause__ or exc.__context__
            code = getattr(cause, "response", {}).get("Error", {}).get("Code")
            return "credentials" if code in _CREDENTIAL_CODES else "denied"
        return None
