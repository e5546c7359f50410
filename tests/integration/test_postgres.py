"""A real server on PostgreSQL (issue 17): two clients over real sockets chat one to one
and in a group; the server stops and starts again on the same database; a client that
was away resumes from its acknowledged position and gets what it missed exactly once,
in order. Skipped when no PostgreSQL answers (CI has one)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from liaotian.protocol import CloseCode, UpdateKind
from liaotian.server.ops.admin import AdminError
from liaotian.server.ops.health import check
from liaotian.server.ops.metrics import registry_for
from liaotian.server.store.postgres.scratch import scratch_schema, unreachable
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from socialclient import Net, event_of, messages_of, social_server


@pytest.fixture
async def net(tmp_path: Path) -> AsyncIterator[Net]:
    reason = unreachable()
    if reason is not None:
        pytest.skip(reason)
    async with scratch_schema() as url, social_server(tmp_path, db_url=url) as n:
        yield n


async def test_chat_restart_and_resume_on_postgres(net: Net) -> None:
    await net.register("carol")
    alice, bob = await net.users("alice", "bob")
    assert type(net.srv.server.store).__name__ == "PostgresStore"  # type: ignore[union-attr]

    # one to one, both ways
    s1 = await alice.send("bob", "hello bob")
    m = await bob.message()
    assert (m.id, m.text, m.pos) == (s1.id, "hello bob", 1)
    s2 = await bob.send("alice", "hi alice")
    assert (await alice.message()).id == s2.id

    # a group of three; carol is offline
    info = await alice.create_group("team", ["bob", "carol"])
    await alice.event("created")
    await bob.event("created")
    g1 = await bob.gsend(info.group, "team, hello")
    assert (await alice.message()).id == g1.id

    # bob acknowledges everything so far and leaves
    head = (await bob.log_entries())[-1].seq
    await bob.ack(head)
    await bob.barrier()
    token = bob.token
    await bob.close()

    await net.srv.restart()
    await alice.expect_close(CloseCode.GOING_AWAY)

    # after the restart, alice writes to bob and to the group while bob is away
    alice = await net.user("alice")
    missed = [
        await alice.send("bob", "while you were away"),
        await alice.gsend(info.group, "group, while bob was away"),
        await alice.send("bob", "and one more"),
    ]
    assert [s.seq for s in missed] == sorted(s.seq for s in missed)

    # bob resumes from his stored position: exactly the missed entries, once, in order
    bob = await net.anonymous()
    auth = await bob.auth(token)
    assert auth.acked == head and auth.head == head + len(missed)
    got = messages_of(await bob.sync_all(auth.acked))
    assert [u.seq for u in got] == list(range(head + 1, head + 1 + len(missed)))
    assert [u.message.id for u in got if u.message] == [s.id for s in missed]
    await bob.assert_no_push()

    # carol, never connected before, reads the group's whole timeline once
    carol = await net.user("carol", sync=False)
    log = await carol.log_entries()
    assert all(u.kind == UpdateKind.MESSAGE for u in log)
    msgs = [u.message for u in log if u.message]
    assert event_of(msgs[0])["type"] == "created"
    assert [m.text for m in msgs[1:]] == ["team, hello", "group, while bob was away"]
    assert [u.seq for u in log] == [1, 2, 3]

    # and the numbering went on where it stopped: history shows every message once
    full = await alice.full_history("bob")
    assert [x.text for x in full] == [
        "hello bob",
        "hi alice",
        "while you were away",
        "and one more",
    ]
    assert [x.pos for x in full] == [1, 2, 3, 4]


async def test_health_and_metrics_on_postgres(net: Net) -> None:
    alice, bob = await net.users("alice", "bob")
    await alice.send("bob", "counted")
    await bob.message()
    line = await asyncio.to_thread(check, net.srv.host, net.srv.port)
    assert line
    assert net.srv.server is not None
    text = generate_latest(registry_for(net.srv.server)).decode()
    samples = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples["liaotian_messages_committed_total"] == 1
    assert samples["liaotian_commits_total"] >= 1
    assert samples["liaotian_commits_replanned_total"] == 0  # one server alone


async def test_admin_on_postgres_refuses_only_sqlite_file_commands(net: Net) -> None:
    await net.users("alice")
    srv = net.srv.server
    assert srv is not None
    admin = srv.ops.admin
    status = await admin.status({})
    assert status["accounts"] == 1 and status["database"].startswith("postgresql://")
    for command, args in (("checkpoint", {}), ("backup", {"dest": "/tmp/never.db"})):
        with pytest.raises(AdminError, match="pg_dump"):
            await getattr(admin, command)(args)
