"""Servants: user classes implementing an IDL interface, and the ``Current`` of a call.

::

    calc = load("InteropRpc.tars").interface("Interop.Calc")

    class CalcImp(Servant, interface=calc):
        async def add(self, a: int, b: int) -> int:
            return a + b

        def divide(self, a: int, b: int) -> tuple[int, int, int]:  # sync methods are fine
            return 0, a // b, a % b

In parameters arrive positionally in declaration order. A method returns the list
``[return value if not void] + [out params in order]``: None when empty, the value itself
when it has one element, otherwise a tuple. Raise :class:`~k8stars.tars.errors.TarsRpcError`
to answer with a chosen code; any other exception is answered with -99.

A method may instead return :class:`RawResult` (the result already encoded as the response
``sBuffer``, e.g. a cached answer): it is sent as is, without encoding (TUP calls decode it
once and answer by name).

This module is sans-IO: it turns argument bytes into calls and results into bytes
(:class:`MethodEntry`); the server does the rest.
"""

from __future__ import annotations

import inspect
import operator
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, ClassVar, Protocol

from .codec import Struct
from .errors import TarsDecodeError, TarsEncodeError
from .idl.loader import RETURN_FIELD, Interface, Method, Param, python_name
from .packet import RequestPacket, UniAttribute

__all__ = ["Current", "MethodEntry", "RawResult", "Servant", "current"]

_MISSING: Any = object()


class Peer(Protocol):
    """Where a call came from: a connection or a datagram's sender (``peer``: host, port)."""

    @property
    def peer(self) -> tuple[str, int] | None: ...


class Current:
    """What a servant method may know about the call it serves (see :func:`current`).

    ``response_context`` is sent back as the response ``context``; ``response_status``
    is merged into the response ``status`` map.
    """

    __slots__ = ("_conn", "_response_context", "_response_status", "adapter", "request",
                 "servant_name")

    def __init__(self, request: RequestPacket, adapter: str,
                 conn: Peer | None = None) -> None:
        self.request = request
        self.servant_name = request.sServantName
        self.adapter = adapter
        self._conn = conn
        self._response_context: dict[str, str] | None = None
        self._response_status: dict[str, str] | None = None

    @property
    def func_name(self) -> str:
        return self.request.sFuncName

    @property
    def request_id(self) -> int:
        return self.request.iRequestId

    @property
    def context(self) -> dict[str, str]:
        """The request context sent by the caller."""
        return self.request.context

    @property
    def status(self) -> dict[str, str]:
        """The request status map (framework keys such as ``STATUS_DYED_KEY``)."""
        return self.request.status

    @property
    def timeout(self) -> int:
        """The caller's timeout in ms (0 when unknown)."""
        return self.request.iTimeout

    @property
    def is_oneway(self) -> bool:
        return self.request.cPacketType == 1

    @property
    def host(self) -> str:
        """The peer's address ("" when unknown)."""
        peer = self._conn.peer if self._conn is not None else None
        return peer[0] if peer else ""

    @property
    def port(self) -> int:
        peer = self._conn.peer if self._conn is not None else None
        return peer[1] if peer else 0

    @property
    def response_context(self) -> dict[str, str]:
        """Mutable; sent back with the response."""
        if self._response_context is None:
            self._response_context = {}
        return self._response_context

    @property
    def response_status(self) -> dict[str, str]:
        """Mutable; merged into the response ``status``."""
        if self._response_status is None:
            self._response_status = {}
        return self._response_status

    def __repr__(self) -> str:
        return (f"Current({self.servant_name}.{self.func_name} id={self.request_id} "
                f"from {self.host}:{self.port})")


_CURRENT: ContextVar[Current] = ContextVar("k8stars_tars_current")


def current() -> Current:
    """The :class:`Current` of the call being served; RuntimeError outside a call."""
    try:
        return _CURRENT.get()
    except LookupError:
        raise RuntimeError("current() called outside a TARS servant call") from None


class RawResult:
    """A method's result already encoded: the ``sBuffer`` of a TARS (iVersion 1) answer,
    i.e. the method's result struct (return value at tag 0, out params at their tags).

    The server sends ``body`` as is; nothing is checked, so it must be a valid encoding.
    """

    __slots__ = ("body",)

    def __init__(self, body: bytes) -> None:
        self.body = body

    def __repr__(self) -> str:
        return f"RawResult({len(self.body)} bytes)"


