"""A real browser for the status board's tests: Debian's chromium, driven by Playwright.

Playwright for Python (the test extra) drives the chromium that scripts/bootstrap
installs from Debian (scripts/system-packages.txt); no browser is downloaded. Without
either, the tests marked ``browser`` fail, never skip: make test must not pass without
looking at the page.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

HERE = Path(__file__).parent
#: axe-core, vendored (tests/support/axe/README.md).
AXE = HERE / "axe" / "axe.min.js"
AXE_VERSION = "4.14.1"


def chromium_path() -> str:
    """Debian's chromium (``$GLUE_TEST_CHROMIUM`` to name another)."""
    found = os.environ.get("GLUE_TEST_CHROMIUM") or shutil.which("chromium")
    if not found:
        pytest.fail(
            "the browser tests need Debian's chromium: run scripts/bootstrap "
            "(apt-get install chromium)",
            pytrace=False,
        )
    return found


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "the browser tests need Playwright for Python: pip install -e '.[test]'",
            pytrace=False,
        )
    with sync_playwright() as p:
        # --no-sandbox: the suite runs as root in containers, where chromium's sandbox
        # cannot start; the page is our own file.
        launched = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


class Visit:
    """A page opened from disk with every request routed: ``file:`` ones go through,
    any other is aborted and kept in ``blocked``; ``seen`` lists them all."""

    def __init__(self, browser: Browser, index: Path, *, bypass_csp: bool = False) -> None:
        self.context = browser.new_context(bypass_csp=bypass_csp)
        self.seen: list[str] = []
        self.blocked: list[str] = []
        self.context.route("**/*", self._route)
        self.page: Page = self.context.new_page()
        self.page.goto(index.resolve().as_uri())

    def _route(self, route: Any) -> None:
        url = route.request.url
        self.seen.append(url)
        if url.startswith("file:"):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def axe_violations(self) -> list[dict[str, Any]]:
        """axe-core's violations on the page, every rule it runs by default."""
        self.page.evaluate(AXE.read_text(encoding="utf-8"))
        result: dict[str, Any] = self.page.evaluate("async () => await axe.run(document)")
        violations: list[dict[str, Any]] = result["violations"]
        return violations

    def close(self) -> None:
        self.context.close()
