"""tarscli genconf: _server_meta.yaml + environment -> conf/<server>.conf and server_info.yaml."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from k8stars.cli.genconf import detect_local_ip, generate
from k8stars.cli.meta import MetaError, load_server_info
from k8stars.cli.ports import PortAllocator, PortError
from k8stars.cli.settings import CliError, Settings
from k8stars.tars.config import TarsConfig, load_config, parse_config, render

FIXTURES = Path(__file__).parent / "fixtures"
POD_IP = "127.0.0.1"
SERVER = "/tars/application/server"
CLIENT = "/tars/application/client"
HELLO = f"{SERVER}/TestApp.HelloServer.HelloObjAdapter"
PUSH = f"{SERVER}/TestApp.HelloServer.PushObjAdapter"


@pytest.fixture
def tars_path(tmp_path: Path) -> Path:
    """A TARS_PATH holding the fixture's bin/_server_meta.yaml."""
    root = tmp_path / "tars"
    shutil.copytree(FIXTURES / "tars", root)
    return root


def env(tars_path: Path, **extra: str) -> Settings:
    return Settings({"TARS_PATH": str(tars_path), "POD_IP": POD_IP, **extra})


def write_meta(tars_path: Path, text: str) -> Path:
    path = tars_path / "bin" / "_server_meta.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def port_of(endpoint: str) -> int:
    tokens = endpoint.split()
    return int(tokens[tokens.index("-p") + 1])


# -- the generated config, key by key --------------------------------------------------------

def test_generated_config_parses_back_key_by_key(tars_path: Path) -> None:
    result = generate(env(tars_path, TARS_NAMESPACE="prod"))
    conf = tars_path / "conf" / "HelloServer.conf"
    assert result.conf_path == str(conf)
    cfg = load_config(conf)
    assert render(parse_config(render(cfg))) == conf.read_text()

    assert cfg.get("/tars/application<enableset>") == "N"
    assert cfg.get("/tars/application<setdivision>") == "NULL"
    client = cfg.domain(CLIENT)
    assert client is not None
    assert client.params() == {
        "locator": "tars.tarsregistry.QueryObj@tcp -h tars-registry.prod.svc.cluster.local "
                   "-p 17890",
        "sync-invoke-timeout": "2000",
        "async-invoke-timeout": "5000",
        "refresh-endpoint-interval": "60000",
        "stat": "tars.tarsstat.StatObj",
        "property": "tars.tarsproperty.PropertyObj",
        "report-interval": "6000",
        "sample-rate": "1000",
        "max-sample-count": "100",
        "asyncthread": "4",
        "modulename": "TestApp.HelloServer",
    }
    server = cfg.domain(SERVER)
    assert server is not None
    params = server.params()
    local = params.pop("local")
    assert local.startswith("tcp -h 127.0.0.1 -p ") and local.endswith(" -t 5000")
    base = str(tars_path)
    assert params == {
        "app": "TestApp",
        "server": "HelloServer",
        "localip": POD_IP,
        "node_name": POD_IP,
        "basepath": f"{base}/bin/",
        "datapath": f"{base}/data/",
        "logpath": f"{base}/log/",
        "logLevel": "INFO",
        "logsize": "50M",
        "lognum": "10",
        "config": "tars.tarsconfig.ConfigObj",
        "notify": "tars.tarsnotify.NotifyObj",
        "log": "tars.tarslog.LogObj",
        "deactivating-timeout": "5000",
    }
    assert server.subdomains() == ["TestApp.HelloServer.HelloObjAdapter",
                                   "TestApp.HelloServer.PushObjAdapter"]
    hello = cfg.domain(HELLO)
    push = cfg.domain(PUSH)
    assert hello is not None and push is not None
    hello_params = hello.params()
    assert hello_params.pop("endpoint").startswith(f"tcp -h {POD_IP} -p ")
    assert hello_params == {
        "allow": "", "servant": "TestApp.HelloServer.HelloObj",
        "handlegroup": "TestApp.HelloServer.HelloObjAdapter", "maxconns": "200000",
        "protocol": "tars", "queuecap": "10000", "queuetimeout": "60000", "threads": "10",
    }
    push_params = push.params()
    push_endpoint = push_params.pop("endpoint")
    assert push_endpoint.startswith(f"tcp -h {POD_IP} -p ") and push_endpoint.endswith(" -t 30000")
    assert push_params == {
        "allow": "", "servant": "TestApp.HelloServer.PushObj",
        "handlegroup": "TestApp.HelloServer.PushObjAdapter", "maxconns": "1000",
        "protocol": "tars", "queuecap": "500", "queuetimeout": "10000", "threads": "5",
    }


