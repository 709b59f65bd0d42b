"""A gate in front of helm, so ``helmfile apply`` can start before the lock is held.

``glue apply`` must hold the environment's Lease and have recovered stuck
releases before anything changes in the cluster. Waiting for both before
starting helmfile would add the lock and preflight time to every deploy, so
helmfile starts at once with ``--helm-binary`` pointing at a small shell
script (the *gate*) that passes read-only helm commands straight through and
holds everything else until glue opens the gate:

- ``helm diff`` runs at once, but first records what ``helm list`` says of its
  namespace (a *snapshot*: each release's latest revision and status), and
  then does not exit until the gate opens. helmfile runs its pre-sync hooks
  and upgrades only after every diff has exited, so nothing that acts on a
  diff's answer runs before the gate opens.
- Commands not known to be read-only (upgrade, install, rollback, uninstall,
  test, ...) wait for the gate before they start.

Once the lock is held and the preflight is done, glue compares the snapshots
with the releases as they are now. Helm gives every change a new revision,
so equal snapshots mean the diffs saw what the upgrades will act on, and the
gate opens. Otherwise (another deploy got in first, or the preflight recovered
a release) glue stops this helmfile run and starts a new one.

A gate that glue closed, or whose glue process is gone (killed without
warning), makes every held command fail instead of running.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gitops_glue.errors import UsageError

# helm subcommands that change nothing in the cluster: passed straight through.
READ_ONLY = [
    "version",
    "completion",
    "env",
    "help",
    "plugin",
    "repo",
    "search",
    "show",
    "inspect",
    "pull",
    "fetch",
    "verify",
    "dependency",
    "dep",
    "dependencies",
    "template",
    "lint",
    "package",
    "create",
    "registry",
    "get",
    "status",
    "list",
    "ls",
    "history",
    "hist",
]

_SCRIPT = """#!/bin/sh
# glue apply's gate in front of helm: see gitops_glue/gate.py.
G={gate}
H={helm}
P={pid}
stopped() {{
  [ ! -d "$G" ] || [ -e "$G/closed" ] || ! kill -0 "$P" 2>/dev/null
}}
wait_for() {{
  while [ ! -e "$G/$1" ]; do
    if stopped; then
      echo "glue: the deploy stopped before helm $2 could go on" >&2
      exit 1
    fi
    sleep 0.01
  done
}}
case "$1" in
  {read_only}) exec "$H" "$@" ;;
  diff)
    wait_for env diff
    . "$G/env"
    if [ ! -e "$G/open" ]; then
      ns=; ctx=; kc=; prev=
      for a in "$@"; do
        case "$prev" in
          --namespace|-n) ns=$a ;;
          --kube-context) ctx=$a ;;
          --kubeconfig) kc=$a ;;
        esac
        case "$a" in
          --namespace=*) ns=${{a#*=}} ;;
          --kube-context=*) ctx=${{a#*=}} ;;
          --kubeconfig=*) kc=${{a#*=}} ;;
        esac
        prev=$a
      done
      # One helm list per namespace: the first diff there takes it, the others wait for it.
      key=$$
      case "$ctx$kc$ns" in
        *[!a-z0-9-]*) ;;
        *) [ -n "$ctx$kc" ] || key=ns-$ns ;;
      esac
      if mkdir "$G/taking.$key" 2>/dev/null; then
        : > "$G/snap.$key.started"
        {{
          printf '%s\\n' "$ns"
          "$H" list --all --max 0 --output json ${{ns:+--namespace "$ns"}} \\
            ${{ctx:+--kube-context "$ctx"}} ${{kc:+--kubeconfig "$kc"}} 2>/dev/null || echo failed
        }} > "$G/snap.$key.tmp"
        mv "$G/snap.$key.tmp" "$G/snap.$key.json"
      else
        wait_for "snap.$key.json" diff
      fi
    fi
    "$H" "$@"
    rc=$?
    wait_for open diff
    exit $rc ;;
  *)
    wait_for open "$1"
    exec "$H" "$@" ;;
esac
"""


@dataclass(frozen=True)
class Seen:
    """What one ``helm diff`` saw of its namespace before it ran."""

    namespace: str  # "" when helm used the kube context's namespace
    releases: dict[str, tuple[int, str]] | None  # name -> (revision, status); None: unreadable


def _exec_folder() -> str:
    """A folder for the gate script whose file system lets it run (not mounted noexec)."""
    candidates = [
        tempfile.gettempdir(),
        os.environ.get("XDG_RUNTIME_DIR", ""),
        str(Path.home() / ".cache" / "gitops-glue"),
    ]
    for folder in filter(None, candidates):
        with contextlib.suppress(OSError):
            Path(folder).mkdir(parents=True, exist_ok=True)
            if not os.statvfs(folder).f_flag & getattr(os, "ST_NOEXEC", 8):
                return folder
    raise UsageError(
        "glue apply needs a folder where it may run a small script, but "
        f"{' and '.join(filter(None, candidates))} are mounted noexec",
        hint="point TMPDIR at a folder on a file system that allows executables",
    )


class Gate:
    """The gate's directory and script; :meth:`remove` when done."""

    def __init__(self, real_helm: str) -> None:
        found = shutil.which(real_helm)
        # helmfile runs in the deployment repo, maybe not where glue was started.
        helm = os.path.abspath(found) if found else real_helm
        self.dir = Path(tempfile.mkdtemp(prefix="glue-gate-", dir=_exec_folder()))
        self.helm = str(self.dir / "helm")
        script = _SCRIPT.format(
            gate=shlex.quote(str(self.dir)),
            helm=shlex.quote(helm),
            pid=os.getpid(),
            read_only="|".join(READ_ONLY),
        )
        path = Path(self.helm)
        path.write_text(script)
        path.chmod(0o700)

    def _mark(self, name: str, text: str = "") -> None:
        # Renamed into place so the script never reads half a file; no fsync (unlike
        # fsutil.atomic_write_text): this is a scratch folder on a deploy's hot path.
        tmp = self.dir / f".{name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, self.dir / name)

    def set_env(self, env: dict[str, str]) -> None:
        """Variables for ``helm diff`` (known only once the helm version is); lets diffs start."""
        self._mark("env", "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items()))

    def open(self) -> None:
        self._mark("open")

    def close(self) -> None:
        """Make every held command fail (glue is giving up on this helmfile run)."""
        self._mark("closed")

    @property
    def is_open(self) -> bool:
        return (self.dir / "open").exists()

    def snapshots_in_flight(self) -> bool:
        """Whether a diff has started its snapshot and not finished it."""
        started = {p.name.split(".")[1] for p in self.dir.glob("snap.*.started")}
        done = {p.name.split(".")[1] for p in self.dir.glob("snap.*.json")}
        return bool(started - done)

    def snapshots(self) -> list[Seen]:
        seen = []
        for path in sorted(self.dir.glob("snap.*.json")):
            namespace, _, body = path.read_text().partition("\n")
            try:
                items = json.loads(body) if body else None
            except ValueError:
                items = None
            if not isinstance(items, list):
                seen.append(Seen("", None))
                continue
            releases = {}
            for item in items:
                try:
                    releases[str(item["name"])] = (int(item["revision"]), str(item["status"]))
                except (KeyError, TypeError, ValueError):
                    continue
            seen.append(Seen(namespace, releases))
        return seen

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
