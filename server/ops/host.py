"""What the operator's tools use of a running server: a Protocol the composition root
(`app.Server`) satisfies, so nothing here imports app.py (only the entry points do, and the
server's modules import one another one way: tests/server/test_layout.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..config import Config
    from ..net.hub import Hub
    from ..store import SQLiteStore
    from .counters import Counters
    from .lifecycle import Lifecycle


class Host(Protocol):
    @property
    def config(self) -> Config: ...
    @property
    def hub(self) -> Hub: ...
    @property
    def store(self) -> SQLiteStore: ...
    @property
    def counters(self) -> Counters: ...
    @property
    def port(self) -> int:
        """The port the server listens on (the real one when configured as 0)."""

    @property
    def tls_enabled(self) -> bool: ...
    @property
    def lifecycle(self) -> Lifecycle:
        """Connection ages and lifecycle counts (ops/lifecycle.py)."""

    @property
    def metrics_port(self) -> int | None:
        """The metrics endpoint's port while it serves, else None."""
