"""The sending half of a session: messages waiting for their SENT, retried with their cmid.

Every message gets a client message id (cmid), the server's idempotency key (SPEC.md 10.3):
however often the same cmid is sent, the message is stored once, and a repeat is answered
with the first one's SENT (`duplicate=true`). So `Outbox.send` can keep trying until it knows
the outcome, and it does:

* the connection drops before SENT: once reconnected, the SYNC that catches up either finds
  the message in the log (it was stored: the log entry answers the send, see `Inbox`) or the
  send goes out again with the same cmid;
* `4001 RATE_LIMITED` (or `2007 THROTTLED`): nothing was stored; wait `retry_after` (1 s
  when the server gave none) and try again, unless the wait would outlast the timeout: then
  the RequestError is raised, a definitive "not stored";
* `5001 INTERNAL_ERROR`: the server failed; retried after a short backoff;
* `5002 UNAVAILABLE`: the server is shutting down; retried once reconnected;
* any other ERROR is definitive (UNKNOWN_USER, NOT_ALLOWED, MESSAGE_TOO_LARGE, ...).

The timeout counts connected time only (see `deadline`): waiting for a reconnect is free. If
it runs out while connected, `SendTimeout` says so and carries the cmid: the outcome is then
unknown, and `send(..., cmid=exc.cmid)` finds it out without risking a second copy. With
`timeout=None` a send ends only with SENT, a definitive error, or the end of the client.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgpack
from liaotian.protocol import (
    ConnectionClosed,
    ErrorCode,
    LiaotianError,
    Limits,
    RequestError,
    Send,
    SendMedia,
    Sent,
)

from .connection import ClientConnection
from .deadline import advised_wait, paused

__all__ = ["Outbox", "PendingSend", "SendHost", "SendTimeout", "new_cmid"]

INTERNAL_ERROR_BACKOFF = (0.1, 5.0)  # first and longest wait after INTERNAL_ERROR, seconds


def new_cmid() -> str:
    """A fresh client message id: 12 hex digits of the time in ms, then 80 random bits.

    Ids that grow over time land together in the server's idempotency index (ordered by
    cmid, SPEC 10.3), so each message costs the server one page write less than a random
    id would; the random part keeps ids of one account's devices apart.
    """
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"


class SendTimeout(LiaotianError, TimeoutError):
    """The server did not answer a send within its timeout of connected time.

    The message may or may not have been stored; `cmid` is its idempotency key: sending
    again with it stores nothing twice and answers the question (`Sent.duplicate`).
    """

    def __init__(self, cmid: str, timeout: float) -> None:
        super().__init__(
            f"no answer to send {cmid!r} within {timeout:g} s of connected "
            "time; send again with the same cmid to learn whether it was stored"
        )
        self.cmid = cmid
        self.timeout = timeout


@dataclass(slots=True)
class PendingSend:
    """A send waiting for its SENT. `result` is resolved by SENT or by the log entry a SYNC
    returns for the same cmid; nobody awaits it directly, so it never holds an exception."""

    to: str
    cmid: str
    text: str
    meta: dict[str, Any]
    result: asyncio.Future[Sent] = field(repr=False)
    group: int | None = None  # a group send: `to` is "" then
    media: SendMedia | None = None  # a media message (client/media.py)


class SendHost(Protocol):
    """What the outbox needs from the session that owns it."""

    @property
    def reconnect(self) -> bool:
        """Whether a lost connection is replaced (else a send fails with it)."""
        ...

    @property
    def limits(self) -> Limits:
        """The limits in force (the server's, once it has sent WELCOME)."""
        ...

    async def live_connection(self, deadline: asyncio.Timeout | None = None) -> ClientConnection:
        """The live connection, waiting through a reconnect with `deadline` paused."""
        ...


class Outbox:
    """The sends in progress, by cmid (the `Inbox` resolves them from the log)."""

    def __init__(self, host: SendHost) -> None:
        self._host = host
        self.pending: dict[str, PendingSend] = {}

    def __contains__(self, cmid: object) -> bool:
        return cmid in self.pending

    def resolve(self, cmid: str, sent: Sent) -> bool:
        """Answer the send with this cmid, if one waits; True if it did."""
        p = self.pending.get(cmid)
        if p is None or p.result.done():
            return False
        p.result.set_result(sent)
        return True

    def check(self, cmid: str, text: str, meta: dict[str, Any] | None) -> None:
        """Refuse locally what the server would refuse, before it enters the retry path:
        a message the server rejects by closing the connection would be resent forever."""
        limits = self._host.limits
        if not isinstance(cmid, str) or not 1 <= len(cmid) <= limits.max_cmid_len:
            raise ValueError(f"cmid must be a string of 1..{limits.max_cmid_len} characters")
        if cmid.startswith("#"):
            raise ValueError("a cmid must not start with '#' (reserved for the server)")
        if len(text.encode()) > limits.max_text_len:
            raise RequestError(
                ErrorCode.MESSAGE_TOO_LARGE,
                f"text above {limits.max_text_len} bytes (checked locally)",
            )
        if meta and len(msgpack.packb(meta)) > limits.max_meta_size:
            raise RequestError(
                ErrorCode.MESSAGE_TOO_LARGE,
                f"meta above {limits.max_meta_size} bytes (checked locally)",
            )

    async def send(
        self,
        to: str,
        group: int | None,
        text: str,
        meta: dict[str, Any] | None,
        cmid: str | None,
        timeout: float | None,
        media: SendMedia | None = None,
    ) -> Sent:
        """Send one message (with `media`: a media message, SPEC.md 27.5) and return its
        SENT (see the module docstring)."""
        cmid = cmid if cmid is not None else new_cmid()
        self.check(cmid, text, meta)
        if cmid in self.pending:
            raise ValueError(f"a send with cmid {cmid!r} is already in progress")
        pending = PendingSend(
            to,
            cmid,
            text,
            dict(meta or {}),
            asyncio.get_running_loop().create_future(),
            group,
            media,
        )
        self.pending[cmid] = pending
        deadline: asyncio.Timeout | None = None
        try:
            async with asyncio.timeout(timeout) as deadline:
                return await self._attempts(pending, deadline)
        except TimeoutError as exc:
            if deadline is not None and deadline.expired() and timeout is not None:
                raise SendTimeout(cmid, timeout) from exc
            raise
        finally:
            if self.pending.get(cmid) is pending:
                del self.pending[cmid]
            if not pending.result.done():
                pending.result.cancel()

    async def _attempts(self, p: PendingSend, deadline: asyncio.Timeout) -> Sent:
        failures = 0  # INTERNAL_ERROR answers so far
        while True:
            conn = await self._host.live_connection(deadline)
            if p.result.done():  # a SYNC found it in the log after a reconnect
                return p.result.result()
            try:
                sent = await conn.request(
                    Send(
                        rid=0,
                        to=p.to,
                        cmid=p.cmid,
                        text=p.text,
                        meta=p.meta,
                        group=p.group,
                        media=p.media,
                    )
                )
            except ConnectionClosed:
                if not self._host.reconnect:
                    raise
                continue  # sent again with the same cmid once reconnected
            except RequestError as exc:
                wait = advised_wait(exc, deadline)
                if wait is not None:  # nothing was stored: wait as advised, send again
                    await asyncio.sleep(wait)
                    continue
                if exc.code == ErrorCode.INTERNAL_ERROR:
                    first, longest = INTERNAL_ERROR_BACKOFF
                    await asyncio.sleep(min(longest, first * 2 ** min(failures, 16)))
                    failures += 1
                    continue
                if exc.code == ErrorCode.UNAVAILABLE and self._host.reconnect:
                    with paused(deadline):
                        await conn.wait_closed()  # the server is going away: retry after
                    continue
                raise  # definitive (RATE_LIMITED too, when its wait outlasts the timeout)
            assert isinstance(sent, Sent)
            return sent
