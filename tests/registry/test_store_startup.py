"""onStartup: the K8STARS writes, idempotence, SET, disableFlow, adapters, pod identity."""

from __future__ import annotations

from k8stars.registry.schema import t_node_info
from k8stars.registry.store import Store

from .conftest import adapter, add_config, age_heartbeat, beat, count, fetch, rows, startup


def test_startup_writes_node_server_and_adapters(store: Store) -> None:
    store.on_startup(
        startup(
            objs=("Obj", "Admin"), State="activating", Version="v1.2", podName="p-1", podUid="u1"
        )
    )
    node = fetch(store, "SELECT * FROM t_node_info")[0]
    assert node["node_name"] == "10.0.0.1"
    assert node["node_obj"] == "tars.tarsnode.NodeObj@tcp -h 10.0.0.1 -p 0"
    assert (node["setting_state"], node["present_state"]) == ("active", "active")
    assert node["last_heartbeat"] is not None and node["pod_uid"] == "u1"
    server = fetch(store, "SELECT * FROM t_server_conf")[0]
    assert server["server_type"] == "tars_cpp"
    assert (server["setting_state"], server["present_state"]) == ("active", "activating")
    assert server["patch_version"] == "v1.2"
    assert (server["grid_flag"], server["flow_state"], server["enable_set"]) == (
        "NORMAL",
        "active",
        "N",
    )
    assert (server["pod_name"], server["pod_uid"]) == ("p-1", "u1")
    assert server["registry_timestamp"] is not None and server["metrics_port"] == 0
    adapters = fetch(store, "SELECT * FROM t_adapter_conf ORDER BY adapter_name")
    assert [a["adapter_name"] for a in adapters] == ["App.Srv.AdminAdapter", "App.Srv.ObjAdapter"]
    assert adapters[1]["servant"] == "App.Srv.Obj"
    assert adapters[1]["endpoint"] == "tcp -h 10.0.0.1 -p 10000 -t 60000"
    assert adapters[1]["protocol"] == "tars"


def test_startup_is_idempotent(store: Store) -> None:
    req = startup(objs=("Obj", "Admin"), setID="sz.a.1", podUid="u1")
    store.on_startup(req)
    first, _ = store.load_snapshot()
    store.on_startup(req)
    store.on_startup(req)
    second, _ = store.load_snapshot()
    assert first == second
    assert (count(store, "t_node_info"), count(store, "t_server_conf")) == (1, 1)
    assert count(store, "t_adapter_conf") == 2


def test_state_defaults_and_is_case_insensitive(store: Store) -> None:
    store.on_startup(startup(State=""))
    store.on_startup(startup(server="Other", State="Deactivating"))
    states = {
        r["server_name"]: r["present_state"] for r in fetch(store, "SELECT * FROM t_server_conf")
    }
    assert states == {"Srv": "active", "Other": "deactivating"}


def test_set_columns(store: Store) -> None:
    store.on_startup(startup(setID="sz.shenzhen.g1"))
    row = fetch(store, "SELECT enable_set, set_name, set_area, set_group FROM t_server_conf")[0]
    assert dict(row) == {
        "enable_set": "Y",
        "set_name": "sz",
        "set_area": "shenzhen",
        "set_group": "g1",
    }
    store.on_startup(startup(setID=""))  # re-registered without a set
    row = fetch(store, "SELECT enable_set, set_name FROM t_server_conf")[0]
    assert (row["enable_set"], row["set_name"]) == ("N", "")


def test_disable_flow_takes_the_instance_out_of_the_flow(store: Store) -> None:
    store.on_startup(startup(disableFlow=True))
    row = fetch(store, "SELECT grid_flag, flow_state FROM t_server_conf")[0]
    assert (row["grid_flag"], row["flow_state"]) == ("NO_FLOW", "inactive")
    (instance,) = store.load_snapshot()[0].instances
    assert instance.flow_state == "inactive"
    store.on_startup(startup(disableFlow=False))
    row = fetch(store, "SELECT grid_flag, flow_state FROM t_server_conf")[0]
    assert (row["grid_flag"], row["flow_state"]) == ("NORMAL", "active")


def test_adapters_no_longer_listed_are_removed(store: Store) -> None:
    store.on_startup(startup(objs=("A", "B", "C")))
    store.on_startup(startup(node="10.0.0.2", objs=("A", "B", "C")))
    store.on_startup(startup(objs=("B",), port=20000))
    rows = fetch(
        store, "SELECT node_name, servant, endpoint FROM t_adapter_conf ORDER BY node_name, servant"
    )
    assert [(r["node_name"], r["servant"]) for r in rows] == [
        ("10.0.0.1", "App.Srv.B"),
        ("10.0.0.2", "App.Srv.A"),
        ("10.0.0.2", "App.Srv.B"),
        ("10.0.0.2", "App.Srv.C"),
    ]
    assert rows[0]["endpoint"] == "tcp -h 10.0.0.1 -p 20000 -t 60000"
    store.on_startup(startup(objs=()))  # a server without adapters keeps its state row
    assert count(store, "t_adapter_conf") == 3 and count(store, "t_server_conf") == 2


