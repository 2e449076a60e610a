"""The TARS config-file format (``<tars><application>...``), as TarsCpp's ``tc_config`` reads it.

A file is a tree of domains (``<name>`` ... ``</name>``) holding parameters (``key=value``) and
comment lines (``# ...``). This module keeps the tree as a document model that preserves order
and comments, so a file can be parsed, changed, merged and rendered back.

Grammar (TarsCpp):

* Lines are split on ``\\n`` and trimmed of `` \\r\\n\\t``; empty lines are skipped.
* A line starting with ``#`` is a comment. There are no inline comments: ``a=1 #x`` has the
  value ``1 #x``.
* ``<name>`` opens a domain (text after the first ``>`` is ignored); ``</name>`` closes the
  innermost open domain and must name it. Re-opening a domain at the same level merges into it.
* Any other line is a parameter, split at the first ``=`` not preceded by a backslash; key and
  value are trimmed, then the escapes ``\\\\ \\r \\n \\t \\=`` are decoded (any other backslash
  sequence is an error). A line without such ``=`` is a key with an empty value (``allow``).
  Keys may repeat; the last one wins on lookup.

Deviation from TarsCpp: a key-only line is escape-decoded like any key (TarsCpp keeps it raw),
so that a rendered key holding ``\\=`` reads back unchanged.

Paths use TarsCpp syntax: ``/tars/application/server`` names a domain and
``/tars/application/server<app>`` a parameter.

Every problem with the input raises :class:`ConfigError`, whose ``str`` is
``source:line: message``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TypeAlias, overload

__all__ = [
    "Comment",
    "ConfigDomain",
    "ConfigError",
    "Node",
    "Param",
    "TarsConfig",
    "load_config",
    "merge",
    "parse_config",
    "render",
]

_WS = " \r\n\t"
_INDENT = "  "
_MAX_DEPTH = 100
_DECODE = {"\\": "\\", "r": "\r", "n": "\n", "t": "\t", "=": "="}
_ESCAPE_RE = re.compile(r"\\(.?)", re.DOTALL)
_VALUE_ESCAPES = str.maketrans({"\\": "\\\\", "\r": "\\r", "\n": "\\n", "\t": "\\t"})
_KEY_ESCAPES = str.maketrans({"\\": "\\\\", "\r": "\\r", "\n": "\\n", "\t": "\\t", "=": "\\="})
_INT_RE = re.compile(r"[+-]?[0-9]+")


class ConfigError(ValueError):
    """A config file (or a value put into the model) that the TARS format cannot hold.

    ``source`` is the file name (or ``"<string>"``) and ``line`` the 1-based line number; either
    may be None when unknown.
    """

    def __init__(self, message: str, source: str | None = None, line: int | None = None) -> None:
        super().__init__(message, source, line)
        self.message = message
        self.source = source
        self.line = line

    def __str__(self) -> str:
        if self.source is None:
            return self.message
        if self.line is None:
            return f"{self.source}: {self.message}"
        return f"{self.source}:{self.line}: {self.message}"


# -- leaf nodes ---------------------------------------------------------------------------------


def _key_problem(key: str) -> str | None:
    if key != key.strip(" "):
        return f"key {key!r} has leading or trailing spaces"
    if key.startswith(("#", "<")):
        return f"key {key!r} starts with {key[0]!r}"
    return None


def _value_problem(value: str) -> str | None:
    if value != value.strip(" "):
        return f"value {value!r} has leading or trailing spaces"
    return None


def _comment_problem(text: str) -> str | None:
    if "\n" in text or text != text.rstrip(_WS):
        return f"comment {text!r} contains a line break or ends with whitespace"
    return None


def _name_problem(name: str) -> str | None:
    if not name:
        return "empty domain name"
    if any(c in name for c in "<>/\n") or name != name.strip(_WS):
        return f"invalid domain name {name!r}"
    return None


def _check(problem: str | None) -> None:
    if problem is not None:
        raise ConfigError(problem)


@dataclass(frozen=True, slots=True)
class Param:
    """One ``key=value`` line (``value`` is ``""`` for a key-only line such as ``allow``)."""

    key: str
    value: str = ""

    def __post_init__(self) -> None:
        _check(_key_problem(self.key) or _value_problem(self.value))


@dataclass(frozen=True, slots=True)
class Comment:
    """One ``#`` line; ``text`` is what follows the ``#``."""

    text: str

    def __post_init__(self) -> None:
        _check(_comment_problem(self.text))


