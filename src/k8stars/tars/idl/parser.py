"""Recursive-descent parser: tokens -> :class:`~k8stars.tars.idl.ast.Document`.

The parser checks syntax only (plus tag ranges); names are resolved by the resolver.
"""

from __future__ import annotations

import dataclasses

from . import ast
from .errors import IdlSyntaxError, Location
from .lexer import Token, TokenKind, tokenize

__all__ = ["MAX_TYPE_DEPTH", "RESERVED_WORDS", "parse_source", "parse_tokens"]

#: Deepest accepted nesting of ``vector``/``map`` in one type.
MAX_TYPE_DEPTH = 64
MAX_TAG = 255

_SIMPLE_BUILTINS = frozenset({"bool", "byte", "short", "int", "long", "float", "double", "string"})
_UNSIGNED_BUILTINS = frozenset({"byte", "short", "int"})

#: Words that cannot be used as names.
RESERVED_WORDS = frozenset(
    {
        "module",
        "struct",
        "enum",
        "const",
        "key",
        "interface",
        "require",
        "optional",
        "out",
        "routekey",
        "void",
        "vector",
        "map",
        "unsigned",
        "true",
        "false",
    }
    | _SIMPLE_BUILTINS
)

_DEFINITION_WORDS = "'struct', 'enum', 'const', 'key' or 'interface'"


