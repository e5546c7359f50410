"""What the server asks of storage, whichever engine keeps it: the `Store` protocol.

Three stores implement it: `SQLiteStore` (sqlite/, durable, the server's default),
`PostgresStore` (postgres/, the same pipeline on PostgreSQL, for several nodes) and
`MemoryStore` (memory.py, the reference semantics, for tests and the simulation). One
contract test suite (tests/store/test_contract.py and the wallet's and channels') runs
against all three.

Writes that follow the chat's rules are operations (chat/ops.py), submitted and planned
in order inside a group commit by the rules (chat/rules/); nothing is reported before the
commit that makes it durable, and then every operation of the commit is handed, in
order, to `on_committed` (the fan-out). The other writes (accounts, devices, profiles,
positions) are awaited.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

from liaotian.protocol import ErrorCode, RequestError

from ..chat.ledger import Account, Item, LedgerDump, Packet, Transfer
from ..chat.model import (
    Blob,
    BlobAccess,
    ChannelMember,
    ChannelState,
    GroupState,
    PendingCallback,
    Social,
)
from ..chat.rules.nearby import Candidate, LastSeen, Share
from ..chat.shop import Order, Product

Committed = Callable[[list[Any]], None]  # the planned operations of one commit, in order

# Who the reads of the running task are for: set per request by the router (a task
# inherits it); a store may serve the reads of different owners in turn (SQLite does:
# sqlite/readers.py). None: the server's own reads.
read_owner: ContextVar[Hashable | None] = ContextVar("liaotian_read_owner", default=None)


class StoreClosed(RequestError):
    """The store no longer accepts writes (shutting down). A request that meets it is
    answered `UNAVAILABLE` by the router like any refusal, so handlers need not catch it;
    background tasks catch it to stop."""

    code = ErrorCode.UNAVAILABLE


class StoreUnavailable(RequestError):
    """The store cannot reach its database now (PostgreSQL restarting, the network to it
    cut): nothing of the request was stored. Answered as `5001 INTERNAL_ERROR`, which
    clients retry after a backoff on the same connection (a send with the same cmid, so
    nothing is stored twice); the store reconnects by itself (postgres/link.py)."""

    code = ErrorCode.INTERNAL_ERROR

    def __init__(self) -> None:
        super().__init__(message="the database is unreachable; retry")


class StoreOpenError(RuntimeError):
    """The store cannot open its database; the text says why, naming the file."""


class UsernameTaken(Exception):
    """create_user: the name belongs to another account."""


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


@dataclass(frozen=True, slots=True)
class UploadRow:
    """An unfinished media upload (SPEC.md 27.2); its bytes are in the media store."""

    id: int
    user_id: int
    sha256: bytes
    size: int
    media_type: str
    name: str
    chunk_size: int
    created: int  # ms
    touched: int  # ms: its begin, or a later resume or sweep that found it in use


@dataclass(frozen=True, slots=True)
class BudgetRow:
    """A user's media byte buckets as last charged (SPEC.md 27.4): bytes left in each at
    the time beside it (ms), so a restart goes on from them instead of handing out a
    fresh day's bytes."""

    user_id: int
    up_level: int
    up_at: int
    down_level: int
    down_at: int


@dataclass(frozen=True, slots=True)
class Uploader:
    """What an UPLOAD_BEGIN is planned from (server/media/uploads.py's UploaderState), in
    one read: the user's own stored upload of this content, their unfinished upload of it,
    and how many unfinished uploads they have. Nothing here depends on other users."""

    stored: Blob | None
    upload: UploadRow | None
    active: int


# (conv, kind, peer id, group name, ts, last body, last pos, read pos, joined pos)
ConversationRow = tuple[int, int, int | None, str | None, int, bytes | None, int, int, int]
# (group, name, topic, my role, member count)
GroupRow = tuple[int, str, str, int, int]
# (channel, name, my role, member count, last pos, my read pos, ts of the last post or of
# the channel's creation)
ChannelRow = tuple[int, str, int, int, int, int, int]


