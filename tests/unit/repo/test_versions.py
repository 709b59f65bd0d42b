"""Where a service's version lives: reading it, and where a new one is written.

The layouts are the shapes real helmfile repositories use (written for the suite):
per-release values files with shared defaults, the same key in every service's
file, environment values with a common file, empty and comment-only files.
"""

from __future__ import annotations

import re

import pytest

from gitops_glue.config import GlueConfig, parse_config
from gitops_glue.errors import UsageError
from gitops_glue.repo import versions
from gitops_glue.repo.bump import BumpRequest, ServiceTag, plan_bump
from gitops_glue.repo.promote import PromoteRequest, plan_promote

PER_RELEASE = """\
environments:
  - name: dev
  - name: prod
service_defaults:
  tag_key: image.tag
  values:
    - config/default/{service}-values.yaml
    - config/{env}/values.yaml
    - config/{env}/{service}-values.yaml
services:
  users:
  orders:
"""

FILES = {
    "config/default/users-values.yaml": "image:\n  repository: example/users\n  tag: latest\n",
    "config/default/orders-values.yaml": "image:\n  repository: example/orders\n  tag: latest\n",
    "config/dev/values.yaml": "replicas: 1\n",
    "config/prod/values.yaml": "replicas: 3\nimage:\n  tag: '0.9.0'\n",
    "config/dev/users-values.yaml": "image:\n  tag: v4.0.0\n",
    "config/dev/orders-values.yaml": "# orders in dev: defaults only\n",
    "config/prod/users-values.yaml": "{}\n",
}


def per_release() -> GlueConfig:
    return parse_config(PER_RELEASE)


def test_each_service_reads_its_own_files_in_helmfiles_order() -> None:
    config = per_release()
    dev, prod = config.environments
    users = versions.read_version(FILES.get, config, dev, "users")
    assert (users.tag, users.file) == ("v4.0.0", "config/dev/users-values.yaml")
    orders = versions.read_version(FILES.get, config, dev, "orders")
    assert (orders.tag, orders.file) == ("latest", "config/default/orders-values.yaml")
    # prod's shared file sets the key after every service's default
    assert versions.read_version(FILES.get, config, prod, "users").tag == "0.9.0"


def test_a_bump_writes_the_services_own_file_and_never_a_shared_default() -> None:
    config = per_release()
    change = plan_bump(config, FILES.get, BumpRequest("orders", "v2.0.0", "dev"))
    # the tag came from config/default/orders-values.yaml, shared with prod: the override
    # goes into dev's own (comment-only) file, in block style
    assert change.files() == {
        "config/dev/orders-values.yaml": "# orders in dev: defaults only\nimage:\n  tag: v2.0.0\n"
    }
    change = plan_bump(config, FILES.get, BumpRequest("users", "v5.0.0", "prod"))
    # prod's shared config/prod/values.yaml sets image.tag for every service: the
    # service's own file after it takes the new tag; `{}` becomes a block mapping
    assert change.files() == {"config/prod/users-values.yaml": "image:\n  tag: v5.0.0\n"}


def test_a_bump_with_no_file_of_its_own_after_the_shared_one_is_refused_naming_it() -> None:
    config = per_release()
    files = {k: v for k, v in FILES.items() if k != "config/prod/users-values.yaml"}
    with pytest.raises(UsageError) as err:
        plan_bump(config, files.get, BumpRequest("users", "v5.0.0", "prod"))
    assert "config/prod/values.yaml, which prod/orders merges too" in err.value.message
    assert "config/prod/users-values.yaml, which does not exist" in err.value.message
    assert (err.value.hint or "").startswith("create config/prod/users-values.yaml")


def test_a_bump_of_several_services_edits_each_ones_file() -> None:
    config = per_release()
    change = plan_bump(
        config,
        FILES.get,
        BumpRequest.of("dev", [ServiceTag("users", "v5.0.0"), ServiceTag("orders", "v5.0.0")]),
    )
    assert sorted(change.files()) == [
        "config/dev/orders-values.yaml",
        "config/dev/users-values.yaml",
    ]
    assert [b.file for b in change.details.bumps] == [
        "config/dev/users-values.yaml",
        "config/dev/orders-values.yaml",
    ]


def test_promote_writes_the_targets_own_file() -> None:
    config = per_release()
    change = plan_promote(config, FILES.get, PromoteRequest("prod", ("users",)))
    assert change.files() == {"config/prod/users-values.yaml": "image:\n  tag: v4.0.0\n"}


ENV_VALUES = """\
environments:
  - name: dev
    values: [envs/common.yaml, envs/dev.yaml]
  - name: prod
    values: [envs/common.yaml]
services:
  a: {tag_key: a.tag}
  b: {tag_key: b.tag}
"""


def test_an_environments_common_file_is_never_written_for_one_environment() -> None:
    config = parse_config(ENV_VALUES)
    files = {"envs/common.yaml": "a:\n  tag: '1'\nb:\n  tag: '1'\n", "envs/dev.yaml": "{}\n"}
    change = plan_bump(config, files.get, BumpRequest("a", "2", "dev"))
    assert change.files() == {"envs/dev.yaml": "a:\n  tag: '2'\n"}
    # prod has nothing of its own after the common file, which dev merges too
    with pytest.raises(UsageError, match=re.escape("no values file of its own")):
        plan_bump(config, files.get, BumpRequest("a", "2", "prod"))


def test_keys_of_different_services_in_one_file_are_not_shared() -> None:
    config = parse_config(ENV_VALUES.replace("values: [envs/common.yaml]\n", "values: [p.yaml]\n"))
    files = {"envs/common.yaml": "{}\n", "envs/dev.yaml": "a:\n  tag: '1'\nb:\n  tag: '1'\n"}
    dev = config.environment("dev")
    assert versions.sharers(config, dev, "a", "envs/dev.yaml") == []
    assert versions.target(files.get, config, dev, "a") == "envs/dev.yaml"


def test_placeholders_and_paths_are_checked_when_glue_yaml_loads() -> None:
    from gitops_glue.errors import ConfigError

    with pytest.raises(ConfigError, match=re.escape("unknown placeholder {environment}")):
        parse_config(PER_RELEASE.replace("{env}/values", "{environment}/values"))
    with pytest.raises(ConfigError, match=re.escape("no ./, .., // or absolute paths")):
        parse_config(PER_RELEASE.replace("- config/default/", "- ./config/default/"))
    with pytest.raises(ConfigError, match="glue init expands globs"):
        parse_config(ENV_VALUES.replace("envs/dev.yaml]", "envs/*.yaml]"))
