"""tarscli's environment variables: one table drives parsing, validation and ``tarscli help``.

Every variable of the Go original (K8STARS) is here with its default; :data:`VARIABLES` lists
them with their meaning and the subcommands that read them. :class:`Settings` reads them from
an environment mapping, typed, and raises :class:`SettingsError` (naming the variable, the value
and the accepted forms) for a bad value. Values are parsed when read, so a subcommand fails
only on the variables it uses; :meth:`Settings.check` validates all of a subcommand's variables
up front.

Rules (shared by every subcommand):

* An empty value is the same as an unset one (the default applies), except ``TARS_SET_ID``:
  set and empty, it clears a ``set_id`` given in ``_server_meta.yaml`` (as in the original).
* Durations: Go syntax (``time.ParseDuration``): one or more ``<number><unit>`` with units
  ``ns``, ``us`` (``µs``), ``ms``, ``s``, ``m``, ``h`` and fractions (``1.5h``), plus ``d``
  (days, accepted by the original's parser) and a bare ``0``. The original accepted only one
  integer and one unit (``30s``, ``500ms``, ``1d``); every value it accepted is still accepted,
  except negative ones, which are rejected here. A bare number other than ``0`` is rejected, as
  in the original (``10`` could mean seconds or milliseconds).
* Ports (``TARS_RAND_PORT_MIN``/``MAX``, ``TARS_METRICS_PORT``): a decimal integer 1..65535.
  The original silently ignored a bad value; here it is an error. ``TARS_METRICS_PORT`` has no
  default: unset, no metrics port is registered.
* ``TARS_EP_UPTIME``: milliseconds (the value goes to ``refresh-endpoint-interval`` as in the
  original, whose help text wrongly said seconds), or a duration such as ``60s``.
* Flags (``TARS_DISABLE_FLOW``): any non-empty value turns the flag on (the original's rule),
  except ``0``, ``false``, ``no``, ``off`` and ``n`` (any case), which turn it off.

This module is read by ``tarscli hzcheck`` on every readiness probe: it imports only ``os`` at
run time (typing names are imported for type checkers only).
"""

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

__all__ = [
    "COMMAND_NAMES",
    "DURATION_FORMS",
    "VARIABLES",
    "CliError",
    "Settings",
    "SettingsError",
    "Var",
    "parse_duration",
    "variables_for",
]

#: Every subcommand that reads variables (``help`` and ``version`` read none).
COMMAND_NAMES = ("genconf", "supervisor", "hzcheck", "prestop", "notify", "syncdir")

#: How a duration may be written; quoted in error messages and in ``tarscli help``.
DURATION_FORMS = (
    "a duration such as 500ms, 10s, 1m30s, 1.5h or 1d (units ns, us, ms, s, m, h, d), or 0"
)

_UNITS: dict[str, float] = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,  # micro sign
    "\u03bcs": 1e-6,  # Greek mu
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}
_DIGITS = "0123456789"
_FALSE = frozenset({"0", "false", "no", "off", "n"})


class CliError(Exception):
    """A user mistake or a failed check: the dispatcher prints ``tarscli <cmd>: <message>``
    on one line (never a traceback) and exits with :attr:`exit_code`.

    Exit codes: 1 = the subcommand ran and failed (e.g. not ready), 2 = bad input (a bad
    variable, a malformed file, no free port, a usage mistake).
    """

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class SettingsError(CliError):
    """A bad environment variable; the message names it, its value and the accepted forms."""

    def __init__(self, name: str, value: str, problem: str) -> None:
        super().__init__(f"{name}={value!r}: {problem}")
        self.name = name
        self.value = value
        self.problem = problem


