"""onPrestop, registerMetrics/getMetricsAdapters, expiry, clean, the registry's own rows."""

from __future__ import annotations

from datetime import timedelta

from k8stars.registry.schema import t_node_info, t_registry_info
from k8stars.registry.store import Store

from .conftest import (
    MetricsReq,
    PrestopReq,
    add_config,
    age_heartbeat,
    beat,
    count,
    fetch,
    rows,
    startup,
)


def _tables(store: Store) -> dict[str, int]:
    return {
        t: count(store, t)
        for t in ("t_node_info", "t_server_conf", "t_adapter_conf", "t_config_files")
    }


def test_prestop_with_server_deletes_its_rows_and_host_configs(store: Store) -> None:
    store.on_startup(startup(server="A", objs=("X", "Y")))
    store.on_startup(startup(server="B"))
    store.on_startup(startup(node="10.0.0.2", server="A"))
    add_config(store, "App.A", "10.0.0.1", 3)
    add_config(store, "App.A", "10.0.0.2", 3)
    add_config(store, "App.A", "", 2)
    add_config(store, "App.B", "10.0.0.1", 3)
    assert store.on_prestop(PrestopReq(nodeName="10.0.0.1", application="App", server="A")) == 1
    servers = fetch(store, "SELECT node_name, server_name FROM t_server_conf ORDER BY node_name")
    assert [(r["node_name"], r["server_name"]) for r in servers] == [
        ("10.0.0.1", "B"),
        ("10.0.0.2", "A"),
    ]
    assert count(store, "t_adapter_conf") == 2
    configs = fetch(store, "SELECT server_name, host, level FROM t_config_files ORDER BY id")
    assert [(r["server_name"], r["host"]) for r in configs] == [
        ("App.A", "10.0.0.2"),
        ("App.A", ""),
        ("App.B", "10.0.0.1"),
    ]
    # again: nothing left to delete, no error
    assert store.on_prestop(PrestopReq(nodeName="10.0.0.1", application="App", server="A")) == 0


def test_prestop_of_an_old_client_marks_the_node_destroyed(store: Store) -> None:
    store.on_startup(startup(server="A"))
    store.on_startup(startup(server="B"))
    store.on_startup(startup(node="10.0.0.2", server="A"))
    assert store.on_prestop(PrestopReq(nodeName="10.0.0.1")) == 2
    found = fetch(store, "SELECT node_name, present_state FROM t_server_conf ORDER BY node_name")
    assert [r["present_state"] for r in found] == ["destroyed", "destroyed", "active"]
    assert _tables(store)["t_adapter_conf"] == 3  # nothing deleted


def test_metrics_registration_and_targets(store: Store) -> None:
    store.on_startup(startup(server="A", setID="sz.a.1"))
    store.on_startup(startup(node="10.0.0.2", server="A", setID="sz.a.1"))
    store.on_startup(startup(node="10.0.0.3", server="A"))
    store.on_startup(startup(server="B"))
    store.on_startup(startup(server="NoMetrics"))
    metrics = [
        ("10.0.0.1", "A", 9100),
        ("10.0.0.2", "A", 9100),
        ("10.0.0.3", "A", 0),
        ("10.0.0.1", "B", 9200),
    ]
    for node, server, port in metrics:
        req = MetricsReq(nodeName=node, application="App", server=server, metricsPort=port)
        assert store.register_metrics(req) == 1
    assert (
        store.register_metrics(
            MetricsReq(nodeName="10.9.9.9", application="App", server="A", metricsPort=1)
        )
        == 0
    )

    adapters = store.get_metrics_adapters()
    assert adapters == [
        (["10.0.0.3:9325"], {"application": "App", "server": "A", "set": ""}),
        (
            ["10.0.0.1:9100", "10.0.0.2:9100"],
            {"application": "App", "server": "A", "set": "sz.a.1"},
        ),
        (["10.0.0.1:9200"], {"application": "App", "server": "B", "set": ""}),
    ]
    assert store.get_metrics_adapters({"server": "B"}) == [adapters[2]]
    assert store.get_metrics_adapters({"set": "sz.a.1", "application": "App"}) == [adapters[1]]
    assert store.get_metrics_adapters({"application": "Other"}) == []
    assert store.get_metrics_adapters({"unknown-key": "x"}) == adapters


def test_expiry_marks_inactive_then_deletes_everything(store: Store) -> None:
    store.on_startup(startup(node="10.0.0.1", server="Live"))
    store.on_startup(startup(node="10.0.0.2", server="Quiet", objs=("A", "B")))
    store.on_startup(startup(node="10.0.0.3", server="Dead"))
    store.on_startup(startup(node="10.0.0.3", server="Dead2", State="deactivating"))
    add_config(store, "App.Dead", "10.0.0.3", 3)
    add_config(store, "App.Dead", "", 2)
    age_heartbeat(store, "10.0.0.2", 120)
    age_heartbeat(store, "10.0.0.3", 2 * 86400)

    result = store.expire()
    assert (result.inactive_servers, result.inactive_nodes) == (3, 2)
    assert (result.deleted_servers, result.deleted_adapters, result.deleted_configs) == (2, 2, 1)
    assert result.deleted_nodes == 1
    found = fetch(
        store, "SELECT server_name, present_state FROM t_server_conf ORDER BY server_name"
    )
    assert [(r["server_name"], r["present_state"]) for r in found] == [
        ("Live", "active"),
        ("Quiet", "inactive"),
    ]
    assert [r["node_name"] for r in rows(store, t_node_info)] == ["10.0.0.1", "10.0.0.2"]
    assert [r["server_name"] for r in fetch(store, "SELECT server_name FROM t_config_files")] == [
        "App.Dead"
    ]
    # nothing more to do; an inactive server is not touched again
    assert store.expire() == type(result)()
    # the pod comes back: a heartbeat makes it routable again
    store.keep_alive_batch([beat("10.0.0.2", app="App", server="Quiet")])
    assert (
        fetch(store, "SELECT present_state FROM t_server_conf WHERE server_name = 'Quiet'")[0][
            "present_state"
        ]
        == "active"
    )


