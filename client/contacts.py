"""`client.contacts`: contacts and blocking (SPEC.md 21).

    await client.contacts.request("bob")         # bob gets ContactEvent("request")
    await client.contacts.accept("carol")        # carol asked first
    c = await client.contacts.list()             # or: await client.contacts()
    print(c.contacts, c.incoming, c.outgoing, c.blocked)
    await client.contacts.block("mallory")

Each change reaches the other party (and this user's other devices) as a `ContactEvent`.
Answering or withdrawing a request that does not exist raises RequestError CONFLICT.
"""

from __future__ import annotations

from liaotian.protocol.social import (
    Block,
    ContactAccept,
    ContactCancel,
    ContactDecline,
    ContactList,
    ContactRemove,
    ContactRequest,
    ListContacts,
    Ok,
    Unblock,
)

from .facade import Facade

__all__ = ["Contacts"]


class Contacts(Facade):
    """Contact requests of one client. Calling it (`await client.contacts()`) returns the
    contact list, as the method of that name did before the facades."""

    __slots__ = ()

    async def __call__(self) -> ContactList:
        """Same as `list()`."""
        return await self.list()

    async def list(self) -> ContactList:
        """Contacts, incoming and outgoing requests, and blocked users (sorted names)."""
        return await self._ask(ListContacts(rid=0), ContactList, retry=True)

    async def request(self, user: str) -> None:
        """Ask `user` to become a contact (accepts at once if they already asked you)."""
        await self._ask(ContactRequest(rid=0, user=user), Ok, retry=True)

    async def accept(self, user: str) -> None:
        """Accept `user`'s pending request (CONFLICT if there is none)."""
        await self._ask(ContactAccept(rid=0, user=user), Ok, retry=False)

    async def decline(self, user: str) -> None:
        """Decline `user`'s pending request (CONFLICT if there is none)."""
        await self._ask(ContactDecline(rid=0, user=user), Ok, retry=False)

    async def cancel(self, user: str) -> None:
        """Withdraw the request this user sent to `user` (CONFLICT if there is none)."""
        await self._ask(ContactCancel(rid=0, user=user), Ok, retry=False)

    async def remove(self, user: str) -> None:
        """Stop being contacts with `user` (CONFLICT if you are not)."""
        await self._ask(ContactRemove(rid=0, user=user), Ok, retry=False)

    async def block(self, user: str) -> None:
        """Block `user` (idempotent): their direct messages fail with NOT_ALLOWED, their
        requests and typing are dropped, they stop seeing your presence and profile."""
        await self._ask(Block(rid=0, user=user), Ok, retry=True)

    async def unblock(self, user: str) -> None:
        """Lift a block (idempotent)."""
        await self._ask(Unblock(rid=0, user=user), Ok, retry=True)