# -- domains ------------------------------------------------------------------------------------


class ConfigDomain:
    """A ``<name>`` block: an ordered list of parameters, comments and sub-domains.

    Sub-domain names are unique within a domain; parameter keys may repeat (the last wins).
    """

    __slots__ = ("_children", "_domains", "_name")

    def __init__(self, name: str) -> None:
        _check(_name_problem(name))
        self._name = name
        self._children: list[Node] = []
        self._domains: dict[str, ConfigDomain] = {}

    @classmethod
    def _root(cls) -> ConfigDomain:
        root = cls.__new__(cls)
        root._name = ""
        root._children = []
        root._domains = {}
        return root

    @property
    def name(self) -> str:
        """The domain name (``""`` for the root of a file)."""
        return self._name

    @property
    def children(self) -> tuple[Node, ...]:
        """All items in file order."""
        return tuple(self._children)

    def subdomains(self) -> list[str]:
        """Names of the sub-domains, in order."""
        return list(self._domains)

    def subdomain(self, name: str) -> ConfigDomain | None:
        """The sub-domain called ``name``, or None."""
        return self._domains.get(name)

    def params(self) -> dict[str, str]:
        """Effective parameter values, keyed in order of first appearance."""
        return {n.key: n.value for n in self._children if isinstance(n, Param)}

    @overload
    def get(self, key: str) -> str | None: ...
    @overload
    def get(self, key: str, default: str) -> str: ...
    def get(self, key: str, default: str | None = None) -> str | None:
        """The effective value of ``key`` (its last occurrence), or ``default``."""
        found = self._last_param(key)
        return default if found is None else found[1].value

    def set(self, key: str, value: str = "") -> None:
        """Set ``key``: replace its effective value in place, or add it after the last parameter."""
        param = Param(key, value)
        found = self._last_param(key)
        if found is None:
            self._insert_param(param)
        else:
            self._children[found[0]] = param

    def add_param(self, key: str, value: str = "") -> None:
        """Append a ``key=value`` line, even if ``key`` is already present."""
        self._children.append(Param(key, value))

    def add_comment(self, text: str) -> None:
        """Append a ``#text`` line."""
        self._children.append(Comment(text))

    def add_domain(self, name: str) -> ConfigDomain:
        """Return the sub-domain ``name``, appending a new empty one if it does not exist."""
        found = self._domains.get(name)
        if found is None:
            found = ConfigDomain(name)
            self._append_domain(found)
        return found

    def copy(self) -> ConfigDomain:
        """A deep copy."""
        twin = ConfigDomain._root()
        twin._name = self._name
        for node in self._children:
            if isinstance(node, ConfigDomain):
                twin._append_domain(node.copy())
            else:
                twin._children.append(node)  # leaves are never mutated: safe to share
        return twin

    def _append_domain(self, domain: ConfigDomain) -> None:
        self._children.append(domain)
        self._domains[domain.name] = domain

    def _last_param(self, key: str) -> tuple[int, Param] | None:
        for index in range(len(self._children) - 1, -1, -1):
            node = self._children[index]
            if isinstance(node, Param) and node.key == key:
                return index, node
        return None

    def _insert_param(self, param: Param, comments: list[Comment] | None = None) -> None:
        """Insert ``comments`` and ``param`` after the last parameter (or at the end)."""
        at = len(self._children)
        for index in range(len(self._children) - 1, -1, -1):
            if isinstance(self._children[index], Param):
                at = index + 1
                break
        self._children[at:at] = [*(comments or ()), param]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ConfigDomain):
            return NotImplemented
        return self._name == other._name and self._children == other._children

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ConfigDomain({self._name!r}, {len(self._children)} items)"


Node: TypeAlias = "Param | Comment | ConfigDomain"
"""An item of a domain: a parameter, a comment line or a sub-domain."""


