"""The client library, CLI and bot against a real server (liaotian.server.testing).

Every wait is for an event (a message, a state change, a process line) under a generous
timeout; nothing sleeps and hopes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from liaotian.client import (
    Bot,
    CaughtUp,
    Client,
    ClientConnection,
    CloseCode,
    ConnectionClosed,
    Context,
    Disconnected,
    ErrorCode,
    FileStore,
    MemoryStore,
    MessageReceived,
    Reconnected,
    RequestError,
    SessionState,
    connect,
    register,
)
from liaotian.protocol import Message, Sent
from liaotian.server.testing import RunningServer, run_server

WAIT = 15.0  # seconds: generous upper bound for any single expected event
PASSWORD = "correct horse battery"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with run_server(tmp_path) as srv:
        yield srv


async def make_users(srv: RunningServer, *names: str) -> None:
    for name in names:
        assert await register(srv.host, srv.port, name, PASSWORD) == name


def client(srv: RunningServer, user: str, **options: Any) -> Client:
    options.setdefault("password", PASSWORD)
    return Client(srv.host, srv.port, username=user, **options)


async def next_message(c: Client, timeout: float = WAIT) -> MessageReceived:
    """The next MessageReceived, skipping connection state events."""
    async with asyncio.timeout(timeout):
        async for event in c:
            if isinstance(event, MessageReceived):
                return event
    raise AssertionError("event stream ended")


async def next_event(c: Client, timeout: float = WAIT) -> Any:
    return await asyncio.wait_for(c.__anext__(), timeout)


async def caught_up(c: Client) -> CaughtUp:
    """The next event, which must be CaughtUp (a (re)connect's SYNC reached the head)."""
    event = await next_event(c)
    assert isinstance(event, CaughtUp), event
    return event


async def messages(c: Client, n: int) -> list[str]:
    return [(await next_message(c)).message.text for _ in range(n)]


# ---------------------------------------------------------------------- basics


async def test_register_login_send_receive(server: RunningServer) -> None:
    await make_users(server, "alice", "bob")
    with pytest.raises(RequestError) as exc:
        await register(server.host, server.port, "alice", PASSWORD)
    assert exc.value.code == ErrorCode.USERNAME_TAKEN
    async with client(server, "alice") as alice, client(server, "bob") as bob:
        assert alice.user == "alice" and alice.connected and alice.token
        sent = await alice.send("bob", "hello bob", meta={"k": 1})
        assert isinstance(sent, Sent) and not sent.duplicate and sent.pos == 1
        got = await next_message(bob)
        m = got.message
        assert (m.sender, m.to, m.text, m.meta, m.cmid, m.pos) == (
            "alice",
            "bob",
            "hello bob",
            {"k": 1},
            sent.cmid,
            1,
        )
        await bob.send("alice", "hi alice")
        assert (await next_message(alice)).message.text == "hi alice"
        page = await bob.history("alice")
        assert [x.text for x in page.messages] == ["hello bob", "hi alice"]
        assert not page.more
        older = await bob.history("alice", before=2)
        assert [x.text for x in older.messages] == ["hello bob"]
        devices = await alice.devices()
        assert [d.device for d in devices] == ["default"] and devices[0].online
        with pytest.raises(RequestError) as exc:
            await alice.send("nobody", "x")
        assert exc.value.code == ErrorCode.UNKNOWN_USER
        with pytest.raises(RequestError) as exc:
            await alice.history("nobody")
        assert exc.value.code == ErrorCode.UNKNOWN_USER


async def test_connect_helper_and_bad_credentials(server: RunningServer) -> None:
    await make_users(server, "alice")
    async with connect(
        server.host, server.port, username="alice", password=PASSWORD, device="laptop"
    ) as c:
        assert c.device == "laptop"
    assert c.closed
    with pytest.raises(RequestError) as exc:
        await connect(server.host, server.port, username="alice", password="wrong password")
    assert exc.value.code == ErrorCode.BAD_CREDENTIALS
    with pytest.raises(OSError):
        await connect("127.0.0.1", 1, username="alice", password=PASSWORD)


async def test_delivery_order_through_async_for(server: RunningServer) -> None:
    await make_users(server, "alice", "bob")
    n = 300
    async with client(server, "alice") as alice, client(server, "bob") as bob:
        # Concurrent sends: the log order is the commit order, which SENT.seq reveals.
        results = await asyncio.gather(*(alice.send("bob", f"m{i}") for i in range(n)))
        by_pos = [r.cmid for r in sorted(results, key=lambda r: r.pos)]
        got = [await next_message(bob) for _ in range(n)]
        assert [g.message.cmid for g in got] == by_pos
        seqs = [g.seq for g in got]
        assert seqs == sorted(seqs) and len(set(seqs)) == n
        assert [g.message.pos for g in got] == list(range(1, n + 1))


async def test_backlog_is_synced_on_connect(server: RunningServer) -> None:
    """initial_sync="all" replays the whole log; "new" starts at the head."""
    await make_users(server, "alice", "bob")
    async with client(server, "alice") as alice:
        for i in range(5):
            await alice.send("bob", f"old{i}")
    async with (
        client(server, "bob", device="phone", initial_sync="new") as bob_new,
        client(server, "bob", device="laptop") as bob_all,
    ):
        assert await messages(bob_all, 5) == [f"old{i}" for i in range(5)]
        async with client(server, "alice") as alice:
            await alice.send("bob", "fresh")
        assert (await next_message(bob_new)).message.text == "fresh"
        assert (await next_message(bob_all)).message.text == "fresh"


async def test_large_messages_page_by_more_not_by_length(server: RunningServer) -> None:
    """20 messages of 60 KB: pages are cut by size (a frame is at most 1 MiB), and the client
    keeps asking while `more` says so, for SYNC and for HISTORY."""
    await make_users(server, "alice", "bob")
    texts = [chr(ord("a") + i) * 60_000 for i in range(20)]
    async with client(server, "alice") as alice:
        for t in texts:
            await alice.send("bob", t)
    async with client(server, "bob") as bob:
        assert await messages(bob, 20) == texts
        collected: list[str] = []
        before = None
        while True:
            page = await bob.history("alice", before=before, limit=200)
            collected[:0] = [m.text for m in page.messages]
            if not page.more:
                break
            before = page.messages[0].pos
        assert collected == texts


async def test_own_sends_reach_other_devices_only(server: RunningServer) -> None:
    await make_users(server, "alice", "bob")
    async with (
        client(server, "alice", device="a1") as a1,
        client(server, "alice", device="a2") as a2,
    ):
        sent = await a1.send("bob", "from a1")
        echo = await next_message(a2)
        assert echo.message.sender == "alice" and echo.message.cmid == sent.cmid
        await a1.send("alice", "note to self")  # one conversation with oneself
        assert (await next_message(a2)).message.text == "note to self"
        await a2.send("bob", "marker")
        assert (await next_message(a1)).message.text == "marker"  # nothing of its own before


# ---------------------------------------------------------------------- reconnects


async def test_restart_with_a_recipient_offline_is_exactly_once(
    server: RunningServer, tmp_path: Path
) -> None:
    await make_users(server, "alice", "bob")
    bob_store = FileStore(tmp_path / "bob.json")
    async with client(server, "alice") as alice:
        async with client(server, "bob", store=bob_store) as bob:
            await alice.send("bob", "one")
            assert (await next_message(bob)).message.text == "one"
        # bob is offline now; alice keeps writing, across a server restart.
        await alice.send("bob", "two")
        assert await caught_up(alice) == CaughtUp(0)  # her first connect: an empty log
        restart = asyncio.ensure_future(server.restart())
        assert isinstance(await next_event(alice), Disconnected)
        await asyncio.wait_for(restart, WAIT)
        assert await caught_up(alice) == CaughtUp(2)  # her own two sends
        assert isinstance(await next_event(alice), Reconnected)
        await alice.send("bob", "three")
        async with client(server, "bob", store=bob_store) as bob:
            assert await messages(bob, 2) == ["two", "three"]
            await alice.send("bob", "four")
            assert (await next_message(bob)).message.text == "four"
            page = await bob.history("alice")
            assert [m.text for m in page.messages] == ["one", "two", "three", "four"]


async def test_restart_with_both_online_and_sends_during_the_outage(server: RunningServer) -> None:
    await make_users(server, "alice", "bob")
    async with client(server, "alice") as alice, client(server, "bob") as bob:
        await alice.send("bob", "before")
        await caught_up(alice)
        await server.stop()
        assert isinstance(await next_event(alice), Disconnected)
        # Sends made while the server is down wait for the reconnect.
        pending = [asyncio.ensure_future(alice.send("bob", f"during{i}")) for i in range(3)]
        await asyncio.sleep(0)
        assert not any(p.done() for p in pending)
        await server.start()
        sent = await asyncio.wait_for(asyncio.gather(*pending), WAIT)
        assert sorted(s.pos for s in sent) == [2, 3, 4]
        await alice.send("bob", "after")
        texts = []
        while len(texts) < 5:
            ev = await next_event(bob)
            if isinstance(ev, MessageReceived):
                texts.append(ev.message.text)
        assert texts[0] == "before" and texts[-1] == "after"
        assert sorted(texts[1:4]) == ["during0", "during1", "during2"]
        assert bob.connected and alice.connected


async def test_send_whose_sent_was_lost_returns_once(server: RunningServer) -> None:
    """The server stores the message but the connection dies before SENT arrives: after
    the reconnect the SYNC finds the entry and answers the send; one copy is delivered."""
    await make_users(server, "alice", "bob")
    alice = client(server, "alice")
    lost: list[Sent] = []
    original = alice._session._on_message

    def drop_first_sent(conn: ClientConnection, msg: Message) -> bool:
        if isinstance(msg, Sent) and not lost:
            lost.append(msg)
            conn.abort()  # the SENT never reaches send(); the connection is gone
            return True
        return original(conn, msg)

    alice._session._on_message = drop_first_sent  # type: ignore[method-assign]
    async with alice, client(server, "bob") as bob:
        sent = await asyncio.wait_for(alice.send("bob", "exactly once", cmid="cm-1"), WAIT)
        assert lost and lost[0].cmid == "cm-1" and sent.duplicate
        assert (sent.cmid, sent.id, sent.seq, sent.pos) == (
            "cm-1",
            lost[0].id,
            lost[0].seq,
            lost[0].pos,
        )
        assert (await next_message(bob)).message.text == "exactly once"
        await alice.send("bob", "next")
        assert (await next_message(bob)).message.text == "next"  # no second copy before it
        page = await bob.history("alice")
        assert [m.text for m in page.messages] == ["exactly once", "next"]


async def test_sends_in_flight_when_the_connection_drops_are_delivered_once(
    server: RunningServer,
) -> None:
    """Ten sends are written, then the connection is cut before their answers (the server
    may or may not have stored them), and ten more are made while it is down. Each send()
    returns exactly once, and bob gets each message once."""
    await make_users(server, "alice", "bob")
    async with client(server, "alice") as alice, client(server, "bob") as bob:
        tasks = [asyncio.ensure_future(alice.send("bob", f"m{i}")) for i in range(10)]
        for _ in range(5):  # let the SEND frames reach the socket
            await asyncio.sleep(0)
        assert alice._session.conn is not None
        alice._session.conn.abort()
        assert not alice.connected
        tasks += [asyncio.ensure_future(alice.send("bob", f"m{i}")) for i in range(10, 20)]
        results = await asyncio.wait_for(asyncio.gather(*tasks), WAIT)
        assert len({r.id for r in results}) == 20
        assert not any(r.duplicate for r in results[10:])  # first sent after the reconnect
        got = [await next_message(bob) for _ in range(20)]
        assert sorted(g.message.text for g in got) == sorted(f"m{i}" for i in range(20))
        assert [g.message.pos for g in got] == list(range(1, 21))
        await alice.send("bob", "end")
        assert (await next_message(bob)).message.text == "end"  # nothing repeated before it


async def test_send_retried_without_sync_gets_the_servers_duplicate(server: RunningServer) -> None:
    """Same loss, on a client that does not sync: it resends the same cmid and the server
    answers duplicate=true; still one copy."""
    await make_users(server, "alice", "bob")
    alice = client(server, "alice", sync=False)
    lost: list[Sent] = []
    original = alice._session._on_message

    def drop_first_sent(conn: ClientConnection, msg: Message) -> bool:
        if isinstance(msg, Sent) and not lost:
            lost.append(msg)
            conn.abort()
            return True
        return original(conn, msg)

    alice._session._on_message = drop_first_sent  # type: ignore[method-assign]
    async with alice, client(server, "bob") as bob:
        sent = await asyncio.wait_for(alice.send("bob", "once"), WAIT)
        assert sent.duplicate and sent.id == lost[0].id and sent.cmid == lost[0].cmid
        assert (await next_message(bob)).message.text == "once"
        assert [m.text for m in (await bob.history("alice")).messages] == ["once"]


async def test_explicit_cmid_retry_is_idempotent(server: RunningServer) -> None:
    await make_users(server, "alice", "bob")
    async with client(server, "alice") as alice, client(server, "bob") as bob:
        first = await alice.send("bob", "hi", cmid="same")
        again = await alice.send("bob", "hi", cmid="same")
        assert not first.duplicate and again.duplicate and again.id == first.id
        await alice.send("bob", "end")
        assert await messages(bob, 2) == ["hi", "end"]


async def test_heartbeat_keeps_an_idle_connection_open(tmp_path: Path) -> None:
    """With a 0.2 s heartbeat and a 0.8 s server idle timeout, a client that has nothing to
    say must PING; otherwise the server would close it with 4001 within a second."""
    async with run_server(tmp_path, heartbeat_interval=0.2, idle_timeout=0.8) as srv:
        await make_users(srv, "alice")
        async with client(srv, "alice") as alice:
            conn = alice._session.conn
            assert conn is not None and conn.welcome is not None
            assert conn.welcome.heartbeat == pytest.approx(0.2)
            # Waiting for time to pass is the point of this test: 5 idle timeouts.
            await asyncio.sleep(4.0)
            assert alice._session.conn is conn and not conn.closed and alice.connected
            assert await caught_up(alice) == CaughtUp(0)
            assert len(alice._session.inbox.events) == 0  # no Disconnected event either
            await alice.send("alice", "still here")


async def test_slow_reader_overflow_is_refetched_in_order(server: RunningServer) -> None:
    """A queue of 8 and a backlog of 60 plus 40 live messages: the client drops what does not
    fit and fetches it again as the application catches up; nothing lost or repeated."""
    await make_users(server, "alice", "bob")
    async with client(server, "alice") as alice:
        for i in range(60):
            await alice.send("bob", f"m{i}")
        async with client(server, "bob", queue_size=8) as bob:
            live = asyncio.ensure_future(
                asyncio.gather(*(alice.send("bob", f"m{i}") for i in range(60, 100)))
            )
            got = [(await next_message(bob)) for _ in range(100)]
            await asyncio.wait_for(live, WAIT)
            assert [g.seq for g in got] == list(range(1, 101))
            texts = [g.message.text for g in got]
            assert texts[:60] == [f"m{i}" for i in range(60)]
            assert sorted(texts[60:]) == sorted(f"m{i}" for i in range(60, 100))
            assert bob.cursor == 100


async def test_gives_up_after_max_reconnect_attempts(server: RunningServer) -> None:
    from liaotian.client import Backoff

    await make_users(server, "alice")
    # attempts spaced well beyond the server's shutdown time: the client must not give up
    # (dropping the queued Disconnected) before the test reads the first event
    c = client(server, "alice", max_reconnect_attempts=3, backoff=Backoff(1.0, 2.0))
    async with c:
        await caught_up(c)
        await server.stop()
        assert isinstance(await next_event(c), Disconnected)
        with pytest.raises(ConnectionClosed, match="gave up after 3"):
            await next_event(c)
        assert c.closed
        with pytest.raises(ConnectionClosed):
            await c.send("alice", "x")


async def test_no_reconnect_when_disabled(server: RunningServer) -> None:
    await make_users(server, "alice")
    async with client(server, "alice", reconnect=False) as c:
        await caught_up(c)
        await server.stop()
        with pytest.raises(ConnectionClosed) as exc:
            await next_event(c)
        assert exc.value.close_code == CloseCode.GOING_AWAY


# ---------------------------------------------------------------------- stores


async def test_file_store_resume_after_recreating_the_client(
    server: RunningServer, tmp_path: Path
) -> None:
    await make_users(server, "alice", "bob")
    path = tmp_path / "state" / "bob.json"
    async with client(server, "alice") as alice:
        for i in range(1, 4):
            await alice.send("bob", f"m{i}")
        async with client(server, "bob", device="phone", store=FileStore(path)) as bob:
            assert await messages(bob, 2) == ["m1", "m2"]
            # m3 may already sit in the queue, but it was never handed out.
        saved = FileStore(path).load()
        assert saved.username == "bob" and saved.device == "phone" and saved.token
        assert saved.cursor == 2
        # A new object, from the file only: AUTH with the saved token, resume at m3.
        async with Client(server.host, server.port, store=FileStore(path)) as bob:
            assert bob.user == "bob" and bob.device == "phone"
            assert (await next_message(bob)).message.text == "m3"
            await alice.send("bob", "m4")
            assert (await next_message(bob)).message.text == "m4"
        assert FileStore(path).load().cursor == 4
        devices = {d.device: d for d in await alice.devices()}
        assert "phone" not in devices  # bob's devices are bob's


async def test_refused_token_falls_back_to_login(server: RunningServer) -> None:
    await make_users(server, "alice")
    store = MemoryStore(SessionState(username="alice", device="d", token="x" * 43, cursor=0))
    async with client(server, "alice", store=store) as c:
        assert c.connected and c.token != "x" * 43
    assert store.load().token == c.token
    store = MemoryStore(SessionState(username="alice", device="d", token="y" * 43))
    with pytest.raises(RequestError) as exc:
        await Client(server.host, server.port, store=store).start()  # no password known
    assert exc.value.code == ErrorCode.INVALID_TOKEN
    assert store.load().token is None


async def test_revoked_device_ends_its_client_with_4002(server: RunningServer) -> None:
    await make_users(server, "alice")
    async with (
        client(server, "alice", device="old") as old,
        client(server, "alice", device="new") as new,
    ):
        await caught_up(old)
        await new.revoke_device("old")
        with pytest.raises(ConnectionClosed) as exc:
            await next_event(old)
        assert exc.value.close_code == CloseCode.LOGGED_OUT
        assert old.closed and old.token is None
        with pytest.raises(ConnectionClosed):
            await old.send("alice", "too late")
        assert [d.device for d in await new.devices()] == ["new"]
        await new.logout()
        assert new.closed and new.token is None


# ---------------------------------------------------------------------- bot


async def test_echo_bot(server: RunningServer, tmp_path: Path) -> None:
    await make_users(server, "echo", "alice")
    # initial_sync="all": a message sent before the bot is up is answered too, so the
    # test needs no "is it connected yet" wait.
    bot = Bot(
        "echo",
        PASSWORD,
        host=server.host,
        port=server.port,
        state_file=tmp_path / "echo.json",
        initial_sync="all",
    )

    @bot.on_message
    async def echo(ctx: Context) -> None:
        await ctx.reply(f"echo: {ctx.text}")

    task = asyncio.ensure_future(bot.run_async())
    try:
        async with client(server, "alice") as alice:
            for text in ("hello", "how are you"):
                await alice.send("echo", text)
            assert await messages(alice, 2) == ["echo: hello", "echo: how are you"]
    finally:
        await bot.stop()
        await asyncio.wait_for(task, WAIT)


# ---------------------------------------------------------------------- CLI


class CLI:
    """Runs `python -m liaotian.client.cli` without blocking the loop the server runs in."""

    def __init__(self, srv: RunningServer, home: Path) -> None:
        self.env = {
            **os.environ,
            "XDG_CONFIG_HOME": str(home),
            "LIAOTIAN_HOST": srv.host,
            "LIAOTIAN_PORT": str(srv.port),
            "PYTHONUNBUFFERED": "1",
        }
        for var in ("LIAOTIAN_USER", "LIAOTIAN_PASSWORD"):
            self.env.pop(var, None)

    async def start(self, *args: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "liaotian.client.cli",
            *args,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )

    async def run(self, *args: str) -> tuple[int, str, str]:
        proc = await self.start(*args)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()


async def test_cli_smoke(server: RunningServer, tmp_path: Path) -> None:
    cli = CLI(server, tmp_path / "home")
    code, out, _ = await cli.run("register", "alice", "--password", PASSWORD)
    assert code == 0 and "alice" in out
    code, _, err = await cli.run("register", "alice", "--password", PASSWORD)
    assert code == 1 and "USERNAME_TAKEN" in err
    await make_users(server, "bob")
    code, out, _ = await cli.run("login", "alice", "--device", "term", "--password", PASSWORD)
    assert code == 0, out
    state = json.loads((tmp_path / "home" / "liaotian" / "session-alice.json").read_text())
    assert state["username"] == "alice" and state["device"] == "term" and state["token"]
    assert state["cursor"] == 0
    code, _, err = await cli.run("login", "alice", "--password", "wrong password")
    assert code == 1 and "BAD_CREDENTIALS" in err

    async with client(server, "bob") as bob:
        code, out, err = await cli.run("send", "bob", "hello", "from", "the", "cli")
        assert code == 0, err
        assert (await next_message(bob)).message.text == "hello from the cli"
        await bob.send("alice", "hi cli")
        code, out, err = await cli.run("history", "bob")
        assert code == 0, err
        lines = out.splitlines()
        assert len(lines) == 2
        assert lines[0].startswith("#1 [") and lines[0].endswith("alice -> bob: hello from the cli")
        assert lines[1].endswith("bob -> alice: hi cli")
        code, out, _ = await cli.run("history", "bob", "--before", "2", "--limit", "1")
        assert code == 0 and out.splitlines() == lines[:1]

        # listen prints as messages arrive; SIGINT ends it cleanly, cursor saved.
        proc = await cli.start("listen")
        try:
            assert proc.stderr is not None and proc.stdout is not None
            ready = await asyncio.wait_for(proc.stderr.readline(), WAIT)
            assert b"listening as alice" in ready
            line = await asyncio.wait_for(proc.stdout.readline(), WAIT)  # the backlog
            assert line.decode().rstrip().endswith("] bob -> alice: hi cli")
            await bob.send("alice", "live one")
            line = await asyncio.wait_for(proc.stdout.readline(), WAIT)
            assert line.decode().rstrip().endswith("] bob -> alice: live one")
            proc.send_signal(signal.SIGINT)
            assert await asyncio.wait_for(proc.wait(), WAIT) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        state = json.loads((tmp_path / "home" / "liaotian" / "session-alice.json").read_text())
        assert state["cursor"] == 3  # own send (1), "hi cli" (2), "live one" (3)

    code, out, err = await cli.run("send", "nobody", "x")
    assert code == 1 and "UNKNOWN_USER" in err
    code, out, err = await cli.run("devices")
    assert code == 0 and "term" in out
    code, _, err = await cli.run("history", "bob", "--before", "1", "--after", "2")
    assert code == 2
    code, _, err = await cli.run("--port", "1", "devices")
    assert code == 3
    code, out, err = await cli.run("logout")
    assert code == 0, err
    code, _, err = await cli.run("devices")
    assert code == 2 and "login" in err  # no token any more


async def test_cli_connection_failure_exit_code(tmp_path: Path) -> None:
    home = tmp_path / "home"
    FileStore(home / "liaotian" / "session-alice.json").save(
        SessionState(username="alice", device="d", token="t" * 43, cursor=0)
    )
    env = {**os.environ, "XDG_CONFIG_HOME": str(home)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "liaotian.client.cli",
        "--port",
        "1",
        "send",
        "bob",
        "x",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 3, err
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
