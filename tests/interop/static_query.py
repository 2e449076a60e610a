"""A static QueryF servant: a stand-in registry for tests of clients and locators."""

from __future__ import annotations

from typing import Any

from k8stars.tars.endpoint import Endpoint
from k8stars.tars.idl.loader import framework
from k8stars.tars.servant import Servant, current

QUERY = framework().interface("tars.QueryF")
EndpointF = framework().struct("tars.EndpointF")


class StaticQuery(Servant, interface=QUERY):
    """A QueryF servant answering from a mutable table; records the objects and contexts asked."""

    def __init__(self, table: dict[str, list[Endpoint]] | None = None) -> None:
        self.table = table if table is not None else {}
        self.queries: list[str] = []
        self.contexts: list[dict[str, str]] = []

    def _active(self, obj: str) -> list[Any]:
        self.queries.append(obj)
        self.contexts.append(dict(current().context))
        return [EndpointF(**ep.endpointf_fields()) for ep in self.table.get(obj, [])]

    def findObjectById(self, id: str) -> list[Any]:
        return self._active(id)

    def findObjectById4Any(self, id: str) -> tuple[int, list[Any], list[Any]]:
        return 0, self._active(id), []

    def findObjectById4All(self, id: str) -> tuple[int, list[Any], list[Any]]:
        return 0, self._active(id), []

    def findObjectByIdInSameGroup(self, id: str) -> tuple[int, list[Any], list[Any]]:
        return 0, self._active(id), []

    def findObjectByIdInSameStation(self, id: str, sStation: str
                                    ) -> tuple[int, list[Any], list[Any]]:
        return 0, self._active(id), []

    def findObjectByIdInSameSet(self, id: str, setId: str) -> tuple[int, list[Any], list[Any]]:
        return 0, self._active(id), []

    def findObjectNodeName(self, id: str) -> tuple[int, list[str]]:
        return 0, [ep.host for ep in self.table.get(id, [])]

    def registerChange(self, timestamp: dict[str, str], name: str) -> int:
        return -1

    def registerQuery(self, id: str, name: str) -> int:
        return -1

    def getLocker(self, req: Any) -> int:
        return -1
