"""A deployment's phase, as ``glue notify --phase`` takes it: one enum for the CLI and the
core, in a module of its own so that the CLI loads nothing else of messages/."""

from __future__ import annotations

import enum
from typing import Literal

#: What a phase means for the message: a start, a finish, a rollback or a failure.
Kind = Literal["start", "finish", "rollback", "failed"]


class Phase(str, enum.Enum):
    """A deployment's phase: Helm's hook names, and ``failed``."""

    pre_install = "pre-install"
    pre_upgrade = "pre-upgrade"
    post_install = "post-install"
    post_upgrade = "post-upgrade"
    post_rollback = "post-rollback"
    failed = "failed"

    @property
    def kind(self) -> Kind:
        if self in (Phase.pre_install, Phase.pre_upgrade):
            return "start"
        if self in (Phase.post_install, Phase.post_upgrade):
            return "finish"
        if self is Phase.post_rollback:
            return "rollback"
        return "failed"
