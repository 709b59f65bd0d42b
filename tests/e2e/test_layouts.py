"""glue reads deployment repositories the way helmfile does, whatever their layout.

One fixture repository per layout (environment values, per-release values files, ``set:``
from environment values or from an environment variable, globs, ``.gotmpl`` values files,
nested helmfiles and ``helmfile.d``), each tested with helmfile 0.166 and 1.8: ``glue init``
writes a glue.yaml that ``glue check`` accepts, ``glue status`` shows the tags helmfile
renders, and a ``glue bump-tag`` (or ``glue promote``) changes what helmfile renders for
exactly one release in one environment, and only its tag.

Every chart is an OCI chart of a registry that does not exist, so nothing may resolve it.
Ground truth is helmfile itself: ``helmfile -e ENV write-values --skip-deps`` with
``--chart unreachable/app``, and ``helmfile build`` for ``set:`` (which write-values
leaves out). The ``--chart`` override (a chart of an undeclared repository, as
unresolvable) only changes the chart: helmfile 0.166 pulls OCI charts for every command
but ``list --skip-charts``, write-values included, and 1.8 pulls them for ``build``.

helm and helmfile come from the testbed's tools cache (scripts/testbed install); a test
skips, saying so, when its helmfile has not been built.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from tests.support.helpers import TESTBED_BIN, Run, commit_all, git, glue, refuses_bump

CHART = "oci://registry.invalid/charts/app"
#: The chart helmfile is told to use for ground truth (see the module docstring).
GROUND_TRUTH_CHART = "unreachable/app"
#: Where every fixture chart takes its image tag.
TAG = "image.tag"

# --------------------------------------------------------------------------- helmfile


@dataclass(frozen=True)
class Helmfile:
    """One helmfile binary: glue is pointed at it (GLUE_HELMFILE) and it is ground truth."""

    version: str
    path: Path

    def glue_env(self, **extra: str) -> dict[str, str]:
        """What glue runs with: the testbed's helm and this helmfile."""
        return {
            "PATH": f"{TESTBED_BIN}{os.pathsep}{os.environ['PATH']}",
            "HELMFILE_UPGRADE_NOTICE_DISABLED": "1",
            "GLUE_HELMFILE": str(self.path),
            # The real helm: the testbed's `helm` is a wrapper script, which glue refuses
            # (it runs helmfile with nothing but helm on PATH).
            "GLUE_HELM": str(TESTBED_BIN / "helm3"),
            **extra,
        }


HELMFILES = {"0.166": "helmfile", "1.8": "helmfile1"}


@pytest.fixture(params=list(HELMFILES), ids=[f"helmfile{v}" for v in HELMFILES])
def helmfile(request: pytest.FixtureRequest) -> Helmfile:
    """Each helmfile version in turn (skips when the testbed has not built it)."""
    version: str = request.param
    path = TESTBED_BIN / HELMFILES[version]
    if not path.exists() or not (TESTBED_BIN / "helm3").exists():
        pytest.skip(f"helmfile {version} ({path.name}) or helm not built in {TESTBED_BIN}")
    return Helmfile(version, path)


Rendered = dict[str, dict[str, dict[str, Any]]]  # env -> release -> values the chart gets


