"""Storage: the contract the server uses (contract.py) and its implementations."""

from .contract import (
    DeviceRecord,
    Store,
    StoreClosed,
    StoreOpenError,
    UpdatePage,
    UsernameTaken,
    UserRecord,
)
from .sqlite import SQLiteStore

__all__ = ["DeviceRecord", "SQLiteStore", "Store", "StoreClosed", "StoreOpenError",
           "UpdatePage", "UserRecord", "UsernameTaken"]
