"""The Python TARS service framework: a ``.tars`` file plus one class is a service.

:class:`Application` runs a server from the config file ``tarscli genconf`` writes; an
:class:`HttpApp` serves HTTP on a ``protocol=not_tars`` adapter; :class:`RemoteConfig` fetches
config files from ``tars.tarsconfig.ConfigObj``. The user guide is ``docs/guide.md``.

For convenience :class:`~k8stars.tars.servant.Servant`, :func:`~k8stars.tars.servant.current`
and the IDL loader :func:`~k8stars.tars.idl.loader.load` are re-exported, so a service needs
one import line.
"""

from __future__ import annotations

from k8stars.tars.idl.loader import load
from k8stars.tars.servant import Servant, current

from .application import Application, config_path_from_argv
from .http import HttpApp, HttpError, HttpServer, Request, Response
from .remote_config import RemoteConfig, RemoteConfigError, RemoteConfigUnavailable

__all__ = [
    "Application",
    "HttpApp",
    "HttpError",
    "HttpServer",
    "RemoteConfig",
    "RemoteConfigError",
    "RemoteConfigUnavailable",
    "Request",
    "Response",
    "Servant",
    "config_path_from_argv",
    "current",
    "load",
]
