"""``$TARS_PATH/bin/_server_meta.yaml`` (what the image says about its server) and
``$TARS_PATH/data/server_info.yaml`` (what ``genconf`` resolved, read by the other subcommands).

``_server_meta.yaml`` keys and defaults are those of the Go original (K8STARS)::

    application: App                # required here or in TARS_APPLICATION
    server: Server                  # required here or in TARS_SERVER
    set_id: ""                      # name.area.group, or empty
    locator: tars.tarsregistry.QueryObj@tcp -h tars-registry.${namespace}.svc.cluster.local -p 17890
    sample_rate: 100000
    max_sample_count: 50
    statObj: tars.tarsstat.StatObj
    propertyObj: tars.tarsproperty.PropertyObj
    asyncThreadNum: 3
    sync_invoke_timeout: 3000
    async_invoke_timeout: 5000
    report_interval: 6000
    refresh_endpoint_interval: 60000
    local: tcp -h 127.0.0.1 -p ${random_port} -t 5000     # the AdminObj endpoint
    logSize: 100M
    logNum: 5
    configObj: tars.tarsconfig.ConfigObj
    notifyObj: tars.tarsnotify.NotifyObj
    logObj: tars.tarslog.LogObj
    logLevel: DEBUG
    deactivating_timeout: 3000
    adapters:                       # servant name = application.server.object
      - object: HelloObj            # required
        endpoint: tcp -h ${local_ip} -p ${random_port} -t 30000
        maxconns: 200000
        protocol: tars
        queuecap: 10000
        queuetimeout: 60000
        threads: 5

``version`` (found in the original's own examples) is accepted and ignored. Unknown keys are
reported as warnings (``ServerMeta.warnings``), everything else that is wrong raises
:class:`MetaError` naming the file and line. Text values are taken exactly as written (YAML
1.1 would read ``logLevel: off`` as a boolean; here it stays ``off``); a null value (``key:``)
keeps the default.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .settings import CliError, Settings

__all__ = [
    "ADAPTER_KEYS",
    "DEFAULT_ADAPTER_ENDPOINT",
    "DEFAULT_LOCAL",
    "DEFAULT_LOCATOR",
    "INFO_FILE",
    "META_FILE",
    "META_KEYS",
    "AdapterInfo",
    "AdapterMeta",
    "MetaError",
    "ServerInfo",
    "ServerMeta",
    "info_path",
    "load_meta",
    "load_server_info",
    "meta_path",
    "parse_meta",
    "resolve_meta",
    "write_atomic",
    "write_server_info",
]

META_FILE = "_server_meta.yaml"
INFO_FILE = "server_info.yaml"
DEFAULT_LOCATOR = (
    "tars.tarsregistry.QueryObj@tcp -h tars-registry.${namespace}.svc.cluster.local -p 17890"
)
DEFAULT_LOCAL = "tcp -h 127.0.0.1 -p ${random_port} -t 5000"
DEFAULT_ADAPTER_ENDPOINT = "tcp -h ${local_ip} -p ${random_port} -t 30000"

_NULL_TAG = "tag:yaml.org,2002:null"
_BAD_NAME_CHARS = frozenset(" \t\r\n.<>/\\=#$&")
_SET_PART = re.compile(r"[A-Za-z0-9_-]+")
_IGNORED_KEYS = frozenset({"version"})


class MetaError(CliError):
    """A missing or malformed ``_server_meta.yaml`` / ``server_info.yaml``."""


def meta_path(tars_path: str) -> str:
    """``$TARS_PATH/bin/_server_meta.yaml``."""
    return os.path.join(tars_path, "bin", META_FILE)


def info_path(tars_path: str) -> str:
    """``$TARS_PATH/data/server_info.yaml``."""
    return os.path.join(tars_path, "data", INFO_FILE)


# -- _server_meta.yaml ----------------------------------------------------------------------


@dataclass(frozen=True)
class AdapterMeta:
    """One entry of ``adapters``; ``line`` is its line in the file (0 = not from a file)."""

    object: str
    endpoint: str = DEFAULT_ADAPTER_ENDPOINT
    maxconns: int = 200000
    protocol: str = "tars"
    queuecap: int = 10000
    queuetimeout: int = 60000
    threads: int = 5
    line: int = field(default=0, compare=False)


#: Adapter YAML key -> (attribute, kind); kind "str" or "int".
ADAPTER_KEYS: dict[str, tuple[str, str]] = {
    "object": ("object", "str"),
    "endpoint": ("endpoint", "str"),
    "maxconns": ("maxconns", "int"),
    "protocol": ("protocol", "str"),
    "queuecap": ("queuecap", "int"),
    "queuetimeout": ("queuetimeout", "int"),
    "threads": ("threads", "int"),
}


@dataclass(frozen=True)
class ServerMeta:
    """The content of ``_server_meta.yaml`` with defaults (attribute names in snake case).

    ``origins`` maps a YAML key to where its value came from (``FILE:LINE`` or the name of
    the overriding variable), for messages; ``warnings`` holds the unknown-key warnings.
    """

    application: str = ""
    server: str = ""
    set_id: str = ""
    locator: str = DEFAULT_LOCATOR
    sample_rate: int = 100000
    max_sample_count: int = 50
    stat_obj: str = "tars.tarsstat.StatObj"
    property_obj: str = "tars.tarsproperty.PropertyObj"
    async_thread_num: int = 3
    sync_invoke_timeout: int = 3000
    async_invoke_timeout: int = 5000
    report_interval: int = 6000
    refresh_endpoint_interval: int = 60000
    local: str = DEFAULT_LOCAL
    log_size: str = "100M"
    log_num: int = 5
    config_obj: str = "tars.tarsconfig.ConfigObj"
    notify_obj: str = "tars.tarsnotify.NotifyObj"
    log_obj: str = "tars.tarslog.LogObj"
    log_level: str = "DEBUG"
    deactivating_timeout: int = 3000
    adapters: tuple[AdapterMeta, ...] = ()
    source: str = field(default="<defaults>", compare=False)
    origins: Mapping[str, str] = field(default_factory=dict, compare=False)
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def origin(self, key: str) -> str:
        """Where ``key`` (a YAML key) was set: ``FILE:LINE``, a variable, or ``FILE (default)``."""
        return self.origins.get(key, f"{self.source} (default)")

    def yaml_dict(self) -> dict[str, Any]:
        """The values under their ``_server_meta.yaml`` keys (the original's
        ``server_info.yaml`` ``conf`` block)."""
        out: dict[str, Any] = {}
        for key, (attr, _) in META_KEYS.items():
            if key == "adapters":
                out[key] = [
                    {k: getattr(a, attr_) for k, (attr_, _) in ADAPTER_KEYS.items()}
                    for a in self.adapters
                ]
            else:
                out[key] = getattr(self, attr)
        return out


#: Top-level YAML key -> (attribute, kind); kind "str", "int" or "adapters".
META_KEYS: dict[str, tuple[str, str]] = {
    "application": ("application", "str"),
    "server": ("server", "str"),
    "set_id": ("set_id", "str"),
    "locator": ("locator", "str"),
    "sample_rate": ("sample_rate", "int"),
    "max_sample_count": ("max_sample_count", "int"),
    "statObj": ("stat_obj", "str"),
    "propertyObj": ("property_obj", "str"),
    "asyncThreadNum": ("async_thread_num", "int"),
    "sync_invoke_timeout": ("sync_invoke_timeout", "int"),
    "async_invoke_timeout": ("async_invoke_timeout", "int"),
    "report_interval": ("report_interval", "int"),
    "refresh_endpoint_interval": ("refresh_endpoint_interval", "int"),
    "adapters": ("adapters", "adapters"),
    "local": ("local", "str"),
    "logSize": ("log_size", "str"),
    "logNum": ("log_num", "int"),
    "configObj": ("config_obj", "str"),
    "notifyObj": ("notify_obj", "str"),
    "logObj": ("log_obj", "str"),
    "logLevel": ("log_level", "str"),
    "deactivating_timeout": ("deactivating_timeout", "int"),
}


class _Reader:
    """Turns the composed YAML node tree into values, with file:line in every message."""

    def __init__(self, source: str, loader: yaml.SafeLoader) -> None:
        self.source = source
        self.loader = loader
        self.warnings: list[str] = []

    def where(self, node: Node) -> str:
        return f"{self.source}:{node.start_mark.line + 1}"

    def fail(self, node: Node, message: str) -> MetaError:
        return MetaError(f"{self.where(node)}: {message}")

    def mapping(self, node: Node, what: str) -> list[tuple[str, Node, Node]]:
        if not isinstance(node, MappingNode):
            raise self.fail(node, f"{what} must be a mapping of keys, got {_kind(node)}")
        self.loader.flatten_mapping(node)  # YAML merge keys (<<)
        seen: dict[str, int] = {}
        pairs: list[tuple[str, Node, Node]] = []
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise self.fail(key_node, f"{what}: a key must be plain text")
            key = key_node.value
            if key in seen:
                self.warnings.append(f"{self.where(key_node)}: duplicate key {key!r} "
                                     f"(line {seen[key]} is ignored)")
            seen[key] = key_node.start_mark.line + 1
            pairs.append((key, key_node, value_node))
        return pairs

    def value(self, key: str, node: Node, kind: str) -> str | int | None:
        """A scalar: None for null (keep the default), else text or a checked integer."""
        if not isinstance(node, ScalarNode):
            raise self.fail(node, f"{key}: expected {_expected(kind)}, got {_kind(node)}")
        if node.tag == _NULL_TAG:
            return None
        if kind == "str":
            return str(node.value)
        value = self.loader.construct_object(node)
        if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(node, f"{key}: expected {_expected(kind)}, got {node.value!r}")
        if value < 0 or value > 2**31 - 1:
            raise self.fail(node, f"{key}: {value} is out of range 0..{2**31 - 1}")
        return value

    def adapters(self, node: Node) -> tuple[AdapterMeta, ...]:
        if isinstance(node, ScalarNode) and node.tag == _NULL_TAG:
            return ()
        if not isinstance(node, SequenceNode):
            raise self.fail(node, f"adapters: expected a list of adapters, got {_kind(node)}")
        result: list[AdapterMeta] = []
        seen: dict[str, int] = {}
        for index, item in enumerate(node.value):
            what = f"adapters[{index}]"
            values: dict[str, Any] = {}
            for key, key_node, value_node in self.mapping(item, what):
                spec = ADAPTER_KEYS.get(key)
                if spec is None:
                    self.warnings.append(f"{self.where(key_node)}: unknown key {key!r} in "
                                         f"{what} ignored (known: {', '.join(ADAPTER_KEYS)})")
                    continue
                value = self.value(f"{what}.{key}", value_node, spec[1])
                if value is not None:
                    values[spec[0]] = value
            obj = values.get("object", "")
            if not obj:
                raise self.fail(item, f"{what}: 'object' is missing (the servant's object "
                                "name, e.g. HelloObj)")
            problem = _name_problem(obj)
            if problem:
                raise self.fail(item, f"{what}.object {obj!r}: {problem}")
            if obj in seen:
                raise self.fail(item, f"{what}: object {obj!r} is already defined at line "
                                f"{seen[obj]}")
            if "protocol" in values and not _is_token(values["protocol"]):
                raise self.fail(item, f"{what}.protocol {values['protocol']!r}: expected a "
                                "word such as tars or not_tars")
            seen[obj] = item.start_mark.line + 1
            result.append(AdapterMeta(line=item.start_mark.line + 1, **values))
        return tuple(result)


def _kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return f"{node.value!r}"


def _expected(kind: str) -> str:
    return "a whole number" if kind == "int" else "text"


def _is_token(text: str) -> bool:
    return bool(text) and not any(c.isspace() or c in "<>=#" for c in text)


def _name_problem(name: str) -> str | None:
    if not name:
        return "must not be empty"
    bad = sorted({c for c in name if c in _BAD_NAME_CHARS or not c.isprintable()})
    if bad:
        return f"must not contain {' '.join(repr(c) for c in bad)}"
    return None


def _yaml_problem(exc: yaml.MarkedYAMLError) -> str:
    """``:LINE: YAML syntax error: PROBLEM (CONTEXT, line N)`` from PyYAML's marks."""
    mark = exc.problem_mark or exc.context_mark
    line = f":{mark.line + 1}" if mark is not None else ""
    problem = exc.problem or exc.context or "malformed YAML"
    if exc.problem and exc.context:
        where = exc.context_mark
        at = f", line {where.line + 1}" if where is not None and where is not mark else ""
        problem += f" ({exc.context}{at})"
    return f"{line}: YAML syntax error: {problem}"


