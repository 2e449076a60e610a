"""Errors of the TARS stack: one tree, each class carrying what went wrong and where.

::

    TarsError
     ├── TarsCodecError
     │    ├── TarsDecodeError     malformed or truncated bytes: tag, types, offset
     │    └── TarsEncodeError     a value that cannot be written: field path and reason
     ├── TarsFrameError           a bad or oversized length prefix: the stream is unusable
     └── TarsRpcError             a call that failed; ``code`` is the TARS return code
          ├── TarsTimeoutError    no answer within the call's timeout (-7)
          ├── TarsConnectError    the endpoint refused or dropped the connection (-8)
          ├── TarsNoEndpointError no active endpoint is known for the object (-10)
          └── TarsRemoteError     the server answered with a non-zero iRet (its code, sResultDesc)
"""

from __future__ import annotations

__all__ = [
    "TarsCodecError",
    "TarsConnectError",
    "TarsDecodeError",
    "TarsEncodeError",
    "TarsError",
    "TarsFrameError",
    "TarsNoEndpointError",
    "TarsRemoteError",
    "TarsRpcError",
    "TarsTimeoutError",
]


class TarsError(Exception):
    """Base of every error raised by k8stars' TARS stack."""


class TarsCodecError(TarsError):
    """The TARS binary encoding could not be read or written."""


class TarsDecodeError(TarsCodecError):
    """Bytes that are not a valid encoding of the expected value.

    ``tag`` is the field tag being read (None when unknown), ``expected`` and ``found`` name
    the declared and the wire type, and ``offset`` is the byte offset in the input.
    """

    def __init__(
        self,
        reason: str,
        *,
        tag: int | None = None,
        expected: str | None = None,
        found: str | None = None,
        offset: int | None = None,
        struct: str | None = None,
    ) -> None:
        self.reason = reason
        self.tag = tag
        self.expected = expected
        self.found = found
        self.offset = offset
        self.struct = struct
        super().__init__(self._describe())

    def _describe(self) -> str:
        parts = [self.reason]
        where = []
        if self.struct is not None:
            where.append(self.struct)
        if self.tag is not None:
            where.append(f"tag {self.tag}")
        if self.expected is not None:
            where.append(f"expected {self.expected}")
        if self.found is not None:
            where.append(f"found {self.found}")
        if self.offset is not None:
            where.append(f"at byte {self.offset}")
        if where:
            parts.append("(" + ", ".join(where) + ")")
        return " ".join(parts)


class TarsEncodeError(TarsCodecError):
    """A value that cannot be encoded; ``path`` names the field, outermost first."""

    def __init__(self, reason: str, path: list[str] | None = None) -> None:
        self.reason = reason
        self.path: list[str] = path if path is not None else []
        super().__init__(reason)

    def __str__(self) -> str:
        if not self.path:
            return self.reason
        return f"{'.'.join(self.path)}: {self.reason}"


class TarsFrameError(TarsError):
    """A frame whose length prefix is invalid or exceeds the configured maximum."""


class TarsRpcError(TarsError):
    """A remote call that did not succeed; ``code`` is its TARS return code (``iRet``)."""

    default_code = -99

    def __init__(self, message: str, code: int | None = None) -> None:
        self.code = self.default_code if code is None else code
        self.message = message
        super().__init__(f"{message} (code {self.code})")


class TarsTimeoutError(TarsRpcError):
    """No response arrived within the call's timeout."""

    default_code = -7


class TarsConnectError(TarsRpcError):
    """The connection to the endpoint could not be made or was lost."""

    default_code = -8


class TarsNoEndpointError(TarsRpcError):
    """No active endpoint is known for the object."""

    default_code = -10


class TarsRemoteError(TarsRpcError):
    """The server answered with a non-zero ``iRet``; ``message`` is its ``sResultDesc``."""
