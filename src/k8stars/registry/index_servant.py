"""Per-servant part of the query index: indexed endpoint records and the §5.4 algorithms.

A :class:`ServantEntry` is immutable once built except for its memo tables (results and
encoded answers computed on first use); the index replaces the whole entry when the servant
changes, which drops every memo at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..tars.codec import Struct
from .index_groups import NO_GROUP, PriorityEntry

__all__ = ["EndpointF", "EpLists", "Record", "ServantEntry", "SetAnswer"]

#: An instance of the framework struct ``tars.EndpointF`` (built at run time from the IDL).
EndpointF = Struct
#: (active endpoints, inactive endpoints)
EpLists = tuple[list[EndpointF], list[EndpointF]]
#: (return code, active endpoints, inactive endpoints)
SetAnswer = tuple[int, list[EndpointF], list[EndpointF]]

_MEMO_LIMIT = 256


@dataclass(frozen=True, slots=True)
class Record:
    """One endpoint of a servant, with what the algorithms select on.

    ``set_name`` is empty when the row is not in the set cache (set disabled or invalid).
    ``order`` is the canonical sort key, so that answers never depend on update history.
    """

    order: tuple[object, ...]
    epf: EndpointF
    active: bool
    groupworkid: int
    grouprealid: int
    set_name: str = ""
    set_area: str = ""
    set_id: str = ""


def _split(records: Sequence[Record]) -> EpLists:
    return ([r.epf for r in records if r.active], [r.epf for r in records if not r.active])


class ServantEntry:
    """All endpoints of one servant plus memoised answers; see the module docstring."""

    __slots__ = ("_group_memo", "_set_memo", "active", "enc_all", "enc_by_id", "enc_group",
                 "enc_set", "enc_set_group", "inactive", "records", "sets")

    def __init__(self, records: Sequence[Record]) -> None:
        self.records = tuple(sorted(records, key=lambda r: r.order))
        self.active, self.inactive = _split(self.records)
        sets: dict[str, list[Record]] = {}
        for r in self.records:
            if r.set_name:
                sets.setdefault(r.set_name, []).append(r)
        #: set cache: set name → entries (CDbHandle ``_setDivisionCache[servant]``)
        self.sets: dict[str, tuple[Record, ...]] = {k: tuple(v) for k, v in sets.items()}
        self._group_memo: dict[int, EpLists] = {}
        self._set_memo: dict[tuple[str, str, str], SetAnswer | None] = {}
        # Encoded answers, filled by the index on first use.
        self.enc_by_id: bytes | None = None
        self.enc_all: bytes | None = None
        self.enc_group: dict[int, bytes] = {}
        self.enc_set: dict[str, bytes] = {}
        self.enc_set_group: dict[int, bytes] = {}

    def in_group_priority(self, group: int, priorities: Sequence[PriorityEntry]) -> EpLists:
        """``findObjectByIdInGroupPriority`` for a client in ``group`` (shared lists)."""
        if group == NO_GROUP:
            return self.active, self.inactive
        found = self._group_memo.get(group)
        if found is None:
            found = self._group_memo[group] = self._group_priority(group, priorities)
        return found

    def _group_priority(self, group: int, priorities: Sequence[PriorityEntry]) -> EpLists:
        candidates: list[frozenset[int]] = [frozenset((group,))]
        candidates += [p.groups for p in priorities if group in p.groups]
        candidates.append(frozenset((NO_GROUP,)))
        for groups in candidates:
            active, inactive = _split([r for r in self.records if r.groupworkid in groups])
            if active:
                return active, inactive
        return self.active, self.inactive

    def in_station(self, groups: frozenset[int]) -> EpLists:
        """Endpoints whose ``grouprealid`` is in the station's groups (fresh lists)."""
        return _split([r for r in self.records if r.grouprealid in groups])

    def in_set(self, name: str, area: str, group: str) -> SetAnswer | None:
        """Steps 2–4 of the set algorithm; None means "fall back to the group algorithm"."""
        key = (name, area, group)
        try:
            return self._set_memo[key]
        except KeyError:
            pass
        if len(self._set_memo) >= _MEMO_LIMIT:
            self._set_memo.clear()
        answer = self._set_memo[key] = self._in_set(name, area, group)
        return answer

    def _in_set(self, name: str, area: str, group: str) -> SetAnswer | None:
        entries = self.sets.get(name)
        if not entries:
            return None
        set_area = f"{name}.{area}"
        if group == "*":
            chosen = [r for r in entries if r.set_area == set_area]
        else:
            set_id = f"{set_area}.{group}"
            chosen = [r for r in entries if r.set_id == set_id]
            if not chosen:
                wildcard = f"{set_area}.*"
                chosen = [r for r in entries if r.set_id == wildcard]
        if not chosen:
            return (-1, [], [])
        active, inactive = _split(chosen)
        return (0, active, inactive)
