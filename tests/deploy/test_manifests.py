"""Every manifest validates against the Kubernetes schemas (kubernetes-validate, strict: unknown
fields are errors) of Kubernetes 1.25 and of the newest version the package knows, and every
kustomization renders with ``kubectl kustomize``."""

from __future__ import annotations

import functools
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from .artifacts import (
    K8S,
    KUSTOMIZATIONS,
    ROOT,
    doc_id,
    load_docs,
    need,
    raw_manifest_files,
    render,
)

#: The oldest Kubernetes the manifests support.
OLDEST = "1.25.0"


@functools.cache
def _validator() -> ModuleType | None:
    try:
        import kubernetes_validate  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        return None
    module: ModuleType = kubernetes_validate
    return module


def _versions() -> list[str]:
    kv = _validator()
    if kv is None:
        return [OLDEST, "newest"]
    from kubernetes_validate.utils import latest_version  # type: ignore[import-untyped,unused-ignore]

    newest = str(latest_version())
    return [OLDEST] if newest == OLDEST else [OLDEST, newest]


def _validate(doc: dict[str, Any], version: str, where: str) -> None:
    kv = _validator()
    need(kv is not None, "kubernetes-validate is not installed (pip install kubernetes-validate)")
    assert kv is not None
    try:
        kv.validate(doc, version, strict=True)
    except kv.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path)
        pytest.fail(f"{where}: {doc_id(doc)} is invalid for Kubernetes {version}: "
                    f"{path}: {exc.message}")  # fmt: skip
    except kv.SchemaNotFoundError as exc:
        pytest.fail(f"{where}: {doc_id(doc)}: {exc.message}")


RAW = raw_manifest_files()


def test_there_are_manifests() -> None:
    assert len(RAW) >= 10, RAW
    for name in KUSTOMIZATIONS:
        assert (K8S / name / "kustomization.yaml").is_file(), name


@pytest.mark.parametrize("version", _versions())
@pytest.mark.parametrize("path", RAW, ids=lambda p: str(Path(p).relative_to(K8S)))
def test_raw_manifest_validates(path: Path, version: str) -> None:
    docs = load_docs(path.read_text())
    assert docs, f"{path}: no document"
    for doc in docs:
        _validate(doc, version, str(path.relative_to(ROOT)))


@pytest.mark.parametrize("version", _versions())
@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_rendered_kustomization_validates(kustomization: str, version: str) -> None:
    docs = render(kustomization)
    assert docs, f"{kustomization} renders nothing"
    for doc in docs:
        _validate(doc, version, f"kubectl kustomize deploy/k8s/{kustomization}")


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_rendered_objects_are_unique_and_namespaced(kustomization: str) -> None:
    docs = render(kustomization)
    ids = [doc_id(d) for d in docs]
    assert len(ids) == len(set(ids)), ids
    for doc in docs:
        if doc["kind"] == "Namespace":
            assert doc["metadata"]["name"] == "tars-system"
        else:
            assert doc["metadata"].get("namespace") == "tars-system", doc_id(doc)
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "k8stars", doc_id(doc)


def test_every_raw_manifest_is_used() -> None:
    """Each manifest file under deploy/k8s is a resource of some kustomization, or a
    stand-alone example (the Prometheus snippet)."""
    used: set[Path] = set()
    for path in K8S.rglob("kustomization.yaml"):
        for item in load_docs(path.read_text())[0].get("resources", []):
            used.add((path.parent / item).resolve())
    standalone = {K8S / "prometheus" / "prometheus-scrape-config.yaml"}
    for path in RAW:
        assert path.resolve() in used or path in standalone, f"{path} is in no kustomization"


def test_external_db_removes_the_bundled_database() -> None:
    docs = render("overlays/external-db")
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert not any("mariadb" in name or name.startswith("tars-db-init") for _, name in kinds)
    (secret,) = [d for d in docs if d["kind"] == "Secret"]
    assert set(secret["data"]) >= {"DB_HOST", "DB_PORT", "DB_USER", "DB_PASS"}
    assert "DB_ROOT_PASS" not in secret["data"]
    (registry,) = [d for d in docs if d["kind"] == "Deployment"]
    refs = {
        e["valueFrom"]["secretKeyRef"]["name"]
        for c in registry["spec"]["template"]["spec"]["containers"]
        for e in c.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert refs == {secret["metadata"]["name"]}


def test_base_secret_feeds_registry_database_and_init_job() -> None:
    docs = render("base")
    (secret,) = [d for d in docs if d["kind"] == "Secret"]
    keys = set(secret["data"])
    assert keys == {"DB_HOST", "DB_PORT", "DB_USER", "DB_PASS", "DB_ROOT_PASS"}
    for doc in docs:
        if doc["kind"] not in ("Deployment", "StatefulSet", "Job"):
            continue
        for c in doc["spec"]["template"]["spec"]["containers"]:
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref is None:
                    continue
                assert ref["name"] == secret["metadata"]["name"], doc_id(doc)
                assert ref["key"] in keys or ref.get("optional"), (doc_id(doc), ref)
    services = {d["metadata"]["name"] for d in docs if d["kind"] == "Service"}
    import base64

    host = base64.b64decode(secret["data"]["DB_HOST"]).decode()
    assert host in services, host
    (sts,) = [d for d in docs if d["kind"] == "StatefulSet"]
    assert sts["spec"]["serviceName"] == host
    assert sts["spec"]["volumeClaimTemplates"], "MariaDB keeps its data on a PVC"
