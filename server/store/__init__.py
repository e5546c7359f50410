"""Storage: the interface the services use and its SQLite implementation."""

from .base import DeviceRecord, SendRequest, SendResult, Store, UpdatePage, UserRecord
from .sqlite import SQLiteStore, StoreClosed

__all__ = ["DeviceRecord", "SQLiteStore", "SendRequest", "SendResult", "Store", "StoreClosed",
           "UpdatePage", "UserRecord"]
