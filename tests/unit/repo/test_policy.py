"""Tag policy: which tags an environment accepts (check_tag)."""

from __future__ import annotations

import pytest

from gitops_glue.config import TagPolicy
from gitops_glue.errors import PolicyError
from gitops_glue.repo.policy import check_tag


@pytest.mark.parametrize("tag", ["3f9c2e1", "v1.2.3", "main-10-2222222", "_x", "A" * 128])
def test_valid_tags_pass_an_open_policy(tag: str) -> None:
    check_tag(tag, TagPolicy(), "dev")


@pytest.mark.parametrize("tag", ["", "bad tag!", ".hidden", "-dash", "a" * 129, "x/y", "é"])
def test_invalid_tag_syntax_is_refused(tag: str) -> None:
    with pytest.raises(PolicyError, match="is not a valid image tag"):
        check_tag(tag, TagPolicy(allow_mutable=True), "dev")


@pytest.mark.parametrize("tag", ["latest", "LATEST", "Latest"])
def test_mutable_tags_are_refused_whatever_their_case(tag: str) -> None:
    with pytest.raises(PolicyError, match="refuses the mutable tag") as info:
        check_tag(tag, TagPolicy(), "prod")
    assert "'prod'" in info.value.message and info.value.hint


def test_allow_mutable_lets_mutable_tags_through() -> None:
    check_tag("latest", TagPolicy(allow_mutable=True), "dev")


def test_the_allow_pattern_must_match_the_whole_tag() -> None:
    policy = TagPolicy(allow=r"v[0-9]+\.[0-9]+\.[0-9]+")
    check_tag("v1.2.3", policy, "prod")
    for tag in ("v1.2.3-rc1", "xv1.2.3", "1.2.3"):
        with pytest.raises(PolicyError, match="does not match the policy"):
            check_tag(tag, policy, "prod")


def test_own_mutable_list_replaces_the_default() -> None:
    policy = TagPolicy(mutable_tags=["edge"])
    check_tag("latest", policy, "dev")
    with pytest.raises(PolicyError, match="mutable tag 'edge'"):
        check_tag("edge", policy, "dev")
