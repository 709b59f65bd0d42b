"""``glue status``: which tag and revision each service has in each environment."""

from __future__ import annotations

from dataclasses import dataclass

from . import envfiles
from .config import GlueConfig


@dataclass(frozen=True)
class Cell:
    env: str
    service: str
    tag: str | None
    revision: str | None
    file: str | None  # where the tag is set


@dataclass(frozen=True)
class StatusReport:
    environments: list[str]
    services: list[str]
    cells: list[Cell]

    def cell(self, service: str, env: str) -> Cell:
        return next(c for c in self.cells if c.service == service and c.env == env)

    def to_json(self) -> dict[str, object]:
        return {
            "environments": self.environments,
            "services": {
                s: {
                    e: {"tag": c.tag, "revision": c.revision, "file": c.file}
                    for e in self.environments
                    for c in [self.cell(s, e)]
                }
                for s in self.services
            },
        }

    def table(self) -> str:
        def show(c: Cell) -> str:
            text = c.tag if c.tag is not None else "-"
            if c.revision and c.tag and not c.revision.startswith(c.tag):
                text += f" @{c.revision[:7]}"
            return text

        header = ["SERVICE", *self.environments]
        rows = [[s, *(show(self.cell(s, e)) for e in self.environments)] for s in self.services]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        return "\n".join(
            "  ".join(col.ljust(w) for col, w in zip(r, widths, strict=True)).rstrip()
            for r in [header, *rows]
        )


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


def collect(config: GlueConfig, read: envfiles.Reader) -> StatusReport:
    cells = []
    for env in config.environments:
        for name, service in config.services.items():
            tag = envfiles.effective(read, env, service.tag_key)
            rev = (
                envfiles.effective(read, env, service.revision_key)
                if service.revision_key
                else envfiles.Found(None, None)
            )
            cells.append(Cell(env.name, name, _opt(tag.value), _opt(rev.value), tag.file))
    return StatusReport(config.environment_names(), list(config.services), cells)
