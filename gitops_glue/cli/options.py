"""Options shared by several commands, declared once.

``--output`` (``GLUE_OUTPUT``) remembers its value in :class:`Chosen` as click reads it,
so the one error handler (``cli/entry.py``) can answer an error in the form asked for.
"""

import enum
from typing import Annotated

import typer


class Output(str, enum.Enum):
    text = "text"
    json = "json"


class MessageOutput(str, enum.Enum):
    """Outputs of the commands that build a Slack message."""

    text = "text"
    json = "json"
    slack = "slack"


class Thread(str, enum.Enum):
    """With a bot token: how a finish message relates to the start message."""

    reply = "reply"
    update = "update"


class Chosen:
    """What the running command was asked for, once click has read its options."""

    #: ``--output``'s value (``text``, ``json``, ``slack``); None until it is read.
    output: str | None = None


def _remember_output(value: Output | MessageOutput | None) -> str | None:
    Chosen.output = None if value is None else value.value
    # The choice as click read it: typer turns it into the enum after the callback.
    return Chosen.output


EnvOpt = Annotated[str, typer.Option("--env", "-e", envvar="GLUE_ENV", help="environment")]


OutputOpt = Annotated[
    Output,
    typer.Option(
        "--output",
        "-o",
        envvar="GLUE_OUTPUT",
        callback=_remember_output,
        help="text for people, json for scripts (errors too: one JSON object on stdout)",
    ),
]


MessageOutputOpt = Annotated[
    MessageOutput,
    typer.Option(
        "--output",
        "-o",
        envvar="GLUE_OUTPUT",
        callback=_remember_output,
        help="text for people, json for scripts, slack: the Slack payload",
    ),
]


DryRunOpt = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        envvar="GLUE_DRY_RUN",
        help="show what would change or be sent; write and send nothing",
    ),
]


SelectorOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--selector",
        "-l",
        envvar="GLUE_SELECTOR",
        help="helmfile release selector (repeat: OR), like service=a",
    ),
]


KubeconfigOpt = Annotated[
    str | None, typer.Option(envvar="KUBECONFIG", help="kubeconfig file (default: kubectl's)")
]


KubeContextOpt = Annotated[
    str | None,
    typer.Option(
        envvar="GLUE_KUBE_CONTEXT",
        help="kubeconfig context of ENV's cluster (default: the environment's kube_context "
        "in glue.yaml, else helmfile's kubeContext, else the current context)",
    ),
]


ExtraArgs = Annotated[list[str] | None, typer.Argument(help="extra helmfile arguments, after --")]


OverrideFreezeOpt = Annotated[
    bool,
    typer.Option(
        "--override-freeze",
        envvar="GLUE_OVERRIDE_FREEZE",
        help="go ahead in one of ENV's freeze windows (glue.yaml freeze); needs --reason; "
        "recorded with who (commit trailers, deploy record)",
    ),
]
FreezeReasonOpt = Annotated[
    str | None,
    typer.Option(
        "--reason",
        envvar="GLUE_FREEZE_REASON",
        help="why, with --override-freeze (recorded)",
    ),
]


#: The deploy options glue apply and glue sync share.
TimeoutOpt = Annotated[
    str,
    typer.Option(
        envvar="GLUE_TIMEOUT",
        help="deploy timeout (pending releases older than this are stale)",
    ),
]
LockTimeoutOpt = Annotated[
    str,
    typer.Option(
        envvar="GLUE_LOCK_TIMEOUT", help="how long to wait for another deploy of ENV to finish"
    ),
]
