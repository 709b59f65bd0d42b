"""gitops-glue: composable glue between CI pipelines and Helm/helmfile deployments.

The version is written once, in pyproject.toml; ``__version__`` reads it from the
installed package's metadata when first asked for (importing importlib.metadata costs
~10 ms, which ``glue --help`` does not need to pay).
"""

from __future__ import annotations

_FALLBACK_VERSION = "0+unknown"


def __getattr__(name: str) -> str:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("gitops-glue")
        except PackageNotFoundError:
            found = _FALLBACK_VERSION
        globals()["__version__"] = found
        return found
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
