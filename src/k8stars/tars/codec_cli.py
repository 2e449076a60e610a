"""``tars-codec``: encode, decode and inspect TARS data from the command line.

    tars-codec types  FILE.tars                  list the structs, enums and interfaces
    tars-codec encode FILE.tars Module.Type JSON   print the encoding as hex
    tars-codec decode FILE.tars Module.Type HEX    print the value as JSON
    tars-codec dump   HEX                          show any encoding without a schema

JSON values use the lossless mapping of :mod:`k8stars.tars.codec.plain`. ``-`` reads the JSON
or hex argument from standard input. ``-I DIR`` adds an include directory.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .codec import Struct, StructType
from .codec.dump import TaggedValue, dump
from .codec.plain import PlainValueError, struct_from_plain, to_plain
from .errors import TarsCodecError
from .idl import IdlError
from .idl.loader import TarsIdl, load

__all__ = ["main"]


class UsageError(Exception):
    """A mistake in the command line or its arguments; printed as one line."""


def _argument(value: str) -> str:
    return sys.stdin.read().strip() if value == "-" else value


def _hex(text: str) -> bytes:
    cleaned = "".join(text.split())
    try:
        return bytes.fromhex(cleaned.removeprefix("0x"))
    except ValueError:
        raise UsageError(f"not a hex string: {text[:40]!r}") from None


def _load(path: str, include_dirs: Sequence[str]) -> TarsIdl:
    return load(path, include_dirs)


def _struct(idl: TarsIdl, name: str) -> type[Struct]:
    try:
        return idl.struct(name)
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from None


def _types(idl: TarsIdl) -> str:
    lines = []
    for name, enum in idl.enums.items():
        members = ", ".join(f"{m.name}={m.value}" for m in enum)
        lines.append(f"enum {name} {{ {members} }}")
    for name, cls in idl.structs.items():
        lines.append(f"struct {name}")
        for f in cls.__tars_fields__:
            kind = "require" if f.required else "optional"
            lines.append(f"  {f.tag:>3} {kind:<8} {f.type!r} {f.name}")
    for name, iface in idl.interfaces.items():
        lines.append(f"interface {name}")
        for method in iface.methods.values():
            ret = "void" if method.return_type is None else repr(method.return_type)
            params = ", ".join(f"{'out ' if p.is_out else ''}{p.type!r} {p.name}"
                               for p in method.params)
            lines.append(f"  {ret} {method.name}({params})")
    return "\n".join(lines)


def _tree(fields: Sequence[TaggedValue], indent: str = "") -> list[str]:
    lines = []
    for f in fields:
        if isinstance(f.value, list):
            lines.append(f"{indent}tag {f.tag} {f.wire_type} ({len(f.value)} items)")
            lines.extend(_tree(f.value, indent + "  "))
        else:
            shown = json.dumps(to_plain_leaf(f.value), ensure_ascii=False)
            lines.append(f"{indent}tag {f.tag} {f.wire_type} {shown}")
    return lines


def to_plain_leaf(value: object) -> object:
    """Show bytes as text when they are UTF-8, else as 0x-hex."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return "0x" + value.hex()
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tars-codec", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("types", "list the definitions of an IDL file"),
                            ("encode", "JSON value -> hex encoding"),
                            ("decode", "hex encoding -> JSON value")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("idl", help="the .tars file")
        p.add_argument("-I", dest="include", action="append", default=[],
                       help="include directory (repeatable)")
        if name != "types":
            p.add_argument("type", help="qualified struct name, e.g. Module.Struct")
            p.add_argument("data", help="JSON (encode) or hex (decode); - reads stdin")
    p = sub.add_parser("dump", help="show an encoding without a schema")
    p.add_argument("data", help="hex; - reads stdin")
    return parser


def run(args: argparse.Namespace) -> str:
    """Execute a parsed command; return what to print."""
    if args.command == "dump":
        return "\n".join(_tree(dump(_hex(_argument(args.data)))))
    idl = _load(args.idl, args.include)
    if args.command == "types":
        return _types(idl)
    cls = _struct(idl, args.type)
    if args.command == "encode":
        try:
            plain = json.loads(_argument(args.data))
        except json.JSONDecodeError as exc:
            raise UsageError(f"bad JSON: {exc}") from None
        return str(struct_from_plain(cls, plain).tars_encode().hex())
    value = cls.tars_decode(_hex(_argument(args.data)))
    return json.dumps(to_plain(value, StructType(cls)), indent=2, ensure_ascii=False)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``tars-codec``; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        print(run(args))
    except (UsageError, IdlError, TarsCodecError, PlainValueError) as exc:
        print(f"tars-codec: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
