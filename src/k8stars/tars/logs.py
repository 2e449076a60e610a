"""Server log files and levels, with the standard :mod:`logging` package only.

:func:`setup_logging` writes ``<logpath>/<app>.<server>.log``, rotated at ``logsize`` bytes
with ``lognum`` old files kept (``.1`` is the newest); :func:`set_log_level` changes the
level at run time (what ``tars.setloglevel`` does). TARS level names: DEBUG, INFO, WARN,
ERROR and NONE (nothing is logged).
"""

from __future__ import annotations

import logging
import logging.handlers
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "LOG_FORMAT",
    "NONE",
    "log_file_path",
    "parse_level",
    "set_log_level",
    "setup_logging",
]

#: The level that silences a logger (``tars.setloglevel NONE``).
NONE = logging.CRITICAL + 10
#: ``time|pid|level|logger|message``, close to the TARS log line.
LOG_FORMAT = "%(asctime)s|%(process)d|%(levelname)s|%(name)s|%(message)s"

_LEVELS = {
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "NONE": NONE,
}


def parse_level(name: str) -> int:
    """The :mod:`logging` level of a TARS level name (case-insensitive); ValueError if unknown."""
    try:
        return _LEVELS[name.strip().upper()]
    except KeyError:
        raise ValueError(f"unknown log level {name!r} (expected DEBUG, INFO, WARN, ERROR or "
                         "NONE)") from None


def set_log_level(name: str, loggers: Iterable[str] = ("",)) -> int:
    """Set the level of ``loggers`` (default: the root logger) and return it."""
    level = parse_level(name)
    for logger in loggers:
        logging.getLogger(logger or None).setLevel(level)
    return level


def log_file_path(logpath: str | os.PathLike[str], app: str, server: str) -> Path:
    """``<logpath>/<app>.<server>.log``."""
    return Path(logpath) / f"{app}.{server}.log"


def setup_logging(
    logpath: str | os.PathLike[str],
    app: str,
    server: str,
    *,
    level: str = "DEBUG",
    max_bytes: int = 100 * 1024 * 1024,
    backups: int = 10,
    logger: str = "",
) -> logging.Handler:
    """Attach a rotating file handler to ``logger`` (root by default) and set its level.

    Creates ``logpath`` if needed. Returns the handler, so that a caller can remove it.
    """
    path = log_file_path(logpath, app, server)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=max(max_bytes, 0), backupCount=max(backups, 0), encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    target = logging.getLogger(logger or None)
    target.addHandler(handler)
    set_log_level(level, (logger,))
    return handler
