"""The one commit path: a :class:`Change`, a :class:`CommitTarget`, a :class:`CommitResult`.

Every command that writes to the deployment repository (bump-tag, promote,
release, rollback) is a pure *planner*: it reads a :class:`View` of the
repository (its ``glue.yaml``, its files, its history) and returns a
:class:`Change` (file edits, commit message, notes, command details). A
:class:`CommitTarget` runs the planner and commits the change: a local
checkout (:class:`gitops_glue.repo.target.Checkout`) or a remote branch
(:class:`gitops_glue.repo.remote.RemoteBranch`, which runs the planner again on
the new tip after a lost push race). :func:`commit_change` is the only entry.
"""

from __future__ import annotations

import abc
import dataclasses
import difflib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from gitops_glue.config import GlueConfig
    from gitops_glue.repo.versions import Reader


# --------------------------------------------------------------------------- change


@dataclass(frozen=True)
class FileEdit:
    """One file's text before and after; ``path`` is repository-relative, with ``/``."""

    path: str
    old_text: str
    new_text: str

    def diff(self) -> str:
        return "".join(
            difflib.unified_diff(
                self.old_text.splitlines(keepends=True),
                self.new_text.splitlines(keepends=True),
                fromfile=f"a/{self.path}",
                tofile=f"b/{self.path}",
            )
        )


class Details(Protocol):
    """What a command reports about its change besides the edits (JSON and text)."""

    def to_json(self) -> dict[str, object]: ...

    def unchanged_text(self) -> str:
        """The one line said when there is nothing to commit."""
        ...

    def changed_lines(self) -> list[str]:
        """Lines said under the commit title after committing."""
        ...

    def dry_run_lines(self) -> list[str]:
        """Lines said between the diff and ``(dry run) would commit`` (often none)."""
        ...


D = TypeVar("D", bound=Details)


@dataclass(frozen=True)
class Change(Generic[D]):
    """What a planner wants committed: any number of file edits, in one commit.

    No edits: nothing to commit (the files are already as wanted). ``skipped``
    says why a command chose to do nothing at all (a policy said no).
    """

    edits: tuple[FileEdit, ...]
    message: str
    details: D
    notes: tuple[str, ...] = ()
    skipped: str | None = None
    #: Problems of the repository's setup found on the way (``glue check``'s file checks).
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        paths = [e.path for e in self.edits]
        if len(set(paths)) != len(paths):
            raise ValueError(f"a change edits each file once: {paths}")

    @property
    def changed(self) -> bool:
        return bool(self.edits)

    @property
    def title(self) -> str:
        return self.message.splitlines()[0] if self.message else ""

    def files(self) -> dict[str, str]:
        """What to write: path -> new text."""
        return {e.path: e.new_text for e in self.edits}

    def diff(self) -> str:
        return "".join(e.diff() for e in sorted(self.edits, key=lambda e: e.path))


def edits_between(old: Mapping[str, str], new: Mapping[str, str]) -> tuple[FileEdit, ...]:
    """The edits that turn ``old`` texts into ``new`` ones (unchanged files left out)."""
    return tuple(
        FileEdit(path, old.get(path, ""), text)
        for path, text in sorted(new.items())
        if old.get(path) != text
    )


# --------------------------------------------------------------------------- result


@dataclass(frozen=True)
class CommitResult(Generic[D]):
    """What became of a change: committed, already in place, dry run, or skipped."""

    change: Change[D]
    commit: str | None  # the new commit id; None when nothing was committed
    dry_run: bool
    remote: str | None = None  # the remote URL (secrets masked) when pushed there
    attempts: int = 1

    @property
    def status(self) -> str:
        if self.change.skipped:
            return "skipped"
        if not self.change.changed:
            return "unchanged"
        return "would-change" if self.dry_run else "changed"

    @property
    def details(self) -> D:
        return self.change.details

    def summary(self) -> str:
        """What happened, in a few lines for a person."""
        c = self.change
        if c.skipped:
            return f"skipped: {c.skipped}"
        if not c.changed:
            return c.details.unchanged_text()
        if self.dry_run:
            lines = [*c.details.dry_run_lines(), f"(dry run) would commit: {c.title}"]
            return c.diff() + "\n" + "\n".join(lines)
        lines = [c.title, *c.details.changed_lines(), f"  commit {self.commit}"]
        if self.remote:
            lines.append(f"  pushed to {self.remote} after {self.attempts} attempt(s)")
        return "\n".join(lines)

    def to_json(self) -> dict[str, object]:
        c = self.change
        data: dict[str, object] = {"status": self.status, **c.details.to_json()}
        data.update(
            files=[e.path for e in c.edits],
            commit=self.commit,
            dry_run=self.dry_run,
            remote=self.remote,
            attempts=self.attempts,
            notes=list(c.notes),
            warnings=list(c.warnings),
            skipped=c.skipped,
        )
        if self.dry_run:
            data["diff"] = c.diff()
        return data


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class HistoryCommit:
    sha: str
    message: str
    parents: tuple[str, ...]

    @property
    def title(self) -> str:
        return self.message.splitlines()[0] if self.message else ""


