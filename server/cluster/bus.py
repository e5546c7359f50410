"""The NATS side of a node: one connection, one subscription per user held here (and per
channel with a member here), notices out in batches, and the node's view of whether
NATS is there at all.

Everything NATS-specific is in this module; the node (node.py) sees `watch`, `unwatch`,
`publish`, `probe` and three callbacks; the channels' news (app.py wires it to the
handlers' NewsFanOut) `channel_interest`, `publish_news` and `on_news`. A NATS that is
down at start or goes away later never stops the node serving its own users: start-up
does not wait for it, nats-py reconnects in the background, and the loss and the
recovery are logged once each.

What a NATS outage costs is latency, never data: a notice this node could not publish is
kept (the newest head per user, coalesced, bounded) and published on reconnect; notices
other nodes published meanwhile are gone (NATS core is at most once), so on reconnect the
node reads every live session's log from its position (`on_resume`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from . import notices

log = logging.getLogger("liaotian.cluster")

# Seconds a probe waits for an answer before "not elsewhere". Nobody subscribed means an
# immediate "no responders", so this only bounds a busy node's answer (or a node that has
# just let the user go and not yet unsubscribed): generous is cheap.
PROBE_TIMEOUT = 2.0
RETRY_CONNECT = 2.0  # seconds between attempts while NATS has never been reached
MAX_HELD = 100_000  # hints kept for publication while NATS is away (users)

Notice = Callable[[int, int, Any, Any], None]  # (uid, kind, a, b): see notices.decode


class NatsBus:
    def __init__(self, servers: list[str], prefix: str, node: str) -> None:
        self.servers = servers
        self.prefix = prefix
        self.node = node
        self.nc: Any = None  # nats.aio.client.Client once connected
        self.connected = False
        self.on_notice: Notice = lambda uid, kind, a, b: None
        self.holds: Callable[[int], bool] = lambda uid: False  # answers probes
        self.on_resume: Callable[[], None] = lambda: None  # notices may have been lost
        self.on_news: Callable[[int, int], None] = lambda conv, pos: None
        self._want: set[int] = set()  # users whose subject this node should hear
        self._want_ch: set[int] = set()  # channels with a member connected here
        self._subs: dict[str, Any] = {}  # subject -> nats Subscription
        self.live: set[int] = set()  # users whose subscription the NATS server has
        self.live_ch: set[int] = set()  # the same, of channels
        self._changed: asyncio.Queue[str] = asyncio.Queue()  # subjects to look at
        self._held: dict[int, bytes] = {}  # subject uid -> payload not yet published
        self._tasks: list[asyncio.Task[Any]] = []
        self._closing = False
        self.published = 0  # notices handed to NATS (for tests and the bench)
        self.received = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Connect if NATS answers now; else keep trying in the background."""
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._subscriber(), name="cluster-subs"))
        if not await self._connect(first=True):
            self._tasks.append(loop.create_task(self._keep_trying(), name="cluster-connect"))

    async def close(self) -> None:
        self._closing = True
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(BaseException):
                await t
        nc, self.nc = self.nc, None
        self.connected = False
        if nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.drain(), 2.0)
            with contextlib.suppress(Exception):
                await nc.close()

    async def _connect(self, *, first: bool) -> bool:
        import nats

        try:
            nc = await nats.connect(
                servers=self.servers,
                name=f"liaotian {self.node}",
                no_echo=True,  # a node never hears its own notices
                # Two tries at most: nats-py would retry a first connection forever, and
                # start-up must not wait for NATS (_keep_trying retries in the background).
                allow_reconnect=True,
                max_reconnect_attempts=1,
                reconnect_time_wait=0.1,
                connect_timeout=2.0,
                error_cb=self._error,
                disconnected_cb=self._disconnected,
                reconnected_cb=self._reconnected,
            )
        except Exception as exc:
            if first:
                log.warning(
                    "cluster: NATS at %s unreachable (%s): serving this node's users only, "
                    "retrying every %.0f s",
                    ",".join(self.servers),
                    exc or type(exc).__name__,
                    RETRY_CONNECT,
                )
            return False
        # Connected once: from now on nats-py reconnects by itself, for as long as it takes
        # (it reads these options at each loss).
        nc.options["max_reconnect_attempts"] = -1
        nc.options["reconnect_time_wait"] = 1.0
        self.nc = nc
        self.connected = True
        if not first:
            log.info("cluster: NATS reached at %s", ",".join(self.servers))
        for uid in self._want:  # users bound before NATS was there
            self._changed.put_nowait(notices.user_subject(self.prefix, uid))
        for conv in self._want_ch:
            self._changed.put_nowait(notices.channel_subject(self.prefix, conv))
        await self._flush_held()
        if not first:
            self.on_resume()
        return True

    async def _keep_trying(self) -> None:
        while not self._closing:
            await asyncio.sleep(RETRY_CONNECT)
            if await self._connect(first=False):
                return

    async def _error(self, exc: Exception) -> None:
        """nats-py's errors. A slow consumer (a subscription's queue full) drops notices:
        that user's sessions read their logs, as if told "look" (head unknown)."""
        subject = getattr(exc, "subject", None)
        uid = notices.uid_of_subject(self.prefix, subject) if subject else None
        if uid is not None and type(exc).__name__ == "SlowConsumerError":
            self.on_notice(uid, notices.HINT, 0, None)
            return
        log.debug("cluster: NATS error: %s", exc)

    async def _disconnected(self) -> None:
        if self.connected and not self._closing:
            log.warning(
                "cluster: lost NATS: serving this node's users; cross-node delivery waits "
                "for the reconnect"
            )
        self.connected = False

    async def _reconnected(self) -> None:
        self.connected = True
        log.info("cluster: NATS back: re-reading the logs of this node's sessions")
        await self._flush_held()
        self.on_resume()

    # ------------------------------------------------------------------ interest

    def watch(self, uid: int) -> None:
        """Hear the notices of this user (their first connection here bound)."""
        self._want.add(uid)
        self._changed.put_nowait(notices.user_subject(self.prefix, uid))

    def unwatch(self, uid: int) -> None:
        self._want.discard(uid)
        self._changed.put_nowait(notices.user_subject(self.prefix, uid))

    def channel_interest(self, conv: int, on: bool) -> None:
        """Hear a channel's news while a member of it is connected here (on), or not."""
        if on:
            self._want_ch.add(conv)
        else:
            self._want_ch.discard(conv)
        self._changed.put_nowait(notices.channel_subject(self.prefix, conv))

    def _wanted(self, subject: str) -> tuple[bool, int | None]:
        """Whether this node should hear `subject`; the user it is for (None: a channel)."""
        uid = notices.uid_of_subject(self.prefix, subject)
        if uid is not None:
            return uid in self._want, uid
        conv = notices.conv_of_subject(self.prefix, subject)
        return conv is not None and conv in self._want_ch, None

    async def _subscriber(self) -> None:
        """Apply interest changes one at a time, so that a quick bind-unbind-bind of a
        user (or a channel's members coming and going) never leaves the subscription in
        the wrong state."""
        while True:
            subject = await self._changed.get()
            nc = self.nc
            if nc is None or nc.is_closed:
                continue  # _connect queues every wanted subject again
            (want, uid), sub = self._wanted(subject), self._subs.get(subject)
            try:
                if want and sub is None:
                    self._subs[subject] = await nc.subscribe(subject, cb=self._message)
                    # A PING/PONG: the server has the SUB, so a probe or notice sent
                    # from another node after this finds the user.
                    await nc.flush(PROBE_TIMEOUT)
                    if uid is not None:
                        self.live.add(uid)
                    else:
                        self.live_ch.add(notices.conv_of_subject(self.prefix, subject) or 0)
                elif not want and sub is not None:
                    del self._subs[subject]
                    if uid is not None:
                        self.live.discard(uid)
                    else:
                        self.live_ch.discard(notices.conv_of_subject(self.prefix, subject) or 0)
                    await sub.unsubscribe()
            except Exception as exc:
                log.debug("cluster: subscription change for %s failed: %s", subject, exc)

    async def _message(self, msg: Any) -> None:
        uid = notices.uid_of_subject(self.prefix, msg.subject)
        try:
            kind, a, b = notices.decode(msg.data)
        except ValueError:
            log.debug("cluster: ignored a malformed notice on %s", msg.subject)
            return
        if uid is None:
            conv = notices.conv_of_subject(self.prefix, msg.subject)
            if conv is not None and kind == notices.NEWS:
                self.received += 1
                self.on_news(conv, a)
            return
        self.received += 1
        if kind == notices.PROBE:
            if msg.reply and self.holds(uid):
                await self.nc.publish(msg.reply, b"\x01")
            return
        self.on_notice(uid, kind, a, b)

    # ------------------------------------------------------------------ out

    def publish(self, batch: list[tuple[int, bytes]]) -> None:
        """Publish (uid, payload) notices: one task per batch, however long."""
        if not batch:
            return
        if not self.connected:
            self._hold(batch)
            return
        asyncio.get_running_loop().create_task(self._publish(batch))

    async def _publish(self, batch: list[tuple[int, bytes]]) -> None:
        nc, prefix = self.nc, self.prefix
        for i, (uid, payload) in enumerate(batch):
            try:
                await nc.publish(f"{prefix}.u.{uid}", payload)
            except Exception as exc:
                log.debug("cluster: publish failed (%s); holding %d notices", exc, len(batch) - i)
                self._hold(batch[i:])
                return
        self.published += len(batch)

    def publish_news(self, news: dict[int, int]) -> None:
        """Tell the nodes holding members of these channels their newest positions
        (channel -> pos): one notice per channel, not kept while NATS is away."""
        if news and self.connected:
            asyncio.get_running_loop().create_task(self._publish_news(news))

    async def _publish_news(self, news: dict[int, int]) -> None:
        nc, prefix = self.nc, self.prefix
        try:
            for conv, pos in news.items():
                await nc.publish(notices.channel_subject(prefix, conv), notices.news(pos))
                self.published += 1
        except Exception as exc:
            log.debug("cluster: publishing news failed (%s)", exc)

    def _hold(self, batch: list[tuple[int, bytes]]) -> None:
        """Keep hints for publication on reconnect (the newest per user); frames of
        presence and typing are not worth keeping."""
        held = self._held
        for uid, payload in batch:
            if notices.is_hint(payload) and (uid in held or len(held) < MAX_HELD):
                held[uid] = payload  # [0, head]: a later one has the higher head

    async def _flush_held(self) -> None:
        held, self._held = self._held, {}
        if held:
            await self._publish(list(held.items()))

    async def probe(self, uid: int) -> bool:
        """Whether another node holds a connection of this user now."""
        nc = self.nc
        if nc is None or not self.connected:
            return False
        try:
            await nc.request(
                notices.user_subject(self.prefix, uid), notices.PROBE_PAYLOAD, PROBE_TIMEOUT
            )
        except Exception as exc:  # no responders, or a timeout: nowhere else that we know of
            if type(exc).__name__ != "NoRespondersError":
                log.debug("cluster: probe for user %d unanswered: %r", uid, exc)
            return False
        return True
