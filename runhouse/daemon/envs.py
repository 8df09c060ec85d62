"""Building envs: one virtualenv per env content, made with uv (pip as a fallback).

    <daemon dir>/envs/<hash>/            the virtualenv
    <daemon dir>/envs/<hash>/.rh-env.json   written last: the env is complete (and cached)
    <daemon dir>/support/                   runhouse and cloudpickle, linked for the workers

The hash covers the Python version, the requirements (with a fingerprint of local folders'
files, so an edited local package rebuilds) and the setup commands: an unchanged env is
reused, even after a restart, and a changed one builds a new folder of its own. An env with
nothing to install runs with the daemon's own Python, until commands are run in it
(``c.run(cmds, env=...)``): it then gets a venv of its own, which still sees the daemon's
packages (a ``.pth`` file), so that ``pip install`` there changes that env alone.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runhouse.exceptions import EnvInstallError

MARKER = ".rh-env.json"
_SKIP_DIRS = {".git", "__pycache__", "build", "dist", ".venv", ".mypy_cache", ".pytest_cache"}
_OUTPUT_TAIL = 30


@dataclass(frozen=True)
class Requirement:
    """One requirement as the client resolved it: pip, path, requirements, or code."""

    kind: str
    value: str

    @classmethod
    def parse(cls, raw: Any) -> Requirement:
        """From the JSON the client sent; ``ValueError`` if malformed."""
        if not isinstance(raw, dict) or raw.get("kind") not in (
            "pip",
            "path",
            "requirements",
            "code",
        ):
            raise ValueError(f"a requirement must be {{kind, value}}, not {raw!r}")
        if not isinstance(raw.get("value"), str) or not raw["value"]:
            raise ValueError(f"a requirement needs a value: {raw!r}")
        return cls(raw["kind"], raw["value"])


@dataclass(frozen=True)
class BuiltEnv:
    """Where an env's worker gets its Python and import path."""

    python: str
    pythonpath: tuple[str, ...] = ()
    content_hash: str | None = None
    packages: tuple[str, ...] = field(default=(), compare=False)


def fingerprint(
    reqs: list[Requirement],
    setup_cmds: list[str],
    conda: dict[str, Any] | None = None,
    own: str | None = None,
) -> str:
    """The content hash that names an env's folder (``own``: the env a venv is made for
    alone, though it has nothing to install)."""
    digest = hashlib.sha256()
    digest.update(f"{sys.version}\n{sys.executable}\n".encode())
    if own is not None:
        digest.update(f"own:{own}\n".encode())
    if conda is not None:
        digest.update(f"conda:{json.dumps(conda, sort_keys=True)}\n".encode())
    for req in reqs:
        digest.update(f"{req.kind}:{req.value}\n".encode())
        if req.kind in ("path", "code", "requirements"):
            _hash_tree(Path(req.value), digest)
    for command in setup_cmds:
        digest.update(f"setup:{command}\n".encode())
    return digest.hexdigest()[:20]


def _hash_tree(path: Path, digest: Any) -> None:
    if path.is_file():
        st = path.stat()
        digest.update(f"{path.name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
        return
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.endswith(".egg-info"))
        for name in sorted(files):
            full = Path(root, name)
            st = full.stat()
            digest.update(f"{full.relative_to(path)}:{st.st_size}:{st.st_mtime_ns}\n".encode())


