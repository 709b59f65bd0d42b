"""glue's table of commands (cli/entry.py's COMMANDS): each command is where the table
says, every command a module defines is in it, and a run loads its own command only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from gitops_glue.cli.entry import COMMANDS

CLI = Path(__file__).resolve().parents[3] / "gitops_glue" / "cli"
SHARED = {"__init__", "app", "entry", "options", "render", "target"}


def _python(code: str, *args: str) -> object:
    """What ``code``, run with ``args`` in a fresh interpreter, prints last, as JSON."""
    proc = subprocess.run(
        [sys.executable, "-c", "import gitops_glue.cli\n" + code, *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.splitlines()[-1])


def test_every_command_a_module_defines_is_in_the_table_with_its_module() -> None:
    # Module by module: the commands its import registers.
    code = (
        "import importlib, json, sys\n"
        "from gitops_glue.cli.app import app\n"
        "found = {}\n"
        "for module in sys.argv[1:]:\n"
        "    before = len(app.registered_commands)\n"
        "    importlib.import_module('gitops_glue.cli.' + module)\n"
        "    for info in app.registered_commands[before:]:\n"
        "        found[info.name] = module\n"
        "print(json.dumps(found))\n"
    )
    modules = sorted(p.stem for p in CLI.glob("*.py") if p.stem not in SHARED)
    defined = _python(code, *modules)
    assert defined == COMMANDS, "COMMANDS (cli/entry.py): each command with its module"


def test_a_command_loads_its_own_module_and_no_other_command_module() -> None:
    code = (
        "import json, sys\n"
        "from gitops_glue.cli.entry import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('gitops_glue.cli.'))))\n"
    )
    commands = {f"gitops_glue.cli.{m}" for m in COMMANDS.values()}
    for args, module in [(["get", "--help"], "values"), (["bump-tag", "--help"], "commit")]:
        loaded = _python(code, *args)
        assert isinstance(loaded, list)
        assert [m for m in loaded if m in commands] == [f"gitops_glue.cli.{module}"]
