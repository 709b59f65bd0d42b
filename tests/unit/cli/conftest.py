"""Run glue in this process: the same entry point as the console script, output captured.

For CLI behaviour that needs no separate process (parsing, exit codes, messages,
files written); much faster than a subprocess per call.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

import gitops_glue.cli  # first: chooses plain click help before typer is imported
from gitops_glue.cli.entry import main
from gitops_glue.integrations import ci
from tests.support.helpers import Run

Glue = Callable[..., Run]


@pytest.fixture
def glue_in_process(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Glue:
    """``glue_in_process("set", file, key, value, cwd=..., env={...})`` -> Run."""
    assert gitops_glue.cli.main is main
    for key in list(os.environ):
        markers = tuple(s.marker for s in ci.SYSTEMS)  # CI systems a test machine may be in
        if key.startswith(("GLUE_", "GITHUB_", "GITLAB_", "CI_", "SLACK_", *markers)):
            monkeypatch.delenv(key)

    def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Run:
        with monkeypatch.context() as m:
            if cwd is not None:
                m.chdir(cwd)
            for key, value in (env or {}).items():
                m.setenv(key, value)
            capsys.readouterr()
            try:
                main(list(args))
            except SystemExit as done:
                code = done.code if isinstance(done.code, int) else 1
            else:  # pragma: no cover - main always exits
                raise AssertionError("glue did not exit")
            out, err = capsys.readouterr()
        return Run(code, out, err)

    return run