# -- the document -------------------------------------------------------------------------------


def _split_param_path(path: str) -> tuple[str, str]:
    lt = path.find("<")
    if lt < 0 or not path.endswith(">"):
        raise ConfigError(f"bad parameter path {path!r}: expected '/domain/path<key>'")
    return path[:lt], path[lt + 1 : -1]


class TarsConfig:
    """A parsed config file: an unnamed root domain plus the ``source`` used in errors."""

    __slots__ = ("root", "source")

    def __init__(self, source: str = "<string>") -> None:
        self.root = ConfigDomain._root()
        self.source = source

    def domain(self, path: str) -> ConfigDomain | None:
        """The domain at ``path`` (e.g. ``/tars/application/server``), or None."""
        current: ConfigDomain | None = self.root
        for name in path.split("/"):
            if name and current is not None:
                current = current.subdomain(name)
        return current

    @overload
    def get(self, path: str) -> str | None: ...
    @overload
    def get(self, path: str, default: str) -> str: ...
    def get(self, path: str, default: str | None = None) -> str | None:
        """The value at ``path`` (e.g. ``/tars/application/server<app>``), or ``default``."""
        domain_path, key = _split_param_path(path)
        domain = self.domain(domain_path)
        value = None if domain is None else domain.get(key)
        return default if value is None else value

    @overload
    def get_int(self, path: str) -> int | None: ...
    @overload
    def get_int(self, path: str, default: int) -> int: ...
    def get_int(self, path: str, default: int | None = None) -> int | None:
        """The value at ``path`` as a decimal integer, or ``default`` when absent."""
        value = self.get(path)
        if value is None:
            return default
        if not _INT_RE.fullmatch(value):
            raise ConfigError(f"{path}: expected an integer, got {value!r}", self.source)
        return int(value)

    def set(self, path: str, value: str = "") -> None:
        """Set the parameter at ``path``, creating the domains on the way."""
        domain_path, key = _split_param_path(path)
        domain = self.root
        for name in domain_path.split("/"):
            if name:
                domain = domain.add_domain(name)
        domain.set(key, value)

    def copy(self) -> TarsConfig:
        """A deep copy."""
        twin = TarsConfig(self.source)
        twin.root = self.root.copy()
        return twin

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TarsConfig):
            return NotImplemented
        return self.root == other.root

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"TarsConfig(source={self.source!r}, {self.root.subdomains()})"


# -- parsing ------------------------------------------------------------------------------------


def _decode(raw: str) -> str:
    def one(match: re.Match[str]) -> str:
        decoded = _DECODE.get(match.group(1))
        if decoded is None:
            raise ConfigError(f"bad escape {match.group(0)!r} in {raw!r}")
        return decoded

    return _ESCAPE_RE.sub(one, raw) if "\\" in raw else raw


def _find_separator(line: str) -> int:
    """Index of the first ``=`` not preceded by a backslash, or -1 (TarsCpp rule)."""
    pos = line.find("=")
    while pos > 0 and line[pos - 1] == "\\":
        pos = line.find("=", pos + 1)
    return pos


def _parse_param(line: str) -> Param:
    pos = _find_separator(line)
    if pos < 0:
        return Param(_decode(line))
    key = _decode(line[:pos].strip(_WS))
    return Param(key, _decode(line[pos + 1 :].strip(_WS)))