def parse_duration(text: str) -> float:
    """Seconds in a Go-style duration (see the module docstring); raises ``ValueError``.

    ``ValueError`` messages are short problems ("missing unit", ...); callers add the
    variable name and :data:`DURATION_FORMS`.
    """
    s = text.strip()
    if s == "0":
        return 0.0
    if not s:
        raise ValueError("empty duration")
    if s[0] == "-":
        raise ValueError("a duration cannot be negative")
    if s[0] == "+":
        s = s[1:]
    total = 0.0
    i, n = 0, len(s)
    while i < n:
        start = i
        while i < n and (s[i] in _DIGITS or s[i] == "."):
            i += 1
        number = s[start:i]
        if not number or number == "." or number.count(".") > 1:
            raise ValueError(f"expected a number at {s[start:] or 'the end'!r}")
        unit_start = i
        while i < n and s[i] not in _DIGITS and s[i] != ".":
            i += 1
        unit = s[unit_start:i]
        if not unit:
            hint = f" (did you mean {number}s?)" if start == 0 else ""
            raise ValueError(f"missing unit{hint}")
        if unit not in _UNITS:
            raise ValueError(f"unknown unit {unit!r}")
        total += float(number) * _UNITS[unit]
    return total


class Var:
    """One environment variable: name, kind, default, meaning and the subcommands reading it.

    ``kind`` is ``text``, ``path``, ``duration`` (seconds, float), ``port`` (1..65535),
    ``ms`` (milliseconds, int) or ``flag`` (bool). ``default`` is the textual default
    (``$TARS_PATH`` is expanded); ``shown`` overrides how the default is displayed.
    ``positive`` rejects a zero duration.
    """

    __slots__ = ("commands", "default", "kind", "meaning", "name", "positive", "shown")

    def __init__(
        self,
        name: str,
        kind: str,
        default: str,
        meaning: str,
        commands: tuple[str, ...],
        *,
        shown: str | None = None,
        positive: bool = False,
    ) -> None:
        self.name = name
        self.kind = kind
        self.default = default
        self.meaning = meaning
        self.commands = commands
        self.shown = shown if shown is not None else (default or "(empty)")
        self.positive = positive

    def __repr__(self) -> str:
        return f"Var({self.name!r}, {self.kind!r}, default={self.default!r})"


_GEN = ("genconf", "supervisor")  # supervisor runs genconf first
_ALL = COMMAND_NAMES
_META = "(from _server_meta.yaml)"

