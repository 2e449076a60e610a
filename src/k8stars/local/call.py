"""``k8stars call`` (a generic TARS client from the IDL) and ``k8stars http``, through the registry.

``call SERVANT METHOD ARGS...``: the interface comes from the ``.tars`` files of the service's
directory (or ``--idl``): the one interface that has ``METHOD`` (``--interface`` when several
do). Each argument is a JSON value for the method's in parameter at that position
(:func:`k8stars.tars.codec.plain.from_plain`); a string parameter also takes a bare word
(``SayHello Ada``). The proxy has no endpoint: the communicator asks the locator, exactly as
any client does. The results (return value, then out parameters) are printed as JSON: the
value alone when there is one, else an object ``{"return": ..., "<out name>": ...}``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..tars.client import Communicator
from ..tars.codec.plain import PlainValueError, from_plain, to_plain
from ..tars.codec.types import STRING
from ..tars.idl.errors import IdlError
from ..tars.idl.loader import Interface, Method, load
from .spec import UserError

__all__ = ["call", "find_method", "parse_args", "resolve_http"]


def find_method(idl_files: list[str], method: str, interface: str | None = None
                ) -> tuple[Interface, Method]:
    """The interface (and its method) that the call uses."""
    if not idl_files:
        raise UserError("no .tars file to read the interface from (give --idl FILE)")
    candidates: list[Interface] = []
    for path in idl_files:
        try:
            idl = load(path)
        except (IdlError, OSError) as exc:
            raise UserError(f"{path}: {exc}") from None
        candidates.extend(idl.interfaces.values())
    if interface is not None:
        chosen = [i for i in candidates if interface in (i.qualified_name, i.name)]
        if not chosen:
            names = ", ".join(i.qualified_name for i in candidates) or "none"
            raise UserError(f"no interface {interface!r} in {', '.join(idl_files)} "
                            f"(interfaces: {names})")
        candidates = chosen[:1]
    with_method = [i for i in candidates if method in i.methods]
    if not with_method:
        known = sorted({m for i in candidates for m in i.methods})
        raise UserError(f"no method {method!r} in {', '.join(i.qualified_name for i in candidates)}"
                        f" (methods: {', '.join(known) or 'none'})")
    if len(with_method) > 1:
        raise UserError(f"method {method!r} is in several interfaces "
                        f"({', '.join(i.qualified_name for i in with_method)}): "
                        "choose one with --interface")
    return with_method[0], with_method[0].methods[method]


def parse_args(method: Method, args: list[str]) -> list[Any]:
    """The in parameters from command-line words (JSON values)."""
    params = method.in_params
    if len(args) != len(params):
        sig = ", ".join(f"{p.name}" for p in params)
        raise UserError(f"{method.name}({sig}) takes {len(params)} argument(s), "
                        f"{len(args)} given")
    values = []
    for param, text in zip(params, args, strict=True):
        try:
            data = json.loads(text)
        except ValueError:
            if param.type != STRING:
                raise UserError(f"argument {param.name}: {text!r} is not a JSON value") from None
            data = text
        if param.type == STRING and not isinstance(data, str):
            data = text  # `SayHello 42` means the string "42"
        try:
            values.append(from_plain(data, param.type, param.name))
        except PlainValueError as exc:
            raise UserError(f"argument {exc}") from None
    return values


def result_json(method: Method, result: Any) -> Any:
    outputs: list[tuple[str, Any]] = []
    if method.return_type is not None:
        outputs.append(("return", method.return_type))
    outputs.extend((p.name, p.type) for p in method.out_params)
    if not outputs:
        return None
    values = (result,) if len(outputs) == 1 else tuple(result)
    plain = {name: to_plain(value, t) for (name, t), value in zip(outputs, values, strict=True)}
    return next(iter(plain.values())) if len(plain) == 1 else plain


async def call(locator: str, servant: str, interface: Interface, method: Method,
               values: list[Any], timeout_ms: int = 5000) -> Any:
    async with Communicator(locator=locator, sync_invoke_timeout=timeout_ms) as comm:
        proxy = comm.proxy(interface, servant)
        result = await proxy.method(method.name)(*values)
    return result_json(method, result)


async def resolve_http(locator: str, servant: str) -> list[tuple[str, int]]:
    """The active endpoints of ``servant`` from the registry (QueryF), as (host, port)."""
    from ..tars.idl.loader import framework

    async with Communicator(locator=locator, sync_invoke_timeout=3000) as comm:
        query = comm.proxy(framework().interface("tars.QueryF"), locator)
        _, active, _ = await query.findObjectById4All(servant)
    return [(e.host, e.port) for e in active]


def idl_files_of(directory: str) -> list[str]:
    return sorted(str(p) for p in Path(directory).glob("*.tars"))