def rendered(repo: Path, envs: tuple[str, ...], hf: Helmfile, *, sets: bool) -> Rendered:
    """What helmfile gives each release's chart in each environment: its values files
    (``write-values``), then its ``set:`` entries (from ``build``), as helm merges them.
    The environments are rendered at the same time."""
    home = repo.parent / "helmfile-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GLUE_", "KUBE"))}
    env.pop("WORKER_TAG", None)
    env.update(
        PATH=f"{TESTBED_BIN}{os.pathsep}{os.environ['PATH']}",
        HELMFILE_UPGRADE_NOTICE_DISABLED="1",
        HOME=str(home),
        HELM_CACHE_HOME=str(home / "cache"),
        HELM_CONFIG_HOME=str(home / "config"),
        HELM_DATA_HOME=str(home / "data"),
    )
    base = [str(hf.path), "--chart", GROUND_TRUTH_CHART]
    runs: dict[tuple[str, str], tuple[subprocess.Popen[str], Path]] = {}
    for name in envs:
        out = Path(tempfile.mkdtemp(prefix=f"written-{name}-", dir=repo.parent))
        template = f"{out}/{{{{ .Release.Name }}}}.yaml"
        args = [*base, "-e", name, "write-values", "--skip-deps"]
        args += ["--output-file-template", template]
        runs[(name, "values")] = (_start(args, repo, env), out)
        if sets:
            runs[(name, "build")] = (_start([*base, "-e", name, "build"], repo, env), out)
    done = {key: proc.communicate(timeout=120) for key, (proc, _out) in runs.items()}
    for (name, kind), (proc, _out) in runs.items():
        stderr = done[(name, kind)][1]
        assert proc.returncode == 0, f"helmfile {hf.version} -e {name} {kind}: {stderr}"
    result: Rendered = {}
    builds: dict[str, str] = {}
    for (name, kind), (_proc, out) in runs.items():
        if kind == "build":
            builds[name] = done[(name, kind)][0]
        else:
            result[name] = {
                p.name.removesuffix(".yaml"): yaml.safe_load(p.read_text()) or {}
                for p in sorted(out.iterdir())
            }
            shutil.rmtree(out)
    for name, text in builds.items():
        for doc in yaml.safe_load_all(text):
            for release in (doc or {}).get("releases") or []:
                for entry in release.get("set") or []:
                    _set(
                        result[name].setdefault(release["name"], {}), entry["name"], entry["value"]
                    )
    return result


def _start(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _set(values: dict[str, Any], dotted: str, value: object) -> None:
    """``helm --set dotted=value`` (the plain ``a.b.c`` names the fixtures use)."""
    *parents, leaf = dotted.split(".")
    for key in parents:
        values = values.setdefault(key, {})
    values[leaf] = value if isinstance(value, str) else str(value)


def flat(values: object, prefix: str = "") -> dict[str, object]:
    """``{"a.b": leaf}`` for every leaf of a values tree."""
    if isinstance(values, dict) and values:
        out: dict[str, object] = {}
        for key, sub in values.items():
            out.update(flat(sub, f"{prefix}{key}."))
        return out
    return {prefix.removesuffix("."): values} if prefix else {}


def tag_of(values: dict[str, Any]) -> str:
    return str(flat(values)[TAG])


# --------------------------------------------------------------------------- layouts


@dataclass(frozen=True)
class Layout:
    """A deployment repository: its files (``@CHART@`` stands for the chart)."""

    name: str
    files: dict[str, str]
    envs: tuple[str, ...]
    #: The services glue manages (each deployed by the release of the same name).
    services: tuple[str, ...]
    #: One bump per service: (service, environment), chosen where the write is not trivial:
    #: where the tag comes from a file another environment or service renders too, so a
    #: write there would show in the other's rendering.
    bumps: tuple[tuple[str, str], ...]
    #: Releases whose tag no values file holds: glue must say so and leave them alone.
    unmanaged: tuple[str, ...] = ()
    #: Whether some release takes its tag from ``set:`` (ground truth needs ``build``).
    sets: bool = False

    def build(self, dest: Path) -> Path:
        for name, text in self.files.items():
            path = dest / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text.replace("@CHART@", CHART))
        return dest


def _release(name: str, values: list[str] | None = None, extra: str = "") -> str:
    """A release of the unresolvable chart; ``values`` entries as written (an entry's
    further lines relative to its first)."""
    text = f"  - name: {name}\n    namespace: shop\n    chart: @CHART@\n    version: 1.0.0\n"
    if values is not None:
        text += "    values:\n" + "".join(
            "      - " + v.replace("\n", "\n        ") + "\n" for v in values
        )
    return text + extra


