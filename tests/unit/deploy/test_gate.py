"""The gate glue apply puts in front of helm: the real shell script, a stand-in helm.

The stand-in helm logs each call to a file and answers ``list`` with a fixed
release list, so the tests see which calls got through, when, and with what.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitops_glue.deploy.gate import Gate

RELEASES = [{"name": "a", "namespace": "stg", "revision": "4", "status": "deployed"}]


@pytest.fixture
def fake_helm(tmp_path: Path) -> Path:
    log = tmp_path / "calls.log"
    helm = tmp_path / "helm"
    helm.write_text(
        "#!/bin/sh\n"
        f'echo "$* DRY=${{HELM_DIFF_USE_UPGRADE_DRY_RUN:-}}" >> {log}\n'
        f"[ \"$1\" = list ] && echo '{json.dumps(RELEASES)}'\n"
        "exit 0\n"
    )
    helm.chmod(0o755)
    return helm


@pytest.fixture
def gate(fake_helm: Path) -> Iterator[Gate]:
    made = Gate(str(fake_helm))
    yield made
    made.remove()


def calls(fake_helm: Path) -> list[str]:
    log = fake_helm.parent / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def start(gate: Gate, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [gate.helm, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def still_running(proc: subprocess.Popen[str], seconds: float = 0.5) -> bool:
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        return True
    return False


def test_read_only_commands_pass_at_once(gate: Gate, fake_helm: Path) -> None:
    for args in (
        ["version", "--short"],
        ["dependency", "build", "charts/app"],
        ["template", "a", "charts/app"],
        ["list", "--filter", "^a$"],
    ):
        proc = start(gate, *args)
        assert proc.wait(timeout=5) == 0
    assert [c.split(" DRY=")[0] for c in calls(fake_helm)] == [
        "version --short",
        "dependency build charts/app",
        "template a charts/app",
        "list --filter ^a$",
    ]


def test_upgrade_waits_for_the_gate_to_open(gate: Gate, fake_helm: Path) -> None:
    proc = start(gate, "upgrade", "--install", "a", "charts/app", "--namespace", "stg")
    assert still_running(proc)
    assert calls(fake_helm) == []  # nothing reached helm while the gate was shut
    gate.open()
    assert proc.wait(timeout=5) == 0
    assert calls(fake_helm) == ["upgrade --install a charts/app --namespace stg DRY="]


def test_a_closed_gate_fails_held_commands_without_running_them(
    gate: Gate, fake_helm: Path
) -> None:
    proc = start(gate, "rollback", "a", "3")
    assert still_running(proc)
    gate.close()
    _out, err = proc.communicate(timeout=5)
    assert proc.returncode == 1
    assert "glue: the deploy stopped before helm rollback could go on" in err
    assert calls(fake_helm) == []


def test_held_commands_fail_when_glue_is_gone(fake_helm: Path, tmp_path: Path) -> None:
    # A glue process that made a gate and died without a word (SIGKILL).
    code = (
        "import sys; from gitops_glue.deploy.gate import Gate; "
        f"print(Gate({str(fake_helm)!r}).helm)"
    )
    shim = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    proc = subprocess.run([shim, "uninstall", "a"], capture_output=True, text=True, timeout=10)
    assert proc.returncode == 1
    assert calls(fake_helm) == []
    shutil.rmtree(Path(shim).parent)


def test_diff_records_what_it_saw_and_exits_only_once_the_gate_opens(
    gate: Gate, fake_helm: Path
) -> None:
    proc = start(
        gate,
        "diff",
        "upgrade",
        "--allow-unreleased",
        "a",
        "charts/app",
        "--namespace",
        "stg",
        "--kube-context",
        "ci",
    )
    assert still_running(proc, 0.3)
    assert calls(fake_helm) == []  # waits for the helm-version dependent settings first
    gate.set_env({"HELM_DIFF_USE_UPGRADE_DRY_RUN": "true"})
    deadline = time.monotonic() + 5
    while len(calls(fake_helm)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert still_running(proc, 0.3)  # diffed, but held at its exit
    assert calls(fake_helm) == [
        "list --all --max 0 --output json --namespace stg --kube-context ci DRY=true",
        "diff upgrade --allow-unreleased a charts/app --namespace stg --kube-context ci DRY=true",
    ]
    assert not gate.snapshots_in_flight()
    [seen] = gate.snapshots()
    assert (seen.namespace, seen.releases) == ("stg", {"a": (4, "deployed")})
    gate.open()
    assert proc.wait(timeout=5) == 0


def test_diffs_in_one_namespace_share_one_snapshot(gate: Gate, fake_helm: Path) -> None:
    gate.set_env({})
    procs = [
        start(gate, "diff", "upgrade", name, "charts/app", "--namespace", "stg")
        for name in ("a", "b", "c")
    ]
    deadline = time.monotonic() + 5
    while len(calls(fake_helm)) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(still_running(p, 0.1) for p in procs)
    made = calls(fake_helm)
    assert made[0].startswith("list --all --max 0 --output json --namespace stg")
    assert sorted(made[1:]) == [
        f"diff upgrade {n} charts/app --namespace stg DRY=" for n in ("a", "b", "c")
    ]
    [seen] = gate.snapshots()
    assert seen.namespace == "stg"
    gate.open()
    assert [p.wait(timeout=5) for p in procs] == [0, 0, 0]


def test_a_diff_after_the_gate_opened_takes_no_snapshot(gate: Gate, fake_helm: Path) -> None:
    gate.set_env({})
    gate.open()
    proc = start(gate, "diff", "upgrade", "a", "charts/app", "-n", "stg")
    assert proc.wait(timeout=5) == 0
    assert calls(fake_helm) == ["diff upgrade a charts/app -n stg DRY="]
    assert gate.snapshots() == []


def test_an_unreadable_snapshot_counts_as_unknown(gate: Gate, tmp_path: Path) -> None:
    (gate.dir / "snap.1.json").write_text("stg\nError: Kubernetes cluster unreachable\n")
    [seen] = gate.snapshots()
    assert seen.releases is None


def test_the_gate_is_private_to_its_user(gate: Gate) -> None:
    assert os.stat(gate.dir).st_mode & 0o077 == 0
    assert os.stat(gate.helm).st_mode & 0o077 == 0


NOEXEC_PROBE = """
import os, subprocess, sys
from pathlib import Path
subprocess.run(["mount", "-t", "tmpfs", "-o", "noexec", "tmpfs", sys.argv[1]], check=True)
from gitops_glue.errors import UsageError
from gitops_glue.deploy.gate import Gate
try:
    gate = Gate("true")  # stands in for helm: "version" passes through and exits 0
