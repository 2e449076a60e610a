"""Reads for the in-memory index: full snapshots and incremental change polls.

A poll reloads only the ``(application, server_name, node_name)`` *triples* whose rows changed,
and finds them in three ways:

* **The change log.** Every store transaction that writes server or adapter rows by request
  (onStartup, onPrestop, expiry and ``clean`` deletions, pod replacement) also inserts
  ``(application, server_name, node_name)`` into ``t_k8stars_change`` (auto-increment id). A
  poll reads the rows with ``id >`` the last id seen, plus the *holes*: ids below it that were
  missing (allocated by a transaction that had not committed yet; forgotten after
  ``overlap_s + 2`` seconds). Each logged write is loaded once, whatever the timestamps say.
* **A checksum of the time window**, for writes without the change log: keepAlive state
  changes (set-based, they do not know which rows changed), TarsWeb, SQL by hand. Rows bump
  ``registry_timestamp`` when they change (the store sets it; MySQL's ``ON UPDATE
  CURRENT_TIMESTAMP`` does it for others). The poll reads ``COUNT`` and ``SUM(CRC32(content))``
  of the rows with ``registry_timestamp >= previous check's database time - overlap`` (default
  3 s: the 1-second resolution of ``TIMESTAMP`` and transactions that commit late) and compares
  them with the same figures over the rows it remembers (it keeps id, triple, timestamp and
  content checksum of every row). Only on a difference does it list the window's rows (id,
  triple, timestamp, checksum) and reload the triples that differ; two updates of a row within
  one second are told apart by the checksum, not the timestamp.
* **Row counts**, for deletions without the change log: ``COUNT(*)`` of both tables against the
  remembered totals; on a mismatch, after ``full_resync_s`` (default 300 s), when the
  watermark is older than half the change-log retention, or when the change log went back, the
  poll reloads everything and diffs per server.

The window checksum and the counts cost O(rows in the window) and O(rows) in the database, so
they are the *full check*, and a poll may skip it (a *light poll*: the change log only) when
all of these hold: the caller's own store wrote only through the change log since the last full
check, it did write since the previous poll (this poll is its read-your-writes refresh), and
the last full check is less than ``check_interval_s`` (0.2 s) old. A registration burst thus
costs one small statement per poll plus the reload of what it wrote, while writes of other
replicas and other tools are still seen within ``check_interval_s`` of a poll.

``t_registry_info``, ``t_server_group_rule`` and ``t_group_priority`` are a handful of rows, re-read
by each full check; the registry rows are grouped by ``(tars_version, tars_version)`` as the C++
registry does and diffed like servers.

The row-level memory behind a chain of watermarks is shared and updated in place: a watermark
stays usable until a poll that changed something has been made from it (or from a later one);
an out-of-date watermark makes the next poll reload everything (still a correct diff). Only
servers whose rows really changed (sorted rows, digest) are returned.

An idle full check costs five small statements (database time with counts, window checksum and
last change-log id; the change log; the three tiny tables); a light poll, one.
"""

from __future__ import annotations

import time
import zlib
from bisect import bisect_left, insort
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    Select,
    String,
    Table,
    and_,
    bindparam,
    func,
    literal_column,
    or_,
    select,
    tuple_,
    type_coerce,
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from .model import GroupPriority, GroupRule, InstanceRow, RegistrySnapshot
from .schema import (
    TIMESTAMP,
    t_adapter_conf,
    t_group_priority,
    t_k8stars_change,
    t_registry_info,
    t_server_conf,
    t_server_group_rule,
)

__all__ = [
    "CRC_FUNCTION",
    "GroupKey",
    "GroupState",
    "PollSettings",
    "Watermark",
    "load_changes",
    "load_snapshot",
    "sqlite_crc",
]

GroupKey = tuple[str, str]
Triple = tuple[str, str, Any]  # application, server_name, node_name (may be NULL)
RowKey = tuple[int, int]  # (_SERVER or _ADAPTER, id)

_SERVER, _ADAPTER = 0, 1
_KEY_CHUNK = 500  # triples per IN list
_MAX_HOLES = 1000  # change-log ids tracked as not committed yet
_HOLE_GRACE_S = 2.0  # on top of overlap_s