def _envs(envs: tuple[str, ...], values: Callable[[str], list[str]] | None = None) -> str:
    text = "environments:\n"
    for env in envs:
        if values is None:
            text += f"  {env}: {{}}\n"
        else:
            text += f"  {env}:\n    values:\n" + "".join(f"      - {v}\n" for v in values(env))
    return text + "---\n"


def _image(svc: str, tag: str, extra: str = "") -> str:
    return f'image:\n  repository: registry.example.com/{svc}\n  tag: "{tag}"\n{extra}'


def env_values_layout() -> Layout:
    """Environment values (a shared base first) feed each release's inline values."""
    envs = ("dev", "prod")
    helmfile = (
        _envs(envs, lambda e: ["environments/base.yaml", f"environments/{e}.yaml"])
        + "releases:\n"
        + '{{- range $svc := list "api" "web" }}\n'
        + _release("{{ $svc }}", ["{{ index $.Values $svc | toYaml | nindent 8 }}"])
        + "{{- end }}\n"
    )
    return Layout(
        "env-values",
        {
            "helmfile.yaml.gotmpl": helmfile,
            "environments/base.yaml": (
                "# every environment starts from here\n"
                "api:\n  image:\n    repository: registry.example.com/api\n"
                '    tag: "1.0.0"\n  replicas: 1\n'
                "web:\n  image:\n    repository: registry.example.com/web\n"
                '    tag: "1.0.0"\n'
            ),
            # web's tag comes from base.yaml, in dev as in prod.
            "environments/dev.yaml": 'api:\n  image:\n    tag: "1.1.0"\n',
            "environments/prod.yaml": 'api:\n  image:\n    tag: "1.0.2"\n  replicas: 3\n',
        },
        envs,
        ("api", "web"),
        (("api", "dev"), ("web", "prod")),
    )


PER_RELEASE_SERVICES = ("api", "web", "users")


def _hook(events: list[str], command: str, indent: str) -> str:
    """A helmfile hook that runs ``sh -c COMMAND`` on ``events``."""
    return (
        f"{indent}- events: {json.dumps(events)}\n{indent}  showlogs: true\n"
        f"{indent}  command: sh\n{indent}  args: {json.dumps(['-c', command])}\n"
    )


def per_release_helmfile(envs: tuple[str, ...], hooks: str = "", release_hooks: str = "") -> str:
    return (
        _envs(envs)
        + hooks
        + "releases:\n"
        + "".join(
            _release(
                svc,
                [
                    f"config/default/{svc}-values.yaml",
                    "config/{{ .Environment.Name }}/values.yaml",
                    f"config/{{{{ .Environment.Name }}}}/{svc}-values.yaml",
                ],
                "    missingFileHandler: Warn\n" + release_hooks,
            )
            for svc in PER_RELEASE_SERVICES
        )
    )


def per_release_layout() -> Layout:
    """Each release's own values files: a shared default, the environment's shared file
    (prod's sets image.tag for everyone; dev and staging have none), the release's file."""
    envs = ("dev", "staging", "prod")
    files = {"helmfile.yaml.gotmpl": per_release_helmfile(envs)}
    for i, svc in enumerate(PER_RELEASE_SERVICES):
        files[f"config/default/{svc}-values.yaml"] = _image(svc, "1.0.0", "replicas: 1\n")
        files[f"config/dev/{svc}-values.yaml"] = f'image:\n  tag: "1.1.{i}"\n'
        files[f"config/staging/{svc}-values.yaml"] = f'image:\n  tag: "1.2.{i}"\n'
    files["config/prod/values.yaml"] = '# every service in prod\nimage:\n  tag: "1.0.5"\n'
    files["config/prod/api-values.yaml"] = "replicas: 3\n"
    files["config/prod/web-values.yaml"] = "{}\n"
    files["config/prod/users-values.yaml"] = "# users: prod runs the shared tag\n"
    return Layout(
        "per-release",
        files,
        envs,
        PER_RELEASE_SERVICES,
        (("api", "staging"), ("web", "prod"), ("users", "prod")),
    )


