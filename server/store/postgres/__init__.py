"""The storage contract on PostgreSQL (store.py says how and why)."""

from .store import PostgresStore

__all__ = ["PostgresStore"]
