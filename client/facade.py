"""The base of the feature facades (`client.groups`, `client.contacts`, `client.account`,
`client.presence`): each is a small object over the client's `Session`, created once with
the client, in the spirit of nats.py's `nc.jetstream()` context."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from liaotian.protocol import Message

from .session import Session

__all__ = ["Facade", "usernames"]

A = TypeVar("A", bound=Message)


def usernames(users: str | Iterable[str]) -> tuple[str, ...]:
    """Usernames as a tuple; a single name is accepted as well as any iterable of them."""
    if isinstance(users, str):
        return (users,)
    names = tuple(users)
    if not all(isinstance(u, str) for u in names):
        raise TypeError("usernames must be strings")
    return names


class Facade:
    """One feature's requests over a session."""

    __slots__ = ("_session",)

    def __init__(self, session: Session) -> None:
        self._session = session

    async def _ask(self, msg: Message, answer: type[A], *, retry: bool) -> A:
        """A request with the client's request timeout (see `Session.request`)."""
        return await self._session.request(
            msg, answer, retry=retry, timeout=self._session.request_timeout
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._session.user or self._session.username}>"
