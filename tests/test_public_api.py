"""The public face: __all__, docstrings and type hints, and a light import."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
from types import ModuleType

import runhouse as rh


def all_modules() -> list[ModuleType]:
    names = [m.name for m in pkgutil.walk_packages(rh.__path__, "runhouse.")]
    return [importlib.import_module(n) for n in names if not n.endswith("__main__")]


def test_all_is_sorted_and_complete() -> None:
    assert rh.__all__ == sorted(rh.__all__)
    for name in rh.__all__:
        assert hasattr(rh, name), name
    public = {n for n, v in vars(rh).items() if not n.startswith("_") and not inspect.ismodule(v)}
    assert public <= set(rh.__all__), public - set(rh.__all__)


def test_public_functions_are_typed_and_documented() -> None:
    problems = []
    for module in all_modules():
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            members = [(name, obj)]
            if inspect.isclass(obj):
                members += [
                    (f"{name}.{n}", m)
                    for n, m in vars(obj).items()
                    if not n.startswith("_")
                    and (
                        inspect.isfunction(m)
                        or isinstance(m, (classmethod, staticmethod, property))
                    )
                ]
            for qualname, member in members:
                func = (
                    member.fget
                    if isinstance(member, property)
                    else getattr(member, "__func__", member)
                )
                where = f"{module.__name__}.{qualname}"
                if not inspect.isfunction(func) and not inspect.isclass(func):
                    continue
                if not (func.__doc__ or "").strip():
                    problems.append(f"{where}: no docstring")
                if inspect.isfunction(func):
                    params = inspect.signature(func).parameters
                    untyped = [n for n in params if n not in ("self", "cls")]
                    untyped = [n for n in untyped if n not in func.__annotations__]
                    if untyped or "return" not in func.__annotations__:
                        problems.append(f"{where}: missing type hints ({untyped or 'return'})")
    assert problems == []


def test_import_is_light(python: str) -> None:
    code = (
        "import sys, runhouse; "
        "heavy = {'yaml', 'ray', 'sky', 'boto3', 'fsspec', 'httpx', 'fastapi', 'sqlalchemy'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    result = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
