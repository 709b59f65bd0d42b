"""``glue rollback``: revert an environment's last glue change(s) as a new commit.

A glue commit is recognised by its trailers, never by its wording or author:
``Glue-Environment: ENV`` (every bump, promote and release has it) and
``Glue-Action`` (``promote``, ``release``, ``rollback``; absent on a bump).
History is walked along first parents from the branch tip:

- without ``--to-commit``: the newest glue commit of ENV that is not already rolled
  back is reverted;
- with ``--to-commit REV``: every such commit after REV is reverted, newest
  first, in one commit.

Rollback commits say what they reverted (``Glue-Reverts: SHA``, one per
commit), so a second rollback goes one further back instead of undoing the
first. Commits without ENV's trailers are never reverted; a glue commit that
touches files outside the values files ENV's services are read from, or whose
lines were changed again by a later commit, is refused (the revert would take
someone else's change with it, or guess). The revert is git's three-way revert
on trees, so unrelated later changes to the same file stay.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gitops_glue import inputs
from gitops_glue.config import GlueConfig
from gitops_glue.errors import UsageError
from gitops_glue.integrations.ci import CiContext
from gitops_glue.repo import holds, versions
from gitops_glue.repo.commit import (
    Change,
    CommitResult,
    CommitTarget,
    FileEdit,
    Guard,
    History,
    HistoryCommit,
    View,
    commit_change,
    glue_trailers,
)
from gitops_glue.repo.message import trailer_lines, with_skip_ci


@dataclass(frozen=True)
class RollbackRequest:
    env: str
    to_commit: str | None = None  # None: only the last glue change
    ci: CiContext = field(default_factory=CiContext)
    #: ``--hold --reason``: hold the rolled-back services in ENV in the same commit.
    hold_reason: str | None = None
    #: ``--reject --reason``: reject the tags rolled back from, in the same commit.
    reject_reason: str | None = None
    actor: str | None = None  # who holds/rejects (``--actor``/``GLUE_ACTOR``)
    #: Only glue commits that name one of these services (``Glue-Service``); None: all.
    services: tuple[str, ...] | None = None

    @classmethod
    def of(
        cls,
        env: str,
        to_commit: str | None = None,
        *,
        ci: CiContext | None = None,
        hold: bool = False,
        reject: bool = False,
        reason: str | None = None,
        actor: str | None = None,
    ) -> RollbackRequest:
        """The request as ``glue rollback`` takes it: one ``--reason`` for ``--hold``
        and/or ``--reject``, and none without them."""
        if reason is not None and not (hold or reject):
            raise UsageError("--reason goes with --hold or --reject")
        return cls(
            env,
            to_commit,
            ci or CiContext(),
            hold_reason=(reason or "") if hold else None,
            reject_reason=(reason or "") if reject else None,
            actor=actor,
        )


@dataclass(frozen=True)
class GlueCommit:
    sha: str
    title: str
    action: str  # bump, promote, release or rollback
    services: tuple[str, ...]
    reverts: tuple[str, ...]  # what a rollback commit reverted

    def to_json(self) -> dict[str, object]:
        return {
            "commit": self.sha,
            "title": self.title,
            "action": self.action,
            "services": list(self.services),
        }


def _title(commit: HistoryCommit) -> str:
    """The commit's first line (up to the first newline, as git has it), made safe to
    quote on one line of glue's message."""
    first = commit.message.split("\n", 1)[0]
    return re.sub(f"[{inputs.LINE_BREAKERS}]", " ", first).strip()[:200]


