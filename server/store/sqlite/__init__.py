"""The SQLite store: see store.py for its parts."""

from .store import SQLiteStore

__all__ = ["SQLiteStore"]
