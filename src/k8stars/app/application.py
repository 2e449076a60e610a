"""The Python TARS service framework: :class:`Application`.

::

    idl = load(Path(__file__).with_name("Hello.tars"))

    class SayHelloImp(Servant, interface=idl.interface("TestApp.SayHello")):
        async def SayHello(self, name: str) -> str:
            return f"hello {name}"

    app = Application()
    app.add_servant("SayHelloObj", SayHelloImp())      # serves TestApp.HelloPy.SayHelloObj
    sys.exit(app.run())                                # --config=FILE from the command line

:meth:`Application.start` (``run``/``serve`` call it) reads the config file ``tarscli genconf``
writes, then in this order: log files (``<logpath>/<app>.<server>.log``, rotated at
``logsize``, ``lognum`` kept, level ``logLevel``; warnings also go to stderr), the
:attr:`~Application.communicator` (the ``<client>`` section: locator, timeouts, refresh),
the remote config files of :attr:`~Application.config_files`, the user's
:meth:`~Application.initialize`, then it listens: every adapter whose servant was added (a
:class:`~k8stars.tars.servant.Servant` on ``protocol=tars``, an
:class:`~k8stars.app.http.HttpApp` on ``protocol=not_tars``) and AdminObj on ``local``.

A stop (SIGTERM/SIGINT under :meth:`~Application.serve`, AdminObj ``shutdown`` or
:meth:`~Application.stop`) closes every listener, lets calls and HTTP requests in progress
finish for up to ``gracedowntimeout`` (60 s), runs :meth:`~Application.destroy` and closes
the communicator. The ``prestop`` admin command (``tarscli prestop`` sends it) runs the hooks
added with :meth:`~Application.on_prestop`.

With ``TARS_METRICS_PORT`` set, the application also serves Prometheus metrics (calls by
servant, method and return code, latency, process metrics) at ``http://POD_IP:port/metrics``
(:mod:`k8stars.app.metrics`); the listener stays open until the TARS listeners have drained.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from k8stars.tars.admin import AdminServant, CommandHandler
from k8stars.tars.client import Communicator
from k8stars.tars.config import ConfigError, TarsConfig, load_config
from k8stars.tars.endpoint import Endpoint
from k8stars.tars.logs import LOG_FORMAT, log_file_path, set_log_level, setup_logging
from k8stars.tars.servant import Servant
from k8stars.tars.server import Server
from k8stars.tars.server_config import Adapter, ServerConfig
from k8stars.tars.stats import ServerStats

from .http import HttpApp, HttpServer
from .metrics import MetricsExporter, metrics_address
from .remote_config import RemoteConfig, RemoteConfigError, RemoteConfigUnavailable

__all__ = ["Application", "ConfigListener", "PrestopHook"]

log = logging.getLogger("k8stars.app")

#: ``hook()``, sync or async: run by the ``prestop`` admin command.
PrestopHook = Callable[[], "object | Awaitable[object]"]
#: ``listener(filename, path)``, sync or async: run after a remote config file was saved.
ConfigListener = Callable[[str, Path], "object | Awaitable[object]"]
F = TypeVar("F", bound=Callable[..., Any])


async def _call(fn: Callable[..., Any], *args: Any) -> Any:
    result = fn(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


def config_path_from_argv(argv: Sequence[str]) -> str | None:
    """The ``--config=FILE`` (or ``--config FILE``) argument, as TarsGo/TarsCpp servers take it."""
    for i, arg in enumerate(argv):
        if arg.startswith("--config="):
            return arg.partition("=")[2]
        if arg == "--config" and i + 1 < len(argv):
            return argv[i + 1]
    return None


class _AppServer(Server):
    """The TARS server of an application: any stop request stops the whole application."""

    def __init__(self, application: Application, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._application = application

    def request_stop(self, deadline: float | None = None) -> asyncio.Task[None]:
        task = super().request_stop(deadline)
        self._application._stop_requested(self.graceful_timeout if deadline is None
                                          else deadline)
        return task


class Application:
    """A TARS server process: servants, HTTP adapters, AdminObj, logs, communicator.

    Use it as is (``add_servant`` then ``run``) or subclass it and override
    :meth:`initialize` / :meth:`destroy`. Servants are named by object (``MainObj``), by
    servant name (``App.Server.MainObj``) or by adapter name; each must match an adapter of
    the config file.

    ``config_files`` (or the class attribute of that name) are fetched from the config
    service at start, before :meth:`initialize` (see :meth:`load_config`). ``setup_logs``
    False leaves :mod:`logging` alone; ``handle_signals`` False makes :meth:`serve` ignore
    SIGTERM/SIGINT.
    """

    #: Remote config files fetched at start (saved to ``basepath``).
    config_files: ClassVar[Sequence[str]] = ()

    def __init__(self, *, config_files: Iterable[str] | None = None, setup_logs: bool = True,
                 handle_signals: bool = True) -> None:
        self._config_files = tuple(type(self).config_files if config_files is None
                                   else config_files)
        self.setup_logs = setup_logs
        self.handle_signals = handle_signals
        self._servants: dict[str, Servant | HttpApp] = {}
        self._commands: list[tuple[str, CommandHandler, str]] = []
        self._prestop: list[PrestopHook] = []
        self._config_listeners: list[ConfigListener] = []
        self._tars_config: TarsConfig | None = None
        self._config: ServerConfig | None = None
        self._communicator: Communicator | None = None
        self._remote_config: RemoteConfig | None = None
        self._server: _AppServer | None = None
        self._http: dict[str, HttpServer] = {}
        self._metrics_at: tuple[str, int] | None = None
        self._metrics: MetricsExporter | None = None
        self._log_handlers: list[logging.Handler] = []
        self._saved_root_level: int | None = None
        self._started = False
        self._aborting = False
        self._closed: asyncio.Event | None = None
        self._shutdown_task: asyncio.Task[None] | None = None
        #: ``<logpath>/<app>.<server>.log`` once started with a logpath.
        self.log_file: Path | None = None

    # -- what the config file says (available from start) --------------------------------

    @property
    def config(self) -> ServerConfig:
        """The server settings of the config file."""
        if self._config is None:
            raise RuntimeError("the application has not read its config file yet (start it)")
        return self._config

    @property
    def tars_config(self) -> TarsConfig:
        """The whole config file, parsed (for keys the framework does not read)."""
        if self._tars_config is None:
            raise RuntimeError("the application has not read its config file yet (start it)")
        return self._tars_config

    @property
    def name(self) -> str:
        """``app.server``."""
        return self.config.name

    @property
    def communicator(self) -> Communicator:
        """The client side, set up from ``<client>`` (locator, timeouts, refresh)."""
        if self._communicator is None:
            raise RuntimeError("the communicator exists once the application is starting")
        return self._communicator

    @property
    def remote_config(self) -> RemoteConfig:
        """The config service client (``tars.tarsconfig.ConfigObj``)."""
        if self._remote_config is None:
            raise RuntimeError("the application is not started")
        return self._remote_config

    @property
    def server(self) -> Server:
        """The TARS server (adapters and AdminObj); exists once :meth:`initialize` returned."""
        if self._server is None:
            raise RuntimeError("the application is not started")
        return self._server

    @property
    def admin(self) -> AdminServant:
        admin = self.server.admin
        assert admin is not None
        return admin

    def servant_name(self, obj: str) -> str:
        """``App.Server.<obj>`` for an object name; a dotted name is returned as is."""
        return obj if "." in obj else f"{self.config.app}.{self.config.server}.{obj}"

    def endpoint(self, name: str) -> Endpoint:
        """Where a servant (TARS or HTTP) listens, with the real port once started."""
        full = self.servant_name(name)
        http = self._http.get(full)
        if http is not None:
            return http.endpoint
        return self.server.endpoint(full)

    @property
    def metrics(self) -> MetricsExporter | None:
        """The Prometheus exporter (``TARS_METRICS_PORT`` set), once started; else None."""
        return self._metrics

    def http_server(self, name: str) -> HttpServer:
        """The HTTP server of a ``not_tars`` servant."""
        return self._http[self.servant_name(name)]

    # -- registration ---------------------------------------------------------------------

    def add_servant(self, name: str, impl: Servant | HttpApp) -> None:
        """Serve ``impl`` on the adapter of ``name`` (object, servant or adapter name)."""
        if self._server is not None:
            raise RuntimeError("add servants before the application starts listening")
        if isinstance(impl, Servant):
            if type(impl).tars_interface is None:
                raise TypeError(f"{type(impl).__qualname__} declares no interface")
        elif not isinstance(impl, HttpApp):
            raise TypeError(f"a servant must be a Servant or an HttpApp, not "
                            f"{type(impl).__name__}")
        if name in self._servants:
            raise ValueError(f"servant {name!r} is already added")
        self._servants[name] = impl

    def http(self, name: str) -> HttpApp:
        """A new :class:`HttpApp` served on the ``not_tars`` adapter of ``name``."""
        app = HttpApp()
        self.add_servant(name, app)
        return app

    def register_command(self, name: str, handler: CommandHandler, help: str = "") -> None:
        """Answer the admin command ``name`` (``tarscli notify name ...``) with
        ``handler(full_command)`` (sync or async; None means ``"<command> succ"``)."""
        if self._server is not None:
            self.admin.register_command(name, handler, help)
        else:
            self._commands.append((name, handler, help))

    def add_prestop_hook(self, hook: PrestopHook) -> None:
        """Run ``hook()`` (sync or async) on the ``prestop`` admin command, in order."""
        if self._server is not None:
            self.admin.add_prestop_hook(hook)
        else:
            self._prestop.append(hook)

    def on_prestop(self, hook: F) -> F:
        """Decorator form of :meth:`add_prestop_hook`."""
        self.add_prestop_hook(hook)
        return hook

    def on_config_loaded(self, listener: F) -> F:
        """Decorator: ``listener(filename, path)`` runs after each remote config file is saved
        (by :meth:`load_config` or ``tars.loadconfig``)."""
        self._config_listeners.append(listener)
        return listener

    # -- hooks for subclasses ---------------------------------------------------------------

    def initialize(self) -> object:
        """Called (sync or async) once config, logs, communicator and the remote config files
        are ready, before listening: add servants and commands here."""
        return None

    def destroy(self) -> object:
        """Called (sync or async) after the listeners closed, before the communicator does."""
        return None

    # -- remote config ----------------------------------------------------------------------

    async def load_config(self, filename: str) -> Path | None:
        """Fetch ``filename`` from ``tars.tarsconfig.ConfigObj`` and save it to
        ``basepath/filename``; its path. When no config service is resolvable the file is
        skipped with one log line and None returned; RemoteConfigError when the service
        fails."""
        try:
            proxy = await self.remote_config.resolve()
        except RemoteConfigUnavailable as exc:
            log.warning("remote config %s skipped: %s", filename, exc)
            return None
        return await self._load_with(proxy, filename)

    async def _load_with(self, proxy: Any, filename: str) -> Path:
        path = await self.remote_config.load(filename, proxy)
        log.info("remote config %s saved to %s", filename, path)
        for listener in self._config_listeners:
            await _call(listener, filename, path)
        return path

    async def _load_startup_configs(self, files: Sequence[str]) -> None:
        try:
            proxy = await self.remote_config.resolve()
        except RemoteConfigUnavailable as exc:
            log.warning("remote config %s skipped: %s", ", ".join(files), exc)
            return
        for filename in files:
            await self._load_with(proxy, filename)

    async def _admin_loadconfig(self, filename: str) -> str:
        await self._load_with(await self.remote_config.resolve(), filename)
        return ""

    # -- life cycle -------------------------------------------------------------------------

    def _read_config(self, argv: Sequence[str] | None, config: str | os.PathLike[str] | None
                     ) -> None:
        if config is None:
            found = config_path_from_argv(sys.argv[1:] if argv is None else argv)
            if found is None:
                raise ConfigError("no config file: start the server with --config=FILE (the "
                                  "file tarscli genconf writes)")
            config = found
        try:
            tars_config = load_config(config)
        except OSError as exc:
            raise ConfigError(f"cannot read the config file: {exc}", os.fspath(config)) from None
        server_config = ServerConfig.from_tars_config(tars_config)
        self._metrics_at = metrics_address(os.environ, server_config.localip)
        self._config = server_config
        self._tars_config = tars_config

    def _setup_logs(self) -> None:
        cfg = self.config
        root = logging.getLogger()
        self._saved_root_level = root.level
        stderr = logging.StreamHandler(sys.stderr)
        stderr.setFormatter(logging.Formatter(LOG_FORMAT))
        if cfg.logpath:
            self._log_handlers.append(setup_logging(
                cfg.logpath, cfg.app, cfg.server, level=cfg.log_level,
                max_bytes=cfg.log_size, backups=cfg.log_num))
            self.log_file = log_file_path(cfg.logpath, cfg.app, cfg.server)
            stderr.setLevel(logging.WARNING)  # the log file has everything
        else:
            set_log_level(cfg.log_level)
        root.addHandler(stderr)
        self._log_handlers.append(stderr)

    def _teardown_logs(self) -> None:
        root = logging.getLogger()
        for handler in self._log_handlers:
            root.removeHandler(handler)
            handler.close()
        self._log_handlers.clear()
        if self._saved_root_level is not None:
            root.setLevel(self._saved_root_level)
            self._saved_root_level = None

    def _adapter_for(self, key: str) -> Adapter:
        cfg = self.config
        for adapter in cfg.adapters:
            if key in (adapter.servant, adapter.name) or adapter.servant == self.servant_name(key):
                return adapter
        served = ", ".join(a.servant for a in cfg.adapters) or "none"
        raise ConfigError(f"no adapter serves {key!r} ({self.servant_name(key)}); the config "
                          f"file's adapters serve: {served}", cfg.source)

    def _build(self) -> _AppServer:
        cfg = self.config
        server = _AppServer(self, app=cfg.app, server=cfg.server,
                            max_frame_size=cfg.max_packet_length,
                            graceful_timeout=cfg.gracedown_timeout / 1000.0,
                            stats=ServerStats() if self._metrics_at is not None else None)
        impls: dict[str, Servant | HttpApp] = {}
        for key, impl in self._servants.items():
            adapter = self._adapter_for(key)
            if adapter.servant in impls:
                raise ConfigError(f"{adapter.servant} is added twice", cfg.source)
            wanted = "not_tars" if isinstance(impl, HttpApp) else "tars"
            if adapter.protocol != wanted:
                kind = "an HttpApp" if wanted == "not_tars" else "a TARS Servant"
                raise ConfigError(f"adapter {adapter.name} has protocol={adapter.protocol} but "
                                  f"{adapter.servant} is {kind} (needs protocol={wanted})",
                                  cfg.source)
            impls[adapter.servant] = impl
        for adapter in cfg.adapters:
            found = impls.get(adapter.servant)
            if found is None:
                log.warning("adapter %s: nothing was added for %s: not served (its endpoint "
                            "stays closed)", adapter.name, adapter.servant)
            elif isinstance(found, HttpApp):
                self._http[adapter.servant] = HttpServer.from_adapter(
                    found, adapter, max_body=cfg.max_packet_length)
            else:
                server.add_servant(adapter.servant, found, adapter)
        if cfg.local is not None:
            admin = server.add_admin(cfg.local, cfg)
        else:
            log.warning("no 'local' endpoint in %s: AdminObj is not served", cfg.source)
            admin = server.admin = AdminServant(server, config=cfg)
        admin.config_loader = self._admin_loadconfig
        for name, handler, text in self._commands:
            admin.register_command(name, handler, text)
        for hook in self._prestop:
            admin.add_prestop_hook(hook)
        return server

    async def start(self, argv: Sequence[str] | None = None, *,
                    config: str | os.PathLike[str] | None = None) -> None:
        """Read the config file (``config``, else ``--config=FILE`` in ``argv``, else in
        ``sys.argv``), set everything up and listen. Returns once serving."""
        if self._started:
            raise RuntimeError("an Application starts once")
        self._started = True
        self._closed = asyncio.Event()
        try:
            self._read_config(argv, config)
        except BaseException:
            self._closed.set()
            raise
        cfg = self.config
        if self.setup_logs:
            self._setup_logs()
        log.info("%s starting (pid %d, config %s)", cfg.name, os.getpid(), cfg.source)
        try:
            self._communicator = Communicator.from_config(self.tars_config)
            self._remote_config = RemoteConfig.from_server_config(self._communicator, cfg)
            if self._config_files:
                await self._load_startup_configs(self._config_files)
            await _call(self.initialize)
            self._server = self._build()
            await self._server.start()
            for http in self._http.values():
                await http.start()
            if self._metrics_at is not None:
                assert self._server.stats is not None
                self._metrics = MetricsExporter(self._server.stats, *self._metrics_at)
                await self._metrics.start()
        except BaseException as exc:
            expected = isinstance(exc, (ConfigError, RemoteConfigError, OSError))
            log.error("%s failed to start: %s", cfg.name, exc,
                      exc_info=None if expected else exc)
            await self._abort_start()
            raise
        listening = [f"{st.adapter.servant} on {st.endpoint}" for st in self.server.status()]
        listening += [f"{name} (http) on {http.endpoint}" for name, http in self._http.items()]
        if self._metrics is not None:
            listening.append(f"metrics on {self._metrics.url()}")
        log.info("%s started: %s", cfg.name, "; ".join(listening) or "no adapters")

    async def _abort_start(self) -> None:
        self._aborting = True
        for http in self._http.values():
            if http._listener is not None:
                await http.stop(0)
        if self._server is not None and self._server.started_at is not None:
            await self._server.stop(0)
        if self._metrics is not None:
            await self._metrics.stop(0)
        if self._communicator is not None:
            await self._communicator.close()
        self._teardown_logs()
        assert self._closed is not None
        self._closed.set()

    def request_stop(self, deadline: float | None = None) -> None:
        """Start the graceful stop in the background (``deadline`` s, None: gracedowntimeout)."""
        self.server.request_stop(deadline)

    def _stop_requested(self, deadline: float | None) -> None:
        if self._shutdown_task is None and not self._aborting:
            self._shutdown_task = asyncio.get_running_loop().create_task(
                self._shutdown(deadline))

    async def _shutdown(self, deadline: float | None) -> None:
        name = self.config.name
        log.info("%s stopping", name)
        stops = [http.request_stop(deadline) for http in self._http.values()]
        try:
            await self.server.wait_closed()
            await asyncio.gather(*stops)
            if self._metrics is not None:  # scraped until the calls have drained
                await self._metrics.stop()
            try:
                await _call(self.destroy)
            except Exception as exc:
                log.error("%s: destroy() failed", name, exc_info=exc)
        finally:
            await self.communicator.close()
            log.info("%s stopped", name)
            self._teardown_logs()
            assert self._closed is not None
            self._closed.set()

    async def stop(self, deadline: float | None = None) -> None:
        """Stop gracefully and wait until everything is closed."""
        self.request_stop(deadline)
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Wait until a stop (or a failed start) has finished."""
        if self._closed is None:
            raise RuntimeError("the application is not started")
        await self._closed.wait()

    def _on_signal(self, sig: signal.Signals) -> None:
        log.info("received %s: stopping", sig.name)
        self.request_stop()

    async def serve(self, argv: Sequence[str] | None = None, *,
                    config: str | os.PathLike[str] | None = None) -> int:
        """Start, serve until stopped (SIGTERM/SIGINT, AdminObj shutdown), return 0."""
        await self.start(argv, config=config)
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        if self.handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                try:
                    loop.add_signal_handler(sig, self._on_signal, sig)
                except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
                    continue
                installed.append(sig)
        try:
            await self.wait_closed()
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
        return 0

    def run(self, argv: Sequence[str] | None = None, *,
            config: str | os.PathLike[str] | None = None) -> int:
        """Blocking :meth:`serve`; returns the exit status (1 with a one-line error on stderr
        when the config file is bad or the server cannot start)."""
        try:
            return asyncio.run(self.serve(argv, config=config))
        except (ConfigError, RemoteConfigError, OSError) as exc:
            who = self._config.name if self._config is not None else Path(sys.argv[0]).name
            kind = "config error" if isinstance(exc, ConfigError) else "cannot start"
            print(f"{who}: {kind}: {exc}", file=sys.stderr)
            return 1
