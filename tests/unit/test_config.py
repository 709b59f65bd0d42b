"""glue.yaml: validation errors name file, line and key; defaults; policy merge; lookups."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops_glue.config import (
    DEFAULT_MUTABLE_TAGS,
    load_config,
    parse_config,
    repo_template,
)
from gitops_glue.errors import ConfigError, UsageError

MINIMAL = """\
version: 1
environments:
  - name: dev
    values: environments/dev.yaml
  - name: prod
    values: [environments/base.yaml, environments/prod.yaml]
    namespace: team-prod
services:
  a:
    tag_key: a.image.tag
"""


def test_defaults() -> None:
    config = parse_config(MINIMAL)
    dev, prod = config.environments
    assert dev.values == ["environments/dev.yaml"]  # one file is a list of one
    assert (dev.record_namespace, prod.record_namespace) == ("glue-dev", "team-prod")
    assert config.git.branch == "main" and config.git.author.name == "glue-bot"
    assert (config.notify.thread, config.notify.quiet_when_unchanged) == ("reply", False)
    assert config.tag_policy.mutable_tags == DEFAULT_MUTABLE_TAGS
    assert not config.tag_policy.allow_mutable
    svc = config.service("a")
    assert svc.release_name("a") == "a" and svc.revision_key is None
    assert config.auto_release == []


def test_environment_policy_merges_over_the_global_one() -> None:
    config = parse_config(
        MINIMAL.replace(
            "    namespace: team-prod\n",
            "    namespace: team-prod\n    tag_policy:\n      allow: '^v[0-9]+$'\n",
        )
        + "tag_policy:\n  allow_mutable: true\n  mutable_tags: [latest]\n"
    )
    dev, prod = config.environments
    assert config.policy_for(dev) == config.tag_policy
    merged = config.policy_for(prod)
    # The environment sets allow; what it leaves unset comes from the global policy.
    assert (merged.allow, merged.allow_mutable, merged.mutable_tags) == (
        "^v[0-9]+$",
        True,
        ["latest"],
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("    tag_key: a.image.tag\n", "    tag_key: a.image.tag\n    tagkey: x\n"),
            "glue.yaml:11: services.a.tagkey: unknown key (check the spelling)",
        ),
        (
            ("  - name: dev\n", "  - name: Dev_1\n"),
            "glue.yaml:3: environments[0].name: use lower-case letters, digits and dashes",
        ),
        (
            ("    values: environments/dev.yaml\n", "    values: ../dev.yaml\n"),
            "glue.yaml:4: environments[0].values: '../dev.yaml': values files are paths",
        ),
        (
            ("    tag_key: a.image.tag\n", "    tag_key: a..tag\n"),
            "glue.yaml:10: services.a.tag_key: invalid key path",
        ),
        (
            ("  a:\n    tag_key: a.image.tag\n", "  a:\n    source_repo: https://x.example/a\n"),
            "glue.yaml:9: services.a.tag_key: required key is missing",
        ),
        (
            ("version: 1\n", "version: 1\ngit: {branch: 3}\n"),
            "glue.yaml:2: git.branch: expected a string, got an integer",
        ),
        (
            ("version: 1\n", "version: 1\nnotify: {thread: sideways}\n"),
            "glue.yaml:2: notify.thread: use one of 'reply', 'update'",
        ),
        (
            ("    namespace: team-prod\n", "    namespace: team-prod\n    tag_policy: [x]\n"),
            "glue.yaml:8: environments[1].tag_policy: expected a mapping or null, got a list",
        ),
    ],
)
def test_validation_errors_name_file_line_and_key(change: tuple[str, str], expected: str) -> None:
    old, new = change
    assert old in MINIMAL
    with pytest.raises(ConfigError) as err:
        parse_config(MINIMAL.replace(old, new), "glue.yaml")
    assert expected in str(err.value)


def test_whole_file_errors() -> None:
    with pytest.raises(ConfigError, match=r"^x\.yaml:2: not valid YAML"):
        parse_config("a: 1\n  b: [\n", "x.yaml")
    with pytest.raises(ConfigError, match="expected a mapping"):
        parse_config("- a\n")
    doubled = MINIMAL.replace("  - name: prod\n", "  - name: dev\n")
    with pytest.raises(ConfigError, match="dev listed more than once"):
        parse_config(doubled)
    with pytest.raises(ConfigError, match="auto_release: environment 'qa' is not in"):
        parse_config(MINIMAL + "auto_release:\n  - branch: main\n    to: qa\n")


def test_lookups_say_what_exists() -> None:
    config = parse_config(MINIMAL)
    with pytest.raises(UsageError) as env_err:
        config.environment("staging")
    assert env_err.value.hint == "environments in glue.yaml: dev, prod"
    with pytest.raises(UsageError) as svc_err:
        config.service("b")
    assert svc_err.value.hint == "services in glue.yaml: a"


def test_auto_release_matches_branch_patterns() -> None:
    config = parse_config(MINIMAL + "auto_release:\n  - branch: release/*\n    to: dev\n")
    assert config.auto_release_allows("release/1.2", "dev")
    assert not config.auto_release_allows("release/1.2", "prod")
    assert not config.auto_release_allows("main", "dev")


def test_load_finds_glue_yaml_above_and_names_templates(tmp_path: Path) -> None:
    (tmp_path / "glue.yaml").write_text(MINIMAL + "templates:\n  notify: t/notify.j2\n")
    below = tmp_path / "environments"
    below.mkdir()
    loaded = load_config(below)
    assert (loaded.root, loaded.path) == (tmp_path, tmp_path / "glue.yaml")
    assert loaded.template("notify") == tmp_path / "t" / "notify.j2"
    assert loaded.template("announce") is None
    assert repo_template(below, "notify") == tmp_path / "t" / "notify.j2"
    assert repo_template(below, "announce") is None


def test_repo_template_without_glue_yaml_or_with_a_wrong_value(tmp_path: Path) -> None:
    assert repo_template(tmp_path, "announce") is None
    (tmp_path / "glue.yaml").write_text("templates:\n  announce: [a, b]\n")
    with pytest.raises(ConfigError, match=r"templates\.announce: use a path"):
        repo_template(tmp_path, "announce")