#: The table of every variable, in the order ``tarscli help`` shows them.
VARIABLES: tuple[Var, ...] = (
    Var("TARS_PATH", "path", "/tars",
        "Work directory: bin/ (start.sh, binaries, _server_meta.yaml), conf/, log/, data/", _ALL),
    Var("TARS_APPLICATION", "text", "", "Application name; overrides application in "
        "_server_meta.yaml", _GEN, shown=_META),
    Var("TARS_SERVER", "text", "", "Server name of the running server; overrides server in "
        "_server_meta.yaml", _GEN, shown=_META),
    Var("TARS_BUILD_SERVER", "text", "", "Server name the binary was built as: names the "
        "config file conf/<TARS_BUILD_SERVER>.conf", _GEN, shown="(the server name)"),
    Var("TARS_SET_ID", "text", "", "SET of the server, name.area.group (e.g. mtt.s.1); set and "
        "empty clears set_id of _server_meta.yaml", _GEN, shown=_META),
    Var("TARS_LOCATOR", "text", "", "Locator (registry QueryObj proxy); overrides locator in "
        "_server_meta.yaml", _GEN, shown=_META),
    Var("TARS_MERGE_CONF", "path", "", "A TARS-format config file merged over the generated "
        "config (its values win)", _GEN),
    Var("TARS_EP_UPTIME", "ms", "", "refresh-endpoint-interval in milliseconds (or a duration "
        "such as 60s): how often clients refresh endpoints", _GEN,
        shown="(refresh_endpoint_interval of _server_meta.yaml, 60000)"),
    Var("TARS_NAMESPACE", "text", "tars-system", "Kubernetes namespace, the ${namespace} "
        "placeholder (default locator tars-registry.${namespace}.svc.cluster.local)", _GEN),
    Var("TARS_RAND_PORT_MIN", "port", "13000", "Lowest port for ${random_port}", _GEN),
    Var("TARS_RAND_PORT_MAX", "port", "16000", "Highest port for ${random_port}", _GEN),
    Var("POD_IP", "text", "", "The pod's IP (downward API): ${local_ip}, localip and the node "
        "name", (*_GEN, "prestop", "notify"), shown="(address of the default route)"),
    Var("POD_NAME", "text", "", "The pod's name (downward API): instance identity",
        (*_GEN, "prestop")),
    Var("POD_UID", "text", "", "The pod's UID (downward API): instance identity",
        (*_GEN, "prestop")),
    Var("SERVER_VERSION", "text", "", "Version of the service, reported to the registry",
        _GEN),
    Var("TARS_START_PATH", "path", "$TARS_PATH/bin/start.sh", "Script that starts the service",
        ("supervisor",)),
    Var("TARS_STOP_PATH", "path", "", "Script that stops the service before a restart (default: "
        "kill the service's process group and its leftover children)", ("supervisor",)),
    Var("TARS_REGISTRY_TOKEN", "text", "", "k8stars only: shared token sent with registry "
        "writes when the registry requires one", ("supervisor", "prestop")),
    Var("TARS_CHECK_INTERVAL", "duration", "10s", "How often the service's endpoints are "
        "checked", ("supervisor",), positive=True),
    Var("TARS_CHECK_RETRY_TIMEOUT", "duration", "5s", "How long one check retries an endpoint "
        "before it counts as down", ("supervisor",)),
    Var("TARS_ACTIVATING_TIMEOUT", "duration", "300s", "How long the service may stay "
        "activating before it counts as inactive", ("supervisor",)),
    Var("TARS_REPORT_INTERVAL", "duration", "30s", "Heartbeat interval; hzcheck fails when "
        "data/check_status is older than twice this", ("supervisor", "hzcheck"), positive=True),
    Var("TARS_BEFORE_CHECK_SCRIPT", "text", "", "Shell command run before each check",
        ("supervisor",)),
    Var("TARS_CHECK_SCRIPT_TIMEOUT", "duration", "2s", "Time limit of TARS_BEFORE_CHECK_SCRIPT",
        ("supervisor",)),
    Var("TARS_METRICS_PORT", "port", "", "k8stars only: port of the service's Prometheus "
        "/metrics, registered with the registry (registerMetrics) so that its /sd lists "
        "POD_IP:port; Python services serve it themselves", ("supervisor",),
        shown="(unset: no metrics)"),
    Var("TARS_DISABLE_FLOW", "flag", "", "Non-empty (other than 0/false/no/off): register "
        "without traffic (grid_flag NO_FLOW)", ("supervisor",)),
    Var("TARS_PRESTOP_WAITTIME", "duration", "80s", "Drain wait of prestop between "
        "deactivating and deregistering", ("supervisor", "prestop")),
    Var("TARS_SYNC_DIRECTORY", "path", "", "Directory to copy files from (e.g. a mounted "
        "ConfigMap); empty: syncdir does nothing", ("syncdir",)),
    Var("TARS_SYNC_TARGET_DIRECTORY", "path", "$TARS_PATH/bin", "Directory syncdir copies "
        "files to", ("syncdir",)),
    Var("TARSCLI_DEBUG", "flag", "", "k8stars only: print the traceback of an internal error",
        _ALL),
)

_BY_NAME: dict[str, Var] = {v.name: v for v in VARIABLES}


def variables_for(command: str) -> tuple[Var, ...]:
    """The variables a subcommand reads, in table order."""
    return tuple(v for v in VARIABLES if command in v.commands)


