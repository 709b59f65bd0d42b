"""Message templates: Jinja2 files shipped with glue, overridable per repository.

Every value substituted into a template is escaped for Slack's mrkdwn
(``&``, ``<``, ``>``) unless it was built with :func:`link` or marked safe, so
a commit message cannot inject mentions or links.

Every template renders in Jinja2's sandbox, as one self-contained file
(``{% include %}``, ``{% extends %}`` and ``{% import %}`` are refused), and
whatever it renders has every secret glue knows masked
(:func:`gitops_glue.redact.redact`) before it goes anywhere. A template that is
not glue's own (glue.yaml ``templates``, ``--template``) is the repository's
input: it renders in a Python process of its own, with no environment
variables, at most :data:`MEMORY_LIMIT` bytes of memory and
:data:`CPU_SECONDS` of CPU time, so that a template that loops, recurses or
builds a huge text ends as one usage error (exit 2), never a hang, an
out-of-memory kill or a traceback. A template file holds at most
:data:`MAX_TEMPLATE_BYTES`; a rendered text at most :data:`MAX_RENDERED`
characters.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitops_glue import redact
from gitops_glue.errors import OperationError, UsageError

if TYPE_CHECKING:
    import jinja2

SHIPPED = Path(__file__).parent / "templates"

#: The largest template file glue reads (bytes).
MAX_TEMPLATE_BYTES = 64 * 1024
#: The longest text a template may render (characters); Slack shows 3,000 a section.
MAX_RENDERED = 100_000
#: Memory (bytes of address space) and CPU time a repository's template may use.
MEMORY_LIMIT = 512 * 1024 * 1024
CPU_SECONDS = 5
#: Wall-clock bound on the renderer process (a stalled one is stopped).
WALL_SECONDS = 30
#: ``x ** n`` may build numbers up to this many bits.
_MAX_POWER_BITS = 64 * 1024
_NO_IMPORTS = "a message template is one self-contained file"


class Mrkdwn(str):
    """Text that is already valid mrkdwn: not escaped again."""

    __slots__ = ()


def _finalize(value: Any) -> Any:
    from gitops_glue.messages.slack import escape

    if value is None:
        return ""
    if isinstance(value, Mrkdwn):
        return value
    return escape(str(value))


def _link(url: str | None, label: str) -> Mrkdwn:
    from gitops_glue.messages.slack import link

    return Mrkdwn(link(url or "", str(label)))


def _code(text: str | None) -> Mrkdwn:
    from gitops_glue.messages.slack import escape

    return Mrkdwn(f"`{escape(str(text or ''))}`")


def render(name: str, context: dict[str, Any], override: Path | None = None) -> str:
    """Render the shipped template ``name`` (or ``override``) with ``context``.

    The text comes back with every registered secret masked.
    """
    if override is None:
        path = SHIPPED / name
        text = render_source(path.read_text(encoding="utf-8"), context, f"template {path}")
    else:
        where = f"template {override}"
        text = _render_isolated(read_template(override), context, where)
    return redact.redact(text)


def read_template(path: Path) -> str:
    """The text of a template file: a regular file, UTF-8, at most MAX_TEMPLATE_BYTES."""
    try:
        # Non-blocking: opening a FIFO must not wait for a writer.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise UsageError(
                    f"template {path}: not a regular file", hint="name a template file"
                )
            data = handle.read(MAX_TEMPLATE_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"template {path}: cannot read it ({exc.strerror})") from None
    if len(data) > MAX_TEMPLATE_BYTES:
        raise UsageError(
            f"template {path}: larger than {MAX_TEMPLATE_BYTES // 1024} KiB",
            hint="a message template is a short text",
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"template {path}: not UTF-8 text (byte {exc.start})",
            hint="save the template as UTF-8",
        ) from None


# --------------------------------------------------------------------------- rendering


def _environment() -> jinja2.Environment:
    import jinja2.sandbox

    class Sandbox(jinja2.sandbox.SandboxedEnvironment):
        """Jinja2's sandbox, with ``*`` and ``**`` bounded before they build a result."""

        intercepted_binops = frozenset({"*", "**"})

        def call_binop(
            self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any
        ) -> Any:
            _check_binop(operator, left, right)
            return super().call_binop(context, operator, left, right)

    env = Sandbox(
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        autoescape=False,  # Slack mrkdwn, escaped by _finalize
    )
    env.filters["link"] = lambda label, url: _link(url, label)
    env.filters["code"] = _code
    env.filters["short"] = lambda sha, n=7: (sha or "")[:n]
    return env


