"""Consistency between the artifacts: manifests, images, tarscli's settings, the registry's
options and the examples' ``_server_meta.yaml``.

* every preStop drain ends before the grace period does;
* probe, hook and container commands exist in the image (console scripts of pyproject.toml,
  tarscli subcommands, the Dockerfiles' CMD);
* Service ports reach container ports, the registry's ports are the ones it listens on, the
  examples' containerPorts are their fixed adapter ports plus the metrics port: a containerPort
  named ``metrics`` exactly when ``TARS_METRICS_PORT`` is set, and equal to it;
* every env variable set on a tarscli container is one tarscli reads, with a valid value, and the
  pod identity comes from the downward API; the registry gets only variables it reads.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from k8stars.cli.meta import DEFAULT_LOCATOR
from k8stars.cli.settings import VARIABLES, Settings, parse_duration

from .artifacts import (
    BASE_IMAGE_PROGRAMS,
    EXAMPLE_NAMES,
    EXAMPLES,
    K8S,
    KUSTOMIZATIONS,
    ROOT,
    PodTemplate,
    console_scripts,
    effective_cmd,
    env_field_refs,
    env_literals,
    exec_commands,
    image_name,
    load_docs,
    module_source,
    need,
    parse_dockerfile,
    pod_templates,
    render,
)

#: Variables a tarscli container may set: the settings table, plus the registry's shared token
#: (read by ``k8stars.cli.registry_client``, documented in docs/deploy.md).
TARSCLI_VARIABLES = frozenset(v.name for v in VARIABLES) | {"TARS_REGISTRY_TOKEN"}
CLI_SOURCES = ROOT / "src" / "k8stars" / "cli"
#: The downward-API wiring every tarscli container needs (env -> fieldPath).
DOWNWARD_API = {
    "POD_IP": "status.podIP",
    "POD_NAME": "metadata.name",
    "POD_UID": "metadata.uid",
    "TARS_NAMESPACE": "metadata.namespace",
}
#: Environment variables the registry reads (k8stars.registry.settings; docs/deploy.md).
REGISTRY_VARIABLES = frozenset(
    {"POD_IP", "DB_DSN", "DB_HOST", "DB_PORT", "DB_USER", "DB_PASS", "TARS_REGISTRY_TOKEN"}
)
REGISTRY_SETTINGS = ROOT / "src" / "k8stars" / "registry" / "settings.py"
REGISTRY_MAIN = ROOT / "src" / "k8stars" / "registry" / "main.py"
PRESTOP = ROOT / "src" / "k8stars" / "cli" / "prestop.py"


def _all_docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for name in KUSTOMIZATIONS:
        docs += render(name)
    return docs


def _templates() -> list[PodTemplate]:
    """Every pod template of every rendered kustomization (deduplicated by owner)."""
    seen: dict[str, PodTemplate] = {}
    for template in pod_templates(_all_docs()):
        seen.setdefault(template.name + repr(template.spec), template)
    return list(seen.values())


def _command(container: dict[str, Any]) -> list[str] | None:
    """What the container runs: ``command`` + ``args``, else the image's CMD (None when the
    image's Dockerfile is not in the repository)."""
    if "command" in container:
        return list(container["command"]) + list(container.get("args", []))
    if "args" in container:  # the project's images have no ENTRYPOINT: args replace CMD
        return list(container["args"])
    return effective_cmd(container["image"])


def _is_project_image(container: dict[str, Any]) -> bool:
    return image_name(container["image"]).startswith("k8stars/")


def _runs(container: dict[str, Any], program: str) -> bool:
    argv = _command(container)
    if argv is None and image_name(container["image"]).startswith("k8stars/example-"):
        # examples/<name>/Dockerfile not there yet: its image is FROM k8stars/base, whose
        # default command is `tarscli supervisor` (checked when the Dockerfile exists)
        return program == "tarscli"
    return argv is not None and bool(argv) and argv[0] == program


def _tarscli_containers() -> list[tuple[PodTemplate, dict[str, Any]]]:
    out = []
    for template in _templates():
        for container in template.containers:
            if _is_project_image(container) and _runs(container, "tarscli"):
                out.append((template, container))
    return out


def _registry() -> tuple[PodTemplate, dict[str, Any]]:
    found = [
        (t, c)
        for t in _templates()
        for c in t.containers
        if _is_project_image(c) and _runs(c, "tarsregistry")
    ]
    assert found, "no tarsregistry container"
    return found[0]


