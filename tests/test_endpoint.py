"""Tests for k8stars.tars.endpoint (reference §3 and §4.1)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from k8stars.tars.endpoint import (
    DEFAULT_TIMEOUT,
    Endpoint,
    EndpointError,
    EndpointFLike,
    ProxyError,
    ProxySpec,
    parse_endpoint,
    parse_proxy,
)

INT32_MAX = 2**31 - 1


# --------------------------------------------------------------------------- Endpoint values


def test_defaults() -> None:
    ep = Endpoint("tcp", "10.0.0.1")
    assert (ep.port, ep.timeout, ep.grid, ep.qos) == (0, DEFAULT_TIMEOUT, 0, 0)
    assert (ep.weight, ep.weight_type, ep.auth_type) == (-1, 0, 0)
    assert (ep.set_id, ep.bind_host) == ("", "")
    assert DEFAULT_TIMEOUT == 3000


def test_frozen_and_slotted() -> None:
    ep = Endpoint("tcp", "h", 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ep.port = 2  # type: ignore[misc]
    assert not hasattr(ep, "__dict__")
    assert hash(ep) == hash(Endpoint("tcp", "h", 1))


@pytest.mark.parametrize(("proto", "istcp"), [("udp", 0), ("tcp", 1), ("ssl", 2)])
def test_istcp(proto: Any, istcp: int) -> None:
    assert Endpoint(proto, "h").istcp == istcp


def test_star_host() -> None:
    assert Endpoint("tcp", "*", 80).host == "0.0.0.0"
    assert parse_endpoint("tcp -h * -p 80").host == "0.0.0.0"
    assert str(parse_endpoint("tcp -h * -p 80")) == "tcp -h 0.0.0.0 -p 80 -t 3000"


@pytest.mark.parametrize(
    ("weight", "weight_type", "expected"),
    [
        (-1, 0, -1),
        (500, 0, 500),
        (0, 0, 0),
        (-1, 1, 100),
        (-1, 2, 100),
        (50, 1, 50),
        (100, 1, 100),
        (101, 1, 100),
        (500, 2, 100),
        (0, 1, 0),
    ],
)
def test_weight_rule(weight: int, weight_type: int, expected: int) -> None:
    assert Endpoint("tcp", "h", weight=weight, weight_type=weight_type).weight == expected


def test_weight_rule_in_parser() -> None:
    assert parse_endpoint("tcp -h h -p 1 -v 1").weight == 100
    assert parse_endpoint("tcp -h h -p 1 -v 1 -w 300").weight == 100
    assert parse_endpoint("tcp -h h -p 1 -w 300").weight == 300
    assert str(parse_endpoint("tcp -h h -p 1 -v 2")) == "tcp -h h -p 1 -t 3000 -w 100 -v 2"


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"protocol": "http"}, 'unknown protocol "http"'),
        ({"host": ""}, "host must not be empty"),
        ({"host": "a b"}, 'host "a b" must not contain whitespace'),
        ({"host": "-x"}, 'host "-x" must not start with "-"'),
        ({"port": -1}, "port -1 is out of range 0..65535"),
        ({"port": 65536}, "port 65536 is out of range 0..65535"),
        ({"timeout": -5}, "timeout -5 is out of range"),
        ({"weight": -2}, "weight -2 is out of range"),
        ({"qos": 2**31}, "qos 2147483648 is out of range"),
        ({"auth_type": 2}, "auth type 2 is not supported (expected 0 or 1)"),
        ({"set_id": "a b"}, 'set id "a b" must not contain whitespace'),
        ({"bind_host": "-b"}, 'bind host "-b" must not start with "-"'),
    ],
)
def test_validation_errors(kwargs: dict[str, Any], fragment: str) -> None:
    args: dict[str, Any] = {"protocol": "tcp", "host": "h", **kwargs}
    with pytest.raises(EndpointError) as info:
        Endpoint(**args)
    assert fragment in str(info.value)


@pytest.mark.parametrize("kwargs", [{"port": "80"}, {"port": True}, {"host": None}])
def test_type_errors(kwargs: dict[str, Any]) -> None:
    args: dict[str, Any] = {"protocol": "tcp", "host": "h", **kwargs}
    with pytest.raises(TypeError):
        Endpoint(**args)


def test_endpoint_error_is_value_error() -> None:
    assert issubclass(EndpointError, ValueError)
    assert issubclass(ProxyError, EndpointError)


# --------------------------------------------------------------------------- parse_endpoint


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # §7.3 / §6.3: adapter endpoint and admin `local` endpoint
        ("tcp -h 10.0.0.7 -p 10015 -t 60000", Endpoint("tcp", "10.0.0.7", 10015, 60000)),
        ("tcp -h 127.0.0.1 -p 10239 -t 30000", Endpoint("tcp", "127.0.0.1", 10239, 30000)),
        # §5.3: node obj endpoint with port 0
        ("tcp -h 10.0.0.5 -p 0", Endpoint("tcp", "10.0.0.5", 0)),
        ("udp -h 1.2.3.4 -p 5", Endpoint("udp", "1.2.3.4", 5)),
        ("ssl -h example.com -p 443", Endpoint("ssl", "example.com", 443)),
        (
            "tcp -h h -p 1 -t 10 -g 1 -q 46 -w 7 -v 1 -e 1",
            Endpoint("tcp", "h", 1, 10, grid=1, qos=46, weight=7, weight_type=1, auth_type=1),
        ),
        ("tcp -h h -p 1 -s sz.a.1", Endpoint("tcp", "h", 1, set_id="sz.a.1")),
        ("tcp -h h -p 1 -b 0.0.0.0", Endpoint("tcp", "h", 1, bind_host="0.0.0.0")),
        ("tcp -h ::1 -p 80", Endpoint("tcp", "::1", 80)),
        # whitespace tolerance
        ("  tcp\t-h   h \n -p\t1  ", Endpoint("tcp", "h", 1)),
        # option order does not matter; last occurrence wins
        ("tcp -p 1 -h a -h b", Endpoint("tcp", "b", 1)),
        # unknown options ignored with their argument; argument-less unknown options too
        ("tcp -h h -x foo -p 1 -z", Endpoint("tcp", "h", 1)),
        ("tcp -h h -a -p 1", Endpoint("tcp", "h", 1)),
        ("tcp -h h -p 00080", Endpoint("tcp", "h", 80)),
    ],
)
def test_parse_endpoint(text: str, expected: Endpoint) -> None:
    assert parse_endpoint(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("tcp -h 1.2.3.4 -p x", 'bad endpoint "tcp -h 1.2.3.4 -p x": port "x" is not a number'),
        ("", 'bad endpoint "": empty endpoint string'),
        ("   ", "empty endpoint string"),
        ("http -h a -p 1", 'unknown protocol "http" (expected tcp, udp or ssl)'),
        ("TCP -h a -p 1", 'unknown protocol "TCP"'),
        ("tcp -p 1", 'bad endpoint "tcp -p 1": missing host (-h)'),
        ("tcp", "missing host (-h)"),
        ("tcp -h", "option -h needs a value"),
        ("tcp -h -p 1", "option -h needs a value"),
        ("tcp -h a -p", "option -p needs a value"),
        ("tcp -h a -w -1", "option -w needs a value"),
        ("tcp -h a -p 1 junk", 'expected an option such as "-h", got "junk"'),
        ("tcp -h a --port 1", 'got "--port"'),
        ("tcp -h a -p 65536", "port 65536 is out of range 0..65535"),
        ("tcp -h a -p 99999999999", "port 99999999999 is out of range"),
        ("tcp -h a -p +1", 'port "+1" is not a number'),
        ("tcp -h a -t 1.5", 'timeout "1.5" is not a number'),
        ("tcp -h a -g x", 'grid "x" is not a number'),
        ("tcp -h a -q x", 'qos "x" is not a number'),
        ("tcp -h a -w x", 'weight "x" is not a number'),
        ("tcp -h a -v x", 'weight type "x" is not a number'),
        ("tcp -h a -e x", 'auth type "x" is not a number'),
        ("tcp -h a -e 2", "auth type 2 is not supported (expected 0 or 1)"),
        ("tcp -h a -p ٣", 'port "٣" is not a number'),
    ],
)
def test_parse_endpoint_errors(text: str, fragment: str) -> None:
    with pytest.raises(EndpointError) as info:
        parse_endpoint(text)
    message = str(info.value)
    assert fragment in message
    assert message.startswith(f'bad endpoint "{text}": ')


def test_parse_endpoint_type_error() -> None:
    with pytest.raises(TypeError):
        parse_endpoint(None)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- rendering


@pytest.mark.parametrize(
    ("ep", "text"),
    [
        (Endpoint("tcp", "h", 1), "tcp -h h -p 1 -t 3000"),
        (Endpoint("tcp", "h", 1, timeout=0), "tcp -h h -p 1"),
        (Endpoint("udp", "h", 1, 60000), "udp -h h -p 1 -t 60000"),
        (
            Endpoint("ssl", "h", 1, 5, grid=2, qos=3, weight=4, weight_type=1, auth_type=1),
            "ssl -h h -p 1 -t 5 -g 2 -q 3 -w 4 -v 1 -e 1",
        ),
        (Endpoint("tcp", "h", 1, 0, weight=0), "tcp -h h -p 1"),
        (Endpoint("tcp", "h", 1, 0, weight=-1), "tcp -h h -p 1"),
        (Endpoint("tcp", "h", 1, 0, set_id="a.b.c"), "tcp -h h -p 1"),
        (Endpoint("tcp", "h", 1, 0, bind_host="0.0.0.0"), "tcp -h h -p 1 -b 0.0.0.0"),
        (Endpoint("tcp", "fe80::1", 80, 0), "tcp -h fe80::1 -p 80"),
    ],
)
def test_render(ep: Endpoint, text: str) -> None:
    assert ep.render() == text
    assert str(ep) == text


def test_render_reference_examples_round_trip() -> None:
    for text in ("tcp -h 10.0.0.7 -p 10015 -t 60000", "tcp -h 127.0.0.1 -p 10239 -t 30000"):
        assert str(parse_endpoint(text)) == text


# --------------------------------------------------------------------------- hypothesis

_host_chars = st.characters(codec="ascii", categories=["L", "N", "P", "S"], exclude_characters=":")
hosts = st.one_of(
    st.text(_host_chars, min_size=1, max_size=20).filter(
        lambda s: not s.startswith("-") and s != "*"
    ),
    st.ip_addresses().map(str),
)


@st.composite
def normalized_endpoints(draw: st.DrawFn) -> Endpoint:
    weight_type = draw(st.sampled_from([0, 0, 1, 2]) | st.integers(0, INT32_MAX))
    if weight_type == 0:
        weight = draw(st.just(-1) | st.integers(1, INT32_MAX))
    else:
        weight = draw(st.just(-1) | st.integers(1, 10_000))
    return Endpoint(
        protocol=draw(st.sampled_from(["tcp", "udp", "ssl"])),
        host=draw(hosts),
        port=draw(st.integers(0, 65535)),
        timeout=draw(st.integers(1, INT32_MAX)),
        grid=draw(st.integers(0, INT32_MAX)),
        qos=draw(st.integers(0, INT32_MAX)),
        weight=weight,
        weight_type=weight_type,
        auth_type=draw(st.sampled_from([0, 1])),
        bind_host=draw(st.just("") | hosts),
    )


@given(normalized_endpoints())
def test_round_trip(ep: Endpoint) -> None:
    assert parse_endpoint(ep.render()) == ep


@given(normalized_endpoints(), st.lists(st.sampled_from([" ", "\t", "\n", "  "]), min_size=1))
def test_round_trip_whitespace(ep: Endpoint, seps: list[str]) -> None:
    tokens = ep.render().split(" ")
    text = seps[0]
    for i, token in enumerate(tokens):
        text += token + seps[(i + 1) % len(seps)]
    assert parse_endpoint(text) == ep


@given(st.lists(normalized_endpoints(), max_size=4), st.booleans())
def test_proxy_round_trip(endpoints: list[Endpoint], spaced: bool) -> None:
    spec = ProxySpec("App.Server.Obj", tuple(endpoints))
    text = spec.render()
    if spaced:
        text = text.replace(":tcp", " : tcp").replace(":udp", " :  udp").replace(":ssl", ": ssl")
    assert parse_proxy(text) == spec


@given(st.text(max_size=40))
def test_parse_endpoint_never_crashes(text: str) -> None:
    try:
        ep = parse_endpoint(text)
    except EndpointError as exc:
        assert str(exc).startswith(f'bad endpoint "{text}": ')
    else:
        assert isinstance(ep, Endpoint)


# --------------------------------------------------------------------------- proxy strings


def test_locator_reference_example() -> None:
    text = "tars.tarsregistry.QueryObj@tcp -h 10.0.0.1 -p 17890:tcp -h 10.0.0.2 -p 17890"
    spec = parse_proxy(text)
    assert spec.obj_name == "tars.tarsregistry.QueryObj"
    assert spec.endpoints == (
        Endpoint("tcp", "10.0.0.1", 17890),
        Endpoint("tcp", "10.0.0.2", 17890),
    )
    assert spec.is_direct
    assert spec.render() == (
        "tars.tarsregistry.QueryObj@tcp -h 10.0.0.1 -p 17890 -t 3000"
        ":tcp -h 10.0.0.2 -p 17890 -t 3000"
    )
    assert parse_proxy(spec.render()) == spec


@pytest.mark.parametrize(
    ("text", "obj", "endpoint"),
    [
        (
            "tars.tarsregistry.QueryObj@tcp -h tars-registry.default.svc.cluster.local -p 17890",
            "tars.tarsregistry.QueryObj",
            Endpoint("tcp", "tars-registry.default.svc.cluster.local", 17890),
        ),
        (
            "AdminObj@tcp -h 127.0.0.1 -p 10239 -t 30000",
            "AdminObj",
            Endpoint("tcp", "127.0.0.1", 10239, 30000),
        ),
        (
            "tars.tarsnode.ServerObj@tcp -h 10.0.0.7 -p 19386 -t 60000",
            "tars.tarsnode.ServerObj",
            Endpoint("tcp", "10.0.0.7", 19386, 60000),
        ),
        (
            "tars.tarsnode.NodeObj@tcp -h 10.0.0.5 -p 0",
            "tars.tarsnode.NodeObj",
            Endpoint("tcp", "10.0.0.5", 0),
        ),
    ],
)
def test_proxy_reference_examples(text: str, obj: str, endpoint: Endpoint) -> None:
    assert parse_proxy(text) == ProxySpec(obj, (endpoint,))


def test_proxy_ipv6_two_endpoints() -> None:
    spec = parse_proxy("App.S.Obj@tcp -h ::1 -p 80:tcp -h fe80::a:b -p 81 -t 10")
    assert spec.endpoints == (Endpoint("tcp", "::1", 80), Endpoint("tcp", "fe80::a:b", 81, 10))


def test_proxy_ipv6_trailing_colon_host() -> None:
    spec = parse_proxy("App.S.Obj@tcp -p 80 -h fe80:::udp -p 81 -h 2001:db8::")
    assert spec.endpoints == (Endpoint("tcp", "fe80::", 80), Endpoint("udp", "2001:db8::", 81))


@pytest.mark.parametrize(
    "text",
    [
        "App.S.Obj@tcp -h a -p 1 : tcp -h b -p 2",
        "App.S.Obj@tcp -h a -p 1:   tcp -h b -p 2",
        "App.S.Obj@tcp -h a -p 1 :tcp -h b -p 2",
        " App.S.Obj @ tcp -h a -p 1:tcp -h b -p 2 ",
        "App.S.Obj@:tcp -h a -p 1::tcp -h b -p 2:",
        "App.S.Obj@tcp -h a -p 1\t:\ttcp -h b -p 2 : ",
    ],
)
def test_proxy_spaces_and_colons(text: str) -> None:
    spec = parse_proxy(text)
    assert spec == ProxySpec("App.S.Obj", (Endpoint("tcp", "a", 1), Endpoint("tcp", "b", 2)))


def test_proxy_mixed_protocols() -> None:
    spec = parse_proxy("O@tcp -h a -p 1:udp -h b -p 2:ssl -h c -p 3")
    assert [ep.protocol for ep in spec.endpoints] == ["tcp", "udp", "ssl"]


@pytest.mark.parametrize(
    ("text", "obj"),
    [
        ("App.S.Obj", "App.S.Obj"),
        ("App.S.Obj#1", "App.S.Obj"),
        ("App.S.Obj#some tag", "App.S.Obj"),
        ("tars://App.S.Obj", "App.S.Obj"),
        ("tars://App.S.Obj#2", "App.S.Obj"),
        ("  App.S.Obj  ", "App.S.Obj"),
    ],
)
def test_proxy_locator_resolved(text: str, obj: str) -> None:
    spec = parse_proxy(text)
    assert spec == ProxySpec(obj)
    assert spec.endpoints == ()
    assert not spec.is_direct
    assert spec.render() == obj == str(spec)


def test_proxy_hash_suffix_with_endpoints() -> None:
    spec = parse_proxy("App.S.Obj#7@tcp -h a -p 1")
    assert spec == ProxySpec("App.S.Obj", (Endpoint("tcp", "a", 1),))
    assert spec.render() == "App.S.Obj@tcp -h a -p 1 -t 3000"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", 'bad proxy "": empty object name'),
        ("   ", "empty object name"),
        ("#tag", 'bad proxy "#tag": empty object name'),
        ("tars://", "empty object name"),
        ("@tcp -h a -p 1", 'bad proxy "@tcp -h a -p 1": empty object name'),
        ("A B@tcp -h a -p 1", 'object name "A B" must not contain whitespace'),
        ("Obj@", 'bad proxy "Obj@": no endpoints after "@"'),
        ("Obj@ : ", 'no endpoints after "@"'),
        (
            "Obj@tcp -h a -p x",
            'bad proxy "Obj@tcp -h a -p x": bad endpoint "tcp -h a -p x": port "x" is not a number',
        ),
        ("Obj@tcp -h a -p 1:tcp -p 2", 'bad endpoint "tcp -p 2": missing host (-h)'),
        ("Obj@http -h a -p 1", 'unknown protocol "http"'),
    ],
)
def test_proxy_errors(text: str, fragment: str) -> None:
    with pytest.raises(ProxyError) as info:
        parse_proxy(text)
    message = str(info.value)
    assert fragment in message
    assert message.startswith(f'bad proxy "{text}": ')
    assert isinstance(info.value, ValueError)


def test_proxyspec_validation() -> None:
    with pytest.raises(ProxyError, match="empty object name"):
        ProxySpec("")
    with pytest.raises(TypeError):
        ProxySpec("Obj", ("tcp -h a -p 1",))  # type: ignore[arg-type]
    spec = ProxySpec("Obj", [Endpoint("tcp", "a", 1)])  # type: ignore[arg-type]
    assert spec.endpoints == (Endpoint("tcp", "a", 1),)


# --------------------------------------------------------------------------- EndpointF


@dataclasses.dataclass(frozen=True)
class FakeEndpointF:
    """Stand-in for the codec's EndpointF struct (§4.1 attribute names and defaults)."""

    host: str = ""
    port: int = 0
    timeout: int = 0
    istcp: int = 0
    grid: int = 0
    groupworkid: int = 0
    grouprealid: int = 0
    setId: str = ""
    qos: int = 0
    bakFlag: int = 0
    weight: int = 0
    weightType: int = 0
    authType: int = 0
    nodeName: str = ""