class EnvBuilder:
    """Builds and caches envs under ``root``; safe across threads and daemons."""

    def __init__(self, root: Path, support: Path) -> None:
        self.root = root
        self.support = support

    def build(
        self,
        name: str,
        reqs: list[Requirement],
        setup_cmds: list[str],
        conda: dict[str, Any] | None = None,
        own: bool = False,
    ) -> BuiltEnv:
        """The env's Python and path, building its environment first if needed (``own``: a
        venv even if there is nothing to install, for commands run in the env)."""
        code_paths = tuple(r.value for r in reqs if r.kind == "code")
        nothing = not any(r.kind != "code" for r in reqs) and not setup_cmds and conda is None
        if nothing and not own:
            return BuiltEnv(sys.executable, code_paths)
        content_hash = fingerprint(reqs, setup_cmds, conda, name if nothing else None)
        target = self.root / content_hash
        self.root.mkdir(parents=True, exist_ok=True)
        with _locked(self.root / f"{content_hash}.lock"):
            built = self._load(target)
            if built is None:
                self._link_support()
                built = self._make(name, target, content_hash, reqs, setup_cmds, conda, nothing)
        return BuiltEnv(
            built.python, (str(self.support), *code_paths), content_hash, built.packages
        )

    def _load(self, target: Path) -> BuiltEnv | None:
        try:
            record = json.loads((target / MARKER).read_text())
        except (FileNotFoundError, ValueError):
            return None
        return BuiltEnv(record["python"], (), record["hash"], tuple(record["packages"]))

    def _make(
        self,
        name: str,
        target: Path,
        content_hash: str,
        reqs: list[Requirement],
        setup_cmds: list[str],
        conda: dict[str, Any] | None,
        inherit: bool = False,
    ) -> BuiltEnv:
        shutil.rmtree(target, ignore_errors=True)  # leftovers of a failed build
        try:
            if conda is None:
                python = self._create_venv(name, target)
            else:
                python = self._create_conda(name, target, conda)
            if inherit:
                _inherit_site_packages(python)
            args: list[str] = []
            for req in reqs:
                if req.kind == "requirements":
                    args += ["-r", req.value]
                elif req.kind != "code":
                    args.append(req.value)
            if args:
                self._install(name, python, args)
            environ = {**os.environ, "VIRTUAL_ENV": str(target)}
            environ["PATH"] = f"{target / 'bin'}{os.pathsep}{environ.get('PATH', '')}"
            for command in setup_cmds:
                _run(name, ["bash", "-c", command], environ, shown=command)
            packages = self._freeze(python)
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)  # never leave a half-built env behind
            raise
        record = {
            "built": time.time(),
            "hash": content_hash,
            "packages": packages,
            "python": python,
        }
        (target / MARKER).write_text(json.dumps(record, indent=2) + "\n")
        return BuiltEnv(python, (), content_hash, tuple(packages))

    def _create_venv(self, name: str, target: Path) -> str:
        uv = _uv()
        if not uv:
            _run(name, [sys.executable, "-m", "venv", str(target)], None)  # pip included
            return str(target / "bin" / "python")
        command = [uv, "venv", "-q", "--python", sys.executable, str(target)]
        try:
            # pip in the venv: `pip install` in c.run(cmds, env=...) must reach this env.
            _run(name, [*command[:3], "--seed", *command[3:]], _uv_environ())
        except EnvInstallError:  # no index to seed from: a pip that is uv's, for this venv
            _run(name, command, _uv_environ())
            _write_pip_shim(target, uv)
        return str(target / "bin" / "python")

    def _create_conda(self, name: str, target: Path, spec: dict[str, Any]) -> str:
        tool = shutil.which("micromamba") or shutil.which("conda")
        if tool is None:
            raise EnvInstallError(
                name,
                "conda_env",
                127,
                "rh.conda_env needs conda or micromamba on the cluster's PATH, and neither was "
                "found. Install one there (micromamba is a single binary), or use rh.env.",
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        spec_file = target.parent / f"{target.name}.environment.yml"
        spec_file.write_text(json.dumps(spec))  # JSON is valid YAML
        if Path(tool).name == "micromamba":
            command = [tool, "create", "-y", "-q", "-p", str(target), "-f", str(spec_file)]
        else:
            command = [tool, "env", "create", "-q", "-p", str(target), "-f", str(spec_file)]
        _run(name, command, None)
        python = target / "bin" / "python"
        if not python.exists():
            detail = f"no Python at {python}: list python in the conda dependencies"
            raise EnvInstallError(name, " ".join(command), 1, detail)
        return str(python)

    def _install(self, name: str, python: str, args: list[str]) -> None:
        uv = _uv()
        if uv:
            _run(name, [uv, "pip", "install", "-q", "--python", python, *args], _uv_environ())
        else:
            _run(name, [python, "-m", "pip", "install", "-q", *args], None)

    def _freeze(self, python: str) -> list[str]:
        uv = _uv()
        command = (
            [uv, "pip", "freeze", "--python", python] if uv else [python, "-m", "pip", "freeze"]
        )
        out = subprocess.run(command, capture_output=True, text=True)
        return [line for line in out.stdout.splitlines() if line and not line.startswith("#")]

    def _link_support(self) -> None:
        # The worker needs runhouse and cloudpickle; linking them spares installing both into
        # every env (and keeps their versions the daemon's own).
        import cloudpickle

        import runhouse

        self.support.mkdir(parents=True, exist_ok=True)
        for module in (runhouse, cloudpickle):
            source = Path(module.__file__ or "").parent
            link = self.support / source.name
            if not link.exists():
                link.symlink_to(source, target_is_directory=True)


def _inherit_site_packages(python: str) -> None:
    """Let a venv see the daemon's packages, after its own: a ``.pth`` line that adds each
    of the daemon's site folders (with their own ``.pth`` files: editable installs too)."""
    import site

    found = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    inherited = [p for p in site.getsitepackages() if Path(p).is_dir()]
    lines = [f"import site; site.addsitedir({folder!r})" for folder in inherited]
    Path(found.stdout.strip(), "_rh_inherit.pth").write_text("\n".join(lines) + "\n")


def _write_pip_shim(target: Path, uv: str) -> None:
    shim = target / "bin" / "pip"
    shim.write_text(f'#!/bin/sh\nexec "{uv}" pip "$@" --python "{target / "bin" / "python"}"\n')
    shim.chmod(0o755)


def _uv() -> str | None:
    try:
        from uv import find_uv_bin
    except ImportError:
        return shutil.which("uv")
    try:
        return str(find_uv_bin())
    except FileNotFoundError:
        return shutil.which("uv")


def _uv_environ() -> dict[str, str]:
    # uv trusts only its bundled roots by default; hosts behind a proxy or a private index
    # rely on the system's CA store, as pip and curl there do.
    return {"UV_NATIVE_TLS": "1", **os.environ}


def _run(
    env: str, command: list[str], environ: dict[str, str] | None, shown: str | None = None
) -> None:
    result = subprocess.run(
        command, capture_output=True, text=True, env=environ, stdin=subprocess.DEVNULL
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()
        raise EnvInstallError(
            env, shown or " ".join(command), result.returncode, "\n".join(output[-_OUTPUT_TAIL:])
        )


class _locked:
    """An exclusive lock on a file, held for a ``with`` block (one build per env at a time)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = -1

    def __enter__(self) -> None:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)
