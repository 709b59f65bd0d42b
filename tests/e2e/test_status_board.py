"""glue status --html DIR: the status board, from the one status model, seen in a browser."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gitops_glue.board.render import write_board
from gitops_glue.repo import holds
from gitops_glue.repo.status import ClusterCell, ClusterReport, Verification
from tests.support.browser import AXE_VERSION, Visit, browser  # noqa: F401
from tests.support.helpers import GITLAB_CI, example_repo, glue

GOLDEN = Path(__file__).parents[1] / "data" / "status_board" / "status.json"
PIPELINE = GITLAB_CI["CI_PIPELINE_URL"]


def ok(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    run = glue(*args, cwd=cwd, env=env)
    assert run.code == 0, run.err
    return run.out


@pytest.fixture
def history_repo(tmp_path: Path) -> Path:
    """The example repo after a bump from a pipeline, a promotion, a hold, a rejection,
    a bump past the hold and a bump rolled back."""
    repo = example_repo(tmp_path / "deploy")
    ok("bump-tag", "a", "v1.2.3", "--env", "dev", "--revision", "abc1234", cwd=repo, env=GITLAB_CI)
    ok("promote", "a", "--from", "dev", "--to", "staging", cwd=repo)
    ok(
        "hold",
        "b",
        "--env",
        "prod",
        "--reason",
        "payments fail after 1.4.0",
        "--actor",
        "carol",
        cwd=repo,
    )
    ok("reject", "b", "9a8b7c6", "--reason", "leaks memory", "--actor", "dan", cwd=repo)
    ok("bump-tag", "b", "v2.0.0", "--env", "prod", "--override-hold", cwd=repo)
    ok("bump-tag", "a", "v1.2.4", "--env", "dev", cwd=repo)
    ok("rollback", "--env", "dev", cwd=repo)
    return repo


def normalized(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with what changes from run to run (commit ids, times) named by order."""
    text = json.dumps(data, indent=2)
    shas: dict[str, str] = {}
    text = re.sub(
        r"\b[0-9a-f]{40}\b", lambda m: shas.setdefault(m[0], f"<commit {len(shas) + 1}>"), text
    )
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "<time>", text)
    result: dict[str, Any] = json.loads(text)
    return result


# --------------------------------------------------------------------------- the model


def test_the_status_json_is_the_golden_model(history_repo: Path) -> None:
    data = json.loads(ok("status", "-o", "json", cwd=history_repo))
    assert normalized(data) == json.loads(GOLDEN.read_text())


def test_the_board_renders_the_golden_model(tmp_path: Path) -> None:
    """The page is built from that JSON alone: every tag, reason and actor in it shows."""
    data = json.loads(GOLDEN.read_text())
    index = write_board(data, tmp_path / "site", cluster=False)
    page = index.read_text()
    for service, cells in data["services"].items():
        for cell in cells.values():
            assert f">{cell['tag']}<" in page, (service, cell)
    assert "payments fail after 1.4.0" in page and "carol" in page
    assert "leaks memory" in page and "dan" in page
    assert PIPELINE in page
    assert "Shows the repository alone" in page


def test_the_board_shows_digests_and_cells_without_a_tag(tmp_path: Path) -> None:
    data = json.loads(GOLDEN.read_text())
    data["services"]["a"]["prod"] |= {
        "digest": "sha256:" + "ab" * 32,
        "digest_mismatch": "sha256:" + "cd" * 32,
    }
    data["services"]["b"]["dev"] = {
        "tag": None,
        "revision": None,
        "file": None,
        "why_empty": "b.image.tag is set nowhere",
    }
    page = write_board(data, tmp_path / "site", cluster=False).read_text()
    assert "<code>sha256:abababababab</code>" in page
    assert 'digest mismatch</strong>: <span class="reason">the registry has sha256:cdcd' in page
    assert 'not set</strong>: <span class="reason">b.image.tag is set nowhere' in page


