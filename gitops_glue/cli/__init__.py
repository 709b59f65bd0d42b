"""The ``glue`` command line: a thin layer over the core packages."""

import os

# Plain click help, set before typer is first imported (typer reads it once, at import):
# rich's formatter costs ~0.1 s at every start and garbles CI logs.
os.environ.setdefault("TYPER_USE_RICH", "0")

from gitops_glue.cli.entry import main

__all__ = ["main"]
