"""The bundled framework IDL files load and carry the documented tags, types and methods."""

from __future__ import annotations

from pathlib import Path

import pytest

from k8stars.tars.idl import (
    FRAMEWORK_DIR,
    BuiltinType,
    EnumRef,
    MapType,
    ResolvedIdl,
    ResolvedInterface,
    ResolvedStruct,
    StructRef,
    TarsType,
    VectorType,
    load_idl,
)

INT = BuiltinType("int")
LONG = BuiltinType("long")
BOOL = BuiltinType("bool")
STRING = BuiltinType("string")
EPS = VectorType(StructRef("tars.EndpointF"))
STRINGS = VectorType(STRING)
STR_MAP = MapType(STRING, STRING)

FieldSpec = tuple[int, bool, TarsType, str]
#: (name, out?, type) per parameter; tags are checked to be 1..n
MethodSpec = tuple[str, TarsType | None, list[tuple[str, bool, TarsType]]]


def fields(struct: ResolvedStruct) -> list[FieldSpec]:
    return [(f.tag, f.required, f.type, f.name) for f in struct.fields]


def methods(iface: ResolvedInterface) -> list[MethodSpec]:
    out: list[MethodSpec] = []
    for op in iface.operations:
        assert [p.tag for p in op.params] == list(range(1, len(op.params) + 1))
        out.append((op.name, op.return_type, [(p.name, p.is_out, p.type) for p in op.params]))
    return out


def load(name: str) -> ResolvedIdl:
    return load_idl(FRAMEWORK_DIR / name)


def test_all_framework_files_load() -> None:
    names = sorted(p.name for p in FRAMEWORK_DIR.glob("*.tars"))
    assert names == [
        "AdminF.tars",
        "ConfigF.tars",
        "EndpointF.tars",
        "NodeF.tars",
        "NotifyF.tars",
        "QueryF.tars",
        "tarsregistry.tars",
    ]
    for name in names:
        idl = load(name)
        assert all(d.module == "tars" for d in idl.definitions)


def test_endpointf() -> None:
    idl = load("EndpointF.tars")
    ep = idl.struct("tars.EndpointF")
    assert fields(ep) == [
        (0, True, STRING, "host"),
        (1, True, INT, "port"),
        (2, True, INT, "timeout"),
        (3, True, INT, "istcp"),
        (4, True, INT, "grid"),
        (5, False, INT, "groupworkid"),
        (6, False, INT, "grouprealid"),
        (7, False, STRING, "setId"),
        (8, False, INT, "qos"),
        (9, False, INT, "bakFlag"),
        (11, False, INT, "weight"),
        (12, False, INT, "weightType"),
        (13, False, INT, "authType"),
        (14, False, STRING, "nodeName"),
    ]
    assert ep.keys == (
        "host",
        "port",
        "timeout",
        "istcp",
        "grid",
        "qos",
        "weight",
        "weightType",
        "authType",
    )
    assert fields(idl.struct("tars.ObjectItem")) == [
        (0, False, EPS, "vActiveEndpoints"),
        (1, False, EPS, "vInactiveEndpoints"),
    ]


def test_queryf() -> None:
    idl = load("QueryF.tars")
    assert Path(idl.files[0]).name == "EndpointF.tars"
    assert fields(idl.struct("tars.GetMasterSlaveLock")) == [
        (0, False, STRING, "application"),
        (1, False, STRING, "server_name"),
        (2, False, STRING, "node_name"),
        (3, False, BOOL, "isMaster"),
        (4, False, BOOL, "lastErr"),
        (5, False, INT, "timeout"),
        (6, False, INT, "bakType"),
    ]
    outs = [("activeEp", True, EPS), ("inactiveEp", True, EPS)]
    assert methods(idl.interface("tars.QueryF")) == [
        ("findObjectById", EPS, [("id", False, STRING)]),
        ("findObjectById4Any", INT, [("id", False, STRING), *outs]),
        ("findObjectById4All", INT, [("id", False, STRING), *outs]),
        ("findObjectByIdInSameGroup", INT, [("id", False, STRING), *outs]),
        (
            "findObjectByIdInSameStation",
            INT,
            [("id", False, STRING), ("sStation", False, STRING), *outs],
        ),
        ("findObjectByIdInSameSet", INT, [("id", False, STRING), ("setId", False, STRING), *outs]),
        ("findObjectNodeName", INT, [("id", False, STRING), ("nodeName", True, STRINGS)]),
        ("registerChange", INT, [("timestamp", False, STR_MAP), ("name", False, STRING)]),
        ("registerQuery", INT, [("id", False, STRING), ("name", False, STRING)]),
        ("getLocker", INT, [("req", False, StructRef("tars.GetMasterSlaveLock"))]),
    ]


