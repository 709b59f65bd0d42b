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
import difflib
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

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
class Proposal:
    """Merge-request mode: what became of the merge request that carries a change."""

    #: ``opened``, ``updated``, ``unchanged`` (already as it should be), ``closed`` (the
    #: base branch already has the change), ``kept`` (it holds a newer change), ``none``.
    action: str
    branch: str
    number: int | None = None
    url: str = ""
    note: str = ""

    def line(self) -> str:
        if self.number is None:
            return f"  merge request: {self.action} ({self.branch}){self._note()}"
        return f"  merge request #{self.number} {self.action}: {self.url}{self._note()}"

    def _note(self) -> str:
        return f"; {self.note}" if self.note else ""

    def to_json(self) -> dict[str, object]:
        return {
            "action": self.action,
            "branch": self.branch,
            "number": self.number,
            "url": self.url,
            "note": self.note,
        }


@dataclass(frozen=True)
class CommitResult(Generic[D]):
    """What became of a change: committed, already in place, dry run, or skipped."""

    change: Change[D]
    commit: str | None  # the new commit id; None when nothing was committed
    dry_run: bool
    remote: str | None = None  # the remote URL (secrets masked) when pushed there
    attempts: int = 1
    #: Merge-request mode: the request that carries the change (the commit is on its branch).
    proposal: Proposal | None = None

    @property
    def status(self) -> str:
        if self.change.skipped:
            return "skipped"
        if not self.change.changed:
            return "unchanged"
        if self.dry_run:
            return "would-change"
        return "proposed" if self.proposal is not None else "changed"

    @property
    def details(self) -> D:
        return self.change.details

    def summary(self) -> str:
        """What happened, in a few lines for a person."""
        c = self.change
        if c.skipped:
            return f"skipped: {c.skipped}" + (
                "\n" + self.proposal.line() if self.proposal is not None else ""
            )
        if not c.changed:
            text = c.details.unchanged_text()
            return text + ("\n" + self.proposal.line() if self.proposal is not None else "")
        if self.dry_run:
            lines = [*c.details.dry_run_lines(), f"(dry run) would commit: {c.title}"]
            return c.diff() + "\n" + "\n".join(lines)
        lines = [c.title, *c.details.changed_lines(), f"  commit {self.commit}"]
        if self.proposal is not None:
            lines.append(f"  pushed to {self.proposal.branch} of {self.remote}")
            lines.append(self.proposal.line())
        elif self.remote:
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
            merge_request=self.proposal.to_json() if self.proposal is not None else None,
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
    at: str = ""  # committed at: UTC, ISO 8601 (glue status's history)
    author: str = ""  # the author's name

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
    proposal: Proposal | None = None


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


#: A rule every change passes before it is committed (holds, rejected tags, setup
#: warnings): it returns the change, maybe with notes or warnings, or raises GlueError.
Guard = Callable[[View, Change[Any]], Change[Any]]


def commit_change(
    target: CommitTarget,
    plan: Plan[D],
    *,
    guards: Sequence[Guard] = (),
    dry_run: bool = False,
    history: bool = False,
) -> CommitResult[D]:
    """Plan on ``target``, pass the change through ``guards`` in order, and commit it
    there: the one way glue commits. The caller names the guards its change must pass
    (:func:`gitops_glue.repo.holds.guards` for a change of versions)."""

    def guarded(view: View) -> Change[D]:
        change = plan(view)
        for rule in guards:
            change = rule(view, change)
        return change

    landed = target.land(guarded, dry_run=dry_run, history=history)
    return CommitResult(
        landed.change, landed.commit, dry_run, target.remote, landed.attempts, landed.proposal
    )


# --------------------------------------------------------------------------- trailers
#
# A port of git's trailer reader (trailer.c, git 2.39-2.44; ``git interpret-trailers
# --parse``), so that glue reads exactly the trailers git reads: lines end at "\n" and
# nowhere else (never at U+2028 or U+0085, as ``str.splitlines`` would), whitespace is
# git's (space, tab, CR, LF), the block is the message's last paragraph when all its
# lines are trailers (or a quarter, with a ``Signed-off-by:``), a line starting with
# whitespace continues the trailer above, ``#`` lines are comments, and (unless
# ``divider=False``) a line starting with ``---`` and whitespace ends the message.

_GIT_SPACE = " \t\n\r"
_GIT_GENERATED = ("Signed-off-by: ", "(cherry picked from commit ")
_COMMENT = "#"
_SCISSORS = "\n# ------------------------ >8 ------------------------"


def _git_isspace(ch: str) -> bool:
    return ch != "" and ch in _GIT_SPACE


