"""``Package``: one requirement as a resource: what to install, and how.

>>> rh.package(path="./my_pkg")                 # a local project (installed, or put on the path)
>>> rh.package(install_target="numpy>=2")        # from the package index
>>> rh.Package.from_string("reqs:./")            # the requirements.txt of a folder
>>> rh.Package.from_string("conda:pytorch")      # for rh.conda_env: joins its dependencies
>>> rh.git_package(git_url="https://github.com/org/repo", revision="v1.2", install_method="pip")
>>> rh.env(reqs=[rh.package(path="./lib"), "pip:pandas", "local:./tools"])
>>> rh.package(path="./tools").to(cluster).install_target    # its copy on the cluster

A package is stored in an env as a requirement string (``requirement()``), and turned into
what the daemon installs (``resolve()``) when the env is sent: ``{kind, value}`` with kind
``pip``, ``path`` (a package folder or wheel, installed), ``requirements`` (a file) or
``code`` (a folder put on the workers' import path).
"""

from __future__ import annotations

import hashlib
import logging
import re
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runhouse.exceptions import CommandError
from runhouse.resources.resource import Resource

if TYPE_CHECKING:
    from runhouse.resources.cluster import Cluster

log = logging.getLogger("runhouse")
INSTALL_METHODS = ("pip", "conda", "local", "reqs")
GIT_INSTALL_METHODS = ("pip", "local", "reqs")
_PREFIXES = (*INSTALL_METHODS, "rh")  # "rh:NAME": a package saved under NAME
_GITHUB_REPO = re.compile(r"^https://github\.com/[^/\s]+/[^/\s]+?(\.git)?/?$")
GIT_CLONES = "~/.rh/git"