@dataclass(frozen=True, slots=True)
class PostRecord:
    """A channel post as members read it (a deleted one has no text)."""

    pos: int
    id: int
    author: str
    ts: int
    text: str
    deleted: bool
    likes: int
    comments: int


@dataclass(frozen=True, slots=True)
class CommentRecord:
    post: int  # the position of the post it is under
    n: int  # its number under the post, from 1
    id: int
    author: str
    ts: int
    text: str
    deleted: bool


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A post (n = 0) or a comment whose text matches a search."""

    post: int
    n: int
    id: int
    author: str
    ts: int
    text: str


@dataclass(frozen=True, slots=True)
class BotRecord:
    """A bot account (SPEC.md 26): its user id and name, its owner, its commands."""

    id: int
    name: str
    owner: int
    created: int  # ms
    commands: tuple[tuple[str, str], ...] = ()  # (name, description)


BOT_PASSWORD_HASH = "!bot"  # a bot's password hash: no password verifies against it
BOT_DEVICE = "bot"  # the device whose session token is the bot's token


def tombstone_name(uid: int) -> str:
    """The username a deleted bot's account takes when its name is freed: '#' is in no
    valid username (SPEC.md 9.1), so nobody can register or address it."""
    return f"#deleted{uid}"


class Store(Protocol):
    """The store the handlers and the fan-out use (see the module docstring)."""

    on_committed: Committed

    async def open(self) -> None: ...
    async def close(self) -> None:
        """Stop taking writes, commit what is queued, close."""

    # ------------------------------------------------------------------ writes

    def submit(self, op: Any) -> None:
        """Queue an operation (chat/ops.py); StoreClosed once closing."""

    async def drain(self) -> None:
        """Wait until everything submitted so far is committed and answered."""

    async def create_user(self, username: str, password_hash: str) -> int:
        """The new user's id; UsernameTaken if the name is taken."""

    async def set_device_token(
        self, user_id: int, device: str, token_hash: bytes, *, max_devices: int = 0
    ) -> int | None:
        """Create or re-key a device; its acknowledged position, or None when it is new
        and the user has `max_devices` devices already (0: no bound)."""

    async def delete_device(self, user_id: int, device: str) -> bool: ...
    async def set_profile(self, uid: int, display_name: str | None, status: str | None) -> None: ...
    def record_position(self, user_id: int, device: str, seq: int) -> None:
        """A device acknowledged `seq`; kept with a later commit."""

    def flush_positions_soon(self) -> None: ...
    def record_last_seen(self, uid: int, when_ms: int) -> None: ...
    def touch_device(self, user_id: int, device: str) -> None: ...

    # ------------------------------------------------------------------ reads

    def cached_head(self, user_id: int) -> int | None:
        """The published head, if the store holds it without a read."""

    def known_user(self, username: str) -> bool:
        """Whether the name is known to belong to a user without a read (a hint)."""

    def members_hint(self, conv: int) -> int | None:
        """The group's member count if held without a read (a hint)."""

    async def head(self, user_id: int) -> int: ...
    async def committed_head(self, user_id: int) -> int: ...
    async def floor(self, user_id: int) -> int: ...
    async def user_by_name(self, username: str) -> UserRecord | None: ...
    async def user_id(self, username: str) -> int | None: ...
    async def device_by_token(
        self, token_hash: bytes
    ) -> tuple[UserRecord, DeviceRecord] | None: ...
    async def device(self, user_id: int, device: str) -> DeviceRecord | None: ...
    async def devices_of(self, user_id: int) -> list[DeviceRecord]: ...
    async def read_updates(
        self, user_id: int, since: int, limit: int, max_bytes: int = 1 << 62
    ) -> UpdatePage: ...
    async def direct_conv(self, a: int, b: int) -> int | None: ...
    async def history(
        self,
        conv: int,
        before: int | None,
        after: int | None,
        limit: int,
        max_bytes: int = 1 << 62,
        min_pos: int = 1,
    ) -> tuple[list[bytes], bool]: ...
    async def group_state(self, conv: int) -> GroupState | None: ...
    async def social_of(self, uid: int) -> Social: ...
    async def last_pos(self, conv: int) -> int: ...
    async def usernames(self, ids: Iterable[int]) -> dict[int, str]: ...
    async def profile(self, uid: int) -> tuple[str, str, int]:
        """(display name, status, last seen ms)."""

    async def groups_of(
        self, uid: int, *, limit: int | None = None, after: int = 0
    ) -> list[GroupRow]: ...
    async def conversation(self, conv: int) -> tuple[int, int | None, int | None] | None:
        """(kind, user_a, user_b) of a conversation."""

    async def read_marker(self, uid: int, conv: int) -> int: ...
    async def read_markers(self, conv: int) -> dict[int, int]: ...
    async def delivered_pos(self, uid: int, conv: int) -> int: ...
    async def conversations_of(
        self, uid: int, limit: int, before: tuple[int, int] | None
    ) -> list[ConversationRow]: ...
    async def unread_count(
        self, uid: int, conv: int, after: int, cap: int | None = None
    ) -> int: ...

    # ------------------------------------------------------------------ channels (committed)

    async def channel(self, conv: int) -> ChannelState | None: ...
    async def channel_member(self, conv: int, uid: int) -> ChannelMember | None: ...
    async def channel_banned(self, conv: int, uid: int) -> bool: ...
    async def channels_of(self, uid: int) -> list[ChannelRow]:
        """The user's channels, newest activity first."""

    async def channels_named(self, name: str, limit: int) -> list[ChannelState]:
        """Open channels of this name (ASCII case ignored), the most members first."""

    async def channel_members(
        self, conv: int, after: int, limit: int
    ) -> list[tuple[int, str, int]]:
        """(user id, name, role) of members with ids above `after`, by id."""

    async def channel_posts(
        self, conv: int, *, before: int | None = None, after: int | None = None, limit: int = 50
    ) -> list[PostRecord]:
        """Posts after `after` (the oldest first), else before `before` (or the newest):
        at most `limit`, in position order either way."""

    async def channel_comments(
        self, conv: int, post: int, after: int, limit: int
    ) -> list[CommentRecord]: ...
    async def channel_liked(self, conv: int, uid: int, posts: Iterable[int]) -> set[int]:
        """Which of these posts the user likes."""

    async def channel_search(
        self, conv: int, query: str, limit: int, before_id: int | None = None
    ) -> list[SearchHit]:
        """Posts and comments whose text has every word of `query` (case and accents
        ignored), newest first; `before_id` pages on."""

    # ------------------------------------------------------------------ the wallet

    async def account_of(self, acct: int) -> Account: ...
    async def transfers_of(self, acct: int, before: int | None, limit: int) -> list[Transfer]:
        """The account's transfers, newest first, with ids below `before`."""

    async def items_of(self, uid: int) -> list[Item]: ...
    async def packet_of(self, pid: int) -> Packet | None: ...
    async def task_progress_of(self, uid: int) -> dict[str, tuple[int, int]]:
        """task -> (period, completions) of the user's newest period of each task."""

    async def pendings_due(self, before: int, limit: int) -> list[int]:
        """Open pending transfers timing out before `before` (ms), earliest first."""

    async def next_expiry(self) -> int | None:
        """When the next open pending transfer times out (ms), if any does."""

    async def ledger_dump(self) -> LedgerDump: ...

    # ------------------------------------------------------------------ bots (awaited)

    async def create_bot(self, name: str, owner: int, token_hash: bytes) -> int:
        """In one commit: a user `name` with BOT_PASSWORD_HASH, its bot row, and its device
        BOT_DEVICE keyed by `token_hash`. The bot's user id; UsernameTaken if taken."""

    async def delete_bot(self, uid: int) -> bool:
        """Mark the bot deleted (a tombstone: no longer listed or found by bot_by_id), drop
        every device of the bot (its token dies) and its pending callbacks. The account
        stays (its messages keep their sender) and its name stays taken until
        free_bot_names frees it. False if it is not a live bot."""

    async def free_bot_names(self, deleted_before: int) -> list[str]:
        """Rename the accounts of bots deleted before `deleted_before` (ms) to a name no one
        can register ('#deleted' and the id), so their old names can be registered again
        (the quarantine is over); the names freed."""

    async def bot_by_id(self, uid: int) -> BotRecord | None: ...
    async def bots_of(self, owner: int) -> list[BotRecord]:
        """The owner's bots, oldest first."""

    async def all_bots(self) -> list[BotRecord]: ...
    async def set_bot_commands(self, uid: int, commands: tuple[tuple[str, str], ...]) -> None: ...
    async def set_group_bots(self, conv: int, see_all: bool) -> None:
        """Whether bot members of the group see every message (not only theirs)."""

    async def bot_open_groups(self) -> set[int]:
        """The groups whose bots see every message."""

    # A bot's edit replaces the stored message through the plan (Plan.replace_message),
    # and a press's callback is kept pending by the commit of its CALLBACK entry
    # (Plan.add_callback), closed by the commit of its answer (Plan.drop_callback).

    async def bot_callback(self, callback: int) -> PendingCallback | None:
        """The press waiting for an answer under this id (None: answered, swept, unknown)."""

    async def bot_callbacks(self, bot: int, limit: int) -> list[PendingCallback]:
        """The bot's presses waiting for an answer, oldest first, at most `limit`."""

    async def sweep_callbacks(self, before: int, keep: int) -> int:
        """Forget presses made before `before` (ms) and all but the newest `keep` of each
        bot's; how many were forgotten."""


