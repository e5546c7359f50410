"""A deliberately small, raw test client: liaotian.protocol.Connection(Role.CLIENT) over
asyncio streams, with no retries, no reconnects and no cursor logic of its own.

Every wait is for an event (a frame with a given rid, a push, a close, end of stream) under
a timeout; a timeout, an unexpected close or a server frame that breaks the protocol fails
the test with a message saying what was awaited.

Received frames are sorted three ways: `answers` (rid >= 1, by rid), `pushes` (rid 0, in
order) and `log` (everything, in arrival order, for ordering assertions).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque
from collections.abc import Callable
from typing import Any

from liaotian.protocol import (
    Ack,
    Auth,
    Authenticated,
    ChatMessage,
    Close,
    Connection,
    ConnectionTerminated,
    DeviceList,
    Error,
    FrameReader,
    Hello,
    History,
    HistoryPage,
    Limits,
    ListDevices,
    Login,
    Message,
    Ping,
    Pong,
    ProtocolViolation,
    Register,
    Registered,
    Role,
    Send,
    Sent,
    Sync,
    Update,
    Updates,
    Welcome,
    pack_frame,
)

TIMEOUT = 5.0  # seconds: generous upper bound for any single expected event
PASSWORD = "password1"
_cmids = itertools.count(1)


class Closed(AssertionError):
    """The connection ended while the test was waiting for something else."""


class RawClient:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        timeout: float = TIMEOUT,
        limits: Limits | None = None,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.timeout = timeout
        self.conn = Connection(Role.CLIENT, limits=limits) if limits else Connection(Role.CLIENT)
        self.answers: dict[int, Message] = {}
        self.pushes: deque[Message] = deque()
        self.log: list[Message] = []
        self.frame_sizes: list[int] = []  # body size of every frame received
        self._sizes = FrameReader(1 << 40)
        self.terminated: ConnectionTerminated | None = None
        self.violation: ProtocolViolation | None = None
        self.eof = False
        self.user = ""
        self.device = ""
        self.token: str | None = None

    @classmethod
    async def connect(cls, host: str, port: int, **kw: Any) -> RawClient:
        timeout = kw.get("timeout", TIMEOUT)
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        return cls(reader, writer, **kw)

    # ------------------------------------------------------------------ output

    def rid(self) -> int:
        return self.conn.next_rid()

    async def write(self, *msgs: Message) -> None:
        """Queue messages in the client core (state-checked) and write them."""
        for m in msgs:
            self.conn.send(m)
        await self._flush()

    async def write_raw(self, data: bytes) -> None:
        """Write bytes as they are, bypassing the client core's state checks."""
        self.writer.write(data)
        await self.writer.drain()

    async def write_frame(self, msg_type: int, rid: int, payload: dict[str, Any]) -> None:
        await self.write_raw(pack_frame(msg_type, rid, payload))

    async def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data and not self.writer.is_closing():
            self.writer.write(data)
            await self.writer.drain()

    # ------------------------------------------------------------------ input

    async def _read_more(self) -> None:
        try:
            data = await self.reader.read(1 << 16)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            self.conn.receive_eof()
        else:
            self.frame_sizes.extend(len(b) for b in self._sizes.feed(data))
            self.conn.receive_data(data)
        while (ev := self.conn.next_event()) is not None:
            if isinstance(ev, ProtocolViolation):
                self.violation = self.violation or ev
            elif isinstance(ev, ConnectionTerminated):
                self.terminated = self.terminated or ev
            else:
                self.log.append(ev)
                if ev.rid:
                    self.answers[ev.rid] = ev
                else:
                    self.pushes.append(ev)

    async def wait_until(
        self, cond: Callable[[], bool], what: str, timeout: float | None = None
    ) -> None:
        """Read frames until cond() holds."""
        try:
            async with asyncio.timeout(timeout or self.timeout):
                while not cond():
                    if self.violation is not None:
                        raise AssertionError(
                            f"server broke the protocol while waiting for {what}: {self.violation}"
                        )
                    if self.terminated is not None or self.eof:
                        code = self.terminated.code if self.terminated else None
                        raise Closed(f"connection closed (code {code}) while waiting for {what}")
                    await self._read_more()
        except TimeoutError:
            raise AssertionError(
                f"timed out after {timeout or self.timeout} s waiting for {what}"
            ) from None

    async def answer(self, rid: int, timeout: float | None = None) -> Message:
        await self.wait_until(lambda: rid in self.answers, f"the answer to rid {rid}", timeout)
        return self.answers.pop(rid)

    async def request(self, msg: Message, timeout: float | None = None) -> Message:
        """Send a request and return the answer carrying its rid."""
        await self.write(msg)
        return await self.answer(msg.rid, timeout)

    async def expect(self, msg: Message, answer_type: type[Message]) -> Any:
        ans = await self.request(msg)
        assert isinstance(ans, answer_type), f"{msg} was answered {ans}"
        return ans

    async def request_raw(self, msg: Message, timeout: float | None = None) -> Message:
        """Send a request's frame bypassing the client core's state checks (to provoke the
        server's refusals) and return the answer carrying its rid."""
        await self.write_raw(msg.encode())
        return await self.answer(msg.rid, timeout)

    async def expect_error(self, msg: Message, code: int, *, raw: bool = False) -> Error:
        ans = await (self.request_raw(msg) if raw else self.request(msg))
        assert isinstance(ans, Error), f"{msg} was answered {ans}, expected ERROR {code}"
        assert ans.code == code, f"{msg} was answered ERROR {ans.code}, expected {code}"
        return ans

    async def next_push(self, timeout: float | None = None) -> Message:
        """The next frame with rid 0 (UPDATES push or ERROR rid 0; CLOSE is not a push)."""
        await self.wait_until(lambda: bool(self.pushes), "a push", timeout)
        return self.pushes.popleft()

    async def next_updates(self, timeout: float | None = None) -> Updates:
        push = await self.next_push(timeout)
        assert isinstance(push, Updates), f"expected an UPDATES push, got {push}"
        assert push.rid == 0 and not push.more
        return push

    async def expect_close(
        self, code: int | None = None, timeout: float | None = None
    ) -> ConnectionTerminated:
        """Wait for the server's CLOSE (or the end of the stream), then for end of stream."""
        await self.wait_until_closed(timeout)
        assert self.terminated is not None
        if code is not None:
            assert self.terminated.code == code, (
                f"closed with {self.terminated.code} ({self.terminated.reason!r}), expected {code}"
            )
        await self.expect_eof(timeout)
        return self.terminated

    async def wait_until_closed(self, timeout: float | None = None) -> None:
        try:
            async with asyncio.timeout(timeout or self.timeout):
                while self.terminated is None:
                    if self.violation is not None:
                        raise AssertionError(f"server broke the protocol: {self.violation}")
                    await self._read_more()
        except TimeoutError:
            raise AssertionError(
                f"timed out after {timeout or self.timeout} s waiting for the connection to close"
            ) from None

    async def expect_eof(self, timeout: float | None = None) -> None:
        """The server closes its end: read (and ignore) until end of stream."""
        try:
            async with asyncio.timeout(timeout or self.timeout):
                while not self.eof:
                    await self._read_more()
        except TimeoutError:
            raise AssertionError("the server did not close the socket") from None

    async def barrier(self) -> None:
        """A PING round trip: every frame the server wrote before it has been received."""
        ans = await self.request(Ping(rid=self.rid()))
        assert isinstance(ans, Pong), ans

    async def assert_no_push(self) -> None:
        await self.barrier()
        assert not self.pushes, f"unexpected pushes: {str(list(self.pushes))[:2000]}"

    async def close(self) -> None:
        if not self.writer.is_closing():
            self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 1.0)

    async def close_gracefully(self) -> None:
        """Send CLOSE 1000 and wait until the server has closed its end (by then it has
        dropped the connection from its session indexes)."""
        await self.write(Close(rid=0, code=1000, reason="bye"))
        await self.expect_eof()
        await self.close()

    # ------------------------------------------------------------------ session helpers

    async def hello(self, versions: tuple[int, ...] = (1,)) -> Welcome:
        return await self.expect(Hello(rid=self.rid(), versions=versions, client="raw/1"), Welcome)

    async def register(self, username: str, password: str = PASSWORD) -> Registered:
        return await self.expect(
            Register(rid=self.rid(), username=username, password=password), Registered
        )

    async def login(
        self, username: str, password: str = PASSWORD, device: str = "d1"
    ) -> Authenticated:
        ans = await self.expect(
            Login(rid=self.rid(), username=username, password=password, device=device),
            Authenticated,
        )
        assert ans.user == username and ans.device == device and ans.token
        self.user, self.device, self.token = username, device, ans.token
        return ans

    async def auth(self, token: str) -> Authenticated:
        ans = await self.expect(Auth(rid=self.rid(), token=token), Authenticated)
        assert ans.token is None
        self.user, self.device, self.token = ans.user, ans.device, token
        return ans

    async def sync(self, since: int = 0, limit: int | None = None) -> Updates:
        ans = await self.expect(Sync(rid=self.rid(), since=since, limit=limit), Updates)
        assert ans.rid != 0
        return ans

    async def sync_all(self, since: int = 0, limit: int | None = None) -> list[Updates]:
        """Page until more=false (the connection is then live); returns the pages."""
        pages = []
        while True:
            page = await self.sync(since, limit)
            pages.append(page)
            if page.updates:
                since = page.updates[-1].seq
            if not page.more:
                return pages

    def send_msg(
        self, to: str, text: str, cmid: str | None = None, meta: dict[str, Any] | None = None
    ) -> Send:
        return Send(
            rid=self.rid(), to=to, cmid=cmid or f"cmid-{next(_cmids)}", text=text, meta=meta or {}
        )

    async def send(
        self, to: str, text: str, cmid: str | None = None, meta: dict[str, Any] | None = None
    ) -> Sent:
        ans = await self.expect(self.send_msg(to, text, cmid, meta), Sent)
        return ans

    async def ack(self, seq: int) -> None:
        await self.write(Ack(rid=0, seq=seq))

    async def history(
        self,
        with_user: str,
        before: int | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> HistoryPage:
        return await self.expect(
            History(rid=self.rid(), with_user=with_user, before=before, after=after, limit=limit),
            HistoryPage,
        )

    async def full_history(self, with_user: str, limit: int = 200) -> list[ChatMessage]:
        """The whole conversation, paged backwards; ascending pos."""
        out: list[ChatMessage] = []
        before = None
        while True:
            page = await self.history(with_user, before=before, limit=limit)
            out[:0] = page.messages
            if not page.more:
                return out
            before = page.messages[0].pos

    async def devices(self) -> DeviceList:
        return await self.expect(ListDevices(rid=self.rid()), DeviceList)


def messages_of(updates: Updates | list[Updates]) -> list[Update]:
    pages = updates if isinstance(updates, list) else [updates]
    return [u for p in pages for u in p.updates]
