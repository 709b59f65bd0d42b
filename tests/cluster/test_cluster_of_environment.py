"""Finding an environment's cluster runs none of the repository's hooks.

helmfile's ``build``, ``template`` and ``write-values`` run a helmfile's ``prepare``
hooks; glue reads an environment's ``kubeContext`` through the sandboxed
``helmfile list`` instead (gitops_glue.helmview), so a command that only needs the
cluster (here ``glue unlock``) reaches the right one and leaves the hooks alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cluster.test_deploy import deploy_repo, run
from tests.cluster.test_two_clusters import LEASES, merged_kubeconfig
from tests.support.helpers import git
from tests.support.testbed import Testbed

pytestmark = pytest.mark.cluster


def test_unlock_finds_the_cluster_helmfile_names_without_running_its_hooks(
    testbed: Testbed, tmp_path: Path
) -> None:
    repo, ns = deploy_repo(tmp_path, testbed)
    # One kubeconfig whose current context is a dead address: only staging's own
    # context, which only the helmfile names, reaches the testbed.
    kubeconfig = merged_kubeconfig(tmp_path / "kubeconfig", testbed, testbed)
    marker = tmp_path / "prepare-hook-ran"
    helmfile = repo / "helmfile.yaml.gotmpl"
    text = helmfile.read_text().replace(
        "  staging:\n    values:", "  staging:\n    kubeContext: cluster-a\n    values:"
    )
    text = text.replace(
        "---\nhelmDefaults:",
        "---\nhooks:\n  - events: [prepare]\n    command: sh\n"
        f"    args: [-c, 'touch {marker}']\nhelmDefaults:",
    )
    assert "kubeContext: cluster-a" in text and str(marker) in text
    helmfile.write_text(text)
    git(repo, "commit", "-qam", "staging's cluster named by the helmfile; a prepare hook")
    testbed.kubectl("create", "namespace", ns)
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "glue-deploy-staging", "namespace": ns},
        "spec": {"holderIdentity": "dead-job", "leaseDurationSeconds": 60},
    }
    testbed.kubectl("apply", "-f", "-", input=json.dumps(lease))

    code, out, err = run(
        testbed, repo, "unlock", "--env", "staging", "-o", "json", KUBECONFIG=str(kubeconfig)
    )

    assert code == 0, err + out
    assert json.loads(out)["removed_holder"] == "dead-job"
    assert testbed.get(LEASES.format(ns=ns, env="staging")) is None
    assert not marker.exists(), "finding the cluster ran the repository's prepare hook"
