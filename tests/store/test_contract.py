"""The store contract (store/contract.py), one suite for every store: SQLite and memory.

Each test drives a store through the operations the handlers submit (chat/ops.py) and the
reads they make, and checks what the contract promises: a send's numbers, retries by
client message id, logs without gaps, group membership history, blocks, receipts, the
chat list, paging; media metadata (blobs, uploads, who may read what, collection). A new
store passes this suite unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, cast

import msgpack
import pytest
from liaotian.protocol import ErrorCode, UpdateKind
from liaotian.server.chat.model import Blob, BlobAccess
from liaotian.server.chat.ops import (
    AddMembers,
    BlockUser,
    CreateGroup,
    LeaveGroup,
    MarkRead,
    RemoveMember,
    SendRequest,
    SetPrivacy,
    UnblockUser,
    UpdateGroup,
)
from liaotian.server.chat.policy import Policy
from liaotian.server.chat.rules.media import may_read
from liaotian.server.store import MediaStore, Store, StoreClosed, UsernameTaken
from liaotian.server.store.memory import MemoryStore
from liaotian.server.store.postgres import PostgresStore
from liaotian.server.store.postgres.scratch import scratch_schema, unreachable
from liaotian.server.store.sqlite import SQLiteStore

OPEN = Policy()


class Answers:
    """The store's on_committed: every answered operation, in commit order."""

    def __init__(self, store: Store) -> None:
        self.ops: list[Any] = []
        self.commits = 0
        self._changed = asyncio.Event()
        store.on_committed = self

    def __call__(self, ops: list[Any]) -> None:
        self.ops += ops
        self.commits += 1
        self._changed.set()

    async def wait_for(self, n: int, timeout: float = 10.0) -> list[Any]:
        async with asyncio.timeout(timeout):
            while len(self.ops) < n:
                self._changed.clear()
                await self._changed.wait()
        return self.ops


class Driver:
    """A store with named users, submitting operations and waiting for their answers."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.answers = Answers(store)
        self.ids: dict[str, int] = {}

    async def users(self, *names: str) -> list[int]:
        for n in names:
            self.ids[n] = await self.store.create_user(n, "hash")
        # anyone may add them to groups (the default privacy lets only contacts)
        await self.run(*[SetPrivacy(actor=self.ids[n], groups="everyone") for n in names])
        return [self.ids[n] for n in names]

    async def run(self, *ops: Any) -> list[Any]:
        """Submit the ops together (one batch, as far as the store goes); their answers."""
        before = len(self.answers.ops)
        for op in ops:
            self.store.submit(op)
        answered = await self.answers.wait_for(before + len(ops))
        return answered[before : before + len(ops)]

    async def one(self, op: Any) -> Any:
        return (await self.run(op))[0]

    def send(
        self,
        sender: str,
        to: str = "",
        text: str = "t",
        cmid: str | None = None,
        group: int | None = None,
    ) -> SendRequest:
        self._n = getattr(self, "_n", 0) + 1
        return SendRequest(
            sender_id=self.ids[sender],
            sender_name=sender,
            to_name=to,
            cmid=cmid or f"c{self._n}",
            text=text,
            meta={},
            session=0,
            rid=self._n,
            group=group,
        )

    async def group(self, owner: str, *members: str) -> int:
        op = await self.one(CreateGroup(actor=self.ids[owner], name="g", members=members))
        assert op.error is None, op.error_message
        return int(op.group.conv)

    async def log(self, name: str, since: int = 0) -> list[tuple[int, int, Any]]:
        """(seq, kind, data map) of a user's log after `since`."""
        page = await self.store.read_updates(self.ids[name], since, 10_000)
        return [tuple(msgpack.unpackb(u)) for u in page.updates]  # type: ignore[misc]

    async def texts(self, name: str) -> list[str]:
        return [
            d.get("text") or d["event"]["type"]
            for _s, k, d in await self.log(name)
            if k == UpdateKind.MESSAGE
        ]


