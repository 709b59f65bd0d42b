"""What a reviewer sees of a change, and the plan digest apply checks: from helm's
output (as ``helm template`` writes it) to the comment and back, without helmfile."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping

import pytest

from gitops_glue.deploy.review import (
    COLLAPSE_LINES,
    COMMENT_LIMIT,
    COMMENT_MARKER,
    TRAILER,
    EnvDiff,
    EnvPlan,
    Rendering,
    ResourceKey,
    ReviewedPlan,
    check_plan,
    comment_body,
    compare,
    plan_of,
    plan_trailers,
    rendering_of,
    reviewed_plan,
    trailer_plan,
)
from gitops_glue.errors import OperationError, UsageError
from gitops_glue.repo.commit import parse_trailers

HEAD = "4a5b6c7d" + "1" * 32
BASE = "0f1e2d3c" + "2" * 32


def deployment(name: str, tag: str, *, env: str = "prod") -> str:
    return f"""---
# Source: web/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels:
    app: {name}
spec:
  replicas: 2
  selector:
    matchLabels:
      app: {name}
  template:
    metadata:
      labels:
        app: {name}
    spec:
      containers:
        - name: app
          image: "registry.example.com/{name}:{tag}"
          env:
            - name: ENVIRONMENT
              value: {env}
"""


def secret(name: str, values: dict[str, str], *, string_data: bool = False) -> str:
    section = "stringData" if string_data else "data"
    lines = "".join(
        f"  {k}: {v if string_data else base64.b64encode(v.encode()).decode()}\n"
        for k, v in values.items()
    )
    return f"""---
# Source: web/templates/secret.yaml
apiVersion: v1
kind: Secret
metadata:
  name: {name}
