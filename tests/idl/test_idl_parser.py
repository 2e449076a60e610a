"""Parser tests: AST shape for the whole grammar and located syntax errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from k8stars.tars.idl import ast, parse_source
from k8stars.tars.idl.errors import IdlSyntaxError
from k8stars.tars.idl.parser import MAX_TYPE_DEPTH

FIXTURES = Path(__file__).parent / "fixtures"

INT = ast.BuiltinTypeNode("int")
STRING = ast.BuiltinTypeNode("string")


def test_struct_fields_keep_declared_order_and_types() -> None:
    doc = parse_source(
        """
        module M {
            struct S {
                2 optional map<string, vector<M::T>> m;
                0 require vector<vector<int>> vv = 1;
                1 optional unsigned short us;
            };
            key[S, us, vv];
        };
        """
    )
    (module,) = doc.modules
    struct, key = module.definitions
    assert isinstance(struct, ast.StructDef)
    assert struct.fields == (
        ast.FieldDef(
            2,
            False,
            ast.MapTypeNode(STRING, ast.VectorTypeNode(ast.NamedTypeNode("T", "M"))),
            "m",
        ),
        ast.FieldDef(0, True, ast.VectorTypeNode(ast.VectorTypeNode(INT)), "vv", ast.IntLiteral(1)),
        ast.FieldDef(1, False, ast.BuiltinTypeNode("unsigned short"), "us"),
    )
    assert struct.keys == ("us", "vv")
    assert key == ast.KeyDef(ast.NamedTypeNode("S"), ("us", "vv"))
    assert (struct.fields[0].loc.line, struct.fields[0].loc.column) == (4, 17)


def test_enum_members_and_literals() -> None:
    doc = parse_source(
        'module M { enum E { A, B = 0x10, C = A, D = M::E::B, }; const string S = "x"; };'
    )
    enum, const = doc.modules[0].definitions
    assert enum == ast.EnumDef(
        "E",
        (
            ast.EnumMember("A"),
            ast.EnumMember("B", ast.IntLiteral(16)),
            ast.EnumMember("C", ast.NameLiteral(("A",))),
            ast.EnumMember("D", ast.NameLiteral(("M", "E", "B"))),
        ),
    )
    assert const == ast.ConstDef(STRING, "S", ast.StringLiteral("x"))


def test_interface_operations_and_param_tags() -> None:
    doc = parse_source(
        """module M { interface I {
            void ping();
            int f(string a, out vector<int> b, M::S c, out map<int,int> d);
            vector<M::S> g();
        }; };"""
    )
    (iface,) = doc.modules[0].definitions
    assert isinstance(iface, ast.InterfaceDef)
    ping, f, g = iface.operations
    assert ping == ast.Operation("ping", None, ())
    assert f.return_type == INT
    assert [(p.name, p.is_out, p.tag) for p in f.params] == [
        ("a", False, 1),
        ("b", True, 2),
        ("c", False, 3),
        ("d", True, 4),
    ]
    assert f.params[2].type == ast.NamedTypeNode("S", "M")
    assert g.return_type == ast.VectorTypeNode(ast.NamedTypeNode("S", "M"))


def test_includes_and_reopened_modules() -> None:
    doc = parse_source('#include "a.tars"\nmodule A { };\n#include "b.tars"\nmodule A { };', "x")
    assert [i.file for i in doc.includes] == ["a.tars", "b.tars"]
    assert [(i.loc.line, i.loc.column) for i in doc.includes] == [(1, 1), (3, 1)]
    assert [m.name for m in doc.modules] == ["A", "A"]
    assert doc.path == "x"


def test_grammar_fixture_parses() -> None:
    path = FIXTURES / "grammar.tars"
    doc = parse_source(path.read_text(encoding="utf-8"), str(path))
    assert [m.name for m in doc.modules] == ["Shapes", "Canvas", "Shapes"]
    kinds = [type(d).__name__ for d in doc.modules[0].definitions]
    assert kinds == ["ConstDef"] * 7 + ["EnumDef", "StructDef", "StructDef", "KeyDef"]


def test_locations_are_ignored_by_equality() -> None:
    a = parse_source("module M { struct S { 0 require int x; }; };", "a")
    b = parse_source("module M {\n\n struct S {\n 0 require int x;\n };\n};", "a")
    assert a.modules == b.modules


def test_deeply_nested_type_is_a_syntax_error_not_recursion() -> None:
    ok = "vector<" * MAX_TYPE_DEPTH + "int" + ">" * MAX_TYPE_DEPTH
    parse_source(f"module M {{ struct S {{ 0 require {ok} x; }}; }};")
    deep = "vector<" * 5000 + "int" + ">" * 5000
    with pytest.raises(IdlSyntaxError, match="nesting deeper"):
        parse_source(f"module M {{ struct S {{ 0 require {deep} x; }}; }};")


SYNTAX_ERRORS = [
    (
        "module M { struct S { 0 require int a } };",
        1,
        39,
        "expected ';' after field 'a', found '}'",
    ),
    ("module M { struct S { 0 int a; }; };", 1, 25, "expected 'require' or 'optional'"),
    ("module M { struct S { require int a; }; };", 1, 23, "missing field tag"),
    ("module M { struct S { -1 require int a; }; };", 1, 23, "field tag -1 out of range"),
    ("module M { struct S { 0x100 require int a; }; };", 1, 23, "field tag 256 out of range"),
    ("module M { struct S { 0 require int a; }\n};", 2, 1, "expected ';' after the end of struct"),
    ("module M { struct S { 0 require map<int> m; }; };", 1, 40, "expected ','"),
    ("module M { struct S { 0 require vector<int m; }; };", 1, 44, "expected '>' to close"),
    ("module M { struct S { 0 require A::B::C x; }; };", 1, 33, "invalid qualified name"),
    ("module M { struct S { 0 require void x; }; };", 1, 33, "'void' is only allowed"),
    ("module M { struct S { 0 require int key; }; };", 1, 37, "'key' is a reserved word"),
    ("module M { enum E { }; };", 1, 21, "enum 'E' has no members"),
    ("module M { enum E { A B }; };", 1, 23, "expected ',' or '}'"),
    ("module M { const int X; };", 1, 23, "expected '='"),
    ("module M { key[S]; };", 1, 17, "expected ',' and a field name"),
    ("module M { interface I { int f(int a int b); }; };", 1, 38, "expected ',' or ')'"),
    ("module M { interface I { f(); }; };", 1, 27, "expected an operation name"),
    ("module M { interface I { int f(int a = 1); }; };", 1, 38, "parameter default values"),
    ("module M { exception X { }; };", 1, 12, "'exception' definitions are not supported"),
    ("module M { foo; };", 1, 12, "expected 'struct', 'enum', 'const', 'key' or 'interface'"),
    ('module M {\n#include "x.tars"\n};', 2, 1, "#include must appear outside of modules"),
    ("module M { }", 1, 13, "unexpected end of file, expected ';'"),
    ("module { };", 1, 8, "expected a module name"),
    ("interface I { };", 1, 1, "'interface' must appear inside a module"),
    ("struct", 1, 1, "'struct' must appear inside a module"),
    ("42", 1, 1, "expected 'module' or '#include', found integer 42"),
    ("module M { struct S { 0 require int a; 1 require string s = ; }; };", 1, 61, "default"),
]


@pytest.mark.parametrize(("text", "line", "column", "fragment"), SYNTAX_ERRORS)
def test_syntax_errors(text: str, line: int, column: int, fragment: str) -> None:
    with pytest.raises(IdlSyntaxError) as info:
        parse_source(text, "s.tars")
    err = info.value
    assert fragment in err.message
    assert (err.path, err.line, err.column) == ("s.tars", line, column), err.message
