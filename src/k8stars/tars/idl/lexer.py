"""Lexer for ``.tars`` files: text -> list of :class:`Token` ending with an EOF token."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from .errors import IdlSyntaxError, Location

__all__ = ["PUNCTUATION", "Token", "TokenKind", "tokenize"]


class TokenKind(enum.Enum):
    """Kinds of tokens."""

    IDENT = "identifier"
    INT = "integer"
    FLOAT = "float"
    STRING = "string"
    PUNCT = "punctuation"
    INCLUDE = "#include"
    EOF = "end of file"


@dataclass(frozen=True, slots=True)
class Token:
    """A token; ``value`` is the decoded literal (int, float or str) or the text otherwise.

    For ``INCLUDE`` tokens ``value`` is the file name and ``loc`` the position of ``#``.
    """

    kind: TokenKind
    text: str
    value: int | float | str
    loc: Location

    def describe(self) -> str:
        """A short human description used in error messages."""
        if self.kind is TokenKind.EOF:
            return "end of file"
        if self.kind is TokenKind.PUNCT:
            return f"'{self.text}'"
        if self.kind is TokenKind.IDENT:
            return f"'{self.text}'"
        if self.kind is TokenKind.INCLUDE:
            return "#include directive"
        return f"{self.kind.value} {self.text}"


PUNCTUATION = frozenset("{}<>[]();,=")
_SPACE = frozenset(" \t\r\n\f\v")
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER_RE = re.compile(
    r"""-?(?:
        (?P<hex>0[xX][0-9A-Fa-f]+)
      | (?P<float>(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?[fF]?|\d+[eE][+-]?\d+[fF]?|\d+[fF])
      | (?P<dec>\d+)
    )""",
    re.VERBOSE | re.ASCII,
)
_SIMPLE_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "0": "\0",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    "\\": "\\",
    '"': '"',
    "'": "'",
    "?": "?",
}
_DIGITS = frozenset("0123456789")
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


class _Lexer:
    def __init__(self, text: str, path: str) -> None:
        self.text = text
        self.path = path
        self.pos = 0
        self.line = 1
        self.line_start = 0
        self.tokens: list[Token] = []

    def loc(self, pos: int | None = None) -> Location:
        p = self.pos if pos is None else pos
        return Location(self.path, self.line, p - self.line_start + 1)

    def error(self, message: str, loc: Location | None = None) -> IdlSyntaxError:
        return IdlSyntaxError.at(loc if loc is not None else self.loc(), message)

    def advance_to(self, end: int) -> None:
        """Move to ``end``, keeping line bookkeeping right across newlines."""
        newlines = self.text.count("\n", self.pos, end)
        if newlines:
            self.line += newlines
            self.line_start = self.text.rindex("\n", self.pos, end) + 1
        self.pos = end

    def add(self, kind: TokenKind, start: int, value: int | float | str, loc: Location) -> None:
        self.tokens.append(Token(kind, self.text[start : self.pos], value, loc))

    def run(self) -> list[Token]:
        text = self.text
        n = len(text)
        while True:
            # whitespace
            while self.pos < n and text[self.pos] in _SPACE:
                if text[self.pos] == "\n":
                    self.line += 1
                    self.line_start = self.pos + 1
                self.pos += 1
            if self.pos >= n:
                break
            ch = text[self.pos]
            nxt = text[self.pos + 1] if self.pos + 1 < n else ""
            start = self.pos
            loc = self.loc()
            if ch == "/" and nxt == "/":
                end = text.find("\n", self.pos)
                self.pos = n if end < 0 else end
            elif ch == "/" and nxt == "*":
                end = text.find("*/", self.pos + 2)
                if end < 0:
                    raise self.error("unterminated /* comment", loc)
                self.advance_to(end + 2)
            elif ch == '"':
                value = self.string()
                self.add(TokenKind.STRING, start, value, loc)
            elif ch in _DIGITS or (ch in "-." and (nxt in _DIGITS or (ch == "-" and nxt == "."))):
                self.number(loc)
            elif ch == "_" or ("a" <= ch <= "z") or ("A" <= ch <= "Z"):
                m = _IDENT_RE.match(text, self.pos)
                assert m is not None
                self.pos = m.end()
                self.add(TokenKind.IDENT, start, m.group(), loc)
            elif ch == ":":
                if nxt != ":":
                    raise self.error("unexpected ':' (did you mean '::'?)", loc)
                self.pos += 2
                self.add(TokenKind.PUNCT, start, "::", loc)
            elif ch in PUNCTUATION:
                self.pos += 1
                self.add(TokenKind.PUNCT, start, ch, loc)
            elif ch == "#":
                self.directive(loc)
            else:
                raise self.error(f"unexpected character {ch!r}", loc)
        self.tokens.append(Token(TokenKind.EOF, "", "", self.loc()))
        return self.tokens

    def number(self, loc: Location) -> None:
        text = self.text
        m = _NUMBER_RE.match(text, self.pos)
        if m is None:  # e.g. "-.x"
            raise self.error("malformed number", loc)
        end = m.end()
        if end < len(text) and (text[end].isalnum() or text[end] in "_."):
            raise self.error(f"malformed number '{_word_at(text, self.pos)}'", loc)
        literal = m.group()
        start = self.pos
        self.pos = end
        if m.group("hex") is not None:
            self.add(TokenKind.INT, start, int(literal, 16), loc)
        elif m.group("float") is not None:
            self.add(TokenKind.FLOAT, start, float(literal.rstrip("fF")), loc)
        else:
            digits = m.group("dec")
            if len(digits) > 1 and digits[0] == "0":
                raise self.error(f"octal integer literals are not supported: '{literal}'", loc)
            self.add(TokenKind.INT, start, int(literal, 10), loc)

    def string(self) -> str:
        """Read a string literal starting at the opening quote; return its decoded value."""
        text = self.text
        n = len(text)
        open_loc = self.loc()
        self.pos += 1
        out: list[str] = []
        while True:
            if self.pos >= n or text[self.pos] == "\n":
                raise self.error("unterminated string literal", open_loc)
            ch = text[self.pos]
            if ch == '"':
                self.pos += 1
                return "".join(out)
            if ch != "\\":
                # copy a run of plain characters at once
                end = self.pos + 1
                while end < n and text[end] not in '"\\\n':
                    end += 1
                out.append(text[self.pos : end])
                self.pos = end
                continue
            esc_loc = self.loc()
            esc = text[self.pos + 1] if self.pos + 1 < n else ""
            if esc in _SIMPLE_ESCAPES:
                out.append(_SIMPLE_ESCAPES[esc])
                self.pos += 2
            elif esc in ("x", "u"):
                width = 2 if esc == "x" else 4
                digits = text[self.pos + 2 : self.pos + 2 + width]
                if len(digits) != width or not set(digits) <= _HEX_DIGITS:
                    raise self.error(
                        f"invalid escape sequence: '\\{esc}' needs {width} hex digits", esc_loc
                    )
                out.append(chr(int(digits, 16)))
                self.pos += 2 + width
            elif esc in ("", "\n"):
                raise self.error("unterminated string literal", open_loc)
            else:
                raise self.error(f"invalid escape sequence '\\{esc}'", esc_loc)

    def directive(self, loc: Location) -> None:
        """Read ``#include "file"`` (the only supported preprocessor directive)."""
        text = self.text
        start = self.pos
        self.pos += 1
        while self.pos < len(text) and text[self.pos] in " \t":
            self.pos += 1
        m = _IDENT_RE.match(text, self.pos)
        word = m.group() if m else ""
        if word != "include":
            shown = f"#{word}" if word else "#"
            raise self.error(
                f"unsupported preprocessor directive '{shown}' (only #include is supported)", loc
            )
        self.pos += len(word)
        while self.pos < len(text) and text[self.pos] in " \t":
            self.pos += 1
        if self.pos < len(text) and text[self.pos] == "<":
            raise self.error('#include <file> is not supported, use #include "file"', self.loc())
        if self.pos >= len(text) or text[self.pos] != '"':
            raise self.error('expected "file name" after #include', self.loc())
        name = self.string()
        if not name:
            raise self.error("empty file name in #include", loc)
        self.add(TokenKind.INCLUDE, start, name, loc)


def _word_at(text: str, pos: int) -> str:
    end = pos + 1
    while end < len(text) and (text[end].isalnum() or text[end] in "_.+-"):
        if text[end] in "+-" and text[end - 1] not in "eE":
            break
        end += 1
    return text[pos:end]


def tokenize(text: str, path: str = "<string>") -> list[Token]:
    """Split ``text`` into tokens; the last token has kind ``EOF``.

    Raises:
        IdlSyntaxError: on an unterminated comment or string, a bad escape, a malformed
            number or an unexpected character.
    """
    return _Lexer(text, path).run()
