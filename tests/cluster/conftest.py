"""Cluster tests: run against a real local Kubernetes cluster (scripts/testbed).

Run them with ``python -m pytest tests/cluster -m cluster``. The first run builds
the control plane from source (see scripts/TESTBED.md); later runs reuse the cache.
"""

from __future__ import annotations

import pytest

from tests.support.testbed import testbed

__all__ = ["testbed"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "cluster: needs the local Kubernetes/Helm testbed (scripts/testbed)"
    )
