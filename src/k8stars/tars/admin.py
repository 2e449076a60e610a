"""AdminObj: the ``tars.AdminF`` servant every server offers on its ``local`` endpoint.

``notify(command)`` splits the command at its first space; the first word picks the
handler, which receives the whole command string. Built-in commands::

    tars.help                 the commands and what they do
    tars.viewstatus           app, server, pid, uptime, adapters, connections, calls in flight
    tars.connection           the open connections of each adapter
    tars.setloglevel LEVEL    DEBUG, INFO, WARN, ERROR or NONE (case-insensitive)
    tars.loadconfig FILE      fetch FILE from the config service (needs ``config_loader``)
    tars.viewversion          the k8stars version
    prestop                   run the application's prestop hooks

Applications add commands with :meth:`AdminServant.register_command` and prestop hooks with
:meth:`AdminServant.add_prestop_hook` (handlers may be sync or async). An unknown command is
answered ``"<command> not support now! (unknown command, see tars.help)"``; a handler that
raises is answered with its error text. ``shutdown()`` starts the server's graceful stop in
the background and returns at once.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from .. import __version__
from .idl.loader import framework
from .logs import set_log_level
from .servant import Servant

if TYPE_CHECKING:
    from .server import Server
    from .server_config import ServerConfig

__all__ = ["ADMIN_INTERFACE", "ADMIN_SERVANT", "AdminServant", "CommandHandler"]

log = logging.getLogger("k8stars.tars.admin")

#: The servant name the node and ``tarscli`` call.
ADMIN_SERVANT = "AdminObj"
ADMIN_INTERFACE = framework().interface("tars.AdminF")

#: ``handler(full_command)`` → the answer (None means ``"<command> succ"``).
CommandHandler = Callable[[str], "str | Awaitable[str | None] | None"]
PrestopHook = Callable[[], "object | Awaitable[object]"]
ConfigLoader = Callable[[str], "str | Awaitable[str]"]


async def _call(fn: Callable[..., Any], *args: Any) -> Any:
    result = fn(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class AdminServant(Servant, interface=ADMIN_INTERFACE):
    """The AdminF implementation of one :class:`~k8stars.tars.server.Server`.

    ``loggers`` are the logger names ``tars.setloglevel`` changes (root by default);
    ``config_loader(filename)`` fetches a file from the config service (none yet: the
    command then answers that no config service is available).
    """

    def __init__(self, server: Server, *, config: ServerConfig | None = None,
                 loggers: Sequence[str] = ("",),
                 config_loader: ConfigLoader | None = None) -> None:
        self.server = server
        self.config = config
        self.loggers = tuple(loggers)
        self.config_loader = config_loader
        self._commands: dict[str, tuple[CommandHandler, str]] = {}
        self._prestop: list[PrestopHook] = []
        for name, handler, text in (
            ("tars.help", self._help, "list the commands"),
            ("tars.viewstatus", self._viewstatus, "server status"),
            ("tars.connection", self._connection, "open connections per adapter"),
            ("tars.setloglevel", self._setloglevel, "set the log level: DEBUG, INFO, WARN, "
                                                    "ERROR or NONE"),
            ("tars.loadconfig", self._loadconfig, "fetch FILE from the config service"),
            ("tars.viewversion", self._viewversion, "the k8stars version"),
            ("prestop", self._run_prestop, "run the application's prestop hooks"),
        ):
            self.register_command(name, handler, text)

    # -- registration --------------------------------------------------------------------

    def register_command(self, name: str, handler: CommandHandler, help: str = "") -> None:
        """Answer ``notify("<name> ...")`` with ``handler(full_command)``."""
        if not name or " " in name:
            raise ValueError(f"bad command name {name!r}")
        if name in self._commands:
            raise ValueError(f"admin command {name!r} is already registered")
        self._commands[name] = (handler, help)

    def add_prestop_hook(self, hook: PrestopHook) -> None:
        """Run ``hook()`` (sync or async) on the ``prestop`` command, in registration order."""
        self._prestop.append(hook)

    # -- AdminF --------------------------------------------------------------------------

    def shutdown(self) -> None:
        log.info("AdminObj.shutdown: stopping the server")
        self.server.request_stop()

    def getPid(self) -> int:
        return os.getpid()

    async def notify(self, command: str) -> str:
        command = command.strip()
        name = command.partition(" ")[0]
        log.info("AdminObj.notify: %s", command)
        found = self._commands.get(name)
        if found is None:
            return f"{command} not support now! (unknown command, see tars.help)"
        try:
            answer = await _call(found[0], command)
        except Exception as exc:
            log.error("admin command %r failed", command, exc_info=exc)
            return f"{command} failed: {_error_text(exc)}"
        return f"{command} succ" if answer is None else str(answer)

    # -- built-in commands ---------------------------------------------------------------

    def _help(self, command: str) -> str:
        return "\n".join(f"{name}: {text}" if text else name
                         for name, (_, text) in sorted(self._commands.items()))

    def _viewstatus(self, command: str) -> str:
        server = self.server
        lines = [f"app: {server.app}", f"server: {server.server}", f"pid: {os.getpid()}",
                 f"uptime: {server.uptime:.1f}s", f"stopping: {server.stopping}"]
        for st in server.status():
            lines.append(f"adapter {st.adapter.name}: servant={st.adapter.servant} "
                         f"endpoint={st.endpoint} connections={len(st.peers)} "
                         f"inflight={st.inflight} queuecap={st.adapter.queuecap} "
                         f"maxconns={st.adapter.maxconns}")
        return "\n".join(lines)

    def _connection(self, command: str) -> str:
        lines = []
        for st in self.server.status():
            lines.append(f"adapter {st.adapter.name} ({st.endpoint}): "
                         f"{len(st.peers)} connection(s)")
            lines.extend(f"  {peer}" for peer in st.peers)
        return "\n".join(lines)

    def _setloglevel(self, command: str) -> str:
        level = command.partition(" ")[2].strip()
        if not level:
            return f"{command} failed: missing loglevel!"
        try:
            set_log_level(level, self.loggers)
        except ValueError:
            return f"tars.setloglevel failed: unknown log level [{level}]!"
        return f"{command} succ"

    async def _loadconfig(self, command: str) -> str:
        filename = command.partition(" ")[2].strip()
        if not filename:
            return f"{command} failed: missing file name!"
        if self.config_loader is None:
            where = self.config.config if self.config is not None and self.config.config else ""
            detail = f" (config={where})" if where else ""
            return (f"Getconfig Error!: {filename}: no config service client is "
                    f"available{detail}")
        try:
            result = await _call(self.config_loader, filename)
        except Exception as exc:
            log.error("tars.loadconfig %s failed", filename, exc_info=exc)
            return f"Getconfig Error!: {filename}: {_error_text(exc)}"
        return f"Getconfig Success!: {filename}" + (f"\n{result}" if result else "")

    def _viewversion(self, command: str) -> str:
        return f"k8stars {__version__}"

    async def _run_prestop(self, command: str) -> str:
        if not self._prestop:
            return "prestop: no hooks registered"
        failures = []
        for hook in self._prestop:
            try:
                await _call(hook)
            except Exception as exc:
                log.error("prestop hook %r failed", hook, exc_info=exc)
                failures.append(_error_text(exc))
        text = f"prestop: ran {len(self._prestop)} hook(s)"
        if failures:
            text += f", {len(failures)} failed: " + "; ".join(failures)
        return text
