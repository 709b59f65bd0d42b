"""The Kubernetes access layer's configuration: which server a Kube talks to."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops_glue.cluster.kube import Kube
from gitops_glue.errors import UsageError


def _kubeconfig(path: Path, cluster: str, server: str, current: str | None) -> None:
    current_line = f"current-context: {current}\n" if current else ""
    path.write_text(
        f"""apiVersion: v1
kind: Config
clusters:
  - {{name: {cluster}, cluster: {{server: "{server}"}}}}
users:
  - {{name: u-{cluster}, user: {{token: not-a-secret}}}}
contexts:
  - {{name: ctx-{cluster}, context: {{cluster: {cluster}, user: u-{cluster}}}}}
{current_line}"""
    )


def test_kubeconfig_lists_several_files_merged_as_kubectl_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    _kubeconfig(first, "a", "https://127.0.0.1:6441", "ctx-a")
    _kubeconfig(second, "b", "https://127.0.0.1:6442", "ctx-b")
    monkeypatch.setenv("KUBECONFIG", f"{first}:{tmp_path / 'missing.yaml'}:{second}")
    assert Kube().host == "https://127.0.0.1:6441"  # the first file's current context
    assert Kube(context="ctx-b").host == "https://127.0.0.1:6442"


def test_a_single_kubeconfig_file_and_a_chosen_context(tmp_path: Path) -> None:
    file = tmp_path / "config"
    _kubeconfig(file, "a", "https://127.0.0.1:6441", None)
    assert Kube(str(file), "ctx-a").host == "https://127.0.0.1:6441"
    with pytest.raises(UsageError, match="no usable Kubernetes configuration"):
        Kube(str(file))  # no current context, none chosen
    with pytest.raises(UsageError, match="ctx-zz"):
        Kube(str(file), "ctx-zz")


def test_a_missing_kubeconfig_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no usable Kubernetes configuration"):
        Kube(str(tmp_path / "nope"))
