"""Promote only what is proven: the source's deploy record decides, at a driven time."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from gitops_glue.cluster.record import DeployRecord, FailedDeploy, ServiceVersion
from gitops_glue.config import GlueConfig, parse_config
from gitops_glue.errors import PolicyError
from gitops_glue.repo.promote import PromoteRequest, plan_promote

GLUE_YAML = """\
version: 1
environments:
  - {name: staging, values: envs/staging.yaml}
  - {name: prod, values: envs/prod.yaml, require_deployed: true, min_age: 30m}
services:
  a: {tag_key: a.image.tag, digest_key: a.image.digest, image: "127.0.0.1:5000/a"}
  b: {tag_key: b.image.tag}
"""
DIGEST = "sha256:" + "1" * 64
OTHER = "sha256:" + "2" * 64
T0 = dt.datetime(2026, 12, 2, 10, 0, tzinfo=dt.timezone.utc)


def files() -> dict[str, str]:
    return {
        "envs/staging.yaml": f"a:\n  image:\n    tag: 1.3.0\n    digest: {DIGEST}\n"
        "b:\n  image:\n    tag: 2.1.0\n",
        "envs/prod.yaml": "a:\n  image:\n    tag: 1.2.0\n    digest: "
        f"{OTHER}\nb:\n  image:\n    tag: 2.0.0\n",
    }


def config() -> GlueConfig:
    return parse_config(GLUE_YAML)


def record(a: ServiceVersion, **kw: object) -> DeployRecord:
    return DeployRecord(
        "staging",
        {"a": a, "b": ServiceVersion("2.1.0", since=T0.isoformat())},
        deployed_at=T0.isoformat(),
        **kw,  # type: ignore[arg-type]
    )


def plan(rec: DeployRecord | None, now: dt.datetime, **req: object) -> str:
    texts = files()
    change = plan_promote(
        config(),
        texts.get,
        PromoteRequest(target="prod", services=("a",), **req),  # type: ignore[arg-type]
        lambda _config, env: rec if env == "staging" else None,
        now,
        lambda _config, _env, _release: [],  # no pods: proven by the record alone
    )
    return change.message if change.edits else ""


def refusal(rec: DeployRecord | None, now: dt.datetime, **req: object) -> str:
    with pytest.raises(PolicyError) as info:
        plan(rec, now, **req)
    assert "nothing was changed" in info.value.message
    return info.value.message


def test_soaked_long_enough_is_promoted_with_digest_and_proof_trailer() -> None:
    rec = record(ServiceVersion("1.3.0", digest=DIGEST, since=T0.isoformat()))
    message = plan(rec, T0 + dt.timedelta(minutes=45))
    assert f"Glue-Digest: {DIGEST}" in message
    assert (
        "Glue-Proven: a 1.3.0 deployed in staging since 2026-12-02T10:00:00+00:00, 45m (min 30m)"
        in message
    )


def test_min_age_counts_from_the_first_successful_deploy_of_the_tag() -> None:
    rec = record(ServiceVersion("1.3.0", digest=DIGEST, since=T0.isoformat()))
    message = refusal(rec, T0 + dt.timedelta(minutes=12))
    assert "1.3.0 has run in staging for 12m, less than the 30m required" in message
    # The CLI's --min-age wins over glue.yaml's.
    assert plan(rec, T0 + dt.timedelta(minutes=12), min_age=600.0)


def test_another_tag_in_the_source_is_refused_saying_what_runs() -> None:
    rec = record(ServiceVersion("1.2.5", digest=OTHER, since=T0.isoformat()))
    message = refusal(rec, T0 + dt.timedelta(days=1))
    assert "a 1.3.0: 1.3.0 is not what staging runs: staging runs a 1.2.5" in message
    assert "sha256:222222222222" in message and T0.isoformat() in message


def test_a_failed_last_deploy_is_refused() -> None:
    later = (T0 + dt.timedelta(hours=1)).isoformat()
    rec = record(
        ServiceVersion("1.3.0", digest=DIGEST, since=T0.isoformat()),
        failed={"a": FailedDeploy("1.3.0", later)},
    )
    message = refusal(rec, T0 + dt.timedelta(days=1))
    assert f"the last deploy of a to staging (1.3.0, {later}) failed" in message


def test_a_moved_tag_is_refused_by_digest() -> None:
    rec = record(ServiceVersion("1.3.0", digest=OTHER, since=T0.isoformat()))
    message = refusal(rec, T0 + dt.timedelta(days=1))
    assert "digest sha256:222222222222, not sha256:111111111111: the tag was moved" in message


def test_no_record_is_refused() -> None:
    assert "staging has no deploy record" in refusal(None, T0)


def test_all_promotes_the_proven_and_lists_the_rest(tmp_path: Path) -> None:
    rec = record(ServiceVersion("1.2.9", since=T0.isoformat()))
    texts = files()
    change = plan_promote(
        config(),
        texts.get,
        PromoteRequest(target="prod", services=None),
        lambda _c, _e: rec,
        T0 + dt.timedelta(hours=2),
        lambda _c, _e, _r: [],
    )
    assert [p.service for p in change.details.promotions] == ["b"]
    assert change.details.unproven[0].startswith("a 1.3.0: 1.3.0 is not what staging runs")
    # a's digest key is untouched, b's tag moved.
    assert "tag: 2.1.0" in change.edits[0].new_text and OTHER in change.edits[0].new_text


def test_without_require_deployed_the_digest_travels_with_the_tag() -> None:
    cfg = parse_config(GLUE_YAML.replace(", require_deployed: true, min_age: 30m", ""))
    texts = files()
    change = plan_promote(cfg, texts.get, PromoteRequest(target="prod", services=("a",)))
    assert change.edits[0].new_text.startswith(
        f"a:\n  image:\n    tag: 1.3.0\n    digest: {DIGEST}"
    )


def test_the_newest_proof_of_the_current_tag_is_found_in_history(tmp_path: Path) -> None:
    import pygit2

    from gitops_glue.repo.gitrepo import GitHistory
    from gitops_glue.repo.proof import proven_in_history
    from tests.support.helpers import git

    repo = tmp_path / "r"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")

    def commit(message: str) -> None:
        git(repo, "commit", "-q", "--allow-empty", "-m", message)

    since = "2026-12-02T10:00:00+00:00"
    commit(
        f"p1\n\nGlue-Environment: prod\nGlue-Proven: a 1.2.0 deployed in staging since {since}, 2h"
    )
    commit(
        "p2\n\nGlue-Environment: prod\n"
        f"Glue-Proven: a 1.3.0 deployed in staging since {since}, 45m (min 30m)\n"
        f"Glue-Proven: b 2.0.0 deployed in staging since {since}, 3d01h"
    )
    commit(
        "other env\n\nGlue-Environment: staging\n"
        f"Glue-Proven: c 9 deployed in dev since {since}, 1m"
    )
    r = pygit2.Repository(str(repo))
    history = GitHistory(r, r.head.peel(pygit2.Commit))
    tags = {"a": "1.3.0", "b": "2.0.1", "c": "9"}
    # b runs another tag than the one proven; c's proof was for another environment.
    assert proven_in_history(history, "prod", tags) == {"a": "45m in staging"}
    assert proven_in_history(history, "prod", {"a": "1.2.0"}) == {"a": "2h in staging"}
