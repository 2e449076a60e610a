"""The registry store: K8STARS writes and index reads on ``db_tars`` (MySQL/MariaDB or SQLite).

One code path (SQLAlchemy Core) for both databases. Each operation is one transaction (all or
nothing; a batch of onStartups, :meth:`Store.on_startup_batch`, is one operation of set-based
statements with the result of the requests one by one), every statement is parameterized (MySQL
multi-row INSERTs: the driver binds the values), and every timestamp is database time
(``CURRENT_TIMESTAMP``; :meth:`Store.db_now`), never the local clock. Requests are validated
before anything is written (:class:`StoreValidationError`); database failures raise
:class:`StoreUnavailableError` so the caller can keep the operation and retry
(:class:`StoreRefusedError` when the database answered and refused it: a constraint, a trigger).

Semantics beyond the Go original (see ``k8stars-upstream.md``):

* ``disableFlow`` sets ``flow_state='inactive'`` (which HEAD registries honour) as well as
  ``grid_flag='NO_FLOW'``.
* Pod identity (K8STARS #14): onStartup with a pod UID replaces the rows on that node (pod IP)
  that belong to another pod -- servers with a different stored UID, and, when the node row was
  last claimed by another identified pod, servers without a UID -- with their adapters and
  host-level configs. A heartbeat only touches its own ``(node, application, server)`` row, and
  only when the UIDs agree or one side has none, so a replaced pod is never revived.
* Liveness for expiry is the node's ``last_heartbeat`` (node = pod IP = one pod under K8STARS):
  every accepted heartbeat refreshes it, while ``registry_timestamp`` moves only when a server's
  state really changes, so change polls (ours and the C++ registry's) stay cheap.
"""

from __future__ import annotations

import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    case,
    create_engine,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    tuple_,
    type_coerce,
    union,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import mysql as mysql_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.schema import Table

from .. import __version__
from .model import InstanceRow, RegistrySnapshot
from .schema import (
    TIMESTAMP,
    ensure_schema,
    t_adapter_conf,
    t_config_files,
    t_k8stars_change,
    t_node_info,
    t_registry_info,
    t_server_conf,
)
from .store_changes import CRC_FUNCTION, GroupKey, PollSettings, Watermark, sqlite_crc
from .store_changes import load_changes as _load_changes
from .store_changes import load_snapshot as _load_snapshot
from .store_validate import (
    AdapterSpec,
    Beat,
    Startup,
    StoreError,
    StoreUnavailableError,
    StoreValidationError,
    parse_clean_before,
    validate_keep_alive,
    validate_metrics,
    validate_metrics_filter,
    validate_prestop,
    validate_registry_info,
    validate_startup,
)

__all__ = [
    "CleanReport",
    "ExpireResult",
    "KeepAliveResult",
    "Store",
    "StoreError",
    "StoreRefusedError",
    "StoreUnavailableError",
    "StoreValidationError",
    "Watermark",
]

T = TypeVar("T")

_s = t_server_conf.c
_a = t_adapter_conf.c
_n = t_node_info.c
_cf = t_config_files.c
_chg = t_k8stars_change.c

#: ``CURRENT_TIMESTAMP`` of the database, typed so SQLite round-trips it.
NOW: ColumnElement[Any] = type_coerce(func.current_timestamp(), TIMESTAMP)

_HOST_LEVEL = 3  # t_config_files.level of per-host configs
_CHUNK = 1000  # values per IN list
_ROUTABLE_STATES = ("active", "activating", "deactivating")
_MYSQL_RETRY = {1205, 1213}  # lock wait timeout, deadlock
_MYSQL_UNKNOWN_DB = 1049
#: MySQL server errors that say the database cannot serve now (not that it refuses this write):
#: too many connections, access denied, shutting down, killed or idle connection, read-only.
_MYSQL_UNAVAILABLE = {1040, 1044, 1045, 1053, 1077, 1152, 1184, 1205, 1213, 1290, 1792, 1836,
                      1927, 4031}  # fmt: skip
#: Rows per multi-row INSERT on MySQL.
_ROWS_PER_INSERT = 500
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


class StoreRefusedError(StoreUnavailableError):
    """The database answered and refused the operation for a reason of its own (a constraint, a
    trigger, a value it does not take): nothing was written, and writing it again will likely
    fail again, while other operations may pass. A :class:`StoreUnavailableError`, so callers
    that do not tell the two apart keep the operation and retry it, as before."""


@dataclass(frozen=True, slots=True)
class KeepAliveResult:
    """Outcome of :meth:`Store.keep_alive_batch`.

    ``beats``: heartbeats left after coalescing (last state per node/app/server/pod wins);
    ``touched``: server rows they applied to; ``refused``: beats naming a server that matched
    no row of their own (unknown, or another pod's).
    """

    beats: int
    touched: int
    refused: int


@dataclass(frozen=True, slots=True)
class ExpireResult:
    inactive_servers: int = 0
    inactive_nodes: int = 0
    deleted_servers: int = 0
    deleted_adapters: int = 0
    deleted_configs: int = 0
    deleted_nodes: int = 0
    pruned_changes: int = 0


@dataclass(frozen=True, slots=True)
class CleanReport:
    """What ``clean`` found (and, unless ``dry_run``, deleted)."""

    before: datetime
    dry_run: bool
    servers: tuple[tuple[str, str, str], ...]  # (application, server_name, node_name)
    adapters: tuple[tuple[str, str, str, str], ...]  # (..., adapter_name)
    configs: tuple[tuple[str, str, str], ...]  # (server_name, filename, host)
    nodes: tuple[str, ...]

    def render(self) -> str:
        """The original's answer: one ``app.server.node`` or node per line, then the verdict."""
        lines = [f"{a}.{s}.{n}" for a, s, n in self.servers] + list(self.nodes)
        return "\n" + "\n".join(lines) + ("\nDry run.\n" if self.dry_run else "\nDeleted\n")


