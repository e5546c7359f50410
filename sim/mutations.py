"""Bugs this project has had, re-introduced one at a time to prove the simulation finds them.

Each mutation is a monkeypatch applied only for the duration of a run that asks for it
(`SimOptions.mutation`, `python -m liaotian.sim --mutation NAME`); the product code has no
switch for them. tests/sim/test_simulation.py checks that each is caught within a few
seeds; README.md records which seed catches it and how fast.

- `sync-race` (fixed in 7e4c54a): a SYNC page read while a commit for the user lands may
  miss it; a page that comes back empty is answered as caught up (`more: false`) and the
  connection goes live at the new head, so what committed during the read is never sent.
- `half-open-drop`: the fan-out pushes to one connection per device, the oldest, taking a
  push to it as delivered; while a device's old connection is half-open (the server still
  thinks it is live) its new connection gets nothing.
- `cmid-retry`: the store does not recognise a retry of a committed send (only a retry
  within the same batch), so a SEND retried after a lost SENT stores a second message.
- `join-history`: HISTORY of a group ignores the requester's join position: a member added
  at position P sees the timeline before P.
- `batch-removal`: a group send is planned against the group as committed, not as the
  batch has it so far: a member removed at P earlier in the same batch still receives a
  message at a position after P.
- `key-forget`: PAY does not look its idempotency key up, so a retry (another device, a
  lost PAID, a restart) moves the coins again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from liaotian.protocol import ErrorCode, RequestError, Sync, encode_updates_frame
from liaotian.server import fanout
from liaotian.server.chat.ops import Refused, SendRequest, SendResult
from liaotian.server.chat.plan import Plan
from liaotian.server.chat.rules import send, wallet
from liaotian.server.handlers import messaging
from liaotian.server.store import memory


@contextlib.contextmanager
def _patched(obj: Any, name: str, value: Any) -> Iterator[None]:
    saved = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, saved)


# ---------------------------------------------------------------------- sync-race


async def _racy_sync(self: messaging.MessagingHandlers, conn: Any, msg: Sync) -> None:
    """MessagingHandlers.sync as before 7e4c54a, answering an empty page as caught up."""
    if conn.syncing:
        raise RequestError(ErrorCode.BAD_STATE, "a SYNC is already running")
    uid = conn.user_id
    head = max(await self.store.head(uid), conn.head_at_auth)
    if msg.since > head:
        head = max(head, await self.store.committed_head(uid))
    if msg.since > head:
        raise RequestError(ErrorCode.INVALID_CURSOR, f"since {msg.since} is ahead of {head}")
    limit = msg.limit or self.limits.default_sync_page
    conn.syncing = True
    conn.live = False
    try:
        self.store.record_position(uid, conn.device, msg.since)
        page = await self.store.read_updates(uid, msg.since, limit, self._page_bytes)  # once
    finally:
        conn.syncing = False
    committed = self.store.cached_head(uid)
    head = max(committed or 0, page.last_seq)
    more = bool(page.updates) and page.last_seq < head  # the bug: empty means caught up
    if not more:
        self._go_live(conn, head)
    conn.send_frame(
        encode_updates_frame(msg.rid, page.updates, head, more=more), messaging._UPDATES, msg.rid
    )


def sync_race() -> AbstractContextManager[None]:
    return _patched(messaging.MessagingHandlers, "sync", _racy_sync)


# ---------------------------------------------------------------------- half-open-drop


def _one_per_device(of_user: Callable[[int], Sequence[Any]]) -> Callable[[int], list[Any]]:
    def first_of_each_device(uid: int) -> list[Any]:
        seen: set[str] = set()
        out = []
        for c in of_user(uid):  # oldest first
            if c.device not in seen:
                seen.add(c.device)
                out.append(c)
        return out

    return first_of_each_device


@contextlib.contextmanager
def half_open_drop() -> Iterator[None]:
    real_init = fanout.FanOut.__init__

    def init(
        self: fanout.FanOut, sessions: Any, of_user: Any, cached_head: Any, *args: Any
    ) -> None:
        real_init(self, sessions, _one_per_device(of_user), cached_head, *args)

    with _patched(fanout.FanOut, "__init__", init):
        yield


# ---------------------------------------------------------------------- cmid-retry


@contextlib.contextmanager
def cmid_retry() -> Iterator[None]:
    real_publish = memory.MemoryStore._publish

    def publish(self: memory.MemoryStore, batch: Any) -> None:
        real_publish(self, batch)
        self.by_cmid.clear()  # the committed sends' cmids are forgotten

    with _patched(memory.MemoryStore, "_publish", publish):
        yield


# ---------------------------------------------------------------------- join-history


@contextlib.contextmanager
def join_history() -> Iterator[None]:
    real_history = memory.MemoryStore.history

    async def history(
        self: memory.MemoryStore,
        conv: int,
        before: int | None,
        after: int | None,
        limit: int,
        max_bytes: int = 1 << 62,
        min_pos: int = 1,
    ) -> tuple[list[bytes], bool]:
        return await real_history(self, conv, before, after, limit, max_bytes, 1)

    with _patched(memory.MemoryStore, "history", history):
        yield


# ---------------------------------------------------------------------- batch-removal


def _stale_group_send(plan: Plan, s: SendRequest) -> None:
    """rules/send.py's _group_send, reading the group as committed before this batch."""
    from liaotian.protocol import UpdateKind
    from liaotian.protocol.messages import encode_message_map

    assert s.group is not None
    sender = s.sender_id
    committed = getattr(plan, "c", None)
    g = committed.groups.get(s.group) if committed is not None else plan.group_ro(s.group)
    if g is None or sender not in g.members:
        raise Refused(ErrorCode.NOT_MEMBER)
    conv = g.conv
    pos = plan.next_pos(conv)
    mid = plan.new_message_id()
    sseq = plan.next_seq(sender)
    body = encode_message_map(
        mid, conv, pos, s.sender_name, "", plan.ts, s.cmid, s.text, s.meta, group=conv
    )
    plan.add_message(mid, conv, pos, sender, sseq, s.cmid, body)
    plan.add_update(sender, sseq, UpdateKind.MESSAGE, message_id=mid)
    out = []
    for uid in g.members:
        if uid != sender:
            seq = plan.next_seq(uid)
            plan.add_update(uid, seq, UpdateKind.MESSAGE, message_id=mid)
            out.append((uid, seq))
    s.result = SendResult(
        id=mid,
        conv=conv,
        pos=pos,
        ts=plan.ts,
        sender_seq=sseq,
        cmid=s.cmid,
        body=body,
        fanout=tuple(out),
    )


def batch_removal() -> AbstractContextManager[None]:
    return _patched(send, "_group_send", _stale_group_send)


def key_forget() -> AbstractContextManager[None]:
    return _patched(wallet, "answered", lambda plan, op, params: False)


MUTATIONS: dict[str, Callable[[], AbstractContextManager[None]]] = {
    "sync-race": sync_race,
    "half-open-drop": half_open_drop,
    "cmid-retry": cmid_retry,
    "join-history": join_history,
    "batch-removal": batch_removal,
    "key-forget": key_forget,
}


def applied(name: str | None) -> AbstractContextManager[None]:
    """The mutation's patches (none for None)."""
    return MUTATIONS[name]() if name else contextlib.nullcontext()
