"""Lexer tests: token kinds, values, positions and lexical errors."""

from __future__ import annotations

import pytest

from k8stars.tars.idl.errors import IdlSyntaxError
from k8stars.tars.idl.lexer import Token, TokenKind, tokenize


def kinds_values(text: str) -> list[tuple[TokenKind, object]]:
    return [(t.kind, t.value) for t in tokenize(text)]


def positions(tokens: list[Token]) -> list[tuple[str, int, int]]:
    return [(t.text, t.loc.line, t.loc.column) for t in tokens]


def test_punctuation_and_nested_closing_angles() -> None:
    toks = tokenize("vector<vector<int>>")
    assert [t.text for t in toks] == ["vector", "<", "vector", "<", "int", ">", ">", ""]
    assert toks[-1].kind is TokenKind.EOF
    assert [t.text for t in tokenize("{}[]();,=<>")][:-1] == list("{}[]();,=<>")


def test_scope_delimiter() -> None:
    toks = tokenize("A::B :: C")
    assert [(t.kind, t.text) for t in toks[:-1]] == [
        (TokenKind.IDENT, "A"),
        (TokenKind.PUNCT, "::"),
        (TokenKind.IDENT, "B"),
        (TokenKind.PUNCT, "::"),
        (TokenKind.IDENT, "C"),
    ]


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("0", TokenKind.INT, 0),
        ("42", TokenKind.INT, 42),
        ("-7", TokenKind.INT, -7),
        ("0x1F", TokenKind.INT, 31),
        ("0XfF", TokenKind.INT, 255),
        ("-0x10", TokenKind.INT, -16),
        ("1.5", TokenKind.FLOAT, 1.5),
        ("-2.25", TokenKind.FLOAT, -2.25),
        (".5", TokenKind.FLOAT, 0.5),
        ("-.5", TokenKind.FLOAT, -0.5),
        ("1.", TokenKind.FLOAT, 1.0),
        ("1e3", TokenKind.FLOAT, 1000.0),
        ("2.5E-1", TokenKind.FLOAT, 0.25),
        ("1.5f", TokenKind.FLOAT, 1.5),
        ("9223372036854775807", TokenKind.INT, 9223372036854775807),
    ],
)
def test_numbers(text: str, kind: TokenKind, value: object) -> None:
    assert kinds_values(text) == [(kind, value), (TokenKind.EOF, "")]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (r'""', ""),
        (r'"plain"', "plain"),
        (r'"a\"b"', 'a"b'),
        (r'"back\\slash"', "back\\slash"),
        (r'"\n\t\r\0"', "\n\t\r\0"),
        (r'"\x41\u00e9"', "Aé"),
        (r'"\'"', "'"),
        ('"ünïcødé"', "ünïcødé"),
        ('"// not a comment /* nor this */"', "// not a comment /* nor this */"),
    ],
)
def test_strings(text: str, value: str) -> None:
    assert kinds_values(text) == [(TokenKind.STRING, value), (TokenKind.EOF, "")]


def test_comments_are_skipped_and_positions_tracked() -> None:
    text = "// first line\n/* block\n   spanning */ struct /* inline */ S\r\n  { };"
    toks = tokenize(text, "f.tars")
    assert positions(toks) == [
        ("struct", 3, 16),
        ("S", 3, 36),
        ("{", 4, 3),
        ("}", 4, 5),
        (";", 4, 6),
        ("", 4, 7),
    ]
    assert all(t.loc.path == "f.tars" for t in toks)


def test_include_directive() -> None:
    toks = tokenize('  #include "dir/QueryF.tars"\nmodule')
    assert toks[0].kind is TokenKind.INCLUDE
    assert toks[0].value == "dir/QueryF.tars"
    assert (toks[0].loc.line, toks[0].loc.column) == (1, 3)
    assert toks[1].text == "module"
    assert tokenize('# include "x.tars"')[0].value == "x.tars"


def test_eof_position_without_trailing_newline() -> None:
    toks = tokenize("ab\ncd")
    assert (toks[-1].loc.line, toks[-1].loc.column) == (2, 3)


@pytest.mark.parametrize(
    ("text", "line", "column", "fragment"),
    [
        ("a /* open\n\n", 1, 3, "unterminated /* comment"),
        ('x = "abc\n";', 1, 5, "unterminated string literal"),
        ('x = "abc', 1, 5, "unterminated string literal"),
        ('"ok\\', 1, 1, "unterminated string literal"),
        ('\n  "a\\qb"', 2, 5, "invalid escape sequence '\\q'"),
        ('"\\x4"', 1, 2, "needs 2 hex digits"),
        ('"\\u12G4"', 1, 2, "needs 4 hex digits"),
        ("x = 12abc;", 1, 5, "malformed number '12abc'"),
        ("x = 1.2.3;", 1, 5, "malformed number '1.2.3'"),
        ("x = 0x;", 1, 5, "malformed number '0x'"),
        ("x = -.x;", 1, 5, "malformed number"),
        ("x = 017;", 1, 5, "octal integer literals are not supported"),
        ("a\n  b @", 2, 5, "unexpected character '@'"),
        ("a : b", 1, 3, "did you mean '::'"),
        ("a - b", 1, 3, "unexpected character '-'"),
        ("#pragma once", 1, 1, "unsupported preprocessor directive '#pragma'"),
        ("#", 1, 1, "unsupported preprocessor directive '#'"),
        ("#include <x.tars>", 1, 10, "#include <file> is not supported"),
        ("#include x.tars", 1, 10, 'expected "file name" after #include'),
        ('#include ""', 1, 1, "empty file name"),
        ("é", 1, 1, "unexpected character 'é'"),
    ],
)
def test_lexical_errors(text: str, line: int, column: int, fragment: str) -> None:
    with pytest.raises(IdlSyntaxError) as info:
        tokenize(text, "t.tars")
    err = info.value
    assert (err.path, err.line, err.column) == ("t.tars", line, column)
    assert fragment in err.message
    assert str(err).startswith(f"t.tars:{line}:{column}: ")