class Package(Resource):
    """A requirement: ``pip`` (a specifier, URL or path), ``conda`` (for ``rh.conda_env``),
    ``local`` (a folder: installed if it is a Python project, else put on the path) or
    ``reqs`` (a requirements file, or a folder's ``requirements.txt``)."""

    resource_type = "package"

    def __init__(
        self,
        name: str | None = None,
        install_method: str = "pip",
        install_target: str = "",
        system: Cluster | str | dict[str, Any] | None = None,
    ) -> None:
        if install_method not in INSTALL_METHODS:
            allowed = ", ".join(INSTALL_METHODS)
            raise ValueError(f"install_method must be one of {allowed}, not {install_method!r}")
        if not isinstance(install_target, str) or not install_target.strip():
            raise ValueError("a package needs an install_target: a specifier, URL or path")
        super().__init__(name=name)
        self.install_method = install_method
        self.install_target = install_target
        # Set on a copy made by .to(cluster): install_target is then a path on that cluster.
        self.system = Resource.deref(system)
        self._source: Package | None = None  # the local package a copy came from

    @classmethod
    def from_string(cls, spec: str) -> Package:
        """``pip:numpy``, ``conda:pytorch -c pytorch``, ``local:./lib``, ``reqs:./``,
        ``rh:saved_name``, a GitHub repository URL (cloned, as ``rh.git_package``) or
        ``pip:git+URL@rev``; a bare string is a folder's or ``.txt`` file's ``reqs``, else pip."""
        spec = spec.strip()
        if spec == "requirements.txt":
            spec = "reqs:./"
        method, sep, target = spec.partition(":")
        if not (sep and method in _PREFIXES):
            method, target = "", spec
        target = target.strip()
        if method == "rh":
            return cls.from_name(target)
        if _is_git(target):
            url, revision = _split_git(target)
            default = "pip" if target.startswith("git+") else "local"  # the original cloned
            return GitPackage(git_url=url, revision=revision, install_method=method or default)
        if method != "conda":
            _refuse_install_args(spec, target)
        if not method:  # as the original: an existing folder is read for its requirements
            folder = Path(target).expanduser().is_dir()
            method = "reqs" if folder or target.endswith(".txt") else "pip"
        return cls(install_method=method, install_target=target)

    def requirement(self) -> str:
        """The requirement string an env stores (local paths made absolute)."""
        if self.system is not None:
            return self._local_source().requirement()
        method, target = self.install_method, self.install_target
        if method == "conda":
            return f"conda:{target}"
        if method == "pip":
            return f"pip:{_absolute(target)}" if _is_path(target) else target
        path = Path(_absolute(target))
        if method == "reqs":
            if path.is_dir():
                return str(path / "requirements.txt")
            return str(path) if path.suffix == ".txt" else f"reqs:{path}"
        return str(path)  # local: a bare path is read the same way

    def resolve(self, base: Path) -> dict[str, str]:
        """What the daemon installs, as ``{kind, value}`` (relative paths from ``base``)."""
        if self.system is not None:
            return self._local_source().resolve(base)
        method, target = self.install_method, self.install_target
        if method == "conda":
            raise ValueError(conda_in_plain_env(str(self)))
        if method == "pip" and not _is_path(target):
            return {"kind": "pip", "value": target}
        path = _existing(target, base, str(self))
        if method == "pip":
            return {"kind": "path", "value": str(path)}
        if method == "reqs" and path.is_dir():
            if (path / "requirements.txt").is_file():
                return {"kind": "requirements", "value": str(path / "requirements.txt")}
            # The original skipped the install here and only put the folder on the path.
            log.warning("%s: %s has no requirements.txt; it is only put on the path", self, path)
            return {"kind": "code", "value": str(path)}
        if method == "reqs":
            return {"kind": "requirements", "value": str(path)}
        return local_requirement(path)

    def to(self, system: Cluster | str, path: str | None = None) -> Package:
        """Copy this package's folder (or file) to a cluster's head, by default into
        ``~/.rh/packages/``, or into ``path`` there; returns a package whose
        ``install_target`` is the copy (on this machine's cluster: the same folder, unless
        ``path`` is given). A package from an index has nothing to copy: ``TypeError``."""
        from runhouse.client.hosts import SSHHost  # client code: not loaded by workers
        from runhouse.client.workdir import mirror_name
        from runhouse.resources.cluster import as_cluster  # the cluster module imports this one

        if self.system is not None:
            return self._local_source().to(system, path)
        method, target = self.install_method, self.install_target
        if method == "conda" or (method == "pip" and not _is_path(target)):
            raise TypeError(
                f"{self} comes from a package index: there is no folder to copy. Install it on "
                "the cluster with an env, rh.env(reqs=[package]).to(cluster), or with "
                "cluster.install_packages([package])"
            )
        source = _existing(self.install_target, Path.cwd(), str(self))
        cluster = as_cluster(system)
        host = cluster.daemon_host
        if path is None and not isinstance(host, SSHHost):
            dest = str(source)
        else:
            home = host.home if isinstance(host, SSHHost) else str(Path.home())
            folder = _under_home(path or f"~/.rh/packages/{mirror_name(source)}", home)
            dest = folder if source.is_dir() else f"{folder}/{source.name}"
            cluster.rsync(str(source), dest, up=True)
        copied = Package(self.name, self.install_method, dest, system=cluster)
        copied._source = self
        return copied

    def _local_source(self) -> Package:
        if self._source is None:
            raise ValueError(
                f"{self} is a copy on {self.system}, and the local package it came from is "
                "not known here; give the env the local package (rh.package(path=...)): an "
                "env sends local folders itself"
            )
        return self._source

    def config(self) -> dict[str, Any]:
        """The package's config (with the cluster it was copied to, if it was)."""
        return {
            **super().config(),
            "install_method": self.install_method,
            "install_target": self.install_target,
            "system": Resource.ref(self.system) if isinstance(self.system, Resource) else None,
        }

    def __str__(self) -> str:
        return f"{self.install_method}:{self.install_target}"


