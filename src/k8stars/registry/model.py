"""Rows shared by the store (which reads and writes them) and the query index (which serves them).

Field names follow the ``db_tars`` columns they come from.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GroupPriority", "GroupRule", "InstanceRow", "RegistrySnapshot"]


@dataclass(frozen=True, slots=True)
class InstanceRow:
    """One adapter of one server on one node: ``t_adapter_conf`` joined with ``t_server_conf``.

    ``servant`` and ``endpoint`` are empty for a server without adapters (it still has a state).
    """

    application: str
    server_name: str
    node_name: str
    servant: str
    endpoint: str
    setting_state: str = "active"
    present_state: str = "active"
    flow_state: str = "active"
    enable_group: str = "N"
    enable_set: str = "N"
    set_name: str = ""
    set_area: str = ""
    set_group: str = ""
    ip_group_name: str = ""
    bak_flag: int = 0
    grid_flag: str = "NORMAL"


@dataclass(frozen=True, slots=True)
class GroupRule:
    """A row of ``t_server_group_rule``: IPs (``|``-separated, ``a.b.c.*`` allowed) → group."""

    group_id: int
    group_name: str
    allow_ip_rule: str


@dataclass(frozen=True, slots=True)
class GroupPriority:
    """A row of ``t_group_priority``: an ordered list of group ids and its station name."""

    id: int
    group_list: str
    list_order: int
    station: str


@dataclass(frozen=True, slots=True)
class RegistrySnapshot:
    """Everything the query index needs, as read from the database at one moment."""

    instances: tuple[InstanceRow, ...]
    group_rules: tuple[GroupRule, ...] = ()
    group_priorities: tuple[GroupPriority, ...] = ()