def _check_binop(operator: str, left: Any, right: Any) -> None:
    from jinja2.exceptions import SecurityError

    def whole(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    if operator == "*":
        for seq, times in ((left, right), (right, left)):
            sized = isinstance(seq, (str, list, tuple)) and whole(times)
            if sized and len(seq) * times > MAX_RENDERED:
                raise SecurityError(
                    f"repeating a text or list {times:,} times makes more than "
                    f"{MAX_RENDERED:,} items"
                )
    elif operator == "**" and whole(left) and whole(right) and right > 0 and abs(left) > 1:
        bits = right * math.log2(abs(left))
        if bits > _MAX_POWER_BITS:
            raise SecurityError(f"the power has more than {_MAX_POWER_BITS:,} bits")


def render_source(source: str, context: dict[str, Any], where: str) -> str:
    """Render template ``source`` in the sandbox; every failure is one UsageError
    naming ``where`` (and the template's line when known)."""
    import jinja2
    from jinja2 import nodes

    env = _environment()
    try:
        tree = env.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise UsageError(f"{where}:{exc.lineno}: {exc.message}") from None
    except RecursionError:
        raise UsageError(f"{where}: nested too deeply to read") from None
    for node, tag in (
        (nodes.Extends, "extends"),
        (nodes.Include, "include"),
        (nodes.Import, "import"),
        (nodes.FromImport, "from ... import"),
    ):
        for found in tree.find_all(node):
            raise UsageError(
                f"{where}:{found.lineno}: {{% {tag} %}} is not supported: {_NO_IMPORTS}",
                hint="copy what it would bring in into this template",
            )
    try:
        template = env.from_string(tree)
        size = 0
        out: list[str] = []
        for chunk in template.generate(**context):
            size += len(chunk)
            if size > MAX_RENDERED:
                raise UsageError(
                    f"{where}: renders more than {MAX_RENDERED:,} characters",
                    hint="a Slack message section holds 3,000",
                )
            out.append(chunk)
        return "".join(out).strip()
    except UsageError:
        raise
    except jinja2.TemplateSyntaxError as exc:
        raise UsageError(f"{where}:{exc.lineno}: {exc.message}") from None
    except jinja2.UndefinedError as exc:
        raise UsageError(
            f"{where}: {exc.message}", hint=f"available: {', '.join(sorted(context))}"
        ) from None
    except jinja2.exceptions.SecurityError as exc:
        raise UsageError(
            f"{where}{_line(exc)}: not allowed in a message template: {_said(exc)}"
        ) from None
    except RecursionError:
        raise UsageError(
            f"{where}: recursion too deep", hint="a macro that calls itself needs an end"
        ) from None
    except MemoryError:
        raise UsageError(f"{where}: needs too much memory") from None
    except _OutOfTime:
        raise UsageError(f"{where}: used more than {CPU_SECONDS} s of CPU time") from None
    except Exception as exc:  # the template's own error: 1/0, [].pop(), 'a' + 1...
        raise UsageError(f"{where}{_line(exc)}: {type(exc).__name__}: {_said(exc)}") from None


def _line(exc: BaseException) -> str:
    """``:N``, the template line the error was raised at, when the traceback tells."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    lines = [f.lineno for f in frames if f.filename == "<template>"]
    return f":{lines[-1]}" if lines and lines[-1] else ""


def _said(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:299] + "…"


# --------------------------------------------------------------------------- isolation


class _OutOfTime(Exception):
    pass


#: The renderer process: reads the request, then renders. gitops_glue is imported
#: from where the caller's came from; the caller's other import paths (which ``-I``
#: leaves out) come after the renderer's own, so they cannot replace a module it uses.
_CHILD = (
    "import json, sys\n"
    "request = json.loads(sys.stdin.buffer.read())\n"
    "sys.path.insert(0, request['package'])\n"
    "sys.path += [p for p in request['path'] if p not in sys.path]\n"
    "from gitops_glue.messages.templates import _child\n"
    "_child(request)\n"
)


def _render_isolated(source: str, context: dict[str, Any], where: str) -> str:
    """:func:`render_source` in a Python process of its own, without the environment,
    within MEMORY_LIMIT, CPU_SECONDS and WALL_SECONDS."""
    import subprocess

    request = json.dumps(
        {
            # Absolute entries only: "" would import the working directory's modules.
            "path": [p for p in sys.path if p and os.path.isabs(p)],
            "package": str(Path(__file__).resolve().parents[2]),
            "source": source,
            "context": context,
            "where": where,
        },
        default=str,
    )
    # No secrets in the renderer: it gets no environment (Windows needs SYSTEMROOT).
    env = {k: os.environ[k] for k in ("SYSTEMROOT",) if k in os.environ}
    try:
        proc = subprocess.run(
            [sys.executable, "-I", "-c", _CHILD],
            input=request.encode("utf-8", "surrogateescape"),
            capture_output=True,
            env=env,
            timeout=WALL_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise UsageError(
            f"{where}: still rendering after {WALL_SECONDS} s; stopped",
            hint="a loop that never ends?",
        ) from None
    except OSError as exc:
        raise OperationError(f"cannot start Python to render {where}: {exc.strerror}") from None
    try:
        answer = json.loads(proc.stdout)
    except ValueError:
        answer = None
    if isinstance(answer, dict) and isinstance(answer.get("text"), str):
        return str(answer["text"])
    if isinstance(answer, dict) and isinstance(answer.get("error"), str):
        hint = answer.get("hint")
        raise UsageError(answer["error"], hint=hint if isinstance(hint, str) else None)
    if proc.returncode < 0:  # killed: the CPU limit's SIGKILL, or out of memory
        raise UsageError(
            f"{where}: stopped: it needed more than {CPU_SECONDS} s of CPU time or "
            f"{MEMORY_LIMIT // 2**20} MiB of memory",
            hint="a loop that never ends, or a text that grows without bound?",
        )
    said = proc.stderr.decode("utf-8", "replace").strip().splitlines()
    raise OperationError(
        f"rendering {where} failed: {said[-1] if said else f'exit {proc.returncode}'}"
    )


def _child(request: dict[str, Any]) -> None:
    """The renderer process's work: limits, then render, then one JSON answer."""
    _limit_resources()
    try:
        answer: dict[str, Any] = {
            "text": render_source(request["source"], request["context"], request["where"])
        }
    except UsageError as exc:
        answer = {"error": exc.message, "hint": exc.hint}
    sys.stdout.buffer.write(json.dumps(answer).encode("utf-8", "surrogateescape"))
    sys.stdout.flush()


def _limit_resources() -> None:
    try:
        import resource
        import signal
    except ImportError:  # not a POSIX system: the wall-clock bound still holds
        return

    def out_of_time(_signum: int, _frame: object) -> None:
        raise _OutOfTime

    signal.signal(signal.SIGXCPU, out_of_time)
    used = resource.getrusage(resource.RUSAGE_SELF)
    cpu = int(used.ru_utime + used.ru_stime) + CPU_SECONDS
    limits = [(resource.RLIMIT_CPU, cpu, cpu + 2)]
    try:
        with open("/proc/self/statm") as statm:  # the address space in use (pages)
            size = int(statm.read().split()[0]) * resource.getpagesize()
        limits.append((resource.RLIMIT_AS, size + MEMORY_LIMIT, size + MEMORY_LIMIT))
    except (OSError, ValueError, IndexError):
        limits.append((resource.RLIMIT_DATA, MEMORY_LIMIT, MEMORY_LIMIT))
    for kind, soft, hard in limits:
        _, ceiling = resource.getrlimit(kind)
        if ceiling != resource.RLIM_INFINITY:
            soft, hard = min(soft, ceiling), min(hard, ceiling)  # noqa: PLW2901
        # When the system does not allow it, the wall-clock bound still holds.
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(kind, (soft, hard))