def test_adminf() -> None:
    assert methods(load("AdminF.tars").interface("tars.AdminF")) == [
        ("shutdown", None, []),
        ("notify", STRING, [("command", False, STRING)]),
        ("getPid", LONG, []),
    ]


def test_notifyf() -> None:
    idl = load("NotifyF.tars")
    assert idl.enum("tars.NOTIFYLEVEL").members == (
        ("NOTIFYNORMAL", 0),
        ("NOTIFYWARN", 1),
        ("NOTIFYERROR", 2),
    )
    assert idl.enum("tars.ReportType").members == (("REPORT", 0), ("NOTIFY", 1))
    assert fields(idl.struct("tars.ReportInfo")) == [
        (1, True, EnumRef("tars.ReportType"), "eType"),
        (2, True, STRING, "sApp"),
        (3, True, STRING, "sSet"),
        (4, True, STRING, "sContainer"),
        (5, True, STRING, "sServer"),
        (6, True, STRING, "sMessage"),
        (7, False, STRING, "sThreadId"),
        (8, False, EnumRef("tars.NOTIFYLEVEL"), "eLevel"),
        (9, False, STRING, "sNodeName"),
    ]
    assert methods(idl.interface("tars.Notify")) == [
        ("reportNotifyInfo", None, [("info", False, StructRef("tars.ReportInfo"))]),
    ]


def test_configf() -> None:
    idl = load("ConfigF.tars")
    info = idl.struct("tars.ConfigInfo")
    assert fields(info) == [
        (0, True, STRING, "appname"),
        (1, True, STRING, "servername"),
        (2, True, STRING, "filename"),
        (3, True, BOOL, "bAppOnly"),
        (4, False, STRING, "host"),
        (5, False, STRING, "setdivision"),
    ]
    assert info.fields[3].default is False
    lst = idl.struct("tars.GetConfigListInfo")
    assert fields(lst) == [
        (0, True, STRING, "appname"),
        (1, False, STRING, "servername"),
        (2, False, BOOL, "bAppOnly"),
        (3, False, STRING, "host"),
        (4, False, STRING, "setdivision"),
        (5, False, STRING, "containername"),
    ]
    assert [f.default for f in lst.fields] == [None, None, False, "", "", ""]
    ci = StructRef("tars.ConfigInfo")
    assert methods(idl.interface("tars.Config")) == [
        (
            "ListConfig",
            INT,
            [("app", False, STRING), ("server", False, STRING), ("vf", True, STRINGS)],
        ),
        (
            "loadConfig",
            INT,
            [
                ("app", False, STRING),
                ("server", False, STRING),
                ("filename", False, STRING),
                ("config", True, STRING),
            ],
        ),
        (
            "loadConfigByHost",
            INT,
            [
                ("appServerName", False, STRING),
                ("filename", False, STRING),
                ("host", False, STRING),
                ("config", True, STRING),
            ],
        ),
        (
            "checkConfig",
            INT,
            [
                ("appServerName", False, STRING),
                ("filename", False, STRING),
                ("host", False, STRING),
                ("result", True, STRING),
            ],
        ),
        ("ListConfigByInfo", INT, [("configInfo", False, ci), ("vf", True, STRINGS)]),
        ("loadConfigByInfo", INT, [("configInfo", False, ci), ("config", True, STRING)]),
        ("checkConfigByInfo", INT, [("configInfo", False, ci), ("result", True, STRING)]),
        (
            "ListAllConfigByInfo",
            INT,
            [("configInfo", False, StructRef("tars.GetConfigListInfo")), ("vf", True, STRINGS)],
        ),
    ]


