"""The command runner interface: commands with live output, Python snippets, file sync.

    runner = SSHRunner(host="10.0.0.4", user="ubuntu", key="~/.ssh/id_ed25519")
    [(rc, out, err)] = runner.run(["nvidia-smi"])
    runner.rsync("./data", "~/data", up=True)

An implementation writes ``argv`` (how to run one shell command there) and ``rsync``; the
streaming, collecting and result shape are shared.
"""

from __future__ import annotations

import os
import re
import selectors
import shlex
import subprocess
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence

Result = tuple[int, str, str]
# rsync --info=progress2 redraws "  1,234,567  12%  10.50MB/s  0:00:10 (xfr#5, ...)" lines.
_RSYNC_DONE = re.compile(rb"^\s*([\d,.']+)\s+\d+%")


class CommandRunner(ABC):
    """Runs shell commands on one machine."""

    @abstractmethod
    def argv(self, command: str) -> list[str]:
        """The local argv that runs the shell ``command`` on the machine."""

    @abstractmethod
    def rsync(
        self,
        source: str,
        dest: str,
        up: bool = True,
        gitignore: bool = True,
        progress: Callable[[int], None] | None = None,
        compress: bool = True,
    ) -> None:
        """Copy ``source`` to ``dest`` (to the machine if ``up``, else from it), making the
        folders above ``dest`` as needed; ``progress`` gets the bytes sent so far;
        ``compress``: compressed on the way (where there is a way)."""

    def check_connection(self, result: Result, command: str) -> None:
        """Raise if ``result`` is a failure to reach the machine (not the command's own)."""
        return None

    def run(
        self,
        commands: str | Sequence[str],
        env: Mapping[str, str] | None = None,
        stream_logs: bool = True,
        cwd: str | None = None,
        path: str | None = None,
    ) -> list[Result]:
        """Run each command in order (``path``: a folder put first on the ``PATH`` there);
        returns ``[(returncode, stdout, stderr)]``."""
        results = []
        for command in [commands] if isinstance(commands, str) else list(commands):
            full = command
            if env:
                exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
                full = f"export {exports}; {full}"
            if path:
                full = f'export PATH={shlex.quote(path)}:"$PATH"; {full}'
            if cwd:
                full = f"cd {shlex.quote(cwd)} && {full}"
            result = _stream(self.argv(full), stream_logs)
            self.check_connection(result, command)
            results.append(result)
        return results

    def run_python(self, lines: str | Sequence[str], stream_logs: bool = True) -> Result:
        """Run Python code (lines joined) with the machine's ``python3``."""
        code = lines if isinstance(lines, str) else "\n".join(lines)
        return self.run([f"python3 -c {shlex.quote(code)}"], stream_logs=stream_logs)[0]


def run_rsync(
    argv: list[str], env: Mapping[str, str] | None, progress: Callable[[int], None] | None
) -> Result:
    """Run an rsync ``argv``; with ``progress``, it runs with ``--info=progress2`` and
    ``progress`` gets the bytes sent so far as rsync redraws its line."""
    if progress is None:
        done = subprocess.run(argv, env=env, capture_output=True, text=True)
        return done.returncode, done.stdout, done.stderr
    argv = [argv[0], "--info=progress2", *argv[1:]]
    proc = subprocess.Popen(
        argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    stdout, stderr = proc.stdout, proc.stderr
    errors: list[bytes] = []
    reader = threading.Thread(target=lambda: errors.append(stderr.read()), daemon=True)
    reader.start()
    output, pending = [], b""
    try:
        while chunk := os.read(stdout.fileno(), 65536):
            output.append(chunk)
            *lines, pending = re.split(rb"[\r\n]", pending + chunk)
            for line in reversed(lines):  # the newest count is enough
                if match := _RSYNC_DONE.match(line):
                    progress(int(re.sub(rb"\D", b"", match.group(1))))
                    break
    except BaseException:
        proc.kill()  # the listener failed (or Ctrl-C): rsync must not go on unseen
        raise
    finally:
        returncode = proc.wait()
        reader.join()
        stdout.close()
        stderr.close()
    text = b"".join(output).decode("utf-8", "replace")
    return returncode, text, b"".join(errors).decode("utf-8", "replace")


def _stream(argv: list[str], stream_logs: bool) -> Result:
    # Both pipes are read as output arrives, so a long command shows progress live.
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    chunks: dict[int, list[bytes]] = {1: [], 2: []}
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ, 1)
        selector.register(proc.stderr, selectors.EVENT_READ, 2)
        open_pipes = 2
        while open_pipes:
            for key, _ in selector.select():
                data = os.read(key.fileobj.fileno(), 65536)  # type: ignore[union-attr]
                if not data:
                    selector.unregister(key.fileobj)
                    open_pipes -= 1
                    continue
                chunks[key.data].append(data)
                if stream_logs:
                    target = sys.stdout if key.data == 1 else sys.stderr
                    target.write(data.decode("utf-8", "replace"))
                    target.flush()
    returncode = proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    return (
        returncode,
        b"".join(chunks[1]).decode("utf-8", "replace"),
        b"".join(chunks[2]).decode("utf-8", "replace"),
    )
