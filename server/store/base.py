"""What the services need from storage, independent of the engine.

The SQLite implementation is the only one today; the interface keeps SQL out of the services
and leaves room for another engine without touching them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from liaotian.protocol import ErrorCode

T = TypeVar("T")


class Refused(Exception):
    """Raised by a WriteOp's plan: the request is answered with this error, nothing staged."""

    def __init__(self, code: ErrorCode, message: str = "") -> None:
        super().__init__(message or code.explanation)
        self.code = code
        self.message = message or code.explanation


@dataclass(slots=True)
class Needs:
    """What a batch must have in the writer's caches before it can be planned."""

    names: set[str] = field(default_factory=set)  # usernames to resolve
    users: set[int] = field(default_factory=set)  # update-log heads
    groups: set[int] = field(default_factory=set)  # group state (members, roles)
    social: set[int] = field(default_factory=set)  # contacts, blocks, privacy
    convs: set[int] = field(default_factory=set)  # last position of a conversation
    pairs: set[tuple[int, int]] = field(default_factory=set)  # direct conversations


@dataclass(slots=True, eq=False)
class Push:
    """An update-log entry to push to the live connections of `user` after the commit."""

    user: int
    seq: int
    kind: int
    data: bytes  # encoded data map (the message map for kind 1)
    skip_origin: bool = False  # the op's own connection already knows (SEND's SENT.seq)


class WriteOp:
    """A request that writes: planned in order inside a group commit, answered after it.

    `needs` declares what to load (it may be called again as names resolve); `plan` checks
    and stages the change through the Batch, raising Refused to answer with an error.
    """

    origin: Any = None  # opaque to the store: the connection to answer
    rid: int = 0
    error: ErrorCode | None = None
    error_message: str = ""
    pushes: list[Push]
    answer: Any = None  # what the service answers with (set by plan)

    def needs(self, n: Needs, batch: Any) -> None:
        pass

    def plan(self, batch: Any) -> None:
        raise NotImplementedError


@dataclass(slots=True, eq=False)
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
    group: int | None = None
    result: SendResult | None = None
    error: ErrorCode | None = None
    error_message: str = ""
    pushes: list[Push] = field(default_factory=list)  # unused: a send pushes its result


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
    fanout: tuple[tuple[int, int], ...] = ()  # group sends: (member, seq), sender excluded


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

    fn: Callable[[Any], Any]  # runs in the writer thread with its sqlite3 connection
    future: Any = field(default=None)


class Store(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...

    # writes (group-committed)
    def submit_send(self, req: SendRequest) -> None: ...
    async def create_user(self, username: str, password_hash: str) -> int: ...
    async def set_device_token(self, user_id: int, device: str, token_hash: bytes, *,
                               max_devices: int = 0) -> int | None: ...
    async def delete_device(self, user_id: int, device: str) -> bool: ...
    def record_position(self, user_id: int, device: str, seq: int) -> None: ...

    # reads
    async def user_by_name(self, username: str) -> UserRecord | None: ...
    async def device_by_token(
        self, token_hash: bytes
    ) -> tuple[UserRecord, DeviceRecord] | None: ...
    async def devices_of(self, user_id: int) -> list[DeviceRecord]: ...
    async def head(self, user_id: int) -> int: ...
    async def read_updates(self, user_id: int, since: int, limit: int) -> UpdatePage: ...
    async def history(self, user_id: int, peer_id: int, before: int | None, after: int | None,
                      limit: int) -> tuple[list[bytes], bool]: ...
