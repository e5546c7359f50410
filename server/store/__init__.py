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
    MerchantProfile,
    NearbyStore,
    ShopStore,
    Store,
    StoreClosed,
    StoreOpenError,
    StoreUnavailable,
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
    "MerchantProfile",
    "NearbyStore",
    "SQLiteStore",
    "ShopStore",
    "Store",
    "StoreClosed",
    "StoreOpenError",
    "StoreUnavailable",
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


def _conform_nearby(sqlite: SQLiteStore, memory: MemoryStore) -> tuple[NearbyStore, NearbyStore]:
    """Never called: mypy checks that both stores keep shares and merchants."""
    return sqlite, memory


def _conform_shop(sqlite: SQLiteStore, memory: MemoryStore) -> tuple[ShopStore, ShopStore]:
    """Never called: mypy checks that both stores read the shop."""
    return sqlite, memory
