"""The freeze guard: a change of versions in a frozen environment is refused.

:func:`guard` is the rule :func:`gitops_glue.repo.commit.commit_change` runs on the
change a planner made (bump-tag, promote, release, auto-release; rollback too, which
goes ahead), on the glue.yaml of the branch it plans on: a ``--remote`` run reads the
freeze windows of the fetched branch, and planning again after a lost push race reads
them again. An environment counts as changed when the effective tag of one of its
services changes (:func:`gitops_glue.repo.holds.moves`), so a values file shared by
several environments is caught too.

In a window: exit 2 naming the window and when it ends, before anything is written;
``--override-freeze --reason TEXT`` lets the change through and the commit says so
(a body line, ``Glue-Freeze-Override: REASON`` and ``Glue-Freeze-Override-By: WHO``);
a rollback goes ahead and says so (a note, and a body line in its commit).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

from gitops_glue import freeze, inputs
from gitops_glue.errors import UsageError
from gitops_glue.integrations.ci import CiContext
from gitops_glue.repo import holds
from gitops_glue.repo.commit import Change, D, Guard, View

#: What the refusal suggests.
OVERRIDE_HINT = "pass --override-freeze --reason TEXT (recorded)"


@dataclass(frozen=True)
class FreezeRule:
    """How a command meets a freeze: at ``clock``'s now, refused unless ``override``;
    ``rollback``: a rollback, which always goes ahead (with a note)."""

    clock: freeze.Clock
    override: freeze.Override | None = None
    rollback: bool = False


def override_of(
    wanted: bool, reason: str | None, ci: CiContext, actor: str | None = None
) -> freeze.Override | None:
    """``--override-freeze`` and ``--reason`` as an override (None without the flag): who
    is ``actor``, else the CI actor, else git's user.name. The flag needs a reason."""
    if not wanted:
        return None
    text = (reason or "").strip()
    if not text:
        raise UsageError(
            "--override-freeze needs --reason TEXT (GLUE_FREEZE_REASON): say why, for the "
            "people who read the history",
            hint='e.g. --override-freeze --reason "hotfix for the checkout outage, INC-42"',
        )
    inputs.check_lines({"--reason": text, "--actor": actor, "the CI actor": ci.actor})
    return freeze.Override(text, holds.who(actor, ci))


def refusal(frozen: freeze.Freeze, clock: freeze.Clock, what: str, *, also: str = "") -> UsageError:
    """The error of a command refused by ``frozen``: ``what`` says what was not done;
    ``also``: what else goes ahead in a window."""
    note = f" ({clock.note()})" if clock.overridden else ""
    return UsageError(
        f"{frozen.text()}: {what}{note}",
        hint=f"wait until then, or {OVERRIDE_HINT}; {also or 'glue rollback is always allowed'}",
    )


def guard(rule: FreezeRule) -> Guard:
    """The freeze rule as a guard for :func:`~gitops_glue.repo.commit.commit_change`."""
    return functools.partial(check, rule=rule)


def check(view: View, change: Change[D], *, rule: FreezeRule) -> Change[D]:
    """Refuse ``change`` when it changes a version in an environment that is frozen at
    ``rule.clock``'s now; with ``rule.override`` or ``rule.rollback``, let it through and
    say so in its message and notes."""
    if not change.changed:
        return change
    moved = holds.moves(view.config, view.read, change.files())
    names = {m.env for m in moved}
    found = [
        frozen
        for env in view.config.environments
        if env.name in names
        for frozen in [freeze.of_environment(env, rule.clock.now)]
        if frozen.frozen
    ]
    if not found:
        return change
    clock_note = [rule.clock.note()] if rule.clock.overridden else []
    if rule.rollback:
        notes = [f"{f.text()}; rollback goes ahead" for f in found]
        body = [f"Rolls back while {f.text()}" for f in found]
        return dataclasses.replace(
            change,
            message=holds.amend_message(change.message, [*body, *clock_note], []),
            notes=(*change.notes, *notes),
        )
    if rule.override is None:
        listed = ", ".join(
            f"{m.service} {m.old_tag} -> {m.new_tag} in {m.env}"
            for m in moved
            if m.env in {f.env for f in found}
        )
        raise refusal(found[0], rule.clock, f"not changing {listed}; nothing was changed")
    by = rule.override.by
    body = [f"Overrides the freeze: {f.text()}" for f in found]
    body.append(f"Freeze override by {by}: {rule.override.reason}")
    trailers = [
        ("Glue-Freeze-Override", rule.override.reason),
        ("Glue-Freeze-Override-By", by),
    ]
    notes = [f"overriding the freeze: {f.text()}" for f in found]
    return dataclasses.replace(
        change,
        message=holds.amend_message(change.message, [*body, *clock_note], trailers),
        notes=(*change.notes, *notes),
    )