def test_from_endpointf_reference_frame() -> None:
    # The EndpointF of the §2.15 findObjectById response.
    epf = FakeEndpointF(
        host="10.0.0.7",
        port=10015,
        timeout=60000,
        istcp=1,
        grid=0,
        groupworkid=-1,
        grouprealid=-1,
        weight=-1,
        nodeName="10.0.0.7",
    )
    like: EndpointFLike = epf
    ep = Endpoint.from_endpointf(like)
    assert ep == parse_endpoint("tcp -h 10.0.0.7 -p 10015 -t 60000")
    fields = ep.endpointf_fields(node_name="10.0.0.7")
    rebuilt = dataclasses.replace(epf, **fields)  # type: ignore[arg-type]
    assert rebuilt == epf


def test_endpointf_fields() -> None:
    ep = Endpoint(
        "ssl", "h", 1, 5, grid=2, qos=3, weight=4, weight_type=1, auth_type=1, set_id="a.b.c"
    )
    assert ep.endpointf_fields() == {
        "host": "h",
        "port": 1,
        "timeout": 5,
        "istcp": 2,
        "grid": 2,
        "setId": "a.b.c",
        "qos": 3,
        "weight": 4,
        "weightType": 1,
        "authType": 1,
        "nodeName": "",
    }
    assert set(ep.endpointf_fields()) <= {f.name for f in dataclasses.fields(FakeEndpointF)}
    assert not {"groupworkid", "grouprealid", "bakFlag"} & set(ep.endpointf_fields())