def _git_isalnum(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def _line_at(buf: str, pos: int) -> str:
    """The line starting at ``pos``, without its newline."""
    end = buf.find("\n", pos)
    return buf[pos:] if end < 0 else buf[pos:end]


def _next_line(buf: str, pos: int) -> int:
    end = buf.find("\n", pos)
    return len(buf) if end < 0 else end + 1


def _is_blank(line: str) -> bool:
    return all(_git_isspace(ch) for ch in line)


def _find_separator(line: str) -> int:
    """git's find_separator with the default separator ``:``: its position, or -1."""
    whitespace_found = False
    for i, ch in enumerate(line):
        if ch == ":":
            return i
        if not whitespace_found and (_git_isalnum(ch) or ch == "-"):
            continue
        if i != 0 and ch in " \t":
            whitespace_found = True
            continue
        break
    return -1


def _ignored_bytes(buf: str, length: int) -> int:
    """git's ignored_log_message_bytes: trailing comments, blank lines, Conflicts: lists."""
    cutoff = length
    if buf.startswith(_SCISSORS[1:]):
        cutoff = 0
    else:
        found = buf.find(_SCISSORS)
        if found >= 0 and found + 1 < length:
            cutoff = found + 1
    boc = bol = 0
    in_conflicts = False
    while bol < cutoff:
        nl = buf.find("\n", bol, cutoff)
        nxt = cutoff if nl < 0 else nl + 1
        if buf.startswith(_COMMENT, bol) or buf[bol] == "\n":
            if not boc:
                boc = bol
        elif buf.startswith("Conflicts:\n", bol):
            in_conflicts = True
            if not boc:
                boc = bol
        elif in_conflicts and buf[bol] == "\t":
            pass
        elif boc:
            boc = 0
            in_conflicts = False
        bol = nxt
    return length - boc if boc else length - cutoff


def _last_line(buf: str, length: int) -> int:
    if length == 0:
        return -1
    if length == 1:
        return 0
    found = buf.rfind("\n", 0, length - 1)
    return found + 1


def _block_start(buf: str, length: int) -> int:
    """git's find_trailer_block_start: where the trailers start, or ``length``."""
    s = 0
    while s < length:
        if not buf.startswith(_COMMENT, s) and _is_blank(_line_at(buf, s)):
            break
        s = _next_line(buf, s)
    end_of_title = s
    only_spaces = True
    recognized = False
    trailer_lines = non_trailer_lines = continuation = 0
    pos = _last_line(buf, length)
    while pos >= end_of_title:
        line = _line_at(buf, pos)
        if line.startswith(_COMMENT):
            non_trailer_lines += continuation
            continuation = 0
        elif _is_blank(line):
            if not only_spaces:
                non_trailer_lines += continuation
                if recognized and trailer_lines * 3 >= non_trailer_lines:
                    return _next_line(buf, pos)
                if trailer_lines and not non_trailer_lines:
                    return _next_line(buf, pos)
                return length
        else:
            only_spaces = False
            if buf.startswith(_GIT_GENERATED, pos):
                trailer_lines += 1
                continuation = 0
                recognized = True
            elif _find_separator(line) >= 1 and not _git_isspace(line[:1]):
                trailer_lines += 1
                continuation = 0
            elif _git_isspace(line[:1]):
                continuation += 1
            else:
                non_trailer_lines += 1 + continuation
                continuation = 0
        pos = _last_line(buf, pos)
    return length


def _unfold(value: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        i += 1
        if ch == "\n":
            while i < len(value) and _git_isspace(value[i]):
                i += 1
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out).strip(_GIT_SPACE)


def parse_trailers(message: str, *, divider: bool = True) -> list[tuple[str, str]]:
    """The trailers of a commit message, in order, read the way
    ``git interpret-trailers --parse`` reads them (``divider=False``: with
    ``--no-divider``, as ``git log --format=%(trailers)`` reads a commit)."""
    buf = message.split("\0", 1)[0]  # git reads a C string
    end = len(buf)
    if divider:
        pos = 0
        while pos < len(buf):
            if buf.startswith("---", pos) and _git_isspace(buf[pos + 3 : pos + 4]):
                end = pos
                break
            pos = _next_line(buf, pos)
    end -= _ignored_bytes(buf, end)
    start = _block_start(buf, end)
    lines = buf[start:end].split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    joined: list[str] = []
    last_is_trailer = False
    for line in lines:
        if last_is_trailer and (line == "" or _git_isspace(line[0])):  # "" was a "\n"
            joined[-1] += "\n" + line
            continue
        joined.append(line)
        last_is_trailer = _find_separator(line) >= 1
    out: list[tuple[str, str]] = []
    for text in joined:
        if text.startswith(_COMMENT):
            continue
        sep = _find_separator(text)
        if sep >= 1:
            out.append((text[:sep].strip(_GIT_SPACE), _unfold(text[sep + 1 :].strip(_GIT_SPACE))))
    return out


#: How glue writes a trailer line: a key of letters, digits and dashes, ": ", a value.
_GLUE_TRAILER = re.compile(r"([A-Za-z0-9][A-Za-z0-9-]*): (\S(?:.*\S)?)")


def glue_trailers(message: str) -> list[tuple[str, str]] | None:
    """The trailers glue wrote in ``message``: its last paragraph, when every line of it
    is a ``Key: value`` line as glue writes them (one line each, no control character or
    line separator, nothing after the paragraph) and git reads the very same trailers from
    the message (:func:`parse_trailers`, with and without the ``---`` divider). None when
    the message ends otherwise: such trailers are not glue's, and nothing glue does may
    rest on them."""
    from gitops_glue.inputs import find_line_breaker

    text = message[:-1] if message.endswith("\n") else message
    _head, sep, last = text.rpartition("\n\n")
    if not sep or not last:
        return None
    found: list[tuple[str, str]] = []
    for line in last.split("\n"):
        m = _GLUE_TRAILER.fullmatch(line)
        if m is None or find_line_breaker(line):
            return None
        found.append((m[1], m[2]))
    if parse_trailers(message) != found or parse_trailers(message, divider=False) != found:
        return None
    return found