def test_expiry_thresholds_are_configurable(store: Store) -> None:
    store.on_startup(startup())
    age_heartbeat(store, "10.0.0.1", 20)
    assert store.expire(inactive_after_s=30, delete_after_s=60).inactive_servers == 0
    assert store.expire(inactive_after_s=10, delete_after_s=60).inactive_servers == 1
    assert store.expire(inactive_after_s=5, delete_after_s=15).deleted_nodes == 1
    assert _tables(store) == {
        "t_node_info": 0,
        "t_server_conf": 0,
        "t_adapter_conf": 0,
        "t_config_files": 0,
    }


def test_clean_lists_then_deletes_inactive_nodes(store: Store) -> None:
    store.on_startup(startup(node="10.0.0.1", server="Live"))
    store.on_startup(startup(node="10.0.0.3", server="Dead", objs=("A", "B")))
    add_config(store, "App.Dead", "10.0.0.3", 3)
    age_heartbeat(store, "10.0.0.3", 2 * 86400)
    # still active (nobody marked it): clean leaves it, like the original
    assert store.clean().nodes == ()
    store.expire(inactive_after_s=90, delete_after_s=10 * 86400)

    report = store.clean()
    assert report.dry_run and report.nodes == ("10.0.0.3",)
    assert report.servers == (("App", "Dead", "10.0.0.3"),)
    assert [a[3] for a in report.adapters] == ["App.Dead.AAdapter", "App.Dead.BAdapter"]
    assert report.configs == (("App.Dead", "a.conf", "10.0.0.3"),)
    assert "App.Dead.10.0.0.3" in report.render() and report.render().endswith("Dry run.\n")
    assert _tables(store)["t_server_conf"] == 2  # dry run: nothing deleted

    cutoff = store.db_now() - timedelta(days=3)
    assert store.clean(before=cutoff.strftime("%Y-%m-%d %H:%M:%S"), dry_run=False).nodes == ()
    report = store.clean(dry_run=False)
    assert report.nodes == ("10.0.0.3",) and report.render().endswith("Deleted\n")
    assert _tables(store) == {
        "t_node_info": 1,
        "t_server_conf": 1,
        "t_adapter_conf": 1,
        "t_config_files": 0,
    }


def test_registry_info_heartbeats_and_expiry(store: Store) -> None:
    for servant, port in (
        ("tars.tarsregistry.QueryObj", 17890),
        ("tars.tarsregistry.Registry", 17891),
    ):
        store.upsert_registry_info(
            "10.0.0.100:17890", servant, f"tcp -h 10.0.0.100 -p {port} -t 60000"
        )
    store.upsert_registry_info(
        "10.0.0.100:17890", "tars.tarsregistry.QueryObj", "tcp -h 10.0.0.100 -p 17890 -t 60000"
    )
    found = rows(store, t_registry_info)
    assert len(found) == 2
    assert all(r["present_state"] == "active" and r["last_heartbeat"] is not None for r in found)
    assert store.expire_registry_info(60) == 0
    old = store.db_now() - timedelta(seconds=120)
    with store.engine.begin() as conn:
        conn.execute(t_registry_info.update().values(last_heartbeat=old))
    assert store.expire_registry_info(60) == 2
    snapshot, _ = store.load_snapshot()
    assert {i.servant: i.present_state for i in snapshot.instances} == {
        "tars.tarsregistry.QueryObj": "inactive",
        "tars.tarsregistry.Registry": "inactive",
    }
    store.upsert_registry_info(
        "10.0.0.100:17890", "tars.tarsregistry.QueryObj", "tcp -h 10.0.0.100 -p 17890 -t 60000"
    )
    assert rows(store, t_registry_info)[0]["present_state"] == "active"


def test_deregister_registry_info_marks_only_that_registry_inactive(store: Store) -> None:
    for locator in ("10.0.0.100:17890", "10.0.0.101:17890"):
        store.upsert_registry_info(locator, "tars.tarsregistry.QueryObj",
                                   f"tcp -h {locator.split(':')[0]} -p 17890 -t 60000")  # fmt: skip
    _, mark = store.load_snapshot()
    assert store.deregister_registry_info("10.0.0.100:17890") == 1
    found = {r["locator_id"]: r["present_state"] for r in rows(store, t_registry_info)}
    assert found == {"10.0.0.100:17890": "inactive", "10.0.0.101:17890": "active"}
    changed, _, _ = store.load_changes(mark)  # the index sees it at once
    assert {r.endpoint: r.present_state for rs in changed.values() for r in rs} == {
        "tcp -h 10.0.0.100 -p 17890 -t 60000": "inactive",
        "tcp -h 10.0.0.101 -p 17890 -t 60000": "active",
    }
    assert store.deregister_registry_info("10.9.9.9:1") == 0