class GitPackage(Package):
    """A package from a git repository, at ``revision`` (a branch, tag or commit).

    ``install_method="pip"`` installs ``git+URL@revision`` on the cluster with pip (the
    cluster then needs git, and access to the repository). ``"local"`` (the default, as in
    the original) or ``"reqs"`` clones the repository on this machine, into ``~/.rh/git/``
    (one clone per revision, fetched again each time it is used, so a branch is up to date),
    and sends the clone as a local folder: your own git credentials reach private
    repositories.
    """

    def __init__(
        self,
        name: str | None = None,
        git_url: str = "",
        revision: str | None = None,
        install_method: str = "local",
    ) -> None:
        if not isinstance(git_url, str) or not git_url.strip():
            raise ValueError("a git package needs a git_url")
        if install_method not in GIT_INSTALL_METHODS:
            allowed = ", ".join(GIT_INSTALL_METHODS)
            raise ValueError(f"a git package's install_method is one of {allowed}")
        url = git_url.strip().removeprefix("git+")
        target = f"git+{url}" + (f"@{revision}" if revision else "")
        super().__init__(name, install_method, target)
        self.git_url = url
        self.revision = revision

    def requirement(self) -> str:
        """``git+URL@revision`` for pip; prefixed with ``local:``/``reqs:`` for a clone."""
        if self.install_method == "pip":
            return self.install_target
        return f"{self.install_method}:{self.install_target}"

    def resolve(self, base: Path) -> dict[str, str]:
        """pip's ``git+`` requirement, or the clone (made now) as a local folder."""
        if self.install_method == "pip":
            return {"kind": "pip", "value": self.install_target}
        clone = Package(install_method=self.install_method, install_target=str(self.clone()))
        return clone.resolve(base)

    def to(self, system: Cluster | str, path: str | None = None) -> Package:
        """Clone the repository here and copy the clone to the cluster (see ``Package.to``);
        with ``install_method="pip"`` there is nothing to copy: ``TypeError``."""
        if self.install_method == "pip":
            return super().to(system, path)  # raises: an index package
        local = Package(self.name, self.install_method, str(self.clone()))
        copied = local.to(system, path)
        copied._source = self
        return copied

    def clone(self) -> Path:
        """Clone the repository (or fetch into the existing clone) and check out
        ``revision`` (default: the remote's default branch); returns the clone's folder."""
        name = self.git_url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git") or "repo"
        # A clone per revision: checking out another one must not change code in use.
        digest = hashlib.sha256(f"{self.git_url}@{self.revision}".encode()).hexdigest()[:12]
        dest = Path(GIT_CLONES).expanduser() / f"{name}-{digest}"
        if (dest / ".git").is_dir():
            _git("-C", str(dest), "fetch", "--quiet", "--tags", "--force", "origin")
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            _git("clone", "--quiet", self.git_url, str(dest))
        wanted = self.revision or "HEAD"
        # A branch is read from the remote (fresh after the fetch); a tag or commit as is.
        verify = ["-C", str(dest), "rev-parse", "--verify", "--quiet"]
        commit = _git(*verify, f"origin/{wanted}^{{commit}}", check=False)
        commit = commit or _git(*verify, f"{wanted}^{{commit}}")
        _git("-C", str(dest), "checkout", "--quiet", "--force", "--detach", commit)
        return dest

    def config(self) -> dict[str, Any]:
        """The git package's config: its URL, revision and install method."""
        return {
            **Resource.config(self),
            "git_url": self.git_url,
            "install_method": self.install_method,
            "revision": self.revision,
        }

    def __str__(self) -> str:
        return self.requirement()


def is_package_string(req: str) -> bool:
    """Whether an env requirement is read as ``Package.from_string`` reads it: a ``pip:``,
    ``conda:``, ``local:``, ``reqs:`` or ``rh:`` prefix, or a GitHub repository URL."""
    method, sep, _ = req.partition(":")
    return bool(sep and method in _PREFIXES) or bool(_GITHUB_REPO.match(req.strip()))


def local_requirement(path: Path) -> dict[str, str]:
    """A local file or folder as a requirement: a Python project folder or a wheel is
    installed (``path``), a ``.txt`` file is a requirements file, anything else is put on
    the path (``code``; a single module: its folder)."""
    if path.is_dir():
        packaged = (path / "pyproject.toml").exists() or (path / "setup.py").exists()
        return {"kind": "path" if packaged else "code", "value": str(path)}
    if path.suffix == ".whl":
        return {"kind": "path", "value": str(path)}
    if path.suffix == ".txt":
        return {"kind": "requirements", "value": str(path)}
    return {"kind": "code", "value": str(path.parent)}