@dataclass(frozen=True)
class Reverted:
    """The outcome of reverting commits onto the tip, in memory.

    ``conflict``: the commit whose revert clashed with later changes, and the
    paths; else ``old_texts``/``new_texts`` of every path the commits changed
    (None: the file does not exist).
    """

    old_texts: Mapping[str, str | None] = field(default_factory=dict)
    new_texts: Mapping[str, str | None] = field(default_factory=dict)
    conflict: str | None = None
    conflict_paths: tuple[str, ...] = ()


class History(Protocol):
    """The repository's commits, as far as a planner needs them (rollback)."""

    def first_parents(self) -> Iterator[HistoryCommit]:
        """The commits from the tip back along first parents."""
        ...

    def resolve(self, rev: str) -> str | None:
        """The commit id ``rev`` names, or None."""
        ...

    def changed_paths(self, sha: str) -> tuple[str, ...]:
        """The paths ``sha`` changes against its first parent, sorted."""
        ...

    def revert(self, shas: Sequence[str]) -> Reverted:
        """Revert ``shas`` (in this order) onto the tip tree, three-way, in memory."""
        ...


@dataclass(frozen=True)
class View:
    """A planner's view of the branch it plans on: its config, files and history."""

    config: GlueConfig
    read: Reader
    history: History


Plan = Callable[[View], Change[D]]


# --------------------------------------------------------------------------- target


@dataclass(frozen=True)
class Landed(Generic[D]):
    """What a target did with the change planned on its (last) tip."""

    change: Change[D]
    commit: str | None
    attempts: int = 1


class CommitTarget(abc.ABC):
    """Where a change is committed: a checkout, or a remote branch."""

    #: The remote's URL with secrets masked, for results; None for a checkout.
    remote: str | None = None

    @abc.abstractmethod
    def config(self) -> GlueConfig:
        """The ``glue.yaml`` of the target (for work done before planning)."""

    @abc.abstractmethod
    def land(self, plan: Plan[D], *, dry_run: bool, history: bool) -> Landed[D]:
        """Plan on the target's tip and commit the change (unless dry run or empty).

        ``history``: the planner reads :attr:`View.history` beyond the tip.
        """

    def start(self, *, push: bool = True, history: bool = False) -> None:  # noqa: B027
        """Begin slow preparations now (a remote's fetch); :meth:`land` works without."""

    def close(self) -> None:  # noqa: B027
        """Release what :meth:`start` or :meth:`land` holds (temp repositories, connections)."""

    def __enter__(self) -> CommitTarget:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def commit_change(
    target: CommitTarget,
    plan: Plan[D],
    *,
    dry_run: bool = False,
    history: bool = False,
    override_hold: bool = False,
) -> CommitResult[D]:
    """Plan on ``target`` and commit the change there: the one way glue commits.

    The cheap checks of ``glue check`` (values files exist, tag keys resolve) run on
    the same view and come back as warnings: a broken setup is said before it bites.
    Holds and rejected versions (:func:`gitops_glue.repo.holds.guard`) are enforced here,
    for every command; ``override_hold`` lets a held service move, said in the commit.
    """

    def checked(view: View) -> Change[D]:
        from gitops_glue.errors import GlueError
        from gitops_glue.repo.check import file_problems
        from gitops_glue.repo.holds import guard

        change = guard(view, plan(view), override_hold=override_hold)
        try:
            problems = file_problems(view.config, view.read, "glue.yaml")
            found = tuple(p.text() for p in problems)
        except GlueError as exc:  # a check that cannot run never stops the write
            found = (str(exc),)
        return dataclasses.replace(change, warnings=found) if found else change

    landed = target.land(checked, dry_run=dry_run, history=history)
    return CommitResult(landed.change, landed.commit, dry_run, target.remote, landed.attempts)


# --------------------------------------------------------------------------- trailers


def parse_trailers(message: str) -> list[tuple[str, str]]:
    """The trailers of a commit message (the last paragraph's ``Key: value`` lines), in order."""
    paragraphs = [p for p in message.strip().split("\n\n") if p.strip()]
    if len(paragraphs) < 2:
        return []
    out = []
    for line in paragraphs[-1].splitlines():
        key, sep, value = line.partition(": ")
        if not sep or not key or not key.replace("-", "").isalnum():
            return []  # not a trailer block
        out.append((key, value.strip()))
    return out
