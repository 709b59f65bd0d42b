"""Docs that stay true: no dangling relative links, and a command reference that matches the CLI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^\s*(```|~~~)")


def markdown_files() -> list[Path]:
    """Tracked Markdown files, and new ones not yet committed (ignored files left out)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.md"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [ROOT / name for name in sorted(set(listed)) if (ROOT / name).is_file()]


def dangling_links(path: Path) -> list[str]:
    """Relative links in ``path`` (outside code) whose file does not exist."""
    missing = []
    in_code = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if FENCE.match(line):
            in_code = not in_code
            continue
        if in_code:
            continue
        for target in LINK.findall(re.sub(r"`[^`]*`", "", line)):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("#"):
                continue  # a URL (https:, mailto:) or an anchor in the same file
            file_part = target.split("#", 1)[0].split("?", 1)[0]
            if not (path.parent / file_part).exists():
                missing.append(f"{path}:{number}: {target}")
    return missing


def test_every_relative_link_in_markdown_resolves() -> None:
    files = markdown_files()
    assert any(p.name == "README.md" for p in files)
    missing = [m for path in files for m in dangling_links(path)]
    assert missing == []


def test_the_link_check_finds_a_dangling_link(tmp_path: Path) -> None:
    (tmp_path / "there.md").write_text("x\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](there.md#part) [web](https://example.com/x.md) [self](#top)\n"
        "`[code](nowhere.md)`\n```\n[fenced](nowhere.md)\n```\n"
        "see [gone](docs/notify.md) and ![img](pic.png)\n",
        encoding="utf-8",
    )
    found = dangling_links(page)
    assert [f.rsplit(": ", 1)[1] for f in found] == ["docs/notify.md", "pic.png"]
    assert all(":6:" in f for f in found)


def test_command_reference_is_generated_from_the_cli() -> None:
    proc = subprocess.run(
        [sys.executable, "scripts/gen_command_docs.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr  # "docs/commands.md is stale: run make docs"


def test_command_reference_names_every_command() -> None:
    text = (ROOT / "docs" / "commands.md").read_text(encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "gitops_glue", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    listed = re.findall(r"^  ([a-z][a-z-]+)\s", proc.stdout.split("Commands:", 1)[1], re.M)
    assert listed
    assert [c for c in listed if f"## glue {c}\n" not in text] == []