def parse_meta(text: str, source: str = "<string>") -> ServerMeta:
    """Parse ``_server_meta.yaml`` text; ``source`` names it in messages."""
    loader = yaml.SafeLoader(text)
    try:
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            raise MetaError(f"{source}{_yaml_problem(exc)}") from None
        except yaml.YAMLError as exc:
            raise MetaError(f"{source}: YAML syntax error: {exc}") from None
        reader = _Reader(source, loader)
        values: dict[str, Any] = {}
        origins: dict[str, str] = {}
        if root is not None and not (isinstance(root, ScalarNode) and root.tag == _NULL_TAG):
            for key, key_node, value_node in reader.mapping(root, "the file"):
                spec = META_KEYS.get(key)
                if spec is None:
                    if key not in _IGNORED_KEYS:
                        reader.warnings.append(
                            f"{reader.where(key_node)}: unknown key {key!r} ignored")
                    continue
                attr, kind = spec
                origins[key] = reader.where(key_node)
                if kind == "adapters":
                    values[attr] = reader.adapters(value_node)
                    continue
                value = reader.value(key, value_node, kind)
                if value is not None:
                    values[attr] = value
    finally:
        loader.dispose()
    return ServerMeta(source=source, origins=origins, warnings=tuple(reader.warnings), **values)