def set_from_env_values_layout() -> Layout:
    """``set: image.tag`` from environment values."""
    envs = ("dev", "prod")
    helmfile = (
        _envs(envs, lambda e: ["env/common.yaml", f"env/{e}.yaml"])
        + "releases:\n"
        + "".join(
            _release(
                svc,
                [f"image:\n  repository: registry.example.com/{svc}"],
                f"    set:\n      - name: image.tag\n        value: {{{{ .Values.{svc}.tag }}}}\n",
            )
            for svc in ("cart", "search")
        )
    )
    return Layout(
        "set-from-env-values",
        {
            "helmfile.yaml.gotmpl": helmfile,
            "env/common.yaml": 'cart:\n  replicas: 1\nsearch:\n  tag: "3.0.0"\n',
            "env/dev.yaml": 'cart:\n  tag: "2.1.0"\n',  # search's: common.yaml's
            "env/prod.yaml": 'cart:\n  tag: "2.0.0"\n',
        },
        envs,
        ("cart", "search"),
        (("cart", "dev"), ("search", "prod")),
        sets=True,
    )


def set_from_env_var_layout() -> Layout:
    """worker's tag comes from ``$WORKER_TAG``: no file glue could edit holds it."""
    envs = ("dev", "prod")
    helmfile = (
        _envs(envs, lambda e: [f"env/{e}.yaml"])
        + "releases:\n"
        + _release("api", ["image:\n  tag: {{ .Values.api.image.tag | quote }}"])
        + _release(
            "worker",
            None,
            "    set:\n      - name: image.tag\n"
            '        value: {{ env "WORKER_TAG" | default "master" }}\n',
        )
    )
    return Layout(
        "set-from-env-var",
        {
            "helmfile.yaml.gotmpl": helmfile,
            "env/dev.yaml": 'api:\n  image:\n    tag: "4.1.0"\n',
            "env/prod.yaml": 'api:\n  image:\n    tag: "4.0.0"\n',
        },
        envs,
        ("api",),
        (("api", "prod"),),
        unmanaged=("worker",),
        sets=True,
    )


def same_key_layout() -> Layout:
    """Two services, the same key image.tag, each in its release's own files."""
    envs = ("dev", "prod")
    helmfile = (
        _envs(envs)
        + "releases:\n"
        + "".join(
            _release(
                svc,
                [f"services/{svc}/values.yaml", f"services/{svc}/{{{{ .Environment.Name }}}}.yaml"],
            )
            for svc in ("api", "web")
        )
    )
    return Layout(
        "same-key",
        {
            "helmfile.yaml.gotmpl": helmfile,
            "services/api/values.yaml": _image("api", "5.0.0"),
            "services/api/dev.yaml": "replicas: 1\n",  # the tag: values.yaml's
            "services/api/prod.yaml": "replicas: 2\n",
            "services/web/values.yaml": _image("web", "6.0.0"),
            "services/web/dev.yaml": 'image:\n  tag: "6.1.0"\n',
            "services/web/prod.yaml": 'image:\n  tag: "6.0.1"\n',
        },
        envs,
        ("api", "web"),
        (("api", "prod"), ("web", "dev")),
    )


