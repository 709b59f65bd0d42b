"""Commit messages from ``git.commit_template`` / ``git.skip_ci``, and SERVICE=TAG parsing."""

from __future__ import annotations

import pytest

from gitops_glue.config import GitSettings
from gitops_glue.errors import UsageError
from gitops_glue.integrations.ci import CiContext
from gitops_glue.repo.bump import ServiceTag, parse_service_tags
from gitops_glue.repo.commit import parse_trailers
from gitops_glue.repo.message import MessageParts, ServiceLine, compose, with_skip_ci

PARTS = MessageParts(
    action="bump",
    environment="test",
    title="feat(test): update a to 1.4.0, chart to 1.4.0",
    body=("a in test: 1.3.0 -> 1.4.0",),
    services=(
        ServiceLine("a", "1.3.0", "1.4.0", "r13", "r14"),
        ServiceLine("chart", None, "1.4.0"),
    ),
    trailers=(
        ("Glue-Environment", "test"),
        ("Glue-Service", "a"),
        ("Glue-Tag", "1.4.0"),
        ("Glue-Previous-Tag", "1.3.0"),
        ("Glue-Service", "chart"),
        ("Glue-Tag", "1.4.0"),
        ("Glue-Previous-Tag", ""),
        ("Pipeline", "https://ci.example/1"),
    ),
    ci=CiContext(pipeline_url="https://ci.example/1", actor="dev1"),
    upstream_repo="https://github.com/example/a",
    upstream_revision="r14",
)


def test_without_a_template_glue_writes_its_own_wording() -> None:
    assert compose(GitSettings(), PARTS) == (
        "feat(test): update a to 1.4.0, chart to 1.4.0\n"
        "\n"
        "a in test: 1.3.0 -> 1.4.0\n"
        "\n"
        "Glue-Environment: test\n"
        "Glue-Service: a\n"
        "Glue-Tag: 1.4.0\n"
        "Glue-Previous-Tag: 1.3.0\n"
        "Glue-Service: chart\n"
        "Glue-Tag: 1.4.0\n"
        "Pipeline: https://ci.example/1\n"
    )


def test_template_sees_services_upstream_pipeline_and_actor() -> None:
    template = (
        "[{{ action }}] {{ environment }}: "
        "{{ services | map(attribute='name') | join(', ') }}\n\n\n"
        "{% for s in services %}{{ s.name }} {{ s.old_tag or '-' }} -> {{ s.new_tag }}"
        " {{ s.new_revision }}\n{% endfor %}"
        "from {{ upstream_repo }}@{{ upstream_revision }} by {{ actor }} ({{ pipeline }})   \n"
    )
    message = compose(GitSettings(commit_template=template), PARTS)
    head, _trailers = message.split("\n\nGlue-Environment: test\n")
    # Trailing blanks stripped, runs of empty lines squeezed.
    assert head.splitlines() == [
        "[bump] test: a, chart",
        "",
        "a 1.3.0 -> 1.4.0 r14",
        "chart - -> 1.4.0",
        "from https://github.com/example/a@r14 by dev1 (https://ci.example/1)",
    ]
    assert [k for k, _v in parse_trailers(message)][:2] == ["Glue-Environment", "Glue-Service"]


def test_trailers_stay_last_whatever_the_template_writes() -> None:
    template = "deploy\n\nGlue-Environment: prod\nGlue-Service: evil"
    message = compose(GitSettings(commit_template=template), PARTS)
    trailers = parse_trailers(message)
    assert ("Glue-Environment", "test") in trailers
    assert ("Glue-Environment", "prod") not in trailers
    assert [v for k, v in trailers if k == "Glue-Service"] == ["a", "chart"]


def test_skip_ci_goes_on_the_title_once() -> None:
    plain = compose(GitSettings(skip_ci=True), PARTS)
    assert plain.splitlines()[0] == "feat(test): update a to 1.4.0, chart to 1.4.0 [skip ci]"
    own = compose(GitSettings(skip_ci=True, commit_template="[skip ci] {{ title }}"), PARTS)
    assert own.splitlines()[0] == "[skip ci] feat(test): update a to 1.4.0, chart to 1.4.0"
    assert own.count("[skip ci]") == 1


def test_skip_ci_on_a_message_glue_builds_itself() -> None:
    message = "revert(dev): roll back x\n\nGlue-Environment: dev\n"
    assert with_skip_ci(GitSettings(), message) == message
    skipped = with_skip_ci(GitSettings(skip_ci=True), message)
    assert skipped == "revert(dev): roll back x [skip ci]\n\nGlue-Environment: dev\n"
    assert with_skip_ci(GitSettings(skip_ci=True), skipped) == skipped


@pytest.mark.parametrize(
    ("template", "error"),
    [
        ("{{ nope }}", "'nope' is undefined"),
        ("{% for %}", "line 1"),
        ("   \n\n", "rendered an empty message"),
        ("a{{ '\\x1b' }}b", "control character"),
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "git.commit_template"),
    ],
)
def test_a_bad_template_is_a_usage_error(template: str, error: str) -> None:
    with pytest.raises(UsageError, match=r"git\.commit_template") as info:
        compose(GitSettings(commit_template=template), PARTS)
    assert error in info.value.message


def test_service_tag_arguments() -> None:
    assert parse_service_tags(["a", "1.4.0"], "r1") == (ServiceTag("a", "1.4.0", "r1"),)
    assert parse_service_tags(["a=1.4.0@abc", "b=1.4.0", "chart=1.4.0"], "shared") == (
        ServiceTag("a", "1.4.0", "abc"),
        ServiceTag("b", "1.4.0", "shared"),
        ServiceTag("chart", "1.4.0", "shared"),
    )
    assert parse_service_tags(["a=1.4.0"]) == (ServiceTag("a", "1.4.0", None),)
    for bad in (["a"], ["a=", "b=1"], ["=1"], ["a=1@"], ["a", "b", "c"], []):
        with pytest.raises(UsageError):
            parse_service_tags(bad)
    with pytest.raises(UsageError, match="more than once"):
        parse_service_tags(["a=1", "a=2"])