type: Opaque
{section}:
{lines}"""


def configmap(name: str, lines: int, word: str = "one", *, source: str = "cm.yaml") -> str:
    body = "".join(f"  key{i}: {word}-{i}-{'x' * 30}\n" for i in range(lines))
    return f"---\n# Source: web/templates/{source}\napiVersion: v1\nkind: ConfigMap\n" + (
        f"metadata:\n  name: {name}\ndata:\n{body}"
    )


def rendering(env: str, releases: dict[str, str], namespace: str = "shop") -> Rendering:
    return rendering_of(env, {(name, namespace): text for name, text in releases.items()})


def shop(env: str, web: str = "1.0.0", api: str = "2.0.0") -> Rendering:
    return rendering(env, {"web": deployment("web", web), "api": deployment("api", api)})


def resources_of(plan: EnvPlan | None) -> Mapping[ResourceKey, str]:
    assert plan is not None and plan.resources is not None
    return plan.resources


def changed_lines(diff: str) -> list[str]:
    """The lines a diff removes and adds, without its file headers."""
    return [
        line
        for line in diff.splitlines()
        if line[:1] in "+-" and not line.startswith(("--- ", "+++ "))
    ]


# --------------------------------------------------------------------------- what is shown


def test_a_tag_bump_is_one_image_line_in_one_release() -> None:
    prod = compare(shop("prod"), shop("prod", web="1.1.0"))
    dev = compare(shop("dev"), shop("dev"))

    assert [r.release for r in prod.releases] == ["web"]
    (change,) = prod.releases[0].changes
    assert change.key == ResourceKey("web", "Deployment", "shop", "web")
    assert change.change == "changed"
    assert changed_lines(change.diff) == [
        "-        image: registry.example.com/web:1.0.0",
        "+        image: registry.example.com/web:1.1.0",
    ]
    assert prod.changed and not dev.changed

    body = comment_body([dev, prod], HEAD, BASE)
    assert body.startswith(COMMENT_MARKER + "\n")
    assert f"`{HEAD[:12]}`" in body and f"`{BASE[:12]}`" in body
    assert "### <code>prod</code>: 1 release changes (resources: 1 changed)" in body
    assert "<summary>release <code>web</code>: 1 changed</summary>" in body
    assert "<code>api</code>" not in body
    assert "```diff\n--- base/Deployment/shop/web\n+++ head/Deployment/shop/web\n@@" in body
    assert "No change in: dev." in body
    assert "<code>dev</code>" not in body


def test_no_change_anywhere() -> None:
    diffs = [compare(shop(e), shop(e)) for e in ("dev", "prod")]
    assert not any(d.changed for d in diffs)
    assert diffs[0].releases == ()
    body = comment_body(diffs, HEAD, BASE)
    assert "No environment would change." in body
    assert "No change in: dev, prod." in body
    assert "<details" not in body


def test_an_environment_on_one_side_only_is_all_added_or_all_removed() -> None:
    new = compare(None, shop("qa"))
    assert new.changed and new.base is None
    assert [(c.key.name, c.change) for r in new.releases for c in r.changes] == [
        ("api", "added"),
        ("web", "added"),
    ]
    gone = compare(shop("qa"), None)
    assert gone.head is None and {c.change for r in gone.releases for c in r.changes} == {"removed"}
    body = comment_body([new, gone], HEAD, BASE)
    assert "### <code>qa</code>: new environment, 2 releases change (resources: 2 added)" in body
    assert "environment removed, 2 releases change (resources: 2 removed)" in body
    # A removed environment has nothing to deploy: no plan recorded for it.
    assert comment_body([gone], HEAD, BASE).count('"digest"') == 0


def test_key_order_and_formatting_are_no_change_but_any_value_is() -> None:
    text = deployment("web", "1.0.0")
    reordered = text.replace("  replicas: 2\n", "").replace(
        "spec:\n", 'spec:\n  "replicas": 2\n', 1
    )
    assert reordered != text
    one, two = rendering("prod", {"web": text}), rendering("prod", {"web": reordered})
    assert one.digest == two.digest
    assert not compare(one, two).changed
    three = rendering("prod", {"web": text.replace("replicas: 2", "replicas: 3")})
    assert three.digest != one.digest
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", one.digest)


def test_what_helm_rendered_is_read_per_release() -> None:
    cluster_role = (
        "---\n# Source: web/templates/rbac.yaml\napiVersion: rbac.authorization.k8s.io/v1\n"
        "kind: ClusterRole\nmetadata:\n  name: reader\n"
    )
    elsewhere = configmap("settings", 1).replace(
        "  name: settings", "  name: settings\n  namespace: ops"
    )
    r = rendering_of(
        "prod",
        {
            ("web", "shop"): deployment("web", "1") + cluster_role + elsewhere + "---\n",
            ("api", ""): configmap("api", 1) + configmap("api", 1),
        },
    )
    assert [(str(x.key), x.source) for x in r.resources] == [
        ("release api: ConfigMap api", "web/templates/cm.yaml"),
        ("release api: ConfigMap api #2", "web/templates/cm.yaml"),
        ("release web: ClusterRole reader", "web/templates/rbac.yaml"),
        ("release web: ConfigMap ops/settings", "web/templates/cm.yaml"),
        ("release web: Deployment shop/web", "web/templates/deployment.yaml"),
    ]
    with pytest.raises(OperationError, match=r"release 'web': helm rendered web/templates/x\.yaml"):
        rendering_of("prod", {("web", "shop"): "---\n# Source: web/templates/x.yaml\na: [b\n"})
    with pytest.raises(OperationError, match="that is not a Kubernetes object"):
        rendering_of("prod", {("web", "shop"): "---\n- a\n- b\n"})


# --------------------------------------------------------------------------- Secrets


def test_a_secrets_values_are_never_shown_only_which_keys_changed() -> None:
    old = {"password": "old-Pa55word-1", "legacy": "legacy-value-77"}
    new = {"password": "new-Pa55word-2", "token": "fresh-token-9000"}
    base = rendering("prod", {"web": secret("web-db", old)})
    head = rendering("prod", {"web": secret("web-db", new)})
    diff = compare(base, head)
    (change,) = diff.releases[0].changes
    assert change.secret_keys == (
        "data.legacy: removed",
        "data.password: changed",
        "data.token: added",
    )
    assert changed_lines(change.diff) == [
        "-  password: (hidden)",
        "-  legacy: (hidden)",
        "+  password: (hidden, changed)",
        "+  token: (hidden)",
    ]
    added = compare(None, rendering("dev", {"web": secret("web-db", new, string_data=True)}))
    body = comment_body([diff, added], HEAD, BASE)
    assert "password: (hidden, changed)" in body
    for value in [*old.values(), *new.values()]:
        encoded = base64.b64encode(value.encode()).decode()
        assert value not in body and encoded not in body
    # The values still count: a Secret whose value changed is a change to deploy.
    assert base.digest != head.digest


def test_a_secrets_value_is_masked_where_a_chart_copies_it() -> None:
    copied = secret("web-db", {"password": "copied-Pa55word-3"}) + configmap("web", 0).replace(
        "data:\n",
        "data:\n  dsn: host=db user=web password=copied-Pa55word-3\n"
        "  encoded: Y29waWVkLVBhNTV3b3JkLTM=\n",
    )
    diff = compare(None, rendering("prod", {"web": copied}))
    body = comment_body([diff], HEAD, BASE)
    assert "dsn: host=db user=web password=***" in body
    assert "encoded: ***" in body
    assert "copied-Pa55word-3" not in body


# --------------------------------------------------------------------------- size


def test_a_long_diff_starts_collapsed_a_short_one_open() -> None:
    base = rendering("prod", {"web": configmap("big", 60), "api": configmap("small", 3)})
    head = rendering(
        "prod", {"web": configmap("big", 60, "two"), "api": configmap("small", 3, "two")}
    )
    body = comment_body([compare(base, head)], HEAD, BASE)
    long_lines = len(compare(base, head).releases[1].diff.splitlines())
    assert long_lines > COLLAPSE_LINES
    assert (
        "<details>\n<summary>release <code>web</code>: 1 changed "
        f"({long_lines} lines)</summary>" in body
    )
    assert "<details open>\n<summary>release <code>api</code>: 1 changed</summary>" in body


def test_a_comment_that_would_pass_the_limit_is_cut_with_a_note() -> None:
    releases = {f"r{i:02d}": configmap(f"cm{i}", 400) for i in range(12)}
    changed = {name: text.replace("one-", "two-") for name, text in releases.items()}
    diffs = [
        compare(rendering("dev", releases), rendering("dev", changed)),
        compare(rendering("prod", releases), rendering("prod", changed)),
    ]
    assert sum(len(r.diff) for d in diffs for r in d.releases) > 4 * COMMENT_LIMIT
    body = comment_body(diffs, HEAD, BASE)
    assert len(body) <= COMMENT_LIMIT
    assert "<summary>release <code>r00</code>" in body
    assert "_Left out to keep this comment under 60,000 characters: the diff of release" in body
    assert "<code>r11</code>" in body  # named in the note
    plan = reviewed_plan(body)
    assert plan is not None and set(plan.environments) == {"dev", "prod"}

    # One release too large for the whole comment: its diff is cut, with a note.
    huge = {"web": configmap("huge", 3000)}
    cut = comment_body(
        [
            compare(
                rendering("prod", huge), rendering("prod", {"web": configmap("huge", 3000, "two")})
            )
        ],
        HEAD,
        BASE,
    )
    assert len(cut) <= COMMENT_LIMIT
    assert re.search(r"_\d+ more lines cut to keep this comment under 60,000 characters._", cut)


def test_a_diff_holding_backticks_stays_in_its_fence() -> None:
    text = configmap("docs", 0).replace("data:\n", "data:\n  readme: use ```helm``` here\n")
    body = comment_body([compare(None, rendering("prod", {"web": text}))], HEAD, BASE)
    assert "````diff\n" in body and "\n````\n" in body


# --------------------------------------------------------------------------- the plan


def test_the_hidden_plan_reads_back_from_the_comment() -> None:
    dev, prod = compare(shop("dev"), shop("dev")), compare(shop("prod"), shop("prod", "1.1.0"))
    body = comment_body([dev, prod], HEAD, BASE)
    plan = reviewed_plan(body)
    assert plan is not None
    assert (plan.head, plan.base) == (HEAD, BASE)
    assert plan.environments == {"dev": dev.head, "prod": prod.head}
    assert plan.environments["prod"] == plan_of(shop("prod", "1.1.0"))
    web, api = (ResourceKey(r, "Deployment", "shop", r) for r in ("web", "api"))
    assert resources_of(plan.environments["prod"]) == {
        api: resources_of(plan_of(shop("prod")))[api],
        web: resources_of(plan_of(shop("prod", "1.1.0")))[web],
    }
    assert resources_of(plan_of(shop("prod")))[web] != resources_of(plan.environments["prod"])[web]
    # Hidden from readers: one HTML comment, with nothing in it that could end it early.
    block = body[body.index("<!-- glue-review ") :]
    assert block.rstrip().endswith("-->") and block.count("-->") == 1
    # Not glue's, or not one: no plan.
    assert reviewed_plan(body.replace('"version":1', '"version":2')) is None
    assert reviewed_plan(body.replace("sha256:", "sha1:", 1)) is None
    assert reviewed_plan(body + body) is None
    assert reviewed_plan("LGTM") is None


def test_names_that_could_end_an_html_comment_survive_the_round_trip() -> None:
    odd = configmap("x-->y", 1)
    diff = compare(None, rendering("prod", {"web": odd}))
    body = comment_body([diff], HEAD, BASE)
    block = body[body.index("<!-- glue-review ") :]
    assert block.count("-->") == 1
    plan = reviewed_plan(body)
    assert plan is not None
    assert ResourceKey("web", "ConfigMap", "shop", "x-->y") in resources_of(
        plan.environments["prod"]
    )


def test_a_large_deployment_keeps_every_digest_and_drops_detail_to_fit() -> None:
    many = {
        f"svc{i:03d}": configmap(f"svc{i:03d}", 1) + deployment(f"svc{i:03d}", "1")
        for i in range(250)
    }
    bumped = dict(many, svc007=configmap("svc007", 1) + deployment("svc007", "2"))
    diffs = [
        compare(rendering("dev", many), rendering("dev", many)),
        compare(rendering("prod", many), rendering("prod", bumped)),
    ]
    body = comment_body(diffs, HEAD, BASE)
    assert len(body) <= COMMENT_LIMIT
    plan = reviewed_plan(body)
    assert plan is not None
    # The changed environment keeps its detail; the unchanged one gives its up first.
    assert plan.environments["prod"].resources is not None
    assert plan.environments["dev"].resources is None
    assert plan.environments["dev"].digest == rendering("dev", many).digest
    # What the check can still say without resource detail: which release differs.
    later = dict(many, svc042=configmap("svc042", 1) + deployment("svc042", "9"))
    check = check_plan(plan, rendering("dev", later))
    assert not check.ok and check.releases == ("svc042",) and check.changed == ()
    assert "releases that differ: svc042" in check.message


# --------------------------------------------------------------------------- the check


def reviewed(*diffs: EnvDiff) -> ReviewedPlan:
    plan = reviewed_plan(comment_body(list(diffs), HEAD, BASE))
    assert plan is not None
    return plan


def test_the_plan_check_passes_on_what_was_reviewed() -> None:
    plan = reviewed(compare(shop("prod"), shop("prod", "1.1.0")))
    check = check_plan(plan, shop("prod", "1.1.0"))
    assert check.ok
    assert check.reviewed_digest == check.current_digest == shop("prod", "1.1.0").digest
    assert check.message == (
        f"environment 'prod' deploys what was reviewed at {HEAD[:12]} ({check.current_digest[:19]})"
    )


def test_the_plan_check_names_what_differs_from_the_review() -> None:
    plan = reviewed(compare(shop("prod"), shop("prod", "1.1.0")))
    # After the review, the chart's template changed and a release was added.
    later = rendering(
        "prod",
        {
            "web": deployment("web", "1.1.0").replace("replicas: 2", "replicas: 5"),
            "api": deployment("api", "2.0.0"),
            "cache": configmap("cache", 1),
        },
    )
    check = check_plan(plan, later)
    assert not check.ok
    assert check.changed == (ResourceKey("web", "Deployment", "shop", "web"),)
    assert check.added == (ResourceKey("cache", "ConfigMap", "shop", "cache"),)
    assert check.removed == ()
    assert check.releases == ("cache", "web")
    assert check.message.splitlines() == [
        f"environment 'prod' would deploy something other than what was reviewed at "
        f"{HEAD[:12]} (reviewed {str(check.reviewed_digest)[:19]}, "
        f"now {check.current_digest[:19]})",
        "  added since the review: release cache: ConfigMap shop/cache",
        "  changed since the review: release web: Deployment shop/web",
    ]
    assert check.hint is not None and "--accept-unreviewed" in check.hint
    assert json.loads(json.dumps(check.to_json()))["changed"] == [
        {"release": "web", "kind": "Deployment", "namespace": "shop", "name": "web"}
    ]
    gone = check_plan(plan, rendering("prod", {"web": deployment("web", "1.1.0")}))
    assert gone.removed == (ResourceKey("api", "Deployment", "shop", "api"),)


def test_an_environment_that_was_not_reviewed_does_not_pass() -> None:
    plan = reviewed(compare(shop("prod"), shop("prod", "1.1.0")))
    check = check_plan(plan, shop("dev"))
    assert not check.ok and check.reviewed_digest is None
    assert (
        check.message
        == f"environment 'dev' was not part of the review at {HEAD[:12]} (reviewed: prod)"
    )


# --------------------------------------------------------------------------- trailers


def test_trailers_carry_each_environments_digest() -> None:
    diffs = [compare(shop("dev"), shop("dev")), compare(shop("prod"), shop("prod", "1.1.0"))]
    plan = reviewed(*diffs)
    trailers = plan_trailers(plan)
    assert trailers == [
        (TRAILER, f"dev {shop('dev').digest}"),
        (TRAILER, f"prod {shop('prod', '1.1.0').digest}"),
    ]
    message = "Merge branch 'glue/prod/web'\n\nBump web\n\n" + "".join(
        f"{k}: {v}\n" for k, v in trailers
    )
    assert parse_trailers(message) == trailers
    from_commit = trailer_plan(message)
    assert from_commit is not None and from_commit.head is None
    assert {e: p.digest for e, p in from_commit.environments.items()} == {
        "dev": shop("dev").digest,
        "prod": shop("prod", "1.1.0").digest,
    }
    assert check_plan(from_commit, shop("prod", "1.1.0")).ok
    check = check_plan(from_commit, shop("prod", "1.2.0"))
    assert not check.ok
    assert "the review recorded no detail to say which resources differ" in check.message
    assert trailer_plan("Bump web\n\nSigned-off-by: A <a@example.com>\n") is None
    with pytest.raises(UsageError, match="is not 'ENV sha256:HEX'"):
        trailer_plan(f"Bump\n\n{TRAILER}: prod sha256:abc\n")