def load_meta(path: str | os.PathLike[str]) -> ServerMeta:
    """Read and parse ``_server_meta.yaml`` (UTF-8; a BOM is ignored)."""
    source = os.fspath(path)
    try:
        with open(source, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise MetaError(f"{source}: file not found (a service image puts its "
                        f"{META_FILE} in $TARS_PATH/bin; is TARS_PATH right?)") from None
    except OSError as exc:
        raise MetaError(f"{source}: cannot read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise MetaError(f"{source}:{line}: not valid UTF-8") from None
    return parse_meta(text, source)


def resolve_meta(meta: ServerMeta, settings: Settings) -> ServerMeta:
    """Apply the environment overrides and check the identity of the server.

    TARS_APPLICATION, TARS_SERVER, TARS_SET_ID, TARS_LOCATOR and TARS_EP_UPTIME win over the
    file. Raises :class:`MetaError` when application or server is missing or malformed, or
    the set id is not ``name.area.group``.
    """
    changes: dict[str, Any] = {}
    origins = dict(meta.origins)
    for key, variable, value in (
        ("application", "TARS_APPLICATION", settings.application),
        ("server", "TARS_SERVER", settings.server),
        ("set_id", "TARS_SET_ID", settings.set_id),
        ("locator", "TARS_LOCATOR", settings.locator),
    ):
        if value is not None:
            changes[key] = value.strip()
            origins[key] = variable
    uptime = settings.ep_uptime
    if uptime is not None:
        changes["refresh_endpoint_interval"] = uptime
        origins["refresh_endpoint_interval"] = "TARS_EP_UPTIME"
    resolved = replace(meta, origins=origins, **changes)

    missing = [k for k in ("application", "server") if not getattr(resolved, k)]
    if missing:
        names = " and ".join(missing)
        variables = " / ".join(f"TARS_{k.upper()}" for k in missing)
        raise MetaError(f"{names} not set: give {names} in {meta.source} or set {variables}")
    for key in ("application", "server"):
        problem = _name_problem(getattr(resolved, key))
        if problem:
            raise MetaError(f"{resolved.origin(key)}: {key} {getattr(resolved, key)!r}: "
                            f"{problem}")
    set_id = resolved.set_id
    if set_id:
        parts = set_id.split(".")
        if len(parts) != 3 or not all(_SET_PART.fullmatch(p) for p in parts):
            raise MetaError(f"{resolved.origin('set_id')}: set_id {set_id!r}: expected "
                            "name.area.group (letters, digits, _ or -), e.g. mtt.s.1")
    return resolved


# -- server_info.yaml -----------------------------------------------------------------------


@dataclass(frozen=True)
class AdapterInfo:
    """A resolved adapter, as in the generated config (after TARS_MERGE_CONF)."""

    name: str  # the config domain, App.Server.HelloObjAdapter
    servant: str  # App.Server.HelloObj
    endpoint: str  # resolved: no placeholders
    protocol: str = "tars"
    maxconns: int = 200000
    queuecap: int = 10000
    queuetimeout: int = 60000
    threads: int = 5

    @property
    def object(self) -> str:
        """The object name (``HelloObj``)."""
        return self.servant.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class ServerInfo:
    """What ``tarscli genconf`` resolved; the other subcommands read it with
    :func:`load_server_info` instead of redoing the resolution.

    ``local`` is the AdminObj endpoint (empty: none). ``set_id`` is empty without a set.
    ``node_name`` is the TARS node name (the local IP, as TARS expects).
    """

    application: str
    server: str
    build_server: str
    set_id: str
    locator: str
    local: str
    local_ip: str
    node_name: str
    namespace: str
    pod_ip: str
    pod_name: str
    pod_uid: str
    server_version: str
    tars_path: str
    conf_path: str
    adapters: tuple[AdapterInfo, ...] = ()

    @property
    def full_name(self) -> str:
        """``application.server``."""
        return f"{self.application}.{self.server}"

    @property
    def servants(self) -> tuple[str, ...]:
        """The servant names, in config order."""
        return tuple(a.servant for a in self.adapters)

    def adapter(self, servant: str) -> AdapterInfo | None:
        """The adapter serving ``servant``, or None."""
        return next((a for a in self.adapters if a.servant == servant), None)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (adapters as a list of mappings)."""
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["adapters"] = [
            {f.name: getattr(a, f.name) for f in fields(AdapterInfo)} for a in self.adapters
        ]
        return out

    @classmethod
    def from_dict(cls, data: object, source: str = "<data>") -> ServerInfo:
        """Build from :meth:`to_dict` output (extra keys are ignored); raises
        :class:`MetaError` naming ``source`` and the key on a missing or mistyped value."""
        if not isinstance(data, dict):
            raise MetaError(f"{source}: expected a mapping, got {type(data).__name__}")
        raw_adapters = data.get("adapters", [])
        if not isinstance(raw_adapters, list):
            raise MetaError(f"{source}: adapters: expected a list")
        adapters = []
        for index, item in enumerate(raw_adapters):
            if not isinstance(item, dict):
                raise MetaError(f"{source}: adapters[{index}]: expected a mapping")
            adapters.append(AdapterInfo(**_typed(AdapterInfo, item, source,
                                                 f"adapters[{index}].")))
        values = _typed(cls, data, source, "")
        values["adapters"] = tuple(adapters)
        return cls(**values)


def _typed(cls: type[Any], data: Mapping[str, Any], source: str,
           prefix: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for f in fields(cls):
        if f.name == "adapters":
            continue
        has_default = f.default is not MISSING or f.default_factory is not MISSING
        if f.name not in data:
            if has_default:
                continue
            raise MetaError(f"{source}: {prefix}{f.name} is missing")
        value = data[f.name]
        want = int if f.type == "int" else str
        if value is None and want is str:
            value = ""
        if not isinstance(value, want) or isinstance(value, bool):
            raise MetaError(f"{source}: {prefix}{f.name}: expected "
                            f"{'a whole number' if want is int else 'text'}, got {value!r}")
        values[f.name] = value
    return values


def write_server_info(info: ServerInfo, path: str, extra: Mapping[str, Any] | None = None
                      ) -> None:
    """Write ``server_info.yaml`` atomically; ``extra`` keys are added (e.g. the original's
    ``conf`` block)."""
    document = info.to_dict()
    if extra:
        document.update(extra)
    text = ("# Written by tarscli genconf: the resolved settings of this server.\n"
            + yaml.safe_dump(document, sort_keys=False, default_flow_style=False,
                             allow_unicode=True, width=1000))
    write_atomic(path, text)


def write_atomic(path: str, text: str, mode: int = 0o644) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same directory and a rename:
    a reader sees the old file or the new one, never a partial one."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp",
                               dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def load_server_info(tars_path: str) -> ServerInfo:
    """Read ``$TARS_PATH/data/server_info.yaml`` written by ``tarscli genconf``."""
    source = info_path(tars_path)
    try:
        with open(source, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise MetaError(f"{source}: file not found (run tarscli genconf first)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MetaError(f"{source}: cannot read: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MetaError(f"{source}: malformed (run tarscli genconf again): {exc}") from None
    return ServerInfo.from_dict(data, source)
