"""Errors raised by the ``.tars`` IDL front end.

Exception tree::

    IdlError                 any user mistake in an IDL file (has path, line, column)
    ├── IdlSyntaxError       lexer and parser: malformed or unsupported text
    └── IdlResolveError      resolver: unknown names, duplicates, bad defaults, missing includes
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

__all__ = ["IdlError", "IdlResolveError", "IdlSyntaxError", "Location"]

_E = TypeVar("_E", bound="IdlError")


@dataclass(frozen=True, slots=True)
class Location:
    """A position in a source file; ``line`` and ``column`` are 1-based (0 = whole file)."""

    path: str
    line: int
    column: int

    def __str__(self) -> str:
        if self.line <= 0:
            return self.path
        return f"{self.path}:{self.line}:{self.column}"


class IdlError(Exception):
    """Base class of all IDL errors; ``str(err)`` is ``path:line:col: message``.

    For problems that concern a whole file (for example the root file does not exist)
    ``line`` and ``column`` are 0 and the text is ``path: message``.
    """

    path: str
    line: int
    column: int
    message: str

    def __init__(self, path: str, line: int, column: int, message: str) -> None:
        super().__init__(path, line, column, message)
        self.path = path
        self.line = line
        self.column = column
        self.message = message

    @classmethod
    def at(cls: type[_E], loc: Location, message: str) -> _E:
        """Build an error of this class located at ``loc``."""
        return cls(loc.path, loc.line, loc.column, message)

    @property
    def location(self) -> Location:
        """The error position as a :class:`Location`."""
        return Location(self.path, self.line, self.column)

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class IdlSyntaxError(IdlError):
    """Malformed or unsupported IDL text (lexer or parser)."""


class IdlResolveError(IdlError):
    """A semantic error: unknown type, duplicate tag or name, bad default, missing include."""
