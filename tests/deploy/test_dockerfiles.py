"""The Dockerfiles, read line by line (no container engine here): each starts FROM a known image,
runs as a non-root user, has the right default command, fetches nothing with ADD, and copies only
files that exist in its build context (and, for the repository root, that ``.dockerignore`` lets
through)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .artifacts import (
    DOCKER,
    EXAMPLE_NAMES,
    EXAMPLES,
    IMAGE_DOCKERFILES,
    ROOT,
    Dockerfile,
    Instruction,
    build_context,
    console_scripts,
    context_files,
    copy_sources,
    effective_cmd,
    exec_form,
    ignored,
    image_name,
    need,
    parse_dockerfile,
)

OWN = sorted(DOCKER.glob("*.Dockerfile"))
#: Default command of each image (CMD of the final stage).
EXPECTED_CMD = {
    "base.Dockerfile": ["tarscli", "supervisor"],
    "registry.Dockerfile": ["tarsregistry"],
}
#: Images the project's Dockerfiles may start FROM, besides its own and their own stages.
EXTERNAL_BASES = ("python:3.11-slim", "node:20-")
ROOT_USERS = ("root", "0")


def _all_dockerfiles() -> list[Path]:
    return OWN + [p for p in (EXAMPLES / n / "Dockerfile" for n in EXAMPLE_NAMES) if p.is_file()]


def _ids(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_own_dockerfiles() -> None:
    assert {p.name for p in OWN} == set(EXPECTED_CMD)


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_example_dockerfile_exists(name: str) -> None:
    path = EXAMPLES / name / "Dockerfile"
    need(path.is_file(), f"{_ids(path)} does not exist yet")


def _user(df: Dockerfile, path: Path) -> str:
    """The user the final stage runs as (following FROM into the project's own images)."""
    user = df.last("USER")
    if user is not None:
        return user.args.split(":")[0]
    base = image_name(df.base_of(df.final))
    assert base in IMAGE_DOCKERFILES, f"{path}: no USER, and FROM {base} is not a k8stars image"
    return _user(parse_dockerfile(IMAGE_DOCKERFILES[base]), IMAGE_DOCKERFILES[base])


@pytest.mark.parametrize("path", _all_dockerfiles(), ids=_ids)
def test_dockerfile_structure(path: Path) -> None:
    df = parse_dockerfile(path)
    first = [i for i in df.instructions if i.keyword != "ARG"]
    assert first and first[0].keyword == "FROM", f"{path}: the first instruction must be FROM"
    own_stages = df.stage_names()
    for stage in df.stages:
        base = df.base_of(stage)
        assert "$" not in base, f"{path}:{stage[0].line}: FROM {base}: an ARG without default"
        assert (
            base in own_stages
            or base.startswith(EXTERNAL_BASES)
            or image_name(base) in IMAGE_DOCKERFILES
        ), f"{path}:{stage[0].line}: FROM {base} is not a known image"
    user = _user(df, path)
    assert user not in ROOT_USERS, f"{path}: the image runs as root"
    assert df.last("ENTRYPOINT") is None, f"{path}: no ENTRYPOINT (manifests override CMD)"
    for ins in df.instructions:
        if ins.keyword == "ADD":
            assert not re.search(r"(?i)\b(https?|ftp|git)://|git@", ins.args), (
                f"{path}:{ins.line}: ADD of a remote URL (fetch in RUN with a checksum)"
            )
        if ins.keyword in ("CMD", "ENTRYPOINT"):
            assert exec_form(ins.args) is not None, f"{path}:{ins.line}: use the exec form"


@pytest.mark.parametrize("path", _all_dockerfiles(), ids=_ids)
def test_dockerfile_default_command_is_a_console_script(path: Path) -> None:
    df = parse_dockerfile(path)
    if path.name in EXPECTED_CMD:
        cmd = df.last("CMD")
        assert cmd is not None and exec_form(cmd.args) == EXPECTED_CMD[path.name]
        argv = EXPECTED_CMD[path.name]
    else:  # an example: FROM a k8stars image, runs `tarscli supervisor` (the manifests rely on it)
        name = f"k8stars/example-{path.parent.name}"
        argv = effective_cmd(name) or []
        assert argv == ["tarscli", "supervisor"], f"{path}: default command {argv}"
    assert argv[0] in console_scripts(), f"{path}: {argv[0]} is not a console script"


@pytest.mark.parametrize("path", _all_dockerfiles(), ids=_ids)
def test_copied_files_exist_and_are_in_the_build_context(path: Path) -> None:
    df = parse_dockerfile(path)
    context = build_context(path)
    for ins in df.instructions:
        if ins.keyword not in ("COPY", "ADD"):
            continue
        sources = copy_sources(ins)
        if sources is None:
            continue
        for source in sources:
            files = context_files(context, source)
            assert files, (f"{path}:{ins.line}: {source} does not exist in the build context "
                           f"{context.relative_to(ROOT) or '.'}")  # fmt: skip
            if context == ROOT:
                sent = [f for f in files if not ignored(f)]
                assert sent, f"{path}:{ins.line}: {source} is excluded by .dockerignore"
    if path.name == "Dockerfile":  # an example: its server files go to $TARS_PATH/bin
        text = "\n".join(i.args for i in df.final if i.keyword == "COPY")
        assert "_server_meta.yaml" in text and "start.sh" in text and "/tars/bin/" in text


def test_dockerignore_sends_the_package_and_not_local_state() -> None:
    for rel in ("pyproject.toml", "setup.py", "README.md", "src/k8stars/cli/main.py",
                "src/k8stars/tars/codec/_speedups.c", "src/k8stars/tars/idl/x.tars"):  # fmt: skip
        assert not ignored(rel), rel
    for rel in (".venv/bin/python", ".git/HEAD", "tests/conftest.py", "examples/hello/x.py",
                "src/k8stars/tars/codec/_speedups.abi3.so", "src/k8stars/__pycache__/a.pyc",
                "tests/interop/node/node_modules/x.js", ".hypothesis/x"):  # fmt: skip
        assert ignored(rel), rel


def _text(stage: list[Instruction]) -> str:
    return "\n".join(f"{i.keyword} {i.args}" for i in stage)


def test_base_image() -> None:
    df = parse_dockerfile(DOCKER / "base.Dockerfile")
    assert len(df.stages) >= 2, "multi-stage: the compiler stays in the builder"
    builder, final = df.stages[0], df.final
    assert df.base_of(builder) == df.base_of(final) == "python:3.11-slim"
    assert "gcc" in _text(builder) and "pip install ." in _text(builder)
    assert "_speedups" in _text(builder), "the build fails if the accelerator did not compile"
    assert not re.search(r"\b(gcc|build-essential|apt-get install)\b", _text(final))
    assert "--from=builder" in _text(final)
    env = df.env()
    assert env["TARS_PATH"] == "/tars"
    assert "/opt/k8stars/bin" in env["PATH"].split(":")
    assert "PYTHONDONTWRITEBYTECODE" not in "\n".join(i.args for i in df.instructions)
    assert "compileall" in _text(final), "bytecode precompiled: the user cannot write it"
    for sub in ("bin", "conf", "data", "log"):
        assert f"/tars/{sub}" in _text(final)
    assert "10001" in (df.last("USER") or df.final[0]).args
    assert re.search(r"chown -R 10001:10001 /tars\b", _text(final))


def test_registry_and_examples_build_on_the_base() -> None:
    paths = [DOCKER / "registry.Dockerfile", *(EXAMPLES / n / "Dockerfile" for n in EXAMPLE_NAMES)]
    for path in paths:
        if path.is_file():
            df = parse_dockerfile(path)
            assert image_name(df.base_of(df.final)) == "k8stars/base", path