def _constant(path: Path, name: str) -> float:
    """A module-level number of a source file (read with ``ast``, not imported)."""
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign):
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id == name:
            assert isinstance(value, ast.Constant) and isinstance(value.value, int | float)
            return float(value.value)
    raise AssertionError(f"{name} not found in {path}")


def _prestop_overhead_s() -> float:
    """What ``tarscli prestop`` spends besides TARS_PRESTOP_WAITTIME: the service's notify and
    the deregistration retries (then SIGTERM still needs a moment)."""
    return _constant(PRESTOP, "NOTIFY_TIMEOUT") + _constant(PRESTOP, "DEREGISTER_PATIENCE")


def _registry_settings() -> Any:
    from k8stars.registry.settings import load_settings

    _, container = _registry()
    env = {"POD_IP": "10.1.2.3", "DB_HOST": "db.example", "DB_USER": "tars", "DB_PASS": "x"}
    argv = _command(container)
    assert argv is not None
    return load_settings(argv[1:], env)


# -- drain and grace periods ---------------------------------------------------------------


def test_there_are_tarscli_pods() -> None:
    names = {image_name(c["image"]) for _, c in _tarscli_containers()}
    assert names == {f"k8stars/example-{n}" for n in EXAMPLE_NAMES}


def test_grace_period_exceeds_every_prestop_drain() -> None:
    checked = 0
    for template in _templates():
        for container in template.containers:
            hook = container.get("lifecycle", {}).get("preStop", {}).get("exec", {})
            if not hook:
                continue
            where = f"{template.name} container {container['name']}"
            grace = template.spec.get("terminationGracePeriodSeconds")
            assert grace is not None, f"{where}: preStop without an explicit grace period"
            argv = hook["command"]
            if argv == ["tarscli", "prestop"]:
                literal = env_literals(container)
                assert "TARS_PRESTOP_WAITTIME" in literal, (
                    f"{where}: set TARS_PRESTOP_WAITTIME explicitly next to the grace period"
                )
                drain = parse_duration(literal["TARS_PRESTOP_WAITTIME"]) + _prestop_overhead_s()
            elif argv[0] == "sleep":
                drain = parse_duration(argv[1] if not argv[1].isdigit() else argv[1] + "s")
                if _runs(container, "tarsregistry"):
                    # then SIGTERM: calls in flight get GRACEFUL_STOP_S
                    drain += _constant(REGISTRY_MAIN, "GRACEFUL_STOP_S")
            else:
                raise AssertionError(f"{where}: unknown preStop {argv}")
            assert grace > drain, f"{where}: grace {grace}s <= drain {drain:g}s"
            checked += 1
    assert checked >= 1 + len(EXAMPLE_NAMES)


def test_tarscli_pods_are_wired_as_the_original() -> None:
    for template, container in _tarscli_containers():
        where = f"{template.name}"
        probe = container["readinessProbe"]
        assert probe["exec"]["command"] == ["tarscli", "hzcheck"], where
        timing = {k: probe[k] for k in probe if k != "exec"}
        assert timing == {
            "initialDelaySeconds": 5,
            "periodSeconds": 10,
            "timeoutSeconds": 5,
            "failureThreshold": 10,
        }, where
        assert container["lifecycle"]["preStop"]["exec"]["command"] == ["tarscli", "prestop"]
        assert "livenessProbe" not in container, f"{where}: the supervisor restarts the service"
        owner = template.owner
        if owner["kind"] == "Deployment":
            rolling = owner["spec"]["strategy"]["rollingUpdate"]
            assert rolling == {"maxSurge": 1, "maxUnavailable": 0}, where


# -- commands exist in the images ----------------------------------------------------------


def _check_program(argv: list[str], where: str) -> None:
    scripts = console_scripts()
    program = argv[0]
    if program in BASE_IMAGE_PROGRAMS:
        return
    assert program in scripts, (
        f"{where}: {program!r} is not a console script of pyproject.toml ({sorted(scripts)})"
    )
    module, _, function = scripts[program].partition(":")
    source = module_source(module)
    assert source is not None, f"{where}: {scripts[program]}: no module {module}"
    defined = {
        n.name for n in ast.parse(source.read_text()).body
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
    }  # fmt: skip
    assert function in defined, f"{where}: {scripts[program]}: no function {function}"
    if program == "tarscli":
        from k8stars.cli.main import COMMANDS

        assert len(argv) >= 2 and argv[1] in COMMANDS, f"{where}: {argv}: unknown subcommand"