def test_nodef() -> None:
    idl = load("NodeF.tars")
    assert fields(idl.struct("tars.ServerInfo")) == [
        (0, True, STRING, "application"),
        (1, True, STRING, "serverName"),
        (2, True, INT, "pid"),
        (3, False, STRING, "adapter"),
    ]
    si = StructRef("tars.ServerInfo")
    assert methods(idl.interface("tars.ServerF")) == [
        ("keepAlive", INT, [("serverInfo", False, si)]),
        ("keepActiving", INT, [("serverInfo", False, si)]),
        (
            "reportVersion",
            INT,
            [("app", False, STRING), ("serverName", False, STRING), ("version", False, STRING)],
        ),
        ("getLatestKeepAliveTime", BuiltinType("unsigned int"), []),
    ]


def test_tarsregistry() -> None:
    idl = load("tarsregistry.tars")
    assert fields(idl.struct("tars.AdapterConf")) == [
        (0, True, STRING, "servant"),
        (1, True, STRING, "endpoint"),
        (2, False, STRING, "protocol"),
        (3, False, INT, "maxConns"),
        (4, False, INT, "threadNum"),
        (5, False, INT, "queueCap"),
        (6, False, INT, "queueTimeout"),
    ]
    startup = idl.struct("tars.onStartupReq")
    assert fields(startup) == [
        (0, True, STRING, "nodeName"),
        (1, True, STRING, "application"),
        (2, True, STRING, "server"),
        (3, False, STRING, "setID"),
        (4, False, VectorType(StructRef("tars.AdapterConf")), "adapters"),
        (5, False, BOOL, "disableFlow"),
        (6, False, STRING, "State"),
        (7, False, STRING, "Version"),
        (8, False, STRING, "podName"),
        (9, False, STRING, "podUid"),
    ]
    assert startup.fields[6].default == "active"
    assert fields(idl.struct("tars.onPrestopReq")) == [
        (0, True, STRING, "nodeName"),
        (1, False, STRING, "application"),
        (2, False, STRING, "server"),
    ]
    assert fields(idl.struct("tars.keepAliveReq")) == [
        (0, True, STRING, "nodeName"),
        (1, True, STRING, "state"),
        (2, False, STRING, "application"),
        (3, False, STRING, "server"),
        (4, False, STRING, "podName"),
        (5, False, STRING, "podUid"),
    ]
    assert fields(idl.struct("tars.RegisterMetricsReq")) == [
        (0, True, STRING, "nodeName"),
        (1, True, STRING, "application"),
        (2, True, STRING, "server"),
        (3, True, INT, "metricsPort"),
    ]
    assert fields(idl.struct("tars.GetMetricsAdaptersReq")) == [(0, False, STR_MAP, "filter")]
    assert fields(idl.struct("tars.MetricsAdapterInfo")) == [
        (0, False, STRINGS, "targets"),
        (1, False, STR_MAP, "labels"),
    ]
    ref = StructRef
    assert methods(idl.interface("tars.tarsregistry")) == [
        ("onStartup", None, [("req", False, ref("tars.onStartupReq"))]),
        ("onPrestop", None, [("req", False, ref("tars.onPrestopReq"))]),
        ("keepAlive", None, [("req", False, ref("tars.keepAliveReq"))]),
        ("registerMetrics", None, [("req", False, ref("tars.RegisterMetricsReq"))]),
        (
            "getMetricsAdapters",
            None,
            [
                ("req", False, ref("tars.GetMetricsAdaptersReq")),
                ("rsp", True, VectorType(ref("tars.MetricsAdapterInfo"))),
            ],
        ),
    ]


@pytest.mark.parametrize("name", ["QueryF.tars", "ConfigF.tars", "NotifyF.tars"])
def test_framework_files_are_includable(tmp_path: Path, name: str) -> None:
    user = tmp_path / "user.tars"
    user.write_text(f'#include "{name}"\n#include "AdminF.tars"\nmodule App {{ }};')
    idl = load_idl(user, [FRAMEWORK_DIR])
    assert idl.interface("tars.AdminF").name == "AdminF"
