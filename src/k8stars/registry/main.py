"""``tarsregistry``: the k8stars registry process.

Serves ``tars.tarsregistry.QueryObj`` (QueryF, default port 17890), ``tars.tarsregistry.Registry``
(the K8STARS interface, 17891) and ``AdminObj`` (127.0.0.1:17897), plus ``/metrics``, ``/sd`` and
``/healthz`` over HTTP (9100), from one :class:`~.service.RegistryService`. Options, config-file
keys and environment variables: :mod:`k8stars.registry.settings` (``tarsregistry --help``).

Every user mistake (a bad option or URL, a port in use) is one line on stderr and exit status 2
(bad input) or 1 (could not start), never a traceback. A database that cannot be reached at
start is not fatal: the registry serves an empty index, says it is degraded, and loads the
index when the database answers. SIGTERM / SIGINT (or AdminObj ``shutdown``) stop gracefully:
listeners close, calls in flight finish, pending writes are written, this registry's
``t_registry_info`` rows are marked inactive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence

from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from ..cli.genconf import detect_local_ip
from ..cli.settings import CliError
from ..tars.admin import ADMIN_SERVANT, AdminServant
from ..tars.endpoint import parse_endpoint
from ..tars.logs import LOG_FORMAT, set_log_level
from ..tars.server import Adapter, Server
from .metrics import MetricsHttpServer, RegistryMetrics
from .servants import QUERY_OBJ, REGISTRY_OBJ, QueryImp, RegistryImp, install_admin_commands
from .service import RegistryService, ServiceOptions
from .settings import RegistrySettings, SettingsError, load_settings
from .store import Store

__all__ = ["RegistryRuntime", "StartError", "main"]

log = logging.getLogger("k8stars.registry")

#: Timeout (ms) written into the published endpoints.
ENDPOINT_TIMEOUT_MS = 60000
#: Seconds calls in flight get when stopping.
GRACEFUL_STOP_S = 10.0


class StartError(Exception):
    """The registry could not start (one line for the user)."""


class RegistryRuntime:
    """The whole registry process: service, RPC server (QueryObj, Registry, AdminObj) and the
    HTTP endpoints, for ``main`` and for tests.

    ``options`` overrides the service timings (``inactive_after_s``/``delete_after_s`` come
    from ``settings`` unless given there).
    """

    def __init__(self, settings: RegistrySettings, options: ServiceOptions | None = None,
                 env: Mapping[str, str] | None = None) -> None:  # fmt: skip
        self.settings = settings
        base = options or ServiceOptions()
        if options is None:
            base = ServiceOptions(inactive_after_s=settings.inactive_after_s,
                                  delete_after_s=settings.delete_after_s)  # fmt: skip
        self.options = base
        self.env = os.environ if env is None else env
        self.metrics = RegistryMetrics()
        self.store: Store | None = None
        self.service: RegistryService | None = None
        self.server: Server | None = None
        self.http: MetricsHttpServer | None = None
        self.advertise_host = ""
        self._stop_requested = False

    def _endpoint(self, host: str, port: int) -> str:
        return f"tcp -h {host} -p {port} -t {ENDPOINT_TIMEOUT_MS}"

    async def start(self) -> None:
        """Open the database, load the index, listen; StartError with a clear message."""
        s = self.settings
        try:
            self.store = Store(s.db_url)
        except (ArgumentError, NoSuchModuleError, ImportError, ValueError) as exc:
            raise StartError(f"database URL {s.safe_db_url()!r}: {exc}") from None
        self.service = RegistryService(self.store, self.options, metrics=self.metrics)
        server = self.server = Server(app="tars", server="tarsregistry",
                                      graceful_timeout=GRACEFUL_STOP_S)  # fmt: skip
        server.add_servant(QUERY_OBJ, QueryImp(self.service.index, self.metrics.calls),
                           self._endpoint(s.host, s.query_port))  # fmt: skip
        server.add_servant(REGISTRY_OBJ, RegistryImp(self.service, token=s.token,
                                                     stats=self.metrics.calls),
                           self._endpoint(s.host, s.registry_port))  # fmt: skip
        admin = AdminServant(server)
        if s.admin_port:
            server.add_servant(ADMIN_SERVANT, admin, Adapter(
                name="AdminAdapter", servant=ADMIN_SERVANT,
                endpoint=parse_endpoint(self._endpoint(s.admin_host, s.admin_port))))  # fmt: skip
        server.admin = admin
        install_admin_commands(admin, self.service)

        log.info("database: %s", s.safe_db_url())
        await self.service.start()
        if self.service.degraded:
            log.error("starting degraded: %s", self.service.status().reason)
        try:
            await server.start()
        except OSError as exc:
            await self.service.stop()
            raise StartError(f"cannot listen: {exc.strerror or exc} ({_bind_detail(exc)})"
                             ) from None  # fmt: skip
        self.advertise_host = s.advertise_host or _default_advertise(self.env)
        query_port = server.endpoint(QUERY_OBJ).port
        own = {
            QUERY_OBJ: self._endpoint(self.advertise_host, query_port),
            REGISTRY_OBJ: self._endpoint(self.advertise_host, server.endpoint(REGISTRY_OBJ).port),
        }
        await self.service.register_own(f"{self.advertise_host}:{query_port}", own)
        if s.metrics_port:
            self.http = MetricsHttpServer(self.metrics, sd=self.service.get_metrics_adapters,
                                          health=self.service.health)  # fmt: skip
            try:
                await self.http.start(s.metrics_host or s.host, s.metrics_port)
            except OSError as exc:
                await server.stop(1.0)
                await self.service.stop()
                raise StartError(f"cannot listen on {s.metrics_host or s.host}:"
                                 f"{s.metrics_port} (metrics): {exc.strerror or exc}"
                                 ) from None  # fmt: skip
        log.info("tarsregistry started (pid %d): QueryObj %s, Registry %s", os.getpid(),
                 own[QUERY_OBJ], own[REGISTRY_OBJ])  # fmt: skip
        if self._stop_requested:
            server.request_stop()

    @property
    def query_proxy(self) -> str:
        assert self.server is not None
        return self.server.proxy(QUERY_OBJ)

    @property
    def registry_proxy(self) -> str:
        assert self.server is not None
        return self.server.proxy(REGISTRY_OBJ)

    def request_stop(self) -> None:
        """Start a graceful stop (also before :meth:`start` has finished: then right after)."""
        self._stop_requested = True
        if self.server is not None and self.server.started_at is not None:
            self.server.request_stop()

    async def wait_closed(self) -> None:
        assert self.server is not None
        await self.server.wait_closed()

    async def stop(self) -> None:
        """Graceful stop (idempotent)."""
        if self.server is not None and not self.server.stopping:
            await self.server.stop(GRACEFUL_STOP_S)
        elif self.server is not None:
            await self.server.wait_closed()
        if self.http is not None:
            await self.http.stop()
            self.http = None
        if self.service is not None:
            await self.service.stop()


def _bind_detail(exc: OSError) -> str:
    text = str(exc)
    return text[text.find("address"):] if "address" in text else text


def _default_advertise(env: Mapping[str, str]) -> str:
    pod_ip = env.get("POD_IP", "").strip()
    if pod_ip:
        return pod_ip
    try:
        return detect_local_ip()
    except CliError as exc:
        log.warning("%s; publishing 127.0.0.1 (set --advertise-host)", exc)
        return "127.0.0.1"


def _setup_logging(level: str) -> None:
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root.addHandler(handler)
    set_log_level(level)


async def _serve(settings: RegistrySettings) -> int:
    runtime = RegistryRuntime(settings)
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, _on_signal, runtime, sig)
    try:
        try:
            await runtime.start()
        except StartError as exc:
            print(f"tarsregistry: {exc}", file=sys.stderr)
            return 1
        await runtime.wait_closed()
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        await runtime.stop()
    log.info("tarsregistry stopped")
    return 0


def _on_signal(runtime: RegistryRuntime, sig: signal.Signals) -> None:
    log.info("received %s: stopping", sig.name)
    runtime.request_stop()


def main(argv: Sequence[str] | None = None) -> int:
    """The ``tarsregistry`` command; returns the exit status."""
    try:
        settings = load_settings(sys.argv[1:] if argv is None else argv, os.environ)
    except SettingsError as exc:
        print(f"tarsregistry: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    _setup_logging(settings.log_level)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(_serve(settings))
    return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
