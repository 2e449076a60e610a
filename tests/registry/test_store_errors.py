"""Bad input is refused before anything is written; database failures are one exception type."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from k8stars.registry.store import Store, StoreUnavailableError, StoreValidationError

from .conftest import MetricsReq, PrestopReq, adapter, beat, count, fetch, startup

TABLES = ("t_node_info", "t_server_conf", "t_adapter_conf", "t_k8stars_change")


def _many_adapters(n: int) -> Any:
    req = startup(objs=())
    req.adapters = [adapter(f"App.Srv.O{i}", f"tcp -h 10.0.0.1 -p {i + 1}") for i in range(n)]
    return req


def _with_adapter(**kw: Any) -> Any:
    req = startup(objs=())
    fields = {"servant": "App.Srv.Obj", "endpoint": "tcp -h 10.0.0.1 -p 1"} | kw
    req.adapters = [adapter(**fields)]
    return req


BAD_STARTUPS = {
    "empty node": (startup(node=""), "nodeName: must not be empty"),
    "long node": (startup(node="1" * 51), "nodeName: longer than 50"),
    "node with space": (startup(node="10.0.0.1 -p 1"), "nodeName"),
    "empty application": (startup(app=""), "application: must not be empty"),
    "long application": (startup(app="A" * 51), "application: longer than 50"),
    "dotted server": (startup(server="a.b"), "server"),
    "long app.server": (startup(app="A" * 50, server="S" * 78), "longer than 128"),
    "unknown state": (startup(State="running"), "unknown state 'running'"),
    "bad set": (startup(setID="sz.a"), "setID"),
    "long set name": (startup(setID="s" * 17 + ".a.1"), "setID (name)"),
    "bad endpoint": (_with_adapter(endpoint="tcp -h"), "endpoint"),
    "endpoint protocol": (_with_adapter(endpoint="http -h 1.2.3.4 -p 1"), "unknown protocol"),
    "long servant": (_with_adapter(servant="S" * 94), "servant: longer than 93"),
    "negative threads": (_with_adapter(threadNum=-1), "threadNum"),
    "duplicate servant": (
        _many_adapters(1).__class__(
            nodeName="10.0.0.1",
            application="App",
            server="Srv",
            adapters=[
                adapter("App.Srv.O", "tcp -h 1.1.1.1 -p 1"),
                adapter("App.Srv.O", "tcp -h 1.1.1.1 -p 2"),
            ],
        ),
        "listed twice",
    ),
    "too many adapters": (_many_adapters(65), "at most 64"),
    "long version": (startup(Version="v" * 129), "Version"),
    "long pod uid": (startup(podUid="u" * 65), "podUid"),
}


def test_bad_startup_requests_write_nothing(store: Store) -> None:
    for case, (req, message) in BAD_STARTUPS.items():
        with pytest.raises(StoreValidationError, match=re.escape(message)):
            store.on_startup(req)
        assert all(count(store, t) == 0 for t in TABLES), case


def test_other_bad_requests(store: Store) -> None:
    store.on_startup(startup())
    good = beat(app="App", server="Srv", state="inactive")
    with pytest.raises(StoreValidationError, match="unknown state"):
        store.keep_alive_batch([good, beat(state="sleeping")])
    with pytest.raises(StoreValidationError, match="together"):
        store.keep_alive_batch([beat(app="App")])
    state = fetch(store, "SELECT present_state FROM t_server_conf")[0]["present_state"]
    assert state == "active"  # the good beat of the refused batch was not applied
    with pytest.raises(StoreValidationError, match="together"):
        store.on_prestop(PrestopReq(nodeName="10.0.0.1", server="Srv"))
    with pytest.raises(StoreValidationError, match="metricsPort"):
        store.register_metrics(
            MetricsReq(nodeName="10.0.0.1", application="App", server="Srv", metricsPort=70000)
        )
    with pytest.raises(StoreValidationError, match="endpoint"):
        store.upsert_registry_info("r:1", "tars.tarsregistry.QueryObj", "nonsense")
    with pytest.raises(StoreValidationError, match="datetime"):
        store.clean(before="yesterday")
    with pytest.raises(StoreValidationError):
        store.expire(inactive_after_s=100, delete_after_s=10)
    assert count(store, "t_server_conf") == 1 and count(store, "t_registry_info") == 0


def test_a_failure_midway_leaves_nothing_written(store: Store) -> None:
    class Boom(Exception):
        pass

    def fail_on_adapters(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO T_ADAPTER_CONF"):
            raise Boom

    event.listen(store.engine, "before_cursor_execute", fail_on_adapters)
    try:
        with pytest.raises(Boom):
            store.on_startup(startup())
    finally:
        event.remove(store.engine, "before_cursor_execute", fail_on_adapters)
    assert all(count(store, t) == 0 for t in TABLES)
    store.on_startup(startup())
    assert count(store, "t_adapter_conf") == 1


def test_unavailable_database(backend: str, tmp_path: Path) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path}"  # a directory: cannot be opened as a database
    else:
        url = "mysql+pymysql://root@127.0.0.1:1/db_tars"  # nothing listens on port 1
    store = Store(url, connect_timeout_s=2)
    try:
        calls: list[Callable[[], object]] = [
            lambda: store.on_startup(startup()),
            lambda: store.keep_alive_batch([beat()]),
            lambda: store.load_snapshot(),
            lambda: store.expire(),
            lambda: store.db_now(),
            lambda: store.ensure_schema(),
        ]
        for call in calls:
            with pytest.raises(StoreUnavailableError, match="database unavailable"):
                call()
        # validation still comes first
        with pytest.raises(StoreValidationError):
            store.on_startup(startup(node=""))
    finally:
        store.close()
