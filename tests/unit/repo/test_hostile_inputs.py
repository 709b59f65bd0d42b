"""Hostile input (issue 15 items 5, 8, 9, 10): refused fast, with exit 2 and a clear message.

Duplicate keys, control characters in values that reach a commit message,
exponential regular expressions in glue.yaml, and files past glue's limits
(size, nesting depth, alias expansion, key path and tag length; see Limits in
docs/config.md). The end-to-end runs of every command on these inputs are in
tests/e2e/test_hostile_inputs.py.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import pytest

from gitops_glue import inputs, keypath, yamlnodes
from gitops_glue.config import TagPolicy, parse_config
from gitops_glue.errors import ConfigError, ExitCode, PolicyError, UsageError, YamlEditError
from gitops_glue.integrations.ci import CiContext
from gitops_glue.repo import values
from gitops_glue.repo.bump import BumpRequest, plan_bump
from gitops_glue.repo.policy import check_tag
from gitops_glue.repo.promote import PromoteRequest, plan_promote
from gitops_glue.repo.release import ReleaseRequest, plan_release
from tests.unit.repo.test_planners import FILES, GLUE_YAML, config, reader

HOSTILE = Path(__file__).resolve().parents[2] / "data" / "hostile"


def _corpus(name: str) -> str:
    return (HOSTILE / name).read_text()


# --------------------------------------------------------------------------- item 5: duplicates


def test_duplicate_key_in_a_values_file_is_refused_naming_both_lines() -> None:
    text = _corpus("duplicate-keys.yaml")
    for action in (
        lambda: values.get_value(text, "a.image.tag", filename="dev.yaml"),
        lambda: values.set_value(text, "a.image.tag", "v2", filename="dev.yaml"),
        # Also where glue neither reads nor edits: Helm reads the whole file.
        lambda: values.get_value(text, "namespace", filename="dev.yaml"),
    ):
        with pytest.raises(YamlEditError) as err:
            action()
        assert err.value.exit_code == ExitCode.BAD_INPUT
        assert "duplicate key 'tag'" in err.value.message
        assert "first on line 5, again on line 7" in err.value.message
        assert err.value.message.startswith("dev.yaml:7:")


def test_duplicate_key_in_a_flow_mapping_and_a_list_item_are_refused() -> None:
    with pytest.raises(YamlEditError, match="duplicate key 'x' \\(first on line 1, again"):
        yamlnodes.parse_documents("m: {x: 1, y: 2, x: 3}\n")
    with pytest.raises(YamlEditError, match="first on line 2, again on line 3"):
        yamlnodes.parse_documents("l:\n  - name: a\n    name: b\n")


def test_same_key_in_different_mappings_is_fine() -> None:
    docs = yamlnodes.parse_documents("a:\n  tag: 1\nb:\n  tag: 2\n---\na: 3\n")
    assert len(docs) == 2


def test_bump_refuses_a_values_file_with_duplicate_keys() -> None:
    files = dict(FILES)
    files["envs/dev.yaml"] = 'a:\n  image:\n    tag: "v1"\n    tag: "v2"\n'
    with pytest.raises(
        YamlEditError, match=r"duplicate key 'tag'.*first on line 3, again on line 4"
    ):
        plan_bump(config(), reader(files), BumpRequest("a", "v1.2.0", "dev"))


def test_glue_yaml_with_duplicate_keys_is_refused_naming_both_lines() -> None:
    doubled = GLUE_YAML.replace("services:\n", "services:\n  b: {tag_key: x.image.tag}\n")
    with pytest.raises(ConfigError) as err:
        parse_config(doubled, "glue.yaml")
    assert "duplicate key 'b'" in err.value.message
    assert "first on line 15, again on line 17" in err.value.message


# --------------------------------------------------------------------------- item 8: one line


@pytest.mark.parametrize("tag", ["v1.2.3\n", "v1.2.3\r", "v1.2.3\nGlue-Environment: prod"])
def test_tag_with_a_trailing_newline_is_not_a_valid_tag(tag: str) -> None:
    with pytest.raises(PolicyError, match="is not a valid image tag"):
        check_tag(tag, TagPolicy(allow=r"^v[0-9]+\.[0-9]+\.[0-9]+$"), "prod")
    with pytest.raises(PolicyError, match="is not a valid image tag"):
        check_tag(tag, TagPolicy(), "dev")


@pytest.mark.parametrize(
    "field",
    [
        {"revision": "abc\nGlue-Environment: prod"},
        {"upstream_repo": "example/a\nGlue-Environment: prod"},
        {"revision": "abc\tdef"},
        {"upstream_repo": "example/a\x1b[31m"},
        {"revision": "abc\x7f"},
        {"ci": CiContext(actor="eve\nGlue-Environment: prod")},
        {"ci": CiContext(pipeline_url="https://ci/1\nGlue-Action: rollback")},
    ],
)
def test_a_newline_cannot_inject_a_trailer_into_a_bump(field: dict[str, Any]) -> None:
    req = dataclasses.replace(BumpRequest("a", "v1.2.0", "dev"), **field)
    with pytest.raises(UsageError, match="control character") as err:
        plan_bump(config(), reader(), req)
    assert err.value.exit_code == ExitCode.BAD_INPUT


def test_release_refuses_control_characters_too() -> None:
    req = ReleaseRequest("a", "dev", tag="v1.2.0", revision="r\nGlue-Environment: prod")
    with pytest.raises(UsageError, match="--revision: control character '\\\\n'"):
        plan_release(config(), reader(), req)
    req = ReleaseRequest("a", "dev", tag="v1.2.0", source_branch="main\nx")
    with pytest.raises(UsageError, match="--source-branch: control character"):
        plan_release(config(), reader(), req)


def test_promote_refuses_a_revision_with_a_newline_from_the_source_file() -> None:
    files = dict(FILES)
    files["envs/dev.yaml"] = (
        'a:\n  image:\n    tag: "v1.1.0"\n  revision: "r11\\nGlue-Environment: prod"\n'
    )
    with pytest.raises(UsageError, match=r"a's revision in dev \(a\.revision\): control"):
        plan_promote(config(), reader(files), PromoteRequest("staging", ("a",)))


def test_promote_refuses_a_tag_with_a_newline_from_the_source_file() -> None:
    files = dict(FILES)
    files["envs/dev.yaml"] = 'a:\n  image:\n    tag: "v1.1.0\\n"\n'
    with pytest.raises(PolicyError, match="is not a valid image tag"):
        plan_promote(config(), reader(files), PromoteRequest("staging", ("a",)))


def test_a_clean_bump_still_carries_its_trailers() -> None:
    req = BumpRequest("a", "v1.2.0", "dev", revision="abc123", upstream_repo="example/a")
    change = plan_bump(config(), reader(), req)
    assert "Upstream-Revision: abc123\n" in change.message
    assert change.message.count("Glue-Environment:") == 1


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("  - name: dev\n", '  - name: "dev\\n"\n'),
        ("  b: {tag_key: b.image.tag}", '  "b\\n": {tag_key: b.image.tag}'),
        (
            "  b: {tag_key: b.image.tag}",
            "  b: {tag_key: b.image.tag, source_repo: "
            '"https://x.example/b\\nGlue-Environment: prod"}',
        ),
    ],
)
def test_glue_yaml_names_with_a_trailing_newline_are_refused(old: str, new: str) -> None:
    with pytest.raises(ConfigError):
        parse_config(GLUE_YAML.replace(old, new, 1))


# --------------------------------------------------------------------------- item 9: regexes


@pytest.mark.parametrize(
    "pattern", [r"^(a+)+b$", r"^(a|a)+$", r"^(a?){30}a{30}$", r"^([0-9]+\.?)+$", r"(\w*)*x"]
)
def test_an_exponential_allow_pattern_is_refused_when_glue_yaml_loads(pattern: str) -> None:
    text = GLUE_YAML.replace(
        "tag_policy: {allow: '^v[0-9]+\\.[0-9]+\\.[0-9]+$'}", f"tag_policy: {{allow: '{pattern}'}}"
    )
    assert pattern in text
    with pytest.raises(ConfigError, match="exponential time") as err:
        parse_config(text, "glue.yaml")
    assert "environments[2].tag_policy.allow" in err.value.message


def test_an_exponential_branch_tag_scheme_is_refused() -> None:
    text = GLUE_YAML.replace(
        "b: {tag_key: b.image.tag}",
        "b: {tag_key: b.image.tag, branch_tags: '{branch}-(?P<order>([0-9]+)+)'}",
    )
    with pytest.raises(ConfigError, match=r"services\.b\.branch_tags: a variable repetition"):
        parse_config(text)


@pytest.mark.parametrize(
    "pattern",
    [
        r"^([0-9a-f]{7,40}|v?[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?)$",
        r"^v?[0-9]+\.[0-9]+\.[0-9]+$|^[0-9a-f]{7,40}$",
        r"v[0-9]+(\.[0-9]{2})+",
        r"(?P<order>[0-9]+)-(?P<revision>[0-9a-f]{7,40})",
        r"(main|release-[0-9]+)-[0-9a-f]{7}",
    ],
)
def test_usual_policy_patterns_load(pattern: str) -> None:
    inputs.check_regex_cost(pattern)
    text = GLUE_YAML.replace("'^v[0-9]+\\.[0-9]+\\.[0-9]+$'", f"'{pattern}'", 1)
    config = parse_config(text)
    assert config.policy_for(config.environments[2]) == TagPolicy(allow=pattern)


# --------------------------------------------------------------------------- item 10: limits


def _fast(action: object, match: str) -> None:
    start = time.monotonic()
    with pytest.raises(UsageError, match=match) as err:
        action()  # type: ignore[operator]
    assert err.value.exit_code == ExitCode.BAD_INPUT
    # Generous: the unlimited parse took 8 s at depth 3,000 and minutes for bombs.
    assert time.monotonic() - start < 5


def test_a_billion_laughs_values_file_is_refused_without_expanding_it() -> None:
    text = _corpus("billion-laughs.yaml")
    _fast(lambda: values.get_value(text, "lol9"), "more than 1,000,000 values")
    _fast(lambda: values.set_value(text, "a.image.tag", "v2"), "an alias bomb")


def test_an_alias_inside_its_own_anchor_is_refused() -> None:
    text = _corpus("self-alias.yaml")
    _fast(lambda: values.get_value(text, "a"), "refers to a collection it is inside of")


def test_a_chain_of_merge_keys_counts_as_nesting() -> None:
    lines = ["m0: &m0 {x: 1}"] + [f"m{i}: &m{i} {{<<: *m{i - 1}}}" for i in range(1, 300)]
    text = "\n".join(lines) + "\n"
    _fast(lambda: values.get_value(text, "m299.x"), "nested more than 100 levels")


@pytest.mark.parametrize("depth", [101, 3000, 100_000])
def test_deep_flow_nesting_is_refused_fast_without_a_recursion_error(depth: int) -> None:
    text = "a: " + "[" * depth + "]" * depth + "\n"
    _fast(lambda: values.get_value(text, "a"), "nested more than 100 levels deep")


def test_deep_block_nesting_is_refused() -> None:
    text = "".join(" " * i + f"k{i}:\n" for i in range(2000))
    _fast(lambda: yamlnodes.parse_documents(text, "v.yaml"), "^v.yaml:101: nested more than 100")


def test_nesting_up_to_the_limit_is_read() -> None:
    text = "a: " + "[" * 99 + "1" + "]" * 99 + "\n"
    assert values.get_value(text, "a") is not None


def test_a_file_over_the_size_limit_is_refused_before_parsing() -> None:
    text = "a:\n  image:\n    tag: x\n" + "k: v\n" * (inputs.MAX_FILE_BYTES // 5 + 10)
    _fast(lambda: values.get_value(text, "a.image.tag", filename="big.yaml"), "larger than")
    # Multi-byte characters count as bytes.
    wide = "a: " + "é" * (inputs.MAX_FILE_BYTES // 2 + 10) + "\n"
    _fast(lambda: yamlnodes.parse_documents(wide), "2 MiB")


def test_glue_yaml_past_the_limits_is_refused() -> None:
    _fast(lambda: parse_config(GLUE_YAML + _corpus("billion-laughs.yaml")), "alias bomb")
    _fast(lambda: parse_config(GLUE_YAML + "x: " + "[" * 5000 + "]" * 5000 + "\n"), "nested")
    _fast(lambda: parse_config(GLUE_YAML + "#" * inputs.MAX_FILE_BYTES), "larger than")


def test_a_key_path_over_the_limit_is_refused_with_a_short_message() -> None:
    long_path = "a." * 20_000 + "tag"
    _fast(lambda: keypath.parse(long_path), "key path of 40003 characters, longer than")
    with pytest.raises(UsageError) as err:
        values.get_value("a: 1\n", long_path)
    assert len(err.value.message) < 200


def test_a_long_tag_is_refused_with_a_short_message() -> None:
    req = BumpRequest("a", "v" * 40_000, "dev")
    with pytest.raises(UsageError) as err:
        plan_bump(config(), reader(), req)
    assert len(err.value.message) < 200
    with pytest.raises(PolicyError, match="not a valid image tag"):
        check_tag("a" * 129, TagPolicy(), "dev")
