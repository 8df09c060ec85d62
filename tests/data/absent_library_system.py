"""A storage system whose library is not installed, for the registry's install hint."""

import runhouse_absent_storage_library  # noqa: F401  (no such package, on purpose)
