"""An in-memory store: the contract's reference semantics, and the simulation's store.

It plans operations by the same chat rules (chat/rules/) on the same overlay as SQLite
(overlay.py), one batch per `commit()`, and keeps what committed in dictionaries. It is
deterministic: no threads, no I/O, and time comes from the `clock` it is given (ms).

Commits: with `auto_commit` (the default) a commit runs on the event loop soon after the
first write queued since the last, taking everything queued by then (a group commit);
without, the owner calls `commit()` (the deterministic simulation does). Until its commit,
an operation is lost by `crash()`, like an uncommitted SQLite batch; what committed stays.
Device positions, like SQLite's, are kept with the next commit.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

from liaotian.protocol import encode_update

from ..chat import rules
from ..chat.ledger import Account, Item, KeyRecord, LedgerDump, Packet, Transfer
from ..chat.model import (
    EVENT_CMID,
    KIND_DIRECT,
    KIND_GROUP,
    Blob,
    BlobAccess,
    GroupState,
    Member,
    Social,
)
from ..chat.ops import SendRequest, SendResult
from ..chat.plan import pair
from ..chat.shop import Order, Product
from .contract import (
    BudgetRow,
    ConversationRow,
    DeviceRecord,
    GroupRow,
    StoreClosed,
    UpdatePage,
    Uploader,
    UploadRow,
    UsernameTaken,
    UserRecord,
)
from .contract import (
    Committed as OnCommitted,
)
from .memory_bots import MemoryBots
from .memory_channels import ChannelWrite, MemoryChannelBatch, MemoryChannels
from .memory_nearby import MemoryNearby
from .overlay import Committed, MessageRow, Overlay

# A log entry: (seq, kind, message id or None, data or None, ts).
Entry = tuple[int, int, int | None, bytes | None, int]


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


@dataclass(slots=True)
class _User:
    name: str
    password_hash: str
    created: int
    display_name: str = ""
    status: str = ""
    last_seen: int = 0
    log_floor: int = 0  # newest seq pruned from the log


@dataclass(slots=True)
class _Device:
    token_hash: bytes | None
    created: int
    last_seen: int
    acked: int = 0


class MemoryBatch(MemoryChannelBatch, Overlay):
    """A batch of the in-memory store: the overlay's copies are the state to publish;
    conversations, read markers and channel rows are staged here."""

    def __init__(self, committed: Committed, ts: int) -> None:
        super().__init__(committed, ts)
        self.convs: list[tuple[int, int, int | None, int | None, int]] = []
        self.markers: list[tuple[int, int, int]] = []
        self.channel_rows: list[ChannelWrite] = []
        self.transfers: list[Transfer] = []
        self.refs: list[tuple[int, int, tuple[bytes, ...]]] = []

    def _marks(self) -> tuple[int, ...]:
        return (
            *super()._marks(),
            len(self.convs),
            len(self.markers),
            len(self.channel_rows),
            len(self.transfers),
            len(self.refs),
        )

    def _rewind(self, marks: tuple[int, ...]) -> None:
        super()._rewind(marks)
        del self.convs[marks[4] :], self.markers[marks[5] :], self.channel_rows[marks[6] :]
        del self.transfers[marks[7] :], self.refs[marks[8] :]

    def _keep_user(self, username: str, password_hash: str) -> None:
        pass  # new_users (overlay.py) holds them; MemoryStore._publish creates them

    def _keep_direct_conv(self, conv: int, a: int, b: int) -> None:
        self.convs.append((conv, KIND_DIRECT, a, b, self.ts))

    def _keep_group(self, g: GroupState, *, new: bool = False) -> None:
        if new:
            self.convs.append((g.conv, KIND_GROUP, None, None, g.created))

    def _keep_member(self, conv: int, uid: int, m: Member) -> None:
        pass  # the batch's copy of the group is what is published

    def _keep_member_gone(self, conv: int, uid: int) -> None:
        pass

    def _keep_role(self, conv: int, uid: int, role: int) -> None:
        pass

    def _keep_relation(self, a: int, b: int, kind: int, present: bool) -> None:
        pass  # the batch's copies of both users' relations are what is published

    def _keep_privacy(self, uid: int, s: Social) -> None:
        pass

    def _keep_read_marker(self, uid: int, conv: int, pos: int) -> None:
        self.markers.append((uid, conv, pos))

    # the wallet: the batch's state is what is published; transfers are kept as a list

    def _keep_transfer(self, t: Transfer) -> None:
        self.transfers.append(t)

    def _keep_account(self, acct: int, a: Account) -> None:
        pass

    def _keep_pending(self, tid: int, t: Transfer | None) -> None:
        pass

    def _keep_packet(self, p: Packet, *, new: bool) -> None:
        pass

    def _keep_claim(self, p: Packet, uid: int, n: int, amount: int, transfer: int) -> None:
        pass

    def _keep_key(self, uid: int, key: str, rec: KeyRecord) -> None:
        pass

    def _keep_task(self, uid: int, task: str, period: int, count: int) -> None:
        pass

    def _keep_item(self, item: Item, *, new: bool) -> None:
        pass

    def _keep_product(self, p: Product, *, new: bool) -> None:
        pass  # the batch's products are what is published

    def _keep_order(self, o: Order, *, new: bool) -> None:
        pass

    def _keep_blob_refs(self, conv: int, pos: int, blobs: tuple[bytes, ...]) -> None:
        self.refs.append((conv, pos, blobs))


class MemoryStore(MemoryNearby, MemoryChannels, MemoryBots):
    def __init__(
        self,
        *,
        clock: Callable[[], int] = wall_clock_ms,
        auto_commit: bool = True,
        max_batch: int = 2048,
    ) -> None:
        self.clock = clock
        self.auto_commit = auto_commit
        self.max_batch = max_batch
        self.on_committed: OnCommitted = lambda ops: None
        self.state = Committed()  # every user's, always complete
        self.users: dict[int, _User] = {}
        self.devices: dict[tuple[int, str], _Device] = {}
        self.tokens: dict[bytes, tuple[int, str]] = {}
        self.convs: dict[int, tuple[int, int | None, int | None, int]] = {}  # kind, a, b, created
        self.messages: dict[int, MessageRow] = {}
        self.timelines: dict[int, list[MessageRow]] = {}  # conversation -> messages by pos
        self.by_cmid: dict[tuple[int, str], MessageRow] = {}
        self.logs: dict[int, list[Entry]] = {}
        self.markers: dict[tuple[int, int], int] = {}
        self.queue: list[Any] = []
        self.positions: dict[tuple[int, str], int] = {}  # acknowledged, kept at the next commit
        self.transfers: list[Transfer] = []  # every transfer, in id order
        self.by_account: dict[int, list[Transfer]] = {}
        # media metadata: blob -> [its record, unreferenced since (ms) or None]
        self.blob_rows: dict[bytes, list[Any]] = {}
        self.blob_owners: set[tuple[int, bytes]] = set()
        self.blob_refs: dict[bytes, set[tuple[int, int]]] = {}
        self.uploads: dict[int, UploadRow] = {}
        self.media_budgets: dict[int, BudgetRow] = {}
        self._upload_ids = itertools.count(1)
        self.batches = 0
        self.committed_sends = 0
        self._accepting = False
        self._scheduled = False
        self._init_channels()
        self._init_nearby()
        self._init_bots()

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        self._accepting = True

    async def close(self) -> None:
        self._accepting = False
        while self.queue or self.positions:
            self.commit()

    # ------------------------------------------------------------------ the commit

    def submit(self, op: Any) -> None:
        if not self._accepting:
            raise StoreClosed()
        self.queue.append(op)
        self._soon()

    def _soon(self) -> None:
        if self.auto_commit and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._auto_commit)

    def _auto_commit(self) -> None:
        self._scheduled = False
        while self.queue or self.positions:
            self.commit()

    def commit(self) -> list[Any]:
        """Plan the queued operations (at most max_batch) as one batch, keep it, answer
        it (on_committed). Returns the operations, answered."""
        ops, self.queue = self.queue[: self.max_batch], self.queue[self.max_batch :]
        batch = MemoryBatch(self.state, self.clock())
        for op in ops:
            op.error, op.error_message = None, ""
            if type(op) is SendRequest:
                first = self.by_cmid.get((op.sender_id, op.cmid))
                if first is not None:  # a retry of a committed send
                    op.result = _duplicate(first)
                    continue
                op.result = None
            # a send refuses only before it changes anything (chat/rules/send.py)
            batch.run(op, partial(rules.apply, batch, op), checks_first=type(op) is SendRequest)
        self._publish(batch)
        self.batches += 1
        self.committed_sends += len(batch.messages)
        if ops:
            self.on_committed(ops)
        return ops

    def _publish(self, batch: MemoryBatch) -> None:
        for username, password_hash in batch.new_users.items():  # before their rows
            self._add_user(username, password_hash)
        self.state.publish(batch)
        for conv, kind, a, b, created in batch.convs:
            self.convs[conv] = (kind, a, b, created)
        for m in batch.messages:
            self.messages[m[0]] = m
            self.timelines.setdefault(m[1], []).append(m)
            self.by_cmid[(m[3], m[5])] = m
        for _jid, uid, seq, kind, mid, data, ts in batch.updates:
            self.logs[uid].append((seq, kind, mid, data, ts))
        self._publish_bots(batch)
        self._publish_channels(batch.channel_rows)
        for t in batch.transfers:
            self.transfers.append(t)
            self.by_account.setdefault(t.debit, []).append(t)
            self.by_account.setdefault(t.credit, []).append(t)
        for uid, conv, pos in batch.markers:
            key = (uid, conv)
            self.markers[key] = max(self.markers.get(key, 0), pos)
        for conv, pos, blobs in batch.refs:
            for sha in blobs:
                self.blob_refs.setdefault(sha, set()).add((conv, pos))
                row = self.blob_rows.get(sha)
                if row is not None:
                    row[1] = None
        for (uid, device), seq in self.positions.items():
            d = self.devices.get((uid, device))
            if d is not None:
                d.acked = max(d.acked, seq)
        self.positions = {}

    def crash(self) -> None:
        """Lose what is not committed: queued operations and positions (the simulation's
        crash; the committed state stays)."""
        self.queue, self.positions = [], {}

    async def drain(self) -> None:
        while self.queue or self.positions:
            self.commit()

    # ------------------------------------------------------------------ awaited writes

    async def create_user(self, username: str, password_hash: str) -> int:
        if not self._accepting:
            raise StoreClosed()
        if username in self.state.user_ids:
            raise UsernameTaken(username)
        return self._add_user(username, password_hash)

    def _add_user(self, username: str, password_hash: str) -> int:
        uid = len(self.users) + 1
        self.users[uid] = _User(username, password_hash, self.clock())
        self.state.add_user(username, uid)
        self.state.heads[uid] = 0
        self.state.social[uid] = Social()
        self.logs[uid] = []
        return uid

    def _rename_user(self, uid: int, new: str) -> str:
        u = self.users[uid]
        old, u.name = u.name, new
        if self.state.user_ids.get(old) == uid:
            del self.state.user_ids[old]
        self.state.add_user(new, uid)
        return old

    async def set_device_token(
        self, user_id: int, device: str, token_hash: bytes, *, max_devices: int = 0
    ) -> int | None:
        if not self._accepting:
            raise StoreClosed()
        key = (user_id, device)
        d = self.devices.get(key)
        if (
            d is None
            and max_devices
            and sum(1 for u, _ in self.devices if u == user_id) >= max_devices
        ):
            return None
        t = self.clock()
        if d is None:
            d = self.devices[key] = _Device(token_hash, t, t)
        else:
            if d.token_hash is not None:
                self.tokens.pop(d.token_hash, None)
            d.token_hash, d.last_seen = token_hash, t
        self.tokens[token_hash] = key
        return d.acked

    async def delete_device(self, user_id: int, device: str) -> bool:
        if not self._accepting:
            raise StoreClosed()
        self.positions.pop((user_id, device), None)
        d = self.devices.pop((user_id, device), None)
        if d is None:
            return False
        if d.token_hash is not None:
            self.tokens.pop(d.token_hash, None)
        return True

    async def set_profile(self, uid: int, display_name: str | None, status: str | None) -> None:
        if not self._accepting:
            raise StoreClosed()
        u = self.users[uid]
        if display_name is not None:
            u.display_name = display_name
        if status is not None:
            u.status = status

    def record_position(self, user_id: int, device: str, seq: int) -> None:
        key = (user_id, device)
        if seq > self.positions.get(key, -1):
            self.positions[key] = seq

    def flush_positions_soon(self) -> None:
        if self.positions and self._accepting:
            self._soon()

    def record_last_seen(self, uid: int, when_ms: int) -> None:
        u = self.users.get(uid)
        if u is not None:
            u.last_seen = when_ms

    def touch_device(self, user_id: int, device: str) -> None:
        d = self.devices.get((user_id, device))
        if d is not None:
            d.last_seen = self.clock()

    async def prune_updates(self, older_than_ms: int) -> int:
        """Drop log entries older than the horizon, raising each user's floor."""
        pruned = 0
        for uid, log in self.logs.items():
            n = 0
            while n < len(log) and log[n][4] < older_than_ms:
                n += 1
            if n:
                self.users[uid].log_floor = max(self.users[uid].log_floor, log[n - 1][0])
                del log[:n]
                pruned += 1
        return pruned

    # ------------------------------------------------------------------ reads

    def cached_head(self, user_id: int) -> int | None:
        return self.state.heads.get(user_id)

    def known_user(self, username: str) -> bool:
        return username in self.state.user_ids

    def members_hint(self, conv: int) -> int | None:
        g = self.state.groups.get(conv)
        return len(g.members) if g is not None else None

    async def head(self, user_id: int) -> int:
        return self.state.heads.get(user_id, 0)

    async def committed_head(self, user_id: int) -> int:
        return self.state.heads.get(user_id, 0)

    async def floor(self, user_id: int) -> int:
        u = self.users.get(user_id)
        return u.log_floor if u is not None else 0

    async def user_by_name(self, username: str) -> UserRecord | None:
        uid = self.state.user_ids.get(username)
        if uid is None:
            return None
        return UserRecord(uid, username, self.users[uid].password_hash)

    async def user_id(self, username: str) -> int | None:
        return self.state.user_ids.get(username)

    def _pending(self, user_id: int, device: str, acked: int) -> int:
        return max(acked, self.positions.get((user_id, device), 0))

    async def device_by_token(self, token_hash: bytes) -> tuple[UserRecord, DeviceRecord] | None:
        key = self.tokens.get(token_hash)
        if key is None:
            return None
        uid, device = key
        d = self.devices[key]
        u = self.users[uid]
        return (
            UserRecord(uid, u.name, u.password_hash),
            DeviceRecord(uid, device, d.created, d.last_seen, self._pending(uid, device, d.acked)),
        )

    async def device(self, user_id: int, device: str) -> DeviceRecord | None:
        d = self.devices.get((user_id, device))
        if d is None:
            return None
        return DeviceRecord(
            user_id, device, d.created, d.last_seen, self._pending(user_id, device, d.acked)
        )

    async def devices_of(self, user_id: int) -> list[DeviceRecord]:
        found = sorted(
            (d.created, name, d) for (u, name), d in self.devices.items() if u == user_id
        )
        return [
            DeviceRecord(
                user_id, name, d.created, d.last_seen, self._pending(user_id, name, d.acked)
            )
            for _c, name, d in found
        ]

    def _data(self, entry: Entry) -> bytes:
        mid = entry[2]
        return self.messages[mid][7] if mid is not None else entry[3] or b""

    async def read_updates(
        self, user_id: int, since: int, limit: int, max_bytes: int = 1 << 62
    ) -> UpdatePage:
        if since < await self.floor(user_id):
            return UpdatePage([], since, resync=True)
        log = self.logs.get(user_id, [])
        start = bisect.bisect_right(log, since, key=lambda e: e[0])
        rows = log[start : start + limit]
        if not rows:
            return UpdatePage([], since)
        out: list[bytes] = []
        size = 0
        last = since
        for entry in rows:
            upd = encode_update(entry[0], entry[1], self._data(entry))
            size += len(upd)
            if out and size > max_bytes:
                break
            out.append(upd)
            last = entry[0]
        return UpdatePage(out, last)

    async def direct_conv(self, a: int, b: int) -> int | None:
        return self.state.direct.get(pair(a, b))

    async def history(
        self,
        conv: int,
        before: int | None,
        after: int | None,
        limit: int,
        max_bytes: int = 1 << 62,
        min_pos: int = 1,
    ) -> tuple[list[bytes], bool]:
        timeline = self.timelines.get(conv, [])
        if after is not None:
            i = bisect.bisect_right(timeline, max(after, min_pos - 1), key=lambda m: m[2])
            rows = [m[7] for m in timeline[i : i + limit + 1]]
        else:
            hi = bisect.bisect_left(
                timeline, before if before is not None else 1 << 62, key=lambda m: m[2]
            )
            lo = bisect.bisect_left(timeline, min_pos, key=lambda m: m[2])
            rows = [m[7] for m in reversed(timeline[max(lo, hi - limit - 1) : hi])]
        more = len(rows) > limit
        rows = rows[:limit]
        size = 0
        for i, body in enumerate(rows):
            size += len(body)
            if i and size > max_bytes:
                rows, more = rows[:i], True
                break
        if after is None:
            rows.reverse()
        return rows, more

    async def group_state(self, conv: int) -> GroupState | None:
        return self.state.groups.get(conv)

    async def social_of(self, uid: int) -> Social:
        s = self.state.social.get(uid)
        return s if s is not None else Social()

    async def last_pos(self, conv: int) -> int:
        return self.state.conv_last.get(conv, 0)

    async def usernames(self, ids: Iterable[int]) -> dict[int, str]:
        names = self.state.usernames
        return {uid: names[uid] for uid in ids if uid in names}

    async def profile(self, uid: int) -> tuple[str, str, int]:
        u = self.users.get(uid)
        return (u.display_name, u.status, u.last_seen) if u is not None else ("", "", 0)

    async def groups_of(
        self, uid: int, *, limit: int | None = None, after: int = 0
    ) -> list[GroupRow]:
        rows = [
            (conv, g.name, g.topic, g.members[uid].role, len(g.members))
            for conv, g in sorted(self.state.groups.items())
            if conv > after and uid in g.members
        ]
        return rows if limit is None else rows[:limit]

    async def conversation(self, conv: int) -> tuple[int, int | None, int | None] | None:
        found = self.convs.get(conv)
        return found[:3] if found is not None else None

    async def read_marker(self, uid: int, conv: int) -> int:
        return self.markers.get((uid, conv), 0)

    async def read_markers(self, conv: int) -> dict[int, int]:
        return {u: p for (u, c), p in self.markers.items() if c == conv}

    async def delivered_pos(self, uid: int, conv: int) -> int:
        upto = max(
            (self._pending(u, d, dev.acked) for (u, d), dev in self.devices.items() if u == uid),
            default=0,
        )
        upto = max(upto, max((s for (u, _d), s in self.positions.items() if u == uid), default=0))
        for seq, _kind, mid, _data, _ts in reversed(self.logs.get(uid, [])):
            if seq <= upto and mid is not None and self.messages[mid][1] == conv:
                return self.messages[mid][2]
        return 0

    async def conversations_of(
        self, uid: int, limit: int, before: tuple[int, int] | None
    ) -> list[ConversationRow]:
        b_ts, b_conv = before if before is not None else (1 << 62, 1 << 62)
        mine: list[tuple[int, int, int | None, int, int]] = []  # conv, kind, peer, jpos, created
        for conv, (kind, a, b, created) in self.convs.items():
            if kind == KIND_DIRECT and uid in (a, b):
                mine.append((conv, kind, b if a == uid else a, 1, created))
        for conv, g in self.state.groups.items():
            m = g.members.get(uid)
            if m is not None:
                mine.append((conv, KIND_GROUP, None, m.joined_pos, m.joined))
        keyed = []
        for conv, kind, peer, jpos, created in mine:
            timeline = self.timelines.get(conv)
            last = timeline[-1] if timeline else None
            ts = last[6] if last is not None else created
            if (ts, conv) < (b_ts, b_conv):
                keyed.append((ts, conv, kind, peer, jpos, last))
        keyed.sort(reverse=True, key=lambda k: (k[0], k[1]))
        out: list[ConversationRow] = []
        for ts, conv, kind, peer, jpos, last in keyed[: limit + 1]:
            group = self.state.groups.get(conv) if kind == KIND_GROUP else None
            out.append(
                (
                    conv,
                    kind,
                    peer,
                    group.name if group is not None else None,
                    ts,
                    last[7] if last is not None else None,
                    last[2] if last is not None else 0,
                    self.markers.get((uid, conv), 0),
                    jpos,
                )
            )
        return out

    async def unread_count(self, uid: int, conv: int, after: int, cap: int | None = None) -> int:
        n = 0
        for m in self.timelines.get(conv, []):
            if m[2] > after and m[3] != uid and not m[5].startswith(EVENT_CMID):
                n += 1
                if cap is not None and n >= cap:
                    break
        return n

    # ------------------------------------------------------------------ wallet reads

    async def account_of(self, acct: int) -> Account:
        return self.state.ledger.accounts.get(acct) or Account()

    async def transfers_of(self, acct: int, before: int | None, limit: int) -> list[Transfer]:
        """The account's transfers, newest first, with ids below `before`."""
        mine = self.by_account.get(acct, [])
        hi = len(mine) if before is None else bisect.bisect_left(mine, before, key=lambda t: t.id)
        return mine[max(0, hi - limit) : hi][::-1]

    async def items_of(self, uid: int) -> list[Item]:
        return sorted(
            (i for i in self.state.ledger.items.values() if i is not None and i.owner == uid),
            key=lambda i: i.id,
        )

    async def packet_of(self, pid: int) -> Packet | None:
        return self.state.ledger.packets.get(pid)

    async def task_progress_of(self, uid: int) -> dict[str, tuple[int, int]]:
        return {task: pc for (u, task), pc in self.state.ledger.progress.items() if u == uid}

    async def pendings_due(self, before: int, limit: int) -> list[int]:
        """Open pending transfers that time out before `before` (ms), earliest first."""
        due = sorted(
            (t.expires, t.id)
            for t in self.state.ledger.pendings.values()
            if t is not None and t.expires and t.expires < before
        )
        return [tid for _e, tid in due[:limit]]

    async def next_expiry(self) -> int | None:
        return min(
            (t.expires for t in self.state.ledger.pendings.values() if t is not None and t.expires),
            default=None,
        )

    async def ledger_dump(self) -> LedgerDump:
        led = self.state.ledger
        packets = [p for p in led.packets.values() if p is not None]
        return LedgerDump(dict(led.accounts), list(self.transfers), packets, dict(led.progress))

    # ------------------------------------------------------------------ media (MediaStore)

    def _check_open(self) -> None:
        if not self._accepting:
            raise StoreClosed()

    async def uploader(self, uid: int, sha256: bytes, size: int) -> Uploader:
        row = self.blob_rows.get(sha256)
        stored = (
            row[0]
            if row is not None and (uid, sha256) in self.blob_owners and row[0].size == size
            else None
        )
        mine = [u for u in self.uploads.values() if u.user_id == uid]
        upload = next((u for u in mine if u.sha256 == sha256 and u.size == size), None)
        return Uploader(stored, upload, len(mine))

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
        self._check_open()
        for u in self.uploads.values():
            if u.user_id == uid and u.sha256 == sha256 and u.size == size:
                return u
        row = UploadRow(
            next(self._upload_ids), uid, sha256, size, media_type, name, chunk_size, now_ms, now_ms
        )
        self.uploads[row.id] = row
        return row

    async def upload(self, upload_id: int) -> UploadRow | None:
        return self.uploads.get(upload_id)

    async def touch_upload(self, upload_id: int, now_ms: int) -> None:
        self._check_open()
        u = self.uploads.get(upload_id)
        if u is not None and now_ms > u.touched:
            self.uploads[upload_id] = UploadRow(
                u.id,
                u.user_id,
                u.sha256,
                u.size,
                u.media_type,
                u.name,
                u.chunk_size,
                u.created,
                now_ms,
            )

    async def delete_upload(self, upload_id: int) -> bool:
        self._check_open()
        return self.uploads.pop(upload_id, None) is not None

    async def media_budget(self, uid: int) -> BudgetRow | None:
        return self.media_budgets.get(uid)

    async def save_media_budgets(self, rows: list[BudgetRow]) -> None:
        self._check_open()
        for r in rows:
            self.media_budgets[r.user_id] = r

    async def complete_upload(
        self, upload_id: int, uid: int, blobs: list[Blob], now_ms: int
    ) -> None:
        self._check_open()
        for b in blobs:
            row = self.blob_rows.get(b.sha256)
            if row is None:
                self.blob_rows[b.sha256] = [b, None if self.blob_refs.get(b.sha256) else now_ms]
            elif row[1] is not None:
                row[1] = now_ms  # unreferenced: counts from this upload
            self.blob_owners.add((uid, b.sha256))
        self.uploads.pop(upload_id, None)

    async def blob(self, sha256: bytes) -> Blob | None:
        row = self.blob_rows.get(sha256)
        return row[0] if row is not None else None

    async def blob_access(self, uid: int, sha256: bytes) -> BlobAccess:
        row = self.blob_rows.get(sha256)
        if row is None:
            return BlobAccess(None)
        newest: dict[int, int] = {}
        for conv, pos in self.blob_refs.get(sha256, ()):
            newest[conv] = max(newest.get(conv, 0), pos)
        seen = []
        for conv, pos in sorted(newest.items()):
            found = self.convs.get(conv)
            if found is None:
                continue
            kind, a, b, _created = found
            if kind == KIND_DIRECT and uid in (a, b):
                seen.append((conv, pos, 1))
            elif kind == KIND_GROUP:
                g = self.state.groups.get(conv)
                m = g.members.get(uid) if g is not None else None
                if m is not None:
                    seen.append((conv, pos, m.joined_pos))
        return BlobAccess(row[0], (uid, sha256) in self.blob_owners, tuple(seen))

    async def expired_uploads(self, touched_before_ms: int, limit: int) -> list[UploadRow]:
        found = sorted(
            (u for u in self.uploads.values() if u.touched < touched_before_ms),
            key=lambda u: (u.touched, u.id),
        )
        return found[:limit]

    async def collectable_blobs(self, unref_before_ms: int, limit: int) -> list[bytes]:
        found = sorted(
            (row[1], sha)
            for sha, row in self.blob_rows.items()
            if row[1] is not None and row[1] < unref_before_ms
        )
        return [sha for _t, sha in found[:limit]]

    async def collect_blobs(self, hashes: list[bytes], unref_before_ms: int) -> list[bytes]:
        self._check_open()
        gone = []
        for sha in hashes:
            row = self.blob_rows.get(sha)
            if (
                row is None
                or row[1] is None
                or row[1] >= unref_before_ms
                or self.blob_refs.get(sha)
            ):
                continue
            del self.blob_rows[sha]
            self.blob_owners = {(u, h) for u, h in self.blob_owners if h != sha}
            gone.append(sha)
        return gone

    async def known_blobs(self, hashes: list[bytes]) -> set[bytes]:
        return {sha for sha in hashes if sha in self.blob_rows}


def _duplicate(m: MessageRow) -> SendResult:
    """The answer to a retry of a committed send: the original acknowledgement."""
    return SendResult(
        id=m[0], conv=m[1], pos=m[2], ts=m[6], sender_seq=m[4], cmid=m[5], duplicate=True
    )
