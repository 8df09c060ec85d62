"""``Package``: one requirement as a resource: what to install, and how.

>>> rh.package(path="./my_pkg")                 # a local project (pip install ./my_pkg)
>>> rh.package(install_target="numpy>=2")        # from the package index
>>> rh.Package.from_string("reqs:./")            # the requirements.txt of a folder
>>> rh.env(reqs=[rh.package(path="./lib"), "pandas"])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runhouse.resources.resource import Resource

INSTALL_METHODS = ("pip", "local", "reqs")


class Package(Resource):
    """A requirement: ``pip`` (a specifier or URL), ``local`` (a folder) or ``reqs`` (a file)."""

    resource_type = "package"

    def __init__(
        self, name: str | None = None, install_method: str = "pip", install_target: str = ""
    ) -> None:
        if install_method not in INSTALL_METHODS:
            allowed = ", ".join(INSTALL_METHODS)
            raise ValueError(f"install_method must be one of {allowed}, not {install_method!r}")
        if not isinstance(install_target, str) or not install_target.strip():
            raise ValueError("a package needs an install_target: a specifier, URL or path")
        super().__init__(name=name)
        self.install_method = install_method
        self.install_target = install_target

    @classmethod
    def from_string(cls, spec: str) -> Package:
        """``pip:numpy``, ``local:./lib``, ``reqs:./`` (a bare string means pip)."""
        method, sep, target = spec.partition(":")
        if sep and method in INSTALL_METHODS:
            return cls(install_method=method, install_target=target)
        return cls(install_method="pip", install_target=spec)

    def requirement(self) -> str:
        """The requirement string an env installs (local paths made absolute)."""
        if self.install_method == "pip":
            return self.install_target
        path = Path(self.install_target).expanduser().resolve()
        if self.install_method == "reqs" and path.is_dir():
            path = path / "requirements.txt"
        return str(path)

    def config(self) -> dict[str, Any]:
        """The package's config."""
        return {
            **super().config(),
            "install_method": self.install_method,
            "install_target": self.install_target,
        }

    def __str__(self) -> str:
        return f"{self.install_method}:{self.install_target}"


def package(
    name: str | None = None,
    install_method: str | None = None,
    install_target: str | None = None,
    path: str | None = None,
) -> Package:
    """A ``Package`` from a path or an install target; given only ``name``, the saved one."""
    if path is not None:
        method = install_method or ("reqs" if path.endswith(".txt") else "local")
        return Package(name, method, path)
    if install_target is not None:
        return Package(name, install_method or "pip", install_target)
    if name is not None:
        return Package.from_name(name)
    raise TypeError("rh.package needs a path, an install_target, or the name of a saved package")
