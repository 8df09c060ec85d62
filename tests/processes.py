"""Run several real processes so that they start their work at the same moment."""

from __future__ import annotations

import contextlib
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