def test_server_info_holds_the_resolved_settings(tars_path: Path) -> None:
    result = generate(env(tars_path, POD_NAME="hello-7d9f-x2", POD_UID="0d3c-11",
                          SERVER_VERSION="v1.2.3"))
    info = load_server_info(str(tars_path))
    assert info == result.info
    assert (info.application, info.server, info.build_server) == ("TestApp", "HelloServer",
                                                                  "HelloServer")
    assert info.set_id == "" and info.namespace == "tars-system"
    assert info.locator.startswith("tars.tarsregistry.QueryObj@tcp -h tars-registry.tars-system")
    assert (info.pod_ip, info.pod_name, info.pod_uid) == (POD_IP, "hello-7d9f-x2", "0d3c-11")
    assert info.local_ip == info.node_name == POD_IP
    assert info.server_version == "v1.2.3"
    assert info.tars_path == str(tars_path)
    assert info.conf_path == str(tars_path / "conf" / "HelloServer.conf")
    assert info.servants == ("TestApp.HelloServer.HelloObj", "TestApp.HelloServer.PushObj")
    cfg = load_config(info.conf_path)
    assert info.local == cfg.get(f"{SERVER}<local>")
    for adapter in info.adapters:
        assert adapter.endpoint == cfg.get(f"{SERVER}/{adapter.name}<endpoint>")
    hello = info.adapter("TestApp.HelloServer.HelloObj")
    assert hello is not None and hello.object == "HelloObj" and hello.threads == 10
    # the original's shape is kept for scripts that read it
    import yaml

    raw = yaml.safe_load((tars_path / "data" / "server_info.yaml").read_text())
    assert raw["local_ip"] == POD_IP and raw["tars_path"] == str(tars_path)
    assert raw["conf"]["application"] == "TestApp"
    assert [a["object"] for a in raw["conf"]["adapters"]] == ["HelloObj", "PushObj"]
    assert raw["conf"]["adapters"][0]["endpoint"] == hello.endpoint


def test_original_expectations_threads_and_defaults(tars_path: Path) -> None:
    # app/genconf/config_test.go: adapter threads 10 as given, 5 by default
    write_meta(tars_path, "version: v1\napplication: App\nserver: Server1\nadapters:\n"
               "  - object: MainObj\n    endpoint: tcp -h ${local_ip} -p ${random_port}\n"
               "    maxconns: 200000\n    protocol: tars\n    queuecap: 10000\n"
               "    queuetimeout: 60000\n    threads: 10\n  - object: QueryObj\n")
    result = generate(env(tars_path))
    assert [a.threads for a in result.meta.adapters] == [10, 5]
    info = result.info
    assert info.conf_path.endswith("/conf/Server1.conf")
    meta = result.meta
    assert (meta.sample_rate, meta.max_sample_count, meta.async_thread_num) == (100000, 50, 3)
    assert (meta.sync_invoke_timeout, meta.async_invoke_timeout) == (3000, 5000)
    assert (meta.report_interval, meta.refresh_endpoint_interval) == (6000, 60000)
    assert (meta.log_size, meta.log_num, meta.log_level) == ("100M", 5, "DEBUG")
    assert meta.deactivating_timeout == 3000
    assert meta.adapters[1].endpoint.endswith(" -t 30000")
    assert info.local.startswith("tcp -h 127.0.0.1 -p ") and info.local.endswith(" -t 5000")


# -- environment overrides and merge ---------------------------------------------------------

def test_environment_overrides_the_meta_file(tars_path: Path) -> None:
    result = generate(env(tars_path, TARS_APPLICATION="OtherApp", TARS_SERVER="Blue",
                          TARS_BUILD_SERVER="HelloServer", TARS_SET_ID="mtt.sz.1",
                          TARS_LOCATOR="tars.tarsregistry.QueryObj@tcp -h 10.0.0.9 -p 17890",
                          TARS_EP_UPTIME="30000"))
    assert result.conf_path.endswith("/conf/HelloServer.conf")  # TARS_BUILD_SERVER
    cfg = result.config
    assert cfg.get(f"{SERVER}<app>") == "OtherApp" and cfg.get(f"{SERVER}<server>") == "Blue"
    assert cfg.get(f"{CLIENT}<modulename>") == "OtherApp.Blue"
    assert cfg.get("/tars/application<enableset>") == "Y"
    assert cfg.get("/tars/application<setdivision>") == "mtt.sz.1"
    assert cfg.get(f"{CLIENT}<locator>") == "tars.tarsregistry.QueryObj@tcp -h 10.0.0.9 -p 17890"
    assert cfg.get(f"{CLIENT}<refresh-endpoint-interval>") == "30000"
    assert result.info.servants == ("OtherApp.Blue.HelloObj", "OtherApp.Blue.PushObj")
    assert result.info.set_id == "mtt.sz.1"
    assert result.info.build_server == "HelloServer"


