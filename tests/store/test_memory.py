"""MemoryStore's own promises beyond the contract: it commits when told (the
simulation drives it), loses only what is not committed in a crash, and is deterministic."""

from __future__ import annotations

from typing import Any

from liaotian.server.chat.ops import CreateGroup, SendRequest, SetPrivacy
from liaotian.server.store.memory import MemoryStore


def send(sender: tuple[int, str], to: str, cmid: str, group: int | None = None) -> SendRequest:
    return SendRequest(
        sender_id=sender[0],
        sender_name=sender[1],
        to_name=to,
        cmid=cmid,
        text=f"text of {cmid}",
        meta={},
        session=7,
        rid=1,
        group=group,
    )


async def scenario() -> tuple[MemoryStore, list[Any]]:
    ticks = iter(range(1_000, 10**9, 10))
    s = MemoryStore(clock=lambda: next(ticks), auto_commit=False)
    await s.open()
    a = (await s.create_user("alice", "h"), "alice")
    b = (await s.create_user("bob", "h"), "bob")
    s.submit(SetPrivacy(actor=b[0], groups="everyone"))
    s.submit(send(a, "bob", "one"))
    s.submit(CreateGroup(actor=a[0], name="g", members=("bob",)))
    answered: list[Any] = []
    s.on_committed = answered.extend
    s.commit()
    s.submit(send(b, "", "two", group=answered[-1].group.conv))
    s.submit(send(a, "bob", "one"))  # a retry
    s.commit()
    return s, answered


async def test_nothing_is_answered_before_commit_and_crash_loses_only_the_queue() -> None:
    s = MemoryStore(auto_commit=False)
    await s.open()
    alice = (await s.create_user("alice", "h"), "alice")
    answered: list[Any] = []
    s.on_committed = answered.extend
    s.submit(send(alice, "alice", "kept"))
    assert answered == [] and len(s.queue) == 1
    s.commit()
    assert answered[0].result.pos == 1
    s.submit(send(alice, "alice", "lost"))
    s.record_position(alice[0], "phone", 1)
    s.crash()
    assert s.queue == [] and s.positions == {}
    assert await s.head(alice[0]) == 1  # the committed state survives
    s.submit(send(alice, "alice", "after"))
    s.commit()
    assert answered[-1].result.pos == 2 and answered[-1].result.sender_seq == 2


async def test_the_same_scenario_gives_the_same_answers() -> None:
    s1, first = await scenario()
    s2, second = await scenario()
    assert [(type(o).__name__, o.error, getattr(o, "result", None)) for o in first] == [
        (type(o).__name__, o.error, getattr(o, "result", None)) for o in second
    ]
    assert first[-1].result.duplicate
    assert first[-2].result.pos == 2  # the group's second position, after its event
    assert s1.logs == s2.logs and s1.messages == s2.messages
