"""What a deployment changes: statuses, first deployments, scope and source links."""

from __future__ import annotations

from gitops_glue.messages.changes import ChangeSet, compute
from gitops_glue.service_version import ServiceVersion as V

GH = "https://github.com/example/a"
GL = "https://gitlab.com/example/b"
SHA1 = "3f9c2e1" + "a" * 33
SHA2 = "4e5f6a7" + "b" * 33


def statuses(cs: ChangeSet) -> dict[str, str]:
    return {s.service: s.status for s in cs.services}


def test_added_removed_changed_unchanged() -> None:
    old = {"a": V("1"), "b": V("2"), "c": V("3")}
    new = {"a": V("1"), "b": V("20"), "d": V("4")}
    cs = compute("dev", old, new)
    assert statuses(cs) == {"a": "unchanged", "b": "changed", "c": "removed", "d": "added"}
    assert [s.service for s in cs.changed] == ["b", "c", "d"]
    assert [s.service for s in cs.unchanged] == ["a"]
    assert not cs.first_deployment
    assert cs.has_changes


def test_same_tag_other_revision_is_a_change() -> None:
    cs = compute("dev", {"a": V("v1.2.3", SHA1)}, {"a": V("v1.2.3", SHA2)}, sources={"a": GH})
    [a] = cs.services
    assert a.status == "changed" and a.revision_only
    assert a.summary() == "a v1.2.3 (revision 3f9c2e1 → 4e5f6a7)"
    assert a.compare_url() == f"{GH}/compare/{SHA1}...{SHA2}"


def test_revision_known_on_one_side_only_is_no_change() -> None:
    cs = compute("dev", {"a": V("v1", None)}, {"a": V("v1", SHA1)})
    assert statuses(cs) == {"a": "unchanged"}


def test_first_deployment_when_nothing_is_recorded() -> None:
    cs = compute("dev", None, {"a": V("1"), "b": V("2")})
    assert cs.first_deployment
    assert statuses(cs) == {"a": "added", "b": "added"}


def test_empty_record_is_not_a_first_deployment() -> None:
    cs = compute("dev", {}, {"a": V("1")})
    assert not cs.first_deployment
    assert statuses(cs) == {"a": "added"}


def test_scope_ignores_other_releases_services() -> None:
    cs = compute("dev", {"a": V("1"), "b": V("2")}, {"a": V("3")}, scope=["a"])
    assert statuses(cs) == {"a": "changed"}


def test_links_github_and_gitlab() -> None:
    cs = compute(
        "dev",
        {"a": V("3f9c2e1"), "b": V("1.0.0", SHA1)},
        {"a": V("4e5f6a7"), "b": V("1.1.0", SHA2)},
        sources={"a": GH, "b": GL},
    )
    a, b = cs.services
    assert a.old_url() == f"{GH}/commit/3f9c2e1"  # a SHA-like tag stands for its revision
    assert a.compare_url() == f"{GH}/compare/3f9c2e1...4e5f6a7"
    assert b.new_url() == f"{GL}/-/commit/{SHA2}"
    assert b.compare_url() == f"{GL}/-/compare/{SHA1}...{SHA2}"
    # A semver tag without a revision has no commit to link to.
    c = compute("dev", {"c": V("1.0.0")}, {"c": V("1.1.0")}, sources={"c": GH}).services[0]
    assert c.old_url() == c.compare_url() == ""