def describe(commit: HistoryCommit, env: str) -> GlueCommit | None:
    """``commit`` as a glue commit of ``env``, or None when it is not one.

    Only the trailers glue writes count (:func:`glue_trailers`: the last paragraph,
    every line a plain ``Key: value``, read the same by git). A commit that names
    ``Glue-Environment: ENV`` on a line of its own but not in such a paragraph is
    refused: it is not glue's, and guessing what it moved could revert the wrong change.
    """
    trailers = glue_trailers(commit.message)
    envs = [v for k, v in trailers or () if k == "Glue-Environment"]
    actions = [v for k, v in trailers or () if k == "Glue-Action"]
    if trailers is None or len(envs) > 1 or len(actions) > 1:
        if re.search(
            rf"^[ \t]*Glue-Environment[ \t]*:[ \t]*{re.escape(env)}[ \t\r]*$", commit.message, re.M
        ):
            raise UsageError(
                f"{commit.sha[:10]} ({_title(commit)}) names Glue-Environment: {env}, but "
                "not in a trailer paragraph as glue writes it (the message's last paragraph, "
                "one Glue-Environment, plain Key: value lines without control characters "
                "or line separators): not trusting it",
                hint="revert that commit by hand with git revert if it is the change to undo",
            )
        return None
    if envs != [env]:
        return None
    return GlueCommit(
        sha=commit.sha,
        title=_title(commit),
        action=actions[0] if actions else "bump",
        services=tuple(v for k, v in trailers if k == "Glue-Service"),
        reverts=tuple(v for k, v in trailers if k == "Glue-Reverts"),
    )


@dataclass(frozen=True)
class Rollback:
    """What a rollback reverts, for results."""

    env: str
    reverted: tuple[GlueCommit, ...]  # newest first
    skipped: int  # commits of others (or other environments) left alone on the way

    def _listing(self) -> list[str]:
        return [f"  {c.sha[:10]} {c.title}" for c in self.reverted]

    def to_json(self) -> dict[str, object]:
        return {"environment": self.env, "reverted": [c.to_json() for c in self.reverted]}

    def unchanged_text(self) -> str:
        if not self.reverted:
            return f"nothing to roll back in {self.env}"
        return "unchanged: the changes of these commits are already undone:\n" + "\n".join(
            self._listing()
        )

    def changed_lines(self) -> list[str]:
        return ["  reverted:", *self._listing()]

    def dry_run_lines(self) -> list[str]:
        return [f"(dry run) would revert in {self.env}:", *self._listing()]


RollbackChange = Change[Rollback]
RollbackResult = CommitResult[Rollback]


def rollback_message(env: str, reverted: list[GlueCommit], ci: CiContext) -> str:
    if len(reverted) == 1:
        title = f"revert({env}): roll back {reverted[0].title}"
    else:
        title = f"revert({env}): roll back {len(reverted)} changes"
    lines = [title, "", "Reverts:"]
    lines += [f"- {c.sha[:10]} {c.title}" for c in reverted]
    services = sorted({s for c in reverted for s in c.services})
    trailers = [("Glue-Environment", env), ("Glue-Action", "rollback")]
    trailers += [("Glue-Reverts", c.sha) for c in reverted]
    trailers += [("Glue-Service", s) for s in services]
    trailers += [("Pipeline", ci.pipeline_url), ("Triggered-By", ci.actor)]
    lines += ["", *trailer_lines(trailers)]
    return "\n".join(lines) + "\n"


_UNSHALLOW = (
    "this clone holds only the newest commits (git clone --depth); fetch the history glue "
    "walks with git fetch --unshallow (in CI: a full clone, like GIT_DEPTH: 0 or "
    "fetch-depth: 0), then run glue rollback again"
)


