"""The choices ``glue apply`` offers about a deploy that goes wrong.

Apart from the deploy itself (:mod:`gitops_glue.deploy.apply`): the command line builds
its options from them without loading the deploy.
"""

import enum


class Recover(str, enum.Enum):
    """What ``glue apply`` does about releases stuck pending."""

    auto = "auto"  # recover them (roll back, or uninstall one that never deployed)
    never = "never"  # fail instead


class OnFailure(str, enum.Enum):
    """What ``glue apply`` does when the deploy fails its verification."""

    stop = "stop"  # report it (exit 1), change nothing more
    rollback = "rollback"  # revert the services' commits with a hold, apply and verify that
