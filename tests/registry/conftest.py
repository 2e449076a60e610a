"""Database fixtures for the registry store tests: every test runs on SQLite and on MariaDB.

MariaDB comes from ``K8STARS_TEST_MYSQL_URL`` or from ``scripts/mariadb.sh`` (run once per
session: the local server, else a throw-away private instance). Each MariaDB test gets its own
fresh database, dropped afterwards; databases with the schema are prepared a few tests ahead in
background threads, because InnoDB DDL is slow. Without MariaDB the MariaDB half is skipped,
except in CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from k8stars.registry.store import Store
from k8stars.tars.idl.loader import framework

ROOT = Path(__file__).resolve().parents[2]
BACKENDS = ("sqlite", "mariadb")

_idl = framework()
StartupReq: Any = _idl.struct("tars.onStartupReq")
AdapterConf: Any = _idl.struct("tars.AdapterConf")
KeepAliveReq: Any = _idl.struct("tars.keepAliveReq")
PrestopReq: Any = _idl.struct("tars.onPrestopReq")
MetricsReq: Any = _idl.struct("tars.RegisterMetricsReq")


# -- request builders --------------------------------------------------------------------------


def adapter(servant: str, endpoint: str, **kw: Any) -> Any:
    return AdapterConf(servant=servant, endpoint=endpoint, **kw)


def startup(
    node: str = "10.0.0.1",
    app: str = "App",
    server: str = "Srv",
    objs: tuple[str, ...] = ("Obj",),
    port: int = 10000,
    **kw: Any,
) -> Any:
    """An onStartupReq with one adapter per object: ``App.Srv.Obj`` on ``tcp -h node -p port``."""
    adapters = [
        adapter(f"{app}.{server}.{obj}", f"tcp -h {node} -p {port + i} -t 60000")
        for i, obj in enumerate(objs)
    ]
    return StartupReq(nodeName=node, application=app, server=server, adapters=adapters, **kw)


def beat(
    node: str = "10.0.0.1", state: str = "active", app: str = "", server: str = "", **kw: Any
) -> Any:
    return KeepAliveReq(nodeName=node, state=state, application=app, server=server, **kw)


# -- MariaDB ----------------------------------------------------------------------------------


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


class MariaDBPool:
    """Fresh databases on one server, each with the schema and a connected :class:`Store`,
    made a few tests ahead in threads (InnoDB DDL and MySQL logins are slow); dropped in the
    background after use."""

    def __init__(self, base: URL, ahead: int = 4, threads: int = 4) -> None:
        self.base = base
        self.root = create_engine(base.set(database=""), poolclass=NullPool)
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix="mariadb-pool")
        self.ahead = ahead
        self.ready: deque[Future[tuple[str, Store]]] = deque()
        self.lock = threading.Lock()
        self.drops: list[Future[None]] = []

    def url(self, name: str) -> str:
        return self.base.set(database=name).render_as_string(hide_password=False)

    def create_empty(self) -> str:
        name = f"k8stars_test_{uuid.uuid4().hex[:12]}"
        with self.root.begin() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE `{name}`")
        return name

    def _prepare(self) -> tuple[str, Store]:
        name = self.create_empty()
        store = Store(self.url(name))
        store.ensure_schema()
        store.db_now()  # connects the read engine too
        return name, store

    def take(self) -> tuple[str, Store]:
        """A fresh database with the schema, and a Store connected to it."""
        with self.lock:
            while len(self.ready) < self.ahead + 1:
                self.ready.append(self.executor.submit(self._prepare))
            future = self.ready.popleft()
        return future.result()

    def drop(self, name: str) -> None:
        def run() -> None:
            with self.root.begin() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")

        self.drops.append(self.executor.submit(run))

    def close(self) -> None:
        for future in list(self.ready):
            try:
                name, store = future.result()
                store.close()
                self.drop(name)
            except Exception:  # pragma: no cover - best effort
                pass
        for done in self.drops:
            done.result()
        self.executor.shutdown(wait=True)
        self.root.dispose()


def _find_mysql() -> str:
    url = os.environ.get("K8STARS_TEST_MYSQL_URL", "")
    if url:
        return url
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "mariadb.sh")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        raise RuntimeError(f"scripts/mariadb.sh failed: {proc.stderr.strip() or proc.returncode}")
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def mariadb_pool() -> Iterator[MariaDBPool | None]:
    try:
        base = make_url(_find_mysql())
        if base.host in ("127.0.0.1", "localhost", "::1") and not any(
            k.startswith("ssl") for k in base.query
        ):
            # PyMySQL builds a TLS context for every connection (~50 ms of CPU, holding the GIL);
            # pointless on loopback.
            base = base.update_query_dict({"ssl_disabled": "true"})
        probe = create_engine(base.set(database=""), poolclass=NullPool)
        with probe.connect():
            pass
        probe.dispose()
    except Exception as exc:
        if _in_ci():
            pytest.fail(f"CI=true but no MariaDB for the registry tests: {exc}", pytrace=False)
        yield None
        return
    pool = MariaDBPool(base)
    yield pool
    pool.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class TestDB:
    """A fresh database for one test, with a first Store on it (ready for MariaDB)."""

    def __init__(self, url: str, first: Store | None) -> None:
        self.url = url
        self.first = first


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite db_tars with the schema, copied for each test (cheaper than DDL each time)."""
    path = tmp_path_factory.mktemp("template") / "db_tars.sqlite"
    store = Store(f"sqlite:///{path}")
    store.ensure_schema()
    store.close()
    return path


