"""What the services need from storage, independent of the engine.

The SQLite implementation is the only one today; the interface keeps SQL out of the services
and leaves room for another engine without touching them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from liaotian.protocol import ErrorCode

T = TypeVar("T")


@dataclass(slots=True)
class SendRequest:
    """One SEND on its way to the group-commit writer; the writer fills in the outcome."""

    sender_id: int
    sender_name: str
    to_name: str
    cmid: str
    text: str
    meta: dict[str, Any]
    origin: Any  # opaque to the store: the session to answer
    rid: int
    result: SendResult | None = None
    error: ErrorCode | None = None


@dataclass(frozen=True, slots=True)
class SendResult:
    id: int
    conv: int
    pos: int
    ts: int
    sender_seq: int
    cmid: str
    duplicate: bool = False
    recipient_id: int = 0
    recipient_seq: int = 0
    body: bytes = b""  # the encoded message map (empty for duplicates: nothing to deliver)


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    username: str
    password_hash: str


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    user_id: int
    device: str
    created: int
    last_seen: int
    acked: int


@dataclass(frozen=True, slots=True)
class UpdatePage:
    updates: list[bytes]  # pre-encoded [seq, kind, data] arrays
    last_seq: int  # seq of the last update in the page (or the cursor if empty)
    resync: bool = False


@dataclass(slots=True)
class Txn:
    """A generic write run inside the next group commit; `fn` gets the writer's handle."""

    fn: Callable[[Any], Awaitable[Any]]
    future: Any = field(default=None)


class Store(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...

    # writes (group-committed)
    def submit_send(self, req: SendRequest) -> None: ...
    async def create_user(self, username: str, password_hash: str) -> int: ...
    async def set_device_token(self, user_id: int, device: str, token_hash: bytes) -> int: ...
    async def delete_device(self, user_id: int, device: str) -> bool: ...
    def record_position(self, user_id: int, device: str, seq: int) -> None: ...

    # reads
    async def user_by_name(self, username: str) -> UserRecord | None: ...
    async def device_by_token(self, token_hash: bytes) -> tuple[UserRecord, DeviceRecord] | None: ...
    async def devices_of(self, user_id: int) -> list[DeviceRecord]: ...
    async def head(self, user_id: int) -> int: ...
    async def read_updates(self, user_id: int, since: int, limit: int) -> UpdatePage: ...
    async def history(self, user_id: int, peer_id: int, before: int | None, after: int | None,
                      limit: int) -> tuple[list[bytes], bool]: ...
