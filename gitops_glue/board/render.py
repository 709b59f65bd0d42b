"""``glue status --html DIR``: the status board, a static site built from the status JSON.

The page is made from exactly the data ``glue status --output json`` prints (with
``--cluster``: the cluster's view), nothing else: :func:`board_view` turns that data
into rows and cells, and one Jinja2 template (autoescaped, sandboxed) renders them.
The site is ``index.html`` with ``assets/board.css`` and ``assets/board.js`` beside it:
no CDN, no request leaves the page, it works from ``file://`` and any static host.
Every state is said in words and a shape, never by colour alone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitops_glue.durations import parse_instant
from gitops_glue.integrations.ci import commit_url

HERE = Path(__file__).parent
ASSETS = ("board.css", "board.js")

#: state -> (the shape shown before its word, its word)
STATES = {
    "deployed": ("\u2714", "deployed"),  # heavy check mark
    "in-git": ("\u25cf", "in git"),  # black circle
    "pending": ("\u25d4", "pending"),  # circle with upper right quadrant
    "drift": ("\u25b2", "drift"),  # black up-pointing triangle
    "failed": ("\u2716", "failed verification"),  # heavy multiplication x
    "held": ("\u2016", "held"),  # double vertical line: a pause
    "rejected": ("\u2298", "rejected"),  # circled division slash
    "frozen": ("\u2744", "frozen"),  # snowflake
    "unset": ("\u2013", "not set"),  # en dash
    "mismatch": ("\u25b2", "digest mismatch"),
}
#: The actions that move a tag (drawn on the timeline).
MOVES = ("bump", "promote", "release", "rollback")


@dataclass
class State:
    key: str
    detail: str = ""  # the reason, the running tag...
    by: str = ""
    at: str = ""

    @property
    def shape(self) -> str:
        return STATES[self.key][0]

    @property
    def word(self) -> str:
        return STATES[self.key][1]


@dataclass
class BoardCell:
    env: str
    tag: str | None
    tag_url: str | None
    age: str
    changed_at: str
    digest: str
    states: list[State] = field(default_factory=list)


@dataclass
class Point:
    x: float
    y: float
    label: str
    title: str
    rollback: bool


@dataclass
class Timeline:
    width: int
    height: int
    lanes: list[tuple[str, float]]  # env, y
    points: list[Point]
    links: list[tuple[float, float, float, float]]  # promotions: x1, y1, x2, y2
    summary: str


@dataclass
class BoardRow:
    service: str
    anchor: str
    cells: list[BoardCell]
    history: list[dict[str, Any]]
    timeline: Timeline | None


@dataclass
class BoardView:
    cluster: bool
    generated_at: str
    environments: list[str]
    rows: list[BoardRow]
    notes: list[str]


def _web(url: object) -> str | None:
    text = str(url or "")
    return text if text.startswith(("https://", "http://")) else None


def _age(at: str, now: dt.datetime) -> str:
    then = parse_instant(at)
    if then is None:
        return ""
    seconds = max(0, int((now - then).total_seconds()))
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _short_digest(digest: object) -> str:
    text = str(digest or "")
    algo, _, hexed = text.partition(":")
    return f"{algo}:{hexed[:12]}" if hexed else text[:19]


def _mark(state: str, mark: object, detail: str = "") -> State:
    m = mark if isinstance(mark, dict) else {}
    return State(
        state, str(m.get("reason") or detail), str(m.get("by") or ""), str(m.get("at") or "")
    )


def _freeze(freeze: dict[str, Any] | None) -> State | None:
    """An environment's freeze in force, when the status data has one (``freeze``)."""
    if not freeze or not freeze.get("frozen"):
        return None
    reasons = "; ".join(
        str(w.get("reason") or w.get("window")) for w in freeze.get("windows") or ()
    )
    until = f" until {freeze['until']}" if freeze.get("until") else ""
    return State("frozen", reasons + until)


def _repo_cell(
    service: str, cell: dict[str, Any], rejected: dict[str, Any], frozen: State | None
) -> list[State]:
    states: list[State] = []
    if cell.get("tag") is None:
        states.append(State("unset", str(cell.get("why_empty") or "")))
    else:
        states.append(State("in-git"))
    if cell.get("hold"):
        states.append(_mark("held", cell["hold"]))
    if cell.get("tag") is not None and cell["tag"] in rejected.get(service, {}):
        states.append(_mark("rejected", rejected[service][cell["tag"]]))
    if cell.get("digest_mismatch"):
        states.append(State("mismatch", f"the registry has {cell['digest_mismatch']}"))
    if frozen:
        states.append(frozen)
    return states


def _cluster_cell(cell: dict[str, Any]) -> list[State]:
    states: list[State] = []
    verdict = cell.get("verification") or {}
    if cell.get("git") is None and cell.get("deployed") is None:
        states.append(State("unset"))
    elif cell.get("pending_deploy"):
        runs = cell.get("deployed") or "nothing"
        states.append(State("pending", f"git has {cell.get('git') or 'nothing'}, runs {runs}"))
    elif verdict.get("state") == "verified":
        states.append(State("deployed", "verified", at=str(verdict.get("at") or "")))
    else:
        states.append(State("deployed"))
    for problem in cell.get("drift") or ():
        states.append(State("drift", str(problem)))
    if verdict.get("state") == "failed":
        states.append(
            State(
                "failed",
                f"{verdict.get('tag')}: {verdict.get('reason')}",
                at=verdict.get("at") or "",
            )
        )
    if cell.get("hold"):
        states.append(_mark("held", cell["hold"]))
    return states


