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


def ship(obj: Any, what: str) -> bytes:
    """Serialize a function, class or instance for a worker."""
    module = inspect.getmodule(obj if inspect.isroutine(obj) or inspect.isclass(obj) else type(obj))
    if module is None or not _by_value(module):
        return dumps(obj, what)
    with _lock:
        cloudpickle.register_pickle_by_value(module)
        try:
            return dumps(obj, what)
        finally:
            cloudpickle.unregister_pickle_by_value(module)


def _by_value(module: ModuleType) -> bool:
    name = module.__name__
    if name == "__main__" or name.split(".")[0] == "runhouse" or name in sys.builtin_module_names:
        return False  # __main__ already travels by value; the others exist on every worker
    path = getattr(module, "__file__", None)
    if path is None:
        return False
    return not str(Path(path).resolve()).startswith(_INSTALLED)
