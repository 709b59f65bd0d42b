"""``make bench``: run every benchmark script and write their table into README.md.

Each script prints its own lines and, with ``$GLUE_BENCH_JSON`` set, writes its rows;
this collects them into the table between the ``bench:table`` markers of
benchmarks/README.md, with the machine and the date. With ``--only``, the other scripts'
rows and printed summaries stay as the run before wrote them. Nothing passes or fails.

Run: python benchmarks/run_all.py [--quick] [--only local,values]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from common import Row

HERE = Path(__file__).resolve().parent
README = HERE / "README.md"
START, END = "<!-- bench:table:start -->", "<!-- bench:table:end -->"
# script, its arguments (full run, quick run); a script may run more than once
SCRIPTS = [
    ("local", ["--runs", "11"], ["--runs", "3"]),
    ("values", ["--runs", "7"], ["--runs", "3"]),
    ("scale", ["--runs", "7"], ["--runs", "3"]),
    ("board", ["--runs", "7"], ["--runs", "3"]),
    ("install", ["--runs", "3"], ["--runs", "1"]),
    ("notify_hook", ["--runs", "7"], ["--runs", "3"]),
    ("apply_overhead", ["--runs", "5"], ["--quick"]),
    ("changed_only", ["--runs", "5"], ["--quick"]),
    ("changed_only", ["--runs", "5", "--helm", "4"], ["--quick", "--helm", "4"]),
]
# Older scripts that print their own summary: run too, their output pasted under the table.
PRINTING = {
    "bump_remote": (["--runs", "5", "--races", "3"], ["--runs", "3", "--races", "1"]),
}


def machine() -> str:
    cpus = os.cpu_count()
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{platform.machine()}, {cpus} CPUs, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; load average at the start: {load}"
    )


def table(rows: list[tuple[str, Row]]) -> str:
    out = [
        "| script | what | median | min-max | runs | vs peer | target |",
        "|---|---|---|---|---|---|---|",
    ]
    for script, r in rows:
        scale, unit = (1000.0, "ms") if r.unit == "s" else (1.0, r.unit)
        out.append(
            f"| {script} | {r.what} | {r.median * scale:.1f} {unit} | "
            f"{r.low * scale:.1f}-{r.high * scale:.1f} | {r.runs} | {r.ratio} | {r.target} |"
        )
    return "\n".join(out)


def script_of(line: str) -> str:
    """The script column of a table line."""
    return line.split("|")[1].strip()


def earlier(body: str, chosen: set[str]) -> tuple[list[str], dict[str, str], str]:
    """From the table's ``body`` as the run before wrote it: the table lines and the
    printed summaries of scripts not in ``chosen``, and that run's date."""
    lines = [
        line
        for line in body.splitlines()
        if line.startswith("| ")
        and not line.startswith("| script |")
        and script_of(line) not in chosen
    ]
    printed = {
        m.group(1): m.group(0)
        for m in re.finditer(r"`(\w+)\.py`[^\n]*:\n\n```\n.*?\n```\n", body, re.DOTALL)
        if m.group(1) not in chosen
    }
    # An --only run's header names the run its other rows come from.
    date = re.search(r"the others from the run of ([^.]*)\.", body) or re.search(
        r"Date: ([^.]*)\.", body
    )
    return lines, printed, date.group(1) if date else "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    parser.add_argument("--only", default="", help="comma-separated script names")
    args = parser.parse_args()
    chosen = [s for s in SCRIPTS if not args.only or s[0] in args.only.split(",")]
    header = f"Machine: {machine()}. Date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC."
    rows: list[tuple[str, Row]] = []
    for script, full, quick in chosen:
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            print(f"== {script}.py", flush=True)
            done = subprocess.run(
                [sys.executable, str(HERE / f"{script}.py"), *(quick if args.quick else full)],
                env={**os.environ, "GLUE_BENCH_JSON": out.name},
                check=False,
            )
            text = Path(out.name).read_text()
            if done.returncode != 0 or not text:
                print(f"{script}.py failed ({done.returncode}): left out of the table")
                continue
            rows += [(script, Row(**r)) for r in json.loads(text)["rows"]]
    printed = []
    for script, (full, quick) in PRINTING.items():
        if args.only and script not in args.only.split(","):
            continue
        print(f"== {script}.py", flush=True)
        shown = subprocess.run(
            [sys.executable, str(HERE / f"{script}.py"), *(quick if args.quick else full)],
            capture_output=True,
            text=True,
            check=False,
        )
        print(shown.stdout, end="")
        state = "" if shown.returncode == 0 else f" (exit {shown.returncode})"
        printed.append(f"`{script}.py`{state}:\n\n```\n{shown.stdout.strip()}\n```\n")
    text = README.read_text()
    before, rest = text.split(START, 1)
    old_body, after = rest.split(END, 1)
    new_table = table(rows)
    if args.only:
        kept, kept_printed, date = earlier(old_body, set(args.only.split(",")))
        rank = {name: i for i, (name, _, _) in enumerate(SCRIPTS)}
        merged = sorted(
            new_table.splitlines()[2:] + kept, key=lambda line: rank.get(script_of(line), 99)
        )
        new_table = "\n".join(new_table.splitlines()[:2] + merged)
        header += f" Rows of {args.only} from this run; the others from the run of {date}."
        printed = list(kept_printed.values()) + printed
    body = f"{header}\n\n{new_table}\n" + "".join(f"\n{p}" for p in printed)
    README.write_text(f"{before}{START}\n{body}{END}{after}")
    print(f"table written to {README}")


if __name__ == "__main__":
    main()