def _tuple_getter(attrs: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    if not attrs:
        return lambda obj: ()
    if len(attrs) == 1:
        get = operator.attrgetter(attrs[0])
        return lambda obj: (get(obj),)
    return operator.attrgetter(*attrs)


class MethodEntry:
    """One servant method ready for dispatch: argument decoding and result encoding."""

    __slots__ = ("_get_args", "_result_names", "_result_types", "attr", "is_async", "method",
                 "n_results", "result_cls")

    def __init__(self, method: Method, attr: str, is_async: bool) -> None:
        self.method = method
        self.attr = attr
        self.is_async = is_async
        self._get_args = _tuple_getter(tuple(p.attr for p in method.in_params))
        self.result_cls = method.result
        outs: list[tuple[str, Any]] = [(p.attr, p.type) for p in method.out_params]
        if method.return_type is not None:
            outs.insert(0, (RETURN_FIELD, method.return_type))
        self._result_names = tuple(n for n, _ in outs)
        self._result_types = tuple(t for _, t in outs)
        self.n_results = len(outs)

    # -- TARS (iVersion 1) --------------------------------------------------------------

    def decode_args(self, buffer: bytes) -> tuple[Any, ...]:
        """The in-parameters from a request ``sBuffer`` (TarsDecodeError when malformed)."""
        return self._get_args(self.method.args.tars_decode(buffer))

    def _values(self, result: Any) -> tuple[Any, ...]:
        n = self.n_results
        if n == 1:
            return (result,)
        if n == 0:
            return ()
        if type(result) is not tuple or len(result) != n:
            names = ", ".join(self._result_names)
            raise TarsEncodeError(f"{self.method.name} must return a tuple of {n} values "
                                  f"({names}), got {type(result).__name__}")
        return result

    def encode_result(self, result: Any) -> bytes:
        """The response ``sBuffer`` for what the implementation returned."""
        if type(result) is RawResult:
            return result.body
        n = self.n_results
        if n == 0:
            return b""
        cls = self.result_cls
        obj: Struct = cls.__new__(cls)
        if n == 1:
            setattr(obj, self._result_names[0], result)
        else:
            for name, value in zip(self._result_names, self._values(result), strict=True):
                setattr(obj, name, value)
        return obj.tars_encode()

    # -- TUP (iVersion 3) ---------------------------------------------------------------

    def decode_tup_args(self, buffer: bytes) -> tuple[Any, ...]:
        """The in-parameters from a TUP v3 body, by parameter name."""
        attr = UniAttribute.decode(buffer)
        values = []
        for p in self.method.in_params:
            value = attr.get(p.name, p.type, _MISSING)
            if value is _MISSING:
                raise TarsDecodeError(f"TUP argument {p.name!r} is missing")
            values.append(value)
        return tuple(values)

    def encode_tup_result(self, result: Any) -> bytes:
        """A TUP v3 body: the return value under ``""`` and ``tars_ret``, outs by name."""
        if type(result) is RawResult:
            result = self._decode_raw(result.body)
        attr = UniAttribute()
        params: dict[str, Param] = {p.attr: p for p in self.method.out_params}
        values = self._values(result)
        for name, t, value in zip(self._result_names, self._result_types, values, strict=True):
            if name == RETURN_FIELD:
                attr.put("", t, value)
                attr.put(RETURN_FIELD, t, value)
            else:
                attr.put(params[name].name, t, value)
        return attr.encode()


    def _decode_raw(self, body: bytes) -> Any:
        """What the implementation would have returned for a :class:`RawResult`."""
        try:
            obj = self.result_cls.tars_decode(body)
        except TarsDecodeError as exc:
            raise TarsEncodeError(f"{self.method.name}: bad RawResult: {exc}") from None
        values = tuple(getattr(obj, name) for name in self._result_names)
        if self.n_results == 0:
            return None
        return values[0] if self.n_results == 1 else values


class Servant:
    """Base class of servant implementations; subclass with ``interface=<Interface>``.

    Creating the subclass checks that every operation of the interface is implemented
    and accepts its in-parameters; a subclass without ``interface`` inherits its base's.
    """

    tars_interface: ClassVar[Interface | None] = None
    tars_methods: ClassVar[dict[str, MethodEntry]] = {}

    def __init_subclass__(cls, interface: Interface | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if interface is not None:
            cls.tars_interface = interface
        if cls.tars_interface is not None:
            cls.tars_methods = _build_methods(cls, cls.tars_interface)


def _build_methods(cls: type, interface: Interface) -> dict[str, MethodEntry]:
    entries: dict[str, MethodEntry] = {}
    missing: list[str] = []
    for name, method in interface.methods.items():
        attr = python_name(name)
        fn = getattr(cls, attr, None)
        if fn is None or not callable(fn):
            missing.append(name)
            continue
        _check_signature(cls, attr, fn, method)
        entries[name] = MethodEntry(method, attr, inspect.iscoroutinefunction(fn))
    if missing:
        raise TypeError(f"{cls.__qualname__} does not implement {interface.qualified_name} "
                        f"method(s): {', '.join(missing)}")
    return entries


def _check_signature(cls: type, attr: str, fn: Any, method: Method) -> None:
    params = [p.attr for p in method.in_params]
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: trust them
        return
    try:
        sig.bind(None, *params)
    except TypeError:
        raise TypeError(f"{cls.__qualname__}.{attr}{sig} cannot take the in-parameters "
                        f"({', '.join(params)}) of {method.name}") from None
