"""Sending code to a cluster: by value for the user's own modules, by reference otherwise.

Code from installed packages (and Runhouse itself) is imported by the worker; code from the
user's own files and ``__main__`` travels by value, since the worker may not have those files.
"""

from __future__ import annotations

import inspect
import sys
import sysconfig
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import cloudpickle

from runhouse.wire.serialization import dumps

_lock = threading.Lock()
_INSTALLED = tuple(
    {
        str(Path(p).resolve())
        for k, p in sysconfig.get_paths().items()
        if k in ("stdlib", "platstdlib", "purelib", "platlib")
    }
)


def pointers(obj: Any) -> dict[str, str] | None:
    """Where ``obj`` was defined (module and qualified name), for configs and messages."""
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not module or not qualname:
        return None
    return {"module": module, "qualname": qualname}


def ship(obj: Any, what: str, code_root: Path | None = None) -> bytes:
    """Serialize a function, class or instance for a worker.

    By reference (module and name) when the worker can import it: from an installed package,
    Runhouse itself, or a file under ``code_root`` (the working dir, which the worker puts on
    its path). By value otherwise: ``__main__``, notebooks, files outside the working dir.
    """
    module = inspect.getmodule(obj if inspect.isroutine(obj) or inspect.isclass(obj) else type(obj))
    if module is None or not _by_value(module, code_root):
        return dumps(obj, what)
    with _lock:
        cloudpickle.register_pickle_by_value(module)
        try:
            return dumps(obj, what)
        finally:
            cloudpickle.unregister_pickle_by_value(module)


def importable_from(module: ModuleType, root: Path) -> bool:
    """Whether ``module`` is imported under the same name with ``root`` on the path."""
    path = getattr(module, "__file__", None)
    if path is None:
        return False
    try:
        relative = Path(path).resolve().relative_to(root.resolve())
    except ValueError:
        return False
    parts = list(relative.with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts) == module.__name__


def _by_value(module: ModuleType, code_root: Path | None) -> bool:
    name = module.__name__
    if name == "__main__" or name.split(".")[0] == "runhouse" or name in sys.builtin_module_names:
        return False  # __main__ already travels by value; the others exist on every worker
    if code_root is not None and importable_from(module, code_root):
        return False  # the worker imports it from the working dir, once
    path = getattr(module, "__file__", None)
    if path is None:
        return False
    return not str(Path(path).resolve()).startswith(_INSTALLED)