def _chunks(items: Sequence[T], size: int = _CHUNK) -> Iterable[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _rowcount(result: Any) -> int:
    return max(int(getattr(result, "rowcount", 0) or 0), 0)


class Store:
    """The registry's database layer. Thread-safe; one transaction per call.

    ``url`` is a SQLAlchemy URL: ``sqlite:///path/db_tars.sqlite``,
    ``mysql+pymysql://user:pass@host:3306/db_tars`` (the database is created when missing;
    without a database name ``db_tars`` is used). Nothing connects until the first call, which
    also creates missing tables and columns (:func:`~.schema.ensure_schema`).

    ``overlap_s``, ``full_resync_s``, ``change_retention_s`` and ``check_interval_s`` tune the
    change polls (:mod:`.store_changes`): the time window re-checked for late commits, the
    period of complete reloads, how long the change log is kept, and how long a poll right
    after this store's own onStartup/onPrestop may skip the checks for writes of others.

    ``connect_timeout_s`` and ``io_timeout_s`` (each network read or write of a statement) bound
    how long a call waits for a database that went away silently (a partition, a lost host): the
    registry's statements are small, so a wait of ``io_timeout_s`` means the connection is gone.
    """

    def __init__(
        self,
        url: str | URL,
        *,
        create_database: bool = True,
        overlap_s: float = 3.0,
        full_resync_s: float = 300.0,
        change_retention_s: float = 3600.0,
        check_interval_s: float = 0.2,
        connect_timeout_s: int = 5,
        io_timeout_s: int = 10,
    ) -> None:
        u = make_url(url)
        self._backend = u.get_backend_name()
        if self._backend in ("mysql", "mariadb") and not u.database:
            u = u.set(database="db_tars")
        self.url = u
        self._create_database = create_database
        self._poll = PollSettings(overlap_s, full_resync_s, change_retention_s, check_interval_s)
        # Writes through this store that change what the index shows, and those of them that
        # are not (only) in the change log: a poll after logged writes alone may be light.
        self._writes = 0
        self._unlogged = 0
        self._count_lock = threading.Lock()
        self._statements: dict[tuple[Any, ...], Any] = {}
        self._ready = False
        self._ready_lock = threading.Lock()
        # An in-memory SQLite database is one shared connection: one operation at a time.
        self._serial: AbstractContextManager[object] = nullcontext()
        if self._backend == "sqlite":
            path = u.database or ""
            memory = path in ("", ":memory:") or path.startswith("file::memory:")
            if memory:
                # One shared connection: every engine must see the same in-memory database.
                self.engine = self._sqlite_engine(u, poolclass=StaticPool)
                self.read_engine = self.engine
                self._serial = threading.RLock()
            else:
                Path(path).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
                self.engine = self._sqlite_engine(u)
                self.read_engine = self._sqlite_engine(u, read=True)
        else:
            # Every use of a connection is one transaction ended by COMMIT or ROLLBACK, so the
            # pool's reset (a ROLLBACK) and pre-ping (a round trip) on each checkout are pure
            # cost: a connection found dead is invalidated with the whole pool, and _run
            # retries the transaction on a new one.
            # The pool keeps as many connections as the service has database threads (8):
            # overflow connections are closed after each use, and a MySQL login costs ~10 ms.
            kw: dict[str, Any] = {
                "pool_pre_ping": False,
                "pool_reset_on_return": None,
                "pool_recycle": 3600,
                "pool_size": 10,
                "max_overflow": 10,
                "connect_args": {
                    "connect_timeout": connect_timeout_s,
                    "read_timeout": io_timeout_s,
                    "write_timeout": io_timeout_s,
                }
                if u.get_driver_name() == "pymysql"
                else {},
            }
            # Writes at READ COMMITTED (no gap locks: concurrent registrations of new pods do not
            # deadlock); reads at REPEATABLE READ, so a poll sees one consistent snapshot.
            self.engine = create_engine(u, isolation_level="READ COMMITTED", **kw)
            self.read_engine = create_engine(u, isolation_level="REPEATABLE READ", **kw)

    # -- engine setup -------------------------------------------------------------------------

    @staticmethod
    def _sqlite_engine(u: URL, *, read: bool = False, poolclass: Any = None) -> Engine:
        kw: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
        if poolclass is not None:
            kw["poolclass"] = poolclass
        engine = create_engine(u, **kw)
        begin_sql = "BEGIN" if read else "BEGIN IMMEDIATE"

        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA busy_timeout = 10000")
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")
            cur.close()
            dbapi_conn.create_function(CRC_FUNCTION, -1, sqlite_crc, deterministic=True)

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            # Writers take the write lock up front (no deadlocked lock upgrades); readers get a
            # snapshot that lasts the whole transaction.
            conn.exec_driver_sql(begin_sql)

        return engine

    def close(self) -> None:
        """Close all pooled connections."""
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def is_mysql(self) -> bool:
        return self._backend in ("mysql", "mariadb")

    def ensure_schema(self) -> list[str]:
        """Create the database (MySQL, when missing), tables and missing columns now."""
        try:
            with self._serial:
                return self._prepare()
        except (DBAPIError, sa_exc.TimeoutError, sa_exc.DisconnectionError) as exc:
            raise StoreUnavailableError(f"database unavailable: {_describe(exc)}") from exc

    def _prepare(self) -> list[str]:
        if self.is_mysql and self._create_database:
            try:
                with self.engine.connect():
                    pass
            except DBAPIError as exc:
                if _errno(exc) != _MYSQL_UNKNOWN_DB:
                    raise
                server = create_engine(self.url.set(database=""), poolclass=StaticPool)
                try:
                    with server.begin() as conn:
                        name = server.dialect.identifier_preparer.quote(self.url.database or "")
                        conn.exec_driver_sql(
                            f"CREATE DATABASE IF NOT EXISTS {name} DEFAULT CHARACTER SET utf8mb4"
                        )
                finally:
                    server.dispose()
        actions = ensure_schema(self.engine)
        self._ready = True
        return actions

    def _ensure_ready(self) -> None:
        if self._ready:
            return
        with self._ready_lock:
            if not self._ready:
                self._prepare()

    # -- transactions -------------------------------------------------------------------------

    def _run(self, fn: Callable[[Connection], T], *, read: bool = False) -> T:
        engine = self.read_engine if read else self.engine
        attempts = 4
        for attempt in range(attempts):
            try:
                with self._serial:
                    self._ensure_ready()
                    with engine.connect() as conn, conn.begin():
                        return fn(conn)
            except DBAPIError as exc:
                if attempt + 1 < attempts and _retryable(exc):
                    time.sleep(0.02 * (attempt + 1))
                    continue
                if _refused(exc, self.is_mysql):
                    raise StoreRefusedError(f"database refused the write: {_describe(exc)}"
                                            ) from exc  # fmt: skip
                raise StoreUnavailableError(f"database unavailable: {_describe(exc)}") from exc
            except (sa_exc.TimeoutError, sa_exc.DisconnectionError) as exc:  # pool exhausted etc.
                raise StoreUnavailableError(f"database unavailable: {_describe(exc)}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def db_now(self) -> datetime:
        """The database's ``CURRENT_TIMESTAMP`` (1 s resolution, the database's time zone)."""
        return self._run(_now, read=True)

    def _upsert(
        self,
        conn: Connection,
        table: Table,
        rows: list[dict[str, Any]],
        keys: Sequence[str],
        inserted: Sequence[str],
    ) -> None:
        """INSERT rows; on a duplicate key set the ``inserted`` columns from the row (MySQL ON
        DUPLICATE KEY UPDATE / SQLite ON CONFLICT). Row values that are :data:`NOW` become part
        of the statement, the rest parameters, so the compiled statement is cached. Every row
        has the same columns, and the same of them are :data:`NOW`."""
        now_cols = tuple(c for c, v in rows[0].items() if v is NOW)
        sig = ("upsert", table.name, now_cols, tuple(keys), tuple(inserted))
        stmt = self._statements.get(sig)
        if stmt is None:
            fixed = {c: NOW for c in now_cols}
            if self.is_mysql:
                my = mysql_dialect.insert(table).values(fixed)
                stmt = my.on_duplicate_key_update({c: my.inserted[c] for c in inserted})
            else:
                lite = sqlite_dialect.insert(table).values(fixed)
                stmt = lite.on_conflict_do_update(
                    index_elements=list(keys), set_={c: lite.excluded[c] for c in inserted}
                )
            self._statements[sig] = stmt
        self._execute_rows(conn, sig, stmt, rows)

    def _insert(self, conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
        """Plain INSERT of rows, as :meth:`_upsert` (:data:`NOW` values in the statement)."""
        now_cols = tuple(c for c, v in rows[0].items() if v is NOW)
        sig = ("insert", table.name, now_cols)
        stmt = self._statements.get(sig)
        if stmt is None:
            fixed = {c: NOW for c in now_cols}
            dialect_insert = mysql_dialect.insert if self.is_mysql else sqlite_dialect.insert
            stmt = self._statements[sig] = dialect_insert(table).values(fixed)
        self._execute_rows(conn, sig, stmt, rows)

    def _execute_rows(
        self, conn: Connection, sig: tuple[Any, ...], stmt: Any, rows: list[dict[str, Any]]
    ) -> None:
        if self.is_mysql and len(rows) > 1:
            self._mysql_rows(conn, sig, stmt, rows)
            return
        params = [{c: v for c, v in row.items() if v is not NOW} for row in rows]
        conn.execute(stmt, params[0] if len(params) == 1 else params)  # SQLite: executemany

    def _mysql_rows(
        self, conn: Connection, sig: tuple[Any, ...], stmt: Any, rows: list[dict[str, Any]]
    ) -> None:
        """Rows in multi-row INSERTs, up to :data:`_ROWS_PER_INSERT` a statement, in the order
        given. (pymysql sends an executemany of a statement with SQL functions in its VALUES
        row by row, one round trip each.) The one-row statement is compiled once; its VALUES
        tuple is repeated, with positional parameters bound by the driver."""
        key = ("rows", *sig)
        parts = self._statements.get(key)
        if parts is None:
            columns = [c for c, v in rows[0].items() if v is not NOW]
            compiled = str(stmt.compile(dialect=conn.dialect, column_keys=columns))
            names = tuple(_PLACEHOLDER.findall(compiled))
            sql = _PLACEHOLDER.sub("%s", compiled)
            start = sql.index(" VALUES (") + len(" VALUES ")
            end = sql.index(")", start) + 1
            one = sql[start:end]
            if "(" in one[1:] or one.count("%s") != len(names) or "%" in sql[end:]:
                raise AssertionError(f"unexpected INSERT layout: {compiled}")  # pragma: no cover
            parts = self._statements[key] = (sql[:start], one, sql[end:], names)
        head, one, tail, names = parts
        for chunk in _chunks(rows, _ROWS_PER_INSERT):
            conn.exec_driver_sql(head + ", ".join([one] * len(chunk)) + tail,
                                 tuple(row[c] for row in chunk for c in names))  # fmt: skip

    def _wrote(self, *, unlogged: bool = False) -> None:
        """Count a committed write that may change the answers (see :meth:`load_changes`)."""
        with self._count_lock:
            self._writes += 1
            if unlogged:
                self._unlogged += 1

    @property
    def _local(self) -> tuple[int, int]:
        return self._writes, self._unlogged

    # -- K8STARS writes -----------------------------------------------------------------------

    def on_startup(self, req: object) -> None:
        """onStartup: node, server and adapter upserts; replaces a dead pod's rows (K8STARS #14).
        A batch of one (:meth:`on_startup_batch`)."""
        self.on_startup_batch([req])

    def on_startup_batch(self, reqs: Iterable[object]) -> int:
        """Apply onStartup requests in order, in one transaction (all or nothing) of set-based
        statements; returns how many.

        The result is that of :meth:`on_startup` for each request in turn: the same rows in
        ``t_node_info``, ``t_server_conf`` and ``t_adapter_conf``, the same dead pods' rows
        and host-level configs deleted, the same change-log rows in the same order. Every
        request is validated before anything is written (:class:`StoreValidationError`); items
        may be requests or validated :class:`Startup` objects.

        How: the batch's nodes are locked first, with one ``SELECT ... FOR UPDATE`` in name
        order (transactions that share nodes take those locks in the same order), then each
        *segment* -- consecutive requests on distinct nodes, whose rows are disjoint, so that
        their order does not matter -- costs a handful of statements: one read of the servers
        on its identified nodes, the deletion of dead pods' rows, one multi-row upsert per
        table (rows in key order), one deletion of the adapters no longer listed. A request
        that repeats a node starts a new segment, which sees what the earlier ones wrote. The
        change log gets one multi-row INSERT at the end.
        """
        regs = [r if isinstance(r, Startup) else validate_startup(r) for r in reqs]
        if not regs:
            return 0
        self._run(lambda conn: self._startups(conn, regs))
        self._wrote()
        return len(regs)

    def _fold(self, node: str) -> str:
        """A node name as the database compares it (MySQL: case-insensitive collation)."""
        return node.lower() if self.is_mysql else node

    def _startups(self, conn: Connection, regs: Sequence[Startup]) -> None:
        fold = self._fold
        node_uid: dict[str, str] = {}  # folded node name -> pod UID of its row ('' = none)
        for chunk in _chunks(sorted({r.node for r in regs})):
            for row in conn.execute(
                select(_n.node_name, _n.pod_uid)
                .where(_n.node_name.in_(chunk))
                .order_by(_n.node_name)
                .with_for_update()
            ):
                node_uid[fold(row.node_name)] = row.pod_uid or ""
        log: list[tuple[str, str, str]] = []
        for segment in _segments(regs, fold):
            self._startup_segment(conn, segment, node_uid, log)
            for reg in segment:  # the node rows as the segment left them
                node_uid[fold(reg.node)] = reg.pod_uid or node_uid.get(fold(reg.node), "")
        self._insert(
            conn,
            t_k8stars_change,
            [{"application": a, "server_name": s, "node_name": n, "changed_at": NOW}
             for a, s, n in log],
        )  # fmt: skip

    def _startup_segment(
        self,
        conn: Connection,
        segment: Sequence[Startup],
        node_uid: Mapping[str, str],
        log: list[tuple[str, str, str]],
    ) -> None:
        """Requests on distinct nodes (see :meth:`on_startup_batch`); appends to ``log`` the
        change-log rows, in the order one-by-one writes would make them."""
        fold = self._fold
        # A pod with a UID replaces the rows on its node (pod IP) that belong to another pod:
        # servers with another UID, and, when the node was last claimed by another identified
        # pod, servers without one (K8STARS #14).
        identified = {fold(r.node): r for r in segment if r.pod_uid}
        dead: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
        for chunk in _chunks(sorted(r.node for r in identified.values())):
            for row in conn.execute(
                select(_s.application, _s.server_name, _s.node_name, _s.pod_uid).where(
                    _s.node_name.in_(chunk)
                )
            ):
                folded = fold(row.node_name or "")
                reg = identified.get(folded)
                if reg is None:  # pragma: no cover - the IN list matched it
                    continue
                row_uid = row.pod_uid or ""
                if row_uid == reg.pod_uid:
                    continue
                owner = node_uid.get(folded, "")
                if row_uid or (owner and owner != reg.pod_uid):
                    dead[folded].add((row.application, row.server_name, reg.node))
        if dead:
            _delete_servers(conn, [k for r in segment for k in sorted(dead.get(fold(r.node), ()))],
                            log=False)  # fmt: skip
        for reg in segment:
            log += sorted(dead.get(fold(reg.node), ()))
            log.append((reg.application, reg.server, reg.node))

        # Rows in key order: transactions touching the same rows lock them in the same order.
        by_node = sorted(segment, key=lambda r: r.node)
        for identified_pods in (False, True):
            nodes = [_node_values(r) for r in by_node if bool(r.pod_uid) == identified_pods]
            if nodes:
                # an old client does not erase the identity a new one recorded
                update_cols = _NODE_UPDATE + (("pod_name", "pod_uid") if identified_pods else ())
                self._upsert(conn, t_node_info, nodes, ["node_name"], update_cols)
        by_server = sorted(segment, key=lambda r: (r.application, r.server, r.node))
        servers = [_server_values(r) for r in by_server]
        self._upsert(conn, t_server_conf, servers, _SERVER_KEY,
                     [c for c in servers[0] if c not in _SERVER_KEY])  # fmt: skip
        adapters = [_adapter_values(r, a) for r in by_server for a in r.adapters]
        if adapters:
            self._upsert(
                conn,
                t_adapter_conf,
                adapters,
                [*_SERVER_KEY, "adapter_name"],
                [c for c in adapters[0] if c not in (*_SERVER_KEY, "adapter_name")],
            )
        # Adapters no longer listed go; pollers reload the (application, server, node) from
        # the change log and see the removal.
        for part in _budget_chunks(by_server, lambda r: 1 + len(r.adapters), 1000):
            stmt = delete(t_adapter_conf).where(
                tuple_(_a.application, _a.server_name, _a.node_name).in_(
                    [(r.application, r.server, r.node) for r in part]
                )
            )
            listed = [(r.application, r.server, r.node, a.adapter_name)
                      for r in part for a in r.adapters]  # fmt: skip
            if listed:
                stmt = stmt.where(
                    tuple_(_a.application, _a.server_name, _a.node_name, _a.adapter_name).not_in(
                        listed
                    )
                )
            conn.execute(stmt)

    def keep_alive(self, req: object) -> KeepAliveResult:
        """keepAlive for one request (the service layer should prefer batches)."""
        return self.keep_alive_batch([req])

    def keep_alive_batch(self, beats: Iterable[object]) -> KeepAliveResult:
        """Apply many keepAlive requests in one transaction and a handful of statements.

        Beats are coalesced per (node, application, server, pod UID), the last one winning.
        Set-based, nothing is read back: one UPDATE of the nodes' ``last_heartbeat`` and one
        UPDATE per distinct state (``registry_timestamp`` moves only where the state really
        changes), per 1,000 beats on SQLite / 5,000 on MySQL. Each beat touches only its own
        row (old clients without application/server: the rows of their node, applied before
        the servers' own beats of the batch) and only if the pod UIDs agree or one side has
        none. Items may be requests or already validated :class:`Beat` objects.
        """
        coalesced: dict[tuple[str, str, str, str], Beat] = {}
        for raw in beats:
            beat = raw if isinstance(raw, Beat) else validate_keep_alive(raw)
            key = (beat.node, beat.application, beat.server, beat.pod_uid)
            coalesced.pop(key, None)
            coalesced[key] = beat
        if not coalesced:
            return KeepAliveResult(0, 0, 0)
        chunk = _CHUNK if self._backend == "sqlite" else 5 * _CHUNK
        result = self._run(lambda conn: _apply_beats(conn, list(coalesced.values()), chunk))
        self._wrote(unlogged=True)  # which states changed is not known here
        return result

    def on_prestop(self, req: object) -> int:
        """onPrestop. With application/server: delete that server's adapters, server row and
        host-level configs on the node; without (old clients): mark the node's servers
        destroyed. Returns the number of server rows deleted or marked."""
        stop = validate_prestop(req)

        def run(conn: Connection) -> int:
            if stop.application:
                return _delete_servers(conn, [(stop.application, stop.server, stop.node)])[0]
            result = conn.execute(
                update(t_server_conf)
                .where(_s.node_name == stop.node, _s.present_state != "destroyed")
                .ordered_values((_s.registry_timestamp, NOW), (_s.present_state, "destroyed"))
            )
            return _rowcount(result)

        n = self._run(run)
        self._wrote(unlogged=not stop.application)
        return n

    def register_metrics(self, req: object) -> int:
        """registerMetrics: ``t_server_conf.metrics_port`` (0 → 9325). Returns rows matched."""
        reg = validate_metrics(req)
        stmt = (
            update(t_server_conf)
            .where(
                _s.node_name == reg.node,
                _s.application == reg.application,
                _s.server_name == reg.server,
            )
            .ordered_values(
                # as MySQL's ON UPDATE would: the timestamp moves only when the value changes
                (
                    _s.registry_timestamp,
                    _case_changed(func.coalesce(_s.metrics_port, 0) != reg.port),
                ),
                (_s.metrics_port, reg.port),
            )
        )
        return self._run(lambda conn: _rowcount(conn.execute(stmt)))

    def get_metrics_adapters(
        self, filter: Mapping[str, str] | None = None
    ) -> list[tuple[list[str], dict[str, str]]]:
        """Servers with ``metrics_port > 0`` grouped by (application, server, set):
        ``(["node:port", ...], {"application": .., "server": .., "set": ..})``, sorted by
        (application, server, set), targets by node.

        ``filter`` may hold ``application``, ``server`` and ``set`` (exact matches)."""
        wanted = validate_metrics_filter(filter)
        q = select(
            _s.application,
            _s.server_name,
            _s.node_name,
            _s.enable_set,
            _s.set_name,
            _s.set_area,
            _s.set_group,
            _s.metrics_port,
        ).where(_s.metrics_port > 0)
        if "application" in wanted:
            q = q.where(_s.application == wanted["application"])
        if "server" in wanted:
            q = q.where(_s.server_name == wanted["server"])
        q = q.order_by(_s.application, _s.server_name, _s.node_name)

        def run(conn: Connection) -> list[tuple[list[str], dict[str, str]]]:
            groups: dict[tuple[str, str, str], list[str]] = {}
            for r in conn.execute(q):
                set_id = ""
                if (r.enable_set or "").upper() == "Y":
                    set_id = f"{r.set_name or ''}.{r.set_area or ''}.{r.set_group or ''}"
                if "set" in wanted and set_id != wanted["set"]:
                    continue
                key = (r.application or "", r.server_name or "", set_id)
                groups.setdefault(key, []).append(f"{r.node_name}:{r.metrics_port}")
            return [
                (targets, {"application": app, "server": server, "set": set_id})
                for (app, server, set_id), targets in sorted(groups.items())
            ]

        return self._run(run, read=True)

    # -- expiry and clean ---------------------------------------------------------------------

    def expire(
        self, inactive_after_s: float = 90.0, delete_after_s: float = 86400.0
    ) -> ExpireResult:
        """Server-side expiry, by the node's ``last_heartbeat`` (database time).

        Older than ``inactive_after_s``: the node and its routable servers (active, activating,
        deactivating) become inactive. Older than ``delete_after_s``: the node's servers,
        adapters and host-level configs are deleted, then the node. Also prunes the change log
        older than ``change_retention_s``.
        """
        if not 0 < inactive_after_s <= delete_after_s:
            raise StoreValidationError(
                "expire: need 0 < inactive_after_s <= delete_after_s, "
                f"got {inactive_after_s} and {delete_after_s}"
            )

        def run(conn: Connection) -> ExpireResult:
            now = _now(conn)
            stale = now - timedelta(seconds=inactive_after_s)
            dead = now - timedelta(seconds=delete_after_s)
            stale_nodes = select(_n.node_name).where(_n.last_heartbeat < stale)
            inactive_servers = _rowcount(
                conn.execute(
                    update(t_server_conf)
                    .where(
                        _s.present_state.in_(_ROUTABLE_STATES),
                        _s.node_name.in_(stale_nodes.scalar_subquery()),
                    )
                    .ordered_values((_s.registry_timestamp, NOW), (_s.present_state, "inactive"))
                )
            )
            inactive_nodes = _rowcount(
                conn.execute(
                    update(t_node_info)
                    .where(_n.last_heartbeat < stale, _n.present_state == "active")
                    .ordered_values((_n.modify_time, NOW), (_n.present_state, "inactive"))
                )
            )
            dead_nodes = [
                r.node_name
                for r in conn.execute(
                    select(_n.node_name).where(_n.last_heartbeat < dead).with_for_update()
                )
            ]
            counts = _delete_nodes(conn, dead_nodes)
            pruned = _rowcount(
                conn.execute(
                    delete(t_k8stars_change).where(
                        _chg.changed_at < now - timedelta(seconds=self._poll.change_retention_s)
                    )
                )
            )
            return ExpireResult(inactive_servers, inactive_nodes, *counts, pruned)

        result = self._run(run)
        if result.inactive_servers or result.deleted_servers or result.deleted_adapters:
            self._wrote(unlogged=result.inactive_servers > 0)
        return result

    def clean(self, before: datetime | str | None = None, dry_run: bool = True) -> CleanReport:
        """The original's admin ``clean``: servers, adapters, host-level configs and nodes whose
        node is inactive with ``last_heartbeat`` older than ``before`` (default: database now
        minus 24 h); listed, and deleted unless ``dry_run``."""
        when = parse_clean_before(before)

        def run(conn: Connection) -> CleanReport:
            cutoff = when if when is not None else _now(conn) - timedelta(hours=24)
            q = select(_n.node_name).where(
                _n.present_state == "inactive", _n.last_heartbeat < cutoff
            )
            if not dry_run:
                q = q.with_for_update()
            nodes = sorted(r.node_name for r in conn.execute(q))
            servers: list[tuple[str, str, str]] = []
            adapters: list[tuple[str, str, str, str]] = []
            configs: list[tuple[str, str, str]] = []
            for chunk in _chunks(nodes):
                servers += [
                    (r.application, r.server_name, r.node_name)
                    for r in conn.execute(
                        select(_s.application, _s.server_name, _s.node_name).where(
                            _s.node_name.in_(chunk)
                        )
                    )
                ]
                adapters += [
                    (r.application, r.server_name, r.node_name, r.adapter_name)
                    for r in conn.execute(
                        select(_a.application, _a.server_name, _a.node_name, _a.adapter_name).where(
                            _a.node_name.in_(chunk)
                        )
                    )
                ]
                configs += [
                    (r.server_name, r.filename, r.host)
                    for r in conn.execute(
                        select(_cf.server_name, _cf.filename, _cf.host).where(
                            _cf.level == _HOST_LEVEL, _cf.host.in_(chunk)
                        )
                    )
                ]
            if not dry_run:
                _delete_nodes(conn, nodes)
            return CleanReport(
                before=cutoff,
                dry_run=dry_run,
                servers=tuple(sorted(servers)),
                adapters=tuple(sorted(adapters)),
                configs=tuple(sorted(configs)),
                nodes=tuple(nodes),
            )

        report = self._run(run, read=dry_run)
        if not dry_run and (report.servers or report.adapters):
            self._wrote()
        return report

    # -- the registry's own servants ----------------------------------------------------------

    def upsert_registry_info(
        self,
        locator_id: str,
        servant: str,
        endpoint: str,
        tars_version: str = f"k8stars-{__version__}",
    ) -> None:
        """Heartbeat one servant of this registry in ``t_registry_info`` (key: locator_id,
        servant): present_state active, last_heartbeat now."""
        validate_registry_info(locator_id, servant, endpoint, tars_version)
        values = {
            "locator_id": locator_id,
            "servant": servant,
            "endpoint": endpoint,
            "last_heartbeat": NOW,
            "present_state": "active",
            "tars_version": tars_version,
            "modify_time": NOW,
        }
        self._run(
            lambda conn: self._upsert(
                conn,
                t_registry_info,
                [values],
                ["locator_id", "servant"],
                ["endpoint", "last_heartbeat", "present_state", "tars_version", "modify_time"],
            )
        )
        self._wrote(unlogged=True)  # t_registry_info is read by full checks only

    def expire_registry_info(self, timeout_s: float) -> int:
        """``t_registry_info`` rows silent for ``timeout_s`` turn inactive; returns how many."""
        if timeout_s <= 0:
            raise StoreValidationError(f"expire_registry_info: timeout must be > 0: {timeout_s}")
        r = t_registry_info.c

        def run(conn: Connection) -> int:
            cutoff = _now(conn) - timedelta(seconds=timeout_s)
            return _rowcount(
                conn.execute(
                    update(t_registry_info)
                    .where(r.last_heartbeat < cutoff, r.present_state != "inactive")
                    .ordered_values((r.modify_time, NOW), (r.present_state, "inactive"))
                )
            )

        n = self._run(run)
        if n:
            self._wrote(unlogged=True)
        return n

    def deregister_registry_info(self, locator_id: str) -> int:
        """Mark the ``t_registry_info`` rows of ``locator_id`` inactive (a registry stopping
        gracefully); returns how many rows matched."""
        if not locator_id or len(locator_id) > 128:  # t_registry_info.locator_id
            raise StoreValidationError(
                f"deregister_registry_info: bad locator id {locator_id[:200]!r}"
            )
        r = t_registry_info.c
        stmt = (
            update(t_registry_info)
            .where(r.locator_id == locator_id)
            .ordered_values((r.modify_time, NOW), (r.present_state, "inactive"))
        )
        n = self._run(lambda conn: _rowcount(conn.execute(stmt)))
        self._wrote(unlogged=True)
        return n

    # -- reads for the index ------------------------------------------------------------------

    def load_snapshot(self) -> tuple[RegistrySnapshot, Watermark]:
        """Everything the query index needs (one consistent read) and a watermark to poll from."""
        local = self._local
        return self._run(lambda conn: _load_snapshot(conn, local), read=True)

    def load_changes(
        self, watermark: Watermark
    ) -> tuple[dict[GroupKey, tuple[InstanceRow, ...]], frozenset[GroupKey], Watermark]:
        """What changed since ``watermark``: the complete new rows of every changed
        ``(application, server_name)`` (replace that server's rows in the index), the servers
        that no longer have rows, and the next watermark. Cheap enough to poll every 0.5 s;
        right after writes through this store that are all in the change log (onStartup,
        onPrestop) it reads just the change log and what it names (see
        :mod:`.store_changes`)."""
        local = self._local
        return self._run(lambda conn: _load_changes(conn, watermark, self._poll, local),
                         read=True)  # fmt: skip


# -- helpers shared by the operations -----------------------------------------------------------


def _now(conn: Connection) -> datetime:
    value = conn.execute(select(NOW)).scalar_one()
    if not isinstance(value, datetime):  # pragma: no cover - every dialect parses it
        raise StoreError(f"database returned {value!r} for CURRENT_TIMESTAMP")
    return value


def _case_changed(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return case((condition, NOW), else_=_s.registry_timestamp)


_SERVER_KEY = ("application", "server_name", "node_name")
_NODE_UPDATE: tuple[str, ...] = ("last_reg_time", "last_heartbeat", "present_state", "modify_time")


def _node_values(reg: Startup) -> dict[str, Any]:
    return {
        "node_name": reg.node,
        "node_obj": f"tars.tarsnode.NodeObj@tcp -h {reg.node} -p 0",
        "endpoint_ip": reg.node,
        "endpoint_port": 0,
        "last_reg_time": NOW,
        "last_heartbeat": NOW,
        "setting_state": "active",
        "present_state": "active",
        "modify_time": NOW,
        "pod_name": reg.pod_name or None,
        "pod_uid": reg.pod_uid or None,
    }


def _server_values(reg: Startup) -> dict[str, Any]:
    return {
        "application": reg.application,
        "server_name": reg.server,
        "node_name": reg.node,
        "registry_timestamp": NOW,
        "setting_state": "active",
        "present_state": reg.state,
        "patch_version": reg.version,
        "patch_time": NOW,
        "posttime": NOW,
        "server_type": "tars_cpp",
        "enable_set": reg.enable_set,
        "set_name": reg.set_name,
        "set_area": reg.set_area,
        "set_group": reg.set_group,
        "grid_flag": "NO_FLOW" if reg.disable_flow else "NORMAL",
        "flow_state": "inactive" if reg.disable_flow else "active",
        "pod_name": reg.pod_name or None,
        "pod_uid": reg.pod_uid or None,
    }


def _adapter_values(reg: Startup, a: AdapterSpec) -> dict[str, Any]:
    return {
        "application": reg.application,
        "server_name": reg.server,
        "node_name": reg.node,
        "adapter_name": a.adapter_name,
        "registry_timestamp": NOW,
        "servant": a.servant,
        "endpoint": a.endpoint,
        "protocol": a.protocol,
        "thread_num": a.thread_num,
        "max_connections": a.max_conns,
        "queuecap": a.queue_cap,
        "queuetimeout": a.queue_timeout,
        "posttime": NOW,
    }


def _segments(regs: Sequence[Startup], fold: Callable[[str], str]) -> Iterable[list[Startup]]:
    """Consecutive runs of requests on distinct nodes, in order."""
    segment: list[Startup] = []
    nodes: set[str] = set()
    for reg in regs:
        node = fold(reg.node)
        if node in nodes:
            yield segment
            segment, nodes = [], set()
        segment.append(reg)
        nodes.add(node)
    if segment:
        yield segment


def _budget_chunks(items: Sequence[T], cost: Callable[[T], int], budget: int
                   ) -> Iterable[Sequence[T]]:  # fmt: skip
    """Consecutive chunks of ``items`` costing at most ``budget`` each (or one item)."""
    start = spent = 0
    for i, item in enumerate(items):
        c = cost(item)
        if i > start and spent + c > budget:
            yield items[start:i]
            start, spent = i, 0
        spent += c
    if start < len(items):
        yield items[start:]


_LOG_INSERT = insert(t_k8stars_change).values(changed_at=NOW)


def _log_changes(conn: Connection, keys: Iterable[tuple[str, str, str]]) -> None:
    """Name the (application, server, node) triples this transaction changes in the change
    log, for the polls of every replica (see :mod:`.store_changes`)."""
    rows = [{"application": a, "server_name": s, "node_name": n} for a, s, n in sorted(set(keys))]
    if len(rows) == 1:  # the common case: a compiled statement from the cache
        conn.execute(_LOG_INSERT, rows[0])
        return
    for chunk in _chunks(rows, 500):  # one multi-row INSERT per chunk
        conn.execute(insert(t_k8stars_change).values([{**r, "changed_at": NOW} for r in chunk]))


def _delete_servers(
    conn: Connection, keys: Sequence[tuple[str, str, str]], *, log: bool = True
) -> tuple[int, int, int]:
    """Delete servers (application, server_name, node_name) with their adapters and host-level
    configs; log the change (unless ``log`` is false: the caller does). Returns (servers,
    adapters, configs) deleted."""
    if not keys:
        return 0, 0, 0
    servers = adapters = configs = 0
    for chunk in _chunks(list(keys)):
        triples = [tuple(k) for k in chunk]
        adapters += _rowcount(
            conn.execute(
                delete(t_adapter_conf).where(
                    tuple_(_a.application, _a.server_name, _a.node_name).in_(triples)
                )
            )
        )
        servers += _rowcount(
            conn.execute(
                delete(t_server_conf).where(
                    tuple_(_s.application, _s.server_name, _s.node_name).in_(triples)
                )
            )
        )
        configs += _rowcount(
            conn.execute(
                delete(t_config_files).where(
                    _cf.level == _HOST_LEVEL,
                    tuple_(_cf.host, _cf.server_name).in_([(n, f"{a}.{s}") for a, s, n in chunk]),
                )
            )
        )
    if log:
        _log_changes(conn, keys)
    return servers, adapters, configs


def _delete_nodes(conn: Connection, nodes: Sequence[str]) -> tuple[int, int, int, int]:
    """Delete nodes with everything on them: servers, adapters, host-level configs.
    Returns (servers, adapters, configs, nodes) deleted."""
    servers = adapters = configs = deleted = 0
    for chunk in _chunks(list(nodes)):
        keys = [
            (r[0], r[1], r[2])
            for r in conn.execute(
                union(
                    select(_s.application, _s.server_name, _s.node_name).where(
                        _s.node_name.in_(chunk)
                    ),
                    select(_a.application, _a.server_name, _a.node_name).where(
                        _a.node_name.in_(chunk)
                    ),
                )
            )
        ]
        adapters += _rowcount(conn.execute(delete(t_adapter_conf).where(_a.node_name.in_(chunk))))
        servers += _rowcount(conn.execute(delete(t_server_conf).where(_s.node_name.in_(chunk))))
        configs += _rowcount(
            conn.execute(
                delete(t_config_files).where(_cf.level == _HOST_LEVEL, _cf.host.in_(chunk))
            )
        )
        deleted += _rowcount(conn.execute(delete(t_node_info).where(_n.node_name.in_(chunk))))
        _log_changes(conn, [(a or "", s or "", n or "") for a, s, n in keys])
    return servers, adapters, configs, deleted


def _uid_filter(
    uid_col: Any, free: set[Any], owned: set[Any], key_cols: Sequence[Any]
) -> ColumnElement[bool]:
    """Rows a beat may touch: the row has no pod UID, or the beat has none (``free`` keys), or
    they are equal (``owned`` = keys + UID)."""
    ok: list[ColumnElement[bool]] = [func.coalesce(uid_col, "") == ""]
    if free:
        ok.append(tuple_(*key_cols).in_(sorted(free)))
    if owned:
        ok.append(tuple_(*key_cols, uid_col).in_(sorted(owned)))
    return or_(*ok)


def _apply_beats(conn: Connection, beats: list[Beat], chunk_size: int) -> KeepAliveResult:
    """Set-based: no rows are read back, the database does the matching."""
    node_wide = [b for b in beats if not b.application]
    own = [b for b in beats if b.application]

    # 1. the nodes' heartbeat (a beat with a foreign pod UID does not refresh a node)
    for pairs in _chunks(sorted({(b.node, b.pod_uid) for b in beats}), chunk_size):
        conn.execute(
            update(t_node_info)
            .where(
                _n.node_name.in_(sorted({n for n, _ in pairs})),
                _uid_filter(
                    _n.pod_uid,
                    {(n,) for n, uid in pairs if not uid},
                    {(n, uid) for n, uid in pairs if uid},
                    [_n.node_name],
                ),
            )
            .ordered_values(
                (_n.last_heartbeat, NOW), (_n.modify_time, NOW), (_n.present_state, "active")
            )
        )

    def set_state(state: str, where: list[ColumnElement[bool]]) -> int:
        result = conn.execute(
            update(t_server_conf)
            .where(*where)
            .ordered_values(
                # MySQL evaluates SET left to right: compare before present_state changes
                (_s.registry_timestamp, _case_changed(_s.present_state != state)),
                (_s.present_state, state),
            )
        )
        return _rowcount(result)

    touched = 0
    # 2. old clients: every server of the node; applied first, so a server's own beat in the
    #    same batch takes precedence over its node's
    for state, group in _by_state(node_wide).items():
        for chunk in _chunks(group, chunk_size):
            touched += set_state(
                state,
                [
                    _s.node_name.in_(sorted({b.node for b in chunk})),
                    _uid_filter(
                        _s.pod_uid,
                        {(b.node,) for b in chunk if not b.pod_uid},
                        {(b.node, b.pod_uid) for b in chunk if b.pod_uid},
                        [_s.node_name],
                    ),
                ],
            )
    # 3. each beat its own (node, application, server) row
    matched = 0
    key_cols = [_s.node_name, _s.application, _s.server_name]
    for state, group in _by_state(own).items():
        for chunk in _chunks(group, chunk_size):
            keys = {(b.node, b.application, b.server) for b in chunk}
            matched += set_state(
                state,
                [
                    tuple_(*key_cols).in_(sorted(keys)),
                    _uid_filter(
                        _s.pod_uid,
                        {(b.node, b.application, b.server) for b in chunk if not b.pod_uid},
                        {(b.node, b.application, b.server, b.pod_uid) for b in chunk if b.pod_uid},
                        key_cols,
                    ),
                ],
            )
    return KeepAliveResult(len(beats), touched + matched, max(len(own) - matched, 0))


def _by_state(beats: Iterable[Beat]) -> dict[str, list[Beat]]:
    out: dict[str, list[Beat]] = defaultdict(list)
    for b in beats:
        out[b.state].append(b)
    return dict(sorted(out.items()))


def _errno(exc: DBAPIError) -> int | None:
    args = getattr(exc.orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def _retryable(exc: DBAPIError) -> bool:
    if exc.connection_invalidated:
        return True
    if _errno(exc) in _MYSQL_RETRY:
        return True
    text = str(exc.orig).lower()
    return "database is locked" in text or "database is busy" in text


def _refused(exc: DBAPIError, mysql: bool) -> bool:
    """Whether the database answered and refused the statement for a reason of its own (not a
    lost connection, not a database that cannot serve now)."""
    if exc.connection_invalidated:
        return False
    if isinstance(exc, (sa_exc.IntegrityError, sa_exc.DataError)):
        return True
    if not mysql:
        return False  # SQLite: OperationalError is I/O, locking, a full disk ...
    errno = _errno(exc)
    # below 1000: the client's own; 2000-2999: client errors (cannot connect, gone away, lost)
    return (
        errno is not None
        and errno >= 1000
        and not 2000 <= errno < 3000
        and (errno not in _MYSQL_UNAVAILABLE)
    )


def _describe(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    return f"{type(orig).__name__}: {orig}" if orig is not None else f"{type(exc).__name__}: {exc}"
