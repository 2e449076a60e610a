"""Resolver tests: names, values, defaults, includes and dependency order."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from k8stars.tars.idl import (
    BuiltinType,
    EnumRef,
    EnumValue,
    IdlError,
    IdlResolveError,
    IdlSyntaxError,
    MapType,
    ResolvedField,
    ResolvedParam,
    StructRef,
    VectorType,
    load_idl,
    load_idl_source,
    parse_source,
    resolve_documents,
)

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[2]
INTEROP = REPO / "tests" / "interop" / "idl" / "Interop.tars"

INT = BuiltinType("int")
STRING = BuiltinType("string")
DOUBLE = BuiltinType("double")


def test_grammar_fixture() -> None:
    idl = load_idl(FIXTURES / "grammar.tars")
    assert idl.enum("Shapes.Kind").members == (
        ("CIRCLE", 0),
        ("SQUARE", 10),
        ("TRIANGLE", 11),
        ("POLYGON", 10),
        ("OTHER", 11),
        ("NEG", -3),
        ("AFTER_NEG", -2),
    )
    consts = {c.name: (c.type.name, c.value) for c in idl.consts}
    assert consts == {
        "MAX_SIDES": ("int", 16),
        "MIN_OFFSET": ("long", -(2**63)),
        "PI": ("double", 3.14159),
        "HALF": ("float", 0.5),
        "GREETING": ("string", 'tab\there "quoted" Aé\\'),
        "ENABLED": ("bool", True),
        "BIG": ("unsigned int", 2**32 - 1),
    }
    shape = idl.struct("Shapes.Shape")
    assert shape.keys == ("kind", "label")
    fields = {f.name: f for f in shape.fields}
    kind = EnumRef("Shapes.Kind")
    point = StructRef("Shapes.Point")
    assert fields["kind"] == ResolvedField(
        0, "kind", kind, True, EnumValue(kind.qualified_name, "SQUARE", 10)
    )
    assert fields["grid"].type == VectorType(VectorType(INT))
    assert fields["index"].type == MapType(STRING, MapType(INT, VectorType(point)))
    defaults = {f.name: f.default for f in shape.fields}
    assert defaults["label"] == ""
    assert defaults["b"] == -128
    assert defaults["s"] == 0x7FFF
    assert defaults["ratio"] == 1.0 and isinstance(defaults["ratio"], float)
    assert defaults["scale"] == 2500.0
    assert defaults["visible"] is False
    assert defaults["ub"] == 255 and defaults["us"] == 65535
    assert defaults["k2"] == EnumValue("Shapes.Kind", "TRIANGLE", 11)
    assert defaults["k3"] == EnumValue("Shapes.Kind", "OTHER", 11)
    assert defaults["points"] is None
    assert fields["last"].tag == 255
    # fields keep declared order, whatever the tags
    assert [f.tag for f in idl.struct("Shapes.Point").fields] == [1, 0]

    layer = idl.struct("Canvas.Layer")
    assert [f.type for f in layer.fields] == [
        StructRef("Shapes.Shape"),
        MapType(kind, VectorType(point)),
        VectorType(StructRef("Canvas.Layer")),
    ]
    painter = idl.interface("Canvas.Painter")
    clear, draw, kind_of, dump = painter.operations
    assert clear.return_type is None and clear.params == ()
    assert draw.return_type == INT
    assert draw.params == (
        ResolvedParam("layer", StructRef("Canvas.Layer"), False, 1),
        ResolvedParam("log", STRING, True, 2),
        ResolvedParam("times", INT, False, 3),
        ResolvedParam("drawn", VectorType(StructRef("Shapes.Shape")), True, 4),
    )
    assert kind_of.return_type == kind
    assert dump.return_type == MapType(STRING, VectorType(VectorType(point)))
    # reopened module: Circle lands in Shapes
    assert idl.struct("Shapes.Circle").fields[0].type == point


def test_dependency_order() -> None:
    idl = load_idl(FIXTURES / "grammar.tars")
    names = [d.qualified_name for d in idl.definitions]
    assert names.index("Shapes.Kind") < names.index("Shapes.Shape")
    assert names.index("Shapes.Point") < names.index("Shapes.Shape") < names.index("Canvas.Layer")
    assert names.index("Shapes.Point") < names.index("Shapes.Circle")
    assert names[-1] == "Canvas.Painter"
    text = """module M {
        struct A { 0 require B b; 1 optional vector<C> cs; };
        struct B { 0 require C c; };
        struct C { 0 optional vector<A> back; };
    };"""
    order = [s.name for s in load_idl_source(text).structs]
    assert order == ["C", "B", "A"]


def test_interop_idl() -> None:
    idl = load_idl(INTEROP)
    assert idl.enum("Interop.Color").members == (("RED", 0), ("GREEN", 5), ("BLUE", 6))
    inner = idl.struct("Interop.Inner")
    assert [(f.tag, f.name, f.required, f.default) for f in inner.fields] == [
        (0, "id", True, None),
        (1, "label", False, "inner"),
    ]
    all_types = idl.struct("Interop.AllTypes")
    by_tag = {f.tag: f for f in all_types.fields}
    assert by_tag[8].type == VectorType(BuiltinType("byte"))
    assert by_tag[12].type == MapType(INT, StructRef("Interop.Inner"))
    assert by_tag[15].type == BuiltinType("unsigned byte")
    assert by_tag[17].type == BuiltinType("unsigned int")
    assert by_tag[18].default == EnumValue("Interop.Color", "GREEN", 5)
    assert by_tag[20].type == VectorType(VectorType(BuiltinType("long")))
    assert by_tag[200].type == MapType(STRING, VectorType(STRING))
    assert [s.name for s in idl.structs] == ["Inner", "AllTypes"]


def test_enum_values() -> None:
    idl = load_idl_source(
        "module M { enum E { A = 5, B, C = A, D, E2 = M::E::B, F = E::A, G = -2147483648 }; };"
    )
    assert idl.enum("M.E").members == (
        ("A", 5),
        ("B", 6),
        ("C", 5),
        ("D", 6),
        ("E2", 6),
        ("F", 5),
        ("G", -(2**31)),
    )
    assert idl.enum("M.E").value_of("D") == 6


def test_qualified_names_across_modules() -> None:
    idl = load_idl_source(
        """module A { enum Color { RED, GREEN }; struct P { 0 require int x; }; };
        module B {
            struct P { 0 require A::P inner; 1 optional A::Color c = A::GREEN; };
            struct Q { 0 require P local; 1 require A::P remote; };
        };"""
    )
    q = idl.struct("B.Q")
    assert [f.type for f in q.fields] == [StructRef("B.P"), StructRef("A.P")]
    assert idl.struct("B.P").fields[1].default == EnumValue("A.Color", "GREEN", 1)


def test_unknown_type_suggests_qualified_name() -> None:
    with pytest.raises(IdlResolveError, match=r"did you mean 'A::P'\?") as info:
        load_idl_source(
            "module A { struct P { 0 require int x; }; };\nmodule B { const int n = 1;\n"
            "struct S { 0 require P p; }; };",
            "q.tars",
        )
    assert (info.value.line, info.value.column) == (3, 22)


def test_includes_relative_and_include_dirs() -> None:
    main = FIXTURES / "inc" / "main.tars"
    with pytest.raises(IdlResolveError, match=r"'lib\.tars' not found") as info:
        load_idl(main)
    assert (info.value.line, info.value.column) == (3, 1)
    idl = load_idl(main, include_dirs=[FIXTURES / "incdir"])
    assert [Path(f).name for f in idl.files] == ["b.tars", "a.tars", "lib.tars", "main.tars"]
    root = idl.struct("Main.Root")
    assert [f.type for f in root.fields] == [
        StructRef("A.Aa"),
        StructRef("B.Bb"),
        StructRef("Lib.L"),
    ]
    assert idl.struct("Lib.L").fields[0].default == EnumValue("Lib.E", "Y", 1)
    assert idl.path == str(main)


def test_include_dirs_as_strings_and_search_order(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (first / "dep.tars").write_text("module D { const int WHO = 1; };")
    (second / "dep.tars").write_text("module D { const int WHO = 2; };")
    (tmp_path / "root.tars").write_text('#include "dep.tars"\nmodule R { };')
    idl = load_idl(str(tmp_path / "root.tars"), [str(second), str(first)])
    assert idl.consts[0].value == 2
    # a file next to the includer wins over include dirs
    (tmp_path / "dep.tars").write_text("module D { const int WHO = 3; };")
    assert load_idl(tmp_path / "root.tars", [first]).consts[0].value == 3


def test_diamond_include_loads_base_once() -> None:
    idl = load_idl(FIXTURES / "diamond" / "top.tars")
    assert [Path(f).name for f in idl.files] == ["base.tars", "left.tars", "right.tars", "top.tars"]
    assert [s.qualified_name for s in idl.structs] == ["Base.B", "Left.L", "Right.R", "Top.T"]


def test_include_cycle_is_not_an_error() -> None:
    a = load_idl(FIXTURES / "cycle" / "a.tars")
    assert [Path(f).name for f in a.files] == ["b.tars", "a.tars"]
    b = load_idl(FIXTURES / "cycle" / "b.tars")
    assert [Path(f).name for f in b.files] == ["a.tars", "b.tars"]
    assert b.struct("CB.B").fields[0].type == StructRef("CA.A")


def test_load_idl_source_virtual_and_real_paths() -> None:
    text = '#include "b.tars"\nmodule X { struct S { 0 require B::Bb b; }; };'
    with pytest.raises(IdlResolveError, match="searched: no include directories"):
        load_idl_source(text)
    idl = load_idl_source(text, include_dirs=[FIXTURES / "inc"])
    assert idl.path == "<string>"
    assert idl.files[-1] == "<string>"
    # a real-looking path makes includes relative to it
    idl2 = load_idl_source(text, str(FIXTURES / "inc" / "virtual.tars"))
    assert idl2.struct("X.S").fields[0].type == StructRef("B.Bb")


def test_long_include_chain_and_struct_chain(tmp_path: Path) -> None:
    n = 300
    for i in range(n):
        inc = f'#include "f{i + 1}.tars"\n' if i + 1 < n else ""
        ref = f"0 require S{i + 1} next;" if i + 1 < n else "0 require int end;"
        (tmp_path / f"f{i}.tars").write_text(f"{inc}module M {{ struct S{i} {{ {ref} }}; }};")
    idl = load_idl(tmp_path / "f0.tars")
    assert len(idl.files) == n
    assert [s.name for s in idl.structs] == [f"S{i}" for i in reversed(range(n))]
    m = 3000
    text = (
        "module M {"
        + "".join(f"struct S{i} {{ 0 require S{i + 1} n; }};" for i in range(m))
        + f"struct S{m} {{ 0 require int x; }}; }};"
    )
    order = [s.name for s in load_idl_source(text).structs]
    assert order[0] == f"S{m}" and order[-1] == "S0"


def test_resolve_documents_directly() -> None:
    docs = [
        parse_source("module A { struct X { 0 require int v; }; };", "a"),
        parse_source("module B { struct Y { 0 require A::X x; }; };", "b"),
    ]
    idl = resolve_documents(docs)
    assert idl.path == "b" and idl.files == ("a", "b")
    assert idl.get("B.Y").name == "Y"
    with pytest.raises(KeyError):
        idl.get("B.Nope")


def test_error_formatting_and_pickling() -> None:
    with pytest.raises(IdlError) as info:
        load_idl_source("module M { struct S { 0 require Nope n; }; };", "x.tars")
    err = info.value
    assert isinstance(err, IdlResolveError)
    assert str(err) == "x.tars:1:33: unknown type 'Nope' in module 'M'"
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is IdlResolveError and str(again) == str(err)
    assert err.location.line == 1


def test_missing_root_file_and_unreadable_include(tmp_path: Path) -> None:
    missing = tmp_path / "missing.tars"
    with pytest.raises(IdlResolveError) as info:
        load_idl(missing)
    assert (info.value.path, info.value.line, info.value.column) == (str(missing), 0, 0)
    assert str(info.value).startswith(f"{missing}: cannot read file")
    (tmp_path / "adir.tars").mkdir()
    with pytest.raises(IdlResolveError, match=r"'adir\.tars' not found"):
        load_idl_source('#include "adir.tars"', include_dirs=[tmp_path])


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.tars"
    path.write_bytes(b'module M {\n  const string S = "caf\xe9";\n};\n')
    with pytest.raises(IdlSyntaxError, match="not valid UTF-8") as info:
        load_idl(path)
    assert (info.value.line, info.value.column) == (2, 24)
    bom = tmp_path / "bom.tars"
    bom.write_bytes(b"\xef\xbb\xbfmodule M { const int X = 1; };")
    assert load_idl(bom).consts[0].value == 1


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("module M { struct S { 0 optional int v = 2147483648; }; };", "out of range for int"),
        ("module M { struct S { 0 optional unsigned int v = -1; }; };", "out of range"),
        ("module M { struct S { 0 optional long v = 9223372036854775808; }; };", "out of range"),
        ('module M { struct S { 0 optional double v = "1"; }; };', "must be a number"),
        ("module M { struct S { 0 optional int v = 1.5; }; };", "must be an integer, found float"),
        ("module M { struct S { 0 optional string v = x; }; };", "found name 'x'"),
        ('module M { struct S { 0 optional bool v = "true"; }; };', "true or false"),
        ("module M { enum E { A }; struct S { 0 optional E v = 0; }; };", "must be a member name"),
        ("module M { enum E { A }; struct S { 0 optional E v = X::A; }; };", "not a member"),
        (
            "module M { struct T { 0 optional int a; }; struct S { 0 optional T t = 1; }; };",
            "cannot have a default",
        ),
        ('module M { enum E { A = "x" }; };', "must be an integer or an earlier member"),
        ("module M { enum E { A = 2147483647, B }; };", "out of int range"),
        ("module M { enum E { A, A }; };", "duplicate member 'A'"),
        ("module M { enum E { A = F::A }; };", "not an earlier member"),
        ("module M { const int X = 1; struct S { 0 require X x; }; };", "is a const, not a type"),
        ("module M { const vector<int> X = 1; };", "only builtin types"),
        ("module M { const string X = 1; };", "must be a string literal"),
        ("module M { interface I { void f(int a, out int a); }; };", "duplicate parameter 'a'"),
        ("module M { interface I { Nope f(); }; };", "unknown type 'Nope'"),
        ("module M { struct S { 0 require int a; }; key[S, a]; key[S, a]; };", "duplicate key[]"),
        ("module M { struct S { 0 require int a; }; key[S, a, a]; };", "duplicate field 'a'"),
        ("module M { enum E { A }; key[E, A]; };", "key[] needs a struct"),
        ("module M { struct S { 0 optional S self; }; };", "contains itself"),
        (
            "module M { struct S { 0 require int a; }; }; module M { const int S = 1; };",
            "duplicate definition of 'M::S'",
        ),
    ],
)
def test_resolve_errors(text: str, fragment: str) -> None:
    with pytest.raises(IdlResolveError) as info:
        load_idl_source(text, "r.tars")
    assert fragment in info.value.message
    assert info.value.path == "r.tars" and info.value.line >= 1 and info.value.column >= 1
