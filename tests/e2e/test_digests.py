"""Digests against a real registry: bump pins the registry's digest, promote carries it,
status shows it short and --verify-digests catches a re-pushed tag."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.helpers import git, glue
from tests.support.registry import RegistryServer


def make_repo(root: Path, registry: RegistryServer) -> Path:
    (root / "envs").mkdir(parents=True)
    (root / "glue.yaml").write_text(
        "version: 1\n"
        "environments:\n"
        "  - {name: staging, values: envs/staging.yaml}\n"
        "  - {name: prod, values: envs/prod.yaml}\n"
        "services:\n"
        "  a: {tag_key: a.image.tag, digest_key: a.image.digest, "
        f"image: {registry.host}/team/a}}\n"
    )
    for env in ("staging", "prod"):
        (root / f"envs/{env}.yaml").write_text("a:\n  image:\n    tag: 0.9.0\n")
    git(root, "init", "-q", "--initial-branch=main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root


def test_bump_pins_the_registrys_digest_and_promote_carries_it(
    registry: RegistryServer, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "deploy", registry)
    digest = registry.push("team/a", "1.0.0")
    run = glue("bump-tag", "--env", "staging", "a", "1.0.0", cwd=repo)
    assert run.code == 0, run.err
    assert (repo / "envs/staging.yaml").read_text() == (
        f"a:\n  image:\n    tag: 1.0.0\n    digest: {digest}\n"
    )
    assert f"Glue-Digest: {digest}" in git(repo, "log", "-1", "--format=%B")

    run = glue("promote", "a", "--to", "prod", cwd=repo)
    assert run.code == 0, run.err
    assert f"digest: {digest}" in (repo / "envs/prod.yaml").read_text()

    run = glue("status", cwd=repo)
    assert run.code == 0, run.err
    assert f"1.0.0 {digest[:19]}" in run.out

    # The tag is pushed again with other content: the pinned digest no longer matches.
    moved = registry.push("team/a", "1.0.0", content=b"another build")
    assert moved != digest
    run = glue("status", "--verify-digests", "-o", "json", cwd=repo)
    assert run.code == 1
    cell = json.loads(run.out)["services"]["a"]["staging"]
    assert cell["digest"] == digest and cell["digest_mismatch"] == moved
    run = glue("status", "--verify-digests", cwd=repo)
    assert (
        f"digest mismatch: staging/a: the registry has 1.0.0 at {moved}, the files pin {digest}"
        in run.out
    )


def test_a_tag_missing_from_the_registry_is_refused(
    registry: RegistryServer, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "deploy", registry)
    before = (repo / "envs/staging.yaml").read_text()
    run = glue("bump-tag", "--env", "staging", "a", "2.0.0", cwd=repo)
    assert run.code == 1
    assert f"{registry.host}/team/a:2.0.0 is not in the registry" in run.err
    assert (repo / "envs/staging.yaml").read_text() == before
