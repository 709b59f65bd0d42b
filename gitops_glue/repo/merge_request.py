"""Merge-request mode: a change reaches an environment through review, not a push.

For an environment with ``via: merge-request`` in glue.yaml (or ``--via
merge-request``), glue plans the change on the tip of the protected branch as always,
commits it on that tip and pushes the commit to its own branch,
``glue/<env>/<services>``, then opens the merge request (or updates the one that is
open). There is one branch, so one open request, per environment and set of
services: a newer tag replaces the branch's commit and the request's text. A request
whose change the base branch already has (another merge brought it) is closed with a
note. When pipelines race, the branch keeps the change of the newest pipeline (the
higher pipeline number of the same CI server), whatever order they push in.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from gitops_glue.errors import OperationError, UsageError
from gitops_glue.repo.commit import CommitTarget, D, Landed, Plan, Proposal

if TYPE_CHECKING:
    from gitops_glue.config import GlueConfig
    from gitops_glue.integrations.forge import Forge, MergeRequest
    from gitops_glue.repo.remote import RemoteBranch, ReviewPush

VIA = ("push", "merge-request")
PREFIX = "glue"
#: A pipeline's number in its link: GitLab ``.../-/pipelines/123``, GitHub
#: ``.../actions/runs/456``, and most others' ``.../builds/789``.
_PIPELINE_NUMBER = re.compile(r"^(?P<server>https?://[^/]+)/.*?/(?P<n>\d+)/?$")


def branch_name(place: ReviewPlace) -> str:
    """``glue/<env>/<a+b>`` (``all`` for every service, ``rollback`` for a rollback);
    long sets end in a digest."""
    services = place.services
    names = "+".join(sorted(set(services))) if services else (place.kind or "all")
    if len(names) > 60:
        digest = hashlib.sha256(names.encode()).hexdigest()[:10]
        names = f"{sorted(services)[0]}-and-{len(set(services)) - 1}-more-{digest}"
    return f"{PREFIX}/{place.env}/{names}"


def pipeline_number(message: str) -> tuple[str, int] | None:
    """The CI server and pipeline number from a glue commit's ``Pipeline`` trailer."""
    from gitops_glue.repo.commit import parse_trailers

    for key, value in parse_trailers(message):
        if key.lower() == "pipeline":
            m = _PIPELINE_NUMBER.match(value.strip())
            if m:
                return m["server"].lower(), int(m["n"])
    return None


def newer(theirs: str, ours: str) -> bool:
    """Whether commit message ``theirs`` comes from a newer pipeline of the same CI server
    than ``ours`` (``keep`` for :func:`~gitops_glue.repo.remote.push_review_change`)."""
    a, b = pipeline_number(theirs), pipeline_number(ours)
    return a is not None and b is not None and a[0] == b[0] and a[1] > b[1]


@dataclasses.dataclass(frozen=True)
class ReviewPlace:
    """Where a command's change would go through review: the environment and the
    services it names (none: all)."""

    env: str
    services: tuple[str, ...] = ()
    #: Names the branch when no services are named (``rollback``).
    kind: str = ""


def check_via(via: str | None) -> str | None:
    if via is not None and via not in VIA:
        raise UsageError(f"--via {via!r} is not one of {', '.join(VIA)}")
    return via


def mode_of(config: GlueConfig, place: ReviewPlace, via: str | None) -> str:
    """``push`` or ``merge-request``: ``--via`` when given, else the environment's ``via``."""
    return via or config.environment(place.env).via


def refuse_checkout(config: GlueConfig, place: ReviewPlace, via: str | None) -> None:
    """A checkout cannot open a merge request: say so before anything is written."""
    if mode_of(config, place, via) == "merge-request":
        raise UsageError(
            f"changes to {place.env!r} go through merge requests (via: merge-request), "
            "which glue opens from --remote",
            hint="pass --remote URL (GLUE_REMOTE) and a forge token, or --via push to "
            "commit to this checkout anyway",
        )


def describe(config: GlueConfig, env: str, message: str) -> str:
    """The request's text for the commit with ``message``: each service whose version it
    changes, old -> new, with compare links (from glue's trailers), and the message.

    It depends on the commit alone, so any run can write it for whatever commit the
    review branch holds (see :func:`land_for_review`)."""
    from gitops_glue.messages.changes import compare_url
    from gitops_glue.repo.commit import glue_trailers

    rows: list[list[str]] = []  # service, old, new
    for key, value in glue_trailers(message) or ():
        if key == "Glue-Service":
            rows.append([value, "", ""])
        elif key == "Glue-Tag" and rows:
            rows[-1][2] = value
        elif key == "Glue-Previous-Tag" and rows:
            rows[-1][1] = value
    lines = [f"glue proposes this change to **{env}**:", ""]
    if rows:
        lines += ["| service | from | to | |", "|---|---|---|---|"]
        for name, old, new in rows:
            source = config.services[name].source_repo if name in config.services else None
            link = compare_url(source, old, new)
            shown = f"[compare]({link})" if link else ""
            lines.append(f"| {name} | `{old or '-'}` | `{new or '-'}` | {shown} |")
        lines.append("")
    body = message.split("\n", 1)[1].strip() if "\n" in message else ""
    fence = "````" if "```" in body else "```"
    lines += [
        "<details><summary>commit message</summary>",
        "",
        fence,
        body,
        fence,
        "</details>",
        "",
        f"<sub>Opened by glue. A newer change to the same services in {env} replaces this "
        "request's commit; when the base branch already has the change, glue closes it."
        "</sub>",
    ]
    return "\n".join(lines)