def test_probe_hook_and_container_commands_exist_in_the_image() -> None:
    checked = 0
    missing: list[str] = []
    for template in _templates():
        for container in template.containers:
            if not _is_project_image(container):
                continue
            where = f"{template.name} container {container['name']}"
            argv = _command(container)
            if argv is None:
                missing.append(container["image"])
            else:
                assert argv, f"{where}: no command, and {container['image']} has no CMD"
                _check_program(argv, f"{where} command")
            for kind, command in exec_commands(container):
                _check_program(command, f"{where} {kind}")
                checked += 1
    assert checked >= 2 * len(EXAMPLE_NAMES) + 1
    need(not missing, f"no Dockerfile in the repository for {sorted(missing)}")


def test_registry_command_matches_its_image() -> None:
    _, container = _registry()
    cmd = effective_cmd(container["image"])
    assert cmd is not None
    assert container["command"][0] == cmd[0] == "tarsregistry"


# -- ports ---------------------------------------------------------------------------------


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_service_ports_reach_container_ports(kustomization: str) -> None:
    docs = render(kustomization)
    templates = list(pod_templates(docs))
    for service in (d for d in docs if d["kind"] == "Service"):
        name = service["metadata"]["name"]
        selected = [t for t in templates if _matches(service["spec"]["selector"], t.labels)]
        assert selected, f"Service {name} selects no pod"
        for template in selected:
            ports = [p for c in template.containers for p in c.get("ports", [])]
            for port in service["spec"]["ports"]:
                target = port.get("targetPort", port["port"])
                key = "name" if isinstance(target, str) else "containerPort"
                assert any(p.get(key) == target for p in ports), (
                    f"Service {name} port {port['port']} -> {target}: not a container port "
                    f"of {template.name}"
                )
        if service["spec"].get("clusterIP") == "None":
            continue
        for workload in selected:
            assert workload.owner["kind"] != "Job", name


def test_registry_ports_are_what_it_listens_on() -> None:
    settings = _registry_settings()
    template, container = _registry()
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {
        "query": settings.query_port,
        "registry": settings.registry_port,
        "metrics": settings.metrics_port,
    }
    assert ports == {"query": 17890, "registry": 17891, "metrics": 9100}
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    annotations = template.owner["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(settings.metrics_port),
        "prometheus.io/path": "/metrics",
    }
    df = parse_dockerfile(ROOT / "deploy" / "docker" / "registry.Dockerfile")
    expose = df.last("EXPOSE")
    assert expose is not None
    exposed = {int(p.split("/")[0]) for p in expose.args.split()}
    assert exposed == {*ports.values(), settings.admin_port}
    assert settings.admin_host == "127.0.0.1", "AdminObj must not be reachable from outside"


def test_registry_service_is_the_default_locator() -> None:
    docs = render("base")
    (service,) = [
        d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "tars-registry"
    ]
    ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
    assert ports == {"query": 17890, "registry": 17891, "metrics": 9100}
    namespace = service["metadata"]["namespace"]
    locator = DEFAULT_LOCATOR.replace("${namespace}", namespace)
    host = f"{service['metadata']['name']}.{namespace}.svc.cluster.local"
    assert locator == f"tars.tarsregistry.QueryObj@tcp -h {host} -p {ports['query']}"
    default_ns = next(v.default for v in VARIABLES if v.name == "TARS_NAMESPACE")
    assert default_ns == namespace


