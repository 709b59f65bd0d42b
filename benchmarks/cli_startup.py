"""Time `glue --help` and `glue status` start-up: medians of repeated runs.

Run: python benchmarks/cli_startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def median_seconds(cmd: list[str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    python = median_seconds([sys.executable, "-c", "pass"], runs)
    helptime = median_seconds([sys.executable, "-m", "gitops_glue", "--help"], runs)
    status = median_seconds([sys.executable, "-m", "gitops_glue", "status"], runs)
    print(f"python -c pass      median {python * 1000:7.1f} ms")
    print(f"glue --help         median {helptime * 1000:7.1f} ms  ({helptime / python:.1f}x bare)")
    print(f"glue status         median {status * 1000:7.1f} ms  ({status / python:.1f}x bare)")


if __name__ == "__main__":
    main()
