"""Contacts, blocking, profiles and privacy.

Relation changes are WriteOps: they read and change both users' relation sets inside the
group commit, so two requests crossing each other resolve in one order. A contact change
lands in the other party's update log ("request", "accepted", ...) and, as "changed", in
the actor's own log so the actor's other devices refresh their list. Blocking is silent:
the blocked user is told nothing, and requests from a blocked user are accepted and dropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgpack
from liaotian.protocol import ErrorCode, MessageType, RequestError, UpdateKind
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

from ..store import StoreClosed
from ..store.base import Needs, Refused, WriteOp
from ..store.batch import Batch
from ..store.state import (
    REL_BLOCKED,
    REL_CONTACT,
    REL_REQUEST_DROPPED,
    REL_REQUESTED,
    VISIBILITY_BY_NAME,
    VISIBILITY_NAMES,
)
from .throttle import charge_rows, limit_reached

if TYPE_CHECKING:
    from ..app import Server
    from ..transport import ServerConnection

_packb = msgpack.packb


class _RelationOp(WriteOp):
    def __init__(self, conn: ServerConnection, msg: Any) -> None:
        self.origin = conn
        self.rid = msg.rid
        self.actor = conn.user_id
        self.target_name = msg.user
        self.server = conn.server

    def needs(self, n: Needs, batch: Batch) -> None:
        n.names.add(self.target_name)
        n.users.add(self.actor)
        n.social.add(self.actor)
        uid = batch.user_id(self.target_name)
        if uid is not None:
            n.users.add(uid)
            n.social.add(uid)

    def answer_frame(self) -> tuple[bytes, int]:
        return Ok(rid=self.rid).encode(), int(MessageType.OK)

    def plan(self, batch: Batch) -> None:
        target = batch.user_id(self.target_name)
        if target is None:
            raise Refused(ErrorCode.UNKNOWN_USER)
        if target == self.actor:
            raise Refused(ErrorCode.CONFLICT, "not with yourself")
        self.apply(batch, target)
        charge_rows(self, self.server.writes, self.server.loop.time())

    def apply(self, batch: Batch, target: int) -> None:
        raise NotImplementedError

    # helpers ---------------------------------------------------------------------------

    def notify(self, batch: Batch, target: int, event: str) -> None:
        batch.log(target, UpdateKind.CONTACT,
                  _packb({"event": event, "user": batch.username(self.actor)}))
        batch.log(self.actor, UpdateKind.CONTACT,
                  _packb({"event": "changed", "user": batch.username(target)}))

    def changed(self, batch: Batch, target: int) -> None:
        batch.log(self.actor, UpdateKind.CONTACT,
                  _packb({"event": "changed", "user": batch.username(target)}))

    @staticmethod
    def relate(batch: Batch, a: int, b: int, kind: int) -> None:
        batch.stage("INSERT OR IGNORE INTO relations (user_id, other_id, kind, created) "
                    "VALUES (?, ?, ?, ?)", (a, b, kind, batch.ts))

    @staticmethod
    def unrelate(batch: Batch, a: int, b: int, kind: int) -> None:
        batch.stage("DELETE FROM relations WHERE user_id = ? AND other_id = ? AND kind = ?",
                    (a, b, kind))

    def check_contacts_room(self, batch: Batch, target: int) -> None:
        """Both parties are below max_contacts (3009 otherwise, naming who is not)."""
        bound = self.server.config.max_contacts
        if len(batch.social_ro(self.actor).contacts) >= bound:
            limit_reached(self, "max_contacts", bound, f"you have {bound} contacts already")
        if len(batch.social_ro(target).contacts) >= bound:
            limit_reached(self, "max_contacts", bound,
                          f"{batch.username(target)} has {bound} contacts already")

    def make_contacts(self, batch: Batch, a: int, b: int) -> None:
        sa, sb = batch.social_rw(a), batch.social_rw(b)
        for x, y, sx, sy in ((a, b, sa, sb), (b, a, sb, sa)):
            if y in sx.outgoing:
                sx.outgoing.discard(y)
                sy.incoming.discard(x)
                self.unrelate(batch, x, y, REL_REQUESTED)
                self.unrelate(batch, x, y, REL_REQUEST_DROPPED)
            sx.contacts.add(y)
            self.relate(batch, x, y, REL_CONTACT)


class RequestOp(_RelationOp):
    def apply(self, batch: Batch, target: int) -> None:
        me, them = batch.social_rw(self.actor), batch.social_rw(target)
        if target in me.contacts:
            raise Refused(ErrorCode.CONFLICT, "already a contact")
        if target in me.blocked:
            raise Refused(ErrorCode.CONFLICT, "unblock that user first")
        if target in me.outgoing:
            return  # already pending: OK, nothing new
        if target in me.incoming:  # they asked first: this is an accept
            self.check_contacts_room(batch, target)
            self.make_contacts(batch, self.actor, target)
            self.notify(batch, target, "accepted")
            return
        bound = self.server.config.max_contacts
        if len(me.contacts) >= bound:
            limit_reached(self, "max_contacts", bound, f"you have {bound} contacts already")
        bound = self.server.config.max_outgoing_requests
        if len(me.outgoing) >= bound:
            limit_reached(self, "max_outgoing_requests", bound,
                          f"you have {bound} contact requests waiting for an answer")
        if self.actor in them.blocked:
            # dropped, but kept on the requester's side so the block stays invisible
            me.outgoing.add(target)
            self.relate(batch, self.actor, target, REL_REQUEST_DROPPED)
            self.changed(batch, target)
            return
        me.outgoing.add(target)
        them.incoming.add(self.actor)
        self.relate(batch, self.actor, target, REL_REQUESTED)
        self.notify(batch, target, "request")


class AcceptOp(_RelationOp):
    def apply(self, batch: Batch, target: int) -> None:
        if target not in batch.social_ro(self.actor).incoming:
            raise Refused(ErrorCode.CONFLICT, "no request from that user")
        self.check_contacts_room(batch, target)
        self.make_contacts(batch, self.actor, target)
        self.notify(batch, target, "accepted")


class DeclineOp(_RelationOp):
    def apply(self, batch: Batch, target: int) -> None:
        me, them = batch.social_rw(self.actor), batch.social_rw(target)
        if target not in me.incoming:
            raise Refused(ErrorCode.CONFLICT, "no request from that user")
        me.incoming.discard(target)
        them.outgoing.discard(self.actor)
        self.unrelate(batch, target, self.actor, REL_REQUESTED)
        self.notify(batch, target, "declined")


class CancelOp(_RelationOp):
    def apply(self, batch: Batch, target: int) -> None:
        me, them = batch.social_rw(self.actor), batch.social_rw(target)
        if target not in me.outgoing:
            return  # nothing pending (or silently dropped): cancelling is idempotent
        me.outgoing.discard(target)
        if self.actor not in them.incoming:  # a dropped request: the target never saw it
            self.unrelate(batch, self.actor, target, REL_REQUEST_DROPPED)
            self.changed(batch, target)
            return
        them.incoming.discard(self.actor)
        self.unrelate(batch, self.actor, target, REL_REQUESTED)
        self.notify(batch, target, "cancelled")


class RemoveOp(_RelationOp):
    def apply(self, batch: Batch, target: int) -> None:
        me, them = batch.social_rw(self.actor), batch.social_rw(target)
        if target not in me.contacts:
            raise Refused(ErrorCode.CONFLICT, "not a contact")
        me.contacts.discard(target)
        them.contacts.discard(self.actor)
        self.unrelate(batch, self.actor, target, REL_CONTACT)
        self.unrelate(batch, target, self.actor, REL_CONTACT)
        self.notify(batch, target, "removed")


class BlockOp(_RelationOp):
    def apply(self, batch: Batch, target: int) -> None:
        me, them = batch.social_rw(self.actor), batch.social_rw(target)
        if target in me.blocked:
            return
        me.blocked.add(target)
        self.relate(batch, self.actor, target, REL_BLOCKED)
        me.contacts.discard(target)
        them.contacts.discard(self.actor)
        me.outgoing.discard(target)
        me.incoming.discard(target)
        them.outgoing.discard(self.actor)
        them.incoming.discard(self.actor)
        for a, b in ((self.actor, target), (target, self.actor)):
            self.unrelate(batch, a, b, REL_CONTACT)
            self.unrelate(batch, a, b, REL_REQUESTED)
            self.unrelate(batch, a, b, REL_REQUEST_DROPPED)
        self.changed(batch, target)


class UnblockOp(_RelationOp):
    def apply(self, batch: Batch, target: int) -> None:
        me, them = batch.social_rw(self.actor), batch.social_rw(target)
        if target not in me.blocked:
            return
        me.blocked.discard(target)
        self.unrelate(batch, self.actor, target, REL_BLOCKED)
        self.changed(batch, target)
        if self.actor in them.outgoing and target not in me.incoming:
            # a request dropped while blocked now arrives, as if it had been in transit
            self.unrelate(batch, target, self.actor, REL_REQUEST_DROPPED)
            self.relate(batch, target, self.actor, REL_REQUESTED)
            me.incoming.add(target)
            batch.log(self.actor, UpdateKind.CONTACT,
                      _packb({"event": "request", "user": batch.username(target)}))


class PrivacyOp(WriteOp):
    def __init__(self, conn: ServerConnection, msg: SetPrivacy) -> None:
        self.origin = conn
        self.rid = msg.rid
        self.actor = conn.user_id
        self.msg = msg
        self.server = conn.server

    def needs(self, n: Needs, batch: Batch) -> None:
        n.users.add(self.actor)
        n.social.add(self.actor)

    def plan(self, batch: Batch) -> None:
        me = batch.social_rw(self.actor)
        if self.msg.presence is not None:
            me.presence = VISIBILITY_BY_NAME[self.msg.presence]
        if self.msg.profile is not None:
            me.profile = VISIBILITY_BY_NAME[self.msg.profile]
        if self.msg.messages is not None:
            me.messages = VISIBILITY_BY_NAME[self.msg.messages]
        if self.msg.groups is not None:
            me.groups = VISIBILITY_BY_NAME[self.msg.groups]
        if self.msg.receipts is not None:
            me.receipts = VISIBILITY_BY_NAME[self.msg.receipts]
        batch.stage("UPDATE users SET privacy_presence = ?, privacy_profile = ?, "
                    "privacy_messages = ?, privacy_groups = ?, privacy_receipts = ? "
                    "WHERE id = ?",
                    (me.presence, me.profile, me.messages, me.groups, me.receipts,
                     self.actor))
        charge_rows(self, self.server.writes, self.server.loop.time())

    def answer_frame(self) -> tuple[bytes, int]:
        return Ok(rid=self.rid).encode(), int(MessageType.OK)


class ContactService:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.store = server.store
        r = server.router
        for cls, op in ((ContactRequest, RequestOp), (ContactAccept, AcceptOp),
                        (ContactDecline, DeclineOp), (ContactCancel, CancelOp),
                        (ContactRemove, RemoveOp), (Block, BlockOp), (Unblock, UnblockOp),
                        (SetPrivacy, PrivacyOp)):
            r.route(cls, self._submitter(op))
        r.route(ListContacts, self.list_contacts)
        r.route(SetProfile, self.set_profile)
        r.route(GetProfile, self.get_profile)
        r.route(GetPrivacy, self.get_privacy)

    def _charge_request(self, conn: ServerConnection) -> None:
        """Every write request counts against the user's write budget (throttle.py)."""
        wait = self.server.writes.request(conn.user_id, self.server.loop.time())
        if wait is not None:
            raise RequestError(ErrorCode.RATE_LIMITED, "writing too fast",
                               retry_after=round(wait, 3))

    def _submitter(self, op_cls: Any) -> Any:
        def handler(conn: ServerConnection, msg: Any) -> None:
            self._charge_request(conn)
            try:
                self.store.submit(op_cls(conn, msg))
            except StoreClosed:
                raise RequestError(ErrorCode.UNAVAILABLE) from None

        return handler

    async def list_contacts(self, conn: ServerConnection, msg: ListContacts) -> None:
        soc = await self.store.social_of(conn.user_id)
        names = await self.store.usernames(soc.contacts | soc.incoming | soc.outgoing
                                           | soc.blocked)

        def listed(ids: set[int]) -> tuple[str, ...]:
            return tuple(sorted(names[u] for u in ids if u in names))

        conn.send(ContactList(rid=msg.rid, contacts=listed(soc.contacts),
                              incoming=listed(soc.incoming), outgoing=listed(soc.outgoing),
                              blocked=listed(soc.blocked)))

    async def set_profile(self, conn: ServerConnection, msg: SetProfile) -> None:
        check_field("display_name", msg.display_name)
        check_field("status", msg.status)
        self._charge_request(conn)
        try:
            await self.store.set_profile(conn.user_id, msg.display_name, msg.status)
        except StoreClosed:
            raise RequestError(ErrorCode.UNAVAILABLE) from None
        conn.send(Ok(rid=msg.rid))

    async def get_profile(self, conn: ServerConnection, msg: Any) -> None:
        uid = await self.store.user_id(msg.user)
        if uid is None:
            raise RequestError(ErrorCode.UNKNOWN_USER)
        if uid != conn.user_id:
            soc = await self.store.social_of(uid)
            if not soc.shows(soc.profile, conn.user_id):
                raise RequestError(ErrorCode.NOT_ALLOWED)
        name, status, _seen = await self.store.profile(uid)
        conn.send(Profile(rid=msg.rid, user=msg.user, display_name=name, status=status))

    async def get_privacy(self, conn: ServerConnection, msg: GetPrivacy) -> None:
        soc = await self.store.social_of(conn.user_id)
        conn.send(Privacy(rid=msg.rid, presence=VISIBILITY_NAMES[soc.presence],
                          profile=VISIBILITY_NAMES[soc.profile],
                          messages=VISIBILITY_NAMES[soc.messages],
                          groups=VISIBILITY_NAMES[soc.groups],
                          receipts=VISIBILITY_NAMES[soc.receipts]))