class _Parser:
    """Line-by-line builder; ``stack`` holds the open domains and the line that opened each."""

    def __init__(self, source: str) -> None:
        self.config = TarsConfig(source)
        self.stack: list[tuple[ConfigDomain, int]] = [(self.config.root, 0)]

    def feed(self, line: str, lineno: int) -> None:
        top = self.stack[-1][0]
        if line.startswith("#"):
            top._children.append(Comment(line[1:]))
        elif line.startswith("<"):
            self._tag(line, lineno)
        else:
            top._children.append(_parse_param(line))

    def _tag(self, line: str, lineno: int) -> None:
        end = line.find(">")
        if end < 0:
            raise ConfigError(f"missing '>' in tag {line!r}")
        if line.startswith("</"):
            self._close(line[2:end].strip(_WS))
        else:
            self._open(line[1:end].strip(_WS), lineno)

    def _open(self, name: str, lineno: int) -> None:
        _check(_name_problem(name))
        if len(self.stack) > _MAX_DEPTH:
            raise ConfigError(f"domains nested deeper than {_MAX_DEPTH} levels")
        self.stack.append((self.stack[-1][0].add_domain(name), lineno))

    def _close(self, name: str) -> None:
        if not name:
            raise ConfigError("empty domain name in closing tag")
        if len(self.stack) == 1:
            raise ConfigError(f"closing tag </{name}> without an open domain")
        top, opened = self.stack[-1]
        if name != top.name:
            raise ConfigError(
                f"closing tag </{name}> does not match <{top.name}> opened at line {opened}"
            )
        self.stack.pop()

    def finish(self) -> TarsConfig:
        if len(self.stack) > 1:
            top, opened = self.stack[-1]
            raise ConfigError(
                f"domain <{top.name}> is not closed at end of file", self.config.source, opened
            )
        return self.config


def parse_config(text: str, source: str = "<string>") -> TarsConfig:
    """Parse TARS config text; ``source`` names it in errors."""
    parser = _Parser(source)
    for lineno, raw in enumerate(text.split("\n"), 1):
        line = raw.strip(_WS)
        if not line:
            continue
        try:
            parser.feed(line, lineno)
        except ConfigError as exc:
            raise ConfigError(exc.message, source, lineno) from None
    return parser.finish()


def load_config(path: str | os.PathLike[str]) -> TarsConfig:
    """Read and parse a UTF-8 config file (a leading BOM is ignored)."""
    source = os.fspath(path)
    try:
        with open(source, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ConfigError(f"cannot read file: {exc.strerror or exc}", source) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"not valid UTF-8: {exc.reason}", source, line) from None
    return parse_config(text, source)


# -- rendering ----------------------------------------------------------------------------------


def _render_param(param: Param) -> str:
    key = param.key.translate(_KEY_ESCAPES)
    if not param.value:
        return key or "="
    # TarsCpp does not split at an '=' right after a backslash: keep one space in between.
    separator = " =" if key.endswith("\\") else "="
    return key + separator + param.value.translate(_VALUE_ESCAPES)


def _render_domain(domain: ConfigDomain, depth: int, out: list[str]) -> None:
    pad = _INDENT * depth
    for node in domain._children:
        if isinstance(node, Comment):
            out.append(f"{pad}#{node.text}\n")
        elif isinstance(node, Param):
            out.append(f"{pad}{_render_param(node)}\n")
        else:
            out.append(f"{pad}<{node.name}>\n")
            _render_domain(node, depth + 1, out)
            out.append(f"{pad}</{node.name}>\n")


def render(config: TarsConfig) -> str:
    """Canonical text: two-space indentation per level, values escaped only where needed."""
    out: list[str] = []
    _render_domain(config.root, 0, out)
    return "".join(out)


# -- merging ------------------------------------------------------------------------------------


def _merge_into(target: ConfigDomain, override: ConfigDomain) -> None:
    pending: list[Comment] = []  # override comments waiting for the item they precede
    for node in override._children:
        if isinstance(node, Comment):
            pending.append(node)
            continue
        if isinstance(node, Param):
            found = target._last_param(node.key)
            if found is None:
                target._insert_param(node, pending)
            else:
                target._children[found[0]] = node
        else:
            existing = target.subdomain(node.name)
            if existing is None:
                target._children.extend(pending)
                target._append_domain(node.copy())
            else:
                _merge_into(existing, node)
        pending = []


def merge(base: TarsConfig, override: TarsConfig) -> TarsConfig:
    """A new config: ``base`` with ``override`` laid over it (what TARS_MERGE_CONF does).

    Override values replace the base's effective value in place. New keys go after the last
    parameter of their domain, new sub-domains at its end, both in the override's order, each
    with the override comments right before it. Domains merge recursively; base comments stay.
    """
    result = base.copy()
    _merge_into(result.root, override.root)
    return result
