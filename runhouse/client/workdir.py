"""Syncing the working dir to where a cluster's workers import it from, honouring .gitignore.

Which files: in a git work tree, what ``git ls-files --cached --others --exclude-standard``
lists (exactly git's rules); elsewhere, a walk that applies every ``.gitignore`` it meets.
Only changed files are copied (size and mtime), and files gone from the source are removed,
so a second sync of an unchanged project does next to nothing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from runhouse.exceptions import RunhouseError

ALWAYS_SKIPPED = {".git", "__pycache__", ".venv", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
TOP_LEVEL_SKIPPED = {"rh"}  # the local store: configs, not code
MAX_FILES = 20_000
MAX_BYTES = 1 << 30


class WorkdirTooLarge(RunhouseError):
    """The working dir holds more than a sync should carry."""


def project_files(root: Path) -> list[str]:
    """Relative paths of the files to sync from ``root``, sorted."""
    listed = _git_files(root)
    files = listed if listed is not None else _walk(root)
    return sorted(
        f
        for f in files
        if not (set(Path(f).parts[:-1]) & ALWAYS_SKIPPED)
        and Path(f).parts[0] not in TOP_LEVEL_SKIPPED
    )


def sync(root: Path, dest: Path) -> Path:
    """Make ``dest`` mirror the project files of ``root``; returns ``dest``."""
    files = project_files(root)
    if len(files) > MAX_FILES:
        raise WorkdirTooLarge(f"{root} has {len(files)} files to sync (limit {MAX_FILES})")
    total = 0
    dest.mkdir(parents=True, exist_ok=True)
    for relative in files:
        source, target = root / relative, dest / relative
        try:
            st = source.stat()
        except FileNotFoundError:
            continue  # listed but gone (deleted since the last commit)
        total += st.st_size
        if total > MAX_BYTES:
            raise WorkdirTooLarge(f"{root} has over {MAX_BYTES >> 20} MiB of files to sync")
        try:
            current = target.stat()
            if current.st_size == st.st_size and current.st_mtime_ns == st.st_mtime_ns:
                continue
        except FileNotFoundError:
            target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    keep = set(files)
    for path in sorted(dest.rglob("*"), reverse=True):
        relative = path.relative_to(dest).as_posix()
        if path.is_file() and relative not in keep:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    return dest


def tree_digest(root: Path) -> str:
    """A digest of the files under ``root`` (names, sizes, mtimes; caches skipped)."""
    digest = hashlib.sha256()
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in ALWAYS_SKIPPED)
        for name in sorted(names):
            st = os.stat(os.path.join(folder, name))
            relative = os.path.relpath(os.path.join(folder, name), root)
            digest.update(f"{relative}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


def mirror_name(root: Path) -> str:
    """A stable folder name for ``root``'s mirror."""
    digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    return f"{root.name}-{digest}"


def _git_files(root: Path) -> list[str] | None:
    try:
        result = subprocess.run(
            [
                "git",
                "-C",
                str(root),
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ],
            capture_output=True,
            timeout=60,
        )
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None  # not a git work tree
    return [p for p in result.stdout.decode().split("\0") if p and (root / p).is_file()]


def _walk(root: Path) -> list[str]:
    import pathspec

    specs: list[tuple[str, pathspec.GitIgnoreSpec]] = []
    files: list[str] = []
    for folder, dirs, names in os.walk(root):
        if len(files) > MAX_FILES:
            raise WorkdirTooLarge(f"{root} has over {MAX_FILES} files to sync")
        relative = Path(folder).relative_to(root).as_posix()
        prefix = "" if relative == "." else relative + "/"
        ignore = Path(folder) / ".gitignore"
        if ignore.is_file():
            lines = ignore.read_text().splitlines()
            specs.append((prefix, pathspec.GitIgnoreSpec.from_lines(lines)))

        def ignored(path: str, is_dir: bool) -> bool:
            for base, spec in specs:
                if path.startswith(base):
                    inner = path[len(base) :] + ("/" if is_dir else "")
                    if spec.match_file(inner):
                        return True
            return False

        dirs[:] = sorted(
            d for d in dirs if d not in ALWAYS_SKIPPED and not ignored(prefix + d, True)
        )
        files += [
            prefix + n
            for n in sorted(names)
            if not ignored(prefix + n, False) and os.path.isfile(os.path.join(folder, n))
        ]
    return files
