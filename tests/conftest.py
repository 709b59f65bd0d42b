from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# The fixture modules assert in their fixtures: have pytest rewrite those asserts.
pytest.register_assert_rewrite("tests.support")

from tests.support.gitea import gitea, gitea_repo  # noqa: E402, F401
from tests.support.helpers import example_repo  # noqa: E402
from tests.support.registry import registry, registry_basic, registry_token  # noqa: E402, F401
from tests.support.slackserver import slack  # noqa: E402, F401
from tests.support.sshgit import ssh_git_server, ssh_remote  # noqa: E402, F401


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A fresh git checkout of the example deployment repository."""
    return example_repo(tmp_path / "deploy")


@pytest.fixture(autouse=True)
def private_tmpdir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Each test gets a temp folder of its own (TMPDIR), for glue in and out of this process.

    So a test that asserts glue left no temp files behind looks only at its own folder, and
    another program on the machine cannot make it fail.
    """
    own = tmp_path_factory.mktemp("tmpdir")
    monkeypatch.setenv("TMPDIR", str(own))
    monkeypatch.setattr(tempfile, "tempdir", str(own))
    yield own
