"""Per-environment clusters: staging on cluster A, prod on cluster B, one kubeconfig.

Two testbed clusters run side by side behind one kubeconfig with three contexts:
``cluster-a``, ``cluster-b`` and the current context ``nowhere`` (a dead
address), so anything glue, helm or helmfile does without the environment's
own context fails instead of quietly landing on the wrong cluster. Staging's
context comes from helmfile's ``kubeContext`` (glue's default), prod's from
``kube_context`` in glue.yaml; every assertion reads both clusters.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.cluster.test_deploy import add_presync_hook
from tests.support.helpers import example_repo, git, glue
from tests.support.testbed import Testbed, start_testbed, stop_testbed

pytestmark = pytest.mark.cluster

LEASES = "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/glue-deploy-{env}"
RECORD = "/api/v1/namespaces/{ns}/configmaps/glue-deployed-{env}"


@pytest.fixture(scope="module")
def cluster_b(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Testbed]:
    """A second testbed cluster for this module only (stopped at its end)."""
    bed = start_testbed(
        f"pytest-{os.getpid()}-b", tmp_path_factory.mktemp("testbed-b"), request.config
    )
    try:
        yield bed
    finally:
        stop_testbed(bed, request.config)


def merged_kubeconfig(dest: Path, a: Testbed, b: Testbed) -> Path:
    """One kubeconfig: contexts cluster-a and cluster-b, current context a dead one."""
    yaml = YAML(typ="safe", pure=True)
    merged: dict[str, list[dict[str, object]]] = {"clusters": [], "users": [], "contexts": []}
    for name, bed in (("cluster-a", a), ("cluster-b", b)):
        cfg = yaml.load(bed.kubeconfig.read_text())
        ctx = next(c for c in cfg["contexts"] if c["name"] == cfg["current-context"])["context"]
        cluster = next(c for c in cfg["clusters"] if c["name"] == ctx["cluster"])["cluster"]
        user = next(u for u in cfg["users"] if u["name"] == ctx["user"])["user"]
        for key in ("certificate-authority", "client-certificate", "client-key"):
            for section in (cluster, user):  # relative paths are relative to their file
                if key in section and not Path(section[key]).is_absolute():
                    section[key] = str(bed.kubeconfig.parent / section[key])
        merged["clusters"].append({"name": name, "cluster": cluster})
        merged["users"].append({"name": name, "user": user})
        merged["contexts"].append({"name": name, "context": {"cluster": name, "user": name}})
    merged["clusters"].append({"name": "nowhere", "cluster": {"server": "https://127.0.0.1:9"}})
    merged["contexts"].append({"name": "nowhere", "context": {"cluster": "nowhere", "user": "x"}})
    merged["users"].append({"name": "x", "user": {}})
    dest.write_text(
        json.dumps(
            {"apiVersion": "v1", "kind": "Config", "current-context": "nowhere", **merged},
            indent=2,
        )
    )
    return dest


@dataclass
class Setup:
    repo: Path
    env: dict[str, str]
    ns: dict[str, str]  # environment -> its releases' and record's namespace
    kubeconfig: Path


def two_cluster_repo(tmp_path: Path, a: Testbed, b: Testbed) -> Setup:
    """The example repo: dev and staging on cluster A (helmfile kubeContext), prod on
    cluster B (glue.yaml kube_context); each environment in a namespace of its own."""
    repo = example_repo(tmp_path / "deploy")
    ns = {env: a.unique(env[:4]) for env in ("dev", "staging", "prod")}
    config = repo / "glue.yaml"
    text = config.read_text()
    for env, name in ns.items():
        values = repo / f"environments/{env}.yaml"
        values.write_text(
            values.read_text().replace(f"namespace: example-{env}", f"namespace: {name}")
        )
        text = text.replace(f"namespace: example-{env}", f"namespace: {name}")
    text = text.replace(
        f"    namespace: {ns['prod']}", f"    namespace: {ns['prod']}\n    kube_context: cluster-b"
    )
    config.write_text(text)
    helmfile = repo / "helmfile.yaml.gotmpl"
    hf = helmfile.read_text().replace("timeout: 300", "timeout: 60")
    for env in ("dev", "staging"):
        hf = hf.replace(
            f"  {env}:\n    values:", f"  {env}:\n    kubeContext: cluster-a\n    values:"
        )
    helmfile.write_text(hf)
    git(repo, "commit", "-qam", "two clusters")
    kubeconfig = merged_kubeconfig(tmp_path / "kubeconfig", a, b)
    return Setup(repo, {**a.env, "KUBECONFIG": str(kubeconfig)}, ns, kubeconfig)


def run(s: Setup, *args: str) -> tuple[int, str, str]:
    r = glue(*args, cwd=s.repo, env=s.env, timeout=300)
    return r.code, r.out, r.err


def test_each_environment_is_locked_recorded_deployed_and_read_on_its_own_cluster(
    testbed: Testbed, cluster_b: Testbed, tmp_path: Path
) -> None:
    a, b = testbed, cluster_b
    s = two_cluster_repo(tmp_path, a, b)
    prod_ns = s.ns["prod"]
    # While helmfile deploys (under glue's lock), a presync hook lists both clusters' Leases.
    seen = tmp_path / "leases"
    add_presync_hook(
        s.repo,
        "sh",
        "-c",
        f"for c in cluster-a cluster-b; do kubectl --kubeconfig {s.kubeconfig} --context $c "
        f"get leases -A -o name > {seen}-$c.txt; done",
    )

    code, out, err = run(s, "apply", "--env", "prod", "-o", "json")
    assert code == 0, err + out
    assert json.loads(out)["releases"] == ["a", "b"]
    # The lock was taken on B, and only there; helmfile deployed to B only.
    assert "lease.coordination.k8s.io/glue-deploy-prod" in (
        Path(f"{seen}-cluster-b.txt").read_text().splitlines()
    )
    assert "glue-deploy-prod" not in Path(f"{seen}-cluster-a.txt").read_text()
    assert b.get(LEASES.format(ns=prod_ns, env="prod")) is None  # released afterwards
    record_b = b.get(RECORD.format(ns=prod_ns, env="prod"))
    assert record_b is not None
    assert json.loads(record_b["data"]["services.json"])["a"]["tag"] == "2b4d6f8"
    assert a.get(f"/api/v1/namespaces/{prod_ns}") is None  # nothing of prod on A at all
    assert len(b.release_secrets(prod_ns, "a")) == 1 and a.release_secrets(prod_ns, "a") == []

    # staging: the context helmfile declares (glue's default), cluster A.
    code, out, err = run(s, "apply", "--env", "staging")
    assert code == 0, err + out
    stg = s.ns["staging"]
    assert a.get(RECORD.format(ns=stg, env="staging")) is not None
    assert b.get(f"/api/v1/namespaces/{stg}") is None

    # status --cluster: each environment's record and Helm release from its own cluster.
    code, out, err = run(s, "status", "--cluster", "-o", "json")
    assert code == 0, err + out
    envs = json.loads(out)["environments"]
    assert envs["prod"]["services"]["a"]["deployed"] == "2b4d6f8"
    assert envs["prod"]["services"]["a"]["helm_revision"] == 1
    assert envs["staging"]["services"]["a"]["deployed"] == "3f9c2e1"
    assert envs["dev"]["record"] is None
    assert not json.loads(out)["drift"]

    # diff and changed compare with prod's cluster and prod's record (on B).
    code, out, err = run(s, "diff", "--env", "prod", "-o", "json")
    assert code == 0, err + out
    code, out, err = run(s, "changed", "--env", "prod", "-o", "json")
    assert code == 0, err + out
    assert json.loads(out)["since"] == git(s.repo, "rev-parse", "HEAD").strip()

    # unlock --env prod removes B's lock and leaves a same-named Lease on A alone.
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "glue-deploy-prod"},
        "spec": {"holderIdentity": "someone", "leaseDurationSeconds": 60},
    }
    a.api("POST", "/api/v1/namespaces", json={"metadata": {"name": prod_ns}}).raise_for_status()
    for bed in (a, b):
        path = f"/apis/coordination.k8s.io/v1/namespaces/{prod_ns}/leases"
        bed.api("POST", path, json=lease).raise_for_status()
    code, out, err = run(s, "unlock", "--env", "prod")
    assert code == 0, err + out
    assert "held by someone" in out
    assert b.get(LEASES.format(ns=prod_ns, env="prod")) is None
    assert a.get(LEASES.format(ns=prod_ns, env="prod")) is not None

    # --kube-context overrides glue.yaml: unlock on A's copy now.
    code, out, err = run(s, "unlock", "--env", "prod", "--kube-context", "cluster-a")
    assert code == 0 and "held by someone" in out, err + out
    assert a.get(LEASES.format(ns=prod_ns, env="prod")) is None
