from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import example_repo
from tests.registry import registry, registry_basic, registry_token  # noqa: F401 - fixtures
from tests.slackserver import slack  # noqa: F401 - fixture
from tests.sshgit import ssh_git_server, ssh_remote  # noqa: F401 - fixture


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A fresh git checkout of the example deployment repository."""
    return example_repo(tmp_path / "deploy")