def globs_layout() -> Layout:
    """Environment values ``environments/default/*.yaml``, then the environment's file."""
    envs = ("dev", "prod")
    helmfile = (
        _envs(envs, lambda e: ["environments/default/*.yaml", f"environments/{e}.yaml"])
        + "releases:\n"
        + '{{- range $svc := list "api" "web" }}\n'
        + _release(
            "{{ $svc }}",
            [
                "image:\n"
                "  repository: registry.example.com/{{ $svc }}\n"
                "  tag: {{ index $.Values.imageTags $svc | quote }}"
            ],
        )
        + "{{- end }}\n"
    )
    return Layout(
        "globs",
        {
            "helmfile.yaml.gotmpl": helmfile,
            "environments/default/api.yaml": 'imageTags:\n  api: "7.0.0"\n',
            "environments/default/common.yaml": "replicas: 1\n",
            "environments/default/web.yaml": 'imageTags:\n  web: "8.0.0"\n',
            "environments/dev.yaml": 'imageTags:\n  api: "7.1.0"\n',  # web: default/'s
            "environments/prod.yaml": 'imageTags:\n  api: "7.0.1"\n',
        },
        envs,
        ("api", "web"),
        (("api", "dev"), ("web", "prod")),
    )


def gotmpl_layout() -> Layout:
    """Release values files that helmfile renders as templates (``.yaml.gotmpl``), with
    literal tags: api's shared default, and web's per-environment file."""
    envs = ("dev", "prod")
    helmfile = (
        _envs(envs)
        + "releases:\n"
        + _release("api", ["config/api.yaml.gotmpl", "config/{{ .Environment.Name }}/api.yaml"])
        + _release("web", ["config/{{ .Environment.Name }}/web.yaml.gotmpl"])
    )
    templated = 'environment: "{{ .Environment.Name }}"  # rendered by helmfile\n'
    return Layout(
        "gotmpl-values",
        {
            "helmfile.yaml.gotmpl": helmfile,
            "config/api.yaml.gotmpl": _image("api", "9.0.0", templated),
            "config/dev/api.yaml": "replicas: 1\n",  # the tag: api.yaml.gotmpl's
            "config/prod/api.yaml": "replicas: 2\n",
            "config/dev/web.yaml.gotmpl": 'image:\n  tag: "10.1.0"\n' + templated,
            "config/prod/web.yaml.gotmpl": 'image:\n  tag: "10.0.0"\n' + templated,
        },
        envs,
        ("api", "web"),
        (("api", "prod"), ("web", "dev")),
    )


def nested_layout() -> Layout:
    """A root helmfile (web, from environment values) with ``helmfiles:`` naming
    apps/helmfile.yaml.gotmpl (api, with values files relative to apps/)."""
    envs = ("dev", "prod")
    root = (
        _envs(envs, lambda e: [f"env/{e}.yaml"])
        + "helmfiles:\n  - path: apps/helmfile.yaml.gotmpl\n\n"
        + "releases:\n"
        + _release("web", ["image:\n  tag: {{ .Values.web.image.tag | quote }}"])
    )
    apps = (
        _envs(envs)
        + "releases:\n"
        + _release("api", ["values/api.yaml", "values/{{ .Environment.Name }}/api.yaml"])
    )
    return Layout(
        "nested",
        {
            "helmfile.yaml.gotmpl": root,
            "apps/helmfile.yaml.gotmpl": apps,
            "apps/values/api.yaml": _image("api", "11.0.0"),
            "apps/values/dev/api.yaml": "replicas: 1\n",  # the tag: values/api.yaml's
            "apps/values/prod/api.yaml": "{}\n",
            "env/dev.yaml": 'web:\n  image:\n    tag: "12.1.0"\n',
            "env/prod.yaml": 'web:\n  image:\n    tag: "12.0.0"\n',
        },
        envs,
        ("api", "web"),
        (("api", "prod"), ("web", "dev")),
    )


def helmfile_d_layout() -> Layout:
    """``helmfile.d/``: one state file per release, values files at ``../config``."""
    envs = ("dev", "prod")
    files = {}
    for n, svc in enumerate(("api", "web"), 1):
        files[f"helmfile.d/{n}0-{svc}.yaml.gotmpl"] = (
            _envs(envs)
            + "releases:\n"
            + _release(
                svc,
                [
                    f"../config/default/{svc}.yaml",
                    f"../config/{{{{ .Environment.Name }}}}/{svc}.yaml",
                ],
            )
        )
    files |= {
        "config/default/api.yaml": _image("api", "13.0.0"),
        "config/dev/api.yaml": 'image:\n  tag: "13.1.0"\n',
        "config/prod/api.yaml": 'image:\n  tag: "13.0.1"\n',
        "config/default/web.yaml": _image("web", "14.0.0"),
        "config/dev/web.yaml": "{}\n",
        "config/prod/web.yaml": "replicas: 2\n",  # the tag: default/web.yaml's
    }
    return Layout("helmfile.d", files, envs, ("api", "web"), (("api", "dev"), ("web", "dev")))


