"""Reads for the in-memory index: full snapshots and incremental change polls.

How a replica sees the writes of others (inserts, updates and deletions) within one poll:

* **Updates and inserts** bump ``registry_timestamp`` of ``t_server_conf``/``t_adapter_conf``
  (the store sets it explicitly; MySQL's ``ON UPDATE CURRENT_TIMESTAMP`` does it for TarsWeb and
  other writers). A poll selects the ``(application, server_name)`` pairs whose rows have
  ``registry_timestamp >= previous poll's database time - overlap`` and reloads *all* rows of those
  servers (every node), as the C++ registry's incremental load does. The overlap (default 3 s)
  covers the 1-second resolution of ``TIMESTAMP`` and rows whose transaction committed shortly
  after the previous poll read.
* **Deletions** leave no row to time-stamp, so every store transaction that deletes server or
  adapter rows also inserts ``(application, server_name, node_name)`` into ``t_k8stars_change``
  (auto-increment id, ``changed_at``). A poll reads the rows with ``id >`` the last id seen *or*
  ``changed_at >=`` the window start (ids are allocated before commit, so a later-committing
  transaction can hold a smaller id: the time window catches it). A server whose reload returns no
  row is reported deleted.
* **Safety net** for writers that delete without the change log (TarsWeb, SQL by hand) and for
  anything a window could miss: the watermark keeps, per server, its row counts and a digest of its
  rows. Each poll compares ``COUNT(*)`` of both tables (read in the same snapshot transaction) with
  the expected totals; on a mismatch, after ``full_resync_s`` (default 300 s) or when the
  watermark is older than half the change-log retention, the poll reloads everything and diffs
  per server. Only servers whose digest changed are returned, so the index does no needless work.
* ``t_registry_info``, ``t_server_group_rule`` and ``t_group_priority`` are a handful of rows and
  are re-read on each poll; the registry rows take part in the per-server diff, the group tables
  are carried in the new watermark (:attr:`Watermark.group_rules`, ``group_priorities``).

An idle poll costs five small statements: database time with the two counts and the last
change-log id, the changed-server union (index range scans), and the three tiny tables.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any

from sqlalchemy import (
    Connection,
    ScalarSelect,
    Select,
    Table,
    and_,
    func,
    or_,
    select,
    tuple_,
    type_coerce,
    union,
)

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

__all__ = ["GroupKey", "GroupState", "Watermark", "load_changes", "load_snapshot"]

GroupKey = tuple[str, str]

_KEY_CHUNK = 500  # (application, server_name) pairs per IN list

_s = t_server_conf
_a = t_adapter_conf


@dataclass(frozen=True, slots=True)
class GroupState:
    """What the watermark remembers of one ``(application, server_name)``."""

    servers: int  # t_server_conf rows
    adapters: int  # t_adapter_conf rows (also those without a server row)
    digest: int  # hash of the sorted InstanceRows (0 when there are none)
    has_rows: bool


@dataclass(frozen=True, slots=True)
class Watermark:
    """Opaque poll position for :func:`load_changes` (database time, never local time).

    ``group_rules``/``group_priorities`` are the group tables as read by the poll that made it.
    """

    db_time: datetime
    change_id: int
    full_at: datetime
    server_rows: int
    adapter_rows: int
    groups: Mapping[GroupKey, GroupState] = field(repr=False)
    registry_rows: tuple[InstanceRow, ...] = field(repr=False)
    group_rules: tuple[GroupRule, ...] = ()
    group_priorities: tuple[GroupPriority, ...] = ()


@dataclass(frozen=True, slots=True)
class PollSettings:
    overlap_s: float = 3.0
    full_resync_s: float = 300.0
    change_retention_s: float = 3600.0


_ROW_ORDER = attrgetter(
    "node_name", "servant", "endpoint", "present_state", "setting_state", "flow_state"
)


def _str(value: Any, default: str = "") -> str:
    return default if value is None else str(value)


def _instances_select() -> Select[Any]:
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
        .where(_s.c.application.is_not(None), _s.c.server_name.is_not(None))
    )


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


def _registry_rows(conn: Connection) -> tuple[InstanceRow, ...]:
    """``t_registry_info`` mapped as the C++ registry does (§5.1)."""
    r = t_registry_info.c
    rows = conn.execute(
        select(r.servant, r.endpoint, r.enable_group, r.present_state, r.tars_version).order_by(
            r.endpoint, r.id
        )
    )
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
    g = t_server_group_rule.c
    rules = tuple(
        GroupRule(int(r.group_id), _str(r.group_name), _str(r.allow_ip_rule))
        for r in conn.execute(
            select(g.group_id, g.group_name, g.allow_ip_rule).order_by(g.group_id)
        )
    )
    p = t_group_priority.c
    priorities = tuple(
        GroupPriority(int(r.id), _str(r.group_list), int(r.list_order or 0), _str(r.station))
        for r in conn.execute(
            select(p.id, p.group_list, p.list_order, p.station).order_by(p.list_order, p.id)
        )
    )
    return rules, priorities


def _counted(table: Table) -> ScalarSelect[Any]:
    c = table.c
    return (
        select(func.count())
        .where(c.application.is_not(None), c.server_name.is_not(None))
        .scalar_subquery()
    )


def _head(conn: Connection) -> tuple[datetime, int, int, int]:
    """Database time, server and adapter row counts, last change-log id: one statement."""
    row = conn.execute(
        select(
            type_coerce(func.current_timestamp(), TIMESTAMP),
            _counted(_s),
            _counted(_a),
            select(func.coalesce(func.max(t_k8stars_change.c.id), 0)).scalar_subquery(),
        )
    ).one()
    return row[0], int(row[1]), int(row[2]), int(row[3])


def _chunks(keys: Sequence[GroupKey]) -> Iterable[Sequence[GroupKey]]:
    for i in range(0, len(keys), _KEY_CHUNK):
        yield keys[i : i + _KEY_CHUNK]


class _Groups:
    """Rows and counts per (application, server_name), as read in one transaction."""

    def __init__(self) -> None:
        self.rows: dict[GroupKey, list[InstanceRow]] = defaultdict(list)
        self.server_ids: dict[GroupKey, set[int]] = defaultdict(set)
        self.adapters: dict[GroupKey, int] = {}

    def add_instances(self, result: Iterable[Any]) -> None:
        for r in result:
            key = (r.application, r.server_name)
            self.rows[key].append(_instance(r))
            self.server_ids[key].add(int(r.id))

    def add_registry(self, rows: Iterable[InstanceRow]) -> None:
        for row in rows:
            self.rows[(row.application, row.server_name)].append(row)

    def state(self, key: GroupKey) -> tuple[GroupState, tuple[InstanceRow, ...]]:
        rows = tuple(sorted(self.rows.get(key, ()), key=_ROW_ORDER))
        state = GroupState(
            servers=len(self.server_ids.get(key, ())),
            adapters=self.adapters.get(key, 0),
            digest=hash(rows) if rows else 0,
            has_rows=bool(rows),
        )
        return state, rows


def _adapter_counts(conn: Connection, keys: Sequence[GroupKey] | None) -> dict[GroupKey, int]:
    q = select(_a.c.application, _a.c.server_name, func.count()).where(
        _a.c.application.is_not(None), _a.c.server_name.is_not(None)
    )
    out: dict[GroupKey, int] = {}
    if keys is None:
        for app, server, n in conn.execute(q.group_by(_a.c.application, _a.c.server_name)):
            out[(app, server)] = int(n)
        return out
    for chunk in _chunks(keys):
        where = tuple_(_a.c.application, _a.c.server_name).in_(list(chunk))
        for app, server, n in conn.execute(
            q.where(where).group_by(_a.c.application, _a.c.server_name)
        ):
            out[(app, server)] = int(n)
    return out


def _full(
    conn: Connection, head: tuple[datetime, int, int, int]
) -> tuple[list[InstanceRow], dict[GroupKey, tuple[InstanceRow, ...]], Watermark]:
    now, _, _, change_id = head
    groups = _Groups()
    servers = list(
        conn.execute(
            _instances_select().order_by(
                _s.c.application, _s.c.server_name, _s.c.node_name, _a.c.servant
            )
        )
    )
    groups.add_instances(servers)
    registry = _registry_rows(conn)
    groups.add_registry(registry)
    groups.adapters = _adapter_counts(conn, None)
    rules, priorities = _group_tables(conn)
    states: dict[GroupKey, GroupState] = {}
    rows_by_key: dict[GroupKey, tuple[InstanceRow, ...]] = {}
    for key in set(groups.rows) | set(groups.adapters):
        state, rows = groups.state(key)
        states[key] = state
        if rows:
            rows_by_key[key] = rows
    mark = Watermark(
        db_time=now,
        change_id=change_id,
        full_at=now,
        server_rows=sum(s.servers for s in states.values()),
        adapter_rows=sum(s.adapters for s in states.values()),
        groups=states,
        registry_rows=registry,
        group_rules=rules,
        group_priorities=priorities,
    )
    return [_instance(r) for r in servers], rows_by_key, mark


def load_snapshot(conn: Connection) -> tuple[RegistrySnapshot, Watermark]:
    """Everything the index needs, read in one transaction, and the watermark to poll from.

    Instances: servers joined with their adapters (ordered by application, server, node,
    servant), then the ``t_registry_info`` rows (ordered by endpoint).
    """
    servers, _, mark = _full(conn, _head(conn))
    snapshot = RegistrySnapshot(
        instances=(*servers, *mark.registry_rows),
        group_rules=mark.group_rules,
        group_priorities=mark.group_priorities,
    )
    return snapshot, mark


def _registry_keys(rows: Iterable[InstanceRow]) -> set[GroupKey]:
    return {(r.application, r.server_name) for r in rows}


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


def load_changes(
    conn: Connection, mark: Watermark, settings: PollSettings
) -> tuple[dict[GroupKey, tuple[InstanceRow, ...]], frozenset[GroupKey], Watermark]:
    """Servers changed or deleted since ``mark``; see the module docstring for the design."""
    head = _head(conn)
    now, n_servers, n_adapters, change_id = head
    age = (now - mark.db_time).total_seconds()
    if (
        age < -60  # the database clock went back (fail-over to another server?)
        or age > settings.change_retention_s / 2
        or (now - mark.full_at).total_seconds() >= settings.full_resync_s
    ):
        return _full_diff(conn, head, mark)

    since = mark.db_time - timedelta(seconds=settings.overlap_s)
    c = t_k8stars_change.c
    keyed = (_s.c.application.is_not(None), _s.c.server_name.is_not(None))
    changed_q = union(
        select(_s.c.application, _s.c.server_name).where(_s.c.registry_timestamp >= since, *keyed),
        select(_a.c.application, _a.c.server_name).where(
            _a.c.registry_timestamp >= since,
            _a.c.application.is_not(None),
            _a.c.server_name.is_not(None),
        ),
        select(c.application, c.server_name).where(
            or_(c.id > mark.change_id, c.changed_at >= since)
        ),
    )
    keys: set[GroupKey] = {(app, server) for app, server in conn.execute(changed_q)}
    registry = _registry_rows(conn)
    rules, priorities = _group_tables(conn)
    keys |= _registry_keys(registry) if registry != mark.registry_rows else set()
    keys |= _registry_keys(mark.registry_rows) if registry != mark.registry_rows else set()

    groups = _Groups()
    ordered = sorted(keys)
    if ordered:
        base = _instances_select()
        for chunk in _chunks(ordered):
            groups.add_instances(
                conn.execute(
                    base.where(tuple_(_s.c.application, _s.c.server_name).in_(list(chunk)))
                )
            )
        groups.adapters = _adapter_counts(conn, ordered)
    groups.add_registry(r for r in registry if (r.application, r.server_name) in keys)

    states = dict(mark.groups)
    servers_total, adapters_total = mark.server_rows, mark.adapter_rows
    rows_by_key: dict[GroupKey, tuple[InstanceRow, ...]] = {}
    for key in ordered:
        state, rows = groups.state(key)
        before = states.pop(key, None)
        if before is not None:
            servers_total -= before.servers
            adapters_total -= before.adapters
        if state.has_rows or state.servers or state.adapters:
            states[key] = state
            servers_total += state.servers
            adapters_total += state.adapters
        if rows:
            rows_by_key[key] = rows
    if (servers_total, adapters_total) != (n_servers, n_adapters):
        # Something changed that the window and the change log do not explain.
        return _full_diff(conn, head, mark)
    changed, deleted = _diff(mark.groups, states, rows_by_key, ordered)
    new_mark = Watermark(
        db_time=now,
        change_id=max(change_id, mark.change_id),
        full_at=mark.full_at,
        server_rows=servers_total,
        adapter_rows=adapters_total,
        groups=states,
        registry_rows=registry,
        group_rules=rules,
        group_priorities=priorities,
    )
    return changed, deleted, new_mark


def _full_diff(
    conn: Connection, head: tuple[datetime, int, int, int], mark: Watermark
) -> tuple[dict[GroupKey, tuple[InstanceRow, ...]], frozenset[GroupKey], Watermark]:
    _, rows_by_key, new_mark = _full(conn, head)
    changed, deleted = _diff(
        mark.groups, new_mark.groups, rows_by_key, set(mark.groups) | set(new_mark.groups)
    )
    return changed, deleted, new_mark
