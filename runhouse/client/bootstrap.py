"""Installing this Runhouse on a host over SSH, in its own venv (``~/.rh/venv``).

    ray = install(runner, ray=True)          # runhouse[ray]; returns the host's Ray version
    install(other, ray=True, ray_version=ray)  # the same Ray on another node of the cluster

A development client (a checkout) sends a wheel built from its code; a released client has
the host install the same release from its package index. The venv records what it holds,
so a host that has this exact code (and Ray, when asked) is not installed again.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

from runhouse._version import __version__
from runhouse.client import workdir
from runhouse.client.runners.ssh import SSHRunner
from runhouse.exceptions import DaemonError

REMOTE_ROOT = "~/.rh"
VENV_PYTHON = f"{REMOTE_ROOT}/venv/bin/python"
_MARKER = f"{REMOTE_ROOT}/venv/.runhouse-source"
# Prints the venv's Ray version, or fails: cheap (reads metadata, imports nothing of Ray).
_RAY_VERSION = shlex.quote("import importlib.metadata as m; print(m.version('ray'))")


def install(runner: SSHRunner, ray: bool = False, ray_version: str | None = None) -> str | None:
    """Install this Runhouse in the host's venv unless it is there (with the ``ray`` extra
    when ``ray``; ``ray_version`` pins Ray when it must be installed); returns the venv's Ray
    version (None without Ray)."""
    [(rc, _, _)] = runner.run("command -v python3", stream_logs=False)
    if rc != 0:
        raise DaemonError(
            f"{runner.target} has no python3 on its PATH; install Python 3.10+ there."
        )
    source = checkout()
    if source is None:
        # A released client: the host installs the same release from its package index.
        wheel, stamp = None, f"release {__version__}"
        spec = shlex.quote(f"runhouse=={__version__}")
        with_extra = shlex.quote(f"runhouse[ray]=={__version__}")
    else:
        # Shell words: the host's shell expands the ~ (so the path is not quoted whole).
        wheel, digest = build_wheel(source)
        stamp = digest
        spec = f"{REMOTE_ROOT}/wheels/{digest}/{shlex.quote(wheel.name)}"
        with_extra = spec + shlex.quote("[ray]")
    probe = f"cat {_MARKER} 2>/dev/null; echo; {VENV_PYTHON} -c {_RAY_VERSION} 2>/dev/null"
    [(_, out, _)] = runner.run(probe, stream_logs=False)
    installed, _, ray_now = out.partition("\n")
    if installed.strip() == stamp and (ray_now.strip() or not ray):
        return ray_now.strip() or None  # this exact code (and Ray, if asked) is there already
    if wheel is not None:
        runner.rsync(str(wheel), spec, up=True, gitignore=False)
    pip = f"{VENV_PYTHON} -m pip install -q"
    wanted = with_extra if ray else spec
    if ray and ray_version:
        wanted += " " + shlex.quote(f"ray[default]=={ray_version}")
    # Other code may be installed there at the same version (a rebuilt checkout): force
    # this code in, then add its dependencies.
    command = (
        f"python3 -m venv {REMOTE_ROOT}/venv && "
        f"{pip} --force-reinstall --no-deps {spec} && {pip} {wanted} && "
        f"echo {shlex.quote(stamp)} > {_MARKER} && "
        f"echo ray=$({VENV_PYTHON} -c {_RAY_VERSION} 2>/dev/null)"
    )
    [(rc, out, err)] = runner.run(command, stream_logs=False)
    if rc == 0:
        found = [line[4:] for line in out.splitlines() if line.startswith("ray=")]
        return (found[-1].strip() or None) if found else None
    hint = ""
    if wheel is None:
        hint = (
            f" The host's package index must offer {spec}"
            + (" and Ray" if ray else "")
            + "; for a private index, configure pip on the host (PIP_INDEX_URL, or "
            "~/.config/pip/pip.conf)."
        )
    raise DaemonError(
        f"Installing {'runhouse' if wheel else spec}{' with Ray' if ray else ''} on "
        f"{runner.target} failed.{hint}\n{(out + err)[-3000:]}"
    )


def checkout() -> Path | None:
    """The source checkout this Runhouse runs from (a development install), or None for an
    installed release."""
    source = Path(__file__).resolve().parents[2]
    return source if (source / "pyproject.toml").exists() else None


def build_wheel(source: Path | None = None) -> tuple[Path, str]:
    """A wheel of this Runhouse, built from its checkout and cached by content; and that
    content's digest (hosts re-install when it changes, even at the same version)."""
    source = source or checkout()
    if source is None:
        raise DaemonError(
            "Runhouse is installed from a release here, not a checkout: there is no source "
            f"to build a wheel from (hosts install runhouse=={__version__} themselves)."
        )
    package = source / "runhouse"
    cache = Path.home() / ".rh" / "wheels"
    digest = workdir.tree_digest(package)
    target = cache / digest
    existing = sorted(target.glob("runhouse-*.whl"))
    if existing:
        return existing[0], digest
    target.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(target), str(source)],
        capture_output=True,
        text=True,
    )
    wheels = sorted(target.glob("runhouse-*.whl"))
    if result.returncode != 0 or not wheels:
        raise DaemonError(f"Building a runhouse wheel failed:\n{result.stderr[-3000:]}")
    return wheels[0], digest