class MediaStore(Protocol):
    """Media metadata (SPEC.md 27): blobs, who uploaded them, the messages referencing
    them, unfinished uploads. The bytes are in the media store beside the database
    (server/media/blobs.py). A message's references are written in its own commit by the
    SEND rule (chat/plan.py's add_blob_refs); everything here is awaited.

    A blob no message references carries the time it became unreferenced (its upload, or
    an upload of the same content since), and is collectable `grace` after it; a
    referenced blob is never collectable.
    """

    async def uploader(self, uid: int, sha256: bytes, size: int) -> Uploader: ...
    async def create_upload(
        self,
        uid: int,
        sha256: bytes,
        size: int,
        media_type: str,
        name: str,
        chunk_size: int,
        now_ms: int,
    ) -> UploadRow:
        """A new unfinished upload; the existing one if the user already has one of this
        (sha256, size) (two BEGINs racing)."""

    async def upload(self, upload_id: int) -> UploadRow | None: ...
    async def touch_upload(self, upload_id: int, now_ms: int) -> None: ...
    async def delete_upload(self, upload_id: int) -> bool: ...
    async def complete_upload(
        self, upload_id: int, uid: int, blobs: list[Blob], now_ms: int
    ) -> None:
        """In one commit: the blobs' rows (kept if stored already; unreferenced ones count
        as unreferenced from now), the user as the uploader of each, the upload gone."""

    async def blob(self, sha256: bytes) -> Blob | None: ...
    async def blob_access(self, uid: int, sha256: bytes) -> BlobAccess:
        """The blob and what decides whether `uid` may read it (chat/rules/media.py)."""

    async def expired_uploads(self, touched_before_ms: int, limit: int) -> list[UploadRow]: ...
    async def collectable_blobs(self, unref_before_ms: int, limit: int) -> list[bytes]:
        """Blobs unreferenced since before the time: candidates for collection."""

    async def collect_blobs(self, hashes: list[bytes], unref_before_ms: int) -> list[bytes]:
        """Delete the metadata of those of `hashes` still collectable (in one commit), and
        return them: their bytes may be removed now."""

    async def known_blobs(self, hashes: list[bytes]) -> set[bytes]:
        """Which of these blobs have metadata (a sweep of files without any)."""

    async def media_budget(self, uid: int) -> BudgetRow | None:
        """The user's byte buckets as last saved, or None (never charged)."""

    async def save_media_budgets(self, rows: list[BudgetRow]) -> None:
        """Store these buckets (in one commit), replacing what each user had."""


