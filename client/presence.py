"""`client.presence`: who is online, and typing notices (SPEC.md 20).

    for p in await client.presence.query(["bob", "carol"]):   # or: await client.presence(...)
        print(p.user, p.online, p.last_seen)
    await client.presence.typing("bob")            # on every keystroke: throttled here
    await client.presence.typing(group=7, typing=False)

What others do arrives as `PresenceChanged` and `TypingEvent` events (not in the log: they
are not replayed after a reconnect).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from liaotian.protocol.social import GetPresence, PresenceEntry, PresenceList, Typing

from .facade import Facade, usernames
from .session import Session

__all__ = ["MAX_PRESENCE_USERS", "Presence", "TypingThrottle"]

MAX_PRESENCE_USERS = 100  # users in one GET_PRESENCE (SPEC limits table)
MAX_TYPING_SLOTS = 256  # conversations remembered (as the server does)

_Key = tuple[str, str | int]  # ("to", user) or ("group", id)


class _Slot:
    """Client-side bookkeeping of typing notices for one conversation: a token bucket like
    the server's (so a chatty UI does not run into ERROR 4001) and what was last sent."""

    __slots__ = ("sent", "sent_at", "stamp", "timer", "tokens", "wanted")

    def __init__(self, burst: float, now: float) -> None:
        self.tokens = burst
        self.stamp = now
        self.sent: bool | None = None  # the state last sent on this connection
        self.sent_at = 0.0
        self.wanted: bool | None = None  # a state waiting for budget
        self.timer: asyncio.TimerHandle | None = None

    def refill(self, now: float, rate: float, burst: float) -> None:
        self.tokens = min(burst, self.tokens + (now - self.stamp) * rate)
        self.stamp = now


class TypingThrottle:
    """Typing notices of one session: a typing=True is renewed at most every `renew`
    seconds, and at most `rate` notices per second (bursts of `burst`) go out per
    conversation, as the server's defaults allow. It starts over with each connection
    (the server's budget is per connection)."""

    def __init__(
        self, session: Session, *, renew: float = 2.0, rate: float = 2.0, burst: float = 3.0
    ) -> None:
        self._session = session
        self.renew = renew
        self.rate = rate
        self.burst = burst
        self._slots: dict[_Key, _Slot] = {}
        session.on_reset.append(self.reset)

    def notify(self, key: _Key, typing: bool) -> bool:
        if not self._session.live:
            return False
        loop = asyncio.get_running_loop()
        now = loop.time()
        slot = self._slots.get(key)
        if slot is None:
            if len(self._slots) > MAX_TYPING_SLOTS:
                self.reset()
            slot = self._slots[key] = _Slot(self.burst, now)
        slot.refill(now, self.rate, self.burst)
        if slot.timer is not None:  # waiting for budget: the newest state wins
            slot.wanted = typing
            return True
        if typing == slot.sent and (not typing or now - slot.sent_at < self.renew):
            return False
        if slot.tokens >= 1:
            return self._send(slot, key, typing, now)
        slot.wanted = typing
        slot.timer = loop.call_later((1 - slot.tokens) / self.rate, self._due, key)
        return True

    def _due(self, key: _Key) -> None:
        slot = self._slots.get(key)
        if slot is None:
            return
        slot.timer = None
        wanted, slot.wanted = slot.wanted, None
        if wanted is None or not self._session.live:
            return
        now = asyncio.get_running_loop().time()
        slot.refill(now, self.rate, self.burst)
        if wanted != slot.sent or (wanted and now - slot.sent_at >= self.renew):
            self._send(slot, key, wanted, now)

    def _send(self, slot: _Slot, key: _Key, typing: bool, now: float) -> bool:
        conn = self._session.conn
        if conn is None:
            return False
        target = key[1]
        if isinstance(target, str):
            msg = Typing(rid=0, typing=typing, to=target)
        else:
            msg = Typing(rid=0, typing=typing, group=target)
        if not conn.send_nowait(msg):
            return False
        slot.tokens -= 1
        slot.sent, slot.sent_at = typing, now
        return True

    def reset(self) -> None:
        for slot in self._slots.values():
            if slot.timer is not None:
                slot.timer.cancel()
        self._slots.clear()


class Presence(Facade):
    """Presence and typing of one client. Calling it (`await client.presence(users)`) is
    `query(users)`, as the method of that name did before the facades."""

    __slots__ = ("throttle",)

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self.throttle = TypingThrottle(session)

    async def __call__(self, users: str | Iterable[str]) -> list[PresenceEntry]:
        """Same as `query(users)`."""
        return await self.query(users)

    async def query(self, users: str | Iterable[str]) -> list[PresenceEntry]:
        """Online state and last seen of the `users` this user may see (their presence
        privacy decides; others and unknown names are simply absent from the result).
        Any number of users: they are asked for in batches of 100."""
        names = list(dict.fromkeys(usernames(users)))
        out: list[PresenceEntry] = []
        for i in range(0, len(names), MAX_PRESENCE_USERS):
            batch = tuple(names[i : i + MAX_PRESENCE_USERS])
            answer = await self._ask(GetPresence(rid=0, users=batch), PresenceList, retry=True)
            out.extend(answer.presence)
        return out

    async def typing(
        self, to: str | None = None, group: int | None = None, typing: bool = True
    ) -> bool:
        """Tell the peer `to` (or the other members of `group`) that this user is typing
        (`typing=False`: stopped). One-way and best effort: never raises for a notice that
        cannot go out (not connected) or that the server drops or refuses (its ERROR
        without a request id is only logged). Returns True if a notice was sent or will
        be sent shortly, False if it was not needed or could not go out.

        Call it as often as you like (on every keystroke): see `TypingThrottle`; a
        repeated typing=False is not sent again, and beyond the rate the latest state is
        sent as soon as the budget allows.
        """
        if (to is None) == (group is None):
            raise ValueError("give to or group, not both")
        key: _Key = ("to", to) if to is not None else ("group", group or 0)
        return self.throttle.notify(key, typing)
