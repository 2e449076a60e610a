"""keepAlive: batching and coalescing, node heartbeat, old clients, pod identity."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert, update

from k8stars.registry.schema import t_node_info, t_server_conf
from k8stars.registry.store import Store

from .conftest import age_heartbeat, beat, count_statements, fetch, rows, startup

STATES = ("active", "inactive", "deactivating", "activating")


def _bulk_servers(store: Store, nodes: int, per_node: int) -> None:
    """Servers App.S<i> on nodes 10.1.0.<n>, inserted directly (fast), all active."""
    now = store.db_now()
    with store.engine.begin() as conn:
        conn.execute(
            insert(t_node_info),
            [
                {"node_name": f"10.1.0.{n}", "present_state": "active", "last_heartbeat": now}
                for n in range(nodes)
            ],
        )
        conn.execute(
            insert(t_server_conf),
            [
                {
                    "application": "App",
                    "server_name": f"S{i}",
                    "node_name": f"10.1.0.{n}",
                    "setting_state": "active",
                    "present_state": "active",
                    "registry_timestamp": now,
                }
                for n in range(nodes)
                for i in range(per_node)
            ],
        )


def test_1000_beats_coalesced_into_a_few_statements(store: Store) -> None:
    _bulk_servers(store, nodes=100, per_node=2)  # 200 servers
    beats = []
    expected: dict[tuple[str, str], str] = {}
    for i in range(1000):
        node, server = f"10.1.0.{(i * 7) % 100}", f"S{(i // 100) % 2}"
        state = STATES[(i * 13 + i // 300) % 3]  # active / inactive / deactivating
        beats.append(beat(node, state, "App", server))
        expected[(node, server)] = state  # the last beat per key wins
    beats += [beat(f"10.2.0.{i}", "active", "App", "Ghost") for i in range(50)]  # unknown

    with count_statements(store.engine, store.read_engine) as counter:
        result = store.keep_alive_batch(beats)
    assert result.beats == len(expected) + 50
    assert (result.touched, result.refused) == (200, 50)
    # one UPDATE of the nodes, one UPDATE per state (3 here): not one statement per heartbeat
    assert counter.count == 1 + len(set(expected.values())) == 4, counter.statements

    found = fetch(store, "SELECT node_name, server_name, present_state FROM t_server_conf")
    assert {(r["node_name"], r["server_name"]): r["present_state"] for r in found} == expected

    # steady state: all active, two statements
    with count_statements(store.engine) as counter:
        again = store.keep_alive_batch(beat(b.nodeName, "active", "App", b.server) for b in beats)
    assert (again.touched, again.refused, counter.count) == (200, 50, 2)


def test_heartbeat_refreshes_node_and_moves_timestamp_only_on_change(store: Store) -> None:
    store.on_startup(startup(State="activating"))
    age_heartbeat(store, "10.0.0.1", 600)
    old = store.db_now() - timedelta(seconds=600)
    with store.engine.begin() as conn:
        conn.execute(update(t_server_conf).values(registry_timestamp=old))

    result = store.keep_alive_batch([beat(app="App", server="Srv", state="activating")])
    assert (result.touched, result.refused) == (1, 0)
    node = rows(store, t_node_info)[0]
    assert node["last_heartbeat"] >= store.db_now() - timedelta(seconds=5)
    server = rows(store, t_server_conf)[0]
    assert server["registry_timestamp"] == old and server["present_state"] == "activating"

    assert store.keep_alive(beat(app="App", server="Srv", state="")).touched == 1  # "" = active
    server = rows(store, t_server_conf)[0]
    assert server["present_state"] == "active" and server["registry_timestamp"] > old


def test_each_beat_touches_only_its_own_row(store: Store) -> None:
    store.on_startup(startup(server="A"))
    store.on_startup(startup(server="B"))
    store.on_startup(startup(node="10.0.0.2", server="A"))
    store.keep_alive_batch([beat(app="App", server="A", state="inactive")])
    found = fetch(store, "SELECT node_name, server_name, present_state FROM t_server_conf")
    states = {(r["node_name"], r["server_name"]): r["present_state"] for r in found}
    assert states == {
        ("10.0.0.1", "A"): "inactive",
        ("10.0.0.1", "B"): "active",
        ("10.0.0.2", "A"): "active",
    }


def test_old_clients_beat_for_all_servers_of_the_node(store: Store) -> None:
    store.on_startup(startup(server="A"))
    store.on_startup(startup(server="B"))
    store.on_startup(startup(node="10.0.0.2", server="A"))
    result = store.keep_alive_batch([beat(state="deactivating"), beat("10.0.0.9")])
    assert (result.touched, result.refused) == (2, 0)  # refused counts servers' own beats
    found = fetch(store, "SELECT node_name, present_state FROM t_server_conf ORDER BY node_name")
    assert [(r["node_name"], r["present_state"]) for r in found] == [
        ("10.0.0.1", "deactivating"),
        ("10.0.0.1", "deactivating"),
        ("10.0.0.2", "active"),
    ]


def test_last_state_wins_and_own_beats_win_over_node_wide_ones(store: Store) -> None:
    store.on_startup(startup(server="A"))
    store.on_startup(startup(server="B"))
    store.on_startup(startup(server="C"))
    store.keep_alive_batch(
        [
            beat(app="App", server="A", state="inactive"),
            beat(state="deactivating"),  # old style, later: all rows without a beat of their own
            beat(app="App", server="B", state="inactive"),
            beat(app="App", server="B", state="active"),  # same key again: last wins
        ]
    )
    found = fetch(
        store, "SELECT server_name, present_state FROM t_server_conf ORDER BY server_name"
    )
    assert [r["present_state"] for r in found] == ["inactive", "active", "deactivating"]


def test_pod_identity_on_heartbeats(store: Store) -> None:
    store.on_startup(startup(server="A", podUid="uid-1"))
    store.on_startup(startup(server="B"))  # old client, no identity
    ok = store.keep_alive_batch(
        [
            beat(app="App", server="A", podUid="uid-1", state="inactive"),
            beat(app="App", server="B", podUid="uid-1", state="inactive"),  # row has no UID
        ]
    )
    assert (ok.touched, ok.refused) == (2, 0)
    refused = store.keep_alive_batch([beat(app="App", server="A", podUid="uid-other")])
    assert (refused.touched, refused.refused) == (0, 1)
    # an old-style beat with a foreign UID touches only the rows without identity
    partial = store.keep_alive_batch([beat(podUid="uid-other", state="active")])
    assert partial.touched == 1
    found = fetch(
        store, "SELECT server_name, present_state FROM t_server_conf ORDER BY server_name"
    )
    assert [r["present_state"] for r in found] == ["inactive", "active"]


def test_empty_batch_does_nothing(store: Store) -> None:
    with count_statements(store.engine) as counter:
        assert store.keep_alive_batch([]).beats == 0
    assert counter.count == 0
