"""What the runner runs: the services (checked directories) and the runner's settings.

A service directory is what a service image puts in ``$TARS_PATH/bin``: ``_server_meta.yaml``
and ``start.sh`` at least, usually the program and its ``.tars`` files. :func:`load_services`
checks every directory before anything starts and raises :class:`UserError` (one line) for the
first problem.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..cli.meta import META_FILE, MetaError, load_meta, resolve_meta
from ..cli.settings import Settings

__all__ = [
    "START_FILE",
    "RunnerConfig",
    "ServiceSpec",
    "UserError",
    "examples_dir",
    "load_service",
    "load_services",
    "resolve_dir",
    "template_hash",
]

START_FILE = "start.sh"
#: Entries never copied into a pod (node_modules is linked, not copied).
SKIP_NAMES = frozenset({"__pycache__", ".git", ".mypy_cache", ".pytest_cache", ".ruff_cache",
                        "node_modules", ".venv"})


class UserError(Exception):
    """A user mistake or a refused request: one line for the user, exit status ``code``."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def examples_dir() -> Path | None:
    """``examples/`` of the checkout this package runs from (editable install), if any."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "examples"
        if candidate.is_dir() and (parent / "pyproject.toml").is_file():
            return candidate
    return None


def resolve_dir(arg: str) -> Path:
    """A service directory from ``EXAMPLE_OR_DIR``: a path, else ``examples/<arg>``."""
    path = Path(arg).expanduser()
    if path.exists():
        return path.resolve()
    if os.sep not in arg and "/" not in arg:
        for base in (Path.cwd() / "examples", examples_dir()):
            if base is not None and (base / arg).is_dir():
                return (base / arg).resolve()
    known = ""
    ex = examples_dir()
    if ex is not None:
        names = sorted(p.name for p in ex.iterdir() if (p / META_FILE).is_file())
        if names:
            known = f" (examples: {', '.join(names)})"
    raise UserError(f"{arg}: no such directory, nor an example{known}")


@dataclass(frozen=True)
class ServiceSpec:
    """A checked service directory."""

    dir: str
    application: str
    server: str
    #: (servant name, protocol) per adapter, in meta order.
    adapters: tuple[tuple[str, str], ...]
    idl_files: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def name(self) -> str:
        return f"{self.application}.{self.server}"

    @property
    def servants(self) -> tuple[str, ...]:
        return tuple(s for s, _ in self.adapters)

    @property
    def short(self) -> str:
        """Pod name prefix: the server name in lower case, DNS-label safe."""
        text = "".join(c if c.isalnum() else "-" for c in self.server.lower()).strip("-")
        return text[:40] or "server"

    def matches(self, query: str) -> bool:
        """Whether ``query`` names this service (App.Server, Server, server, or its dir)."""
        q = query.strip().rstrip("/")
        if q in (self.name, self.server) or q.lower() in (self.name.lower(), self.short):
            return True
        if q == os.path.basename(self.dir):
            return True
        try:
            return Path(q).resolve() == Path(self.dir)
        except OSError:
            return False

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["name"] = self.name
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ServiceSpec:
        return cls(dir=data["dir"], application=data["application"], server=data["server"],
                   adapters=tuple((str(a[0]), str(a[1])) for a in data["adapters"]),
                   idl_files=tuple(data.get("idl_files", ())),
                   warnings=tuple(data.get("warnings", ())))


def load_service(directory: Path) -> ServiceSpec:
    """Check one service directory; :class:`UserError` names the directory and the problem."""
    shown = _shown(directory)
    if not directory.is_dir():
        raise UserError(f"{shown}: not a directory")
    missing = [n for n in (META_FILE, START_FILE) if not (directory / n).is_file()]
    if missing:
        raise UserError(f"{shown}: not a service directory: no {' and no '.join(missing)} "
                        f"(a service has {META_FILE} and {START_FILE})")
    try:
        meta = resolve_meta(load_meta(directory / META_FILE), Settings({}))
    except MetaError as exc:
        raise UserError(_relative(exc.message)) from None
    if (directory / "package.json").is_file() and not (directory / "node_modules").is_dir():
        raise UserError(f"{shown}: a Node.js service without node_modules: run "
                        f"`npm ci` in {shown} first")
    adapters = tuple((f"{meta.application}.{meta.server}.{a.object}", a.protocol)
                     for a in meta.adapters)
    idl = tuple(sorted(str(p) for p in directory.glob("*.tars")))
    warnings = tuple(_relative(w) for w in meta.warnings)
    if not adapters:
        warnings += (f"{shown}: no adapters in {META_FILE}: the service serves nothing",)
    return ServiceSpec(dir=str(directory), application=meta.application, server=meta.server,
                       adapters=adapters, idl_files=idl, warnings=warnings)


def load_services(args: list[str]) -> list[ServiceSpec]:
    """Check every ``EXAMPLE_OR_DIR``; the same service twice is refused."""
    if not args:
        raise UserError("no service given: k8stars up EXAMPLE_OR_DIR... "
                        "(e.g. k8stars up examples/simple examples/hello)")
    specs: list[ServiceSpec] = []
    for arg in args:
        spec = load_service(resolve_dir(arg))
        for other in specs:
            if other.name == spec.name:
                raise UserError(f"{arg}: {spec.name} is given twice "
                                f"({_shown(Path(other.dir))} and {_shown(Path(spec.dir))})")
        specs.append(spec)
    return specs


def template_hash(directory: str) -> str:
    """A short hash of the service files (like a ReplicaSet's pod-template-hash): it changes
    when the code changes, so a ``restart`` after an edit shows new names."""
    digest = hashlib.sha1(usedforsecurity=False)
    root = Path(directory)
    for path in sorted(_files(root)):
        rel = path.relative_to(root).as_posix()
        digest.update(rel.encode() + b"\0")
        try:
            st = path.stat()
            digest.update(f"{st.st_size}:{st.st_mtime_ns}\0".encode())
        except OSError:
            continue
    return digest.hexdigest()[:6]


def _files(root: Path) -> list[Path]:
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIP_NAMES]
        out.extend(Path(dirpath) / f for f in filenames)
    return out


def copy_service(source: str, target: Path) -> None:
    """Copy a service directory to a pod's ``bin/`` (node_modules is linked, not copied)."""
    src = Path(source)
    shutil.copytree(src, target, symlinks=True,
                    ignore=shutil.ignore_patterns(*SKIP_NAMES), dirs_exist_ok=True)
    if (src / "node_modules").is_dir():
        os.symlink(src / "node_modules", target / "node_modules")
    start = target / START_FILE
    start.chmod(start.stat().st_mode | 0o111)


def _shown(path: Path) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return rel if not rel.startswith("../..") else str(path)


def _relative(message: str) -> str:
    cwd = os.getcwd() + os.sep
    return message.replace(cwd, "")


@dataclass
class RunnerConfig:
    """The runner's settings (command-line options of ``k8stars up``)."""

    state_dir: str
    host: str = "127.0.0.1"
    query_port: int = 17890
    registry_port: int = 17891
    admin_port: int = 17897
    metrics_port: int = 9100
    replicas: int = 1
    #: Pod variables (Go durations, as tarscli reads them).
    check_interval: str = "1s"
    report_interval: str = "5s"
    prestop_wait: str = "3s"
    ep_uptime: str = "2s"
    #: Registry expiry (no heartbeat this long: inactive / deleted).
    inactive_after: str = "15s"
    delete_after: str = "2m"
    #: Kubelet settings (seconds).
    grace: float = 30.0
    probe_period: float = 1.0
    probe_timeout: float = 5.0
    failure_threshold: int = 3
    ready_timeout: float = 90.0
    #: POD_IP 127.0.0.<ip_first>..<ip_last>; ports_per_pod random ports each from port_base.
    ip_first: int = 11
    ip_last: int = 250
    port_base: int = 13000
    ports_per_pod: int = 20

    @property
    def locator(self) -> str:
        return f"tars.tarsregistry.QueryObj@tcp -h {self.host} -p {self.query_port}"

    def registry_ports(self) -> list[tuple[str, int]]:
        return [(name, port) for name, port in (
            ("--query-port", self.query_port), ("--registry-port", self.registry_port),
            ("--admin-port", self.admin_port), ("--metrics-port", self.metrics_port),
        ) if port]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunnerConfig:
        return cls(**data)
