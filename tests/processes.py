"""Real processes for tests: several started so that they begin their work at the same moment,
and a server child stopped by its PID."""

from __future__ import annotations

import contextlib
import signal
import subprocess
from collections.abc import Sequence


def run_together(commands: Sequence[Sequence[str]], timeout: float = 120) -> None:
    """Start every command, wait until each has read up to its `input()`-style gate (it
    prints "ready"), release them all at once, and check that each exits with 0."""
    with contextlib.ExitStack() as stack:
        procs = [
            stack.enter_context(
                subprocess.Popen(
                    list(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
                )
            )
            for command in commands
        ]
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.close()
        for proc in procs:
            assert proc.wait(timeout=timeout) == 0


def stop_child(proc: subprocess.Popen[bytes], within: float) -> int:
    """Stop a server child by its PID: SIGINT, then SIGKILL if it is not gone ``within``
    seconds; its exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(within)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return int(proc.returncode)
