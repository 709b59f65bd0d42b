"""The ``glue`` command line: a thin layer over the core packages."""

from gitops_glue.cli.entry import main

__all__ = ["main"]