@pytest.mark.parametrize(("istcp", "proto"), [(0, "udp"), (1, "tcp"), (2, "ssl")])
def test_from_endpointf_protocols(istcp: int, proto: str) -> None:
    ep = Endpoint.from_endpointf(FakeEndpointF(host="h", port=1, istcp=istcp, setId="s.a.g"))
    assert ep.protocol == proto
    assert ep.set_id == "s.a.g"
    assert ep.istcp == istcp


def test_from_endpointf_errors() -> None:
    with pytest.raises(EndpointError, match="istcp 3 is not 0"):
        Endpoint.from_endpointf(FakeEndpointF(host="h", istcp=3))
    with pytest.raises(EndpointError, match="host must not be empty"):
        Endpoint.from_endpointf(FakeEndpointF(istcp=1))


def test_from_endpointf_applies_weight_rule() -> None:
    ep = Endpoint.from_endpointf(FakeEndpointF(host="h", istcp=1, weight=-1, weightType=2))
    assert ep.weight == 100


@given(normalized_endpoints(), st.text(max_size=10))
def test_endpointf_round_trip(ep: Endpoint, node_name: str) -> None:
    epf = FakeEndpointF(**ep.endpointf_fields(node_name))  # type: ignore[arg-type]
    assert epf.nodeName == node_name
    assert Endpoint.from_endpointf(epf) == dataclasses.replace(ep, bind_host="")


@given(st.text(alphabet=st.sampled_from(list("tcpudsl -hpbw:#@/1.Ab\t")), max_size=60))
def test_parse_proxy_never_crashes(text: str) -> None:
    try:
        spec = parse_proxy(text)
    except ProxyError as exc:
        assert str(exc).startswith(f'bad proxy "{text}": ')
    else:
        assert parse_proxy(spec.render()) == spec
