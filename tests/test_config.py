"""Tests for the TARS config-file format (k8stars.tars.config)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from k8stars.tars.config import (
    Comment,
    ConfigDomain,
    ConfigError,
    Param,
    TarsConfig,
    load_config,
    merge,
    parse_config,
    render,
)

FIXTURES = Path(__file__).parent / "fixtures" / "config"
SERVER = "/tars/application/server"
HELLO = f"{SERVER}/App.Server.HelloObjAdapter"


def dom(cfg: TarsConfig, path: str) -> ConfigDomain:
    found = cfg.domain(path)
    assert found is not None, path
    return found


@pytest.fixture
def sample() -> TarsConfig:
    return load_config(FIXTURES / "sample.conf")


# -- the sample of tars-protocol.md section 7.3 ---------------------------------------------------


def test_sample_lookups(sample: TarsConfig) -> None:
    assert sample.root.subdomains() == ["tars"]
    assert dom(sample, "/tars/application").subdomains() == ["client", "server"]
    server = sample.domain(SERVER)
    assert server is not None
    assert server.subdomains() == ["App.Server.HelloObjAdapter"]
    assert sample.get(f"{HELLO}<endpoint>") == "tcp -h 10.0.0.7 -p 10015 -t 60000"
    assert sample.get("/tars/application/client<locator>") == (
        "tars.tarsregistry.QueryObj@tcp -h 10.0.0.1 -p 17890"
    )
    assert sample.get(f"{SERVER}<app>") == "App"
    assert sample.get_int(f"{HELLO}<threads>") == 5
    assert sample.get(f"{HELLO}<allow>") == ""
    assert sample.get(f"{SERVER}<missing>") is None
    assert sample.get(f"{SERVER}<missing>", "dflt") == "dflt"
    assert sample.get("/tars/nowhere<app>", "dflt") == "dflt"
    assert sample.domain("/tars/nowhere") is None
    adapter = sample.domain(HELLO)
    assert adapter is not None
    assert list(adapter.params()) == [
        "allow", "endpoint", "handlegroup", "maxconns", "protocol", "queuecap", "queuetimeout",
        "servant", "threads",
    ]  # fmt: skip


def test_sample_keeps_comments_in_place(sample: TarsConfig) -> None:
    server = sample.domain(SERVER)
    assert server is not None
    assert server.children[3] == Comment(
        " AdminObj endpoint (the node / supervisor calls AdminF here)"
    )
    assert server.children[4] == Param("local", "tcp -h 127.0.0.1 -p 10239 -t 30000")


def test_sample_renders_back_exactly(sample: TarsConfig) -> None:
    assert render(sample) == (FIXTURES / "sample.conf").read_text()


def test_merge_override_exact_text(sample: TarsConfig) -> None:
    override = load_config(FIXTURES / "override.conf")
    before = (render(sample), render(override))
    merged = merge(sample, override)
    assert render(merged) == (FIXTURES / "merged.conf").read_text()
    assert merged.get(f"{SERVER}<logLevel>") == "INFO"
    assert dom(merged, SERVER).subdomains() == [
        "App.Server.HelloObjAdapter",
        "App.Server.AdminObjAdapter",
    ]
    assert (render(sample), render(override)) == before  # inputs untouched
    assert merge(sample, override) == merged  # deterministic
    assert merged.source == sample.source


# -- grammar --------------------------------------------------------------------------------------


def test_line_rules() -> None:
    cfg = parse_config(
        "  <a> trailing text is ignored\n"
        "\tx = 1 #not a comment \r\n"
        "\n"
        "   # a comment\n"
        "allow\n"
        "k==v\n"
        "e\\=q=r=s\n"
        "esc=\\\\ \\r\\n\\t\\=\n"
        "</a> ignored too\n"
    )
    a = cfg.domain("/a")
    assert a is not None
    assert a.children == (
        Param("x", "1 #not a comment"),
        Comment(" a comment"),
        Param("allow", ""),
        Param("k", "=v"),
        Param("e=q", "r=s"),
        Param("esc", "\\ \r\n\t="),
    )


def test_tarscpp_split_rule_and_key_only_escapes() -> None:
    # The '=' right after an escaped backslash does not split (TarsCpp), so this is a bare key.
    assert parse_config("a\\\\=b").root.children == (Param("a\\=b"),)
    assert parse_config("a\\=b").root.children == (Param("a=b"),)
    assert parse_config("=").root.children == (Param(""),)
    assert parse_config("=v").root.children == (Param("", "v"),)


def test_reopened_domain_merges_and_duplicates_last_wins() -> None:
    cfg = parse_config("<a>\nk=1\n</a>\n<b>\n</b>\n<a>\nk=2\nj=3\n</a>\n")
    assert cfg.root.subdomains() == ["a", "b"]
    a = cfg.domain("/a")
    assert a is not None
    assert a.get("k") == "2"
    assert a.params() == {"k": "2", "j": "3"}
    assert render(cfg) == "<a>\n  k=1\n  k=2\n  j=3\n</a>\n<b>\n</b>\n"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("<a>\n<b>\n</a>\n", 3, "closing tag </a> does not match <b> opened at line 2"),
        ("<a>\nk=v\n</a>\n</a>\n", 4, "closing tag </a> without an open domain"),
        ("<a>\n  <b>\n  </b>\nk=v\n", 1, "domain <a> is not closed at end of file"),
        ("<a>\n<b>\n\n", 2, "domain <b> is not closed at end of file"),
        ("<a>\nk=v\\x\n</a>\n", 2, "bad escape '\\\\x'"),
        ("\n\nk=v\\", 3, "bad escape '\\\\'"),
        ("k\\q\n", 1, "bad escape '\\\\q'"),
        ("<tars>\n<>\n", 2, "empty domain name"),
        ("<tars>\n<  >\n", 2, "empty domain name"),
        ("<tars>\n</>\n", 2, "empty domain name in closing tag"),
        ("<tars\n", 1, "missing '>' in tag '<tars'"),
        ("<a<b>\n", 1, "invalid domain name 'a<b'"),
        ("<a/b>\n", 1, "invalid domain name 'a/b'"),
        ("<a>\n" * 101, 101, "nested deeper than 100"),
    ],
)
def test_errors_name_source_and_line(text: str, line: int, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="app.conf")
    assert info.value.line == line
    assert info.value.source == "app.conf"
    assert str(info.value).startswith(f"app.conf:{line}: ")
    assert message in str(info.value)


# -- files ----------------------------------------------------------------------------------------


def test_load_config_errors(tmp_path: Path) -> None:
    missing = tmp_path / "missing.conf"
    with pytest.raises(ConfigError, match=r"missing\.conf: cannot read file"):
        load_config(missing)
    bad = tmp_path / "bad.conf"
    bad.write_text("<a>\n  k=v\n  </b>\n")
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    assert str(info.value).startswith(f"{bad}:3: closing tag </b>")
    binary = tmp_path / "binary.conf"
    binary.write_bytes(b"<a>\nk=\xff\n</a>\n")
    with pytest.raises(ConfigError, match=r"binary.conf:2: not valid UTF-8"):
        load_config(binary)
    with pytest.raises(ConfigError, match="cannot read file"):
        load_config(tmp_path)


def test_load_config_utf8_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "u.conf"
    path.write_bytes("\ufeff<a>\nname=héllo €\n</a>\n".encode())
    assert load_config(str(path)).get("/a<name>") == "héllo €"


# -- model API ------------------------------------------------------------------------------------


def test_build_and_render() -> None:
    cfg = TarsConfig()
    cfg.set("/tars/application/server<app>", "App")
    server = cfg.domain(SERVER)
    assert server is not None
    server.add_comment(" adapters")
    adapter = server.add_domain("App.Server.HelloObjAdapter")
    assert server.add_domain("App.Server.HelloObjAdapter") is adapter
    adapter.set("allow")
    adapter.set("endpoint", "tcp -h 0.0.0.0 -p 1")
    server.set("server", "Server")  # new keys go after the last parameter
    server.set("app", "App2")  # existing keys change in place
    server.add_param("app", "App3")  # explicit duplicates are allowed
    assert cfg.get(f"{SERVER}<app>") == "App3"
    assert render(cfg) == (
        "<tars>\n"
        "  <application>\n"
        "    <server>\n"
        "      app=App2\n"
        "      server=Server\n"
        "      # adapters\n"
        "      <App.Server.HelloObjAdapter>\n"
        "        allow\n"
        "        endpoint=tcp -h 0.0.0.0 -p 1\n"
        "      </App.Server.HelloObjAdapter>\n"
        "      app=App3\n"
        "    </server>\n"
        "  </application>\n"
        "</tars>\n"
    )
    assert parse_config(render(cfg)) == cfg


def test_escaping_in_render() -> None:
    cfg = TarsConfig()
    cfg.root.add_param("a=b", "x=y\\z\t\r\n")
    cfg.root.add_param("back\\", "v")
    cfg.root.add_param("only=key")
    cfg.root.add_param("")
    text = render(cfg)
    assert text == "a\\=b=x=y\\\\z\\t\\r\\n\nback\\\\ =v\nonly\\=key\n=\n"
    assert parse_config(text) == cfg


@pytest.mark.parametrize(
    "make",
    [
        lambda: Param(" k", "v"),
        lambda: Param("k", "v "),
        lambda: Param("#k", "v"),
        lambda: Param("<k", "v"),
        lambda: Comment("two\nlines"),
        lambda: Comment("trailing "),
        lambda: ConfigDomain(""),
        lambda: ConfigDomain("a/b"),
        lambda: ConfigDomain(" a"),
        lambda: TarsConfig().root.add_domain("x>"),
        lambda: TarsConfig().set("/a/b", "v"),
        lambda: TarsConfig().get("/a<b"),
    ],
)
def test_model_rejects_what_a_file_cannot_hold(make: Callable[[], object]) -> None:
    with pytest.raises(ConfigError):
        make()


def test_get_int() -> None:
    cfg = parse_config("<s>\nn=-42\nbad=10M\n</s>\n", "x.conf")
    assert cfg.get_int("/s<n>") == -42
    assert cfg.get_int("/s<none>") is None
    assert cfg.get_int("/s<none>", 7) == 7
    with pytest.raises(ConfigError, match=r"^x.conf: /s<bad>: expected an integer, got '10M'$"):
        cfg.get_int("/s<bad>")


def test_copy_is_deep() -> None:
    cfg = parse_config("<a>\n<b>\nk=1\n</b>\n</a>\n")
    twin = cfg.copy()
    twin.set("/a/b<k>", "2")
    assert cfg.get("/a/b<k>") == "1"
    assert twin != cfg


# -- merge ----------------------------------------------------------------------------------------


def test_merge_rules() -> None:
    base = parse_config(
        "# base header\n<a>\n  # about k\n  k=1\n  k=2\n  j=0\n  <d>\n    x=1\n  </d>\n</a>\n"
    )
    override = parse_config(
        "# dropped: precedes an existing domain\n"
        "<a>\n"
        "  # dropped: precedes an existing key\n"
        "  k=9\n"
        "  # comes along with n\n"
        "  n=1\n"
        "  n=2\n"
        "  <e>\n"
        "    # inside a new domain\n"
        "    y=1\n"
        "  </e>\n"
        "  <d>\n"
        "    z=3\n"
        "  </d>\n"
        "  # trailing, dropped\n"
        "</a>\n"
        "top=1\n"
    )
    assert render(merge(base, override)) == (
        "# base header\n"
        "<a>\n"
        "  # about k\n"
        "  k=1\n"
        "  k=9\n"
        "  j=0\n"
        "  # comes along with n\n"
        "  n=2\n"
        "  <d>\n"
        "    x=1\n"
        "    z=3\n"
        "  </d>\n"
        "  <e>\n"
        "    # inside a new domain\n"
        "    y=1\n"
        "  </e>\n"
        "</a>\n"
        "top=1\n"
    )
    assert merge(base, TarsConfig()) == base
    assert merge(TarsConfig(), base) == base


# -- properties -----------------------------------------------------------------------------------

AWKWARD = "ab=\\\t\r\n #<>/é€\x00\x0b\u2028"
keys = (
    st.text(AWKWARD, max_size=8)
    .map(lambda s: s.strip(" "))
    .filter(lambda s: not s.startswith(("#", "<")))
)
values = st.text(AWKWARD, max_size=10).map(lambda s: s.strip(" "))
comments = st.text(AWKWARD.replace("\n", ""), max_size=10).map(lambda s: s.rstrip(" \r\t"))
names = (
    st.text("ab.-_ \t\r#=\\é", min_size=1, max_size=6).map(lambda s: s.strip(" \r\t")).filter(bool)
)
Item = tuple[object, ...]
leaves = st.one_of(
    st.tuples(st.just("p"), keys, values),
    st.tuples(st.just("c"), comments),
)
trees = st.recursive(
    st.lists(leaves, max_size=4),
    lambda inner: st.lists(st.one_of(leaves, st.tuples(st.just("d"), names, inner)), max_size=4),
    max_leaves=25,
)


def build(domain: ConfigDomain, items: list[Item]) -> None:
    for item in items:
        if item[0] == "p":
            domain.add_param(str(item[1]), str(item[2]))
        elif item[0] == "c":
            domain.add_comment(str(item[1]))
        else:
            build(domain.add_domain(str(item[1])), item[2])  # type: ignore[arg-type]


@given(trees)
def test_render_parse_round_trip(items: list[Item]) -> None:
    cfg = TarsConfig()
    build(cfg.root, items)
    text = render(cfg)
    assert parse_config(text) == cfg
    assert render(parse_config(text)) == text


@given(trees, trees)
def test_merge_properties(a_items: list[Item], b_items: list[Item]) -> None:
    a, b = TarsConfig(), TarsConfig()
    build(a.root, a_items)
    build(b.root, b_items)
    a_text, b_text = render(a), render(b)
    merged = merge(a, b)
    assert (render(a), render(b)) == (a_text, b_text)
    assert parse_config(render(merged)) == merged
    for path, domain in walk(b.root, ""):
        target = merged.domain(path)
        assert target is not None
        for key, value in domain.params().items():
            assert target.get(key) == value


def walk(domain: ConfigDomain, path: str) -> list[tuple[str, ConfigDomain]]:
    found = [(path or "/", domain)]
    for name in domain.subdomains():
        sub = domain.subdomain(name)
        assert sub is not None
        found += walk(sub, f"{path}/{name}")
    return found


line_soup = st.lists(
    st.one_of(
        st.sampled_from(["<a>", "</a>", "<b> x", "</b>", "<", "</>", "<>", "#c", "=", "k=v", "\\"]),
        st.text("ab=\\\t\r #<>/ntr", max_size=8),
    ),
    max_size=12,
).map("\n".join)


@given(line_soup)
def test_arbitrary_text_parses_or_raises_config_error(text: str) -> None:
    try:
        cfg = parse_config(text, "soup")
    except ConfigError as exc:
        assert exc.source == "soup"
        assert exc.line is not None and 1 <= exc.line <= text.count("\n") + 1
        return
    assert parse_config(render(cfg)) == cfg