LAYOUTS = [
    env_values_layout(),
    per_release_layout(),
    set_from_env_values_layout(),
    set_from_env_var_layout(),
    same_key_layout(),
    globs_layout(),
    gotmpl_layout(),
    nested_layout(),
    helmfile_d_layout(),
]


def by_name(name: str) -> Layout:
    return next(layout for layout in LAYOUTS if layout.name == name)


# --------------------------------------------------------------------------- adopted repos


@dataclass(frozen=True)
class Adopted:
    """A layout's repository after ``glue init``, glue.yaml committed, and what helmfile
    renders there."""

    repo: Path
    init: Run
    truth: Rendered


@pytest.fixture(scope="module")
def adoptions() -> dict[tuple[str, str], Adopted | str]:
    """Adopted repositories by layout and helmfile version (or why init failed)."""
    return {}


Adopt = Callable[[Layout, Helmfile], Adopted]


@pytest.fixture
def adopt(
    adoptions: dict[tuple[str, str], Adopted | str],
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
) -> Adopt:
    """A fresh copy of ``layout``'s repository after ``glue init`` (run once per layout
    and helmfile; a test fails, saying why, when init did)."""

    def make(layout: Layout, hf: Helmfile) -> Adopted:
        key = (layout.name, hf.version)
        if key not in adoptions:
            repo = commit_all(layout.build(tmp_path_factory.mktemp("adopted") / "repo"))
            run = glue("-C", str(repo), "init", env=hf.glue_env())
            if run.code != 0 or not (repo / "glue.yaml").exists():
                adoptions[key] = f"glue init exited {run.code}: {run.err}"
            else:
                git(repo, "add", "glue.yaml")
                git(repo, "commit", "-q", "-m", "adopt glue")
                truth = rendered(repo, layout.envs, hf, sets=layout.sets)
                adoptions[key] = Adopted(repo, run, truth)
        adopted = adoptions[key]
        if isinstance(adopted, str):
            pytest.fail(adopted)
        copy = tmp_path / "repo"
        shutil.copytree(adopted.repo, copy, symlinks=True)
        return Adopted(copy, adopted.init, adopted.truth)

    return make


def status_tags(repo: Path, hf: Helmfile) -> dict[str, dict[str, str | None]]:
    run = glue("-C", str(repo), "status", "-o", "json", env=hf.glue_env())
    assert run.code == 0, run.err
    services = json.loads(run.out)["services"]
    return {s: {e: v.get("tag") for e, v in envs.items()} for s, envs in services.items()}


def commits_once(repo: Path, hf: Helmfile, command: str, *args: str) -> None:
    """``glue COMMAND ARGS`` succeeds with exactly one new commit and a clean tree."""
    head = git(repo, "rev-parse", "HEAD").strip()
    run = glue("-C", str(repo), command, *args, env=hf.glue_env())
    assert run.code == 0, f"glue {command} {' '.join(args)}: {run.err}"
    assert git(repo, "rev-parse", "HEAD~1").strip() == head, "not exactly one new commit"
    assert git(repo, "status", "--porcelain") == "", "changes left uncommitted"