def _timeline(events: list[dict[str, Any]], environments: list[str]) -> Timeline | None:
    moves = [
        e for e in reversed(events) if e.get("action") in MOVES and e.get("env") in environments
    ]
    if not moves:
        return None
    lane = 28
    left, step = 90, 70
    width = left + step * len(moves) + 20
    y_of = {env: 20 + lane * i for i, env in enumerate(environments)}
    points: list[Point] = []
    links: list[tuple[float, float, float, float]] = []
    last_of_tag: dict[str, Point] = {}
    for i, e in enumerate(moves):
        x, y = left + step * i + step / 2, y_of[e["env"]]
        tag = str(e.get("tag") or "")
        rollback = e.get("action") == "rollback"
        label = "rollback" if rollback else tag[:10]
        title = f"{e.get('at')}: {e.get('action')} {tag or ''} in {e['env']}".replace("  ", " ")
        point = Point(x, y, label, title, rollback)
        if tag and tag in last_of_tag and last_of_tag[tag].y != y:
            before = last_of_tag[tag]
            links.append((before.x, before.y, x, y))
        if tag:
            last_of_tag[tag] = point
        points.append(point)
    summary = "; ".join(p.title for p in points)
    height = 20 + lane * len(environments)
    return Timeline(width, height, [(e, y) for e, y in y_of.items()], points, links, summary)


def board_view(data: dict[str, Any], *, cluster: bool, now: dt.datetime) -> BoardView:
    """The board's rows from the status JSON (``StatusReport.to_json()``, or with
    ``cluster`` ``ClusterReport.to_json()``)."""
    history: dict[str, list[dict[str, Any]]] = data.get("history") or {}
    changed: dict[str, dict[str, str]] = data.get("changed_at") or {}
    sources: dict[str, str] = data.get("source_repos") or {}
    notes: list[str] = []
    if cluster:
        envs_data: dict[str, Any] = data["environments"]
        environments = list(envs_data)
        services = list(dict.fromkeys(s for e in envs_data.values() for s in e["services"]))
        for env, e in envs_data.items():
            rec = e.get("record")
            if rec:
                notes.append(
                    f"{env}: deployed {rec.get('git_revision', '')[:12]} at "
                    f"{rec.get('deployed_at')} by {rec.get('deployed_by')}"
                )
            else:
                notes.append(f"{env}: no deploy record (glue apply has not deployed it)")
    else:
        environments = list(data["environments"])
        services = list(data["services"])
    for env, freeze in (data.get("freeze") or {}).items():
        nxt = freeze.get("next")
        if nxt:
            notes.append(
                f"{env}: next freeze {nxt.get('start')} to {nxt.get('end')}: {nxt.get('reason')}"
            )
    if not cluster:
        for env, held in (data.get("unlisted_holds") or {}).items():
            for service, mark in held.items():
                notes.append(
                    f"held: {service} in {env} by {mark.get('by')}: {mark.get('reason')} "
                    "(not in glue.yaml)"
                )
    rows = []
    for service in services:
        cells = []
        for env in environments:
            frozen = _freeze((data.get("freeze") or {}).get(env))
            if cluster:
                cell = data["environments"][env]["services"].get(service, {})
                tag = cell.get("git")
                revision = None
                states = _cluster_cell(cell)
                rejected = (data.get("rejected") or {}).get(service, {})
                if tag is not None and tag in rejected:
                    states.append(_mark("rejected", rejected[tag]))
                if frozen:
                    states.append(frozen)
            else:
                cell = data["services"][service][env]
                tag = cell.get("tag")
                revision = cell.get("revision")
                states = _repo_cell(service, cell, data.get("rejected") or {}, frozen)
            at = changed.get(service, {}).get(env, "")
            url = _web(commit_url(sources.get(service), revision)) if revision else None
            cells.append(
                BoardCell(
                    env,
                    tag,
                    url,
                    _age(at, now) if at else "",
                    at,
                    _short_digest(cell.get("digest")) if cell.get("digest") else "",
                    states,
                )
            )
        events = [
            {
                **e,
                "pipeline_url": _web(e.get("pipeline")),
                "age": _age(str(e.get("at") or ""), now),
            }
            for e in history.get(service, [])
        ]
        rows.append(
            BoardRow(
                service,
                "history-" + "".join(c if c.isalnum() or c in "-_" else "_" for c in service),
                cells,
                events,
                _timeline(events, environments),
            )
        )
    return BoardView(
        cluster, now.isoformat(timespec="seconds").replace("+00:00", "Z"), environments, rows, notes
    )


def render_board(view: BoardView) -> str:
    """The page's HTML: autoescaped, in Jinja2's sandbox, every known secret masked."""
    import jinja2
    import jinja2.sandbox

    from gitops_glue import redact

    env = jinja2.sandbox.SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    page = env.get_template("board.html.j2").render(view=view, states=STATES)
    return redact.redact(page)


def write_board(
    data: dict[str, Any], directory: Path, *, cluster: bool, now: dt.datetime | None = None
) -> Path:
    """Write the board into ``directory`` (made when missing): ``index.html`` and its
    ``assets/``. Returns the path of ``index.html``."""
    from gitops_glue.errors import UsageError
    from gitops_glue.files import atomic_write_text

    when = now or dt.datetime.now(dt.timezone.utc)
    page = render_board(board_view(data, cluster=cluster, now=when))
    index = directory / "index.html"
    try:
        (directory / "assets").mkdir(parents=True, exist_ok=True)
        for name in ASSETS:
            text = (HERE / "assets" / name).read_text("utf-8")
            atomic_write_text(directory / "assets" / name, text)
        atomic_write_text(index, page)
    except OSError as exc:
        raise UsageError(
            f"--html {directory}: cannot write the board there ({exc.strerror or exc})",
            hint="name a folder glue can create or write to",
        ) from None
    return index