_s = t_server_conf
_a = t_adapter_conf
_c = t_k8stars_change

#: The SQLite function behind the row checksum (registered by the store on each connection).
CRC_FUNCTION = "k8stars_crc"


def sqlite_crc(*values: Any) -> int:
    """``CRC32(CONCAT_WS('|', values...))`` for SQLite (the store registers it)."""
    return zlib.crc32("|".join(str(v) for v in values).encode("utf-8", "surrogatepass"))


class _row_crc(FunctionElement[int]):
    """CRC32 of ``|``-joined values: ``CRC32(CONCAT_WS(..))`` on MySQL, the store's function
    on SQLite."""

    type = Integer()
    name = "row_crc"
    inherit_cache = True


@compiles(_row_crc)
def _crc_sqlite(element: _row_crc, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{CRC_FUNCTION}({compiler.process(element.clauses, **kw)})"


@compiles(_row_crc, "mysql")
@compiles(_row_crc, "mariadb")
def _crc_mysql(element: _row_crc, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CRC32(CONCAT_WS('|', {compiler.process(element.clauses, **kw)}))"


def _txt(col: ColumnElement[Any]) -> ColumnElement[Any]:
    # NULL and '' read differently (see _instance), so they must checksum differently
    return func.coalesce(type_coerce(col, String), literal_column("'~'"))


def _num(col: ColumnElement[Any]) -> ColumnElement[Any]:
    return func.coalesce(col, literal_column("-1"))


_S_CONTENT = (
    _s.c.application, _s.c.server_name, _s.c.node_name, _s.c.enable_group, _s.c.setting_state,
    _s.c.present_state, _s.c.flow_state, _s.c.enable_set, _s.c.set_name, _s.c.set_area,
    _s.c.set_group, _s.c.ip_group_name, _s.c.grid_flag,
)  # fmt: skip
_S_CRC: ColumnElement[int] = _row_crc(*(_txt(c) for c in _S_CONTENT), _num(_s.c.bak_flag))
_A_CONTENT = (_a.c.application, _a.c.server_name, _a.c.node_name, _a.c.servant, _a.c.endpoint)
_A_CRC: ColumnElement[int] = _row_crc(*(_txt(c) for c in _A_CONTENT))


@dataclass(frozen=True, slots=True)
class GroupState:
    """What the watermark remembers of one ``(application, server_name)``."""

    digest: int  # hash of the sorted InstanceRows (0 when there are none)
    has_rows: bool


class _Memory:
    """Every server and adapter row as last read (id → triple, timestamp, checksum), the joined
    rows per triple, and per-second window figures. Shared by a chain of watermarks."""

    __slots__ = ("adapters", "gen", "members", "nodes", "order", "rows", "servers", "sums",
                 "triple_keys", "triples")  # fmt: skip

    def __init__(self) -> None:
        self.gen = 0
        self.rows: dict[RowKey, tuple[Triple, datetime | None, int]] = {}
        self.triple_keys: dict[Triple, set[RowKey]] = {}
        self.triples: dict[Triple, tuple[InstanceRow, ...]] = {}
        self.nodes: dict[GroupKey, set[Any]] = {}
        self.members: dict[datetime, set[RowKey]] = {}
        self.sums: dict[datetime, int] = {}
        self.order: list[datetime] = []  # sorted keys of members
        self.servers = 0
        self.adapters = 0

    # rows

    def add(self, key: RowKey, triple: Triple, ts: datetime | None, crc: int) -> None:
        self.remove(key)
        self.rows[key] = (triple, ts, crc)
        self.triple_keys.setdefault(triple, set()).add(key)
        self._stamp(key, ts, crc, 1)
        if key[0] == _SERVER:
            self.servers += 1
        else:
            self.adapters += 1

    def remove(self, key: RowKey) -> Triple | None:
        old = self.rows.pop(key, None)
        if old is None:
            return None
        triple, ts, crc = old
        keys = self.triple_keys.get(triple)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self.triple_keys[triple]
        self._stamp(key, ts, crc, -1)
        if key[0] == _SERVER:
            self.servers -= 1
        else:
            self.adapters -= 1
        return triple

    def retime(self, key: RowKey, ts: datetime | None) -> None:
        triple, old, crc = self.rows[key]
        self._stamp(key, old, crc, -1)
        self.rows[key] = (triple, ts, crc)
        self._stamp(key, ts, crc, 1)

    def _stamp(self, key: RowKey, ts: datetime | None, crc: int, sign: int) -> None:
        if ts is None:
            return
        members = self.members.get(ts)
        if members is None:
            members = self.members[ts] = set()
            self.sums[ts] = 0
            insort(self.order, ts)
        if sign > 0:
            members.add(key)
        else:
            members.discard(key)
        self.sums[ts] += sign * crc
        if not members:
            del self.members[ts], self.sums[ts]
            del self.order[bisect_left(self.order, ts)]

    def window(self, since: datetime) -> tuple[int, int]:
        """Rows with a timestamp >= ``since`` and the sum of their checksums."""
        n = total = 0
        for ts in self.order[bisect_left(self.order, since) :]:
            n += len(self.members[ts])
            total += self.sums[ts]
        return n, total

    def in_window(self, since: datetime) -> dict[RowKey, tuple[Triple, datetime | None, int]]:
        rows = self.rows
        return {key: rows[key] for ts in self.order[bisect_left(self.order, since) :]
                for key in self.members[ts]}  # fmt: skip

    # joined rows

    def set_triple(self, triple: Triple, rows: Sequence[InstanceRow]) -> None:
        gkey = (triple[0], triple[1])
        if rows:
            self.triples[triple] = tuple(rows)
            self.nodes.setdefault(gkey, set()).add(triple[2])
            return
        if self.triples.pop(triple, None) is not None:
            nodes = self.nodes.get(gkey)
            if nodes is not None:
                nodes.discard(triple[2])
                if not nodes:
                    del self.nodes[gkey]

    def key_rows(self, key: GroupKey) -> list[InstanceRow]:
        app, server = key
        out: list[InstanceRow] = []
        for node in self.nodes.get(key, ()):
            out += self.triples[(app, server, node)]
        return out


@dataclass(frozen=True, slots=True)
class Watermark:
    """Opaque poll position for :func:`load_changes` (database time, never local time).

    ``group_rules``/``group_priorities`` are the group tables as read by the last full check.
    """

    db_time: datetime  # of the last full check
    change_id: int
    full_at: datetime
    groups: Mapping[GroupKey, GroupState] = field(repr=False)
    registry_rows: tuple[InstanceRow, ...] = field(repr=False)
    group_rules: tuple[GroupRule, ...] = ()
    group_priorities: tuple[GroupPriority, ...] = ()
    memory: _Memory | None = field(default=None, repr=False, compare=False)
    generation: int = 0
    holes: tuple[tuple[int, float], ...] = ()  # change-log id, monotonic time first missed
    checked_at: float = 0.0  # monotonic time the last full check began
    local_writes: int = 0  # the caller's write counters as of the last poll ...
    local_unlogged: int = 0  # ... and as of the last full check


@dataclass(frozen=True, slots=True)
class PollSettings:
    overlap_s: float = 3.0
    full_resync_s: float = 300.0
    change_retention_s: float = 3600.0
    check_interval_s: float = 0.2


_ROW_ORDER = attrgetter(
    "node_name", "servant", "endpoint", "present_state", "setting_state", "flow_state"
)


def _str(value: Any, default: str = "") -> str:
    return default if value is None else str(value)


def _keyed(table: Table) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    return table.c.application.is_not(None), table.c.server_name.is_not(None)


def _make_instances_select() -> Select[Any]:
    """Servers joined with their adapters, with the server row's id, timestamp and checksum."""
    join = _s.outerjoin(
        _a,
        and_(
            _a.c.application == _s.c.application,
            _a.c.server_name == _s.c.server_name,
            _a.c.node_name == _s.c.node_name,
        ),
    )
    return (
        select(
            _s.c.id,
            _s.c.registry_timestamp.label("s_ts"),
            _S_CRC.label("s_crc"),
            _a.c.servant,
            _a.c.endpoint,
            _s.c.enable_group,
            _s.c.setting_state,
            _s.c.present_state,
            _s.c.flow_state,
            _s.c.application,
            _s.c.server_name,
            _s.c.node_name,
            _s.c.enable_set,
            _s.c.set_name,
            _s.c.set_area,
            _s.c.set_group,
            _s.c.ip_group_name,
            _s.c.bak_flag,
            _s.c.grid_flag,
        )
        .select_from(join)
        .where(*_keyed(_s))
    )


_INSTANCES = _make_instances_select()
_ADAPTERS = select(
    _a.c.id, _a.c.application, _a.c.server_name, _a.c.node_name, _a.c.registry_timestamp,
    _A_CRC.label("crc"),
).where(*_keyed(_a))  # fmt: skip


def _instance(r: Any) -> InstanceRow:
    return InstanceRow(
        application=r.application,
        server_name=r.server_name,
        node_name=_str(r.node_name),
        servant=_str(r.servant),
        endpoint=_str(r.endpoint),
        setting_state=_str(r.setting_state, "inactive"),
        present_state=_str(r.present_state, "inactive"),
        flow_state=_str(r.flow_state, "active"),
        enable_group=_str(r.enable_group, "N"),
        enable_set=_str(r.enable_set, "N"),
        set_name=_str(r.set_name),
        set_area=_str(r.set_area),
        set_group=_str(r.set_group),
        ip_group_name=_str(r.ip_group_name),
        bak_flag=int(r.bak_flag or 0),
        grid_flag=_str(r.grid_flag, "NORMAL"),
    )


_r = t_registry_info.c
_REGISTRY = select(_r.servant, _r.endpoint, _r.enable_group, _r.present_state,
                   _r.tars_version).order_by(_r.endpoint, _r.id)  # fmt: skip
_g = t_server_group_rule.c
_GROUP_RULES = select(_g.group_id, _g.group_name, _g.allow_ip_rule).order_by(_g.group_id)
_p = t_group_priority.c
_PRIORITIES = select(_p.id, _p.group_list, _p.list_order, _p.station).order_by(_p.list_order, _p.id)


def _registry_rows(conn: Connection) -> tuple[InstanceRow, ...]:
    """``t_registry_info`` mapped as the C++ registry does (§5.1)."""
    rows = conn.execute(_REGISTRY)
    out = []
    for row in rows:
        state = _str(row.present_state, "inactive")
        version = _str(row.tars_version)
        out.append(
            InstanceRow(
                application=version,
                server_name=version,
                node_name=version,
                servant=_str(row.servant),
                endpoint=_str(row.endpoint),
                setting_state=state,
                present_state=state,
                flow_state="active",
                enable_group=_str(row.enable_group, "N"),
            )
        )
    return tuple(out)


def _group_tables(conn: Connection) -> tuple[tuple[GroupRule, ...], tuple[GroupPriority, ...]]:
    rules = tuple(
        GroupRule(int(r.group_id), _str(r.group_name), _str(r.allow_ip_rule))
        for r in conn.execute(_GROUP_RULES)
    )
    priorities = tuple(
        GroupPriority(int(r.id), _str(r.group_list), int(r.list_order or 0), _str(r.station))
        for r in conn.execute(_PRIORITIES)
    )
    return rules, priorities


@dataclass(frozen=True, slots=True)
class _Head:
    now: datetime
    servers: int
    adapters: int
    change_id: int
    window_rows: int = 0
    window_crc: int = 0


def _make_head(window: bool) -> Select[Any]:
    one: Any = literal_column("1").label("k")  # single-row derived tables, joined on k
    parts: list[Any] = [
        select(one, func.count().label("n")).where(*_keyed(_s)).subquery(),
        select(one, func.count().label("n")).where(*_keyed(_a)).subquery(),
        select(one, func.coalesce(func.max(_c.c.id), 0).label("n")).subquery(),
    ]
    if window:
        for table, crc in ((_s, _S_CRC), (_a, _A_CRC)):
            parts.append(
                select(one, func.count().label("n"),
                       func.coalesce(func.sum(crc), 0).label("crc"))
                .where(*_keyed(table), table.c.registry_timestamp >= bindparam("since"))
                .subquery()
            )  # fmt: skip
    joined = parts[0]
    for part in parts[1:]:
        joined = joined.join(part, part.c.k == parts[0].c.k)
    cols: list[Any] = [type_coerce(func.current_timestamp(), TIMESTAMP), parts[0].c.n,
                       parts[1].c.n, parts[2].c.n]  # fmt: skip
    if window:
        cols += [parts[3].c.n, parts[3].c.crc, parts[4].c.n, parts[4].c.crc]
    return select(*cols).select_from(joined)


_HEAD = _make_head(False)
_HEAD_WINDOW = _make_head(True)


def _head(conn: Connection, since: datetime | None) -> _Head:
    """Database time, server and adapter row counts, last change-log id and (with ``since``)
    the rows and checksum sum of both tables' window: one statement."""
    if since is None:
        row = conn.execute(_HEAD).one()
        return _Head(row[0], int(row[1]), int(row[2]), int(row[3]))
    row = conn.execute(_HEAD_WINDOW, {"since": since}).one()
    return _Head(row[0], int(row[1]), int(row[2]), int(row[3]),
                 int(row[4]) + int(row[6]), int(row[5]) + int(row[7]))  # fmt: skip


def _chunks(items: Sequence[Triple]) -> Iterable[Sequence[Triple]]:
    for i in range(0, len(items), _KEY_CHUNK):
        yield items[i : i + _KEY_CHUNK]


def _triples_in(table: Table) -> ColumnElement[bool]:
    c = table.c
    return tuple_(c.application, c.server_name, c.node_name).in_(
        bindparam("triples", expanding=True)
    )


_INSTANCES_OF = _INSTANCES.where(_triples_in(_s))
_ADAPTERS_OF = _ADAPTERS.where(_triples_in(_a))


def _rows_of(conn: Connection, query: Select[Any], table: Table, triples: Sequence[Triple]
             ) -> list[Any]:  # fmt: skip
    """The rows of ``query`` (``_INSTANCES_OF`` / ``_ADAPTERS_OF``) for ``triples``."""
    plain = [t for t in triples if t[2] is not None]
    out: list[Any] = list(conn.execute(query, {"triples": plain})) if plain else []
    c = table.c
    for app, server, _ in (t for t in triples if t[2] is None):  # NULL node_name: rare
        base = _INSTANCES if table is _s else _ADAPTERS
        out += conn.execute(base.where(c.application == app, c.server_name == server,
                                       c.node_name.is_(None)))  # fmt: skip
    return out


def _digest(rows: list[InstanceRow]) -> tuple[GroupState, tuple[InstanceRow, ...]]:
    ordered = tuple(sorted(rows, key=_ROW_ORDER))
    return GroupState(hash(ordered) if ordered else 0, bool(ordered)), ordered


def _registry_by_key(rows: Iterable[InstanceRow]) -> dict[GroupKey, list[InstanceRow]]:
    out: dict[GroupKey, list[InstanceRow]] = defaultdict(list)
    for row in rows:
        out[(row.application, row.server_name)].append(row)
    return out


# -- full loads ---------------------------------------------------------------------------------


def _full(
    conn: Connection, head: _Head
) -> tuple[list[InstanceRow], dict[GroupKey, tuple[InstanceRow, ...]], Watermark]:
    mem = _Memory()
    servers = list(
        conn.execute(
            _INSTANCES.order_by(_s.c.application, _s.c.server_name, _s.c.node_name, _a.c.servant)
        )
    )
    instances = [_instance(r) for r in servers]
    by_triple: dict[Triple, list[InstanceRow]] = defaultdict(list)
    for r, row in zip(servers, instances, strict=True):
        triple = (r.application, r.server_name, r.node_name)
        by_triple[triple].append(row)
        mem.add((_SERVER, int(r.id)), triple, r.s_ts, int(r.s_crc))
    for r in conn.execute(_ADAPTERS):
        mem.add((_ADAPTER, int(r.id)), (r.application, r.server_name, r.node_name),
                r.registry_timestamp, int(r.crc))  # fmt: skip
    for triple, joined in by_triple.items():
        mem.set_triple(triple, joined)
    registry = _registry_rows(conn)
    rules, priorities = _group_tables(conn)
    reg_by_key = _registry_by_key(registry)
    states: dict[GroupKey, GroupState] = {}
    rows_by_key: dict[GroupKey, tuple[InstanceRow, ...]] = {}
    for key in set(mem.nodes) | set(reg_by_key):
        state, rows = _digest(mem.key_rows(key) + reg_by_key.get(key, []))
        if state.has_rows:
            states[key] = state
            rows_by_key[key] = rows
    mark = Watermark(
        db_time=head.now,
        change_id=head.change_id,
        full_at=head.now,
        groups=states,
        registry_rows=registry,
        group_rules=rules,
        group_priorities=priorities,
        memory=mem,
        generation=mem.gen,
        checked_at=time.monotonic(),
    )
    return instances, rows_by_key, mark


def load_snapshot(conn: Connection, local: tuple[int, int] = (0, 0)
                  ) -> tuple[RegistrySnapshot, Watermark]:  # fmt: skip
    """Everything the index needs, read in one transaction, and the watermark to poll from.

    Instances: servers joined with their adapters (ordered by application, server, node,
    servant), then the ``t_registry_info`` rows (ordered by endpoint). ``local``: the caller's
    write counters (see :func:`load_changes`).
    """
    servers, _, mark = _full(conn, _head(conn, None))
    snapshot = RegistrySnapshot(
        instances=(*servers, *mark.registry_rows),
        group_rules=mark.group_rules,
        group_priorities=mark.group_priorities,
    )
    return snapshot, _with_local(mark, local, full=True)


def _with_local(mark: Watermark, local: tuple[int, int], *, full: bool) -> Watermark:
    return Watermark(
        db_time=mark.db_time, change_id=mark.change_id, full_at=mark.full_at, groups=mark.groups,
        registry_rows=mark.registry_rows, group_rules=mark.group_rules,
        group_priorities=mark.group_priorities, memory=mark.memory, generation=mark.generation,
        holes=mark.holes, checked_at=mark.checked_at, local_writes=local[0],
        local_unlogged=local[1] if full else mark.local_unlogged,
    )  # fmt: skip


def _diff(
    old: Mapping[GroupKey, GroupState],
    new: Mapping[GroupKey, GroupState],
    rows: Mapping[GroupKey, tuple[InstanceRow, ...]],
    keys: Iterable[GroupKey],
) -> tuple[dict[GroupKey, tuple[InstanceRow, ...]], frozenset[GroupKey]]:
    changed: dict[GroupKey, tuple[InstanceRow, ...]] = {}
    deleted: set[GroupKey] = set()
    for key in keys:
        before, after = old.get(key), new.get(key)
        had = before is not None and before.has_rows
        has = after is not None and after.has_rows
        if has and (not had or before is None or after is None or before.digest != after.digest):
            changed[key] = rows[key]
        elif had and not has:
            deleted.add(key)
    return changed, frozenset(deleted)


def _full_diff(
    conn: Connection, head: _Head, mark: Watermark, local: tuple[int, int]
) -> tuple[dict[GroupKey, tuple[InstanceRow, ...]], frozenset[GroupKey], Watermark]:
    if mark.memory is not None:
        mark.memory.gen += 1  # whatever was made from it is out of date now
    _, rows_by_key, new_mark = _full(conn, head)
    changed, deleted = _diff(
        mark.groups, new_mark.groups, rows_by_key, set(mark.groups) | set(new_mark.groups)
    )
    return changed, deleted, _with_local(new_mark, local, full=True)


# -- incremental polls --------------------------------------------------------------------------


def _reload(conn: Connection, mem: _Memory, triples: set[Triple]) -> set[Triple]:
    """Read the rows of ``triples`` again (all of them exist or not as of this snapshot), until
    no row turns out to have moved from a triple not read yet; returns all triples read."""
    done: set[Triple] = set()
    pending = set(triples)
    while pending:
        ordered = sorted(pending, key=lambda t: (t[0], t[1], _str(t[2])))
        done |= pending
        joined: list[Any] = []
        adapters: list[Any] = []
        for chunk in _chunks(ordered):
            joined += _rows_of(conn, _INSTANCES_OF, _s, chunk)
            adapters += _rows_of(conn, _ADAPTERS_OF, _a, chunk)
        marks: dict[RowKey, tuple[Triple, datetime | None, int]] = {}
        by_triple: dict[Triple, list[InstanceRow]] = defaultdict(list)
        for r in joined:
            triple = (r.application, r.server_name, r.node_name)
            by_triple[triple].append(_instance(r))
            marks[(_SERVER, int(r.id))] = (triple, r.s_ts, int(r.s_crc))
        for r in adapters:
            marks[(_ADAPTER, int(r.id))] = ((r.application, r.server_name, r.node_name),
                                            r.registry_timestamp, int(r.crc))  # fmt: skip
        for triple in pending:
            for key in list(mem.triple_keys.get(triple, ())):
                mem.remove(key)
            mem.set_triple(triple, by_triple.get(triple, ()))
        moved: set[Triple] = set()
        for key, (triple, ts, crc) in marks.items():
            old = mem.remove(key)
            if old is not None and old not in done:
                moved.add(old)  # a row left a triple we have not read: read that one too
            mem.add(key, triple, ts, crc)
        pending = moved
    return done


def _window_diff(conn: Connection, mem: _Memory, since: datetime) -> set[Triple]:
    """List the window's rows; fix timestamps that moved alone, return the triples whose rows
    differ from what ``mem`` remembers."""
    listing = union_all(
        select(literal_column("0").label("tbl"), _s.c.id, _s.c.application, _s.c.server_name,
               _s.c.node_name, _s.c.registry_timestamp.label("ts"), _S_CRC.label("crc"))
        .where(*_keyed(_s), _s.c.registry_timestamp >= since),
        select(literal_column("1").label("tbl"), _a.c.id, _a.c.application, _a.c.server_name,
               _a.c.node_name, _a.c.registry_timestamp.label("ts"), _A_CRC.label("crc"))
        .where(*_keyed(_a), _a.c.registry_timestamp >= since),
    )  # fmt: skip
    local = mem.in_window(since)
    dirty: set[Triple] = set()
    for r in conn.execute(listing):
        key = (int(r.tbl), int(r.id))
        triple, ts, crc = (r.application, r.server_name, r.node_name), r.ts, int(r.crc)
        known = local.pop(key, None) or mem.rows.get(key)
        if known is None or known[0] != triple or known[2] != crc:
            dirty.add(triple)
            if known is not None:
                dirty.add(known[0])
        elif known[1] != ts:
            mem.retime(key, ts)  # e.g. registerMetrics: the row's content did not change
    for triple, _, _ in local.values():  # gone from the window: deleted (or moved)
        dirty.add(triple)
    return dirty


_LOG = select(_c.c.id, _c.c.application, _c.c.server_name, _c.c.node_name).where(
    _c.c.id > bindparam("after")
)
_LOG_HOLES = select(_c.c.id, _c.c.application, _c.c.server_name, _c.c.node_name).where(
    or_(_c.c.id > bindparam("after"), _c.c.id.in_(bindparam("holes", expanding=True)))
)


def _read_log(
    conn: Connection, mark: Watermark, settings: PollSettings, head_id: int | None
) -> tuple[set[Triple], int, tuple[tuple[int, float], ...]]:
    """New change-log rows: their triples, the new last id and the holes below it."""
    now = time.monotonic()
    holes = {i: t for i, t in mark.holes if now - t <= settings.overlap_s + _HOLE_GRACE_S}
    if holes:
        result = conn.execute(_LOG_HOLES, {"after": mark.change_id, "holes": sorted(holes)})
    else:
        result = conn.execute(_LOG, {"after": mark.change_id})
    triples: set[Triple] = set()
    seen: set[int] = set()
    for r in result:
        seen.add(int(r.id))
        if r.application is not None and r.server_name is not None:
            triples.add((r.application, r.server_name, r.node_name))
    top = max([mark.change_id, *seen, head_id or 0])
    for i in seen:
        holes.pop(i, None)
    for i in range(max(mark.change_id + 1, top - _MAX_HOLES + 1), top + 1):
        if i not in seen:
            holes[i] = now
    if len(holes) > _MAX_HOLES:
        holes = dict(sorted(holes.items())[-_MAX_HOLES:])
    return triples, top, tuple(sorted(holes.items()))


def load_changes(
    conn: Connection, mark: Watermark, settings: PollSettings, local: tuple[int, int] = (0, 0)
) -> tuple[dict[GroupKey, tuple[InstanceRow, ...]], frozenset[GroupKey], Watermark]:
    """Servers changed or deleted since ``mark``; see the module docstring for the design.

    ``local`` = the caller's (writes, writes without the change log) counters, read before
    this poll began; a light poll needs writes to have moved and the second counter not.
    """
    mem = mark.memory
    started = time.monotonic()
    light = (
        mem is not None
        and mem.gen == mark.generation
        and local[0] != mark.local_writes
        and local[1] == mark.local_unlogged
        and started - mark.checked_at < settings.check_interval_s
    )
    since = mark.db_time - timedelta(seconds=settings.overlap_s)
    head = None if light else _head(conn, since)
    if head is not None:
        age = (head.now - mark.db_time).total_seconds()
        if (
            mem is None
            or mem.gen != mark.generation
            or age < -60  # the database clock went back (fail-over to another server?)
            or age > settings.change_retention_s / 2
            or (head.now - mark.full_at).total_seconds() >= settings.full_resync_s
            or head.change_id < mark.change_id  # the change log was reset
        ):
            return _full_diff(conn, head, mark, local)
    assert mem is not None
    try:
        triples, change_id, holes = _read_log(conn, mark, settings,
                                              None if head is None else head.change_id)  # fmt: skip
        registry, rules, priorities = mark.registry_rows, mark.group_rules, mark.group_priorities
        if head is not None:
            registry = _registry_rows(conn)
            rules, priorities = _group_tables(conn)
        done = _reload(conn, mem, triples) if triples else set()
        if head is not None:
            if mem.window(since) != (head.window_rows, head.window_crc):
                more = _window_diff(conn, mem, since) - done
                done |= _reload(conn, mem, more) if more else set()
                if mem.window(since) != (head.window_rows, head.window_crc):
                    return _full_diff(conn, head, mark, local)  # pragma: no cover - a bug
            if (mem.servers, mem.adapters) != (head.servers, head.adapters):
                # Something was deleted that the change log does not explain.
                return _full_diff(conn, head, mark, local)
    except BaseException:
        mem.gen += 1  # half-applied: the next poll from ``mark`` reloads everything
        raise

    keys = {(t[0], t[1]) for t in done}
    if registry != mark.registry_rows:
        keys |= {(r.application, r.server_name) for r in (*registry, *mark.registry_rows)}
    states = mark.groups
    rows_by_key: dict[GroupKey, tuple[InstanceRow, ...]] = {}
    if keys:
        reg_by_key = _registry_by_key(registry)
        new_states = dict(mark.groups)
        for key in keys:
            state, rows = _digest(mem.key_rows(key) + reg_by_key.get(key, []))
            if state.has_rows:
                new_states[key] = state
                rows_by_key[key] = rows
            else:
                new_states.pop(key, None)
        states = new_states
    if done:
        mem.gen += 1
    changed, deleted = _diff(mark.groups, states, rows_by_key, keys)
    new_mark = Watermark(
        db_time=mark.db_time if head is None else head.now,
        change_id=change_id,
        full_at=mark.full_at,
        groups=states,
        registry_rows=registry,
        group_rules=rules,
        group_priorities=priorities,
        memory=mem,
        generation=mem.gen,
        holes=holes,
        checked_at=mark.checked_at if head is None else started,
        local_writes=local[0],
        local_unlogged=mark.local_unlogged if head is None else local[1],
    )
    return changed, deleted, new_mark
