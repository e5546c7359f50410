"""`client.groups`: group chats (SPEC.md 17).

    team = await client.groups.create("team", ["bob", "carol"], topic="launch")
    await client.groups.send(team.group, "hello team")
    await client.groups.add(team.group, "dave")
    for g in await client.groups.list():           # or: await client.groups()
        print(g.group, g.name, g.role)

A group's id is also its conversation id. Changes (add, remove, leave, update, set_role,
transfer) answer with the position of the timeline event they created; every member,
including this user's other devices, receives it as a `GroupChanged` event. Refusals raise
RequestError: NOT_MEMBER, NOT_ALLOWED, FORBIDDEN, CONFLICT, GROUP_FULL, UNKNOWN_USER, ...
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Iterable
from typing import Any

from liaotian.protocol import History, HistoryPage, Message, Sent
from liaotian.protocol.social import (
    GetGroup,
    GroupAdd,
    GroupCreate,
    GroupInfo,
    GroupLeave,
    GroupList,
    GroupRemove,
    GroupSetRole,
    GroupSummary,
    GroupTransfer,
    GroupUpdate,
    ListGroups,
    Ok,
)

from .facade import Facade, usernames
from .session import DEFAULT, TimeoutArg

__all__ = ["Groups"]


class Groups(Facade):
    """Group requests of one client. Calling it (`await client.groups()`) lists the groups,
    as the method of that name did before the facades."""

    __slots__ = ()

    async def __call__(self) -> builtins.list[GroupSummary]:
        """Same as `list()`."""
        return await self.list()

    async def create(self, name: str, members: Iterable[str] = (), topic: str = "") -> GroupInfo:
        """Create a group owned by this user with `members` (usernames; this user is
        added anyway). Refusals: UNKNOWN_USER, NOT_ALLOWED (a member blocked you or takes
        contacts only), GROUP_FULL."""
        return await self._ask(
            GroupCreate(rid=0, name=name, members=usernames(members), topic=topic),
            GroupInfo,
            retry=False,
        )

    async def info(self, group: int) -> GroupInfo:
        """Name, topic, owner, newest position and members with roles (NOT_MEMBER if you
        are not a member)."""
        return await self._ask(GetGroup(rid=0, group=group), GroupInfo, retry=True)

    async def list(self) -> builtins.list[GroupSummary]:
        """The groups this user is a member of, with their role in each: every page, in
        ascending group id."""
        return [g async for g in self.iter()]

    async def iter(self, page_size: int | None = None) -> AsyncIterator[GroupSummary]:
        """The groups this user is a member of, fetched page by page."""
        after: int | None = None
        while True:
            page, more = await self.page(limit=page_size, after=after)
            for g in page:
                yield g
            if not more or not page:
                return
            after = page[-1].group

    async def page(
        self, *, limit: int | None = None, after: int | None = None
    ) -> tuple[builtins.list[GroupSummary], bool]:
        """One page of this user's groups in ascending group id: those above group id
        `after`, at most `limit` (1 .. 500; the server's default page when None), and
        whether more follow."""
        answer = await self._ask(ListGroups(rid=0, limit=limit, after=after), GroupList, retry=True)
        return builtins.list(answer.groups), answer.more

    async def add(self, group: int, users: str | Iterable[str]) -> int:
        """Add members (owner or admin); returns the position of the "added" event."""
        return await self._change(GroupAdd(rid=0, group=group, users=usernames(users)))

    async def remove(self, group: int, user: str) -> int:
        """Remove a member (owner: anyone; admin: plain members); returns the event's
        position. The removed user stops receiving the group at once."""
        return await self._change(GroupRemove(rid=0, group=group, user=user))

    async def leave(self, group: int) -> int:
        """Leave the group (an owner must transfer ownership first: CONFLICT)."""
        return await self._change(GroupLeave(rid=0, group=group))

    async def update(self, group: int, name: str | None = None, topic: str | None = None) -> int:
        """Rename the group and/or set its topic (owner or admin)."""
        if name is None and topic is None:
            raise ValueError("give a new name, a new topic, or both")
        return await self._change(GroupUpdate(rid=0, group=group, name=name, topic=topic))

    async def set_role(self, group: int, user: str, role: str) -> int:
        """Make a member an "admin" or a plain "member" again (owner only)."""
        if role not in ("admin", "member"):
            raise ValueError("role must be 'admin' or 'member'")
        return await self._change(GroupSetRole(rid=0, group=group, user=user, role=role))

    async def transfer(self, group: int, user: str) -> int:
        """Hand ownership to another member (owner only); this user becomes an admin."""
        return await self._change(GroupTransfer(rid=0, group=group, user=user))

    async def history(
        self,
        group: int,
        before: int | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> HistoryPage:
        """A page of the group's timeline (messages and events), ascending by position:
        `before=P` the newest older than P, `after=P` the oldest newer than P, neither the
        newest. A member sees the timeline from the event that added them on."""
        if before is not None and after is not None:
            raise ValueError("give before or after, not both")
        if limit is not None:  # within the server's page size: more pages say `more`
            limit = min(limit, self._session.limits.max_history_page)
        return await self._ask(
            History(rid=0, with_user="", group=group, before=before, after=after, limit=limit),
            HistoryPage,
            retry=True,
        )

    async def send(
        self,
        group: int,
        text: str,
        meta: dict[str, Any] | None = None,
        cmid: str | None = None,
        *,
        timeout: TimeoutArg = DEFAULT,
    ) -> Sent:
        """Send a message to the group; exactly once, like `Client.send()`. Raises
        RequestError NOT_MEMBER if you are not a member (or the group does not exist)."""
        if type(group) is not int or group < 1:
            raise ValueError("group must be a positive integer")
        session = self._session
        session.raise_if_ended()
        return await session.outbox.send("", group, text, meta, cmid, session.timeout_for(timeout))

    async def _change(self, msg: Message) -> int:
        """A group change: not repeated after a lost connection (it may have happened),
        and answered with the position of the timeline event it created (0 if none)."""
        ok = await self._ask(msg, Ok, retry=False)
        return ok.pos or 0
