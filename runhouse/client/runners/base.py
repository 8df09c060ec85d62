"""The command runner interface: commands with live output, Python snippets, file sync.

    runner = SSHRunner(host="10.0.0.4", user="ubuntu", key="~/.ssh/id_ed25519")
    [(rc, out, err)] = runner.run(["nvidia-smi"])
    runner.rsync("./data", "~/data", up=True)

An implementation writes ``argv`` (how to run one shell command there) and ``rsync``; the
streaming, collecting and result shape are shared.
"""

from __future__ import annotations

import os
import selectors
import shlex
import subprocess
import sys
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence

Result = tuple[int, str, str]


class CommandRunner(ABC):
    """Runs shell commands on one machine."""

    @abstractmethod
    def argv(self, command: str) -> list[str]:
        """The local argv that runs the shell ``command`` on the machine."""

    @abstractmethod
    def rsync(self, source: str, dest: str, up: bool = True, gitignore: bool = True) -> None:
        """Copy ``source`` to ``dest`` (to the machine if ``up``, else from it), making the
        folders above ``dest`` as needed."""

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
