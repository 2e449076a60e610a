"""Resolver: loads ``#include``s, resolves names and checks a set of parsed ``.tars`` files.

The output, :class:`ResolvedIdl`, is a closed model of frozen dataclasses in dependency order
with fully qualified names (``Module.Name``); a builder needs no further lookups.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import ast
from .errors import IdlResolveError, IdlSyntaxError, Location
from .parser import parse_source

__all__ = [
    "FRAMEWORK_DIR",
    "BuiltinType",
    "DefaultValue",
    "EnumRef",
    "EnumValue",
    "MapType",
    "ResolvedConst",
    "ResolvedDefinition",
    "ResolvedEnum",
    "ResolvedField",
    "ResolvedIdl",
    "ResolvedInterface",
    "ResolvedOperation",
    "ResolvedParam",
    "ResolvedStruct",
    "StructRef",
    "TarsType",
    "VectorType",
    "load_idl",
    "load_idl_source",
    "resolve_documents",
]

#: Directory holding the bundled framework IDL files (``QueryF.tars`` ...).
FRAMEWORK_DIR: Path = Path(__file__).resolve().parent / "framework"

StrPath = str | os.PathLike[str]

# ------------------------------------------------------------------------------ resolved types


@dataclass(frozen=True, slots=True)
class BuiltinType:
    """A builtin type; ``name`` is one of :data:`~k8stars.tars.idl.ast.BUILTIN_TYPE_NAMES`."""

    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class VectorType:
    """``vector<elem>`` (``vector<byte>`` is encoded as SIMPLE_LIST)."""

    elem: TarsType

    def __str__(self) -> str:
        return f"vector<{self.elem}>"


@dataclass(frozen=True, slots=True)
class MapType:
    """``map<key, value>``."""

    key: TarsType
    value: TarsType

    def __str__(self) -> str:
        return f"map<{self.key}, {self.value}>"


@dataclass(frozen=True, slots=True)
class StructRef:
    """A reference to the struct ``qualified_name`` (``Module.Name``)."""

    qualified_name: str

    def __str__(self) -> str:
        return self.qualified_name


@dataclass(frozen=True, slots=True)
class EnumRef:
    """A reference to the enum ``qualified_name`` (``Module.Name``); encoded as int32."""

    qualified_name: str

    def __str__(self) -> str:
        return self.qualified_name


TarsType = BuiltinType | VectorType | MapType | StructRef | EnumRef


@dataclass(frozen=True, slots=True)
class EnumValue:
    """An enum member used as a default value."""

    enum: str
    member: str
    value: int


#: Resolved default: bool/int/float/str for builtins, :class:`EnumValue` for enums.
DefaultValue = bool | int | float | str | EnumValue

# ------------------------------------------------------------------------ resolved definitions


@dataclass(frozen=True, slots=True)
class ResolvedField:
    """A struct field; ``default`` is the explicit IDL default (``None`` if none was given)."""

    tag: int
    name: str
    type: TarsType
    required: bool
    default: DefaultValue | None = None
    loc: Location = field(default=ast.NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ResolvedStruct:
    """A struct; ``fields`` in declaration order, ``keys`` from ``key[...]`` (may be empty)."""

    qualified_name: str
    module: str
    name: str
    fields: tuple[ResolvedField, ...]
    keys: tuple[str, ...] = ()
    loc: Location = field(default=ast.NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ResolvedEnum:
    """An enum with every member value computed."""

    qualified_name: str
    module: str
    name: str
    members: tuple[tuple[str, int], ...]
    loc: Location = field(default=ast.NOWHERE, compare=False, repr=False)

    def value_of(self, member: str) -> int:
        """The value of ``member`` (raises ``KeyError`` if there is none)."""
        for name, value in self.members:
            if name == member:
                return value
        raise KeyError(member)


@dataclass(frozen=True, slots=True)
class ResolvedConst:
    """A constant of a builtin type."""

    qualified_name: str
    module: str
    name: str
    type: BuiltinType
    value: bool | int | float | str
    loc: Location = field(default=ast.NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ResolvedParam:
    """An operation parameter; ``tag`` counts in and out parameters from 1."""

    name: str
    type: TarsType
    is_out: bool
    tag: int


@dataclass(frozen=True, slots=True)
class ResolvedOperation:
    """An interface method; ``return_type`` is ``None`` for ``void``."""

    name: str
    return_type: TarsType | None
    params: tuple[ResolvedParam, ...]


@dataclass(frozen=True, slots=True)
class ResolvedInterface:
    """An interface with its operations in declaration order."""

    qualified_name: str
    module: str
    name: str
    operations: tuple[ResolvedOperation, ...]
    loc: Location = field(default=ast.NOWHERE, compare=False, repr=False)


ResolvedDefinition = ResolvedEnum | ResolvedConst | ResolvedStruct | ResolvedInterface


@dataclass(frozen=True, slots=True)
class ResolvedIdl:
    """Everything defined by a root file and its includes, in dependency order.

    Enums and consts come first; a struct comes after every struct it uses, except
    through a container cycle (``vector<Self>``); interfaces come last. ``files`` lists the
    loaded files, included ones before their includer.
    """

    path: str
    files: tuple[str, ...]
    enums: tuple[ResolvedEnum, ...]
    consts: tuple[ResolvedConst, ...]
    structs: tuple[ResolvedStruct, ...]
    interfaces: tuple[ResolvedInterface, ...]

    @property
    def definitions(self) -> tuple[ResolvedDefinition, ...]:
        """All definitions in dependency order."""
        return (*self.enums, *self.consts, *self.structs, *self.interfaces)

    def get(self, qualified_name: str) -> ResolvedDefinition:
        """Look a definition up by ``Module.Name`` (raises ``KeyError`` if absent)."""
        for d in self.definitions:
            if d.qualified_name == qualified_name:
                return d
        raise KeyError(qualified_name)

    def struct(self, qualified_name: str) -> ResolvedStruct:
        """The struct ``Module.Name`` (raises ``KeyError`` if absent)."""
        for s in self.structs:
            if s.qualified_name == qualified_name:
                return s
        raise KeyError(qualified_name)

    def enum(self, qualified_name: str) -> ResolvedEnum:
        """The enum ``Module.Name`` (raises ``KeyError`` if absent)."""
        for e in self.enums:
            if e.qualified_name == qualified_name:
                return e
        raise KeyError(qualified_name)

    def interface(self, qualified_name: str) -> ResolvedInterface:
        """The interface ``Module.Name`` (raises ``KeyError`` if absent)."""
        for i in self.interfaces:
            if i.qualified_name == qualified_name:
                return i
        raise KeyError(qualified_name)


# ------------------------------------------------------------------------------ value checks

_INT_RANGES: dict[str, tuple[int, int]] = {
    "byte": (-(2**7), 2**7 - 1),
    "short": (-(2**15), 2**15 - 1),
    "int": (-(2**31), 2**31 - 1),
    "long": (-(2**63), 2**63 - 1),
    "unsigned byte": (0, 2**8 - 1),
    "unsigned short": (0, 2**16 - 1),
    "unsigned int": (0, 2**32 - 1),
}
_INT32_MIN, _INT32_MAX = _INT_RANGES["int"]


def _describe(lit: ast.Literal) -> str:
    if isinstance(lit, ast.IntLiteral):
        return f"integer {lit.value}"
    if isinstance(lit, ast.FloatLiteral):
        return f"float {lit.value!r}"
    if isinstance(lit, ast.StringLiteral):
        return f"string {lit.value!r}"
    if isinstance(lit, ast.BoolLiteral):
        return "true" if lit.value else "false"
    return f"name '{lit}'"


def _builtin_value(type_name: str, lit: ast.Literal, what: str) -> bool | int | float | str:
    """Check ``lit`` against builtin ``type_name`` and return its Python value."""
    if type_name == "bool":
        if isinstance(lit, ast.BoolLiteral):
            return lit.value
        raise IdlResolveError.at(
            lit.loc, f"{what} of type bool must be true or false, found {_describe(lit)}"
        )
    if type_name == "string":
        if isinstance(lit, ast.StringLiteral):
            return lit.value
        raise IdlResolveError.at(
            lit.loc, f"{what} of type string must be a string literal, found {_describe(lit)}"
        )
    if type_name in ("float", "double"):
        if isinstance(lit, ast.FloatLiteral | ast.IntLiteral):
            return float(lit.value)
        raise IdlResolveError.at(
            lit.loc, f"{what} of type {type_name} must be a number, found {_describe(lit)}"
        )
    lo, hi = _INT_RANGES[type_name]
    if not isinstance(lit, ast.IntLiteral):
        raise IdlResolveError.at(
            lit.loc, f"{what} of type {type_name} must be an integer, found {_describe(lit)}"
        )
    if not lo <= lit.value <= hi:
        raise IdlResolveError.at(
            lit.loc, f"{what} {lit.value} out of range for {type_name} ({lo}..{hi})"
        )
    return lit.value


# ------------------------------------------------------------------------------ resolution


@dataclass(frozen=True, slots=True)
class _Symbol:
    kind: str  # "struct" | "enum" | "const" | "interface"
    module: str
    node: ast.StructDef | ast.EnumDef | ast.ConstDef | ast.InterfaceDef


class _Resolver:
    def __init__(self, documents: Sequence[ast.Document]) -> None:
        self.documents = documents
        self.symbols: dict[str, _Symbol] = {}
        self.modules: set[str] = set()
        self.keys: list[tuple[str, ast.KeyDef]] = []
        self.enums: dict[str, ResolvedEnum] = {}

    def run(self, path: str) -> ResolvedIdl:
        self.collect()
        enums: list[ResolvedEnum] = []
        consts: list[ResolvedConst] = []
        structs: list[ResolvedStruct] = []
        interfaces: list[ResolvedInterface] = []
        # enums first: struct defaults and consts may refer to their members
        for qname, sym in self.symbols.items():
            if isinstance(sym.node, ast.EnumDef):
                enum = self.enum(qname, sym.module, sym.node)
                self.enums[qname] = enum
                enums.append(enum)
        keys = self.resolve_keys()
        for qname, sym in self.symbols.items():
            node = sym.node
            if isinstance(node, ast.ConstDef):
                consts.append(self.const(qname, sym.module, node))
            elif isinstance(node, ast.StructDef):
                structs.append(self.struct(qname, sym.module, node, keys.get(qname, ())))
            elif isinstance(node, ast.InterfaceDef):
                interfaces.append(self.interface(qname, sym.module, node))
        return ResolvedIdl(
            path=path,
            files=tuple(d.path for d in self.documents),
            enums=tuple(enums),
            consts=tuple(consts),
            structs=_order_structs(structs),
            interfaces=tuple(interfaces),
        )

    # -------------------------------------------------------------------------- symbols

    def collect(self) -> None:
        for doc in self.documents:
            for module in doc.modules:
                self.modules.add(module.name)
                for d in module.definitions:
                    if isinstance(d, ast.KeyDef):
                        self.keys.append((module.name, d))
                        continue
                    qname = f"{module.name}.{d.name}"
                    previous = self.symbols.get(qname)
                    if previous is not None:
                        raise IdlResolveError.at(
                            d.loc,
                            f"duplicate definition of '{module.name}::{d.name}' "
                            f"(first defined at {previous.node.loc})",
                        )
                    kind = {
                        ast.StructDef: "struct",
                        ast.EnumDef: "enum",
                        ast.ConstDef: "const",
                        ast.InterfaceDef: "interface",
                    }[type(d)]
                    self.symbols[qname] = _Symbol(kind, module.name, d)

    def lookup(self, ref: ast.NamedTypeNode, module: str) -> tuple[str, _Symbol]:
        target = ref.module if ref.module is not None else module
        qname = f"{target}.{ref.name}"
        sym = self.symbols.get(qname)
        if sym is not None:
            return qname, sym
        if ref.module is not None and ref.module not in self.modules:
            raise IdlResolveError.at(ref.loc, f"unknown module '{ref.module}' in '{ref}'")
        hint = ""
        if ref.module is None:
            elsewhere = sorted(
                s.module for q, s in self.symbols.items() if q.split(".", 1)[1] == ref.name
            )
            if elsewhere:
                hint = f" (did you mean '{elsewhere[0]}::{ref.name}'?)"
        where = f" in module '{target}'" if ref.module is None else ""
        raise IdlResolveError.at(ref.loc, f"unknown type '{ref}'{where}{hint}")

    def resolve_type(self, node: ast.TypeNode, module: str) -> TarsType:
        if isinstance(node, ast.BuiltinTypeNode):
            return BuiltinType(node.name)
        if isinstance(node, ast.VectorTypeNode):
            return VectorType(self.resolve_type(node.elem, module))
        if isinstance(node, ast.MapTypeNode):
            key = self.resolve_type(node.key, module)
            return MapType(key, self.resolve_type(node.value, module))
        qname, sym = self.lookup(node, module)
        if sym.kind == "struct":
            return StructRef(qname)
        if sym.kind == "enum":
            return EnumRef(qname)
        raise IdlResolveError.at(node.loc, f"'{node}' is {_article(sym.kind)}, not a type")

    # -------------------------------------------------------------------------- enums

    def enum(self, qname: str, module: str, node: ast.EnumDef) -> ResolvedEnum:
        values: dict[str, int] = {}
        nxt = 0
        for m in node.members:
            if m.name in values:
                raise IdlResolveError.at(
                    m.loc, f"duplicate member '{m.name}' in enum '{node.name}'"
                )
            lit = m.value
            if lit is None:
                value = nxt
            elif isinstance(lit, ast.IntLiteral):
                value = lit.value
            elif isinstance(lit, ast.NameLiteral):
                member = _member_name(lit, module, node.name)
                if member is None or member not in values:
                    raise IdlResolveError.at(
                        lit.loc,
                        f"enum value '{lit}' is not an earlier member of enum '{node.name}'",
                    )
                value = values[member]
            else:
                raise IdlResolveError.at(
                    lit.loc,
                    f"enum value of '{m.name}' must be an integer or an earlier member name, "
                    f"found {_describe(lit)}",
                )
            if not _INT32_MIN <= value <= _INT32_MAX:
                raise IdlResolveError.at(
                    lit.loc if lit is not None else m.loc,
                    f"value {value} of enum member '{m.name}' out of int range",
                )
            values[m.name] = value
            nxt = value + 1
        return ResolvedEnum(qname, module, node.name, tuple(values.items()), node.loc)

    def enum_default(self, enum_qname: str, lit: ast.Literal, what: str) -> EnumValue:
        enum = self.enums[enum_qname]
        if isinstance(lit, ast.NameLiteral):
            member = _member_name(lit, enum.module, enum.name)
            if member is not None:
                for name, value in enum.members:
                    if name == member:
                        return EnumValue(enum_qname, name, value)
            raise IdlResolveError.at(
                lit.loc, f"{what}: '{lit}' is not a member of enum '{enum.module}::{enum.name}'"
            )
        raise IdlResolveError.at(
            lit.loc,
            f"{what} of enum type '{enum.module}::{enum.name}' must be a member name, "
            f"found {_describe(lit)}",
        )

    def default(self, ftype: TarsType, lit: ast.Literal, what: str) -> DefaultValue:
        if isinstance(ftype, BuiltinType):
            return _builtin_value(ftype.name, lit, what)
        if isinstance(ftype, EnumRef):
            return self.enum_default(ftype.qualified_name, lit, what)
        raise IdlResolveError.at(lit.loc, f"{what}: a field of type {ftype} cannot have a default")

    # -------------------------------------------------------------------------- consts, keys

    def const(self, qname: str, module: str, node: ast.ConstDef) -> ResolvedConst:
        ctype = self.resolve_type(node.type, module)
        if not isinstance(ctype, BuiltinType):
            raise IdlResolveError.at(
                node.type.loc,
                f"const '{node.name}' of type {ctype} is not supported (only builtin types)",
            )
        value = _builtin_value(ctype.name, node.value, f"value of const '{node.name}'")
        return ResolvedConst(qname, module, node.name, ctype, value, node.loc)

    def resolve_keys(self) -> dict[str, tuple[str, ...]]:
        keys: dict[str, tuple[str, ...]] = {}
        for module, kd in self.keys:
            qname, sym = self.lookup(kd.struct, module)
            node = sym.node
            if not isinstance(node, ast.StructDef):
                raise IdlResolveError.at(
                    kd.struct.loc, f"key[] needs a struct, '{kd.struct}' is {_article(sym.kind)}"
                )
            if qname in keys:
                raise IdlResolveError.at(kd.loc, f"duplicate key[] for struct '{kd.struct}'")
            names = {f.name for f in node.fields}
            seen: set[str] = set()
            for i, fname in enumerate(kd.fields):
                floc = kd.field_locs[i] if i < len(kd.field_locs) else kd.loc
                if fname not in names:
                    raise IdlResolveError.at(
                        floc, f"key[] field '{fname}' is not a field of struct '{node.name}'"
                    )
                if fname in seen:
                    raise IdlResolveError.at(floc, f"duplicate field '{fname}' in key[]")
                seen.add(fname)
            keys[qname] = kd.fields
        return keys

    # -------------------------------------------------------------------------- structs

    def struct(
        self, qname: str, module: str, node: ast.StructDef, keys: tuple[str, ...]
    ) -> ResolvedStruct:
        by_tag: dict[int, str] = {}
        names: set[str] = set()
        fields: list[ResolvedField] = []
        for f in node.fields:
            if f.tag in by_tag:
                raise IdlResolveError.at(
                    f.loc,
                    f"duplicate tag {f.tag} in struct '{node.name}' "
                    f"(field '{f.name}', already used by '{by_tag[f.tag]}')",
                )
            if f.name in names:
                raise IdlResolveError.at(
                    f.loc, f"duplicate field name '{f.name}' in struct '{node.name}'"
                )
            by_tag[f.tag] = f.name
            names.add(f.name)
            ftype = self.resolve_type(f.type, module)
            default = None
            if f.default is not None:
                default = self.default(ftype, f.default, f"default of field '{f.name}'")
            fields.append(ResolvedField(f.tag, f.name, ftype, f.required, default, f.loc))
        return ResolvedStruct(qname, module, node.name, tuple(fields), keys, node.loc)

    # -------------------------------------------------------------------------- interfaces

    def interface(self, qname: str, module: str, node: ast.InterfaceDef) -> ResolvedInterface:
        ops: list[ResolvedOperation] = []
        seen: set[str] = set()
        for op in node.operations:
            if op.name in seen:
                raise IdlResolveError.at(
                    op.loc,
                    f"duplicate operation '{op.name}' in interface '{node.name}' "
                    "(overloading is not supported)",
                )
            seen.add(op.name)
            ret = None if op.return_type is None else self.resolve_type(op.return_type, module)
            params: list[ResolvedParam] = []
            pnames: set[str] = set()
            for p in op.params:
                if p.name in pnames:
                    raise IdlResolveError.at(
                        p.loc, f"duplicate parameter '{p.name}' in operation '{op.name}'"
                    )
                pnames.add(p.name)
                params.append(
                    ResolvedParam(p.name, self.resolve_type(p.type, module), p.is_out, p.tag)
                )
            ops.append(ResolvedOperation(op.name, ret, tuple(params)))
        return ResolvedInterface(qname, module, node.name, tuple(ops), node.loc)


def _article(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _member_name(lit: ast.NameLiteral, module: str, enum_name: str) -> str | None:
    """The member named by ``lit`` if its qualifiers fit ``module::enum_name``."""
    *qualifiers, member = lit.parts
    if tuple(qualifiers) in ((), (enum_name,), (module,), (module, enum_name)):
        return member
    return None


def _struct_deps(t: TarsType, direct: bool, out: list[tuple[str, bool]]) -> None:
    if isinstance(t, StructRef):
        out.append((t.qualified_name, direct))
    elif isinstance(t, VectorType):
        _struct_deps(t.elem, False, out)
    elif isinstance(t, MapType):
        _struct_deps(t.key, False, out)
        _struct_deps(t.value, False, out)


def _order_structs(structs: list[ResolvedStruct]) -> tuple[ResolvedStruct, ...]:
    """Order structs dependencies first; reject structs that contain themselves directly."""
    by_name = {s.qualified_name: s for s in structs}
    field_loc = {(s.qualified_name, f.name): f.loc for s in structs for f in s.fields}
    edges: dict[str, list[tuple[str, bool, str]]] = {}
    for s in structs:
        out: list[tuple[str, bool, str]] = []
        for f in s.fields:
            found: list[tuple[str, bool]] = []
            _struct_deps(f.type, True, found)
            out.extend((target, direct, f.name) for target, direct in found)
        edges[s.qualified_name] = out

    # 1. direct containment cycles (A has a field of type B, B of type A) cannot be built
    state: dict[str, int] = {}
    for start in by_name:
        if state.get(start):
            continue
        state[start] = 1
        stack: list[tuple[str, Iterator[tuple[str, bool, str]]]] = [(start, iter(edges[start]))]
        path: list[tuple[str, str]] = []  # (struct, field) edges taken
        while stack:
            node, it = stack[-1]
            for target, direct, fname in it:
                if not direct:
                    continue
                st = state.get(target, 0)
                if st == 1:
                    cycle = [*path, (node, fname)]
                    first = next(i for i, (n, _) in enumerate(cycle) if n == target)
                    shown = " -> ".join(f"{n}.{fn}" for n, fn in cycle[first:])
                    raise IdlResolveError.at(
                        field_loc[node, fname],
                        f"struct '{target}' contains itself ({shown} -> {target}); "
                        "use vector<...> for recursive structures",
                    )
                if st == 0:
                    state[target] = 1
                    path.append((node, fname))
                    stack.append((target, iter(edges[target])))
                    break
            else:
                stack.pop()
                state[node] = 2
                if path:
                    path.pop()

    # 2. depth-first post-order over all edges (container back edges are ignored)
    order: list[ResolvedStruct] = []
    done: dict[str, int] = {}
    for start in by_name:
        if done.get(start):
            continue
        done[start] = 1
        dstack: list[tuple[str, Iterator[tuple[str, bool, str]]]] = [(start, iter(edges[start]))]
        while dstack:
            node, it = dstack[-1]
            for target, _direct, _fname in it:
                if not done.get(target):
                    done[target] = 1
                    dstack.append((target, iter(edges[target])))
                    break
            else:
                dstack.pop()
                order.append(by_name[node])
    return tuple(order)


def resolve_documents(documents: Sequence[ast.Document], path: str | None = None) -> ResolvedIdl:
    """Resolve already parsed documents (included files first, as :func:`load_idl` orders them).

    Raises:
        IdlResolveError: on unknown names, duplicates, bad defaults or bad keys.
    """
    root = path if path is not None else (documents[-1].path if documents else "<empty>")
    return _Resolver(documents).run(root)


# ------------------------------------------------------------------------------ file loading


def _is_virtual(path: str) -> bool:
    return path.startswith("<") and path.endswith(">")


def _decode(data: bytes, path: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        col = len(before[before.rfind(b"\n") + 1 :].decode("utf-8", "replace")) + 1
        raise IdlSyntaxError(path, line, col, "file is not valid UTF-8") from None


class _Loader:
    def __init__(self, include_dirs: Sequence[StrPath]) -> None:
        self.include_dirs = tuple(Path(d) for d in include_dirs)

    def read(self, path: Path, display: str, loc: Location | None) -> ast.Document:
        """Read and parse ``path``; errors are reported at ``loc`` (the #include) if given."""
        try:
            data = path.read_bytes()
        except OSError as exc:
            reason = exc.strerror or str(exc)
            if loc is None:
                raise IdlResolveError(display, 0, 0, f"cannot read file: {reason}") from None
            raise IdlResolveError.at(loc, f"cannot read '{display}': {reason}") from None
        return parse_source(_decode(data, display), display)

    def find(self, including: str, inc: ast.Include) -> Path:
        dirs: list[Path] = []
        if not _is_virtual(including):
            dirs.append(Path(including).parent)
        dirs.extend(self.include_dirs)
        for d in dirs:
            candidate = d / inc.file
            if candidate.is_file():
                return candidate
        searched = ", ".join(str(d) for d in dirs) or "no include directories"
        raise IdlResolveError.at(
            inc.loc, f"included file '{inc.file}' not found (searched: {searched})"
        )

    def load_tree(self, root: ast.Document, root_key: str) -> list[ast.Document]:
        """All documents reachable from ``root``, each once, included ones first."""
        seen = {root_key}
        order: list[ast.Document] = []
        stack: list[tuple[ast.Document, Iterator[ast.Include]]] = [(root, iter(root.includes))]
        while stack:
            doc, it = stack[-1]
            for inc in it:
                found = self.find(doc.path, inc)
                key = os.path.realpath(found)
                if key in seen:  # diamond or cycle: already loaded or being loaded
                    continue
                seen.add(key)
                child = self.read(found, os.path.normpath(found), inc.loc)
                stack.append((child, iter(child.includes)))
                break
            else:
                stack.pop()
                order.append(doc)
        return order


def load_idl(path: StrPath, include_dirs: Sequence[StrPath] = ()) -> ResolvedIdl:
    """Load the ``.tars`` file ``path`` with its includes and resolve it.

    Includes are searched relative to the including file, then in ``include_dirs``.

    Raises:
        IdlSyntaxError: malformed text (with file, line and column).
        IdlResolveError: unknown names, duplicates, bad defaults, missing includes.
    """
    display = os.fspath(path)
    loader = _Loader(include_dirs)
    root = loader.read(Path(display), display, None)
    docs = loader.load_tree(root, os.path.realpath(display))
    return resolve_documents(docs, display)


def load_idl_source(
    text: str, path: str = "<string>", include_dirs: Sequence[StrPath] = ()
) -> ResolvedIdl:
    """Like :func:`load_idl` for source text; ``path`` names it in errors.

    If ``path`` is a real path (not ``<...>``), includes are searched relative to it first.
    """
    loader = _Loader(include_dirs)
    root = parse_source(text, path)
    key = path if _is_virtual(path) else os.path.realpath(path)
    docs = loader.load_tree(root, key)
    return resolve_documents(docs, path)
