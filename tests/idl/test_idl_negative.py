"""Negative fixtures (``fixtures/e_*.tars``): exact error class, location and message."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from k8stars.tars.idl import (
    IdlError,
    IdlResolveError,
    IdlSyntaxError,
    load_idl,
    load_idl_source,
)

FIXTURES = Path(__file__).parent / "fixtures"
SYN, RES = IdlSyntaxError, IdlResolveError

# fixture -> (error class, line, column, message fragment)
CASES: dict[str, tuple[type[IdlError], int, int, str]] = {
    "e_unterminated_comment": (SYN, 3, 5, "unterminated /* comment"),
    "e_missing_semicolon": (SYN, 6, 9, "expected ';' after field 'a', found integer 1"),
    "e_unknown_type": (RES, 6, 20, "unknown type 'Missing'"),
    "e_duplicate_tag": (RES, 7, 9, "duplicate tag 1 in struct 'S'"),
    "e_tag_256": (SYN, 6, 9, "field tag 256 out of range 0..255"),
    "e_bad_default_type": (RES, 5, 32, "of type int must be an integer, found string 'ten'"),
    "e_missing_include": (RES, 2, 1, "included file 'nowhere/missing.tars' not found"),
    "e_unexpected_eof": (SYN, 6, 1, "unexpected end of file"),
    "e_duplicate_name": (RES, 4, 10, "duplicate definition of 'M::S'"),
    "e_duplicate_field": (RES, 3, 33, "duplicate field name 'a'"),
    "e_duplicate_operation": (RES, 3, 29, "duplicate operation 'f'"),
    "e_bad_escape": (SYN, 3, 27, "invalid escape sequence '\\q'"),
    "e_unterminated_string": (SYN, 3, 22, "unterminated string literal"),
    "e_enum_forward_ref": (RES, 3, 18, "'B' is not an earlier member of enum 'E'"),
    "e_unsigned_long": (SYN, 3, 26, "'unsigned long' is not a TARS type"),
    "e_recursive_struct": (RES, 4, 16, "struct 'M.A' contains itself"),
    "e_key_unknown_field": (RES, 4, 15, "key[] field 'nope' is not a field of struct 'S'"),
    "e_nested_module": (SYN, 3, 5, "nested modules are not supported"),
    "e_int_range": (RES, 3, 36, "128 out of range for byte"),
    "e_enum_default_not_member": (RES, 4, 33, "'Z' is not a member of enum 'M::E'"),
    "e_routekey": (SYN, 5, 17, "'routekey' parameters are not supported"),
    "e_array_field": (SYN, 3, 31, "array fields ('a[N]') are not supported"),
    "e_octal": (SYN, 3, 19, "octal integer literals are not supported"),
    "e_const_struct": (RES, 4, 11, "only builtin types"),
    "e_bad_char": (SYN, 3, 30, "unexpected character '@'"),
    "e_outside_module": (SYN, 1, 1, "'struct' must appear inside a module"),
    "e_unknown_module": (RES, 3, 26, "unknown module 'Other'"),
    "e_interface_as_type": (RES, 4, 26, "'I' is an interface, not a type"),
    "e_bool_default": (RES, 3, 35, "must be true or false, found integer 1"),
    "e_container_default": (RES, 3, 43, "a field of type vector<int> cannot have a default"),
    "e_pragma": (SYN, 1, 1, "unsupported preprocessor directive '#pragma'"),
    "e_reserved_name": (SYN, 3, 30, "'require' is a reserved word"),
}


def test_every_negative_fixture_has_a_case() -> None:
    assert sorted(p.stem for p in FIXTURES.glob("e_*.tars")) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_negative_fixture(name: str) -> None:
    cls, line, column, fragment = CASES[name]
    path = FIXTURES / f"{name}.tars"
    with pytest.raises(IdlError) as info:
        load_idl(path)
    err = info.value
    assert type(err) is cls
    assert (err.path, err.line, err.column) == (str(path), line, column), str(err)
    assert fragment in err.message
    assert str(err) == f"{path}:{line}:{column}: {err.message}"


VALID = (FIXTURES / "grammar.tars").read_text(encoding="utf-8")
ALPHABET = st.sampled_from([*'{}<>[]();,=:#"/*\\-.x0 \n', "module", "struct", "vector<"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(0, len(VALID)), st.integers(0, 3), st.lists(ALPHABET, max_size=3)),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_source_fails_only_with_idl_errors(
    edits: list[tuple[int, int, list[str]]],
) -> None:
    text = VALID
    for pos, cut, insert in edits:
        text = text[:pos] + "".join(insert) + text[pos + cut :]
    try:
        load_idl_source(text, "fuzz.tars")
    except IdlError as err:
        assert err.path == "fuzz.tars"
        assert err.line >= 1 and err.column >= 1


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=60))
def test_random_text_fails_only_with_idl_errors(text: str) -> None:
    with contextlib.suppress(IdlError):
        load_idl_source(text)