class Settings:
    """Typed access to the variables of :data:`VARIABLES` in an environment mapping.

    ``Settings()`` reads ``os.environ``; tests pass a dict. Accessors parse on each call and
    raise :class:`SettingsError` for a bad value.
    """

    __slots__ = ("_env",)

    def __init__(self, environ: "Mapping[str, str] | None" = None) -> None:
        self._env: Mapping[str, str] = os.environ if environ is None else environ

    # -- generic accessors ---------------------------------------------------------------

    def raw(self, name: str) -> str | None:
        """The value as set, or None when unset or empty."""
        _var(name)
        value = self._env.get(name)
        return value if value else None

    def text(self, name: str) -> str:
        """The value, or the default (with ``$TARS_PATH`` expanded)."""
        value = self.raw(name)
        if value is not None:
            return value
        default = _var(name).default
        if "$TARS_PATH" in default:
            default = default.replace("$TARS_PATH", self.tars_path)
        return default

    def duration(self, name: str) -> float:
        """A duration variable, in seconds."""
        var = _var(name, "duration")
        text = self.text(name)
        try:
            seconds = parse_duration(text)
        except ValueError as exc:
            raise SettingsError(name, text, f"{exc}; expected {DURATION_FORMS}") from None
        if var.positive and seconds <= 0:
            raise SettingsError(name, text, f"must be more than 0; expected {DURATION_FORMS}")
        return seconds

    def optional_port(self, name: str) -> int | None:
        """A port variable without a default: None when unset."""
        return None if self.raw(name) is None and not _var(name).default else self.port(name)

    def port(self, name: str) -> int:
        """A port variable (1..65535)."""
        _var(name, "port")
        text = self.text(name).strip()
        if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 65535:
            raise SettingsError(name, text, "expected a port number from 1 to 65535")
        return int(text)

    def milliseconds(self, name: str) -> int | None:
        """An ``ms`` variable: None when unset, else milliseconds (> 0)."""
        _var(name, "ms")
        raw = self.raw(name)
        if raw is None:
            return None
        text = raw.strip()
        if text.isascii() and text.isdigit():
            value = int(text)
        else:
            try:
                value = round(parse_duration(text) * 1000)
            except ValueError:
                value = -1
        if value <= 0 or value > 2**31 - 1:
            raise SettingsError(name, raw, "expected milliseconds (a whole number more than 0, "
                                f"such as 60000) or {DURATION_FORMS}")
        return value

    def flag(self, name: str) -> bool:
        """A flag: set and not one of 0/false/no/off/n."""
        _var(name, "flag")
        raw = self.raw(name)
        return raw is not None and raw.strip().lower() not in _FALSE

    def get(self, name: str) -> object:
        """The typed value of any variable (what :meth:`check` validates)."""
        kind = _var(name).kind
        if kind == "duration":
            return self.duration(name)
        if kind == "port":
            return self.optional_port(name)
        if kind == "ms":
            return self.milliseconds(name)
        if kind == "flag":
            return self.flag(name)
        return self.text(name)

    def check(self, command: str) -> None:
        """Parse every variable ``command`` reads; raise the first :class:`SettingsError`."""
        for var in variables_for(command):
            self.get(var.name)

    def items(self) -> "Iterator[tuple[str, object]]":
        """Every variable with its typed value (for diagnostics)."""
        for var in VARIABLES:
            yield var.name, self.get(var.name)

    # -- typed properties ---------------------------------------------------------------

    @property
    def tars_path(self) -> str:
        """``TARS_PATH`` (default ``/tars``)."""
        return self.raw("TARS_PATH") or "/tars"

    def override(self, name: str) -> str | None:
        """An override of a ``_server_meta.yaml`` value: None when it does not apply.

        ``TARS_SET_ID`` set to an empty string is an override (to no set).
        """
        if name == "TARS_SET_ID":
            _var(name)
            return self._env.get(name)
        return self.raw(name)

    @property
    def application(self) -> str | None:
        return self.override("TARS_APPLICATION")

    @property
    def server(self) -> str | None:
        return self.override("TARS_SERVER")

    @property
    def build_server(self) -> str | None:
        return self.raw("TARS_BUILD_SERVER")

    @property
    def set_id(self) -> str | None:
        return self.override("TARS_SET_ID")

    @property
    def locator(self) -> str | None:
        return self.override("TARS_LOCATOR")

    @property
    def merge_conf(self) -> str | None:
        return self.raw("TARS_MERGE_CONF")

    @property
    def ep_uptime(self) -> int | None:
        """``TARS_EP_UPTIME`` in milliseconds, or None."""
        return self.milliseconds("TARS_EP_UPTIME")

    @property
    def namespace(self) -> str:
        return self.text("TARS_NAMESPACE")

    @property
    def rand_port_min(self) -> int:
        return self.port("TARS_RAND_PORT_MIN")

    @property
    def rand_port_max(self) -> int:
        return self.port("TARS_RAND_PORT_MAX")

    @property
    def pod_ip(self) -> str | None:
        """``POD_IP``, checked to be an IP address, or None."""
        raw = self.raw("POD_IP")
        if raw is None:
            return None
        import ipaddress  # only genconf/supervisor read POD_IP; keep hzcheck's imports small

        try:
            return str(ipaddress.ip_address(raw.strip()))
        except ValueError:
            raise SettingsError("POD_IP", raw, "expected an IP address such as 10.0.0.7") from None

    @property
    def pod_name(self) -> str:
        return self.text("POD_NAME")

    @property
    def pod_uid(self) -> str:
        return self.text("POD_UID")

    @property
    def server_version(self) -> str:
        return self.text("SERVER_VERSION")

    @property
    def start_path(self) -> str:
        return self.text("TARS_START_PATH")

    @property
    def stop_path(self) -> str:
        return self.text("TARS_STOP_PATH")

    @property
    def check_interval(self) -> float:
        return self.duration("TARS_CHECK_INTERVAL")

    @property
    def check_retry_timeout(self) -> float:
        return self.duration("TARS_CHECK_RETRY_TIMEOUT")

    @property
    def activating_timeout(self) -> float:
        return self.duration("TARS_ACTIVATING_TIMEOUT")

    @property
    def report_interval(self) -> float:
        return self.duration("TARS_REPORT_INTERVAL")

    @property
    def before_check_script(self) -> str:
        return self.text("TARS_BEFORE_CHECK_SCRIPT")

    @property
    def check_script_timeout(self) -> float:
        return self.duration("TARS_CHECK_SCRIPT_TIMEOUT")

    @property
    def metrics_port(self) -> int | None:
        """``TARS_METRICS_PORT``, or None (no metrics)."""
        return self.optional_port("TARS_METRICS_PORT")

    @property
    def disable_flow(self) -> bool:
        return self.flag("TARS_DISABLE_FLOW")

    @property
    def prestop_waittime(self) -> float:
        return self.duration("TARS_PRESTOP_WAITTIME")

    @property
    def sync_directory(self) -> str:
        return self.text("TARS_SYNC_DIRECTORY")

    @property
    def sync_target_directory(self) -> str:
        return self.text("TARS_SYNC_TARGET_DIRECTORY")

    @property
    def debug(self) -> bool:
        return self.flag("TARSCLI_DEBUG")

    # -- files under $TARS_PATH ---------------------------------------------------------

    def path(self, *parts: str) -> str:
        """A path under ``TARS_PATH``, e.g. ``settings.path("data", "check_status")``."""
        return os.path.join(self.tars_path, *parts)


def _var(name: str, kind: str | None = None) -> Var:
    var = _BY_NAME.get(name)
    if var is None:
        raise KeyError(f"{name} is not a tarscli variable")
    if kind is not None and var.kind != kind:
        raise TypeError(f"{name} is a {var.kind} variable, not {kind}")
    return var
