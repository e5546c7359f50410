"""NewsFanOut (handlers/channels.py): posts become coalesced CHANNEL_NEWS frames, encoded
once per channel and interval, written only to online members' connections."""

from __future__ import annotations

import asyncio
from typing import Any

import msgpack
from liaotian.server.chat.ops import CreateChannel, JoinChannel, LeaveChannel, Post
from liaotian.server.handlers.channels import NewsFanOut
from liaotian.server.store.memory import MemoryStore


class Conn:
    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def send_frame(self, frame: bytes, msg_type: int, rid: int = 0) -> None:
        self.frames.append(frame)

    def write_shared(self, frame: bytes, msg_type: int) -> None:
        self.frames.append(frame)

    def flush(self) -> None:
        pass


async def test_posts_are_told_once_per_interval_to_online_members_only() -> None:
    store = MemoryStore(auto_commit=False)
    await store.open()
    ids = [await store.create_user(f"u{i}", "h") for i in range(6)]
    done: list[Any] = []
    store.on_committed = done.extend
    store.submit(CreateChannel(actor=ids[0], name="c"))
    store.commit()
    c = done[-1].state.conv
    for u in ids[1:4]:
        store.submit(JoinChannel(actor=u, channel=c))
    store.commit()
    conns = {u: Conn() for u in ids}
    news = NewsFanOut(store, lambda u: [conns[u]], asyncio.get_running_loop(), interval=0.01)
    for u in ids[:3]:  # u3 is a member but offline; u4, u5 are online non-members
        news.presence(u, True)
    news.presence(ids[4], True)
    await asyncio.sleep(0)  # the channel lists load
    await asyncio.sleep(0)
    posts = [Post(actor=ids[0], channel=c, text=f"p{i}", cmid=str(i)) for i in range(5)]
    for p in posts:
        store.submit(p)
    store.commit()
    news.committed(done[-5:])
    store.submit(LeaveChannel(actor=ids[2], channel=c))
    store.commit()
    news.committed(done[-1:])
    await asyncio.sleep(0.05)
    told = {u: [msgpack.unpackb(f[4:]) for f in conns[u].frames] for u in ids}
    assert told[ids[0]] == told[ids[1]] == [[130, 0, {"channel": c, "pos": 5}]]
    assert told[ids[2]] == told[ids[3]] == told[ids[4]] == told[ids[5]] == []
    assert conns[ids[0]].frames[0] is conns[ids[1]].frames[0]  # encoded once
    assert news.sent == 2
    news.presence(ids[1], False)
    assert ids[1] not in news.online.get(c, set())


async def test_a_big_flush_is_written_over_loop_turns() -> None:
    store = MemoryStore(auto_commit=False)
    await store.open()
    ids = [await store.create_user(f"u{i}", "h") for i in range(7)]
    done: list[Any] = []
    store.on_committed = done.extend
    store.submit(CreateChannel(actor=ids[0], name="c"))
    store.commit()
    c = done[-1].state.conv
    for u in ids[1:]:
        store.submit(JoinChannel(actor=u, channel=c))
    store.commit()
    conns = {u: Conn() for u in ids}
    loop = asyncio.get_running_loop()
    news = NewsFanOut(store, lambda u: [conns[u]], loop, interval=10.0, chunk=3)
    loaded = [loop.create_future() for _ in ids]
    real_watch = news._watch

    def watch(uid: int, conv: int) -> None:
        real_watch(uid, conv)
        loaded[ids.index(uid)].set_result(None)

    news._watch = watch  # type: ignore[method-assign]
    for u in ids:
        news.presence(u, True)
    await asyncio.gather(*loaded)
    store.submit(Post(actor=ids[0], channel=c, text="p", cmid="1"))
    store.commit()
    news.committed(done[-1:])  # the first news after a quiet interval: flushed at once
    assert news._timer is not None and news._timer.when() <= loop.time()
    news._timer.cancel()
    news.flush()
    assert news.sent == 3  # one chunk now, the rest on later loop turns
    turns = 0
    while news.sent < 7:
        await asyncio.sleep(0)
        turns += 1
        assert turns < 10
    assert turns == 2
    assert all(len(conn.frames) == 1 for conn in conns.values())
