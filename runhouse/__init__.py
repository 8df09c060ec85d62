"""Runhouse: send functions and classes to remote compute, and name, version and share them."""

from runhouse._version import __version__
from runhouse.config import configs
from runhouse.exceptions import (
    ConfigError,
    CorruptConfigError,
    InvalidNameError,
    ResourceExistsError,
    ResourceNotFoundError,
    ResourceTypeMismatchError,
    RunhouseError,
    StoreUnavailableError,
    UnknownResourceTypeError,
    VersionNotFoundError,
)
from runhouse.names.folders import current_folder, set_folder, unset_folder
from runhouse.names.resolver import Location, exists, locate
from runhouse.names.store import ResourceVersion
from runhouse.resources.env import Env, env
from runhouse.resources.resource import Resource, load

__all__ = [
    "ConfigError",
    "CorruptConfigError",
    "Env",
    "InvalidNameError",
    "Location",
    "Resource",
    "ResourceExistsError",
    "ResourceNotFoundError",
    "ResourceTypeMismatchError",
    "ResourceVersion",
    "RunhouseError",
    "StoreUnavailableError",
    "UnknownResourceTypeError",
    "VersionNotFoundError",
    "__version__",
    "configs",
    "current_folder",
    "env",
    "exists",
    "load",
    "locate",
    "set_folder",
    "unset_folder",
]
