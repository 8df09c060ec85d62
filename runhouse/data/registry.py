"""Storage systems by scheme, loaded lazily: a system whose library is not installed costs
nothing until it is used, and then says which extra to install.

    >>> system_class("s3")            # runhouse.data.systems.s3:S3Storage
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from runhouse.exceptions import StorageError

if TYPE_CHECKING:
    from runhouse.data.storage import Storage

# scheme -> (module:class, the install that brings its library)
SYSTEMS: dict[str, tuple[str, str]] = {
    "file": ("runhouse.data.systems.local:LocalStorage", "pip install runhouse"),
    "s3": ("runhouse.data.systems.s3:S3Storage", "pip install 'runhouse[s3]'"),
    "gs": ("runhouse.data.systems.gcs:GCSStorage", "pip install 'runhouse[gcs]'"),
    "azure": ("runhouse.data.systems.azure:AzureStorage", "pip install 'runhouse[azure]'"),
}
ALIASES = {"gcs": "gs", "local": "file", "abfs": "azure", "az": "azure"}


def install_hint(scheme: str) -> str:
    """The install that brings system ``scheme``'s library."""
    return SYSTEMS[ALIASES.get(scheme, scheme)][1]


def system_class(scheme: str) -> type[Storage]:
    """The class of storage system ``scheme``; a clear error if unknown or not installed."""
    scheme = ALIASES.get(scheme, scheme)
    try:
        target, install = SYSTEMS[scheme]
    except KeyError:
        known = ", ".join(sorted(SYSTEMS))
        raise StorageError(scheme, "", f"unknown storage system; use one of {known}") from None
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise StorageError(
            scheme, "", f"its library is not installed ({exc.name}): {install}"
        ) from exc
    cls: type[Storage] = getattr(module, class_name)
    return cls
