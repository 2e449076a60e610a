"""In-memory name-service index: answers every QueryF lookup without touching a database.

Built from a :class:`~k8stars.registry.model.RegistrySnapshot` and updated incrementally, it
keeps what ``CDbHandle::loadObjectIdCache`` keeps (reference §5.1) and answers with the
semantics of ``QueryImp`` (§5.4):

* servant → :class:`~k8stars.registry.index_servant.ServantEntry` (active and inactive
  ``tars.EndpointF`` lists, set cache ``set_name → entries``, memoised group/set answers and
  encoded response bodies);
* a :class:`~k8stars.registry.index_groups.GroupTable` (IP rules, group names, priorities).

Differences from the C++ registry, all deliberate: an endpoint is routable only if
``setting_state`` and ``present_state`` are ``active``, ``flow_state`` is not ``inactive``
**and** ``grid_flag`` is not ``NO_FLOW`` (K8STARS ``disableFlow``); state values are compared
case-insensitively; deletions take effect at once; endpoints of a servant come in a canonical
order (by application, server, node, servant, endpoint, ...), not in database order.

The index is meant for one event loop: updates replace servant entries one by one, so a reader
on another thread sees each servant either before or after an update. Returned lists are
copies, but the ``EndpointF`` objects in them are shared: do not mutate them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..tars.codec import Struct
from ..tars.endpoint import Endpoint, EndpointError, parse_endpoint
from ..tars.idl.loader import framework
from .index_groups import NO_GROUP, GroupTable
from .index_servant import EndpointF, EpLists, Record, ServantEntry, SetAnswer
from .model import GroupPriority, GroupRule, InstanceRow, RegistrySnapshot

__all__ = ["EndpointF", "InstanceKey", "RegistryIndex", "ServerKey", "client_host", "is_routable"]

log = logging.getLogger(__name__)

#: (application, server_name)
ServerKey = tuple[str, str]
#: (application, server_name, node_name)
InstanceKey = tuple[str, str, str]

_PARSE_MEMO_LIMIT = 100_000
_ENC_MEMO_LIMIT = 256


def client_host(context: Mapping[str, str] | None, peer_ip: str) -> str:
    """The host a query is made for: ``context["node_name"]`` if non-empty, else the peer IP
    (TarsCpp ``Current::getHostName``)."""
    if context:
        node_name = context.get("node_name", "")
        if node_name:
            return node_name
    return peer_ip


def is_routable(row: InstanceRow) -> bool:
    """True when the row's endpoint belongs in the active list (see the module docstring)."""
    return (row.setting_state.strip().lower() == "active"
            and row.present_state.strip().lower() == "active"
            and row.flow_state.strip().lower() != "inactive"
            and row.grid_flag.strip().upper() != "NO_FLOW")


@dataclass(frozen=True, slots=True)
class _Server:
    """The rows of one (application, server_name) and what they index to."""

    rows: tuple[InstanceRow, ...]
    records: dict[str, tuple[Record, ...]]  # servant → records
    bad: frozenset[InstanceRow]


_NO_SERVER = _Server((), {}, frozenset())


def _set_parts(set_id: str) -> tuple[str, str, str] | None:
    """``name.area.group`` split as ``TC_Common::sepstr`` does (empty parts dropped), or None."""
    parts = [p for p in set_id.split(".") if p]
    if len(parts) != 3 or parts[0] == "*" or parts[1] == "*":
        return None
    return parts[0], parts[1], parts[2]


