from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import example_repo


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A fresh git checkout of the example deployment repository."""
    return example_repo(tmp_path / "deploy")
