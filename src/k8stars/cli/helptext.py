"""The text of ``tarscli help [SUBCOMMAND]``, built from the subcommand registry and the
variable table of :mod:`k8stars.cli.settings` (so it cannot drift from what is parsed)."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Protocol

from .settings import DURATION_FORMS, VARIABLES, Var, variables_for

__all__ = ["render_help"]

_WIDTH = 100
_INDENT = " " * 6

_RULES = (
    "Empty variables count as unset (except TARS_SET_ID, where empty clears the set).",
    "Durations: {durations}; a bare number other than 0 is rejected.",
    "Files: $TARS_PATH/bin/_server_meta.yaml (input), conf/<server>.conf and "
    "data/server_info.yaml (written by genconf), data/check_status (supervisor, hzcheck), "
    "data/prestop (prestop ran), data/stop (you: no restarts), log/<app>.<server>.out (the "
    "service's output), log/supervisor.log.",
    "Exit status: 0 ok, 1 failed (e.g. not ready), 2 bad input or usage; errors are one line "
    'on stderr: "tarscli <subcommand>: <message>".',
)


class CommandLike(Protocol):
    """What help needs of a :class:`k8stars.cli.main.Command`."""

    @property
    def name(self) -> str: ...
    @property
    def usage(self) -> str: ...
    @property
    def summary(self) -> str: ...


def _var_lines(var: Var, show_commands: bool) -> list[str]:
    head = f"  {var.name:<28} default {var.shown}"
    meaning = var.meaning
    if show_commands:
        meaning += f" [{', '.join(var.commands)}]"
    return [head, *_wrap(meaning, _INDENT)]


def _wrap(text: str, indent: str, first: str | None = None) -> list[str]:
    return textwrap.wrap(text, _WIDTH, initial_indent=indent if first is None else first,
                         subsequent_indent=indent, break_on_hyphens=False,
                         break_long_words=False)


def _rules() -> list[str]:
    lines = ["Rules:"]
    for rule in _RULES:
        lines += _wrap(rule.format(durations=DURATION_FORMS), "    ", first="  ")
    return [*lines, ""]


def _synopsis(command: CommandLike) -> str:
    return f"tarscli {command.name}" + (f" {command.usage}" if command.usage else "")


def render_help(commands: Mapping[str, CommandLike], only: str | None = None) -> str:
    """The whole help, or the help of subcommand ``only`` (a key of ``commands``)."""
    from k8stars import __version__

    lines: list[str] = []
    if only is not None:
        command = commands[only]
        lines += [f"{_synopsis(command)}", "", f"  {command.summary}", ""]
        own = variables_for(only)
        if own:
            lines.append("Environment variables:")
            for var in own:
                lines += _var_lines(var, show_commands=False)
        else:
            lines.append("Reads no environment variables.")
        lines.append("")
        return "\n".join(lines + _rules())

    lines += [
        f"tarscli {__version__} (k8stars): runs a TARS server as a well-behaved Kubernetes pod.",
        "",
        "Usage: tarscli SUBCOMMAND [ARGS...]    tarscli help [SUBCOMMAND]",
        "",
        "Subcommands:",
    ]
    width = max(len(_synopsis(c)) for c in commands.values()) - len("tarscli ")
    for command in commands.values():
        synopsis = _synopsis(command)[len("tarscli "):]
        lines.append(f"  {synopsis:<{width}}  {command.summary}")
    lines += ["", "Environment variables (default; [subcommands that read it]):"]
    for var in VARIABLES:
        lines += _var_lines(var, show_commands=True)
    lines.append("")
    return "\n".join(lines + _rules())