def test_registry_deployment_is_highly_available() -> None:
    docs = render("base")
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    spec = deployment["spec"]
    assert spec["replicas"] >= 2
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    (pdb,) = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == spec["selector"]["matchLabels"]
    container = spec["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"] and container["resources"]["limits"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert spec["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_registry_expiry_allows_missed_heartbeats() -> None:
    """An instance that heartbeats every TARS_REPORT_INTERVAL is never expired by the
    registry's --inactive-after, even after a lost heartbeat."""
    settings = _registry_settings()
    for template, container in _tarscli_containers():
        interval = Settings(env_literals(container)).report_interval
        assert settings.inactive_after_s > 2 * interval, template.name


def test_prometheus_sd_points_at_the_registry() -> None:
    (config_map,) = load_docs((K8S / "prometheus" / "prometheus-scrape-config.yaml").read_text())
    (text,) = config_map["data"].values()
    jobs = {j["job_name"]: j for j in yaml.safe_load(text)["scrape_configs"]}
    (sd,) = jobs["tars-services"]["http_sd_configs"]
    settings = _registry_settings()
    assert sd["url"] == f"http://tars-registry.tars-system:{settings.metrics_port}/sd"
    names = jobs["tars-registry"]["kubernetes_sd_configs"][0]["namespaces"]["names"]
    assert names == ["tars-system"]


# -- examples: containerPorts are the fixed adapter ports and the metrics port -------------


def _fixed_ports(meta_file: Path) -> set[int]:
    from k8stars.cli.meta import load_meta

    meta = load_meta(str(meta_file))
    ports = set()
    for adapter in meta.adapters:
        m = re.search(r"(?:^|\s)-p\s+(\S+)", adapter.endpoint)
        if m and m[1].isdigit():
            ports.add(int(m[1]))
    return ports


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_example_container_ports_are_its_fixed_adapter_ports(name: str) -> None:
    meta_file = EXAMPLES / name / "_server_meta.yaml"
    need(meta_file.is_file(), f"{meta_file.relative_to(ROOT)} does not exist yet")
    (template,) = [
        t for t in _templates()
        if any(image_name(c["image"]) == f"k8stars/example-{name}" for c in t.containers)
    ]  # fmt: skip
    declared = {p["containerPort"] for c in template.containers for p in c.get("ports", [])
                if p.get("name") != "metrics"}
    fixed = _fixed_ports(meta_file)
    assert declared == fixed, (
        f"{template.name}: containerPorts {sorted(declared)} != fixed adapter ports "
        f"{sorted(fixed)} of {meta_file.relative_to(ROOT)} (${{random_port}} adapters get none)"
    )


def test_metrics_container_port_is_tars_metrics_port() -> None:
    """A pod that sets TARS_METRICS_PORT declares it as containerPort ``metrics`` (and one that
    declares ``metrics`` sets it): what the registry's /sd hands to Prometheus is open."""
    with_metrics = 0
    for template, container in _tarscli_containers():
        value = Settings(env_literals(container)).metrics_port
        ports = [p for p in container.get("ports", []) if p.get("name") == "metrics"]
        if value is None:
            assert not ports, f"{template.name}: containerPort metrics without TARS_METRICS_PORT"
            continue
        with_metrics += 1
        assert [p["containerPort"] for p in ports] == [value], (
            f"{template.name}: TARS_METRICS_PORT={value} needs containerPort {value} named "
            f"metrics, not {ports}"
        )
        assert ports[0].get("protocol", "TCP") == "TCP", template.name
    assert with_metrics >= 1  # examples/hello


# -- environment ---------------------------------------------------------------------------


def test_tarscli_containers_set_only_variables_tarscli_reads() -> None:
    sources = "".join(p.read_text() for p in CLI_SOURCES.glob("*.py"))
    for name in TARSCLI_VARIABLES - {v.name for v in VARIABLES}:
        assert f'"{name}"' in sources, f"tarscli does not read {name}"
    for template, container in _tarscli_containers():
        names = [e["name"] for e in container.get("env", [])]
        assert len(names) == len(set(names)), f"{template.name}: duplicate env {names}"
        unknown = set(names) - TARSCLI_VARIABLES
        assert not unknown, f"{template.name}: tarscli reads no {sorted(unknown)}"
        assert env_field_refs(container).items() >= DOWNWARD_API.items(), template.name
        literals = env_literals(container)
        settings = Settings(literals)
        for command in ("supervisor", "genconf", "hzcheck", "prestop"):
            settings.check(command)  # a bad literal value raises SettingsError
        assert "TARS_LOCATOR" not in names or literals.get("TARS_LOCATOR"), template.name


def test_registry_container_sets_only_variables_it_reads() -> None:
    source = REGISTRY_SETTINGS.read_text()
    for name in REGISTRY_VARIABLES:
        assert f'"{name}"' in source, f"{REGISTRY_SETTINGS} does not read {name}"
    _, container = _registry()
    names = {e["name"] for e in container.get("env", [])}
    assert names <= REGISTRY_VARIABLES, names - REGISTRY_VARIABLES
    assert env_field_refs(container) == {"POD_IP": "status.podIP"}


def test_registry_arguments_are_valid() -> None:
    settings = _registry_settings()
    assert settings.host == settings.advertise_host == "10.1.2.3"  # from POD_IP
    assert settings.db_url.startswith("mysql+pymysql://tars:")
