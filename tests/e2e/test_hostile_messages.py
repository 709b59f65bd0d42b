"""Hostile Slack messages: templates that reach outside the repository or try to
break glue, secrets on their way to Slack, and webhook URLs that are not https.

``glue announce`` and ``glue notify`` run as a user runs them, against the Slack
stand-in (a real HTTP server); what is asserted is what a user sees: the exit code,
the one ``glue: error:`` line, and the requests the stand-in received.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.support.helpers import GITLAB_CI as GITLAB
from tests.support.helpers import Run, git, glue
from tests.support.slackserver import WEBHOOK_SECRET, SlackServer

REGISTRY_PASSWORD = "Regi$try-Passw0rd-Hostile25"
GIT_TOKEN = "glpat-HostileGitToken25"


def _env(slack: SlackServer, **extra: str) -> dict[str, str]:
    return {
        "SLACK_WEBHOOK_URL": slack.webhook_url,
        "GLUE_REGISTRY_USER": "ci",
        "GLUE_REGISTRY_PASSWORD": REGISTRY_PASSWORD,
        "GLUE_GIT_TOKEN": GIT_TOKEN,
        **extra,
    }


def _use_template(repo: Path, path: str, name: str = "announce") -> None:
    glue_yaml = repo / "glue.yaml"
    glue_yaml.write_text(glue_yaml.read_text() + f"templates:\n  {name}: {json.dumps(path)}\n")


def _announce(repo: Path, env: dict[str, str], *args: str) -> Run:
    return glue(
        "-C", str(repo), "announce", "--image", "registry.example.com/team/a", "--tag", "v1.2.3",
        *args, env=env, timeout=120,
    )  # fmt: skip


def _no_secret_in(*texts: str) -> None:
    for text in texts:
        for secret in (REGISTRY_PASSWORD, GIT_TOKEN, WEBHOOK_SECRET):
            for form in (secret, quote(secret, safe=""), json.dumps(secret)[1:-1]):
                assert form not in text, (form, text[:500])


def _refused(run: Run, *expected: str) -> str:
    """One ``glue: error:`` line (and its hint), exit 2, no traceback."""
    assert run.code == 2, (run.code, run.out, run.err)
    assert run.err.count("glue: error: ") == 1, run.err
    assert "Traceback" not in run.err + run.out
    for text in expected:
        assert text in run.err, run.err
    _no_secret_in(run.out, run.err)
    return run.err


# --------------------------------------------------------------------------- where a template is


def _outside(repo: Path) -> str:
    (repo.parent / "outside.j2").write_text("{{ service }} from outside\n")
    return "../outside.j2"


def _symlink(target: str) -> Callable[[Path], str]:
    def plant(repo: Path) -> str:
        (repo.parent / "outside.j2").write_text("{{ service }} from outside\n")
        (repo / "messages").mkdir(exist_ok=True)
        (repo / "messages" / "announce.md.j2").symlink_to(target)
        return "messages/announce.md.j2"

    return plant


#: name -> plants what glue.yaml's templates.announce names, returns that path
PLACES: dict[str, Callable[[Path], str]] = {
    "proc-environ": lambda _repo: "/proc/self/environ",
    "etc-passwd": lambda _repo: "/etc/passwd",
    "parent-folder": _outside,
    "up-and-up": lambda _repo: "../../../../../../etc/passwd",
    "up-and-back": lambda _repo: "environments/../../outside.j2",
    "git-config": lambda _repo: ".git/config",
    "git-config-case": lambda _repo: ".GIT/config",
    "symlink-to-environ": _symlink("/proc/self/environ"),
    "symlink-to-parent": _symlink("../../outside.j2"),
    "symlink-into-git": _symlink("../.git/config"),
    "dangling-symlink-out": _symlink("/nonexistent/glue-template.j2"),
}


@pytest.mark.parametrize("place", sorted(PLACES))
def test_a_template_outside_the_repository_is_refused(
    place: str, repo: Path, slack: SlackServer
) -> None:
    path = PLACES[place](repo)
    _use_template(repo, path)
    run = _announce(repo, _env(slack, **GITLAB))
    err = _refused(run, "templates.announce")
    assert "from outside" not in err + run.out
    assert slack.requests == []


def test_a_notify_template_outside_the_repository_is_refused_before_the_cluster(
    repo: Path, slack: SlackServer
) -> None:
    # No cluster is reachable here: the refusal comes first.
    for path in ("/proc/self/environ", ".git/config"):
        _use_template(repo, path, "notify")
        run = glue(
            "-C", str(repo), "notify", "--phase", "pre-upgrade", "--env", "dev",
            env={**_env(slack), "KUBECONFIG": str(repo / "no-kubeconfig")},
        )  # fmt: skip
        _refused(run, "templates.notify")
        git(repo, "checkout", "--", "glue.yaml")
    (repo / "messages").mkdir()
    (repo / "messages" / "notify.md.j2").symlink_to("/proc/self/environ")
    _use_template(repo, "messages/notify.md.j2", "notify")
    run = glue(
        "-C", str(repo), "notify", "--phase", "pre-upgrade", "--env", "dev",
        env={**_env(slack), "KUBECONFIG": str(repo / "no-kubeconfig")},
    )  # fmt: skip
    _refused(run, "templates.notify", "leads out of the repository")
    assert slack.requests == []


def test_a_template_inside_the_repository_is_used(repo: Path, slack: SlackServer) -> None:
    (repo / "messages").mkdir()
    (repo / "messages" / "real.j2").write_text("*{{ service }}* {{ tag | code }} is out\n")
    (repo / "messages" / "announce.md.j2").symlink_to("real.j2")  # a link that stays inside
    _use_template(repo, "messages/announce.md.j2")
    run = _announce(repo, _env(slack, **GITLAB))
    assert run.code == 0, run.err
    [request] = slack.webhook_requests()
    assert request.json["blocks"][1]["text"]["text"] == "*a* `v1.2.3` is out"


# --------------------------------------------------------------------------- secrets


def test_secrets_in_the_data_never_reach_slack_or_the_output(
    repo: Path, slack: SlackServer
) -> None:
    (repo / "messages").mkdir()
    (repo / "messages" / "announce.md.j2").write_text(
        "{{ commit_title }}\n{{ commit_title | code }}\n{{ 'see' | link(commit_title) }}\n"
    )
    _use_template(repo, "messages/announce.md.j2")
    title = (
        f"rotate {REGISTRY_PASSWORD} and {GIT_TOKEN}, hook {slack.webhook_url} "
        f"(was https://deploy:{REGISTRY_PASSWORD}@git.example.com/x.git)"
    )
    env = _env(slack, **{**GITLAB, "CI_COMMIT_TITLE": title})
    run = _announce(repo, env)
    assert run.code == 0, run.err
    as_json = _announce(repo, env, "--dry-run", "--output", "json")
    assert as_json.code == 0, as_json.err
    [request] = slack.webhook_requests()
    sent = request.body.decode()
    _no_secret_in(sent, run.out, run.err, as_json.out, as_json.err)
    assert "rotate *** and ***" in request.json["blocks"][1]["text"]["text"]
    # The service's own data still reads as it was.
    assert request.json["text"].startswith("New image: a v1.2.3")


# --------------------------------------------------------------------------- what a template does

ENDLESS = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
DOUBLING = (
    "{% set ns = namespace(s='x' * 1000) %}"
    "{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}"
)
#: name -> (template, what the error says)
TEMPLATES: dict[str, tuple[str, str]] = {
    "include": ("Hi\n{% include 'glue.yaml' %}\n", "{% include %} is not supported"),
    "extends": ("{% extends 'glue.yaml' %}\n", "{% extends %} is not supported"),
    "import": ("{% import 'glue.yaml' as g %}{{ g }}\n", "{% import %} is not supported"),
    "from-import": ("{% from 'glue.yaml' import x %}\n", "{% from ... import %} is not supported"),
    "huge-range": ("{% for i in range(10**9) %}x{% endfor %}", "Range too big"),
    "division-by-zero": ("{{ service }}\n{{ 1 // 0 }}\n", ":2: ZeroDivisionError"),
    "recursion": ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "recursion too deep"),
    "pop-empty-list": ("{{ [].pop() }}", "IndexError: pop from empty list"),
    "string-repetition": ("{{ 'x' * 10**12 }}", "repeating a text or list"),
    "huge-output": (
        "{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}",
        "renders more than 100,000 characters",
    ),
    "doubling": (DOUBLING, "memory"),
    "endless-loop": (ENDLESS, "CPU time"),
    "python-internals": ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "not allowed"),
}


@pytest.mark.parametrize("case", sorted(TEMPLATES))
def test_a_template_that_breaks_is_one_error_not_a_traceback_or_a_hang(
    case: str, repo: Path, slack: SlackServer
) -> None:
    source, says = TEMPLATES[case]
    (repo / "messages").mkdir()
    (repo / "messages" / "announce.md.j2").write_text(source)
    _use_template(repo, "messages/announce.md.j2")
    run = _announce(repo, _env(slack, **GITLAB))
    _refused(run, "messages/announce.md.j2", says)
    assert slack.requests == []


def test_a_template_renders_without_the_environment(repo: Path, slack: SlackServer) -> None:
    # Even a sandbox escape would find no secret in the process that renders.
    probe = (
        "{% for k, v in cycler.__init__.__globals__.os.environ.items() %}{{ k }}={{ v }} "
        "{% endfor %}"
    )
    (repo / "messages").mkdir()
    (repo / "messages" / "announce.md.j2").write_text(probe)
    _use_template(repo, "messages/announce.md.j2")
    run = _announce(repo, _env(slack, **GITLAB))
    _refused(run, "not allowed")
    assert slack.requests == []


# --------------------------------------------------------------------------- webhook URLs


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1:{port}/services/T000/B000/{secret}",
        "http://hooks.example.com/services/T000/B000/{secret}",
        "file:///services/T000/B000/{secret}",
        "hooks.slack.com/services/T000/B000/{secret}",
    ],
)
def test_a_webhook_url_that_is_not_https_is_refused_at_once(
    url: str, slack: SlackServer, tmp_path: Path
) -> None:
    port = slack.url.rsplit(":", 1)[1]
    hook = url.format(port=port, secret=WEBHOOK_SECRET)
    run = _announce(tmp_path, {"SLACK_WEBHOOK_URL": hook})
    err = _refused(run, "SLACK_WEBHOOK_URL", "https")
    assert "retrying" not in err
    assert slack.requests == []


def test_a_slack_api_url_that_is_not_https_is_refused_at_once(
    slack: SlackServer, tmp_path: Path
) -> None:
    env = {
        "SLACK_BOT_TOKEN": slack.token,
        "SLACK_CHANNEL": "#deploys",
        "GLUE_SLACK_API_URL": slack.api_url.replace("http://", "ftp://"),
    }
    run = _announce(tmp_path, env)
    _refused(run, "GLUE_SLACK_API_URL", "https")
    assert slack.token not in run.err
    assert slack.requests == []


def test_http_to_localhost_still_reaches_a_local_stand_in(
    slack: SlackServer, tmp_path: Path
) -> None:
    run = _announce(tmp_path, {"SLACK_WEBHOOK_URL": slack.webhook_url})
    assert run.code == 0, run.err
    assert len(slack.webhook_requests()) == 1


def test_a_template_given_on_the_command_line_renders_in_the_sandbox_too(
    tmp_path: Path, slack: SlackServer
) -> None:
    (tmp_path / "t.j2").write_text("{{ ''.__class__.__mro__ }}")
    run = _announce(
        tmp_path, {"SLACK_WEBHOOK_URL": slack.webhook_url}, "--template", str(tmp_path / "t.j2")
    )
    _refused(run, "not allowed in a message template")
    assert slack.requests == []
