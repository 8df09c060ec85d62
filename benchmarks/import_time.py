"""How long `import runhouse` takes, as a ratio to starting a bare interpreter.

Also measured: the first use of the main factories (``rh.function``, ``rh.module``,
``rh.cluster``), since exports load lazily and that is the cost a script really pays.

Prints one JSON line. The target (issue 2) is an import under 300 ms on the reference
machine; the baseline `python -c pass` is measured in the same run because absolute
times drift on shared machines.

    .venv/bin/python benchmarks/import_time.py [--runs 30]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time


def p50_seconds(code: str, runs: int) -> float:
    """Median wall time of a fresh interpreter running ``code``."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Measure the baseline and the import, interleaved warm-up first."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    first_use = "import runhouse as rh; rh.function; rh.module; rh.cluster"
    p50_seconds(first_use, 3)  # warm the page cache and .pyc files
    baseline = p50_seconds("pass", args.runs)
    with_import = p50_seconds("import runhouse", args.runs)
    with_first_use = p50_seconds(first_use, args.runs)
    import_ms = (with_import - baseline) * 1000
    first_use_ms = (with_first_use - baseline) * 1000
    print(
        json.dumps(
            {
                "benchmark": "import_time",
                "runs": args.runs,
                "interpreter_p50_ms": round(baseline * 1000, 1),
                "interpreter_plus_import_p50_ms": round(with_import * 1000, 1),
                "import_ms": round(import_ms, 1),
                "ratio_to_bare_interpreter": round(with_import / baseline, 2),
                "first_use_ms": round(first_use_ms, 1),
                "first_use_ratio_to_bare_interpreter": round(with_first_use / baseline, 2),
                "target_import_ms": 300,
                "meets_target": import_ms < 300 and first_use_ms < 300,
            }
        )
    )


if __name__ == "__main__":
    main()