def assert_only_tag_changed(
    before: Rendered, after: Rendered, env: str, release: str, tag: str
) -> None:
    """Between the renderings, ``release`` in ``env`` changed, only its tag, to ``tag``;
    every other release in every environment renders as before."""
    assert set(after) == set(before)
    for name in before:
        assert set(after[name]) == set(before[name]), f"releases of {name} changed"
        for rel in before[name]:
            old, new = flat(before[name][rel]), flat(after[name][rel])
            changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
            if (name, rel) == (env, release):
                assert changed == [TAG], f"{rel} in {name}: {changed} changed, not just {TAG}"
                assert str(new[TAG]) == tag
            else:
                assert not changed, (
                    f"bumping {release} in {env} changed {rel} in {name}: "
                    + ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed)
                )


# --------------------------------------------------------------------------- tests

LAYOUT_PARAMS = [pytest.param(layout, id=layout.name) for layout in LAYOUTS]


@pytest.mark.parametrize("layout", LAYOUT_PARAMS)
def test_init_check_and_status_read_what_helmfile_renders(
    layout: Layout, helmfile: Helmfile, adopt: Adopt
) -> None:
    adopted = adopt(layout, helmfile)
    repo = adopted.repo
    config = yaml.safe_load((repo / "glue.yaml").read_text())
    assert [e["name"] for e in config["environments"]] == list(layout.envs), adopted.init.err
    assert sorted(config["services"]) == sorted(layout.services), adopted.init.err

    check = glue("-C", str(repo), "check", env=helmfile.glue_env())
    assert check.code == 0, check.out + check.err
    assert check.out.startswith("ok:"), check.out
    assert git(repo, "status", "--porcelain") == ""

    for release in layout.unmanaged:  # said, not managed
        assert release in adopted.init.err, adopted.init.err
        assert any(
            release in line and "note" in line for line in (check.out + check.err).splitlines()
        ), check.out + check.err

    truth = adopted.truth
    tags = status_tags(repo, helmfile)
    assert set(tags) == set(layout.services)
    for env in layout.envs:
        assert {s: tags[s][env] for s in layout.services} == {
            s: tag_of(truth[env][s]) for s in layout.services
        }, env


@pytest.mark.parametrize("layout", LAYOUT_PARAMS)
def test_a_bump_changes_one_release_and_only_its_tag(
    layout: Layout, helmfile: Helmfile, adopt: Adopt
) -> None:
    adopted = adopt(layout, helmfile)
    repo, before = adopted.repo, adopted.truth
    for n, (service, env) in enumerate(layout.bumps):
        tag = f"20.{n}.{len(layout.envs)}"
        commits_once(repo, helmfile, "bump-tag", "--env", env, f"{service}={tag}")
        after = rendered(repo, layout.envs, helmfile, sets=layout.sets)
        assert_only_tag_changed(before, after, env, service, tag)
        assert status_tags(repo, helmfile)[service][env] == tag
        before = after
    for release in layout.unmanaged:
        err = refuses_bump(repo, helmfile.glue_env(), "--env", layout.envs[-1], f"{release}=4.5.6")
        assert release in err


def test_promote_changes_one_release_and_only_its_tag(helmfile: Helmfile, adopt: Adopt) -> None:
    """api in prod: its tag comes from the file every prod service shares; staging's goes
    into api's own prod file."""
    layout = by_name("per-release")
    adopted = adopt(layout, helmfile)
    repo, before = adopted.repo, adopted.truth
    staging = tag_of(before["staging"]["api"])
    assert tag_of(before["prod"]["api"]) != staging
    commits_once(repo, helmfile, "promote", "--to", "prod", "api")
    after = rendered(repo, layout.envs, helmfile, sets=False)
    assert_only_tag_changed(before, after, "prod", "api", staging)


