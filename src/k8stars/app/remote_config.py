"""Remote config files: ``tars.tarsconfig.ConfigObj`` (interface ``tars.Config``), as TarsGo.

:meth:`RemoteConfig.load` asks the config service for a file with ``loadConfigByInfo``
(appname, servername, filename, host = the node name, setdivision when set routing is on) and
saves the answer to ``<basepath>/<filename>`` (atomically). The config object is the server
key ``config`` (default ``tars.tarsconfig.ConfigObj``): a name resolved through the locator,
or a direct ``Obj@endpoint`` proxy.

:class:`RemoteConfigUnavailable` means there is no config service to ask (no ``config`` key,
no locator, the registry unreachable or knowing no endpoint of the object); callers usually
skip the file then. :class:`RemoteConfigError` (its base) means the service was asked and
failed (a non-zero ``ret``, a timeout, a bad file name).
"""

from __future__ import annotations

import os
import tempfile
from contextlib import suppress
from pathlib import Path
from typing import Any

from k8stars.tars.client import Communicator, ServantProxy
from k8stars.tars.endpoint import EndpointError, ProxySpec, parse_proxy
from k8stars.tars.errors import TarsRpcError
from k8stars.tars.idl.loader import framework
from k8stars.tars.server_config import ServerConfig

__all__ = [
    "CONFIG_INTERFACE",
    "RemoteConfig",
    "RemoteConfigError",
    "RemoteConfigUnavailable",
]

#: The ConfigF interface of ``tars.tarsconfig.ConfigObj``.
CONFIG_INTERFACE = framework().interface("tars.Config")
_ConfigInfo: Any = framework().struct("tars.ConfigInfo")


class RemoteConfigError(Exception):
    """A config file could not be fetched or saved."""


class RemoteConfigUnavailable(RemoteConfigError):
    """No config service can be reached: the file is not fetched."""


def check_filename(filename: str) -> str:
    """``filename`` if it is a plain file name (no directory part), else RemoteConfigError."""
    if (not filename or filename in (".", "..") or "/" in filename or "\\" in filename
            or "\0" in filename):
        raise RemoteConfigError(f"bad config file name {filename!r} (a plain file name is "
                                "expected)")
    return filename


class RemoteConfig:
    """Fetches config files of one server from the config service (see the module docstring).

    ``timeout`` (s) bounds each call (None: the communicator's sync-invoke-timeout).
    """

    def __init__(self, communicator: Communicator, *, obj: str, app: str, server: str,
                 basepath: str | os.PathLike[str] = ".", host: str = "",
                 setdivision: str = "", timeout: float | None = None) -> None:
        self.communicator = communicator
        self.obj = obj.strip()
        self.app = app
        self.server = server
        self.basepath = Path(basepath or ".")
        self.host = host
        self.setdivision = setdivision
        self.timeout = timeout

    @classmethod
    def from_server_config(cls, communicator: Communicator, cfg: ServerConfig) -> RemoteConfig:
        """Settings from the config file: ``config``, ``basepath``, node name, set."""
        return cls(communicator, obj=cfg.config, app=cfg.app, server=cfg.server,
                   basepath=cfg.basepath or ".", host=cfg.node_name or cfg.localip,
                   setdivision=cfg.setdivision if cfg.enableset else "")

    async def resolve(self) -> ServantProxy:
        """A proxy to a live config service, or RemoteConfigUnavailable saying why not."""
        if not self.obj:
            raise RemoteConfigUnavailable("no config service is configured (server key "
                                          "'config' is empty)")
        try:
            spec = parse_proxy(self.obj)
        except EndpointError as exc:
            raise RemoteConfigUnavailable(f"bad config object {self.obj!r}: {exc}") from None
        if spec.is_direct:
            return self.communicator.proxy(CONFIG_INTERFACE, spec)
        locator = self.communicator.locator
        if locator is None:
            raise RemoteConfigUnavailable(f"{spec.obj_name} cannot be resolved: no locator")
        try:
            endpoints = await locator.find(spec.obj_name)
        except TarsRpcError as exc:
            raise RemoteConfigUnavailable(f"{spec.obj_name} cannot be resolved: the registry "
                                          f"query failed: {exc}") from None
        if not endpoints:
            raise RemoteConfigUnavailable(f"{spec.obj_name} is not served: the registry knows "
                                          "no active endpoint")
        return self.communicator.proxy(CONFIG_INTERFACE, ProxySpec(spec.obj_name, endpoints))

    async def fetch(self, filename: str, proxy: ServantProxy | None = None) -> str:
        """The content of ``filename`` for this server (not saved)."""
        check_filename(filename)
        if proxy is None:
            proxy = await self.resolve()
        info = _ConfigInfo(appname=self.app, servername=self.server, filename=filename,
                           bAppOnly=False, host=self.host, setdivision=self.setdivision)
        try:
            ret, content = await proxy.loadConfigByInfo(info, _timeout=self.timeout)
        except TarsRpcError as exc:
            raise RemoteConfigError(f"{proxy.obj_name}.loadConfigByInfo({filename}) failed: "
                                    f"{exc}") from exc
        if ret != 0:
            raise RemoteConfigError(f"{proxy.obj_name} answered {ret} for {filename}")
        return str(content)

    async def load(self, filename: str, proxy: ServantProxy | None = None) -> Path:
        """Fetch ``filename`` and save it to ``basepath/filename``; the path written."""
        content = await self.fetch(filename, proxy)
        return self.save(filename, content)

    def save(self, filename: str, content: str) -> Path:
        """Write ``content`` to ``basepath/filename`` atomically."""
        path = self.basepath / check_filename(filename)
        try:
            self.basepath.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{filename}.", dir=self.basepath)
            try:
                with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
                    fh.write(content)
                os.chmod(tmp, 0o644)
                os.replace(tmp, path)
            except BaseException:
                with suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            raise RemoteConfigError(f"cannot save {path}: {exc}") from exc
        return path