def test_status_html_writes_a_self_contained_site(history_repo: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    out = ok("status", "--html", str(site), cwd=history_repo)
    assert f"status board: {site / 'index.html'}" in out
    assert sorted(p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file()) == [
        "assets/board.css",
        "assets/board.js",
        "index.html",
    ]
    page = (site / "index.html").read_text()
    # Only links a person follows point away; what the page loads is its own.
    loaded = re.findall(r'<(?:script|link|img)\b[^>]*\b(?:src|href)="([^"]*)"', page)
    assert loaded == ["assets/board.css", "assets/board.js"]
    data = json.loads(ok("status", "-o", "json", cwd=history_repo))
    assert normalized(data)["history"]["a"][0]["action"] == "rollback"


def test_status_html_where_it_cannot_write_is_a_usage_error(repo: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    run = glue("status", "--html", str(tmp_path / "file"), cwd=repo)
    assert run.code == 2
    assert "cannot write the board there" in run.err


def test_text_from_the_repository_is_escaped(repo: Path, tmp_path: Path) -> None:
    reason = '<script>alert("x")</script> & <img src=x onerror=alert(1)>'
    ok("hold", "a", "--env", "prod", "--reason", reason, "--actor", "eve", cwd=repo)
    index = Path(ok("status", "--html", str(tmp_path / "s"), cwd=repo).split(": ", 1)[1].strip())
    page = index.read_text()
    assert reason not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;img" in page


# --------------------------------------------------------------------------- in a browser


@pytest.fixture
def board(history_repo: Path, tmp_path: Path, browser: Any) -> Iterator[Visit]:  # noqa: F811
    site = tmp_path / "site"
    ok("status", "--html", str(site), cwd=history_repo)
    visit = Visit(browser, site / "index.html")
    yield visit
    visit.close()


def cell_text(visit: Visit, service: str, env: str) -> str:
    text: str = visit.page.locator(
        f'tr[data-service="{service}"] td[data-env="{env}"]'
    ).inner_text()
    return text


@pytest.mark.browser
def test_a_cell_shows_its_tag_and_state(board: Visit) -> None:
    staging = cell_text(board, "a", "staging")
    assert "v1.2.3" in staging and "in git" in staging
    link = board.page.locator('tr[data-service="a"] td[data-env="staging"] a')
    assert link.get_attribute("href") == "https://github.com/example/a/commit/abc1234"
    assert "set " in staging and " ago" in staging
    assert "the repository alone" in board.page.locator("#scope").inner_text()


@pytest.mark.browser
def test_a_held_service_shows_the_reason_and_who(board: Visit) -> None:
    prod = cell_text(board, "b", "prod")
    assert "v2.0.0" in prod and "held: payments fail after 1.4.0 by carol" in prod
    dev = cell_text(board, "b", "dev")  # 9a8b7c6 runs in dev and was rejected since
    assert "rejected: leaks memory by dan" in dev


@pytest.mark.browser
def test_the_filter_hides_the_other_services(board: Visit) -> None:
    page = board.page
    assert page.locator('tr[data-service="a"]').is_visible()
    assert page.locator('tr[data-service="b"]').is_visible()
    page.get_by_label("Filter services").fill("b")
    assert page.locator('tr[data-service="b"]').is_visible()
    assert page.locator('tr[data-service="a"]').is_hidden()
    assert page.locator('section.service[data-service="a"]').is_hidden()
    assert page.locator("#shown").inner_text() == "1 of 2 services shown"
    page.get_by_label("Filter services").fill("")
    assert page.locator('tr[data-service="a"]').is_visible()


@pytest.mark.browser
def test_the_history_lists_the_rollback(board: Visit) -> None:
    history = board.page.locator('section.service[data-service="a"] table.history tbody tr')
    rows = history.all_inner_texts()
    assert "rollback" in rows[0] and "ROLLBACK of" in rows[0] and "dev" in rows[0]
    assert "v1.2.4" in rows[1] and "rolled back later" in rows[1]
    pipeline = board.page.locator('section.service[data-service="a"] a', has_text="pipeline")
    assert pipeline.get_attribute("href") == PIPELINE
    b_rows = board.page.locator('section.service[data-service="b"] table.history tbody tr')
    assert "OVERRIDE: moved past a hold" in b_rows.all_inner_texts()[0]
    timeline = board.page.locator('section.service[data-service="a"] svg[role="img"]')
    assert "promote v1.2.3 in staging" in (timeline.locator("title").text_content() or "")


@pytest.mark.browser
def test_no_request_leaves_the_page(board: Visit) -> None:
    board.page.wait_for_load_state("load")
    assert board.blocked == []
    # The routing saw the page's own files, so it would have seen any other request.
    assert any(u.endswith("/assets/board.js") for u in board.seen)
    assert any(u.endswith("/assets/board.css") for u in board.seen)
    # The script ran (it is the page's own file: the page's policy allows it).
    assert board.page.locator("#shown").inner_text() == "2 of 2 services shown"
    board.page.get_by_label("Filter services").fill("zzz")
    assert board.page.locator("#shown").inner_text() == "0 of 2 services shown"


@pytest.mark.browser
def test_the_keyboard_reaches_the_filter_and_moves_in_the_grid(board: Visit) -> None:
    page = board.page
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to the services grid"
    page.locator('tr[data-service="a"] td[data-env="dev"]').focus()
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.dataset.env") == "staging"
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.closest('tr').dataset.service") == "b"


@pytest.mark.browser
def test_axe_finds_no_serious_violation(history_repo: Path, tmp_path: Path, browser: Any) -> None:  # noqa: F811
    site = tmp_path / "site"
    ok("status", "--html", str(site), cwd=history_repo)
    # axe is injected by the test, past the page's own script policy.
    visit = Visit(browser, site / "index.html", bypass_csp=True)
    try:
        assert visit.page.evaluate("1 + 1") == 2
        violations = visit.axe_violations()
        assert visit.page.evaluate("axe.version") == AXE_VERSION
    finally:
        visit.close()
    serious = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in violations
        if v["impact"] in ("serious", "critical")
    ]
    assert serious == []


@pytest.mark.browser
def test_a_frozen_environment_says_why_and_until_when(
    repo: Path,
    tmp_path: Path,
    browser: Any,  # noqa: F811
) -> None:
    config = repo / "glue.yaml"
    anchor = "    namespace: example-prod  # where glue keeps its deploy record and lock\n"
    window = "      - {from: 2026-12-23, to: 2027-01-02T08:00, reason: year end}\n"
    config.write_text(config.read_text().replace(anchor, anchor + "    freeze:\n" + window))
    site = tmp_path / "site"
    ok("status", "--html", str(site), cwd=repo, env={"GLUE_NOW": "2026-12-25T10:00:00Z"})
    visit = Visit(browser, site / "index.html")
    try:
        assert "frozen: year end until 2027-01-02T08:00:00Z" in cell_text(visit, "a", "prod")
        assert "frozen" not in cell_text(visit, "a", "staging")
        generated = visit.page.locator("#scope time").get_attribute("datetime")
        assert generated == "2026-12-25T10:00:00Z"
    finally:
        visit.close()


def cluster_report() -> ClusterReport:
    held = holds.Mark("carol", "2026-12-01T10:00:00Z", "waiting for the DBA")

    def cell(env: str, service: str, git: str, deployed: str | None, **kw: Any) -> ClusterCell:
        return ClusterCell(
            env,
            service,
            git,
            deployed,
            service,
            f"ns-{env}",
            3,
            (f"img/{service}:{deployed}",),
            problems=kw.get("problems", ()),
            pending=git != deployed,
            verification=kw.get("verification", Verification("unverified")),
            hold=kw.get("hold"),
        )

    cells = [
        cell(
            "dev",
            "a",
            "v2",
            "v2",
            verification=Verification("verified", "v2", "2026-12-01T09:00:00Z"),
        ),
        cell("prod", "a", "v2", "v1"),
        cell(
            "dev",
            "b",
            "v5",
            "v5",
            problems=("release ns-dev/b runs img/b:v4, but glue deployed v5",),
        ),
        cell(
            "prod",
            "b",
            "v5",
            "v5",
            hold=held,
            verification=Verification("failed", "v5", "2026-12-01T11:00:00Z", "pods not Ready"),
        ),
    ]
    records = {
        "dev": {
            "git_revision": "f" * 40,
            "deployed_at": "2026-12-01T09:00:00Z",
            "deployed_by": "ci",
        }
    }
    return ClusterReport(["dev", "prod"], ["a", "b"], cells, records)


@pytest.mark.browser
def test_the_cluster_view_shows_deploys_drift_and_verification(
    tmp_path: Path,
    browser: Any,  # noqa: F811
) -> None:
    data = cluster_report().to_json()
    index = write_board(data, tmp_path / "site", cluster=True, now=dt.datetime.now(dt.timezone.utc))
    visit = Visit(browser, index)
    try:
        assert "the clusters' view" in visit.page.locator("#scope").inner_text()
        assert "deployed: verified" in cell_text(visit, "a", "dev")
        assert "pending: git has v2, runs v1" in cell_text(visit, "a", "prod")
        assert "drift: release ns-dev/b runs img/b:v4" in cell_text(visit, "b", "dev")
        prod = cell_text(visit, "b", "prod")
        assert "failed verification: v5: pods not Ready" in prod
        assert "held: waiting for the DBA by carol" in prod
        assert "prod: no deploy record" in visit.page.inner_text("body")
        assert visit.blocked == []
    finally:
        visit.close()