@pytest.mark.parametrize("layout", [by_name("per-release"), by_name("set-from-env-values")])
def test_release_then_rollback_change_one_release_and_only_its_tag(
    layout: Layout, helmfile: Helmfile, adopt: Adopt
) -> None:
    """A hotfix release moves one release's tag in one environment; rolling it back
    renders everything as it was before."""
    adopted = adopt(layout, helmfile)
    repo, before = adopted.repo, adopted.truth
    service, env = layout.bumps[-1]
    commits_once(repo, helmfile, "release", service, "--tag", "30.0.1", "--to", env)
    released = rendered(repo, layout.envs, helmfile, sets=layout.sets)
    assert_only_tag_changed(before, released, env, service, "30.0.1")
    commits_once(repo, helmfile, "rollback", "--env", env)
    assert rendered(repo, layout.envs, helmfile, sets=layout.sets) == before


def test_a_bump_only_the_shared_file_could_take_is_refused(
    helmfile: Helmfile, adopt: Adopt
) -> None:
    """web's prod tag comes from config/prod/values.yaml, which every prod service merges;
    without web's own prod file nothing can take a new one without a leak."""
    repo = adopt(by_name("per-release"), helmfile).repo
    git(repo, "rm", "-q", "config/prod/web-values.yaml")
    git(repo, "commit", "-q", "-m", "web: no prod file of its own")
    err = refuses_bump(repo, helmfile.glue_env(), "--env", "prod", "web=2.0.0")
    [line] = [ln for ln in err.splitlines() if ln.startswith("glue: error: ")]
    assert "config/prod/web-values.yaml" in line, err


# --------------------------------------------------------------------------- safety


def test_glue_runs_no_hook_and_no_kubectl(tmp_path: Path, helmfile: Helmfile) -> None:
    """A helmfile with hooks on every event glue might trigger (global and a release's), a
    kubectl that records its calls first on PATH and a KUBECONFIG that does not exist:
    init, check, status and bump-tag work, and run neither. (helmfile's own build, list
    and write-values run global prepare hooks, 0.166 and 1.8 alike; list --skip-charts
    does not.)"""
    marker = tmp_path / "hook-ran"
    calls = tmp_path / "kubectl-calls"
    fake = tmp_path / "fake-bin"
    fake.mkdir()
    (fake / "kubectl").write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexit 1\n')
    (fake / "kubectl").chmod(0o755)
    touch = f"touch {marker}; kubectl version"
    layout = per_release_layout()
    envs = ("dev", "prod")
    files = {k: v for k, v in layout.files.items() if not k.startswith("config/staging/")}
    files["helmfile.yaml.gotmpl"] = per_release_helmfile(
        envs,
        hooks="hooks:\n" + _hook(["prepare", "presync", "preapply"], touch, "  "),
        release_hooks="    hooks:\n" + _hook(["prepare", "presync"], touch, "      "),
    )
    repo = commit_all(Layout("hooks", files, envs, layout.services, ()).build(tmp_path / "repo"))
    env = helmfile.glue_env(
        PATH=os.pathsep.join([str(fake), str(TESTBED_BIN), os.environ["PATH"]]),
        KUBECONFIG=str(tmp_path / "no-such-kubeconfig"),
    )

    init = glue("-C", str(repo), "init", env=env)
    assert init.code == 0, init.err
    git(repo, "add", "glue.yaml")
    git(repo, "commit", "-q", "-m", "adopt glue")
    check = glue("-C", str(repo), "check", env=env)
    assert check.code == 0, check.out + check.err
    status = glue("-C", str(repo), "status", env=env)
    assert status.code == 0, status.err
    bumped = glue("-C", str(repo), "bump-tag", "--env", "dev", "api=2.0.0", env=env)
    assert bumped.code == 0, bumped.err

    assert not marker.exists(), "a helmfile hook ran"
    assert not calls.exists(), f"kubectl was called: {calls.read_text()}"

    # The hooks are live: helmfile's own build runs them (and so kubectl).
    subprocess.run(
        [str(helmfile.path), "-e", "dev", "--chart", GROUND_TRUTH_CHART, "build"],
        cwd=repo,
        env={**os.environ, **env, "HOME": str(tmp_path / "home")},
        capture_output=True,
        check=False,
    )
    assert marker.exists()
    assert "version" in calls.read_text()