@pytest.fixture(params=["sqlite", "memory", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with AsyncExitStack() as stack:
        s = await make_store(request.param, tmp_path / "contract.db", stack)
        await s.open()
        try:
            yield s
        finally:
            await s.close()


async def make_store(kind: str, path: Path, stack: AsyncExitStack) -> Store:
    """A store of the kind, not yet open; a PostgreSQL one in a schema of its own (dropped
    when `stack` closes), skipped if PostgreSQL cannot be reached."""
    if kind == "sqlite":
        return SQLiteStore(str(path))
    if kind == "memory":
        return MemoryStore()
    reason = unreachable()
    if reason is not None:
        pytest.skip(reason)
    return PostgresStore(await stack.enter_async_context(scratch_schema()))


@pytest.fixture
async def d(store: Store) -> Driver:
    return Driver(store)


# ---------------------------------------------------------------------------- sends


async def test_a_direct_send_is_numbered_and_in_both_logs(d: Driver) -> None:
    alice, bob = await d.users("alice", "bob")
    base_a, base_b = await d.store.head(alice), await d.store.head(bob)
    first, second = await d.run(d.send("alice", "bob", "one"), d.send("bob", "alice", "two"))
    r1, r2 = first.result, second.result
    assert r1.conv == r2.conv and (r1.pos, r2.pos) == (1, 2) and r2.id > r1.id
    assert (r1.sender_seq, r1.recipient_seq) == (base_a + 1, base_b + 1)
    assert r1.recipient_id == bob and not r1.duplicate
    assert await d.texts("bob") == await d.texts("alice") == ["one", "two"]
    assert await d.store.head(bob) == base_b + 2
    assert await d.store.direct_conv(bob, alice) == r1.conv
    assert await d.store.last_pos(r1.conv) == 2
    assert await d.store.conversation(r1.conv) == (1, min(alice, bob), max(alice, bob))
    rows, more = await d.store.history(r1.conv, None, None, 10)
    assert [msgpack.unpackb(b)["text"] for b in rows] == ["one", "two"] and not more
    assert rows[0] == r1.body


async def test_refusals_store_nothing(d: Driver) -> None:
    await d.users("alice")
    unknown = await d.one(d.send("alice", "nobody"))
    assert unknown.error == ErrorCode.UNKNOWN_USER and unknown.result is None
    not_member = await d.one(d.send("alice", group=999))
    assert not_member.error == ErrorCode.NOT_MEMBER
    assert await d.texts("alice") == []


async def test_a_retry_by_cmid_is_answered_as_a_duplicate(d: Driver) -> None:
    await d.users("alice", "bob")
    first, in_batch = await d.run(
        d.send("alice", "bob", "x", cmid="k"), d.send("alice", "bob", "y", cmid="k")
    )
    (later,) = await d.run(d.send("alice", "bob", "z", cmid="k"))
    r = first.result
    for retry in (in_batch.result, later.result):
        assert retry.duplicate and (retry.id, retry.pos, retry.sender_seq) == (
            r.id,
            r.pos,
            r.sender_seq,
        )
    assert await d.texts("bob") == ["x"]
    # another sender may use the same cmid
    await d.users("carol")
    other = await d.one(d.send("carol", "bob", "w", cmid="k"))
    assert not other.result.duplicate


async def test_logs_have_no_gaps_and_heads_match(d: Driver) -> None:
    names = ("alice", "bob", "carol")
    await d.users(*names)
    g = await d.group("alice", "bob")
    ops = []
    for i in range(30):
        ops.append(d.send(names[i % 3], names[(i + 1) % 3], f"m{i}"))
        if i % 5 == 0:
            ops.append(d.send("bob", text=f"g{i}", group=g))
    await d.run(*ops)
    await d.run(
        AddMembers(actor=d.ids["alice"], group=g, users=("carol",)),
        d.send("carol", "alice", "late"),
    )
    for name in names:
        seqs = [s for s, _k, _d in await d.log(name)]
        assert seqs == list(range(1, len(seqs) + 1)), name
        assert await d.store.head(d.ids[name]) == len(seqs)
        assert d.store.cached_head(d.ids[name]) in (None, len(seqs))


async def test_updates_are_paged_by_count_and_size(d: Driver) -> None:
    await d.users("alice", "bob")
    await d.run(*[d.send("alice", "bob", "x" * 1000) for _ in range(5)])
    bob = d.ids["bob"]
    base = (await d.store.read_updates(bob, 0, 100)).last_seq - 5
    page = await d.store.read_updates(bob, base, 2)
    assert page.last_seq == base + 2 and len(page.updates) == 2 and not page.resync
    page = await d.store.read_updates(bob, base, 100, max_bytes=2500)
    assert len(page.updates) == 2 and page.last_seq == base + 2
    page = await d.store.read_updates(bob, base, 100, max_bytes=10)
    assert len(page.updates) == 1  # the first always, whatever its size
    page = await d.store.read_updates(bob, base + 5, 100)
    assert page.updates == [] and page.last_seq == base + 5


async def test_history_pages_both_ways(d: Driver) -> None:
    await d.users("alice", "bob")
    answered = await d.run(*[d.send("alice", "bob", f"m{i}") for i in range(6)])
    conv = answered[0].result.conv

    async def texts(**kw: Any) -> tuple[list[str], bool]:
        rows, more = await d.store.history(
            conv,
            kw.get("before"),
            kw.get("after"),
            kw.get("limit", 10),
            kw.get("max_bytes", 1 << 62),
        )
        return [msgpack.unpackb(b)["text"] for b in rows], more

    assert await texts(limit=2) == (["m4", "m5"], True)
    assert await texts(before=5, limit=2) == (["m2", "m3"], True)
    assert await texts(before=3, limit=5) == (["m0", "m1"], False)
    assert await texts(after=2, limit=2) == (["m2", "m3"], True)
    assert await texts(after=4, limit=5) == (["m4", "m5"], False)


# ---------------------------------------------------------------------------- groups


async def test_group_members_see_history_from_their_join_point(d: Driver) -> None:
    alice, bob, carol = await d.users("alice", "bob", "carol")
    g = await d.group("alice", "bob")
    await d.run(d.send("bob", text="before", group=g))
    added = await d.one(AddMembers(actor=alice, group=g, users=("carol",)))
    assert added.error is None and added.pos == 3
    state = await d.store.group_state(g)
    assert state is not None and state.members[carol].joined_pos == 3
    await d.run(d.send("carol", text="hello", group=g))
    assert await d.texts("carol") == ["added", "hello"]
    assert await d.texts("bob") == ["created", "before", "added", "hello"]
    rows, _ = await d.store.history(g, None, None, 10, min_pos=3)
    assert [msgpack.unpackb(b)["text"] for b in rows] == ["", "hello"]
    assert await d.store.groups_of(carol) == [(g, "g", "", 0, 3)]
    assert d.store.members_hint(g) in (None, 3)
    # leaving: the leaver reads its own event and nothing after it
    left = await d.one(LeaveGroup(actor=bob, group=g))
    assert left.error is None
    refused = await d.one(d.send("bob", text="still?", group=g))
    assert refused.error == ErrorCode.NOT_MEMBER
    await d.run(d.send("alice", text="after", group=g))
    assert (await d.texts("bob"))[-1] == "left"
    assert await d.texts("carol") == ["added", "hello", "left", "after"]
    assert await d.store.groups_of(bob) == []


async def test_a_removal_and_a_send_in_one_batch_keep_their_order(d: Driver) -> None:
    alice, _bob = await d.users("alice", "bob")
    g = await d.group("alice", "bob")
    before, removal, after = await d.run(
        d.send("bob", text="mine", group=g),
        RemoveMember(actor=alice, group=g, user="bob"),
        d.send("bob", text="too late", group=g),
    )
    assert before.result is not None and removal.error is None
    assert after.error == ErrorCode.NOT_MEMBER
    assert await d.texts("bob") == ["created", "mine", "removed"]


async def test_a_refused_op_leaves_nothing_of_itself_in_its_batch(d: Driver) -> None:
    """A rule refused after it changed the batch's state (here by the write budget, the
    last step of a plan) is undone whole, even on state an earlier op of the batch
    changed: the group stays as the op before it left it."""

    class NoRows:
        def take_rows(self, uid: int, rows: int) -> float | None:
            return 2.0

        def refund_rows(self, uid: int, rows: int) -> None:
            pass

    alice, _bob, carol = await d.users("alice", "bob", "carol")
    g = await d.group("alice", "bob")
    renamed, first, refused, third = await d.run(
        UpdateGroup(actor=alice, group=g, name="renamed"),  # the batch's copy of the group
        d.send("alice", text="x", group=g),
        AddMembers(actor=alice, group=g, users=("carol",), policy=Policy(budget=NoRows())),
        d.send("alice", text="y", group=g),
    )
    assert renamed.error is None
    assert refused.error == ErrorCode.RATE_LIMITED and refused.error_retry_after == 2.0
    # carol got nothing, bob's log no event: the next entry follows the first send's
    assert [(u, seq - 1) for u, seq in third.result.fanout] == list(first.result.fanout)
    state = await d.store.group_state(g)
    assert state is not None and carol not in state.members and state.name == "renamed"
    assert await d.texts("carol") == []
    assert third.result.pos == first.result.pos + 1  # no position was used
    (later,) = await d.run(d.send("alice", text="z", group=g))
    assert [u for u, _ in later.result.fanout] == [u for u, _ in first.result.fanout]


# ---------------------------------------------------------------------------- blocking


async def test_a_blocked_user_cannot_message_until_unblocked(d: Driver) -> None:
    alice, mallory = await d.users("alice", "mallory")
    blocked = await d.one(BlockUser(actor=alice, user="mallory"))
    assert blocked.error is None
    assert (await d.store.social_of(alice)).blocked == {mallory}
    refused = await d.one(d.send("mallory", "alice", "hi"))
    assert refused.error == ErrorCode.NOT_ALLOWED
    assert await d.texts("alice") == []
    await d.one(UnblockUser(actor=alice, user="mallory"))
    allowed = await d.one(d.send("mallory", "alice", "hi again"))
    assert allowed.result is not None
    assert await d.texts("alice") == ["hi again"]


# ---------------------------------------------------------------------------- receipts


async def test_read_markers_and_delivered_positions(d: Driver) -> None:
    alice, bob = await d.users("alice", "bob")
    await d.one(SetPrivacy(actor=bob, receipts="everyone"))
    answered = await d.run(*[d.send("alice", "bob", f"m{i}") for i in range(3)])
    conv = answered[0].result.conv
    read = await d.one(MarkRead(actor=bob, conv=conv, read_pos=2, peer=alice))
    assert read.error is None
    assert await d.store.read_marker(bob, conv) == 2
    assert await d.store.read_markers(conv) == {bob: 2}
    reads = [data for _s, k, data in await d.log("alice") if k == UpdateKind.READ]
    assert reads == [{"conv": conv, "user": "bob", "pos": 2}]
    beyond = await d.one(MarkRead(actor=bob, conv=conv, read_pos=9, peer=alice))
    assert beyond.error == ErrorCode.INVALID_FIELD
    # delivered: what bob's devices acknowledged of his log
    assert await d.store.delivered_pos(bob, conv) == 0
    assert await d.store.set_device_token(bob, "phone", b"p" * 32) == 0
    second = answered[1].result
    d.store.record_position(bob, "phone", second.recipient_seq)
    assert await d.store.delivered_pos(bob, conv) == second.pos
    await d.store.drain()
    assert await d.store.delivered_pos(bob, conv) == second.pos
    assert (await d.store.device(bob, "phone")).acked == second.recipient_seq


# ---------------------------------------------------------------------------- chat list


async def test_the_chat_list_is_newest_first_and_pages(d: Driver) -> None:
    alice, _bob, _carol = await d.users("alice", "bob", "carol")
    g = await d.group("alice", "bob")
    direct = (await d.one(d.send("carol", "alice", "c1"))).result.conv
    await d.run(d.send("bob", text="g1", group=g))
    rows = await d.store.conversations_of(alice, 10, None)
    assert [r[0] for r in rows] == sorted(
        [g, direct], key=lambda c: [r[0] for r in rows].index(c)
    )  # well-formed
    by_conv = {r[0]: r for r in rows}
    assert set(by_conv) == {g, direct}
    _conv, kind, peer, name, _ts, body, last_pos, read_pos, joined = by_conv[g]
    assert (kind, peer, name, last_pos, read_pos, joined) == (2, None, "g", 2, 0, 1)
    assert msgpack.unpackb(body)["text"] == "g1"
    _conv, kind, peer, name, _ts, body, last_pos, read_pos, joined = by_conv[direct]
    assert (kind, peer, name, last_pos, joined) == (1, d.ids["carol"], None, 1, 1)
    keys = [(r[4], r[0]) for r in rows]
    assert keys == sorted(keys, reverse=True)
    page = await d.store.conversations_of(alice, 1, None)
    assert len(page) == 2 and page[0][0] == rows[0][0]  # limit + 1 tells there is more
    rest = await d.store.conversations_of(alice, 1, keys[0])
    assert [r[0] for r in rest] == [rows[1][0]]
    # unread: messages after the marker, not one's own, events excluded
    assert await d.store.unread_count(alice, g, 0) == 1
    assert await d.store.unread_count(d.ids["bob"], g, 0) == 0
    assert await d.store.unread_count(alice, direct, 0, cap=5) == 1


async def test_the_chat_list_follows_membership(d: Driver) -> None:
    """A group leaves a member's chat list with the membership, even when the removal's
    event (delivered to the removed member too) or later messages share its commit, and
    comes back on a new joining."""
    alice, bob = await d.users("alice", "bob")
    g = await d.group("alice", "bob")
    await d.run(d.send("alice", text="before", group=g))
    assert [r[0] for r in await d.store.conversations_of(bob, 10, None)] == [g]
    removed, after = await d.run(
        RemoveMember(actor=alice, group=g, user="bob"), d.send("alice", text="after", group=g)
    )
    assert removed.error is None and after.error is None
    assert await d.store.conversations_of(bob, 10, None) == []
    assert [r[0] for r in await d.store.conversations_of(alice, 10, None)] == [g]
    added = await d.one(AddMembers(actor=alice, group=g, users=("bob",)))
    assert added.error is None
    rows = await d.store.conversations_of(bob, 10, None)
    assert [r[0] for r in rows] == [g] and rows[0][8] > 1  # joined again, later
    left = await d.one(LeaveGroup(actor=bob, group=g))
    assert left.error is None
    assert await d.store.conversations_of(bob, 10, None) == []


async def test_the_chat_list_orders_by_the_last_message_of_each_commit(d: Driver) -> None:
    """Many messages to several conversations in one commit: each conversation's key is
    its newest message, pages follow it, and the last body is the newest."""
    alice, *_ = await d.users("alice", "bob", "carol", "dave")
    convs = {}
    for peer in ("bob", "carol", "dave"):
        convs[peer] = (await d.one(d.send(peer, "alice", f"{peer} first"))).result.conv
    await d.run(*[d.send(p, "alice", f"{p} {i}") for i in range(5) for p in ("dave", "bob")])
    rows = await d.store.conversations_of(alice, 10, None)
    keys = [(r[4], r[0]) for r in rows]
    assert keys == sorted(keys, reverse=True) and len(rows) == 3
    by_conv = {r[0]: r for r in rows}
    assert msgpack.unpackb(by_conv[convs["bob"]][5])["text"] == "bob 4"
    assert by_conv[convs["dave"]][6] == 6 and by_conv[convs["carol"]][6] == 1
    seen, before = [], None
    while True:
        page = await d.store.conversations_of(alice, 1, before)
        seen.append(page[0][0])
        if len(page) == 1:
            break
        before = (page[0][4], page[0][0])
    assert seen == [r[0] for r in rows]


async def test_delivered_positions_with_unacknowledged_entries(d: Driver) -> None:
    """The delivered position is the newest acknowledged entry of that conversation, also
    when newer entries (of it and of other conversations) wait unacknowledged."""
    alice, bob, carol = await d.users("alice", "bob", "carol")
    assert await d.store.set_device_token(bob, "phone", b"p" * 32) == 0
    first = (await d.one(d.send("alice", "bob", "a1"))).result
    await d.one(d.send("carol", "bob", "c1"))
    second = (await d.one(d.send("alice", "bob", "a2"))).result
    await d.run(*[d.send("carol", "bob", f"c{i}") for i in range(2, 6)])
    third = (await d.one(d.send("alice", "bob", "a3"))).result
    conv = first.conv
    assert await d.store.delivered_pos(bob, conv) == 0
    d.store.record_position(bob, "phone", first.recipient_seq)
    assert await d.store.delivered_pos(bob, conv) == first.pos
    d.store.record_position(bob, "phone", second.recipient_seq + 2)  # among carol's
    assert await d.store.delivered_pos(bob, conv) == second.pos
    await d.store.drain()
    assert await d.store.delivered_pos(bob, conv) == second.pos
    d.store.record_position(bob, "phone", third.recipient_seq)
    assert await d.store.delivered_pos(bob, conv) == third.pos == 3
    assert await d.store.delivered_pos(alice, conv) == 0  # alice has no device
    assert await d.store.delivered_pos(carol, conv) == 0  # not hers


# ---------------------------------------------------------------------------- accounts


async def test_accounts_and_devices(d: Driver) -> None:
    alice = await d.store.create_user("alice", "h1")
    with pytest.raises(UsernameTaken):
        await d.store.create_user("alice", "h2")
    assert await d.store.user_id("alice") == alice and d.store.known_user("alice") in (True, False)
    user = await d.store.user_by_name("alice")
    assert user is not None and (user.id, user.password_hash) == (alice, "h1")
    assert await d.store.user_by_name("nobody") is None
    assert await d.store.set_device_token(alice, "d1", b"t" * 32, max_devices=1) == 0
    assert await d.store.set_device_token(alice, "d2", b"u" * 32, max_devices=1) is None
    found = await d.store.device_by_token(b"t" * 32)
    assert found is not None and found[1].device == "d1"
    assert await d.store.set_device_token(alice, "d1", b"v" * 32) == 0  # re-key
    assert await d.store.device_by_token(b"t" * 32) is None
    assert [x.device for x in await d.store.devices_of(alice)] == ["d1"]
    assert await d.store.delete_device(alice, "d1") is True
    assert await d.store.delete_device(alice, "d1") is False
    await d.store.set_profile(alice, "Alice", None)
    assert (await d.store.profile(alice))[:2] == ("Alice", "")
    assert await d.store.usernames([alice, 999]) == {alice: "alice"}


async def test_writes_after_close_are_refused(store: Store) -> None:
    await store.close()
    with pytest.raises(StoreClosed):
        store.submit(
            SendRequest(
                sender_id=1,
                sender_name="a",
                to_name="b",
                cmid="c",
                text="",
                meta={},
                session=0,
                rid=1,
            )
        )
    with pytest.raises(StoreClosed):
        await store.create_user("late", "h")
    await store.open()  # the fixture closes it again


# ---------------------------------------------------------------------------- media


def _blob(n: int, size: int = 100, info: dict[str, Any] | None = None) -> Blob:
    return Blob(
        sha256=bytes([n]) * 32, size=size, media_type="text/plain", info=info or {}, created=1_000
    )


def _media(d: Driver) -> MediaStore:
    return cast(MediaStore, d.store)


def media_send(
    d: Driver, sender: str, blob: Blob, to: str = "", group: int | None = None
) -> SendRequest:
    s = d.send(sender, to, text="caption", group=group)
    s.media = {"kind": "file", "blob": blob.sha256, "size": blob.size, "type": blob.media_type}
    s.blob_refs = (blob.sha256,)
    return s


async def _seen(d: Driver, name: str, blob: Blob) -> bool:
    return may_read(await _media(d).blob_access(d.ids[name], blob.sha256))


async def test_media_byte_budgets_are_stored_per_user(d: Driver) -> None:
    from liaotian.server.store.contract import BudgetRow

    alice, bob = await d.users("alice", "bob")
    m = _media(d)
    assert await m.media_budget(alice) is None
    await m.save_media_budgets([BudgetRow(alice, 10, 1_000, 20, 2_000)])
    await m.save_media_budgets([])
    assert await m.media_budget(alice) == BudgetRow(alice, 10, 1_000, 20, 2_000)
    assert await m.media_budget(bob) is None
    big = 1 << 40  # bytes left can be above 2**31
    await m.save_media_budgets(
        [BudgetRow(alice, big, 3_000, 0, 3_000), BudgetRow(bob, 1, 4_000, 2, 5_000)]
    )
    assert await m.media_budget(alice) == BudgetRow(alice, big, 3_000, 0, 3_000)
    assert await m.media_budget(bob) == BudgetRow(bob, 1, 4_000, 2, 5_000)


async def test_an_upload_is_begun_resumed_and_completed(d: Driver) -> None:
    alice, bob = await d.users("alice", "bob")
    m, b = _media(d), _blob(1)
    state = await m.uploader(alice, b.sha256, b.size)
    assert (state.stored, state.upload, state.active) == (None, None, 0)
    up = await m.create_upload(alice, b.sha256, b.size, "text/plain", "a.txt", 16384, 5_000)
    assert (up.user_id, up.sha256, up.size, up.name, up.chunk_size) == (
        alice,
        b.sha256,
        b.size,
        "a.txt",
        16384,
    )
    again = await m.create_upload(alice, b.sha256, b.size, "text/plain", "b.txt", 32768, 6_000)
    assert again == up  # one unfinished upload per user and content
    assert (await m.uploader(alice, b.sha256, b.size)).upload == up
    assert (await m.uploader(alice, b.sha256, b.size + 1)).upload is None  # another size
    assert (await m.uploader(bob, b.sha256, b.size)).upload is None  # another user
    await m.touch_upload(up.id, 7_000)
    touched = await m.upload(up.id)
    assert touched is not None and touched.touched == 7_000
    assert [u.id for u in await m.expired_uploads(7_001, 10)] == [up.id]
    assert await m.expired_uploads(7_000, 10) == []
    thumb = _blob(2, 10)
    await m.complete_upload(up.id, alice, [b, thumb], 8_000)
    assert await m.upload(up.id) is None
    state = await m.uploader(alice, b.sha256, b.size)
    assert state.stored == b and state.upload is None and state.active == 0
    assert (await m.uploader(bob, b.sha256, b.size)).stored is None  # no cross-user oracle
    assert await m.blob(b.sha256) == b and await m.blob(thumb.sha256) == thumb
    assert await m.known_blobs([b.sha256, bytes(32)]) == {b.sha256}
    assert await _seen(d, "alice", b) and await _seen(d, "alice", thumb)
    assert not await _seen(d, "bob", b)
    assert await m.delete_upload(up.id) is False
    # an upload id is never given out again (partial files are named by it)
    other = await m.create_upload(alice, bytes(32), 5, "a/b", "", 16384, 9_000)
    assert other.id > up.id
    assert await m.delete_upload(other.id) is True
    last = await m.create_upload(alice, bytes(32), 5, "a/b", "", 16384, 9_001)
    assert last.id > other.id


async def test_a_blob_is_readable_by_the_readers_of_messages_referencing_it(d: Driver) -> None:
    alice, bob, carol, dave = await d.users("alice", "bob", "carol", "dave")
    m, b, g_blob = _media(d), _blob(3), _blob(4)
    for blob in (b, g_blob):
        up = await m.create_upload(alice, blob.sha256, blob.size, "text/plain", "", 16384, 1)
        await m.complete_upload(up.id, alice, [blob], 2)
    assert await m.blob_access(bob, bytes(32)) == BlobAccess(None)
    assert not await _seen(d, "bob", b)
    sent = await d.one(media_send(d, "alice", b, to="bob"))
    assert sent.error is None
    (_, _, data) = (await d.log("bob"))[-1]
    assert data["media"]["blob"] == b.sha256 and data["text"] == "caption"
    assert await _seen(d, "bob", b) and not await _seen(d, "carol", b)
    # a group: members from their join point on, never after leaving or removal
    g = await d.group("alice", "bob", "carol")
    await d.run(media_send(d, "alice", g_blob, group=g))
    added = await d.one(AddMembers(actor=alice, group=g, users=("dave",)))
    assert added.error is None
    assert await _seen(d, "carol", g_blob) and not await _seen(d, "dave", g_blob)
    removed = await d.one(RemoveMember(actor=alice, group=g, user="carol"))
    assert removed.error is None
    assert not await _seen(d, "carol", g_blob)
    assert await _seen(d, "bob", g_blob)
    await d.run(media_send(d, "bob", g_blob, group=g))  # shared again: now dave sees it
    assert await _seen(d, "dave", g_blob)
    access = await m.blob_access(dave, g_blob.sha256)
    assert access.blob == g_blob and not access.owner and len(access.seen) == 1
    assert carol and bob


async def test_only_unreferenced_blobs_are_collected(d: Driver) -> None:
    alice, _bob = await d.users("alice", "bob")
    m, kept, lone = _media(d), _blob(5), _blob(6)
    for blob in (kept, lone):
        up = await m.create_upload(alice, blob.sha256, blob.size, "text/plain", "", 16384, 1)
        await m.complete_upload(up.id, alice, [blob], 10_000)
    assert sorted(await m.collectable_blobs(10_001, 10)) == sorted([kept.sha256, lone.sha256])
    assert await m.collectable_blobs(10_000, 10) == []  # not yet past the grace
    await d.run(media_send(d, "alice", kept, to="bob"))
    assert await m.collectable_blobs(10_001, 10) == [lone.sha256]
    assert await m.collect_blobs([kept.sha256], 10_001) == []  # referenced: never
    # an upload of the same content again restarts the clock of an unreferenced blob
    up = await m.create_upload(alice, lone.sha256, lone.size, "text/plain", "", 16384, 11_000)
    await m.complete_upload(up.id, alice, [lone], 12_000)
    assert await m.collect_blobs([lone.sha256], 11_000) == []
    assert await m.collect_blobs([lone.sha256], 12_001) == [lone.sha256]
    assert await m.blob(lone.sha256) is None
    assert (await m.uploader(alice, lone.sha256, lone.size)).stored is None
    assert await m.blob(kept.sha256) == kept
