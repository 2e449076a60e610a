"""docs/deploy.md: the tarscli variable table is the one generated from settings.VARIABLES,
every variable set in the manifests is documented, and every path the doc names exists."""

from __future__ import annotations

import re

from k8stars.cli.settings import VARIABLES

from . import envtable
from .artifacts import DOC, K8S, KUSTOMIZATIONS, ROOT, pod_templates, render
from .test_consistency import REGISTRY_VARIABLES


def test_variable_table_is_generated_from_settings() -> None:
    text = DOC.read_text()
    table = envtable.current_table(text)
    assert table is not None, "docs/deploy.md lost the table markers"
    assert table == envtable.render_table(), (
        "docs/deploy.md is out of date: run python -m tests.deploy.envtable"
    )
    for var in VARIABLES:
        assert re.search(rf"^\| `{var.name}` \|", table, re.M), var.name


def test_every_variable_in_the_manifests_is_documented() -> None:
    text = DOC.read_text()
    names: set[str] = set()
    for kustomization in KUSTOMIZATIONS:
        for template in pod_templates(render(kustomization)):
            if template.labels.get("app.kubernetes.io/component") == "database":
                continue  # MariaDB's own variables and the init Job's
            for container in template.containers:
                names |= {e["name"] for e in container.get("env", [])}
    names |= REGISTRY_VARIABLES
    for name in sorted(names):
        assert f"`{name}`" in text, f"docs/deploy.md does not mention {name}"


def test_paths_named_in_the_doc_exist() -> None:
    text = DOC.read_text()
    paths = set(re.findall(r"`((?:deploy|docs|src|tests|examples)/[^`\s<>*]+)`", text))
    assert len(paths) >= 10, paths
    for path in sorted(paths):
        assert (ROOT / path).exists(), f"docs/deploy.md names {path}, which does not exist"
    for kustomization in KUSTOMIZATIONS:
        assert f"deploy/k8s/{kustomization}" in text
    assert (K8S / "prometheus" / "prometheus-scrape-config.yaml").is_file()
