"""Contacts, blocking, profiles and privacy: relation and privacy changes become
operations (chat/ops.py) planned by chat/rules/contacts.py inside the group commit; the
lists, profiles and settings are reads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from liaotian.protocol import ErrorCode, RequestError
from liaotian.protocol.social import (
    Block,
    ContactAccept,
    ContactCancel,
    ContactDecline,
    ContactList,
    ContactRemove,
    ContactRequest,
    GetPrivacy,
    GetProfile,
    ListContacts,
    Ok,
    Privacy,
    Profile,
    SetPrivacy,
    SetProfile,
    Unblock,
)
from liaotian.protocol.text import check_field

from ..chat import ops
from ..chat.model import VISIBILITY_NAMES, BotView
from ..chat.policy import Policy
from ..chat.rules.contacts import shows
from ..net.peer import Peer
from ..net.router import Router
from ..store import Store
from .throttle import WriteBudget

_RELATIONS: tuple[tuple[type, type[ops.RelationOp]], ...] = (
    (ContactRequest, ops.RequestContact),
    (ContactAccept, ops.AcceptContact),
    (ContactDecline, ops.DeclineContact),
    (ContactCancel, ops.CancelContact),
    (ContactRemove, ops.RemoveContact),
    (Block, ops.BlockUser),
    (Unblock, ops.UnblockUser),
)


class ContactHandlers:
    def __init__(
        self, store: Store, writes: WriteBudget, policy: Policy, clock: Callable[[], float]
    ) -> None:
        self.store = store
        self.writes = writes
        self.policy = policy
        self.clock = clock  # monotonic seconds (the loop's)
        self.bots = BotView()  # PROFILE says whether a user is a bot (the bot handlers')

    def route(self, r: Router) -> None:
        for cls, op_cls in _RELATIONS:
            r.route(cls, self._relation(op_cls))
        r.route(SetPrivacy, self.set_privacy)
        r.route(ListContacts, self.list_contacts)
        r.route(SetProfile, self.set_profile)
        r.route(GetProfile, self.get_profile)
        r.route(GetPrivacy, self.get_privacy)

    def _charge_request(self, conn: Peer) -> None:
        """Every write request counts against the user's write budget (throttle.py)."""
        self.writes.charge(conn.user_id, self.clock())

    def _submit(self, op: ops.Op) -> None:
        self.store.submit(op)

    def _relation(self, op_cls: type[ops.RelationOp]) -> Any:
        def handler(conn: Peer, msg: Any) -> None:
            self._charge_request(conn)
            self._submit(
                op_cls(
                    actor=conn.user_id,
                    session=conn.id,
                    rid=msg.rid,
                    policy=self.policy,
                    user=msg.user,
                )
            )

        return handler

    def set_privacy(self, conn: Peer, msg: SetPrivacy) -> None:
        self._charge_request(conn)
        self._submit(
            ops.SetPrivacy(
                actor=conn.user_id,
                session=conn.id,
                rid=msg.rid,
                policy=self.policy,
                presence=msg.presence,
                profile=msg.profile,
                messages=msg.messages,
                groups=msg.groups,
                receipts=msg.receipts,
                coins=msg.coins,
                nearby=msg.nearby,
            )
        )

    async def list_contacts(self, conn: Peer, msg: ListContacts) -> None:
        soc = await self.store.social_of(conn.user_id)
        names = await self.store.usernames(soc.contacts | soc.incoming | soc.outgoing | soc.blocked)

        def listed(ids: set[int]) -> tuple[str, ...]:
            return tuple(sorted(names[u] for u in ids if u in names))

        conn.send(
            ContactList(
                rid=msg.rid,
                contacts=listed(soc.contacts),
                incoming=listed(soc.incoming),
                outgoing=listed(soc.outgoing),
                blocked=listed(soc.blocked),
            )
        )

    async def set_profile(self, conn: Peer, msg: SetProfile) -> None:
        check_field("display_name", msg.display_name)
        check_field("status", msg.status)
        self._charge_request(conn)
        await self.store.set_profile(conn.user_id, msg.display_name, msg.status)
        conn.send(Ok(rid=msg.rid))

    async def get_profile(self, conn: Peer, msg: Any) -> None:
        uid = await self.store.user_id(msg.user)
        if uid is None:
            raise RequestError(ErrorCode.UNKNOWN_USER)
        if uid != conn.user_id:
            soc = await self.store.social_of(uid)
            if not shows(soc, soc.profile, conn.user_id):
                raise RequestError(ErrorCode.NOT_ALLOWED)
        name, status, _seen = await self.store.profile(uid)
        conn.send(
            Profile(
                rid=msg.rid,
                user=msg.user,
                display_name=name,
                status=status,
                bot=True if uid in self.bots.names else None,
            )
        )

    async def get_privacy(self, conn: Peer, msg: GetPrivacy) -> None:
        soc = await self.store.social_of(conn.user_id)
        conn.send(
            Privacy(
                rid=msg.rid,
                presence=VISIBILITY_NAMES[soc.presence],
                profile=VISIBILITY_NAMES[soc.profile],
                messages=VISIBILITY_NAMES[soc.messages],
                groups=VISIBILITY_NAMES[soc.groups],
                receipts=VISIBILITY_NAMES[soc.receipts],
                coins=VISIBILITY_NAMES[soc.coins],
                nearby=VISIBILITY_NAMES[soc.nearby],
            )
        )
