"""Helpers for the social-layer integration tests, built on rawclient.RawClient (used as is).

`social_server(tmp_path, **overrides)` runs a real server (its own database, port 0) and
yields a `Net` that opens `SocialClient`s and closes every one of them at the end. Unless a
test overrides it, presence_interval is an hour, so no coalesced presence publication can
interleave unexpected PRESENCE pushes with what a test waits for; the presence tests set
their own interval or call `PresenceService.publish` directly.

Every wait is for an event under a timeout (RawClient.wait_until); "nothing arrived" is
always checked after a PING round trip (RawClient.assert_no_push), never after a sleep.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from liaotian.protocol import (
    ChatMessage,
    Error,
    History,
    HistoryPage,
    Message,
    Ping,
    Pong,
    Send,
    Sent,
    Update,
    UpdateKind,
    Updates,
)
from liaotian.protocol.social import (
    ContactList,
    GroupCreate,
    GroupInfo,
    ListContacts,
    Ok,
    Typing,
)
from liaotian.server.testing import RunningServer, run_server
from rawclient import PASSWORD, RawClient, messages_of

_cmids = itertools.count(1)
QUIET_PRESENCE = 3600.0  # seconds: no periodic presence publication during a test


class SocialClient(RawClient):
    """A RawClient with one-liners for the social requests.

    Update entries arrive batched (one UPDATES push may carry several); `entries()` hands
    them out one by one and keeps the rest for the next call."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.spare: deque[Update] = deque()

    # ------------------------------------------------------------------ requests

    async def call(self, cls: type[Message], **fields: Any) -> Message:
        """Send cls(rid=<fresh>, **fields) and return its answer (whatever type)."""
        return await self.request(cls(rid=self.rid(), **fields))

    async def ok(self, cls: type[Message], **fields: Any) -> Ok:
        ans = await self.call(cls, **fields)
        assert isinstance(ans, Ok), f"{cls.__name__}{fields} by {self.user} was answered {ans}"
        return ans

    async def fail(
        self, cls: type[Message], code: int, *, raw: bool = False, **fields: Any
    ) -> Error:
        """The request is refused with ERROR `code`. The client core checks only the state,
        not field values, so invalid values reach the server; raw=True skips even that."""
        msg = cls(rid=self.rid(), **fields)
        ans = await (self.request_raw(msg) if raw else self.request(msg))
        assert isinstance(ans, Error), (
            f"{msg} by {self.user} was answered {ans}, expected ERROR {code}"
        )
        assert ans.code == code, (
            f"{msg} by {self.user} was answered ERROR {ans.code} ({ans.message!r}), expected {code}"
        )
        return ans

    async def get(self, cls: type[Message], answer: type[Message], **fields: Any) -> Any:
        ans = await self.call(cls, **fields)
        assert isinstance(ans, answer), (
            f"{cls.__name__}{fields} by {self.user} was answered {ans}, expected {answer.__name__}"
        )
        return ans

    async def create_group(
        self, name: str, members: tuple[str, ...] | list[str], topic: str | None = None
    ) -> GroupInfo:
        fields: dict[str, Any] = {"name": name, "members": tuple(members)}
        if topic is not None:
            fields["topic"] = topic
        return await self.get(GroupCreate, GroupInfo, **fields)

    def group_msg(self, group: int, text: str, cmid: str | None = None) -> Send:
        return Send(rid=self.rid(), to="", group=group, cmid=cmid or f"g-{next(_cmids)}", text=text)

    async def gsend(self, group: int, text: str, cmid: str | None = None) -> Sent:
        return await self.expect(self.group_msg(group, text, cmid), Sent)

    async def ghistory(
        self,
        group: int,
        before: int | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> HistoryPage:
        return await self.expect(
            History(
                rid=self.rid(), with_user="", group=group, before=before, after=after, limit=limit
            ),
            HistoryPage,
        )

    async def contacts(self) -> ContactList:
        return await self.get(ListContacts, ContactList)

    async def typing(
        self, typing: bool = True, *, to: str | None = None, group: int | None = None
    ) -> None:
        """One-way TYPING (rid 0), written raw so that invalid combinations reach the server."""
        await self.write_raw(Typing(rid=0, typing=typing, to=to, group=group).encode())

    async def server_ms(self) -> int:
        pong = await self.request(Ping(rid=self.rid()))
        assert isinstance(pong, Pong), pong
        return pong.time

    async def clock_past(self, ts: int) -> None:
        """Wait (by PING round trips, reading the server's clock) until the server's
        millisecond clock is beyond `ts`, so that the next commit gets a later timestamp."""
        for _ in range(10_000):
            if await self.server_ms() > ts:
                return
        raise AssertionError(f"server clock did not pass {ts}")

    # ------------------------------------------------------------------ pushes

    async def push_of(self, cls: type[Message], timeout: float | None = None) -> Any:
        """The next push (rid 0) must be of type `cls`."""
        push = await self.next_push(timeout)
        assert isinstance(push, cls), (
            f"{self.user}/{self.device}: expected a {cls.__name__} push, got {push}"
        )
        assert push.rid == 0
        return push

    async def entries(self, n: int) -> list[Update]:
        """The next `n` update-log entries pushed to this connection (UPDATES pushes only:
        any other push in between fails)."""
        out: list[Update] = []
        while len(out) < n:
            if not self.spare:
                push = await self.push_of(Updates)
                assert not push.more and push.updates, push
                self.spare.extend(push.updates)
            out.append(self.spare.popleft())
        return out

    async def assert_no_push(self) -> None:
        assert not self.spare, f"{self.user}/{self.device}: unexpected entries {list(self.spare)}"
        await super().assert_no_push()

    async def entry(self, kind: int | None = None) -> Update:
        (upd,) = await self.entries(1)
        if kind is not None:
            assert upd.kind == kind, f"expected an entry of kind {kind}, got {upd}"
        return upd

    async def message(self) -> ChatMessage:
        upd = await self.entry(UpdateKind.MESSAGE)
        assert upd.message is not None
        return upd.message

    async def event(self, type_: str) -> ChatMessage:
        """The next pushed entry is a group timeline event of type `type_`."""
        msg = await self.message()
        assert msg.event is not None and msg.event.get("type") == type_, (
            f"{self.user}: expected a {type_!r} event, got {msg}"
        )
        return msg

    async def log_entries(self, since: int = 0) -> list[Update]:
        """This user's whole update log after `since`, through SYNC."""
        return messages_of(await self.sync_all(since))


def event_of(msg: ChatMessage) -> dict[str, Any]:
    assert msg.event is not None, f"not a timeline event: {msg}"
    return msg.event


def kinds(entries: list[Update]) -> list[int]:
    return [u.kind for u in entries]


class Net:
    """One test's server and every client it opened."""

    def __init__(self, srv: RunningServer) -> None:
        self.srv = srv
        self._all: list[SocialClient] = []

    async def connect(self) -> SocialClient:
        c = await SocialClient.connect(self.srv.host, self.srv.port)
        self._all.append(c)
        return c

    async def anonymous(self) -> SocialClient:
        c = await self.connect()
        await c.hello()
        return c

    async def user(
        self, name: str, device: str = "d1", *, register: bool = False, sync: bool = True
    ) -> SocialClient:
        """Logged in (registering first if asked) and, unless sync=False, synced: live."""
        c = await self.anonymous()
        if register:
            await c.register(name, PASSWORD)
            await self.open_groups(name)
        await c.login(name, PASSWORD, device)
        if sync:
            await c.sync_all()
        return c

    async def users(self, *names: str) -> list[SocialClient]:
        """Register every name, then log each one in on device d1 (live)."""
        await self.register(*names)
        return [await self.user(n) for n in names]

    async def register(self, *names: str, open_groups: bool = True) -> None:
        """Register the names; open_groups: see `open_groups`."""
        c = await self.anonymous()
        for name in names:
            await c.register(name, PASSWORD)
        await c.close()
        if open_groups:
            await self.open_groups(*names)

    async def open_groups(self, *names: str) -> None:
        """Set privacy `groups` of these just registered users to "everyone", so the tests
        about groups can add users who are not the adder's contacts (the default is
        "contacts"). Written straight into the database, which is only right before the
        server has loaded these users' settings: right after REGISTER."""
        assert self.srv.server is not None
        marks = ",".join("?" * len(names))

        def op(db: Any) -> None:
            db.execute(f"UPDATE users SET privacy_groups = 0 WHERE username IN ({marks})", names)

        await self.srv.server.store.run_in_commit(op)

    async def uid(self, name: str) -> int:
        assert self.srv.server is not None
        uid = await self.srv.server.store.user_id(name)
        assert uid is not None, name
        return uid

    async def close_all(self) -> None:
        for c in self._all:
            await c.close()


@asynccontextmanager
async def social_server(tmp_path: Path | str, **overrides: Any) -> AsyncIterator[Net]:
    overrides.setdefault("presence_interval", QUIET_PRESENCE)
    async with run_server(tmp_path, **overrides) as srv:
        net = Net(srv)
        try:
            yield net
        finally:
            await net.close_all()


async def make_contacts(a: SocialClient, b: SocialClient) -> None:
    """a asks, b accepts; every CONTACT entry this pushes to a and b is consumed."""
    from liaotian.protocol.social import ContactAccept, ContactRequest

    await a.ok(ContactRequest, user=b.user)
    await b.entry(UpdateKind.CONTACT)  # request
    await a.entry(UpdateKind.CONTACT)  # changed (own log)
    await b.ok(ContactAccept, user=a.user)
    await a.entry(UpdateKind.CONTACT)  # accepted
    await b.entry(UpdateKind.CONTACT)  # changed (own log)