except UsageError as exc:
    print("refused:", exc, "|", exc.hint)
else:
    print("gate in", gate.dir.parent)
    print("exit", subprocess.run([gate.helm, "version"], capture_output=True).returncode)
    gate.remove()
"""


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare")
def test_a_noexec_tmp_moves_the_gate_or_says_what_to_do(tmp_path: Path) -> None:
    noexec, home = tmp_path / "noexec", tmp_path / "home"
    noexec.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}

    def probe(home_dir: Path) -> str:
        run = subprocess.run(
            ["unshare", "-rm", sys.executable, "-c", NOEXEC_PROBE, str(noexec)],
            env={**env, "TMPDIR": str(noexec), "HOME": str(home_dir)},
            capture_output=True,
            text=True,
            timeout=30,
        )
        if run.returncode != 0 and "mount" in run.stderr:
            pytest.skip(f"cannot mount in a user namespace here: {run.stderr.strip()[-200:]}")
        return run.stdout

    # The home cache folder allows executables: the gate goes there and runs.
    out = probe(home)
    assert out.splitlines() == [f"gate in {home / '.cache' / 'gitops-glue'}", "exit 0"]
    # Home on the noexec file system too: a clear refusal naming the fix.
    out = probe(noexec)
    assert out.startswith("refused: glue apply needs a folder where it may run a small script")
    assert "point TMPDIR at a folder on a file system that allows executables" in out


def test_a_relative_helm_path_still_works_from_the_repo(
    fake_helm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(fake_helm.parent)
    gate = Gate("./helm")  # GLUE_HELM=./helm, and helmfile runs in another folder
    try:
        proc = subprocess.run(
            [gate.helm, "version"], cwd="/", capture_output=True, text=True, timeout=10
        )
        assert proc.returncode == 0, proc.stderr
        assert calls(fake_helm) == ["version DRY="]
    finally:
        gate.remove()
