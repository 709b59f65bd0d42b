"""How ``glue notify`` fills in what it was asked: the deployment from a hook Job's options
or a checkout, glue.yaml's defaults, the CI's actor and pipeline, an apply report's failure
lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gitops_glue.cluster.diagnose import PodProblem
from gitops_glue.deploy.apply import ApplyResult
from gitops_glue.errors import ConfigError, UsageError
from gitops_glue.integrations.ci import CiContext
from gitops_glue.messages import notify
from gitops_glue.messages.phase import Phase
from gitops_glue.service_version import ServiceVersion as V
from tests.support.helpers import copy_example

CI = CiContext(system="gitlab", actor="dev1", pipeline_url="https://gitlab.example.com/p/1")


def hook(directory: Path, **kw: object) -> notify.NotifyRequest:
    base: dict[str, object] = {
        "phase": Phase.pre_upgrade,
        "environment": "prod",
        "directory": directory,
        "services": ("a",),
        "tag": "v1.2.3",
    }
    return notify.NotifyRequest(**{**base, **kw})  # type: ignore[arg-type]


def build(req: notify.NotifyRequest) -> tuple[notify.NotifyRequest, notify.Deployment]:
    loaded = notify.config_for(req)
    return notify.with_defaults(req, CI, loaded), notify.deployment(req, loaded)


def test_hook_mode_needs_no_glue_yaml_and_defaults_to_glue_env(tmp_path: Path) -> None:
    req, what = build(hook(tmp_path, revision="abc1234", release="a-api"))
    assert what.record_namespace == "glue-prod"
    assert what.new == {"a": V("v1.2.3", "abc1234", "a-api")}
    assert (what.releases, what.scope, what.state_release) == ({"a": "a-api"}, ["a"], "a-api")
    assert (req.actor, req.pipeline_url) == ("dev1", "https://gitlab.example.com/p/1")
    assert (req.thread, req.quiet_when_unchanged, req.template) == ("reply", False, None)


def test_hook_mode_takes_the_namespace_from_glue_yaml_when_there_is_one(tmp_path: Path) -> None:
    repo = copy_example(tmp_path / "deploy")
    assert build(hook(repo))[1].record_namespace == "example-prod"
    req, what = build(hook(repo, record_namespace="mine", actor="me"))
    assert (what.record_namespace, req.actor) == ("mine", "me")


def test_hook_mode_is_for_exactly_one_service(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="exactly one --service"):
        build(hook(tmp_path, services=("a", "b")))
    with pytest.raises(UsageError, match="exactly one --service"):
        build(hook(tmp_path, services=()))


def test_without_a_tag_the_checkout_is_needed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no glue\.yaml"):
        build(hook(tmp_path, tag=None))


def test_from_a_checkout_every_service_of_the_environment(tmp_path: Path) -> None:
    repo = copy_example(tmp_path / "deploy")
    _, what = build(hook(repo, tag=None, services=(), environment="dev"))
    assert what.new == {"a": V("3f9c2e1", "3f9c2e1", "a"), "b": V("9a8b7c6", "9a8b7c6", "b")}
    assert what.record_namespace == "example-dev"
    assert what.sources == {
        "a": "https://github.com/example/a",
        "b": "https://gitlab.com/example/b",
    }
    assert (what.scope, what.state_release) == (None, None)
    _, only_b = build(hook(repo, tag=None, services=("b",), environment="dev"))
    assert list(only_b.new) == ["b"] and only_b.scope == ["b"]


def test_glue_yaml_settings_and_template_are_defaults_the_options_override(
    tmp_path: Path,
) -> None:
    repo = copy_example(tmp_path / "deploy")
    config = repo / "glue.yaml"
    config.write_text(
        config.read_text()
        + "notify:\n  thread: update\n  quiet_when_unchanged: true\n"
        + "templates:\n  notify: messages/notify.md.j2\n"
    )
    req, _ = build(hook(repo))
    assert (req.thread, req.quiet_when_unchanged) == ("update", True)
    assert req.template == repo / "messages" / "notify.md.j2"
    mine = tmp_path / "mine.j2"
    req, _ = build(hook(repo, thread="reply", quiet_when_unchanged=False, template=mine))
    assert (req.thread, req.quiet_when_unchanged, req.template) == ("reply", False, mine)


def test_failed_phase_names_the_failing_pods_from_the_apply_report(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    report.write_text(
        json.dumps(
            {
                "failing_pods": [
                    {
                        "namespace": "prod",
                        "pod": "a-1",
                        "container": "app",
                        "reason": "CrashLoopBackOff",
                        "logs": ["boom"],
                    }
                ]
            }
        )
    )
    _, failed = build(hook(tmp_path, phase=Phase.failed, apply_report=report))
    assert failed.failure == ("prod/a-1 [app]: CrashLoopBackOff | last log: boom",)
    _, started = build(hook(tmp_path, apply_report=report))
    assert started.failure == ()
    _, missing = build(hook(tmp_path, phase=Phase.failed, apply_report=tmp_path / "none.json"))
    assert missing.failure == ()
    report.write_text("not json")
    with pytest.raises(UsageError, match="not a glue apply report"):
        build(hook(tmp_path, phase=Phase.failed, apply_report=report))


def test_the_failed_phase_reads_the_report_glue_apply_writes(tmp_path: Path) -> None:
    crash = PodProblem("prod", "a-1", "app", "CrashLoopBackOff", "back-off", ["1", "2", "3", "4"])
    report = tmp_path / "report.json"
    result = ApplyResult("prod", ["a"], [], False, "ci", problems=[crash], error="helmfile: boom")
    report.write_text(json.dumps(result.to_json()))
    _, failed = build(hook(tmp_path, phase=Phase.failed, apply_report=report))
    assert failed.failure == ("prod/a-1 [app]: CrashLoopBackOff: back-off | last log: 2 / 3 / 4",)
    # No pod explains it: the last lines of helmfile's error do.
    result = ApplyResult("prod", ["a"], [], False, "ci", error="one\ntwo\nhelmfile: boom\n")
    report.write_text(json.dumps(result.to_json()))
    _, failed = build(hook(tmp_path, phase=Phase.failed, apply_report=report))
    assert failed.failure == ("one", "two", "helmfile: boom")
