"""glue verify-history: a CI gate over the deployment repository's history."""

import os
from pathlib import Path
from typing import Annotated

import typer

from gitops_glue.cli.app import State, app
from gitops_glue.cli.options import Output, OutputOpt
from gitops_glue.cli.render import emit
from gitops_glue.errors import ExitCode


@app.command("verify-history")
def verify_history_cmd(
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="check the commits after this one (a commit, tag or branch; default: "
            "from the first commit)",
        ),
    ] = None,
    allowed_signers: Annotated[
        Path | None,
        typer.Option(
            "--allowed-signers",
            envvar="GLUE_ALLOWED_SIGNERS",
            help="git's allowed signers file: the SSH keys that may sign "
            "(gpg.ssh.allowedSignersFile)",
        ),
    ] = None,
    gpg_key: Annotated[
        list[str] | None,
        typer.Option(
            "--gpg-key",
            envvar="GLUE_GPG_KEYS",
            help="fingerprint of a GPG key that may sign (repeat); its public key must be in "
            "the keyring of GNUPGHOME",
        ),
    ] = None,
    rev: Annotated[
        str, typer.Option("--rev", help="the commit whose history is checked (a branch, tag...)")
    ] = "HEAD",
    output: OutputOpt = Output.text,
) -> None:
    """Check that every commit touching glue's files (glue.yaml, glue-holds.yaml, the values
    files) or carrying Glue-* trailers is signed by an allowed key and that its trailers say
    what it changed; list the ones that are not. Exit 1 when any fails: a CI gate. Reads
    only."""
    from gitops_glue.files import find_config
    from gitops_glue.repo.audit import AuditRequest, verify_history

    root = find_config(State.directory).parent
    report = verify_history(
        AuditRequest(
            root,
            rev=rev,
            since=since,
            allowed_signers=allowed_signers,
            gpg_keys=tuple(gpg_key or ()),
            environ=dict(os.environ),
        )
    )
    emit(output, report.to_json(), report.text())
    if not report.ok:
        raise typer.Exit(int(ExitCode.FAILED))