class _Parser:
    def __init__(self, tokens: list[Token], path: str) -> None:
        self.tokens = tokens
        self.path = path
        self.pos = 0

    # ------------------------------------------------------------------------------ helpers

    @property
    def tok(self) -> Token:
        return self.tokens[self.pos]

    def peek(self, offset: int = 1) -> Token:
        return self.tokens[min(self.pos + offset, len(self.tokens) - 1)]

    def next(self) -> Token:
        tok = self.tokens[self.pos]
        if tok.kind is not TokenKind.EOF:
            self.pos += 1
        return tok

    def error(self, message: str, loc: Location | None = None) -> IdlSyntaxError:
        return IdlSyntaxError.at(loc if loc is not None else self.tok.loc, message)

    def unexpected(self, expected: str) -> IdlSyntaxError:
        tok = self.tok
        if tok.kind is TokenKind.EOF:
            return self.error(f"unexpected end of file, expected {expected}")
        return self.error(f"expected {expected}, found {tok.describe()}")

    def at_punct(self, text: str) -> bool:
        tok = self.tok
        return tok.kind is TokenKind.PUNCT and tok.text == text

    def at_word(self, word: str) -> bool:
        tok = self.tok
        return tok.kind is TokenKind.IDENT and tok.text == word

    def expect_punct(self, text: str, context: str = "") -> Token:
        if not self.at_punct(text):
            raise self.unexpected(f"'{text}'{context}")
        return self.next()

    def expect_word(self, word: str) -> Token:
        if not self.at_word(word):
            raise self.unexpected(f"'{word}'")
        return self.next()

    def name(self, what: str) -> Token:
        """Read an identifier that names something new (not a reserved word)."""
        tok = self.tok
        if tok.kind is not TokenKind.IDENT:
            raise self.unexpected(what)
        if tok.text in RESERVED_WORDS:
            raise self.error(f"'{tok.text}' is a reserved word and cannot be used as {what}")
        return self.next()

    def scoped_name(self, what: str) -> tuple[tuple[str, ...], Location]:
        """Read ``A`` or ``A::B`` or ``A::B::C``."""
        first = self.name(what)
        parts = [first.text]
        while self.at_punct("::"):
            self.next()
            parts.append(self.name(f"a name after '::' in {what}").text)
        return tuple(parts), first.loc

    # ------------------------------------------------------------------------------ document

    def document(self) -> ast.Document:
        includes: list[ast.Include] = []
        modules: list[ast.Module] = []
        while True:
            tok = self.tok
            if tok.kind is TokenKind.EOF:
                break
            if tok.kind is TokenKind.INCLUDE:
                self.next()
                includes.append(ast.Include(str(tok.value), tok.loc))
            elif self.at_word("module"):
                modules.append(self.module())
            elif tok.kind is TokenKind.IDENT and tok.text in (
                "struct",
                "enum",
                "const",
                "key",
                "interface",
            ):
                raise self.error(f"'{tok.text}' must appear inside a module")
            else:
                raise self.unexpected("'module' or '#include'")
        return ast.Document(self.path, tuple(includes), tuple(modules))

    def module(self) -> ast.Module:
        start = self.expect_word("module")
        name = self.name("a module name")
        self.expect_punct("{", f" after 'module {name.text}'")
        definitions: list[ast.Definition] = []
        while not self.at_punct("}"):
            definitions.append(self.definition())
        self.next()
        self.expect_punct(";", f" after the end of module '{name.text}'")
        return ast.Module(name.text, _attach_keys(definitions), start.loc)

    def definition(self) -> ast.Definition:
        tok = self.tok
        if tok.kind is TokenKind.IDENT:
            word = tok.text
            if word == "struct":
                return self.struct()
            if word == "enum":
                return self.enum()
            if word == "const":
                return self.const()
            if word == "key":
                return self.key()
            if word == "interface":
                return self.interface()
            if word == "module":
                raise self.error("nested modules are not supported")
            if word in ("exception", "class", "typedef", "namespace", "union", "service"):
                raise self.error(f"'{word}' definitions are not supported by TARS IDL")
        if tok.kind is TokenKind.INCLUDE:
            raise self.error("#include must appear outside of modules")
        raise self.unexpected(_DEFINITION_WORDS)

    # ------------------------------------------------------------------------------ struct

    def struct(self) -> ast.StructDef:
        self.expect_word("struct")
        name = self.name("a struct name")
        self.expect_punct("{", f" after 'struct {name.text}'")
        fields: list[ast.FieldDef] = []
        while not self.at_punct("}"):
            fields.append(self.field())
        self.next()
        self.expect_punct(";", f" after the end of struct '{name.text}'")
        return ast.StructDef(name.text, tuple(fields), (), name.loc)

    def field(self) -> ast.FieldDef:
        tag_tok = self.tok
        if tag_tok.kind is not TokenKind.INT:
            if tag_tok.kind is TokenKind.IDENT and tag_tok.text in ("require", "optional"):
                raise self.error("missing field tag before 'require'/'optional'")
            raise self.unexpected("a field tag (integer) or '}'")
        self.next()
        assert isinstance(tag_tok.value, int)
        tag = tag_tok.value
        if not 0 <= tag <= MAX_TAG:
            raise self.error(f"field tag {tag} out of range 0..{MAX_TAG}", tag_tok.loc)
        if self.at_word("require"):
            required = True
        elif self.at_word("optional"):
            required = False
        else:
            raise self.unexpected("'require' or 'optional'")
        self.next()
        ftype = self.type()
        name = self.name("a field name")
        if self.at_punct("["):
            raise self.error(f"array fields ('{name.text}[N]') are not supported")
        default: ast.Literal | None = None
        if self.at_punct("="):
            self.next()
            default = self.literal("a default value")
        self.expect_punct(";", f" after field '{name.text}'")
        return ast.FieldDef(tag, required, ftype, name.text, default, tag_tok.loc)

    # ------------------------------------------------------------------------------ enum

    def enum(self) -> ast.EnumDef:
        self.expect_word("enum")
        name = self.name("an enum name")
        self.expect_punct("{", f" after 'enum {name.text}'")
        members: list[ast.EnumMember] = []
        while True:
            if self.at_punct("}"):
                if not members:
                    raise self.error(f"enum '{name.text}' has no members")
                break
            member = self.name("an enum member name")
            value: ast.Literal | None = None
            if self.at_punct("="):
                self.next()
                value = self.literal("an enum value")
            members.append(ast.EnumMember(member.text, value, member.loc))
            if self.at_punct(","):
                self.next()
            elif not self.at_punct("}"):
                raise self.unexpected("',' or '}'")
        self.next()
        self.expect_punct(";", f" after the end of enum '{name.text}'")
        return ast.EnumDef(name.text, tuple(members), name.loc)

    # ------------------------------------------------------------------------------ const, key

    def const(self) -> ast.ConstDef:
        self.expect_word("const")
        ctype = self.type()
        name = self.name("a constant name")
        self.expect_punct("=", f" after 'const ... {name.text}'")
        value = self.literal("a constant value")
        self.expect_punct(";", f" after const '{name.text}'")
        return ast.ConstDef(ctype, name.text, value, name.loc)

    def key(self) -> ast.KeyDef:
        start = self.expect_word("key")
        self.expect_punct("[", " after 'key'")
        struct = self.named_type("a struct name in key[...]")
        fields: list[Token] = []
        while self.at_punct(","):
            self.next()
            fields.append(self.name("a field name in key[...]"))
        if not fields:
            raise self.unexpected("',' and a field name")
        self.expect_punct("]", " at the end of key[...]")
        self.expect_punct(";", " after key[...]")
        return ast.KeyDef(
            struct, tuple(f.text for f in fields), start.loc, tuple(f.loc for f in fields)
        )

    # ------------------------------------------------------------------------------ interface

    def interface(self) -> ast.InterfaceDef:
        self.expect_word("interface")
        name = self.name("an interface name")
        self.expect_punct("{", f" after 'interface {name.text}'")
        operations: list[ast.Operation] = []
        while not self.at_punct("}"):
            operations.append(self.operation())
        self.next()
        self.expect_punct(";", f" after the end of interface '{name.text}'")
        return ast.InterfaceDef(name.text, tuple(operations), name.loc)

    def operation(self) -> ast.Operation:
        start = self.tok
        ret: ast.TypeNode | None
        if self.at_word("void"):
            self.next()
            ret = None
        else:
            ret = self.type("a return type, 'void' or '}'")
        name = self.name("an operation name")
        self.expect_punct("(", f" after operation name '{name.text}'")
        params: list[ast.Param] = []
        if not self.at_punct(")"):
            while True:
                params.append(self.param(len(params) + 1))
                if self.at_punct(","):
                    self.next()
                    continue
                if self.at_punct(")"):
                    break
                raise self.unexpected("',' or ')'")
        self.next()
        self.expect_punct(";", f" after operation '{name.text}'")
        return ast.Operation(name.text, ret, tuple(params), start.loc)

    def param(self, tag: int) -> ast.Param:
        start = self.tok
        is_out = False
        if self.at_word("out"):
            self.next()
            is_out = True
        if self.at_word("routekey"):
            raise self.error("'routekey' parameters are not supported")
        ptype = self.type()
        name = self.name("a parameter name")
        if self.at_punct("="):
            raise self.error("parameter default values are not supported")
        return ast.Param(name.text, ptype, is_out, tag, start.loc)

    # ------------------------------------------------------------------------------ types

    def named_type(self, what: str) -> ast.NamedTypeNode:
        parts, loc = self.scoped_name(what)
        if len(parts) > 2:
            raise self.error(
                f"invalid qualified name '{'::'.join(parts)}' (expected Name or Module::Name)", loc
            )
        if len(parts) == 2:
            return ast.NamedTypeNode(parts[1], parts[0], loc)
        return ast.NamedTypeNode(parts[0], None, loc)

    def type(self, what: str = "a type", depth: int = 0) -> ast.TypeNode:
        tok = self.tok
        if depth > MAX_TYPE_DEPTH:
            raise self.error(f"type nesting deeper than {MAX_TYPE_DEPTH} levels")
        if tok.kind is not TokenKind.IDENT:
            raise self.unexpected(what)
        word = tok.text
        if word in _SIMPLE_BUILTINS:
            self.next()
            return ast.BuiltinTypeNode(word, tok.loc)
        if word == "unsigned":
            self.next()
            inner = self.tok
            if inner.kind is TokenKind.IDENT and inner.text in _UNSIGNED_BUILTINS:
                self.next()
                return ast.BuiltinTypeNode(f"unsigned {inner.text}", tok.loc)
            shown = f"unsigned {inner.text}" if inner.kind is TokenKind.IDENT else "unsigned"
            raise self.error(
                f"'{shown}' is not a TARS type (only unsigned byte, short and int)", tok.loc
            )
        if word == "vector":
            self.next()
            self.expect_punct("<", " after 'vector'")
            elem = self.type("an element type", depth + 1)
            self.expect_punct(">", " to close 'vector<'")
            return ast.VectorTypeNode(elem, tok.loc)
        if word == "map":
            self.next()
            self.expect_punct("<", " after 'map'")
            key = self.type("a key type", depth + 1)
            self.expect_punct(",", " between map key and value types")
            value = self.type("a value type", depth + 1)
            self.expect_punct(">", " to close 'map<'")
            return ast.MapTypeNode(key, value, tok.loc)
        if word == "void":
            raise self.error("'void' is only allowed as an operation return type")
        if word in RESERVED_WORDS:
            raise self.unexpected(what)
        return self.named_type(what)

    # ------------------------------------------------------------------------------ literals

    def literal(self, what: str) -> ast.Literal:
        tok = self.tok
        if tok.kind is TokenKind.INT:
            self.next()
            assert isinstance(tok.value, int)
            return ast.IntLiteral(tok.value, tok.loc)
        if tok.kind is TokenKind.FLOAT:
            self.next()
            assert isinstance(tok.value, float)
            return ast.FloatLiteral(tok.value, tok.loc)
        if tok.kind is TokenKind.STRING:
            self.next()
            return ast.StringLiteral(str(tok.value), tok.loc)
        if self.at_word("true") or self.at_word("false"):
            self.next()
            return ast.BoolLiteral(tok.text == "true", tok.loc)
        if tok.kind is TokenKind.IDENT and tok.text not in RESERVED_WORDS:
            parts, loc = self.scoped_name(what)
            return ast.NameLiteral(parts, loc)
        raise self.unexpected(what)


def _attach_keys(definitions: list[ast.Definition]) -> tuple[ast.Definition, ...]:
    """Copy ``key[S, ...]`` field lists onto struct ``S`` of the same module block.

    The :class:`~k8stars.tars.idl.ast.KeyDef` stays in the list (the resolver uses it).
    """
    keys: dict[str, tuple[str, ...]] = {}
    for d in definitions:
        if isinstance(d, ast.KeyDef) and d.struct.module is None:
            keys.setdefault(d.struct.name, d.fields)
    if not keys:
        return tuple(definitions)
    return tuple(
        dataclasses.replace(d, keys=keys[d.name])
        if isinstance(d, ast.StructDef) and d.name in keys
        else d
        for d in definitions
    )


def parse_tokens(tokens: list[Token], path: str = "<string>") -> ast.Document:
    """Parse a token list (as returned by :func:`~k8stars.tars.idl.lexer.tokenize`)."""
    return _Parser(tokens, path).document()


def parse_source(text: str, path: str = "<string>") -> ast.Document:
    """Parse the text of one ``.tars`` file (includes are recorded, not loaded).

    Raises:
        IdlSyntaxError: with the location of the first lexical or syntax error.
    """
    return parse_tokens(tokenize(text, path), path)