class ReviewTarget(CommitTarget):
    """A remote branch whose environment may take changes through merge requests.

    In push mode it is the remote branch itself. In merge-request mode the change
    goes to the review branch and its request (:func:`land_for_review`).
    """

    def __init__(
        self,
        inner: RemoteBranch,
        place: ReviewPlace,
        via: str | None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.inner = inner
        self.place = place
        self.via = check_via(via)
        self.environ = dict(os.environ if environ is None else environ)
        self.remote = inner.remote

    def config(self) -> GlueConfig:
        return self.inner.config()

    def start(self, *, push: bool = True, history: bool = False) -> None:
        self.inner.start(push=push, history=history)

    def close(self) -> None:
        self.inner.close()

    def land(self, plan: Plan[D], *, dry_run: bool, history: bool) -> Landed[D]:
        config = self.inner.config()
        if mode_of(config, self.place, self.via) == "push":
            return self.inner.land(plan, dry_run=dry_run, history=history)
        from gitops_glue.integrations.forge import forge_for

        # A missing token or forge setting is found before anything is pushed.
        forge = forge_for(config.merge_requests, self.inner.spec.url, self.environ)
        self.inner.close()  # the review push fetches both branches itself
        return land_for_review(
            self.inner, forge, config, self.place, plan, dry_run=dry_run, history=history
        )


def land_for_review(
    inner: RemoteBranch,
    forge: Forge,
    config: GlueConfig,
    place: ReviewPlace,
    plan: Plan[D],
    *,
    dry_run: bool,
    history: bool,
) -> Landed[D]:
    from gitops_glue.repo.remote import push_review_change

    branch = branch_name(place)
    base = inner.spec.branch
    pushed = push_review_change(
        inner.spec,
        inner.auth,
        plan,
        branch,
        keep=newer,
        dry_run=dry_run,
        progress=inner.say,
        history=history,
    )
    change = pushed.change
    if pushed.outcome == "dry-run":
        return Landed(change, None, pushed.attempts, Proposal("dry-run", branch))
    existing = forge.find_open(branch, base)
    if pushed.outcome == "unchanged":
        if existing is None:
            return Landed(change, None, pushed.attempts)
        note = (
            f"glue: `{base}` already has this change to {place.env} "
            f"({change.details.unchanged_text()}), so this request is no longer needed."
        )
        forge.close(existing, note)
        return Landed(
            change, None, pushed.attempts, _proposal("closed", branch, existing, "the base has it")
        )
    if pushed.outcome == "kept":
        change = dataclasses.replace(
            change,
            skipped=f"{branch} holds a newer pipeline's change; this older one is not proposed",
        )
    request, action = _settle(inner, forge, config, place, branch, existing, pushed)
    return Landed(change, pushed.commit, pushed.attempts, _proposal(action, branch, request))


#: How often a run re-reads the review branch to make the request describe what it holds.
_SETTLE_ROUNDS = 5


def _settle(
    inner: RemoteBranch,
    forge: Forge,
    config: GlueConfig,
    place: ReviewPlace,
    branch: str,
    existing: MergeRequest | None,
    pushed: ReviewPush[D],
) -> tuple[MergeRequest, str]:
    """Open or update the request to describe the commit the branch holds.

    Pipelines racing on one service set each push, then write the request's text: a
    slower one can write its own text after a newer commit replaced its own. So each
    run, after writing, reads the branch's tip again and, while it is not the commit it
    described, describes that one: the last writer always describes the tip.
    """
    from gitops_glue.repo.remote import review_branch_tip

    base = inner.spec.branch
    labels = list(config.merge_requests.labels)
    sha, message = pushed.commit, pushed.change.message
    if pushed.outcome == "kept":
        message = pushed.kept_message
    action = "unchanged"
    request = existing
    for _round in range(_SETTLE_ROUNDS):
        title = message.split("\n", 1)[0]
        body = describe(config, place.env, message)
        if request is None:
            try:
                request = forge.open(branch, base, title, body, labels)
                action = "opened"
            except OperationError:
                # Another run opened it a moment ago: update that one instead.
                request = forge.find_open(branch, base)
                if request is None:
                    raise
        if (request.title, request.body.strip()) != (title, body.strip()):
            request = forge.update(request, title, body)
            action = "updated" if action != "opened" else action
        tip = review_branch_tip(inner.spec, inner.auth, branch)
        if tip is None or tip[0] == sha:
            break
        sha, message = tip
    if pushed.outcome == "kept":
        action = "kept"
    assert request is not None  # the loop ran at least once
    return request, action


def _proposal(action: str, branch: str, request: MergeRequest | None, note: str = "") -> Proposal:
    if request is None:
        return Proposal(action, branch, note=note)
    return Proposal(action, branch, request.number, request.url, note)
