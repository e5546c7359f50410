"""Bots (SPEC.md 26): bot accounts, their commands, button presses and their answers.

A bot is an account its owner creates with BOT_CREATE: a user with no password whose one
device, "bot", holds the bot token (a session token: the bot authenticates with AUTH and
resumes like any device). BOT_TOKEN re-keys that device, so the old token is dead and its
connections are closed (4002); BOT_DELETE drops the device, leaves the bot's row as a
tombstone and takes the bot out of its groups (RemoveBot); its name stays taken for
NAME_QUARANTINE_MS, then the sweep frees it.

What the send rule must know of bots (their names, the groups whose bots see everything)
is the `BotView` kept here, loaded from the store at start (`load`) and changed with each
write; the send handler passes it on group sends and applies a bot's own rate limits.

A press (PRESS) is checked against the message it names (a bot's, with that button, as
stored: a bot's edit replaces the stored message) and reaches the bot as a CALLBACK entry
in its log; the same commit keeps the callback pending (durable: it survives a restart,
and PENDING_CALLBACKS lists the ones still waiting). The bot's ANSWER_CALLBACK reaches the
presser as a CALLBACK_ANSWER entry, and its commit closes the callback. A callback
expires CALLBACK_TTL_MS after the press; each bot keeps at most CALLBACKS_PER_BOT pending
(the sweep, `run`, forgets the oldest beyond that). BOT_EDIT replaces the stored message
and tells every member in one commit (chat/rules/bots.py `edit`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import msgpack
from liaotian.protocol import CloseCode, ErrorCode, MessageType, RequestError, UpdateKind
from liaotian.protocol.bots import (
    AnswerCallback,
    BotCreate,
    BotDelete,
    BotEdit,
    BotEntry,
    BotInfo,
    BotList,
    BotToken,
    CallbackEntry,
    CallbackList,
    CommandEntry,
    CommandList,
    GetCommands,
    GroupBots,
    ListBots,
    PendingCallbacks,
    Press,
    Pressed,
    SetCommands,
)
from liaotian.protocol.social import Ok

from ..chat import bot_ops, ops
from ..chat.model import KIND_DIRECT, KIND_GROUP, ROLE_ADMIN, BotView
from ..chat.policy import Policy
from ..chat.rules import bots as rules
from ..net.hub import Hub
from ..net.peer import Peer
from ..net.router import Router
from ..store import Store, StoreClosed, UsernameTaken
from ..store.contract import BOT_DEVICE, BotRecord
from .accounts import token_hash
from .throttle import WriteBudget

CALLBACK_TTL_MS = 24 * 3600 * 1000  # a press unanswered for a day is forgotten
# a deleted bot's name stays taken this long (nobody can pose as the bot its users knew),
# then its account is renamed and the name may be registered again
NAME_QUARANTINE_MS = 30 * 24 * 3600 * 1000
CALLBACKS_PER_BOT = 10_000  # presses pending per bot, at most (the oldest are forgotten)
SWEEP_INTERVAL = 60.0  # seconds between sweeps of expired callbacks
ANSWERING_KEPT = 10_000  # callbacks answered lately: a second answer racing the first fails
log = logging.getLogger("liaotian.bots")
_unpackb: Callable[..., Any] = msgpack.unpackb
_packb: Callable[..., bytes] = msgpack.packb


def _wall_ms() -> int:
    return int(time.time() * 1000)


def answer_notice(op: bot_ops.BotNotice) -> tuple[bytes, int]:
    """A press is answered PRESSED with its callback id; other notices OK."""
    if op.callback:
        return Pressed(rid=op.rid, callback=op.callback).encode(), int(MessageType.PRESSED)
    return Ok(rid=op.rid).encode(), int(MessageType.OK)


class BotHandlers:
    def __init__(
        self,
        store: Store,
        hub: Hub,
        writes: WriteBudget,
        policy: Policy,
        clock: Callable[[], float],
        *,
        max_bots: int = 20,
        max_text: int = 65536,
        view: BotView | None = None,
        wall_ms: Callable[[], int] = _wall_ms,
        name_quarantine_ms: int = NAME_QUARANTINE_MS,
    ) -> None:
        self.store = store
        self.hub = hub
        self.writes = writes
        self.policy = policy
        self.clock = clock  # monotonic seconds (the loop's)
        self.max_bots = max_bots
        self.max_text = max_text
        self.view = view if view is not None else BotView()
        self.wall_ms = wall_ms
        self.name_quarantine_ms = name_quarantine_ms
        # answers submitted, not yet known committed: a second answer of one callback
        # would pass the store's check before the first one's commit closes it
        self.answering: OrderedDict[int, None] = OrderedDict()

    async def load(self) -> None:
        """Fill the view from the store (at start, before clients are served)."""
        self.view.names = {b.id: b.name for b in await self.store.all_bots()}
        self.view.open_groups = await self.store.bot_open_groups()

    def route(self, r: Router) -> None:
        r.route(BotCreate, self.create)
        r.route(ListBots, self.list_bots)
        r.route(BotToken, self.rotate)
        r.route(BotDelete, self.delete)
        r.route(SetCommands, self.set_commands)
        r.route(GetCommands, self.get_commands)
        r.route(Press, self.press)
        r.route(AnswerCallback, self.answer)
        r.route(BotEdit, self.edit)
        r.route(GroupBots, self.group_bots)
        r.route(PendingCallbacks, self.pending)

    async def run(self) -> None:
        """Every SWEEP_INTERVAL: `sweep`."""
        while True:
            try:
                await self.sweep()
            except StoreClosed:
                return
            except Exception:
                log.exception("sweeping bots failed")
            await asyncio.sleep(SWEEP_INTERVAL)

    async def sweep(self) -> None:
        """Forget expired presses and each bot's beyond its newest CALLBACKS_PER_BOT; free
        the names of bots deleted longer than the quarantine ago."""
        now = self.wall_ms()
        n = await self.store.sweep_callbacks(now - CALLBACK_TTL_MS, CALLBACKS_PER_BOT)
        if n:
            log.info("bots: forgot %d unanswered presses", n)
        for name in await self.store.free_bot_names(now - self.name_quarantine_ms):
            log.info("bots: the name %s of a deleted bot is free again", name)

    # ------------------------------------------------------------------ helpers

    def _charge(self, conn: Peer) -> None:
        self.writes.charge(conn.user_id, self.clock())

    def _submit(self, op: ops.Op) -> None:
        self.store.submit(op)

    def _not_a_bot(self, conn: Peer) -> None:
        if conn.user_id in self.view.names:
            raise RequestError(ErrorCode.FORBIDDEN, "a bot cannot do this")

    async def _own_bot(self, conn: Peer, name: str) -> BotRecord:
        uid = await self.store.user_id(name)
        bot = await self.store.bot_by_id(uid) if uid is not None else None
        if bot is None or bot.owner != conn.user_id:
            raise RequestError(ErrorCode.UNKNOWN_BOT)
        return bot

    def _disconnect(self, uid: int, reason: str) -> None:
        for other in list(self.hub.of_device(uid, BOT_DEVICE)):
            other.close(CloseCode.LOGGED_OUT, reason)

    async def _members(self, conn: Peer, conv: int) -> tuple[tuple[int, ...], bool]:
        """The participants of a direct conversation or group the asker is in, and whether
        it is a group; NOT_MEMBER otherwise."""
        c = await self.store.conversation(conv)
        if c is not None and c[0] == KIND_DIRECT and conn.user_id in (c[1], c[2]):
            return tuple(u for u in {c[1], c[2]} if u is not None), False
        if c is not None and c[0] == KIND_GROUP:
            g = await self.store.group_state(conv)
            if g is not None and conn.user_id in g.members:
                return tuple(g.members), True
        raise RequestError(ErrorCode.NOT_MEMBER)

    async def _message(self, conv: int, pos: int) -> dict[str, Any]:
        """The stored message map at `pos` of `conv` (edits included); NOT_FOUND."""
        bodies, _more = await self.store.history(conv, pos + 1, None, 1)
        m = _unpackb(bodies[0]) if bodies else None
        if not isinstance(m, dict) or m.get("pos") != pos:
            raise RequestError(ErrorCode.NOT_FOUND, "no message at that position")
        return m

    @staticmethod
    def _entry(b: BotRecord) -> BotEntry:
        return BotEntry(
            name=b.name,
            created=b.created,
            commands=tuple(CommandEntry(name=n, description=d) for n, d in b.commands),
        )

    # ------------------------------------------------------------------ the owner's

    async def create(self, conn: Peer, msg: BotCreate) -> None:
        self._not_a_bot(conn)
        if not rules.valid_bot_name(msg.name):
            raise RequestError(
                ErrorCode.INVALID_USERNAME, "a bot's name is a username that ends in 'bot'"
            )
        if len(await self.store.bots_of(conn.user_id)) >= self.max_bots:
            raise RequestError(
                ErrorCode.LIMIT_REACHED,
                f"at most {self.max_bots} bots",
                data={"limit": "max_bots_per_user", "max": self.max_bots},
            )
        self._charge(conn)
        token = secrets.token_urlsafe(32)
        try:
            uid = await self.store.create_bot(msg.name, conn.user_id, token_hash(token))
        except UsernameTaken:
            raise RequestError(ErrorCode.USERNAME_TAKEN) from None
        self.view.names[uid] = msg.name
        # anyone may add a bot to a group (the default lets only contacts)
        self._submit(ops.SetPrivacy(actor=uid, policy=self.policy, groups="everyone"))
        bot = await self.store.bot_by_id(uid)
        conn.log.info("bot %s created", msg.name)
        conn.send(
            BotInfo(
                rid=msg.rid,
                name=msg.name,
                owner=conn.username,
                created=bot.created if bot else 0,
                token=token,
            )
        )

    async def list_bots(self, conn: Peer, msg: ListBots) -> None:
        bots = await self.store.bots_of(conn.user_id)
        conn.send(BotList(rid=msg.rid, bots=tuple(self._entry(b) for b in bots)))

    async def rotate(self, conn: Peer, msg: BotToken) -> None:
        bot = await self._own_bot(conn, msg.name)
        self._charge(conn)
        token = secrets.token_urlsafe(32)
        await self.store.set_device_token(bot.id, BOT_DEVICE, token_hash(token))
        self._disconnect(bot.id, "bot token rotated")
        conn.send(
            BotInfo(
                rid=msg.rid, name=bot.name, owner=conn.username, created=bot.created, token=token
            )
        )

    async def delete(self, conn: Peer, msg: BotDelete) -> None:
        """The bot's token dies and its connections close; then, in one commit, it leaves
        each group it is in (every member sees the event), answered OK after that."""
        bot = await self._own_bot(conn, msg.name)
        self._charge(conn)
        await self.store.delete_bot(bot.id)
        self.view.names.pop(bot.id, None)
        self._disconnect(bot.id, "bot deleted")
        conn.log.info("bot %s deleted", bot.name)
        groups: list[int] = []
        after = -1
        while True:
            rows = await self.store.groups_of(bot.id, after=after, limit=500)
            groups += [r[0] for r in rows]
            if len(rows) < 500:
                break
            after = rows[-1][0]
        self._submit(
            bot_ops.RemoveBot(
                actor=conn.user_id,
                session=conn.id,
                rid=msg.rid,
                policy=self.policy,
                bot=bot.id,
                groups=tuple(groups),
            )
        )

    async def set_commands(self, conn: Peer, msg: SetCommands) -> None:
        if msg.bot:
            uid = (await self._own_bot(conn, msg.bot)).id
        elif conn.user_id in self.view.names:
            uid = conn.user_id
        else:
            raise RequestError(ErrorCode.BOTS_ONLY, "name the bot (you are not one)")
        seen = set()
        for c in msg.commands:
            if not rules.valid_command_name(c.name) or c.name in seen:
                raise RequestError(
                    ErrorCode.INVALID_FIELD, f"command {c.name!r}: 1-32 of a-z 0-9 _, once"
                )
            seen.add(c.name)
        self._charge(conn)
        await self.store.set_bot_commands(uid, tuple((c.name, c.description) for c in msg.commands))
        conn.send(Ok(rid=msg.rid))

    async def get_commands(self, conn: Peer, msg: GetCommands) -> None:
        uid = await self.store.user_id(msg.bot)
        bot = await self.store.bot_by_id(uid) if uid is not None else None
        if bot is None:
            raise RequestError(ErrorCode.UNKNOWN_BOT)
        conn.send(CommandList(rid=msg.rid, bot=bot.name, commands=self._entry(bot).commands))

    async def group_bots(self, conn: Peer, msg: GroupBots) -> None:
        g = await self.store.group_state(msg.group)
        if g is None or conn.user_id not in g.members:
            raise RequestError(ErrorCode.NOT_MEMBER)
        if g.members[conn.user_id].role < ROLE_ADMIN:
            raise RequestError(ErrorCode.FORBIDDEN, "only the group's admins")
        self._charge(conn)
        await self.store.set_group_bots(msg.group, msg.see_all)
        if msg.see_all:
            self.view.open_groups.add(msg.group)
        else:
            self.view.open_groups.discard(msg.group)
        conn.send(Ok(rid=msg.rid))

    # ------------------------------------------------------------------ buttons

    async def press(self, conn: Peer, msg: Press) -> None:
        _members, group = await self._members(conn, msg.conv)
        m = await self._message(msg.conv, msg.pos)
        sender = m.get("from")
        bot = await self.store.user_id(sender) if isinstance(sender, str) else None
        if (
            bot is None
            or bot not in self.view.names
            or not rules.has_button(m.get("meta"), msg.data)
        ):
            raise RequestError(ErrorCode.NO_SUCH_BUTTON)
        self._charge(conn)
        callback = secrets.randbits(52) or 1
        data: dict[str, Any] = {
            "callback": callback,
            "from": conn.username,
            "conv": msg.conv,
            "pos": msg.pos,
            "id": m.get("id", 0),
            "data": msg.data,
        }
        if group:
            data["group"] = msg.conv
        self._submit(
            bot_ops.BotNotice(
                actor=conn.user_id,
                session=conn.id,
                rid=msg.rid,
                policy=self.policy,
                users=(bot,),
                kind=int(UpdateKind.CALLBACK),
                data=_packb(data),
                callback=callback,
                press_conv=msg.conv,
                press_pos=msg.pos,
            )
        )

    async def answer(self, conn: Peer, msg: AnswerCallback) -> None:
        cb = await self.store.bot_callback(msg.callback)
        if (
            cb is None
            or cb.bot != conn.user_id
            or cb.created < self.wall_ms() - CALLBACK_TTL_MS
            or msg.callback in self.answering
        ):
            raise RequestError(ErrorCode.UNKNOWN_CALLBACK)
        self._charge(conn)
        self.answering[msg.callback] = None
        while len(self.answering) > ANSWERING_KEPT:
            self.answering.popitem(last=False)
        data = {
            "callback": msg.callback,
            "bot": conn.username,
            "conv": cb.conv,
            "pos": cb.pos,
            "text": msg.text,
            "alert": msg.alert,
        }
        self._submit(
            bot_ops.BotNotice(
                actor=conn.user_id,
                session=conn.id,
                rid=msg.rid,
                policy=self.policy,
                users=(cb.presser,),
                kind=int(UpdateKind.CALLBACK_ANSWER),
                data=_packb(data),
                answers=msg.callback,
            )
        )

    async def pending(self, conn: Peer, msg: PendingCallbacks) -> None:
        if conn.user_id not in self.view.names:
            raise RequestError(ErrorCode.BOTS_ONLY)
        cbs = await self.store.bot_callbacks(conn.user_id, msg.limit + 1)
        horizon = self.wall_ms() - CALLBACK_TTL_MS
        live = [c for c in cbs[: msg.limit] if c.created >= horizon]
        conn.send(
            CallbackList(
                rid=msg.rid,
                callbacks=tuple(CallbackEntry.from_wire(_unpackb(c.entry), msg.rid) for c in live),
                more=len(cbs) > msg.limit,
            )
        )

    async def edit(self, conn: Peer, msg: BotEdit) -> None:
        members, _group = await self._members(conn, msg.conv)  # NOT_MEMBER first, as PRESS
        if conn.user_id not in self.view.names:
            raise RequestError(ErrorCode.BOTS_ONLY)
        if len(msg.text.encode()) > self.max_text:
            raise RequestError(ErrorCode.MESSAGE_TOO_LARGE)
        buttons = msg.meta.get("buttons")
        if buttons is not None:
            problem = rules.check_buttons(buttons)
            if problem is not None:
                raise RequestError(ErrorCode.INVALID_FIELD, problem)
        m = await self._message(msg.conv, msg.pos)
        if m.get("from") != conn.username:
            raise RequestError(ErrorCode.FORBIDDEN, "a bot edits only its own messages")
        self._charge(conn)
        self._submit(
            bot_ops.EditMessage(
                actor=conn.user_id,
                session=conn.id,
                rid=msg.rid,
                policy=self.policy,
                message=m,
                text=msg.text,
                meta=msg.meta,
                users=members,
            )
        )