def plan_rollback(config: GlueConfig, history: History, req: RollbackRequest) -> RollbackChange:
    """Find what to revert and build the reverted file texts; touches nothing."""
    inputs.check_lines(
        {
            "environment": req.env,
            "--to-commit": req.to_commit,
            "the CI pipeline URL": req.ci.pipeline_url,
            "the CI actor": req.ci.actor,
        }
    )
    env = req.env
    environment = config.environment(env)
    stop: str | None = None
    if req.to_commit:
        stop = history.resolve(req.to_commit)
        if stop is None:
            if getattr(history, "shallow", False):
                raise UsageError(
                    f"--to-commit {req.to_commit!r}: no such commit in this shallow clone",
                    hint=_UNSHALLOW,
                )
            raise UsageError(
                f"--to-commit {req.to_commit!r}: no such commit in the deployment repository",
                hint="give a commit id from git log of the deployment branch",
            )
    undone: set[str] = set()
    targets: list[tuple[GlueCommit, HistoryCommit]] = []
    skipped = 0
    found_stop = False
    for commit in history.first_parents():
        if stop is not None and commit.sha == stop:
            found_stop = True
            break
        info = describe(commit, env)
        if info is not None and info.action == "rollback":
            undone.update(info.reverts)
        elif (
            info is not None
            and info.sha not in undone
            and (req.services is None or set(info.services) & set(req.services))
        ):
            targets.append((info, commit))
            if stop is None:
                break
        else:
            skipped += 1
    if stop is not None and not found_stop:
        if getattr(history, "shallow", False):
            raise UsageError(
                f"--to-commit {req.to_commit}: {stop[:10]} is not in the commits of this "
                "shallow clone's branch",
                hint=_UNSHALLOW,
            )
        raise UsageError(
            f"--to-commit {req.to_commit}: {stop[:10]} is not in the history of the branch "
            "(first-parent line)",
            hint="give a commit of the deployment branch that is older than the changes",
        )
    reverted = [info for info, _c in targets]
    shallow = bool(getattr(history, "shallow", False))
    if stop is None and not targets:
        if shallow:
            raise UsageError(
                f"no glue change of {env!r} in the commits of this shallow clone",
                hint=_UNSHALLOW,
            )
        raise UsageError(
            f"no glue change of {env!r} to roll back on this branch",
            hint="glue rolls back commits with a Glue-Environment trailer (bump-tag, promote, "
            "release); other commits need git revert",
        )
    own = set(versions.files_of(config, environment))
    for info, c in targets:
        if not c.parents and shallow:
            raise UsageError(
                f"{info.sha[:10]} ({info.title}) is the oldest commit of this shallow clone: "
                "its parent is not here, so glue cannot tell what it changed",
                hint=_UNSHALLOW,
            )
        if not c.parents:
            raise UsageError(
                f"{info.sha[:10]} ({info.title}) is the first commit of the branch: there is "
                "nothing before it to roll back to",
                hint="bump the tag you want instead",
            )
        if len(c.parents) != 1:
            raise UsageError(f"{info.sha[:10]} is a merge commit: not reverting it")
        outside = [p for p in history.changed_paths(c.sha) if p not in own]
        if outside:
            raise UsageError(
                f"{info.sha[:10]} ({info.title}) has glue trailers but also changes "
                f"{', '.join(outside)}, outside {env}'s values files: not reverting it",
                hint="revert it by hand with git revert",
            )
    result = history.revert([info.sha for info in reverted])
    if result.conflict is not None:
        title = next(i.title for i in reverted if i.sha == result.conflict)
        raise UsageError(
            f"cannot roll back {result.conflict[:10]} ({title}): later commits changed the "
            f"same lines of {', '.join(result.conflict_paths)}",
            hint="a later change would be reverted with it; edit the file by hand or "
            "bump the tag you want",
        )
    edits: list[FileEdit] = []
    for path in sorted(result.new_texts):
        old, new = result.old_texts.get(path), result.new_texts[path]
        if new is None:
            raise UsageError(f"rolling back would delete {path}: not doing that")
        if old != new:
            edits.append(FileEdit(path, old or "", new))
    return Change(
        edits=tuple(edits),
        message=with_skip_ci(config.git, rollback_message(env, reverted, req.ci)),
        details=Rollback(env, tuple(reverted), skipped),
    )


def _folder(path: str) -> str:
    return path.rpartition("/")[0] or "."


def rollback(
    target: CommitTarget,
    req: RollbackRequest,
    *,
    dry_run: bool = False,
    override_hold: bool = False,
    freeze: Guard | None = None,
) -> RollbackResult:
    """``glue rollback``: plan on the target's history and commit the revert there."""

    def plan(view: View) -> RollbackChange:
        change = plan_rollback(view.config, view.history, req)
        for edit in change.edits:
            if view.read(edit.path) is None:
                raise UsageError(
                    f"{edit.path} is in the branch but not in the work tree: a sparse "
                    "checkout leaves it out, or it was deleted; glue edits the values files "
                    "in the work tree",
                    hint=f"bring it back (git sparse-checkout add {_folder(edit.path)}, or "
                    f"git restore {edit.path}), then run glue rollback again",
                )
        return holds.with_marks(
            view,
            change,
            req.env,
            hold_reason=req.hold_reason,
            reject_reason=req.reject_reason,
            actor=req.actor,
            ci=req.ci,
        )

    return commit_change(
        target,
        plan,
        guards=holds.guards(override_hold=override_hold, freeze=freeze),
        dry_run=dry_run,
        history=True,
    )
