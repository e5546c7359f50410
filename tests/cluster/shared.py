"""Several nodes in one process over one store: the store's view each node gets.

A stand-in for a database shared by several processes (PostgreSQL): every node writes to
and reads from the same MemoryStore, and each commit's operations are answered by the
node that submitted them, as they would be by each process's own store. Only what a
node does after a commit differs by node: which operations it answers and pushes.
"""

from __future__ import annotations

from typing import Any

from liaotian.server.store.memory import MemoryStore


class SharedStore:
    def __init__(self) -> None:
        self.store = MemoryStore()
        self.store.on_committed = self._committed
        self._origin: dict[int, NodeStore] = {}
        self._open = 0

    def view(self) -> NodeStore:
        return NodeStore(self)

    def _committed(self, ops: list[Any]) -> None:
        by_node: dict[NodeStore, list[Any]] = {}
        for op in ops:
            node = self._origin.pop(id(op), None)
            if node is not None:
                by_node.setdefault(node, []).append(op)
        for node, mine in by_node.items():
            node.on_committed(mine)


class NodeStore:
    def __init__(self, shared: SharedStore) -> None:
        self._shared = shared
        self.on_committed: Any = lambda ops: None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._shared.store, name)

    def submit(self, op: Any) -> None:
        self._shared._origin[id(op)] = self
        self._shared.store.submit(op)

    async def open(self) -> None:
        if self._shared._open == 0:
            await self._shared.store.open()
        self._shared._open += 1

    async def close(self) -> None:
        self._shared._open -= 1
        if self._shared._open == 0:
            await self._shared.store.close()
