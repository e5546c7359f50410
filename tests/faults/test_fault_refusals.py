"""Table-driven refusals over every request type, against a real server.

The tables are derived from liaotian.protocol.MESSAGE_CLASSES (every FROM_CLIENT type but
HELLO, CLOSE and the one-way ACK and TYPING), so a new request type fails
`test_tables_cover_every_request_type` until it is given an example here.

* Before HELLO every request is refused with 1004 BAD_STATE; after HELLO, without a
  session, every session request with 2001 NOT_AUTHENTICATED; with a session, REGISTER,
  LOGIN and AUTH with 2008. The 2001 refusals of the social requests (before a login and
  after a failed one) are tested by tests/integration/test_social_refusals.py and not
  repeated here; this file covers the core ones and the completeness of the union.
* Authorization, as another user: every request that names a group or a conversation is
  refused with 3005 NOT_MEMBER for a user who never was a member, for a removed member and
  for a group that does not exist (existence is not revealed); READ and GET_RECEIPTS on a
  direct conversation of two other users are 3005 too; the requests that reach a user who
  blocked the requester (SEND, GROUP_CREATE and GROUP_ADD naming them, GET_PROFILE) are
  3004 NOT_ALLOWED, and so is a SEND to a contacts-only user; REVOKE_DEVICE naming another
  account's device is 2010 UNKNOWN_DEVICE. tests/integration/test_groups.py and
  test_contacts_blocking.py check several of these one by one; the table makes sure none is
  missing. Every refusal must leave no trace (no push, no change).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from faultkit import server_conns
from liaotian.protocol import (
    MESSAGE_CLASSES,
    Auth,
    Error,
    ErrorCode,
    History,
    ListDevices,
    Login,
    Logout,
    Message,
    MessageType,
    Ping,
    Register,
    RevokeDevice,
    Send,
    Sync,
)
from liaotian.protocol import bots as B
from liaotian.protocol import nearby as N
from liaotian.protocol import shop as S
from liaotian.protocol import wallet as W
from liaotian.protocol.channels import (
    ChannelBan,
    ChannelComment,
    ChannelCreate,
    ChannelDelete,
    ChannelFetch,
    ChannelFind,
    ChannelJoin,
    ChannelLeave,
    ChannelLike,
    ChannelMembers,
    ChannelPin,
    ChannelPost,
    ChannelRead,
    ChannelSearch,
    ChannelSetRole,
    ChannelTransfer,
    ChannelUpdate,
    GetChannel,
)
from liaotian.protocol.media import (
    Download,
    UploadBegin,
    UploadCancel,
    UploadChunk,
    UploadFinish,
)
from liaotian.protocol.messages import ONE_WAY_CLIENT_TYPES
from liaotian.protocol.social import (
    SOCIAL_CLIENT_TYPES,
    Block,
    ContactAccept,
    ContactCancel,
    ContactDecline,
    ContactRemove,
    ContactRequest,
    GetGroup,
    GetPresence,
    GetPrivacy,
    GetProfile,
    GetReceipts,
    GroupAdd,
    GroupCreate,
    GroupInfo,
    GroupLeave,
    GroupRemove,
    GroupSetRole,
    GroupTransfer,
    GroupUpdate,
    ListContacts,
    ListConversations,
    ListGroups,
    Read,
    SetPrivacy,
    SetProfile,
    Unblock,
)
from rawclient import PASSWORD
from socialclient import SocialClient, social_server

REQUEST_TYPES = frozenset(
    t
    for t, cls in MESSAGE_CLASSES.items()
    if cls.FROM_CLIENT
    and t not in (MessageType.HELLO, MessageType.CLOSE)
    and t not in ONE_WAY_CLIENT_TYPES
)
ACCOUNT_TYPES = frozenset({MessageType.REGISTER, MessageType.LOGIN, MessageType.AUTH})
SESSION_TYPES = REQUEST_TYPES - ACCOUNT_TYPES - {MessageType.PING}

# One well-formed example of every request type (the fields, without rid).
EXAMPLES: list[tuple[type[Message], dict[str, Any]]] = [
    (Ping, {}),
    (Register, {"username": "mallory", "password": PASSWORD}),
    (Login, {"username": "alice", "password": PASSWORD, "device": "d9"}),
    (Auth, {"token": "A" * 43}),
    (Logout, {}),
    (ListDevices, {}),
    (RevokeDevice, {"device": "d1"}),
    (Send, {"to": "bob", "cmid": "c1", "text": "hi"}),
    (Send, {"to": "", "group": 1, "cmid": "c2", "text": "hi"}),
    (Sync, {"since": 0}),
    (History, {"with_user": "bob"}),
    (History, {"with_user": "", "group": 1}),
    (GroupCreate, {"name": "g", "members": ("bob",)}),
    (GetGroup, {"group": 1}),
    (GroupAdd, {"group": 1, "users": ("bob",)}),
    (GroupRemove, {"group": 1, "user": "bob"}),
    (GroupLeave, {"group": 1}),
    (GroupUpdate, {"group": 1, "name": "renamed"}),
    (GroupSetRole, {"group": 1, "user": "bob", "role": "admin"}),
    (GroupTransfer, {"group": 1, "user": "bob"}),
    (ListGroups, {}),
    (Read, {"conv": 1, "pos": 1}),
    (GetReceipts, {"conv": 1}),
    (ListConversations, {"limit": 5}),
    (GetPresence, {"users": ("bob",)}),
    (ContactRequest, {"user": "bob"}),
    (ContactAccept, {"user": "bob"}),
    (ContactDecline, {"user": "bob"}),
    (ContactCancel, {"user": "bob"}),
    (ContactRemove, {"user": "bob"}),
    (ListContacts, {}),
    (Block, {"user": "bob"}),
    (Unblock, {"user": "bob"}),
    (SetProfile, {"display_name": "Mallory"}),
    (GetProfile, {"user": "bob"}),
    (SetPrivacy, {"messages": "contacts"}),
    (GetPrivacy, {}),
    # media (SPEC.md 27)
    (
        UploadBegin,
        {"size": 5, "sha256": bytes(32), "media_type": "text/plain", "chunk_size": 16384},
    ),
    (UploadChunk, {"upload": 1, "offset": 0, "data": b"hello"}),
    (UploadFinish, {"upload": 1}),
    (UploadCancel, {"upload": 1}),
    (Download, {"blob": bytes(32), "offset": 0, "length": 1}),
    (ChannelCreate, {"name": "forum"}),
    (GetChannel, {"channel": 1}),
    (ChannelJoin, {"channel": 1}),
    (ChannelLeave, {"channel": 1}),
    (ChannelUpdate, {"channel": 1, "name": "renamed"}),
    (ChannelSetRole, {"channel": 1, "user": "bob", "role": "admin"}),
    (ChannelBan, {"channel": 1, "user": "bob"}),
    (ChannelPost, {"channel": 1, "cmid": "p1", "text": "hi"}),
    (ChannelComment, {"channel": 1, "post": 1, "text": "hi"}),
    (ChannelLike, {"channel": 1, "post": 1}),
    (ChannelPin, {"channel": 1, "post": 1}),
    (ChannelDelete, {"channel": 1, "post": 1}),
    (ChannelRead, {"channel": 1, "pos": 1}),
    (ChannelFetch, {"channel": 1}),
    (ChannelSearch, {"channel": 1, "query": "hi"}),
    (ChannelTransfer, {"channel": 1, "user": "bob"}),
    (ChannelMembers, {"channel": 1}),
    (ChannelFind, {"name": "forum"}),
    (W.GetWallet, {}),
    (W.ListTransfers, {"limit": 5}),
    (W.Pay, {"to": "bob", "amount": 1, "key": "k1"}),
    (W.RedPacketSend, {"to": "", "group": 1, "amount": 1, "count": 1, "key": "k2"}),
    (W.RedPacketClaim, {"packet": 1}),
    (W.GetRedPacket, {"packet": 1}),
    (W.CheckIn, {"key": "k3"}),
    (W.ListTasks, {}),
    (W.ListItems, {}),
    (W.ItemGift, {"code": "ABCD", "to": "bob"}),
    (W.ItemRedeem, {"code": "ABCD"}),
    (N.NearbyShare, {"lat": 31_230_400, "lon": 121_473_700}),
    (N.NearbyStop, {}),
    (N.NearbyQuery, {"lat": 31_230_400, "lon": 121_473_700}),
    (N.NearbyHello, {"user": "bob", "note": "hi"}),
    (N.MerchantSet, {"name": "Cafe", "category": "coffee", "lat": 0, "lon": 0}),
    (N.GetMerchant, {"user": "bob"}),
    (S.ProductAdd, {"title": "x", "price": 1, "stock": 1}),
    (S.ProductStock, {"product": 1, "stock": 1}),
    (S.ListProducts, {"merchant": "bob"}),
    (S.GetProduct, {"product": 1}),
    (S.ProductCard, {"product": 1, "to": "bob"}),
    (S.OrderPlace, {"product": 1, "key": "k"}),
    (S.OrderStep, {"order": 1, "step": "cancel"}),
    (S.ListOrders, {}),
    (B.BotCreate, {"name": "abot"}),
    (B.ListBots, {}),
    (B.BotToken, {"name": "abot"}),
    (B.BotDelete, {"name": "abot"}),
    (B.SetCommands, {"commands": ()}),
    (B.GetCommands, {"bot": "abot"}),
    (B.Press, {"conv": 1, "pos": 1, "data": "x"}),
    (B.AnswerCallback, {"callback": 1}),
    (B.BotEdit, {"conv": 1, "pos": 1, "text": "t"}),
    (B.GroupBots, {"group": 1, "see_all": True}),
    (B.PendingCallbacks, {}),
]


def targets_a_conversation(cls: type[Message]) -> bool:
    """Requests that name a group or a conversation by id."""
    names = {f.name for f in dataclasses.fields(cls)}
    return bool(names & {"group", "conv"})


def test_tables_cover_every_request_type() -> None:
    assert {int(cls.TYPE) for cls, _ in EXAMPLES} == set(REQUEST_TYPES)
    # every request naming a group or conversation is in the authorization table
    named = {cls for cls, _ in EXAMPLES if targets_a_conversation(cls)}
    assert named == {cls for cls, _ in NOT_MEMBER_TABLE}


async def refused(c: SocialClient, cls: type[Message], fields: dict[str, Any], code: int) -> None:
    msg = cls(rid=c.rid(), **fields)
    ans = await c.request_raw(msg)
    assert isinstance(ans, Error) and ans.code == code and ans.rid == msg.rid, (
        f"{cls.__name__} {fields} by {c.user or 'anonymous'} was answered {ans}, "
        f"expected ERROR {code}"
    )


async def test_every_request_before_hello_is_1004(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        await net.register("alice", "bob")
        # 1004 counts towards max_protocol_errors (10): at most 8 per connection
        for start in range(0, len(EXAMPLES), 8):
            c = await net.connect()
            for cls, fields in EXAMPLES[start : start + 8]:
                await refused(c, cls, fields, ErrorCode.BAD_STATE)
            await c.hello()  # the connection is still usable
            await c.barrier()
        # nothing happened: no account was created, nobody logged in
        c = await net.anonymous()
        await c.register("mallory", PASSWORD)
        assert server_conns(net.srv, "alice") == []


async def test_session_requests_need_a_session_and_account_requests_refuse_one(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        await net.register("alice", "bob")
        session = [
            (cls, fields)
            for cls, fields in EXAMPLES
            if int(cls.TYPE) in SESSION_TYPES and int(cls.TYPE) not in SOCIAL_CLIENT_TYPES
        ]
        # a connection sends at most max_preauth_frames (32) frames before it authenticates:
        # a fresh one per 16 requests
        for start in range(0, len(session), 16):
            c = await net.anonymous()
            for cls, fields in session[start : start + 16]:
                await refused(c, cls, fields, ErrorCode.NOT_AUTHENTICATED)
        # nothing happened: a login on the same connection finds an empty account
        await c.login("alice", PASSWORD, "d1")
        assert [u for p in await c.sync_all() for u in p.updates] == []
        assert [d.device for d in (await c.devices()).devices] == ["d1"]
        for cls, fields in EXAMPLES:
            if int(cls.TYPE) in ACCOUNT_TYPES:
                await refused(c, cls, fields, ErrorCode.ALREADY_AUTHENTICATED)
        await c.assert_no_push()


# requests naming a group (G) or a conversation (C); {G} / {C} are filled in per case
NOT_MEMBER_TABLE: list[tuple[type[Message], dict[str, Any]]] = [
    (GetGroup, {"group": "G"}),
    (History, {"with_user": "", "group": "G"}),
    (Send, {"to": "", "group": "G", "cmid": "intruder", "text": "let me in"}),
    (Read, {"conv": "C", "pos": 1}),
    (GetReceipts, {"conv": "C"}),
    (GroupAdd, {"group": "G", "users": ("carol",)}),
    (GroupRemove, {"group": "G", "user": "bob"}),
    (GroupLeave, {"group": "G"}),
    (GroupUpdate, {"group": "G", "name": "hijacked"}),
    (GroupSetRole, {"group": "G", "user": "bob", "role": "admin"}),
    (GroupTransfer, {"group": "G", "user": "bob"}),
    (W.RedPacketSend, {"to": "", "group": "G", "amount": 1, "count": 1, "key": "intruder"}),
    (B.Press, {"conv": "C", "pos": 1, "data": "x"}),
    (B.BotEdit, {"conv": "C", "pos": 1, "text": "hijacked"}),
    (B.GroupBots, {"group": "G", "see_all": True}),
]


def fill(fields: dict[str, Any], group: int, conv: int) -> dict[str, Any]:
    return {k: group if v == "G" else conv if v == "C" else v for k, v in fields.items()}


async def test_authorization_refusals_as_another_user(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        await net.register("alice", "bob", "carol", "dave", "erin", "mallory")
        alice, bob, carol, dave, erin, mallory = [
            await net.user(n) for n in ("alice", "bob", "carol", "dave", "erin", "mallory")
        ]
        phone = await net.user("alice", "alicephone")
        team = await alice.create_group("team", ("bob", "dave"))
        g = team.group
        await alice.ok(GroupRemove, group=g, user="dave")  # dave: a former member
        direct = await alice.send("bob", "hello bob")
        await bob.ok(Block, user="mallory")
        await erin.ok(SetPrivacy, messages="contacts")
        solo = await mallory.create_group("solo", ())
        nowhere = 10_000_000  # no such group or conversation

        # watchers: fresh live connections of alice and bob, caught up: any trace of a
        # refused request would reach them as a push
        watch_a, watch_b = await net.user("alice", "wa"), await net.user("bob", "wb")
        info_before = await alice.get(GetGroup, GroupInfo, group=g)

        cases: list[tuple[SocialClient, type[Message], dict[str, Any], int]] = []
        for who in (carol, dave):
            for cls, fields in NOT_MEMBER_TABLE:
                cases.append((who, cls, fill(fields, g, g), ErrorCode.NOT_MEMBER))
        for cls, fields in NOT_MEMBER_TABLE:
            cases.append((carol, cls, fill(fields, nowhere, nowhere), ErrorCode.NOT_MEMBER))
        cases += [
            (carol, Read, {"conv": direct.conv, "pos": 1}, ErrorCode.NOT_MEMBER),
            (carol, GetReceipts, {"conv": direct.conv}, ErrorCode.NOT_MEMBER),
            (mallory, Send, {"to": "bob", "cmid": "m1", "text": "hi"}, ErrorCode.NOT_ALLOWED),
            (mallory, GroupCreate, {"name": "trap", "members": ("bob",)}, ErrorCode.NOT_ALLOWED),
            (mallory, GroupAdd, {"group": solo.group, "users": ("bob",)}, ErrorCode.NOT_ALLOWED),
            (mallory, GetProfile, {"user": "bob"}, ErrorCode.NOT_ALLOWED),
            (mallory, Send, {"to": "erin", "cmid": "m2", "text": "hi"}, ErrorCode.NOT_ALLOWED),
            (carol, RevokeDevice, {"device": "alicephone"}, ErrorCode.UNKNOWN_DEVICE),
        ]
        for who, cls, fields, code in cases:
            await refused(who, cls, fields, code)

        # no trace anywhere
        await watch_a.assert_no_push()
        await watch_b.assert_no_push()
        await phone.barrier()  # alice's other device was not revoked
        info_after = await alice.get(GetGroup, GroupInfo, group=g)
        assert (info_after.name, info_after.pos, info_after.owner, info_after.members) == (
            info_before.name,
            info_before.pos,
            info_before.owner,
            info_before.members,
        )
        assert [m.text for m in (await bob.full_history("alice"))] == ["hello bob"]
        assert [m.cmid for m in (await bob.ghistory(g)).messages if not m.event] == []
