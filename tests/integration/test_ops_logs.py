"""Logs as an operator reads them (issue 16, item 6): JSON lines that parse, one line per
connection lifecycle event with the peer and the user, the periodic statistics line in
operator terms, and never a password, a token or message text, in either format."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from clientpool import Clients
from liaotian.protocol import Auth, Authenticated, Close, Login
from liaotian.server.ops.logs import JsonFormatter, formatter
from liaotian.server.testing import run_server

TIMEOUT = 5.0
PASSWORD = "Secret-Passw0rd-4711"
WRONG = "Wrong-Passw0rd-0815"
TEXT = "the private text of a message 9c1f"


class Lines(logging.Handler):
    """Every record under `liaotian`, formatted as text and as JSON."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.text = formatter("text")
        self.json = JsonFormatter()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def both(self) -> list[str]:
        return [f(r) for r in self.records for f in (self.text.format, self.json.format)]

    def events(self, event: str) -> list[dict[str, object]]:
        return [
            d
            for d in (json.loads(self.json.format(r)) for r in self.records)
            if d.get("event") == event
        ]

    async def wait_for(self, event: str, **fields: object) -> dict[str, object]:
        async with asyncio.timeout(TIMEOUT):
            while True:
                for d in self.events(event):
                    if all(d.get(k) == v for k, v in fields.items()):
                        return d
                await asyncio.sleep(0.01)


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler = Lines()
    root = logging.getLogger("liaotian")
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


async def test_lifecycle_lines_carry_peer_user_and_close_code(
    tmp_path: Path, clients: Clients, lines: Lines
) -> None:
    async with run_server(tmp_path) as srv:
        alice = await clients.user(srv, "alice", device="phone")
        port = alice.writer.get_extra_info("sockname")[1]
        peer = f"127.0.0.1:{port}"
        opened = await lines.wait_for("open", peer=peer)
        conn = opened["conn"]
        authed = await lines.wait_for("authenticated", conn=conn)
        assert (authed["user"], authed["device"], authed["peer"]) == ("alice", "phone", peer)
        assert authed["msg"] == f"conn {conn} authenticated from {peer} as alice, device phone"
        # the one INFO line of the authentication (the handler's own is DEBUG)
        infos = [r.getMessage() for r in lines.records if r.levelno >= logging.INFO]
        assert not [m for m in infos if m.startswith(("login alice", "auth alice"))], infos
        await alice.write(Close(rid=0, code=1000, reason="bye"))
        await alice.expect_eof()
        closed = await lines.wait_for("closed", conn=conn)
        assert (closed["code"], closed["close"], closed["user"], closed["peer"]) == (
            1000,
            "normal",
            "alice",
            peer,
        )
        assert "closed 1000 normal after" in str(closed["msg"])
        for d in (opened, authed, closed):
            assert d["level"] == "INFO" and d["logger"] == "liaotian.conn"
            assert str(d["ts"]).endswith("Z")


async def test_no_line_holds_a_password_a_token_or_message_text(
    tmp_path: Path, clients: Clients, lines: Lines
) -> None:
    async with run_server(tmp_path) as srv:
        alice = await clients.user(srv, "alice", password=PASSWORD)
        bob = await clients.user(srv, "bob", password=PASSWORD)
        token = alice.token
        assert token
        await alice.send("bob", TEXT, meta={"note": TEXT})
        await bob.next_updates()
        other = await clients.anonymous(srv)
        await other.expect_error(
            Login(rid=other.rid(), username="alice", password=WRONG, device="d9"), 2002
        )
        await other.expect(Auth(rid=other.rid(), token=token), Authenticated)
        await other.expect_error(Auth(rid=other.rid(), token=token), 2008, raw=True)
        await alice.write(Close(rid=0, code=1000, reason=TEXT))  # a peer's reason: not logged
        await alice.expect_eof()
        await lines.wait_for("closed", user="alice", code=1000)
    text = "\n".join(lines.both())
    assert "authenticated" in text and "failed login" in text  # the lines are there
    for secret in (PASSWORD, WRONG, token, TEXT):
        assert secret not in text


async def test_the_periodic_stats_line_speaks_operator_terms(
    tmp_path: Path, clients: Clients, lines: Lines
) -> None:
    async with run_server(tmp_path, stats_interval=0.05) as srv:
        alice = await clients.user(srv, "alice")
        await clients.user(srv, "bob")
        for i in range(5):
            await alice.send("bob", f"m{i}")
        line = await lines.wait_for("stats")
        async with asyncio.timeout(TIMEOUT):  # the line covering the sends
            while not any(float(str(d["messages_per_s"])) > 0 for d in lines.events("stats")):
                await asyncio.sleep(0.01)
        busy = next(d for d in lines.events("stats") if float(str(d["messages_per_s"])) > 0)
    for key in (
        "connections",
        "authenticated",
        "users_online",
        "messages_per_s",
        "commits_per_s",
        "commit_p99_ms",
        "queue",
        "outbound_bytes",
    ):
        assert key in line
    assert busy["commit_p99_ms"] is not None and float(str(busy["commit_p99_ms"])) > 0
    assert str(busy["msg"]).startswith("stats: ")
    assert "messages/s" in str(busy["msg"]) and "commit p99" in str(busy["msg"])
    assert "users online" in str(busy["msg"])


def test_json_lines_parse_and_keep_extra_fields() -> None:
    record = logging.LogRecord(
        "liaotian.x", logging.WARNING, __file__, 1, "a %s line", ("b",), None
    )
    record.conn = 7
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    out = json.loads(JsonFormatter().format(record))
    assert out["msg"] == "a b line" and out["level"] == "WARNING" and out["conn"] == 7
    assert "ValueError: boom" in out["exc"]
    assert "\n" not in JsonFormatter().format(record)
