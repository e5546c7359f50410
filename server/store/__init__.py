"""Storage: the contract the server uses (contract.py) and its implementations.

contract.py  the `Store` and `MediaStore` protocols, their records and errors
overlay.py   one batch being planned over the committed state (the chat's Plan)
memory.py    MemoryStore: the reference semantics, in memory
sqlite...    SQLiteStore: the server's store
postgres...  PostgresStore: the SQLite store's pipeline on PostgreSQL, for several nodes
             (imported from liaotian.server.store.postgres: its driver is an extra)
"""

from .contract import (
    DeviceRecord,
    MediaStore,
    Store,
    StoreClosed,
    StoreOpenError,
    UpdatePage,
    UsernameTaken,
    UserRecord,
)
from .memory import MemoryStore
from .sqlite import SQLiteStore

__all__ = [
    "DeviceRecord",
    "MediaStore",
    "MemoryStore",
    "SQLiteStore",
    "Store",
    "StoreClosed",
    "StoreOpenError",
    "UpdatePage",
    "UserRecord",
    "UsernameTaken",
]


def _conform(sqlite: SQLiteStore, memory: MemoryStore) -> tuple[Store, Store]:
    """Never called: mypy checks here that both stores implement the contract."""
    return sqlite, memory


def _conform_media(sqlite: SQLiteStore, memory: MemoryStore) -> tuple[MediaStore, MediaStore]:
    """Never called: mypy checks that both stores keep media metadata."""
    return sqlite, memory
