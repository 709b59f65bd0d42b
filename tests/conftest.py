from __future__ import annotations

from pathlib import Path

import pytest

# The fixture modules assert in their fixtures: have pytest rewrite those asserts.
pytest.register_assert_rewrite("tests.support")

from tests.support.helpers import example_repo  # noqa: E402
from tests.support.registry import registry, registry_basic, registry_token  # noqa: E402, F401
from tests.support.slackserver import slack  # noqa: E402, F401
from tests.support.sshgit import ssh_git_server, ssh_remote  # noqa: E402, F401


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A fresh git checkout of the example deployment repository."""
    return example_repo(tmp_path / "deploy")
