"""The builder: IDL → struct classes, enums, constants and interface method structs."""

from __future__ import annotations

from pathlib import Path

import pytest

from k8stars.tars.codec import STRING, StructType, VectorType
from k8stars.tars.idl import IdlError
from k8stars.tars.idl.loader import RETURN_FIELD, framework, load, load_source

INTEROP = Path(__file__).resolve().parents[1] / "interop" / "idl" / "Interop.tars"


def test_structs_enums_defaults_from_interop_idl() -> None:
    idl = load(INTEROP)
    color = idl.Interop.Color
    assert [(m.name, m.value) for m in color] == [("RED", 0), ("GREEN", 5), ("BLUE", 6)]
    value = idl.Interop.AllTypes()
    assert value.color is color.GREEN and value.opt == "dflt" and value.inner.label == "inner"
    assert value.inners == [] and value.inners is not idl.Interop.AllTypes().inners
    value.i64 = 2**40
    assert idl.Interop.AllTypes.tars_decode(value.tars_encode()) == value
    assert "AllTypes(b=False" in repr(value)


def test_framework_interfaces_carry_server_and_client_data() -> None:
    query = framework().interface("tars.QueryF")
    same_set = query.methods["findObjectByIdInSameSet"]
    assert [(p.name, p.tag, p.is_out) for p in same_set.params] == [
        ("id", 1, False), ("setId", 2, False), ("activeEp", 3, True), ("inactiveEp", 4, True)]
    assert [f.tag for f in same_set.args.__tars_fields__] == [1, 2]
    assert [(f.tag, f.name) for f in same_set.result.__tars_fields__] == [
        (0, RETURN_FIELD), (3, "activeEp"), (4, "inactiveEp")]
    endpoint = framework().struct("tars.EndpointF")
    assert same_set.result.__tars_fields__[1].type == VectorType(StructType(endpoint))
    admin = framework().interface("tars.AdminF").methods
    assert admin["shutdown"].return_type is None and admin["notify"].return_type == STRING
    registry = framework().interface("tars.tarsregistry").methods
    assert set(registry) == {"onStartup", "onPrestop", "keepAlive", "registerMetrics",
                             "getMetricsAdapters"}


def test_one_endpointf_class_across_framework_files() -> None:
    endpoint = framework().struct("tars.EndpointF")
    item = framework().struct("tars.ObjectItem")
    assert item.__tars_fields__[0].type == VectorType(StructType(endpoint))


def test_keywords_become_safe_attribute_names() -> None:
    idl = load_source("module M { struct S { 0 optional int from; 1 optional string class; }; };")
    s = idl.M.S()
    s.from_ = 3
    assert idl.M.S.tars_decode(s.tars_encode()).from_ == 3


def test_constants_and_lookup_errors() -> None:
    idl = load_source('module M { const int N = 5; const string S = "x"; };')
    assert (idl.M.N, idl.consts["M.S"]) == (5, "x")
    with pytest.raises(KeyError, match=r"no struct 'M\.Nope'"):
        idl.struct("M.Nope")
    with pytest.raises(AttributeError, match="no module"):
        _ = idl.Other


def test_recursive_struct_is_refused_with_a_location() -> None:
    with pytest.raises(IdlError, match=r"recursive struct M\.Tree is not supported") as info:
        load_source("module M { struct Tree { 0 optional vector<Tree> kids; }; };", "tree.tars")
    assert info.value.path == "tree.tars" and info.value.line == 1


def test_unhashable_map_keys_are_refused_with_a_location() -> None:
    source = ("module M {\n struct K { 0 optional int a; };\n"
              " struct S { 0 optional map<K, int> m; };\n};")
    with pytest.raises(IdlError, match=r"map keys of type M\.K are not supported") as info:
        load_source(source, "keys.tars")
    assert info.value.line == 3