KIND_PERSON, KIND_MERCHANT = 0, 1  # an account's kind (set by an admin)


@dataclass(frozen=True, slots=True)
class MerchantProfile:
    """A merchant's public profile (SPEC.md 29.4): its location is exact and public."""

    name: str
    category: str
    hours: str
    lat: int  # microdegrees
    lon: int
    cell: int  # the H3 cells of its location (chat/rules/nearby.py), for the index
    index: int


class NearbyStore(Protocol):
    """Shared positions and merchants (SPEC.md 29; chat/rules/nearby.py decides).

    A share keeps a cell, never a position. The finders read an index by index cell
    (`indexes`, from search_cells): their cost grows with the shares filed under those
    cells, never with the shares elsewhere (SQLite: a covering B-tree index; memory: a
    dict of index cells). They leave out, in the store, whoever hides from the viewer:
    a share past its expiry, a user whose privacy `nearby` is "nobody" (or "contacts" and
    the viewer is not one), and a user who blocked the viewer. The viewer's own blocks,
    the radius and the order are the rules' (`find`). Writes are awaited and durable."""

    async def nearby_put(self, share: Share) -> None:
        """Keep the user's share (replacing any)."""

    async def nearby_share_of(self, uid: int) -> Share | None:
        """The user's share, live or expired but not yet swept."""

    async def nearby_stop(self, uid: int) -> bool:
        """Remove the user's share, keeping what is left of it (rules.last_seen); whether
        there was one."""

    async def nearby_last(self, uid: int) -> LastSeen | None:
        """What is left of the user's last share that stopped or was swept, until it is
        LAST_KEEP_MS old (the sweep forgets it then)."""

    async def nearby_take_hello(self, uid: int, day: int, limit: int) -> bool:
        """Count a hello against the user's `day` (rules.hello_day) if fewer than `limit`
        were counted on it; whether it was. Durable once answered."""

    async def nearby_people(self, viewer: int, indexes: list[int], now: int) -> list[Candidate]:
        """Live shares filed under these index cells, visible to `viewer`."""

    async def nearby_sweep(self, now: int, limit: int) -> int:
        """Remove up to `limit` shares expired by `now`, keeping what is left of them as
        nearby_stop does, and forget what was left LAST_KEEP_MS ago; how many shares."""

    async def set_account_kind(self, uid: int, kind: int) -> None: ...
    async def account_kind(self, uid: int) -> int: ...
    async def merchant_put(self, uid: int, profile: MerchantProfile) -> None: ...
    async def merchant_of(self, uid: int) -> MerchantProfile | None:
        """A merchant account's profile (None: not a merchant, or no profile yet)."""

    async def nearby_merchants(
        self, viewer: int, indexes: list[int], category: str | None
    ) -> list[Candidate]:
        """Merchants (accounts of kind merchant with a profile) filed under these index
        cells, of `category` if given; none that blocked the viewer."""


class ShopStore(Protocol):
    """The shop's committed records (SPEC.md 30), for reading; they change only by the
    shop's operations (chat/rules/shop.py) in the group commit."""

    async def products_of(self, merchant: int) -> list[Product]:
        """The merchant's catalogue, by id."""

    async def product_by_id(self, pid: int) -> Product | None: ...
    async def order_by_id(self, oid: int) -> Order | None: ...
    async def orders_of(self, uid: int, *, as_merchant: bool, limit: int) -> list[Order]:
        """The user's orders as buyer (or as merchant), newest first."""
