"""What the core makes of a command's words: release's one-or-many form, bump's CI outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops_glue.config import parse_config
from gitops_glue.errors import UsageError
from gitops_glue.integrations import ci
from gitops_glue.integrations.ci import CiContext
from gitops_glue.repo.bump import BumpRequest, BumpResult, ServiceTag, ci_outputs, plan_bump
from gitops_glue.repo.commit import CommitResult
from gitops_glue.repo.release import ReleaseRequest

CI = CiContext(system="gitlab", repository="acme/a")
EITHER = "give either SERVICE with --tag/--source-branch, or SERVICE=TAG ... without them"


def test_release_of_one_service_takes_its_tag_or_source_branch_from_the_options() -> None:
    assert ReleaseRequest.from_args(["a"], "prod", tag="v1.2.4", revision="r1", ci=CI) == (
        ReleaseRequest("a", "prod", tag="v1.2.4", revision="r1", upstream_repo="acme/a", ci=CI)
    )
    by_branch = ReleaseRequest.from_args(["a"], "prod", source_branch="main")
    assert by_branch == ReleaseRequest("a", "prod", source_branch="main")


def test_release_of_several_services_takes_each_tag_and_revision_from_its_argument() -> None:
    req = ReleaseRequest.from_args(["a=v1.2.4@r1", "b=v2.0.0"], "prod", revision="r9", ci=CI)
    assert req == ReleaseRequest(
        "a",
        "prod",
        tag="v1.2.4",
        revision="r1",
        upstream_repo="acme/a",
        ci=CI,
        also=(ServiceTag("b", "v2.0.0", "r9"),),
    )
    one = ReleaseRequest.from_args(["a=v1.2.4"], "prod")
    assert (one.service, one.tag, one.revision, one.also) == ("a", "v1.2.4", None, ())


@pytest.mark.parametrize(
    ("args", "tag", "source_branch", "message"),
    [
        (["a=v1", "b=v2"], "v3", None, EITHER),
        (["a=v1"], None, "main", EITHER),
        (["a=v1", "a=v2"], None, None, "service a named more than once"),
        (["a=v1", "b"], None, None, "'b' is not SERVICE=TAG or SERVICE=TAG@REVISION"),
    ],
)
def test_release_arguments_that_do_not_fit_either_form(
    args: list[str], tag: str | None, source_branch: str | None, message: str
) -> None:
    with pytest.raises(UsageError) as refused:
        ReleaseRequest.from_args(args, "prod", tag=tag, source_branch=source_branch)
    assert refused.value.message == message


def test_a_bumps_upstream_repository_is_cis_unless_named() -> None:
    items = [ServiceTag("a", "v1.2.0")]
    assert BumpRequest.of("dev", items, ci=CI).upstream_repo == "acme/a"
    assert BumpRequest.of("dev", items, upstream_repo="acme/b", ci=CI).upstream_repo == "acme/b"
    assert BumpRequest.of("dev", items).upstream_repo is None


GLUE_YAML = """\
version: 1
environments:
  - {name: dev, values: [envs/dev.yaml]}
services:
  a: {tag_key: a.image.tag}
  b: {tag_key: b.image.tag}
"""
DEV = 'a:\n  image:\n    tag: "v1.1.0"\nb:\n  image:\n    tag: "v9.0.0"\n'


def bumped(*items: ServiceTag, commit: str | None = "0123abc") -> BumpResult:
    req = BumpRequest.of("dev", items)
    change = plan_bump(parse_config(GLUE_YAML), {"envs/dev.yaml": DEV}.get, req)
    return CommitResult(change, commit, dry_run=commit is None)


def test_a_bump_hands_the_next_ci_job_its_status_service_tags_file_and_commit(
    tmp_path: Path,
) -> None:
    dotenv = tmp_path / "bump.env"
    ci.write_outputs(ci_outputs(bumped(ServiceTag("a", "v1.2.0"))), dotenv=str(dotenv), env={})
    assert dotenv.read_text().splitlines() == [
        "GLUE_STATUS=changed",
        "GLUE_SERVICE=a",
        "GLUE_OLD_TAG=v1.1.0",
        "GLUE_NEW_TAG=v1.2.0",
        "GLUE_FILE=envs/dev.yaml",
        "GLUE_ENVIRONMENT=dev",
        "GLUE_COMMIT=0123abc",
    ]


def test_ci_outputs_of_a_bump_of_several_services_or_a_dry_run_are_empty_not_none() -> None:
    many = ci_outputs(bumped(ServiceTag("a", "v1.2.0"), ServiceTag("b", "v9.1.0")))
    assert many["service"] == "a,b"
    assert many["old_tag"] == many["new_tag"] == ""
    dry = ci_outputs(bumped(ServiceTag("a", "v1.2.0"), commit=None))
    assert (dry["status"], dry["commit"]) == ("would-change", "")


def test_promote_names_services_or_takes_all_and_strict_only_with_all() -> None:
    from gitops_glue.repo.promote import PromoteRequest

    named = PromoteRequest.of("prod", ["a", "b"], ci=CI, min_age=60)
    assert (named.target, named.services, named.min_age, named.ci) == ("prod", ("a", "b"), 60, CI)
    every = PromoteRequest.of("prod", [], every=True, strict=True)
    assert (every.services, every.strict) == (None, True)
    cases = [
        (("", ["a"]), {}, "--to ENV is required: the environment to promote to"),
        (("prod", []), {}, "name the service(s) to promote, or pass --all (not both)"),
        (("prod", ["a"]), {"every": True}, "name the service(s) to promote, or pass --all"),
        (("prod", ["a"]), {"strict": True}, "--strict goes with --all: named services are"),
    ]
    for args, kwargs, message in cases:
        with pytest.raises(UsageError) as refused:
            PromoteRequest.of(*args, **kwargs)  # type: ignore[arg-type]
        assert refused.value.message.startswith(message)


def test_rollback_takes_one_reason_for_hold_and_reject() -> None:
    from gitops_glue.repo.rollback import RollbackRequest

    both = RollbackRequest.of("dev", "abc1234", hold=True, reject=True, reason="broken")
    assert (both.hold_reason, both.reject_reason, both.to_commit) == ("broken", "broken", "abc1234")
    held = RollbackRequest.of("dev", hold=True, reason="broken", actor="ops")
    assert (held.hold_reason, held.reject_reason, held.actor) == ("broken", None, "ops")
    assert RollbackRequest.of("dev").hold_reason is None
    with pytest.raises(UsageError, match="--reason goes with --hold or --reject"):
        RollbackRequest.of("dev", reason="broken")
