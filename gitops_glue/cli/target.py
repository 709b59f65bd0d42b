"""Where a committing command commits: the checkout, or with ``--remote`` a remote branch.

The options that say so are declared once, as the fields of :class:`RepoOptions`.
A command names one parameter ``repo: RepoOptions`` where the options belong in its
``--help``, and :func:`repo_options` (or :func:`read_options`, for a command that
never pushes: no ``--max-attempts``) puts the options there instead, handing the
command one :class:`RepoOptions` built from them.
"""

import dataclasses
import inspect
import os
import typing
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gitops_glue.cli.app import loaded
from gitops_glue.cli.render import note

if TYPE_CHECKING:
    from gitops_glue.repo.commit import CommitTarget
    from gitops_glue.repo.merge_request import ReviewPlace


@dataclasses.dataclass(frozen=True)
class RepoOptions:
    """The deployment repository a command commits to, as the user named it."""

    remote: Annotated[
        str | None,
        typer.Option(
            envvar="GLUE_REMOTE",
            help="deployment repo URL: change it there, no checkout needed "
            "(ssh://..., git@host:path or https://...)",
        ),
    ] = None
    branch: Annotated[
        str,
        typer.Option(
            "--branch",
            envvar="GLUE_BRANCH",
            help="the deployment repository's branch (of --remote)",
        ),
    ] = "main"
    ssh_key_file: Annotated[
        Path | None,
        typer.Option(
            envvar="GLUE_SSH_KEY_FILE",
            help="deploy key file (or GLUE_SSH_KEY with the key text; passphrase in "
            "GLUE_SSH_KEY_PASSPHRASE)",
        ),
    ] = None
    known_hosts: Annotated[
        Path | None,
        typer.Option(
            "--known-hosts",
            help="known_hosts file with the server's host key "
            "(or GLUE_SSH_KNOWN_HOSTS with the lines)",
        ),
    ] = None
    insecure_no_host_key_check: Annotated[
        bool,
        typer.Option(
            "--insecure-no-host-key-check",
            help="DANGEROUS: accept any SSH host key (man-in-the-middle possible)",
        ),
    ] = False
    max_attempts: Annotated[
        int,
        typer.Option(
            envvar="GLUE_MAX_ATTEMPTS",
            min=1,
            max=50,
            help="pushes to try when other pipelines push at the same time",
        ),
    ] = 20
    via: Annotated[
        str | None,
        typer.Option(
            "--via",
            envvar="GLUE_VIA",
            metavar="push|merge-request",
            help="push the commit to --branch, or push it to a glue/ENV/SERVICES branch and "
            "open a merge request (default: the environment's via in glue.yaml)",
        ),
    ] = None

    def target(self, place: "ReviewPlace | None" = None) -> "CommitTarget":
        """The checkout glue runs in, or with ``--remote`` the remote branch; for a
        change of versions (``place``), the environment's merge-request mode."""
        from gitops_glue.repo.merge_request import ReviewTarget, check_via, refuse_checkout

        via = check_via(self.via) if place is not None else None
        if not self.remote:
            from gitops_glue.repo.target import Checkout

            checkout = loaded()
            if place is not None:
                refuse_checkout(checkout.config, place, via)
            return Checkout(checkout)
        from gitops_glue.repo.remote import RemoteBranch, RemoteOptions

        options = RemoteOptions(
            self.remote,
            self.branch,
            self.ssh_key_file,
            self.known_hosts,
            self.insecure_no_host_key_check,
            self.max_attempts,
        )
        branch = RemoteBranch(options, os.environ, lambda message: note(f"glue: {message}"))
        return branch if place is None else ReviewTarget(branch, place, via)


#: The default of a command's ``repo`` parameter, which Python asks for; typer never uses it.
CHECKOUT = RepoOptions()

Command = Callable[..., None]


#: The options' types (with their ``typer.Option``) and defaults, read once.
_TYPES = typing.get_type_hints(RepoOptions, include_extras=True)
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(RepoOptions)}


def review_options(command: Command) -> Command:
    """Put :class:`RepoOptions`' options where ``command`` has ``repo: RepoOptions``: for
    the commands that change versions, which may go through a merge request (``--via``)."""
    return _with_options(command, list(_DEFAULTS))


def repo_options(command: Command) -> Command:
    """:func:`review_options` without ``--via``, for the other committing commands."""
    return _with_options(command, [n for n in _DEFAULTS if n != "via"])


def read_options(command: Command) -> Command:
    """:func:`repo_options` without ``--max-attempts`` and ``--via``, for a command that
    never pushes."""
    return _with_options(command, [n for n in _DEFAULTS if n not in ("max_attempts", "via")])


def _with_options(command: Command, names: list[str]) -> Command:
    # typer reads a command's options from its signature: show it the options in place
    # of the ``repo`` parameter, and build the one value from them when it calls.
    signature = inspect.signature(command, eval_str=True)
    if "repo" not in signature.parameters:
        raise TypeError(f"{command.__name__} has no parameter repo: RepoOptions")
    params: list[inspect.Parameter] = []
    for param in signature.parameters.values():
        if param.name != "repo":
            params.append(param)
            continue
        params += [
            param.replace(name=name, annotation=_TYPES[name], default=_DEFAULTS[name])
            for name in names
        ]

    def run(**kwargs: typing.Any) -> None:
        given = {name: kwargs.pop(name) for name in names}
        command(**kwargs, repo=RepoOptions(**given))

    run.__name__, run.__doc__ = command.__name__, command.__doc__
    run.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in params} | {"return": None}
    return run