def test_empty_set_id_variable_clears_the_files_set(tars_path: Path) -> None:
    meta = (tars_path / "bin" / "_server_meta.yaml").read_text()
    write_meta(tars_path, meta.replace('set_id: ""', "set_id: app.sh.2"))
    assert generate(env(tars_path)).info.set_id == "app.sh.2"
    assert generate(env(tars_path, TARS_SET_ID="")).info.set_id == ""


def test_merge_conf_values_win(tars_path: Path) -> None:
    result = generate(env(tars_path, TARS_MERGE_CONF=str(FIXTURES / "merge.conf")))
    cfg = load_config(result.conf_path)
    assert cfg.get("/tars/application<a>") == "3"  # the original's own merge test
    assert cfg.get(f"{CLIENT}<sync-invoke-timeout>") == "1500"  # overridden in place
    assert cfg.get(f"{CLIENT}<max-invoke-timeout>") == "9000"  # added
    assert cfg.get(f"{CLIENT}<async-invoke-timeout>") == "5000"  # untouched
    assert cfg.get(f"{SERVER}<logLevel>") == "ERROR"
    assert cfg.get(f"{HELLO}<threads>") == "20"
    assert cfg.get(f"{HELLO}<servant>") == "TestApp.HelloServer.HelloObj"
    hello = result.info.adapter("TestApp.HelloServer.HelloObj")
    assert hello is not None and hello.threads == 20  # server_info follows the final config
    assert render(cfg).count(" sync-invoke-timeout=") == 1


def test_merge_conf_can_move_an_endpoint_and_server_info_follows(tars_path: Path,
                                                                 tmp_path: Path) -> None:
    merge_file = tmp_path / "m.conf"
    merge_file.write_text(f"<tars><application><server>\n<{HELLO.rsplit('/', 1)[1]}>\n"
                          "endpoint=tcp -h 127.0.0.1 -p 23456 -t 1000\n"
                          f"</{HELLO.rsplit('/', 1)[1]}>\n</server></application></tars>\n"
                          .replace("><", ">\n<"))
    info = generate(env(tars_path, TARS_MERGE_CONF=str(merge_file))).info
    hello = info.adapter("TestApp.HelloServer.HelloObj")
    assert hello is not None and hello.endpoint == "tcp -h 127.0.0.1 -p 23456 -t 1000"


# -- placeholders and ports ------------------------------------------------------------------

def test_random_ports_are_distinct_and_in_range(tars_path: Path) -> None:
    info = generate(env(tars_path)).info
    ports = [port_of(a.endpoint) for a in info.adapters] + [port_of(info.local)]
    assert len(set(ports)) == 3
    assert all(13000 <= p <= 16000 for p in ports)