def test_adapter_options_are_stored(store: Store) -> None:
    req = startup(objs=())
    req.adapters = [
        adapter(
            "App.Srv.Obj",
            "tcp -h 10.0.0.1 -p 1",
            protocol="not_tars",
            maxConns=5,
            threadNum=7,
            queueCap=9,
            queueTimeout=11,
        )
    ]
    store.on_startup(req)
    row = fetch(store, "SELECT * FROM t_adapter_conf")[0]
    assert (row["protocol"], row["max_connections"], row["thread_num"]) == ("not_tars", 5, 7)
    assert (row["queuecap"], row["queuetimeout"]) == (9, 11)


def test_new_pod_reusing_an_ip_replaces_the_dead_pods_rows(store: Store) -> None:
    store.on_startup(startup(server="Old", podName="old-pod", podUid="uid-old"))
    store.register_metrics(
        type(
            "R",
            (),
            {"nodeName": "10.0.0.1", "application": "App", "server": "Old", "metricsPort": 9100},
        )()
    )
    add_config(store, "App.Old", "10.0.0.1", 3)
    add_config(store, "App.Old", "", 2)  # server level: stays
    add_config(store, "App.Old", "10.0.0.9", 3)  # another host: stays
    store.on_startup(startup(server="New", podName="new-pod", podUid="uid-new"))

    servers = fetch(store, "SELECT server_name, pod_uid FROM t_server_conf")
    assert [(r["server_name"], r["pod_uid"]) for r in servers] == [("New", "uid-new")]
    assert {r["servant"] for r in fetch(store, "SELECT servant FROM t_adapter_conf")} == {
        "App.New.Obj"
    }
    hosts = sorted(
        (r["host"], r["level"]) for r in fetch(store, "SELECT host, level FROM t_config_files")
    )
    assert hosts == [("", 2), ("10.0.0.9", 3)]
    assert fetch(store, "SELECT pod_uid FROM t_node_info")[0]["pod_uid"] == "uid-new"

    # the dead pod's late heartbeats revive nothing, not even the node's heartbeat
    age_heartbeat(store, "10.0.0.1", 1000)
    before = rows(store, t_node_info)[0]["last_heartbeat"]
    result = store.keep_alive_batch(
        [beat(app="App", server="Old", podUid="uid-old"), beat(podUid="uid-old", state="inactive")]
    )
    assert (result.touched, result.refused) == (0, 1)
    assert count(store, "t_server_conf") == 1
    assert fetch(store, "SELECT present_state FROM t_server_conf")[0]["present_state"] == "active"
    assert rows(store, t_node_info)[0]["last_heartbeat"] == before
    assert store.keep_alive_batch([beat(app="App", server="New", podUid="uid-new")]).touched == 1


def test_same_server_from_a_new_pod_is_replaced_not_merged(store: Store) -> None:
    store.on_startup(startup(objs=("A", "B"), podUid="uid-1"))
    store.register_metrics(
        type(
            "R",
            (),
            {"nodeName": "10.0.0.1", "application": "App", "server": "Srv", "metricsPort": 9100},
        )()
    )
    old_id = fetch(store, "SELECT id FROM t_server_conf")[0]["id"]
    store.on_startup(startup(objs=("A",), podUid="uid-2", State="activating"))
    row = fetch(store, "SELECT * FROM t_server_conf")[0]
    assert row["id"] != old_id and row["pod_uid"] == "uid-2" and row["metrics_port"] == 0
    assert count(store, "t_adapter_conf") == 1
    assert store.keep_alive_batch([beat(app="App", server="Srv", podUid="uid-1")]).refused == 1
    assert (
        fetch(store, "SELECT present_state FROM t_server_conf")[0]["present_state"] == "activating"
    )


def test_same_pod_re_registering_keeps_its_siblings(store: Store) -> None:
    store.on_startup(startup(server="A", podUid="uid-1"))
    store.on_startup(startup(server="B", podUid="uid-1"))
    store.on_startup(startup(server="A", podUid="uid-1"))
    assert count(store, "t_server_conf") == 2


def test_rows_without_identity(store: Store) -> None:
    # an old client (no UID) on a node owned by an identified pod does not erase its identity
    store.on_startup(startup(server="A", podUid="uid-1"))
    store.on_startup(startup(server="B"))
    assert fetch(store, "SELECT pod_uid FROM t_node_info")[0]["pod_uid"] == "uid-1"
    assert count(store, "t_server_conf") == 2
    # another identified pod on the IP: rows of the previous pod, with or without UID, go
    store.on_startup(startup(server="C", podUid="uid-2"))
    assert [r["server_name"] for r in fetch(store, "SELECT server_name FROM t_server_conf")] == [
        "C"
    ]
    # heartbeats without UID (old clients) are not refused
    assert store.keep_alive_batch([beat(app="App", server="C")]).touched == 1