class RegistryIndex:
    """Servant → endpoints, group rules and set cache; see the module docstring."""

    def __init__(self, snapshot: RegistrySnapshot | None = None) -> None:
        idl = framework()
        self._endpointf: Callable[..., Struct] = idl.struct("tars.EndpointF")
        methods = idl.interface("tars.QueryF").methods
        self._res_by_id: Callable[..., Struct] = methods["findObjectById"].result
        # tags 0, 2, 3 (also 4Any and 4All)
        self._res_group: Callable[..., Struct] = methods["findObjectByIdInSameGroup"].result
        # tags 0, 3, 4 (also SameStation)
        self._res_set: Callable[..., Struct] = methods["findObjectByIdInSameSet"].result
        self._enc_empty_by_id = self._encode_by_id([])
        self._enc_empty_group = self._encode_group([], [])
        self._enc_empty_set = self._encode_set(0, [], [])
        self._enc_bad_set = self._encode_set(-1, [], [])
        self._servers: dict[ServerKey, _Server] = {}
        self._servant_keys: dict[str, set[ServerKey]] = {}
        self._entries: dict[str, ServantEntry] = {}
        self._groups = GroupTable()
        self._rules: tuple[GroupRule, ...] = ()
        self._priorities: tuple[GroupPriority, ...] = ()
        self._parsed: dict[str, Endpoint | str] = {}
        self._set_ids: dict[str, tuple[str, str, str] | None] = {}
        self._bad_rows = 0
        self._version = 0
        self._states: tuple[int, dict[str, int]] = (-1, {})
        if snapshot is not None:
            self.replace_all(snapshot)

    # ------------------------------------------------------------------ state

    @property
    def version(self) -> int:
        """Bumped by every update that changes the content (rows or group tables)."""
        return self._version

    @property
    def bad_rows(self) -> int:
        """Rows currently skipped because their endpoint (or servant) is unusable."""
        return self._bad_rows

    def servants(self) -> list[str]:
        """Servant names that have at least one endpoint, sorted."""
        return sorted(self._entries)

    def instances_by_state(self) -> dict[str, int]:
        """Distinct (application, server, node) instances counted by ``present_state``."""
        version, counts = self._states
        if version != self._version:
            counts = {}
            for server in self._servers.values():
                seen: set[str] = set()
                for row in server.rows:
                    if row.node_name not in seen:
                        seen.add(row.node_name)
                        state = row.present_state.strip().lower()
                        counts[state] = counts.get(state, 0) + 1
            self._states = (self._version, counts)
        return dict(counts)

    def snapshot(self) -> RegistrySnapshot:
        """The rows the index currently holds (servers in key order)."""
        rows = tuple(r for key in sorted(self._servers) for r in self._servers[key].rows)
        return RegistrySnapshot(rows, self._rules, self._priorities)

    # ---------------------------------------------------------------- updates

    def replace_all(self, snapshot: RegistrySnapshot) -> None:
        """Replace everything (a full load); servers whose rows are unchanged keep their
        entries and memoised answers."""
        by_server: dict[ServerKey, list[InstanceRow]] = {}
        for row in snapshot.instances:
            by_server.setdefault((row.application, row.server_name), []).append(row)
        new_rows = {key: tuple(rows) for key, rows in by_server.items()}
        for key in self._servers:
            new_rows.setdefault(key, ())
        self._update(new_rows, snapshot.group_rules, snapshot.group_priorities)

    def apply_changes(
        self,
        changed: Mapping[ServerKey, Sequence[InstanceRow]] | None = None,
        deleted: Iterable[InstanceKey] = (),
        *,
        group_rules: Sequence[GroupRule] | None = None,
        group_priorities: Sequence[GroupPriority] | None = None,
    ) -> None:
        """Apply an incremental load.

        ``deleted`` (application, server_name, node_name) instances lose all their rows first;
        then each ``changed[(application, server_name)]`` replaces every row of that server
        on every node (an empty list deletes the server). ``group_rules`` /
        ``group_priorities``, when given, replace those tables (all servants are re-indexed).
        Raises ValueError, changing nothing, if a row does not belong to its key.
        """
        changed = changed or {}
        for key, rows in changed.items():
            for row in rows:
                if (row.application, row.server_name) != key:
                    raise ValueError(f"row of {row.application}.{row.server_name} "
                                     f"listed under {key[0]}.{key[1]}")
        new_rows: dict[ServerKey, tuple[InstanceRow, ...]] = {}
        for app, server_name, node in deleted:
            key = (app, server_name)
            current = new_rows.get(key, self._servers.get(key, _NO_SERVER).rows)
            new_rows[key] = tuple(r for r in current if r.node_name != node)
        for key, rows in changed.items():
            new_rows[key] = tuple(rows)
        self._update(new_rows,
                     self._rules if group_rules is None else group_rules,
                     self._priorities if group_priorities is None else group_priorities)

    def _update(self, new_rows: dict[ServerKey, tuple[InstanceRow, ...]],
                rules: Sequence[GroupRule], priorities: Sequence[GroupPriority]) -> None:
        """Store ``new_rows`` per server and the group tables; bump the version if anything
        changed."""
        servers = self._servers
        new_rows = {k: v for k, v in new_rows.items() if v != servers.get(k, _NO_SERVER).rows}
        rules, priorities = tuple(rules), tuple(priorities)
        regroup = rules != self._rules or priorities != self._priorities
        if not new_rows and not regroup:
            return
        if regroup:  # group ids of every endpoint may change: re-index everything
            self._rules, self._priorities = rules, priorities
            self._groups = GroupTable(rules, priorities)
            for key, rows in new_rows.items():
                self._store_server(key, rows, servers.get(key, _NO_SERVER))
            for key, server in list(servers.items()):
                if key not in new_rows:
                    self._store_server(key, server.rows, server)
            self._entries = {s: self._build_entry(s) for s in self._servant_keys}
        else:
            affected: set[str] = set()
            for key, rows in new_rows.items():
                old_server = servers.get(key, _NO_SERVER)
                affected.update(old_server.records)
                affected.update(self._store_server(key, rows, old_server).records)
            for servant in affected:
                if servant in self._servant_keys:
                    self._entries[servant] = self._build_entry(servant)
                else:
                    self._entries.pop(servant, None)
        self._version += 1

    def _store_server(self, key: ServerKey, rows: tuple[InstanceRow, ...], old: _Server) -> _Server:
        """Index ``rows`` as the server ``key`` (replacing ``old``); keeps the servant map."""
        for servant in old.records:
            keys = self._servant_keys.get(servant)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._servant_keys[servant]
        if key in self._servers:
            self._bad_rows -= len(self._servers[key].bad)
        server = self._index_rows(rows, old.bad)
        if rows:
            self._servers[key] = server
            self._bad_rows += len(server.bad)
        else:
            self._servers.pop(key, None)
        for servant in server.records:
            self._servant_keys.setdefault(servant, set()).add(key)
        return server

    def _build_entry(self, servant: str) -> ServantEntry:
        records: list[Record] = []
        for key in self._servant_keys[servant]:
            records.extend(self._servers[key].records[servant])
        return ServantEntry(records)

    def _parse(self, text: str) -> Endpoint | str:
        """Parsed endpoint, or the error message (memoised: rebuilds re-read the same strings)."""
        parsed = self._parsed.get(text)
        if parsed is None:
            if len(self._parsed) >= _PARSE_MEMO_LIMIT:
                self._parsed.clear()
            try:
                parsed = parse_endpoint(text)
            except EndpointError as exc:
                parsed = str(exc)
            self._parsed[text] = parsed
        return parsed

    def _index_rows(self, rows: tuple[InstanceRow, ...], known_bad: frozenset[InstanceRow]
                    ) -> _Server:
        records: dict[str, list[Record]] = {}
        bad: set[InstanceRow] = set()
        groups = self._groups
        for row in rows:
            if not row.servant and not row.endpoint:
                continue  # server without adapters: state only
            parsed = self._parse(row.endpoint)
            if isinstance(parsed, str) or not row.servant:
                bad.add(row)
                if row not in known_bad:
                    log.warning("skipping %s.%s on %s, servant %r: %s", row.application,
                                row.server_name, row.node_name, row.servant,
                                parsed if isinstance(parsed, str) else "empty servant name")
                continue
            if row.bak_flag == 1:
                continue  # backup instance: never returned (HEAD)
            records.setdefault(row.servant, []).append(self._record(row, parsed, groups))
        return _Server(rows, {s: tuple(r) for s, r in records.items()}, frozenset(bad))

    def _record(self, row: InstanceRow, ep: Endpoint, groups: GroupTable) -> Record:
        realid = (groups.group_of_name(row.ip_group_name) if row.ip_group_name
                  else groups.group_of_ip(ep.host))
        workid = realid if row.enable_group.strip().lower() == "y" else NO_GROUP
        set_enabled = row.enable_set.strip().lower() == "y"
        set_id = f"{row.set_name}.{row.set_area}.{row.set_group}" if set_enabled else ""
        kw = ep.endpointf_fields(row.node_name.strip())
        kw.update(grid=0, qos=0, setId=set_id, groupworkid=workid, grouprealid=realid,
                  bakFlag=row.bak_flag)
        epf = self._endpointf(**kw)
        order = (row.application, row.server_name, row.node_name, row.servant, row.endpoint,
                 row.setting_state, row.present_state, row.flow_state, row.enable_group,
                 row.enable_set, row.set_name, row.set_area, row.set_group, row.ip_group_name,
                 row.bak_flag, row.grid_flag)
        cached = (set_enabled and row.set_name not in ("", "*") and row.set_area not in ("", "*")
                  and row.set_group != "")
        if not cached:
            return Record(order, epf, is_routable(row), workid, realid)
        return Record(order, epf, is_routable(row), workid, realid, row.set_name,
                      f"{row.set_name}.{row.set_area}", set_id)

    # ---------------------------------------------------------------- queries

    def find_object_by_id(self, id: str) -> list[EndpointF]:
        """``findObjectById``: every active endpoint."""
        entry = self._entries.get(id)
        return [] if entry is None else list(entry.active)

    def find_object_by_id_4_any(self, id: str) -> tuple[int, list[EndpointF], list[EndpointF]]:
        """``findObjectById4Any``: all active and all inactive endpoints, ret 0."""
        entry = self._entries.get(id)
        if entry is None:
            return 0, [], []
        return 0, list(entry.active), list(entry.inactive)

    def find_object_by_id_4_all(self, id: str, client_host: str
                                ) -> tuple[int, list[EndpointF], list[EndpointF]]:
        """``findObjectById4All``: the group-priority algorithm (same as SameGroup)."""
        return self.find_object_by_id_in_same_group(id, client_host)

    def find_object_by_id_in_same_group(self, id: str, client_host: str
                                        ) -> tuple[int, list[EndpointF], list[EndpointF]]:
        """``findObjectByIdInSameGroup``: the group-priority algorithm for ``client_host``.

        ``client_host`` is the request context's ``node_name`` if non-empty, else the peer IP.
        """
        active, inactive = self._group_lists(id, client_host)
        return 0, list(active), list(inactive)

    def find_object_by_id_in_same_station(self, id: str, station: str, client_host: str = ""
                                          ) -> tuple[int, list[EndpointF], list[EndpointF]]:
        """``findObjectByIdInSameStation``: endpoints whose grouprealid is in the station's
        groups; -1 if no priority row has that station (``client_host`` is unused)."""
        entry = self._groups.station(station)
        if entry is None:
            return -1, [], []
        servant = self._entries.get(id)
        if servant is None:
            return 0, [], []
        active, inactive = servant.in_station(entry.groups)
        return 0, active, inactive

    def find_object_by_id_in_same_set(self, id: str, set_id: str, client_host: str
                                      ) -> tuple[int, list[EndpointF], list[EndpointF]]:
        """``findObjectByIdInSameSet``: the set algorithm; falls back to the group algorithm
        when the servant has no set endpoints under that set name."""
        answer = self._set_answer(id, set_id)
        if answer is None:
            return self.find_object_by_id_in_same_group(id, client_host)
        ret, active, inactive = answer
        return ret, list(active), list(inactive)

    def _group_lists(self, id: str, client_host: str) -> EpLists:
        entry = self._entries.get(id)
        if entry is None:
            return [], []
        groups = self._groups
        return entry.in_group_priority(groups.client_group(client_host), groups.priorities)

    def _parse_set_id(self, set_id: str) -> tuple[str, str, str] | None:
        memo = self._set_ids
        try:
            return memo[set_id]
        except KeyError:
            if len(memo) >= _ENC_MEMO_LIMIT:
                memo.clear()
            parts = memo[set_id] = _set_parts(set_id)
            return parts

    def _set_answer(self, id: str, set_id: str) -> SetAnswer | None:
        """(ret, active, inactive) of the set steps, or None to fall back to the group steps."""
        parts = self._parse_set_id(set_id)
        if parts is None:
            return -1, [], []
        entry = self._entries.get(id)
        if entry is None:
            return None
        return entry.in_set(*parts)

    # ------------------------------------------------------- encoded answers

    def _encode_by_id(self, active: Sequence[EndpointF]) -> bytes:
        return self._res_by_id(tars_ret=active).tars_encode()

    def _encode_group(self, active: Sequence[EndpointF], inactive: Sequence[EndpointF]) -> bytes:
        return self._res_group(tars_ret=0, activeEp=active, inactiveEp=inactive).tars_encode()

    def _encode_set(self, ret: int, active: Sequence[EndpointF], inactive: Sequence[EndpointF]
                    ) -> bytes:
        return self._res_set(tars_ret=ret, activeEp=active, inactiveEp=inactive).tars_encode()

    def encoded_by_id(self, id: str) -> bytes:
        """Encoded ``findObjectById`` result body (sBuffer)."""
        entry = self._entries.get(id)
        if entry is None:
            return self._enc_empty_by_id
        body = entry.enc_by_id
        if body is None:
            body = entry.enc_by_id = self._encode_by_id(entry.active)
        return body

    def encoded_4_any(self, id: str) -> bytes:
        """Encoded ``findObjectById4Any`` result body."""
        entry = self._entries.get(id)
        if entry is None:
            return self._enc_empty_group
        body = entry.enc_all
        if body is None:
            body = entry.enc_all = self._encode_group(entry.active, entry.inactive)
        return body

    def encoded_same_group(self, id: str, client_host: str) -> bytes:
        """Encoded ``findObjectByIdInSameGroup`` (and ``findObjectById4All``) result body."""
        entry = self._entries.get(id)
        if entry is None:
            return self._enc_empty_group
        groups = self._groups
        group = groups.client_group(client_host)
        if group == NO_GROUP:
            body = entry.enc_all
            if body is None:
                body = entry.enc_all = self._encode_group(entry.active, entry.inactive)
            return body
        body = entry.enc_group.get(group)
        if body is None:
            body = entry.enc_group[group] = self._encode_group(
                *entry.in_group_priority(group, groups.priorities))
        return body

    encoded_4_all = encoded_same_group

    def encoded_same_station(self, id: str, station: str, client_host: str = "") -> bytes:
        """Encoded ``findObjectByIdInSameStation`` result body (not memoised: rarely used)."""
        ret, active, inactive = self.find_object_by_id_in_same_station(id, station, client_host)
        return self._encode_set(ret, active, inactive)  # same tags (0, 3, 4) as SameSet

    def encoded_same_set(self, id: str, set_id: str, client_host: str) -> bytes:
        """Encoded ``findObjectByIdInSameSet`` result body."""
        entry = self._entries.get(id)
        if entry is None:
            return self._enc_empty_set if self._parse_set_id(set_id) else self._enc_bad_set
        body = entry.enc_set.get(set_id)  # b"" marks "falls back to the group algorithm"
        if body is None:
            answer = self._set_answer(id, set_id)
            body = b"" if answer is None else self._encode_set(*answer)
            if len(entry.enc_set) >= _ENC_MEMO_LIMIT:
                entry.enc_set.clear()
            entry.enc_set[set_id] = body
        if body:
            return body
        groups = self._groups
        group = groups.client_group(client_host)
        body = entry.enc_set_group.get(group)
        if body is None:
            body = entry.enc_set_group[group] = self._encode_set(
                0, *entry.in_group_priority(group, groups.priorities))
        return body