@pytest.fixture
def test_db(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestDB]:
    if backend == "sqlite":
        path = tmp_path / "db_tars.sqlite"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield TestDB(f"sqlite:///{path}", None)
        return
    pool = _pool(request)
    name, store = pool.take()
    db = TestDB(pool.url(name), store)
    yield db
    store.close()
    pool.drop(name)


@pytest.fixture
def db_url(test_db: TestDB) -> str:
    """The URL of a fresh database (the schema may not exist yet)."""
    return test_db.url


@pytest.fixture
def empty_db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database (no tables)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite'}"
        return
    pool = _pool(request)
    name = pool.create_empty()
    yield pool.url(name)
    pool.drop(name)


def _pool(request: pytest.FixtureRequest) -> MariaDBPool:
    pool: MariaDBPool | None = request.getfixturevalue("mariadb_pool")
    if pool is None:
        pytest.skip("no MariaDB (set K8STARS_TEST_MYSQL_URL or make scripts/mariadb.sh work)")
    return pool


@pytest.fixture
def make_store(test_db: TestDB) -> Iterator[Callable[..., Store]]:
    """Store objects on the test database (several = several registry replicas)."""
    stores: list[Store] = []

    def make(**kw: Any) -> Store:
        if test_db.first is not None and not kw and not stores:
            store = test_db.first
        else:
            store = Store(test_db.url, **kw)
        stores.append(store)
        store.ensure_schema()
        return store

    yield make
    for store in stores:
        store.close()


@pytest.fixture
def store(make_store: Callable[..., Store]) -> Store:
    return make_store()


class StatementCounter:
    def __init__(self) -> None:
        self.statements: list[str] = []

    @property
    def count(self) -> int:
        return len(self.statements)


@contextmanager
def count_statements(*engines: Engine) -> Iterator[StatementCounter]:
    """Count the SQL statements the engines send (transaction control and PRAGMAs excluded)."""
    counter = StatementCounter()

    def on_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        head = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
        if head not in ("BEGIN", "COMMIT", "ROLLBACK", "PRAGMA", "SET"):
            counter.statements.append(statement)

    unique = list({id(e): e for e in engines}.values())
    for engine in unique:
        event.listen(engine, "before_cursor_execute", on_execute)
    try:
        yield counter
    finally:
        for engine in unique:
            event.remove(engine, "before_cursor_execute", on_execute)


# -- direct database access for assertions ---------------------------------------------------


def fetch(store: Store, sql: str, **params: Any) -> list[Any]:
    """Rows (as mappings) of a raw query, read outside the store's own code paths."""
    from sqlalchemy import text

    with store.engine.connect() as conn:
        return list(conn.execute(text(sql), params).mappings())


def count(store: Store, table: str) -> int:
    return int(fetch(store, f"SELECT COUNT(*) AS n FROM {table}")[0]["n"])


def age_heartbeat(store: Store, node: str, seconds: float) -> None:
    """Pretend the node's last heartbeat was ``seconds`` ago (database time)."""
    from datetime import timedelta

    from sqlalchemy import update

    from k8stars.registry.schema import t_node_info

    then = store.db_now() - timedelta(seconds=seconds)
    with store.engine.begin() as conn:
        conn.execute(
            update(t_node_info).where(t_node_info.c.node_name == node).values(last_heartbeat=then)
        )


def add_config(
    store: Store, server_name: str, host: str, level: int, filename: str = "a.conf"
) -> None:
    from sqlalchemy import insert

    from k8stars.registry.schema import t_config_files

    with store.engine.begin() as conn:
        conn.execute(
            insert(t_config_files).values(
                server_name=server_name, host=host, level=level, filename=filename, config="x=1"
            )
        )


def rows(store: Store, table: Any, *where: Any) -> list[Any]:
    """Typed rows (mappings) of a schema table, e.g. datetimes on SQLite too."""
    from sqlalchemy import select

    with store.engine.connect() as conn:
        return list(
            conn.execute(select(table).where(*where).order_by(*table.primary_key)).mappings()
        )
