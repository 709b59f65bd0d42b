"""Options shared by several commands, declared once."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer


class Output(str, enum.Enum):
    text = "text"
    json = "json"


OutputOpt = Annotated[
    Output,
    typer.Option("--output", "-o", envvar="GLUE_OUTPUT", help="text for people, json for scripts"),
]


DryRunOpt = Annotated[
    bool,
    typer.Option("--dry-run", envvar="GLUE_DRY_RUN", help="show what would change; write nothing"),
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


ExtraArgs = Annotated[list[str] | None, typer.Argument(help="extra helmfile arguments, after --")]


RemoteOpt = Annotated[
    str | None,
    typer.Option(
        envvar="GLUE_REMOTE",
        help="deployment repo URL: change it there, no checkout needed "
        "(ssh://..., git@host:path or https://...)",
    ),
]


BranchOpt = Annotated[
    str, typer.Option(envvar="GLUE_BRANCH", help="branch of --remote to commit to")
]


SshKeyFileOpt = Annotated[
    Path | None,
    typer.Option(
        envvar="GLUE_SSH_KEY_FILE",
        help="deploy key file (or GLUE_SSH_KEY with the key text)",
    ),
]


KnownHostsOpt = Annotated[
    Path | None,
    typer.Option("--known-hosts", help="known_hosts file (or GLUE_SSH_KNOWN_HOSTS with the lines)"),
]


InsecureOpt = Annotated[
    bool,
    typer.Option(
        "--insecure-no-host-key-check",
        help="DANGEROUS: accept any SSH host key (man-in-the-middle possible)",
    ),
]


MaxAttemptsOpt = Annotated[
    int,
    typer.Option(
        envvar="GLUE_MAX_ATTEMPTS", min=1, max=50, help="pushes to try when others push too"
    ),
]
