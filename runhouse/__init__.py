"""Runhouse: send functions and classes to remote compute, and name, version and share them.

Exports load lazily (PEP 562): ``import runhouse`` stays fast, and the daemon and workers can
import ``runhouse.daemon`` without pulling in client-side code.
"""

import importlib as _importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from runhouse._version import __version__

_EXPORTS: dict[str, str] = {
    "AuthError": "runhouse.exceptions",
    "Blob": "runhouse.resources.blob",
    "CallCancelledError": "runhouse.exceptions",
    "CallInterruptedError": "runhouse.exceptions",
    "CallTimeoutError": "runhouse.exceptions",
    "CommandError": "runhouse.exceptions",
    "CondaEnv": "runhouse.resources.env",
    "Cluster": "runhouse.resources.cluster",
    "ConfigError": "runhouse.exceptions",
    "CorruptConfigError": "runhouse.exceptions",
    "CredentialsNotFoundError": "runhouse.exceptions",
    "DaemonError": "runhouse.exceptions",
    "DenAuthError": "runhouse.exceptions",
    "DenError": "runhouse.exceptions",
    "Env": "runhouse.resources.env",
    "EngineError": "runhouse.exceptions",
    "EngineMismatchError": "runhouse.exceptions",
    "NodeJoinError": "runhouse.exceptions",
    "RayVersionMismatchError": "runhouse.exceptions",
    "EnvInstallError": "runhouse.exceptions",
    "File": "runhouse.resources.blob",
    "Folder": "runhouse.resources.folder",
    "Function": "runhouse.resources.function",
    "GitPackage": "runhouse.resources.package",
    "Group": "runhouse.resources.group",
    "InvalidNameError": "runhouse.exceptions",
    "Location": "runhouse.names.resolver",
    "Module": "runhouse.resources.module",
    "ObjectLostError": "runhouse.exceptions",
    "ObjectNotFoundError": "runhouse.exceptions",
    "Package": "runhouse.resources.package",
    "PermissionDeniedError": "runhouse.exceptions",
    "ProviderSecret": "runhouse.resources.secret",
    "RemoteError": "runhouse.exceptions",
    "Resource": "runhouse.resources.resource",
    "ResourceExistsError": "runhouse.exceptions",
    "ResourceNotFoundError": "runhouse.exceptions",
    "ResourceTypeMismatchError": "runhouse.exceptions",
    "ResourceVersion": "runhouse.names.store",
    "RunhouseError": "runhouse.exceptions",
    "SSHError": "runhouse.exceptions",
    "Secret": "runhouse.resources.secret",
    "SecretValuesMissingError": "runhouse.exceptions",
    "SerializationError": "runhouse.exceptions",
    "StorageError": "runhouse.exceptions",
    "PlacementError": "runhouse.exceptions",
    "StoreUnavailableError": "runhouse.exceptions",
    "Table": "runhouse.resources.table",
    "UnknownProviderError": "runhouse.exceptions",
    "UnknownResourceTypeError": "runhouse.exceptions",
    "VersionConflictError": "runhouse.exceptions",
    "VersionMismatchError": "runhouse.exceptions",
    "VersionNotFoundError": "runhouse.exceptions",
    "WorkerDiedError": "runhouse.exceptions",
    "blob": "runhouse.resources.blob",
    "cluster": "runhouse.resources.cluster",
    "conda_env": "runhouse.resources.env",
    "configs": "runhouse.config",
    "current_folder": "runhouse.names.folders",
    "env": "runhouse.resources.env",
    "exists": "runhouse.names.resolver",
    "file": "runhouse.resources.blob",
    "folder": "runhouse.resources.folder",
    "function": "runhouse.resources.function",
    "git_package": "runhouse.resources.package",
    "group": "runhouse.resources.group",
    "load": "runhouse.resources.resource",
    "locate": "runhouse.names.resolver",
    "login": "runhouse.names.login",
    "logout": "runhouse.names.login",
    "module": "runhouse.resources.module",
    "package": "runhouse.resources.package",
    "provider_secret": "runhouse.resources.secret",
    "secret": "runhouse.resources.secret",
    "set_folder": "runhouse.names.folders",
    "table": "runhouse.resources.table",
    "unset_folder": "runhouse.names.folders",
}

__all__ = sorted([*_EXPORTS, "__version__", "here"])


def __getattr__(name: str) -> _Any:
    if name == "here":  # computed on each access: the cluster this code runs on
        from runhouse.resources.cluster import here

        return here()
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'runhouse' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if _TYPE_CHECKING:
    from runhouse.config import configs
    from runhouse.exceptions import (
        AuthError,
        CallCancelledError,
        CallInterruptedError,
        CallTimeoutError,
        CommandError,
        ConfigError,
        CorruptConfigError,
        CredentialsNotFoundError,
        DaemonError,
        DenAuthError,
        DenError,
        EngineError,
        EngineMismatchError,
        EnvInstallError,
        InvalidNameError,
        NodeJoinError,
        ObjectLostError,
        ObjectNotFoundError,
        PermissionDeniedError,
        PlacementError,
        RayVersionMismatchError,
        RemoteError,
        ResourceExistsError,
        ResourceNotFoundError,
        ResourceTypeMismatchError,
        RunhouseError,
        SecretValuesMissingError,
        SerializationError,
        SSHError,
        StorageError,
        StoreUnavailableError,
        UnknownProviderError,
        UnknownResourceTypeError,
        VersionConflictError,
        VersionMismatchError,
        VersionNotFoundError,
        WorkerDiedError,
    )
    from runhouse.names.folders import current_folder, set_folder, unset_folder
    from runhouse.names.login import login, logout
    from runhouse.names.resolver import Location, exists, locate
    from runhouse.names.store import ResourceVersion
    from runhouse.resources.blob import Blob, File, blob, file
    from runhouse.resources.cluster import Cluster, cluster
    from runhouse.resources.env import CondaEnv, Env, conda_env, env
    from runhouse.resources.folder import Folder, folder
    from runhouse.resources.function import Function, function
    from runhouse.resources.group import Group, group
    from runhouse.resources.module import Module, module
    from runhouse.resources.package import GitPackage, Package, git_package, package
    from runhouse.resources.resource import Resource, load
    from runhouse.resources.secret import ProviderSecret, Secret, provider_secret, secret
    from runhouse.resources.table import Table, table

    here: Cluster
