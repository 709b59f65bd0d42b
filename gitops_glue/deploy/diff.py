"""``glue diff``: what a deploy would change, from ``helmfile diff``."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from gitops_glue.deploy.helmfile import Target, list_releases
from gitops_glue.errors import ExitCode, OperationError
from gitops_glue.tools import ANSI, helmfile_env, tail

if TYPE_CHECKING:
    from gitops_glue.cluster.context import ClusterRef

_COMPARING = re.compile(r"^Comparing release=(?P<release>[^,\s]+)")
_CHANGE = re.compile(
    r"^(?P<ns>[^,\s]+), (?P<name>[^,\s]+), (?P<kind>\S+)(?: \((?P<group>[^)]*)\))?"
    r" has (?P<what>changed|been added|been removed)"
)


@dataclass(frozen=True)
class DiffResult:
    env: str
    changes: dict[str, list[str]]  # release -> "Deployment a has changed" lines
    unchanged: list[str]
    output: str  # helmfile's diff, secrets suppressed

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.CHANGES if self.changes else ExitCode.OK

    def summary_markdown(self) -> str:
        lines = [f"### glue diff: {self.env}", ""]
        if not self.changes:
            lines.append("No changes.")
        for release, items in self.changes.items():
            lines.append(f"- **{release}** would change:")
            lines += [f"  - {item}" for item in items]
        if self.unchanged:
            lines.append(f"- unchanged: {', '.join(self.unchanged)}")
        body = "\n".join(lines)
        diff = self.output.strip()
        if diff:
            body += "\n\n<details><summary>diff</summary>\n\n```diff\n" + diff + "\n```\n</details>"
        return body[: 1024 * 1000] + "\n"

    def text(self) -> str:
        lines = [f"{r}: would change ({len(c)} resource(s))" for r, c in self.changes.items()]
        lines += [f"{r}: no changes" for r in self.unchanged]
        return (self.output.rstrip() + "\n\n" if self.output.strip() else "") + "\n".join(lines)

    def to_json(self) -> dict[str, object]:
        return {
            "environment": self.env,
            "changed": bool(self.changes),
            "changes": self.changes,
            "unchanged": self.unchanged,
        }


def parse_diff(output: str, releases: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    """helmfile's diff output -> (release -> changed resources, unchanged releases)."""
    changes: dict[str, list[str]] = {}
    current: str | None = None
    for raw in output.splitlines():
        line = ANSI.sub("", raw)
        m = _COMPARING.match(line)
        if m:
            current = m.group("release")
            continue
        c = _CHANGE.match(line)
        if c:
            release = current or c.group("name")
            kind = c.group("kind") + (f" ({c.group('group')})" if c.group("group") else "")
            changes.setdefault(release, []).append(
                f"{kind} {c.group('ns')}/{c.group('name')} has {c.group('what')}"
            )
    return changes, [r for r in releases if r not in changes]


def result_of(env: str, code: int, output: str, releases: list[str]) -> DiffResult:
    """The result of a ``helmfile diff --detailed-exitcode`` that exited ``code``."""
    output = ANSI.sub("", output)
    changes, unchanged = parse_diff(output, releases)
    if code == 2 and not changes:
        changes = {"(unknown)": ["helmfile reported changes it did not list"]}
    return DiffResult(env, changes, unchanged, output)


def diff(target: Target, where: ClusterRef | None = None) -> DiffResult:
    """``helmfile diff`` of ``target`` against its environment's cluster (``where``)."""
    if where is not None:
        target = replace(target, kube_args=where.args)
    major = target.tools.check()
    names = [r.name for r in list_releases(target)]
    proc = subprocess.run(
        # One release at a time, so each release's diff follows its "Comparing" line.
        target.helmfile_args(
            "diff", "--detailed-exitcode", "--suppress-secrets", "--concurrency", "1"
        ),
        cwd=target.root,
        capture_output=True,
        text=True,
        check=False,
        env=where.tool_env(helmfile_env(major)) if where else helmfile_env(major),
        timeout=1800,
    )
    if proc.returncode not in (0, 2):
        raise OperationError(
            f"helmfile diff failed for {target.env!r} "
            f"(exit {proc.returncode}):\n{tail(proc.stderr or proc.stdout, 30)}"
        )
    return result_of(target.env, proc.returncode, proc.stdout, names)