def conda_in_plain_env(req: str) -> str:
    """The error for a conda package in an env that installs with pip."""
    return (
        f"{req!r} is a conda package, and rh.env installs with pip (uv). Use "
        f"rh.conda_env(reqs=[{req!r}, ...]): its conda packages join the conda environment's "
        "dependencies"
    )


def _is_path(target: str) -> bool:
    return target.startswith((".", "/", "~")) or target.endswith((".whl", ".txt"))


def _is_git(target: str) -> bool:
    return target.startswith("git+") or bool(_GITHUB_REPO.match(target))


def _split_git(target: str) -> tuple[str, str | None]:
    """``git+URL@rev`` (or a bare URL) as ``(URL, rev)``; an ``@`` before the URL's path is
    its user (``git@github.com``), not a revision."""
    url = target.removeprefix("git+")
    scheme, sep, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    if sep and slash and "@" in path:
        path, _, revision = path.rpartition("@")
        return f"{scheme}://{host}/{path}", revision or None
    return url, None


def _refuse_install_args(spec: str, target: str) -> None:
    # The original passed "target --args" to pip; an env's requirement is one specifier.
    words = target.split()
    extra = [word for word in words[1:] if word.startswith("-")]
    if extra:
        raise ValueError(
            f"{spec!r}: install arguments ({' '.join(words[1:])}) are not supported in a "
            "requirement; put them in a requirements file (reqs:requirements.txt may hold "
            "--index-url lines), or use the env's setup_cmds"
        )


def _absolute(target: str) -> str:
    return str(Path(target).expanduser().resolve())


def _existing(target: str, base: Path, label: str) -> Path:
    path = Path(target).expanduser()
    path = (path if path.is_absolute() else base / path).resolve()
    if not path.exists():
        raise FileNotFoundError(f"requirement {label!r}: {path} does not exist")
    return path


def _under_home(path: str, home: str) -> str:
    """A cluster path with ``~`` (or a relative path) made absolute under ``home``."""
    if path == "~" or path.startswith("~/"):
        return home + path[1:]
    return path if path.startswith("/") else f"{home}/{path}"


def _git(*args: str, check: bool = True) -> str:
    command = ["git", *args]
    try:
        result = subprocess.run(command, capture_output=True, text=True)
    except FileNotFoundError:
        raise CommandError(" ".join(command), 127, "git is not installed on this machine") from None
    if check and result.returncode != 0:
        raise CommandError(" ".join(command), result.returncode, result.stderr)
    return result.stdout.strip() if result.returncode == 0 else ""


def package(
    name: str | None = None,
    install_method: str | None = None,
    install_target: str | None = None,
    path: str | None = None,
    install_str: str | None = None,
) -> Package:
    """A ``Package`` from a path or an install target (``install_str``: the original's name
    for it); given only ``name``, the saved one."""
    if path is not None:
        method = install_method or ("reqs" if path.endswith(".txt") else "local")
        return Package(name, method, path)
    target = install_target if install_target is not None else install_str
    if target is not None:
        if install_method != "conda":
            _refuse_install_args(target, target)
        return Package(name, install_method or "pip", target)
    if name is not None:
        return Package.from_name(name)
    raise TypeError("rh.package needs a path, an install_target, or the name of a saved package")


def git_package(
    name: str | None = None,
    git_url: str | None = None,
    revision: str | None = None,
    install_method: str | None = None,
    install_str: str | None = None,
) -> Package:
    """A ``GitPackage`` (``install_method``: ``local``, the default, clones it here and sends
    the clone; ``pip`` installs ``git+URL@revision`` on the cluster); given only ``name``,
    the saved one."""
    if name is not None and git_url is None and revision is None and install_method is None:
        return Package.from_name(name)
    if install_str:
        raise ValueError(
            f"install_str={install_str!r}: install arguments are not supported for a git "
            "package; use the env's setup_cmds"
        )
    if git_url is None:
        raise TypeError("rh.git_package needs a git_url, or the name of a saved package")
    return GitPackage(name, git_url, revision, install_method or "local")
