"""IP groups and group priorities (``t_server_group_rule``, ``t_group_priority``).

Mirrors ``CDbHandle::load2GroupMap`` / ``loadGroupPriority`` / ``getGroupId`` (reference §5.4):
rules are applied in ``group_id`` order (a later rule wins for the same IP or name), each
``allow_ip_rule`` is split on ``|`` into exact IPs or ``a.b.c.*`` patterns; a host is looked up
exactly, then in its ``/24`` star form; unknown → -1. Priority rows are ordered by ``list_order``
and hold a set of group ids (``group_list`` split on ``|``, ``,`` or ``;``) and a station name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .model import GroupPriority, GroupRule

__all__ = ["NO_GROUP", "GroupTable", "PriorityEntry"]

#: Group id of hosts and endpoints outside every group.
NO_GROUP = -1

_IPV4 = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}", re.ASCII)
_LIST_SEP = re.compile(r"[|,;]")
_CLIENT_MEMO_LIMIT = 65536


@dataclass(frozen=True, slots=True)
class PriorityEntry:
    """One ``t_group_priority`` row: its id, station name and group id set."""

    id: int
    station: str
    groups: frozenset[int]


def _group_ids(group_list: str) -> frozenset[int]:
    """Integers of a ``group_list``; empty and non-numeric items are ignored."""
    ids = set()
    for item in _LIST_SEP.split(group_list):
        item = item.strip()
        try:
            ids.add(int(item))
        except ValueError:
            continue
    return frozenset(ids)


class GroupTable:
    """Immutable lookup tables built from the group rule and group priority rows."""

    __slots__ = ("_client_memo", "by_ip", "by_name", "priorities")

    def __init__(self, rules: Iterable[GroupRule] = (),
                 priorities: Iterable[GroupPriority] = ()) -> None:
        by_ip: dict[str, int] = {}
        by_name: dict[str, int] = {}
        for rule in sorted(rules, key=lambda r: r.group_id):
            for ip in rule.allow_ip_rule.split("|"):
                ip = ip.strip()
                if ip:
                    by_ip[ip] = rule.group_id
            by_name[rule.group_name] = rule.group_id
        self.by_ip = by_ip
        self.by_name = by_name
        self.priorities: tuple[PriorityEntry, ...] = tuple(
            PriorityEntry(p.id, p.station, _group_ids(p.group_list))
            for p in sorted(priorities, key=lambda p: p.list_order)
        )
        self._client_memo: dict[str, int] = {}

    def group_of_ip(self, host: str) -> int:
        """Group of an IP: exact match, then ``a.b.c.*``; :data:`NO_GROUP` if none."""
        group = self.by_ip.get(host)
        if group is not None:
            return group
        if _IPV4.fullmatch(host):
            return self.by_ip.get(host[: host.rfind(".")] + ".*", NO_GROUP)
        return NO_GROUP

    def group_of_name(self, name: str) -> int:
        """Group id of a ``group_name`` (``ip_group_name`` column); :data:`NO_GROUP` if unknown."""
        return self.by_name.get(name, NO_GROUP) if name else NO_GROUP

    def client_group(self, host: str) -> int:
        """:meth:`group_of_ip`, memoised for the query path (always -1 without IP rules)."""
        if not self.by_ip:
            return NO_GROUP
        memo = self._client_memo
        group = memo.get(host)
        if group is None:
            if len(memo) >= _CLIENT_MEMO_LIMIT:
                memo.clear()
            group = memo[host] = self.group_of_ip(host)
        return group

    def station(self, name: str) -> PriorityEntry | None:
        """The first priority row (in ``list_order``) whose station is ``name``."""
        for entry in self.priorities:
            if entry.station == name:
                return entry
        return None
