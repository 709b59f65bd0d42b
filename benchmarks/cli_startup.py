"""Time `glue --help` and `glue status` start-up: median and min-max of repeated runs.

Run: python benchmarks/cli_startup.py [--runs N]   (or `make bench`)
Prints numbers; it never passes or fails (the target, 0.15 s median for --help, is in
benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Timing:
    median: float
    low: float
    high: float


def measure(cmd: list[str], runs: int) -> Timing:
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)  # warm the caches
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
        samples.append(time.perf_counter() - start)
    return Timing(statistics.median(samples), min(samples), max(samples))


def line(label: str, timing: Timing, bare: Timing | None = None) -> str:
    text = (
        f"{label:<18} median {timing.median * 1000:7.1f} ms"
        f"  (min {timing.low * 1000:6.1f}, max {timing.high * 1000:6.1f})"
    )
    if bare is not None:
        text += f"  {timing.median / bare.median:.1f}x bare python"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    bare = measure([sys.executable, "-c", "pass"], runs)
    helptime = measure([sys.executable, "-m", "gitops_glue", "--help"], runs)
    status = measure([sys.executable, "-m", "gitops_glue", "status"], runs)
    print(f"{runs} runs each, {sys.executable}")
    print(line("python -c pass", bare))
    print(line("glue --help", helptime, bare))
    print(line("glue status", status, bare))


if __name__ == "__main__":
    main()
