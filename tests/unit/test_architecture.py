"""The package's shape, checked: a light CLI import, no import cycles, no heavy calls in cli/."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "gitops_glue"
HEAVY = ("lightkube", "httpx2", "pygit2", "jinja2", "requests")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def import_nodes(tree: ast.AST, top_only: bool) -> list[ast.Import | ast.ImportFrom]:
    """The import statements of ``tree``: every one, at any depth (inside functions,
    methods, ``try`` and ``if``), or with ``top_only`` those that run when the module
    is imported. Imports under ``if TYPE_CHECKING:`` never run: both leave them out."""
    found: list[ast.Import | ast.ImportFrom] = []
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            todo += node.orelse
            continue
        if top_only and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        todo += ast.iter_child_nodes(node)
    return found


def imported_names(
    tree: ast.AST,
    current: str,
    is_package: bool,
    top_only: bool,
    known: frozenset[str] = frozenset(),
) -> set[str]:
    """Absolute names of the modules that ``tree`` imports.

    ``from a import b`` names ``a.b`` when that is a module in ``known``, else ``a``.
    """
    names: set[str] = set()
    for node in import_nodes(tree, top_only):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
            continue
        if node.level:
            base = current.split(".")
            base = base if is_package else base[:-1]
            base = base[: len(base) - (node.level - 1)]
            module = ".".join([*base, node.module] if node.module else base)
        else:
            module = node.module or ""
        for alias in node.names:
            qualified = f"{module}.{alias.name}"
            names.add(qualified if qualified in known or not known else module)
    return names


def internal_graph(*, top_only: bool = False) -> dict[str, set[str]]:
    """Imports between gitops_glue modules: at any level (inside functions too), or
    with ``top_only`` those made when the module loads.

    The implicit import of a parent package's ``__init__`` is left out: ours hold no
    imports of their children but the CLI's, which nothing below it imports.
    """
    paths = modules()
    known = frozenset(paths)
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = imported_names(tree, name, path.name == "__init__.py", top_only, known)
        graph[name] = {target for target in imported if target in known and target != name}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_importing_the_cli_loads_no_heavy_library() -> None:
    code = (
        "import json, sys\n"
        "import gitops_glue.cli\n"
        "import gitops_glue.cli.entry\n"
        f"heavy = {HEAVY!r}\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded = json.loads(proc.stdout)
    assert loaded == [], f"`import gitops_glue.cli` loads {loaded[:10]}"


def test_no_module_imports_a_module_that_imports_it_back() -> None:
    # At any level: an import inside a function closes a cycle as surely as one at the
    # top, only later (when that function first runs).
    graph = internal_graph()
    assert len(graph) > 20, "the scan found too few modules"
    assert find_cycles(graph) == []


def test_the_import_scan_sees_imports_inside_functions_and_skips_type_checking() -> None:
    tree = ast.parse(
        "import os\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    import typed_only\n"
        "else:\n"
        "    import at_runtime\n"
        "def f():\n"
        "    from pkg import late\n"
        "class C:\n"
        "    def m(self):\n"
        "        try:\n"
        "            import deep\n"
        "        except ImportError:\n"
        "            pass\n"
    )
    known = frozenset({"pkg"})
    everywhere = imported_names(tree, "m", False, top_only=False, known=known)
    assert everywhere == {"os", "typing", "at_runtime", "pkg", "deep"}
    at_load = imported_names(tree, "m", False, top_only=True, known=known)
    assert at_load == {"os", "typing", "at_runtime"}


#: glue's model sits at the bottom: config.py may import only the modules at the
#: package's top (errors, files, naming, inputs, ...), never a domain package above it.
DOMAIN = ("cli", "repo", "deploy", "cluster", "messages", "integrations")


def test_config_imports_nothing_above_it() -> None:
    above = {
        target
        for target in internal_graph()["gitops_glue.config"]
        if target.split(".")[1] in DOMAIN
    }
    assert above == set()


def test_the_bottom_modules_and_the_cluster_layer_import_nothing_above_them() -> None:
    # The modules at the package's top (config, files, helmview, tools, ...) are the
    # bottom every domain package builds on; cluster/ is the one Kubernetes layer, which
    # deploy/, repo/ and messages/ use, never the other way round.
    graph = internal_graph()
    upward = set()
    for name, targets in graph.items():
        parts = name.split(".")
        above: tuple[str, ...]
        if len(parts) == 2 and parts[1] not in (*DOMAIN, "__main__"):
            above = DOMAIN
        elif parts[1:2] == ["cluster"]:
            above = ("cli", "repo", "deploy", "messages")
        else:
            continue
        upward |= {f"{name} -> {t}" for t in targets if t.split(".")[1] in above}
    assert upward == set()


def test_pygit2_is_imported_only_where_git_is_wrapped() -> None:
    wrappers = {"gitops_glue.repo.gitrepo", "gitops_glue.repo.remote"}
    users = set()
    for name, path in modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = imported_names(tree, name, path.name == "__init__.py", top_only=False)
        if any(n.split(".")[0] == "pygit2" for n in imported):
            users.add(name)
    assert users == wrappers


def test_the_cycle_finder_finds_long_cycles() -> None:
    # The check above must be able to fail: a -> b -> c -> a is a cycle, d is not in one.
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]


def test_cli_modules_do_not_touch_pygit2_kube_client_or_requests() -> None:
    offenders = []
    for path in sorted((PACKAGE / "cli").rglob("*.py")):
        name = module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        # Every import, including those inside functions.
        for imported in imported_names(tree, name, path.name == "__init__.py", top_only=False):
            if imported.split(".")[0] in ("pygit2", "lightkube", "httpx2", "requests"):
                offenders.append(f"{path.relative_to(ROOT)} imports {imported}")
        for node in ast.walk(tree):
            # importlib.import_module("pygit2") or __import__("kubernetes")
            if isinstance(node, ast.Call) and any(
                isinstance(arg, ast.Constant)
                and isinstance(arg.value, str)
                and arg.value.split(".")[0] in ("pygit2", "lightkube", "httpx2", "requests")
                for arg in node.args
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} loads a heavy module")
    assert offenders == []


def test_a_hook_job_notify_without_glue_yaml_does_not_build_the_config_model(
    tmp_path: Path,
) -> None:
    """A hook Job has no checkout: ``glue notify --tag`` there must not pay for the model."""
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from gitops_glue.messages import notify\n"
        "from gitops_glue.messages.phase import Phase\n"
        "from gitops_glue.integrations.ci import detect\n"
        "req = notify.NotifyRequest(phase=Phase.pre_upgrade, environment='dev',\n"
        f"    directory=Path({str(tmp_path)!r}), services=('a',), tag='v1')\n"
        "config = notify.config_for(req)\n"
        "req = notify.with_defaults(req, detect(), config)\n"
        "what = notify.deployment(req, config)\n"
        "heavy = ('msgspec', 'gitops_glue.config')\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(heavy))\n"
        "print(json.dumps([what.record_namespace, loaded]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert json.loads(proc.stdout) == ["glue-dev", []]


def test_no_cli_command_module_imports_another() -> None:
    """What commands share lives in the shared modules; entry.py alone loads the commands."""
    shared = {"app", "options", "render", "target"}
    cli = {name for name in modules() if name.startswith("gitops_glue.cli.")}
    offenders = []
    for path in sorted((PACKAGE / "cli").glob("*.py")):
        if path.stem in ("__init__", "entry"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = imported_names(tree, module_name(path), False, False, frozenset(cli))
        offenders += [
            f"{path.relative_to(ROOT)} imports {name}"
            for name in sorted(imported & cli)
            if name.rsplit(".", 1)[1] not in shared
        ]
    assert offenders == []