@pytest.fixture
def free_range() -> Iterator[tuple[int, socket.socket]]:
    """A port p free on 127.0.0.1 with p+1..p+4 likely free too, and a socket listening on p."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port + 5 > 65535:
            continue
        busy = socket.socket()
        try:
            busy.bind(("127.0.0.1", port))
            busy.listen(1)
        except OSError:
            busy.close()
            continue
        try:
            yield port, busy
        finally:
            busy.close()
        return
    pytest.skip("no free port range found")


def test_allocator_skips_busy_and_taken_ports(free_range: tuple[int, socket.socket]) -> None:
    port, _busy = free_range
    allocator = PortAllocator(port, port + 4)
    allocator.reserve(port + 1)
    first = allocator.allocate("127.0.0.1")
    second = allocator.allocate("127.0.0.1")
    assert first >= port + 2 and second > first and second <= port + 4


def test_first_free_port_is_the_lowest() -> None:
    # app/genconf/random_port_test.go: the first port of a free range is taken
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert PortAllocator(port, port).allocate("127.0.0.1") == port


def test_no_free_port_names_the_range(free_range: tuple[int, socket.socket]) -> None:
    port, _busy = free_range
    with pytest.raises(PortError) as info:
        PortAllocator(port, port).allocate("127.0.0.1", purpose="adapter HelloObj endpoint")
    assert str(info.value) == (f"no free TCP port on 127.0.0.1 for adapter HelloObj endpoint in "
                               f"TARS_RAND_PORT_MIN..TARS_RAND_PORT_MAX = {port}..{port}")


def test_genconf_reports_a_full_range(tars_path: Path,
                                      free_range: tuple[int, socket.socket]) -> None:
    port, _busy = free_range
    with pytest.raises(PortError, match=rf"^no free TCP port on 127\.0\.0\.1 for adapter HelloObj "
                                        rf"endpoint in .* = {port}\.\.{port}$"):
        generate(env(tars_path, TARS_RAND_PORT_MIN=str(port), TARS_RAND_PORT_MAX=str(port)))


def test_inverted_range_is_an_error() -> None:
    with pytest.raises(PortError, match=r"^TARS_RAND_PORT_MIN=16000 and TARS_RAND_PORT_MAX=13000"):
        PortAllocator(16000, 13000)


def test_unbindable_host_is_reported_not_scanned() -> None:
    with pytest.raises(PortError, match=r"^cannot bind to 203\.0\.113\.123 \(local\): .*POD_IP"):
        PortAllocator(13000, 16000).allocate("203.0.113.123", purpose="local")


def test_fixed_ports_are_not_handed_out(tars_path: Path,
                                        free_range: tuple[int, socket.socket]) -> None:
    port, busy = free_range
    busy.close()
    write_meta(tars_path, "application: A\nserver: S\nlocal: tcp -h 127.0.0.1 -p ${random_port}\n"
               "adapters:\n"
               f"  - object: FixedObj\n    endpoint: tcp -h 127.0.0.1 -p {port}\n"
               "  - object: RandomObj\n")
    info = generate(env(tars_path, TARS_RAND_PORT_MIN=str(port),
                        TARS_RAND_PORT_MAX=str(port + 4))).info
    ports = [port_of(a.endpoint) for a in info.adapters] + [port_of(info.local)]
    assert ports[0] == port and port not in ports[1:] and len(set(ports)) == 3


def test_placeholders_everywhere(tars_path: Path) -> None:
    write_meta(tars_path, "application: A\nserver: S\n"
               "locator: tars.tarsregistry.QueryObj@tcp -h reg.${namespace} -p 17890\n"
               "statObj: tars.tarsstat.StatObj\n"
               "local: udp -h ${local_ip} -p ${random_port} -t 100\n"
               "adapters:\n  - object: O\n    endpoint: ssl -h ${local_ip} -p ${random_port}\n")
    info = generate(env(tars_path, TARS_NAMESPACE="ns1")).info
    assert info.locator == "tars.tarsregistry.QueryObj@tcp -h reg.ns1 -p 17890"
    assert info.local.startswith(f"udp -h {POD_IP} -p ")
    assert info.adapters[0].endpoint.startswith(f"ssl -h {POD_IP} -p ")


def test_local_ip_without_pod_ip_is_the_default_route_address(tars_path: Path) -> None:
    try:
        expected = detect_local_ip()
    except CliError:
        pytest.skip("no default route here")
    info = generate(Settings({"TARS_PATH": str(tars_path)})).info
    assert info.local_ip == expected and info.pod_ip == ""
    assert info.adapters[0].endpoint.startswith(f"tcp -h {expected} -p ")


def test_generated_config_is_read_by_our_server_config(tars_path: Path) -> None:
    server_config = pytest.importorskip("k8stars.tars.server_config")
    result = generate(env(tars_path))
    sc = server_config.ServerConfig.load(result.conf_path)
    assert [a.servant for a in sc.adapters] == list(result.info.servants)
    assert sc.local is not None and sc.local.render() == result.info.local


# -- bad input: one clear message each -------------------------------------------------------

def message(tars_path: Path, meta: str | None, **extra: str) -> str:
    if meta is not None:
        write_meta(tars_path, meta)
    with pytest.raises(CliError) as info:
        generate(env(tars_path, **extra))
    assert "\n" not in str(info.value)
    return str(info.value)


def test_missing_meta_file(tmp_path: Path) -> None:
    text = message(tmp_path, None)
    assert text == (f"{tmp_path}/bin/_server_meta.yaml: file not found (a service image puts "
                    "its _server_meta.yaml in $TARS_PATH/bin; is TARS_PATH right?)")


@pytest.mark.parametrize(("meta", "expected"), [
    ("application: A\nserver: [S\n", ":3: YAML syntax error: "),
    ("application: A\n  server: S\n", ":2: YAML syntax error: mapping values are not allowed here"),
    ("application: A\nserver: S\n---\nx: 1\n", ":3: YAML syntax error: but found another "
                                               "document (expected a single document in the "
                                               "stream, line 1)"),
    ("application: A\nadapters: [\n  {object: O}\n", ":4: YAML syntax error: expected ',' or "
                                                  "']', but got '<stream end>' (while parsing a "
                                                  "flow sequence, line 2)"),
    ("- a\n- b\n", ":1: the file must be a mapping of keys, got a list"),
    ("application: A\nserver: S\nlogNum: many\n", ":3: logNum: expected a whole number, "
                                                  "got 'many'"),
    ("application: A\nserver: S\nsample_rate: true\n", ":3: sample_rate: expected a whole "
                                                       "number, got 'true'"),
    ("application: A\nserver: S\nlogNum: -1\n", ":3: logNum: -1 is out of range 0..2147483647"),
    ("application: A\nserver: {x: 1}\n", ":2: server: expected text, got a mapping"),
    ("application: A\nserver: S\nadapters: HelloObj\n", ":3: adapters: expected a list of "
                                                        "adapters, got 'HelloObj'"),
    ("application: A\nserver: S\nadapters:\n  - endpoint: tcp -h 1.2.3.4 -p 1\n",
     ":4: adapters[0]: 'object' is missing (the servant's object name, e.g. HelloObj)"),
    ("application: A\nserver: S\nadapters:\n  - object: O\n    threads: x\n",
     ":5: adapters[0].threads: expected a whole number, got 'x'"),
    ("application: A\nserver: S\nadapters:\n  - object: O\n  - object: O\n",
     ":5: adapters[1]: object 'O' is already defined at line 4"),
    ("application: A\nserver: S\nadapters:\n  - object: My.Obj\n",
     ":4: adapters[0].object 'My.Obj': must not contain '.'"),
])
def test_malformed_meta_names_file_and_line(tars_path: Path, meta: str, expected: str) -> None:
    text = message(tars_path, meta)
    assert text.startswith(f"{tars_path}/bin/_server_meta.yaml")
    assert expected in text, text


def test_missing_application_or_server(tars_path: Path) -> None:
    text = message(tars_path, "server: S\n")
    assert text == (f"application not set: give application in {tars_path}/bin/_server_meta.yaml "
                    "or set TARS_APPLICATION")
    text = message(tars_path, "# empty\n")
    assert text.startswith("application and server not set: give application and server in ")
    assert text.endswith("or set TARS_APPLICATION / TARS_SERVER")
    # the environment can supply them
    write_meta(tars_path, "adapters:\n  - object: O\n")
    assert generate(env(tars_path, TARS_APPLICATION="A", TARS_SERVER="S")).info.full_name == "A.S"


def test_bad_names_and_set_ids(tars_path: Path) -> None:
    meta = "application: A\nserver: S\n"
    assert message(tars_path, meta, TARS_SERVER="my server") == (
        "TARS_SERVER: server 'my server': must not contain ' '")
    assert message(tars_path, meta + "set_id: mtt.sz\n") == (
        f"{tars_path}/bin/_server_meta.yaml:3: set_id 'mtt.sz': expected name.area.group "
        "(letters, digits, _ or -), e.g. mtt.s.1")
    assert message(tars_path, meta, TARS_SET_ID="a.*.1").startswith("TARS_SET_ID: set_id 'a.*.1'")
    assert message(tars_path, meta, TARS_BUILD_SERVER="../x") == (
        "TARS_BUILD_SERVER: '../x' cannot name a config file")


def test_unknown_keys_are_warnings(tars_path: Path) -> None:
    write_meta(tars_path, "version: v1\napplication: A\nserver: S\nlogLevle: INFO\nadapters:\n"
               "  - object: O\n    thread: 3\napplication: B\n")
    result = generate(env(tars_path))
    src = f"{tars_path}/bin/_server_meta.yaml"
    assert result.warnings == (
        f"{src}:8: duplicate key 'application' (line 2 is ignored)",
        f"{src}:4: unknown key 'logLevle' ignored",
        f"{src}:7: unknown key 'thread' in adapters[0] ignored (known: object, endpoint, "
        "maxconns, protocol, queuecap, queuetimeout, threads)",
    )
    assert result.info.application == "B"


def test_text_values_stay_as_written(tars_path: Path) -> None:
    write_meta(tars_path, "application: A\nserver: S\nlogLevel: off\nlogSize: 010\n"
               "set_id:\n")
    cfg = generate(env(tars_path)).config
    assert cfg.get(f"{SERVER}<logLevel>") == "off" and cfg.get(f"{SERVER}<logsize>") == "010"
    assert cfg.get("/tars/application<enableset>") == "N"


@pytest.mark.parametrize(("meta", "expected"), [
    ("local: tcp -h ${pod_ip} -p 1\n",
     ":3: local (AdminObj) endpoint: unknown placeholder ${pod_ip} (known: ${local_ip}, "
     "${random_port}, ${namespace})"),
    ("locator: Q@tcp -h h -p ${random_port}\n",
     ":3: locator: ${random_port} can only be used in an endpoint"),
    ("local: tcp -p ${random_port}\n",
     ":3: local (AdminObj) endpoint 'tcp -p ${random_port}': ${random_port} needs the host "
     "(-h HOST) to find a free port on"),
    ("adapters:\n  - object: O\n    endpoint: tpc -h 1.2.3.4 -p 5\n",
     ":4: adapter O endpoint: bad endpoint \"tpc -h 1.2.3.4 -p 5\": unknown protocol \"tpc\""),
    ("locator: tars.tarsregistry.QueryObj@tcp -h\n", ":3: locator: bad proxy"),
])
def test_bad_placeholders_and_endpoints(tars_path: Path, meta: str, expected: str) -> None:
    text = message(tars_path, "application: A\nserver: S\n" + meta)
    assert text.startswith(f"{tars_path}/bin/_server_meta.yaml{expected}"), text


def test_bad_environment_values(tars_path: Path) -> None:
    assert message(tars_path, None, TARS_RAND_PORT_MIN="low") == (
        "TARS_RAND_PORT_MIN='low': expected a port number from 1 to 65535")
    assert message(tars_path, None, POD_IP="my-pod").startswith("POD_IP='my-pod': ")
    assert message(tars_path, None, TARS_EP_UPTIME="often").startswith("TARS_EP_UPTIME='often'")


def test_bad_merge_conf(tars_path: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.conf"
    assert message(tars_path, None, TARS_MERGE_CONF=str(missing)) == (
        f"TARS_MERGE_CONF: {missing}: cannot read file: No such file or directory")
    broken = tmp_path / "broken.conf"
    broken.write_text("<tars>\n  <application>\n  </tars>\n")
    assert message(tars_path, None, TARS_MERGE_CONF=str(broken)) == (
        f"TARS_MERGE_CONF: {broken}:3: closing tag </tars> does not match <application> "
        "opened at line 2")
    bad_value = tmp_path / "bad.conf"
    bad_value.write_text(f"<tars>\n<application>\n<server>\n<{HELLO.rsplit('/', 1)[1]}>\n"
                         "threads=many\nendpoint=tcp -h ${local_ip} -p 1\n"
                         f"</{HELLO.rsplit('/', 1)[1]}>\n</server>\n</application>\n</tars>\n")
    text = message(tars_path, None, TARS_MERGE_CONF=str(bad_value))
    assert f"(after TARS_MERGE_CONF {bad_value}): " in text
    assert "placeholders are not expanded in TARS_MERGE_CONF" in text


def test_nothing_is_written_on_error(tars_path: Path) -> None:
    message(tars_path, "application: A\nserver: S\nlogNum: x\n")
    assert not (tars_path / "conf").exists() and not (tars_path / "data").exists()


def test_server_info_reader_errors(tmp_path: Path) -> None:
    with pytest.raises(MetaError, match=r"server_info\.yaml: file not found \(run tarscli "
                                        r"genconf first\)$"):
        load_server_info(str(tmp_path))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "server_info.yaml").write_text("application: A\n")
    with pytest.raises(MetaError, match=r"server_info\.yaml: server is missing$"):
        load_server_info(str(tmp_path))


def test_config_model_round_trip(tars_path: Path) -> None:
    cfg = generate(env(tars_path)).config
    again = parse_config(render(cfg))
    assert isinstance(again, TarsConfig) and again == cfg
