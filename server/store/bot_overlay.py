"""The bots' part of a batch (chat/plan.py's `replace_message`, `add_callback`,
`drop_callback`), a base of overlay.Overlay like shop_overlay.py.

Nothing here is read back while planning: a bot's edit replaces a stored message the
handler has read (the rule builds the new map), and a pending callback is checked by the
handler against the store before its answer is planned (handlers/bots.py). So the batch
only stages the writes, in order, for the store to keep (`_keep_*`) and, in memory or in
the SQLite store's tail of recent messages, to apply once the batch is durable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ..chat.model import PendingCallback

T = TypeVar("T")

# an edit: (message id, conversation, position, the new body)
EditRow = tuple[int, int, int, bytes]


class BotOverlay:
    """Edits and pending callbacks staged by one batch; implements that part of Plan."""

    _undo: list[Callable[[], None]] | None

    def _init_bots(self) -> None:
        self.edits: list[EditRow] = []
        self.callbacks_added: list[PendingCallback] = []
        self.callbacks_dropped: list[int] = []

    def _staged(self, rows: list[T], row: T) -> None:
        rows.append(row)
        if self._undo is not None:
            self._undo.append(lambda: _drop_last(rows))

    def replace_message(self, mid: int, conv: int, pos: int, body: bytes) -> None:
        self._staged(self.edits, (mid, conv, pos, body))
        self._keep_edit(mid, body)

    def add_callback(self, cb: PendingCallback) -> None:
        self._staged(self.callbacks_added, cb)
        self._keep_callback(cb)

    def drop_callback(self, callback: int) -> None:
        self._staged(self.callbacks_dropped, callback)
        self._keep_callback_gone(callback)

    # how the store keeps them (SQL statements, or nothing until published in memory)

    def _keep_edit(self, mid: int, body: bytes) -> None:
        pass

    def _keep_callback(self, cb: PendingCallback) -> None:
        pass

    def _keep_callback_gone(self, callback: int) -> None:
        pass


def _drop_last(rows: list[T]) -> None:
    rows.pop()
