"""Typed messages: the registry, field validation, forward compatibility, name rules."""

from __future__ import annotations

import json
import math
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from liaotian.protocol import (
    MAX_PASSWORD_LEN,
    MESSAGE_CLASSES,
    MIN_PASSWORD_LEN,
    Ack,
    Auth,
    Authenticated,
    ChatMessage,
    Close,
    DeviceInfo,
    DeviceList,
    DeviceRevoked,
    Error,
    ErrorCode,
    Hello,
    History,
    HistoryPage,
    Limits,
    ListDevices,
    LoggedOut,
    Login,
    Logout,
    Message,
    MessageType,
    Ping,
    Pong,
    ProtocolError,
    Register,
    Registered,
    RevokeDevice,
    Send,
    Sent,
    Sync,
    Update,
    UpdateKind,
    Updates,
    Welcome,
    decode_message,
    unpack_body,
    validate_device,
    validate_username,
)
from liaotian.protocol.bots import BOT_CLIENT_TYPES
from liaotian.protocol.media import (
    BlobData,
    Download,
    UploadBegin,
    UploadCancel,
    UploadChunk,
    UploadDone,
    UploadFinish,
    UploadStatus,
)
from liaotian.protocol.social import (
    SOCIAL_CLIENT_TYPES,
    Block,
    ContactAccept,
    ContactCancel,
    ContactDecline,
    ContactList,
    ContactRemove,
    ContactRequest,
    ConversationList,
    ConversationSummary,
    GetGroup,
    GetPresence,
    GetPrivacy,
    GetProfile,
    GetReceipts,
    GroupAdd,
    GroupCreate,
    GroupInfo,
    GroupLeave,
    GroupList,
    GroupMember,
    GroupRemove,
    GroupSetRole,
    GroupSummary,
    GroupTransfer,
    GroupUpdate,
    ListContacts,
    ListConversations,
    ListGroups,
    Marker,
    Ok,
    Presence,
    PresenceEntry,
    PresenceList,
    Privacy,
    Profile,
    Read,
    Receipts,
    SetPrivacy,
    SetProfile,
    Typing,
    TypingNotice,
    Unblock,
)

T = MessageType
MSG = ChatMessage(
    id=9,
    conv=4,
    pos=2,
    sender="alice",
    to="bob",
    ts=1_700_000_000_123,
    cmid="c-1",
    text="hi",
    meta={"reply_to": 1},
)
GMSG = ChatMessage(
    id=10,
    conv=12,
    pos=2,
    sender="alice",
    to="",
    ts=1_700_000_000_456,
    cmid="",
    text="",
    group=12,
    event={"type": "added", "users": ["dave"]},
)

# One representative, fully populated instance of every message type.
SHA = bytes.fromhex("b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9")
EXAMPLES: dict[int, Message] = {
    T.HELLO: Hello(rid=1, versions=(1, 2), client="cli/0.1"),
    T.WELCOME: Welcome(
        rid=1,
        version=1,
        server="liaotian/0.1.0",
        time=1_700_000_000_000,
        heartbeat=30.0,
        limits={"max_frame_size": 1 << 20},
    ),
    T.PING: Ping(rid=2),
    T.PONG: Pong(rid=2, time=1_700_000_000_001),
    T.CLOSE: Close(rid=0, code=1000, reason="bye"),
    T.ERROR: Error(rid=3, code=2007, message="slow down", retry_after=2.5, data={"versions": [1]}),
    T.REGISTER: Register(rid=4, username="alice", password="password1"),
    T.REGISTERED: Registered(rid=4, user="alice"),
    T.LOGIN: Login(rid=5, username="alice", password="password1", device="phone"),
    T.AUTH: Auth(rid=6, token="tok"),
    T.AUTHENTICATED: Authenticated(
        rid=5, user="alice", device="phone", head=10, acked=7, token="tok"
    ),
    T.LOGOUT: Logout(rid=7),
    T.LOGGED_OUT: LoggedOut(rid=7),
    T.LIST_DEVICES: ListDevices(rid=8),
    T.DEVICE_LIST: DeviceList(
        rid=8,
        devices=(
            DeviceInfo(device="phone", created=1, last_seen=2, online=True, acked=3),
            DeviceInfo(device="laptop", created=4, last_seen=5, online=False, acked=0),
        ),
    ),
    T.REVOKE_DEVICE: RevokeDevice(rid=9, device="laptop"),
    T.DEVICE_REVOKED: DeviceRevoked(rid=9, device="laptop"),
    T.SEND: Send(rid=10, to="bob", cmid="c-1", text="hi", meta={"reply_to": 1}),
    T.SENT: Sent(
        rid=10, id=9, conv=4, pos=2, ts=1_700_000_000_123, seq=11, cmid="c-1", duplicate=True
    ),
    T.SYNC: Sync(rid=11, since=3, limit=100),
    T.UPDATES: Updates(
        rid=11,
        updates=(
            Update(seq=4, kind=UpdateKind.MESSAGE, message=MSG),
            Update(seq=5, kind=7, data={"future": True}),
        ),
        head=5,
        more=True,
        resync=True,
    ),
    T.ACK: Ack(rid=0, seq=5),
    T.HISTORY: History(rid=12, with_user="bob", before=10, limit=20),
    T.HISTORY_PAGE: HistoryPage(rid=12, messages=(MSG, GMSG), more=True),
    # the social layer
    T.OK: Ok(rid=13, pos=4),
    T.GROUP_CREATE: GroupCreate(rid=14, name="Trip", members=("bob", "carol"), topic="May"),
    T.GROUP_INFO: GroupInfo(
        rid=14,
        group=12,
        name="Trip",
        topic="May",
        owner="alice",
        created=1_700_000_000_000,
        pos=1,
        members=(
            GroupMember(user="alice", role="owner", joined=1_700_000_000_000),
            GroupMember(user="bob", role="admin", joined=1_700_000_000_001),
        ),
    ),
    T.GET_GROUP: GetGroup(rid=15, group=12),
    T.GROUP_ADD: GroupAdd(rid=16, group=12, users=("dave", "erin")),
    T.GROUP_REMOVE: GroupRemove(rid=17, group=12, user="dave"),
    T.GROUP_LEAVE: GroupLeave(rid=18, group=12),
    T.GROUP_UPDATE: GroupUpdate(rid=19, group=12, name="Trip 2", topic=""),
    T.GROUP_SET_ROLE: GroupSetRole(rid=20, group=12, user="bob", role="member"),
    T.GROUP_TRANSFER: GroupTransfer(rid=21, group=12, user="bob"),
    T.LIST_GROUPS: ListGroups(rid=22),
    T.GROUP_LIST: GroupList(
        rid=22,
        groups=(GroupSummary(group=12, name="Trip", topic="", role="member", members=3),),
    ),
    T.READ: Read(rid=23, conv=4, pos=2),
    T.GET_RECEIPTS: GetReceipts(rid=24, conv=12),
    T.RECEIPTS: Receipts(
        rid=24,
        conv=12,
        read=(Marker(user="bob", pos=2),),
        delivered=(Marker(user="bob", pos=3), Marker(user="carol", pos=0)),
    ),
    T.LIST_CONVERSATIONS: ListConversations(
        rid=25, limit=10, before_ts=1_700_000_000_000, before_conv=4
    ),
    T.CONVERSATION_LIST: ConversationList(
        rid=25,
        conversations=(
            ConversationSummary(
                conv=12,
                kind="group",
                name="Trip",
                ts=GMSG.ts,
                unread=1,
                read=1,
                last=GMSG,
                group=12,
            ),
            ConversationSummary(
                conv=4,
                kind="direct",
                name="bob",
                ts=MSG.ts,
                unread=0,
                read=2,
                last=MSG,
                peer="bob",
            ),
            ConversationSummary(
                conv=13, kind="group", name="New", ts=5, unread=0, read=0, group=13
            ),
        ),
        more=True,
    ),
    T.TYPING: Typing(rid=0, typing=True, to="bob"),
    T.TYPING_NOTICE: TypingNotice(rid=0, user="bob", typing=True, ttl=6.0, group=12),
    T.PRESENCE: Presence(rid=0, user="bob", online=True, last_seen=0),
    T.GET_PRESENCE: GetPresence(rid=26, users=("bob", "carol")),
    T.PRESENCE_LIST: PresenceList(
        rid=26, presence=(PresenceEntry(user="bob", online=False, last_seen=123),)
    ),
    T.CONTACT_REQUEST: ContactRequest(rid=27, user="carol"),
    T.CONTACT_ACCEPT: ContactAccept(rid=28, user="carol"),
    T.CONTACT_DECLINE: ContactDecline(rid=29, user="carol"),
    T.CONTACT_CANCEL: ContactCancel(rid=30, user="carol"),
    T.CONTACT_REMOVE: ContactRemove(rid=31, user="carol"),
    T.LIST_CONTACTS: ListContacts(rid=32),
    T.CONTACT_LIST: ContactList(
        rid=32, contacts=("bob",), incoming=("carol",), outgoing=(), blocked=("eve",)
    ),
    T.BLOCK: Block(rid=33, user="eve"),
    T.UNBLOCK: Unblock(rid=34, user="eve"),
    T.SET_PROFILE: SetProfile(rid=35, display_name="Alice", status="hi"),
    T.GET_PROFILE: GetProfile(rid=36, user="bob"),
    T.PROFILE: Profile(rid=36, user="bob", display_name="Bob", status=""),
    T.SET_PRIVACY: SetPrivacy(rid=37, presence="contacts", profile="nobody", messages="contacts"),
    T.GET_PRIVACY: GetPrivacy(rid=38),
    T.PRIVACY: Privacy(rid=38, presence="contacts", profile="everyone", messages="everyone"),
    # media (SPEC.md 27)
    T.UPLOAD_BEGIN: UploadBegin(
        rid=39, size=11, sha256=SHA, media_type="text/plain", chunk_size=16384, name="hello.txt"
    ),
    T.UPLOAD_STATUS: UploadStatus(
        rid=39, upload=7, size=11, chunk_size=16384, held=(), expires=1_700_086_400_000
    ),
    T.UPLOAD_CHUNK: UploadChunk(rid=40, upload=7, offset=0, data=b"hello world"),
    T.UPLOAD_FINISH: UploadFinish(rid=41, upload=7),
    T.UPLOAD_DONE: UploadDone(rid=41, blob=SHA, size=11, media_type="text/plain"),
    T.UPLOAD_CANCEL: UploadCancel(rid=42, upload=8),
    T.DOWNLOAD: Download(rid=43, blob=SHA, offset=0, length=524288),
    T.BLOB_DATA: BlobData(rid=43, blob=SHA, offset=0, size=11, data=b"hello world"),
}


def _vector_examples() -> dict[int, Message]:
    """The channel (110-139), wallet (150-170), bot (180-199), nearby (200-209) and shop
    (210-239) messages: the first test vector of each type (SPEC section 28), decoded from
    its frame."""
    path = Path(__file__).resolve().parents[1] / "vectors" / "protocol_v1.json"
    out: dict[int, Message] = {}
    for v in json.loads(path.read_text(encoding="utf-8")):
        t = v["type"]
        if (110 <= t <= 139 or 150 <= t <= 170 or 180 <= t <= 239) and t not in out:
            _, rid, payload = unpack_body(bytes.fromhex(v["hex"])[4:])
            out[t] = decode_message(t, rid, payload)
    return out


EXAMPLES.update(_vector_examples())

CLIENT_SENT = {
    T.HELLO,
    T.PING,
    T.CLOSE,
    T.REGISTER,
    T.LOGIN,
    T.AUTH,
    T.LOGOUT,
    T.LIST_DEVICES,
    T.REVOKE_DEVICE,
    T.SEND,
    T.SYNC,
    T.ACK,
    T.HISTORY,
    *SOCIAL_CLIENT_TYPES,
    # media (SPEC 27)
    T.UPLOAD_BEGIN,
    T.UPLOAD_CHUNK,
    T.UPLOAD_FINISH,
    T.UPLOAD_CANCEL,
    T.DOWNLOAD,
    # channels (SPEC 24)
    T.CHANNEL_CREATE,
    T.GET_CHANNEL,
    T.CHANNEL_JOIN,
    T.CHANNEL_LEAVE,
    T.CHANNEL_UPDATE,
    T.CHANNEL_SET_ROLE,
    T.CHANNEL_BAN,
    T.CHANNEL_POST,
    T.CHANNEL_COMMENT,
    T.CHANNEL_LIKE,
    T.CHANNEL_PIN,
    T.CHANNEL_DELETE,
    T.CHANNEL_READ,
    T.CHANNEL_FETCH,
    T.CHANNEL_SEARCH,
    T.CHANNEL_TRANSFER,
    T.CHANNEL_MEMBERS,
    T.CHANNEL_FIND,
    # the wallet (SPEC 25)
    T.GET_WALLET,
    T.LIST_TRANSFERS,
    T.PAY,
    T.RED_PACKET_SEND,
    T.RED_PACKET_CLAIM,
    T.GET_RED_PACKET,
    T.CHECK_IN,
    T.LIST_TASKS,
    T.LIST_ITEMS,
    T.ITEM_GIFT,
    T.ITEM_REDEEM,
    # nearby (SPEC 29)
    T.NEARBY_SHARE,
    T.NEARBY_STOP,
    T.NEARBY_QUERY,
    T.NEARBY_HELLO,
    T.MERCHANT_SET,
    T.GET_MERCHANT,
    # the shop (SPEC 30)
    T.PRODUCT_ADD,
    T.PRODUCT_STOCK,
    T.LIST_PRODUCTS,
    T.GET_PRODUCT,
    T.PRODUCT_CARD,
    T.ORDER_PLACE,
    T.ORDER_STEP,
    T.LIST_ORDERS,
    # bots (SPEC 26)
    *BOT_CLIENT_TYPES,
}


def wire_payload(msg: Message) -> dict[str, Any]:
    """The payload exactly as a peer decodes it (IntEnums become ints, tuples lists)."""
    return unpack_body(msg.encode()[4:])[2]


def decode(
    msg_type: int, payload: dict[str, Any], rid: int = 42, limits: Limits | None = None
) -> Message:
    if limits is None:
        return decode_message(msg_type, rid, payload)
    return decode_message(msg_type, rid, payload, limits)


def assert_invalid(
    msg_type: int,
    payload: dict[str, Any],
    field: str | None = None,
    rid: int = 42,
    limits: Limits | None = None,
) -> None:
    with pytest.raises(ProtocolError) as info:
        decode(msg_type, payload, rid, limits)
    assert info.value.code == ErrorCode.INVALID_FIELD
    assert info.value.rid == rid
    if field is not None:
        assert repr(field) in info.value.message


# --------------------------------------------------------------------------- registry


def test_registry_covers_every_message_type() -> None:
    assert set(MESSAGE_CLASSES) == {int(t) for t in MessageType}
    assert set(EXAMPLES) == set(MESSAGE_CLASSES)
    for number, cls in MESSAGE_CLASSES.items():
        assert int(cls.TYPE) == number
        assert cls.FROM_CLIENT is (number in CLIENT_SENT), cls.__name__


def test_type_numbers_match_the_brief() -> None:
    assert (T.ACK, T.CLOSE) == (34, 5)
    assert [int(t) for t in (T.HELLO, T.WELCOME, T.PING, T.PONG, T.ERROR)] == [1, 2, 3, 4, 6]
    assert int(UpdateKind.MESSAGE) == 1


@pytest.mark.parametrize("msg_type", sorted(EXAMPLES))
def test_example_round_trips(msg_type: int) -> None:
    msg = EXAMPLES[msg_type]
    decoded = decode_message(msg_type, msg.rid, wire_payload(msg))
    assert type(decoded) is type(msg)
    assert decoded == msg


def test_unknown_type_is_unknown_type_with_rid() -> None:
    for t in (8, 21, 37, 51, 65, 79, 86, 99, 0xFFFF):
        with pytest.raises(ProtocolError) as info:
            decode_message(t, 17, {})
        assert info.value.code == ErrorCode.UNKNOWN_TYPE
        assert info.value.rid == 17


# --------------------------------------------------------------------------- forward compat


@pytest.mark.parametrize("msg_type", sorted(EXAMPLES))
def test_unknown_payload_keys_are_ignored(msg_type: int) -> None:
    msg = EXAMPLES[msg_type]
    payload = {**wire_payload(msg), "zz_future": [1, {"a": None}], "x": b"\x00", "": 3}
    assert decode_message(msg_type, msg.rid, payload) == msg


def test_unknown_keys_inside_nested_maps_are_ignored() -> None:
    wire = {**MSG.to_wire(), "reactions": 123}
    page = decode(T.HISTORY_PAGE, {"messages": [wire], "more": False})
    assert isinstance(page, HistoryPage) and page.messages == (MSG,)
    dev = {**EXAMPLES[T.DEVICE_LIST].devices[0].to_wire(), "name": "Pixel"}  # type: ignore[attr-defined]
    assert decode(T.DEVICE_LIST, {"devices": [dev]}) == DeviceList(
        rid=42, devices=(EXAMPLES[T.DEVICE_LIST].devices[0],)
    )  # type: ignore[attr-defined]


def test_unknown_update_kinds_keep_their_raw_data() -> None:
    ups = decode(T.UPDATES, {"updates": [[3, 99, {"x": [1]}]], "head": 3})
    assert isinstance(ups, Updates)
    assert ups.updates == (Update(seq=3, kind=99, data={"x": [1]}),)
    assert ups.more is False and ups.resync is False


def test_optional_fields_take_their_defaults() -> None:
    assert decode(T.HELLO, {"versions": [1]}) == Hello(rid=42, versions=(1,), client="")
    assert decode(T.CLOSE, {"code": 1001}) == Close(rid=42, code=1001, reason="")
    assert decode(T.ERROR, {"code": 1001}) == Error(rid=42, code=1001)
    assert decode(T.SEND, {"to": "b", "cmid": "c", "text": ""}) == Send(
        rid=42, to="b", cmid="c", text="", meta={}
    )
    assert decode(T.SENT, {"id": 1, "conv": 1, "pos": 1, "ts": 1, "seq": 1, "cmid": "c"}) == Sent(
        rid=42, id=1, conv=1, pos=1, ts=1, seq=1, cmid="c", duplicate=False
    )
    assert decode(T.SYNC, {"since": 0}) == Sync(rid=42, since=0, limit=None)
    assert decode(T.HISTORY, {"with": "bob"}) == History(rid=42, with_user="bob")
    assert decode(T.SEND, {"group": 5, "cmid": "c", "text": ""}) == Send(
        rid=42, to="", cmid="c", text="", group=5
    )
    assert decode(T.HISTORY, {"group": 5}) == History(rid=42, with_user="", group=5)
    assert decode(
        T.AUTHENTICATED, {"user": "a", "device": "d", "head": 0, "acked": 0}
    ) == Authenticated(rid=42, user="a", device="d", head=0, acked=0, token=None)
    assert decode(T.HISTORY_PAGE, {"messages": []}) == HistoryPage(rid=42, messages=())
    assert decode(T.WELCOME, {"version": 1, "server": "s", "time": 0, "heartbeat": 5}) == Welcome(
        rid=42, version=1, server="s", time=0, heartbeat=5.0, limits={}
    )


def test_optional_fields_are_omitted_on_the_wire() -> None:
    assert Error(rid=1, code=5001).to_payload() == {"code": 5001, "message": ""}
    assert Send(rid=1, to="b", cmid="c", text="t").to_payload() == {
        "to": "b",
        "cmid": "c",
        "text": "t",
    }
    assert Sync(rid=1, since=0).to_payload() == {"since": 0}
    assert History(rid=1, with_user="b").to_payload() == {"with": "b"}
    assert Send(rid=1, to="", cmid="c", text="t", group=5).to_payload() == {
        "group": 5,
        "cmid": "c",
        "text": "t",
    }
    assert History(rid=1, with_user="", group=5, after=2).to_payload() == {"group": 5, "after": 2}
    assert "group" not in MSG.to_wire() and "event" not in MSG.to_wire()
    assert "to" not in GMSG.to_wire() and GMSG.to_wire()["group"] == 12
    assert "token" not in Authenticated(rid=1, user="a", device="d", head=0, acked=0).to_payload()
    assert "resync" not in Updates(rid=0, updates=(), head=0).to_payload()
    assert (
        "meta"
        not in ChatMessage(
            id=1, conv=1, pos=1, sender="a", to="b", ts=1, cmid="c", text="t"
        ).to_wire()
    )
    assert MSG.to_wire()["from"] == "alice" and "sender" not in MSG.to_wire()


# --------------------------------------------------------------------------- invalid fields

_CHAT = MSG.to_wire()
_GCHAT = GMSG.to_wire()
_DEV = {"device": "d", "created": 1, "last_seen": 1, "online": True, "acked": 0}

INVALID: list[tuple[int, dict[str, Any], str]] = [
    (T.HELLO, {}, "versions"),
    (T.HELLO, {"versions": []}, "versions"),
    (T.HELLO, {"versions": "1"}, "versions"),
    (T.HELLO, {"versions": [0]}, "versions"),
    (T.HELLO, {"versions": [0x10000]}, "versions"),
    (T.HELLO, {"versions": [1.0]}, "versions"),
    (T.HELLO, {"versions": list(range(1, 18))}, "versions"),
    (T.HELLO, {"versions": [1], "client": 5}, "client"),
    (T.HELLO, {"versions": [1], "client": "c" * 129}, "client"),
    (T.WELCOME, {"server": "s", "time": 0, "heartbeat": 1}, "version"),
    (T.WELCOME, {"version": 0x10000, "server": "s", "time": 0, "heartbeat": 1}, "version"),
    (T.WELCOME, {"version": 1, "server": "s", "time": -1, "heartbeat": 1}, "time"),
    (T.WELCOME, {"version": 1, "server": "s", "time": 0, "heartbeat": -1.0}, "heartbeat"),
    (T.WELCOME, {"version": 1, "server": "s", "time": 0, "heartbeat": "30"}, "heartbeat"),
    (T.WELCOME, {"version": 1, "server": "s", "time": 0}, "heartbeat"),
    (T.WELCOME, {"version": 1, "server": "s", "time": 0, "heartbeat": 1, "limits": []}, "limits"),
    (T.WELCOME, {"version": 1, "server": "s" * 129, "time": 0, "heartbeat": 1}, "server"),
    (T.PONG, {}, "time"),
    (T.PONG, {"time": 1.5}, "time"),
    (T.CLOSE, {}, "code"),
    (T.CLOSE, {"code": 0x10000}, "code"),
    (T.CLOSE, {"code": 1000, "reason": "r" * 257}, "reason"),
    (T.CLOSE, {"code": 1000, "reason": None}, "reason"),
    (T.ERROR, {"message": "x"}, "code"),
    (T.ERROR, {"code": 1, "message": "m" * 1025}, "message"),
    (T.ERROR, {"code": 1, "retry_after": -0.5}, "retry_after"),
    (T.ERROR, {"code": 1, "retry_after": "soon"}, "retry_after"),
    (T.ERROR, {"code": 1, "data": [1]}, "data"),
    (T.ERROR, {"code": 1, "data": {b"k": 1}}, "data"),
    (T.REGISTER, {"password": "password1"}, "username"),
    (T.REGISTER, {"username": "u" * 257, "password": "password1"}, "username"),
    (T.REGISTER, {"username": "alice", "password": "p" * 4097}, "password"),
    (T.REGISTER, {"username": b"alice", "password": "password1"}, "username"),
    (T.REGISTERED, {}, "user"),
    (T.LOGIN, {"username": "alice", "password": "password1"}, "device"),
    (T.LOGIN, {"username": "alice", "password": "password1", "device": "d" * 257}, "device"),
    (T.AUTH, {}, "token"),
    (T.AUTH, {"token": "t" * 257}, "token"),
    (T.AUTH, {"token": None}, "token"),
    (T.AUTHENTICATED, {"user": "a", "device": "d", "head": 0, "acked": 0, "token": 5}, "token"),
    (T.AUTHENTICATED, {"user": "a", "device": "d", "head": -1, "acked": 0}, "head"),
    (T.AUTHENTICATED, {"user": "a", "device": "d", "head": 0}, "acked"),
    (T.DEVICE_LIST, {}, "devices"),
    (T.DEVICE_LIST, {"devices": {"d": 1}}, "devices"),
    (T.DEVICE_LIST, {"devices": [1]}, "devices"),
    (T.DEVICE_LIST, {"devices": [{**_DEV, "created": None}]}, "created"),
    (T.DEVICE_LIST, {"devices": [{**_DEV, "online": "yes"}]}, "online"),
    (T.DEVICE_LIST, {"devices": [{**_DEV, "online": 1}]}, "online"),
    (T.REVOKE_DEVICE, {}, "device"),
    (T.DEVICE_REVOKED, {"device": 1}, "device"),
    (T.SEND, {"to": "b", "cmid": "", "text": "t"}, "cmid"),
    (T.SEND, {"to": "b", "cmid": "c" * 65, "text": "t"}, "cmid"),
    (T.SEND, {"cmid": "c", "text": "t"}, "to"),
    (T.SEND, {"to": "b", "cmid": "c"}, "text"),
    (T.SEND, {"to": "b", "cmid": "c", "text": 5}, "text"),
    (T.SEND, {"to": "b", "cmid": "c", "text": "t", "meta": [1]}, "meta"),
    # exactly one of to / group
    (T.SEND, {"to": "b", "group": 1, "cmid": "c", "text": "t"}, "to"),
    (T.SEND, {"to": "", "group": 0, "cmid": "c", "text": "t"}, "to"),
    (T.SEND, {"group": -1, "cmid": "c", "text": "t"}, "group"),
    (T.SEND, {"group": "12", "cmid": "c", "text": "t"}, "group"),
    (T.SEND, {"group": True, "cmid": "c", "text": "t"}, "group"),
    (T.SEND, {"group": None, "cmid": "c", "text": "t"}, "group"),
    (T.SEND, {"group": 2**63, "cmid": "c", "text": "t"}, "group"),
    (T.SEND, {"to": 5, "cmid": "c", "text": "t"}, "to"),
    (T.SENT, {"id": 1, "conv": 1, "pos": 1, "ts": 1, "seq": "1", "cmid": "c"}, "seq"),
    (
        T.SENT,
        {"id": 1, "conv": 1, "pos": 1, "ts": 1, "seq": 1, "cmid": "c", "duplicate": 1},
        "duplicate",
    ),
    (T.SENT, {"id": -1, "conv": 1, "pos": 1, "ts": 1, "seq": 1, "cmid": "c"}, "id"),
    (T.SYNC, {}, "since"),
    (T.SYNC, {"since": -1}, "since"),
    (T.SYNC, {"since": 2**63}, "since"),
    (T.SYNC, {"since": 0, "limit": 0}, "limit"),
    (T.SYNC, {"since": 0, "limit": 1001}, "limit"),
    (T.SYNC, {"since": 0, "limit": None}, "limit"),
    (T.UPDATES, {"head": 0}, "updates"),
    (T.UPDATES, {"updates": {}, "head": 0}, "updates"),
    (T.UPDATES, {"updates": [], "head": 0, "more": 1}, "more"),
    (T.UPDATES, {"updates": [], "head": 0, "resync": "yes"}, "resync"),
    (T.UPDATES, {"updates": []}, "head"),
    (T.UPDATES, {"updates": [[1, 1]], "head": 1}, "updates"),
    (T.UPDATES, {"updates": [{"seq": 1}], "head": 1}, "updates"),
    (T.UPDATES, {"updates": [[0, 2, {}]], "head": 1}, "updates"),
    (T.UPDATES, {"updates": [[True, 2, {}]], "head": 1}, "updates"),
    (T.UPDATES, {"updates": [[1, "msg", {}]], "head": 1}, "updates"),
    (T.UPDATES, {"updates": [[1, 2, []]], "head": 1}, "updates"),
    (T.UPDATES, {"updates": [[1, 1, {}]], "head": 1}, "id"),
    (T.UPDATES, {"updates": [[1, 1, {**_CHAT, "text": None}]], "head": 1}, "text"),
    (T.ACK, {}, "seq"),
    (T.ACK, {"seq": -3}, "seq"),
    (T.HISTORY, {}, "with"),
    (T.HISTORY, {"before": 3}, "with"),
    (T.HISTORY, {"with": "b", "group": 1}, "with"),
    (T.HISTORY, {"group": "1"}, "group"),
    (T.HISTORY, {"group": None}, "group"),
    (T.HISTORY, {"group": 1, "before": 5, "after": 1}, "before"),
    (T.HISTORY, {"group": 1, "limit": 201}, "limit"),
    (T.HISTORY, {"with": "b", "before": 5, "after": 1}, "before"),
    (T.HISTORY, {"with": "b", "before": -1}, "before"),
    (T.HISTORY, {"with": "b", "limit": 0}, "limit"),
    (T.HISTORY, {"with": "b", "limit": 201}, "limit"),
    (T.HISTORY_PAGE, {}, "messages"),
    (T.HISTORY_PAGE, {"messages": [1]}, "message"),
    (T.HISTORY_PAGE, {"messages": [{k: v for k, v in _CHAT.items() if k != "from"}]}, "from"),
    (T.HISTORY_PAGE, {"messages": [{**_CHAT, "meta": "m"}]}, "meta"),
    (T.HISTORY_PAGE, {"messages": [{**_CHAT, "pos": 1.0}]}, "pos"),
    (T.HISTORY_PAGE, {"messages": [], "more": None}, "more"),
    # direct messages need "to"; group messages carry "group" instead
    (T.HISTORY_PAGE, {"messages": [{k: v for k, v in _CHAT.items() if k != "to"}]}, "to"),
    (T.HISTORY_PAGE, {"messages": [{**_GCHAT, "group": "12"}]}, "group"),
    (T.HISTORY_PAGE, {"messages": [{**_GCHAT, "group": None}]}, "group"),
    (T.HISTORY_PAGE, {"messages": [{**_GCHAT, "group": -1}]}, "group"),
    (T.HISTORY_PAGE, {"messages": [{**_GCHAT, "event": [1]}]}, "event"),
    (T.HISTORY_PAGE, {"messages": [{**_GCHAT, "event": {1: "x"}}]}, "event"),
    (T.UPDATES, {"updates": [[1, 1, {**_GCHAT, "event": "added"}]], "head": 1}, "event"),
]


@pytest.mark.parametrize(
    ("msg_type", "payload", "field"),
    INVALID,
    ids=[f"{MessageType(t).name}-{f}-{i}" for i, (t, _, f) in enumerate(INVALID)],
)
def test_invalid_field_is_reported_with_the_rid(
    msg_type: int, payload: dict[str, Any], field: str
) -> None:
    assert_invalid(msg_type, payload, field, rid=42)
    assert_invalid(msg_type, payload, field, rid=0)


def _numeric_keys(payload: dict[str, Any]) -> list[str]:
    return [k for k, v in payload.items() if type(v) in (int, float)]


@pytest.mark.parametrize("msg_type", sorted(EXAMPLES))
def test_bool_is_not_accepted_as_a_number(msg_type: int) -> None:
    payload = wire_payload(EXAMPLES[msg_type])
    for key in _numeric_keys(payload):
        for fake in (True, False):
            assert_invalid(msg_type, {**payload, key: fake}, key)


@pytest.mark.parametrize("key", ["id", "conv", "pos", "ts"])
def test_bool_is_not_accepted_as_an_int_in_nested_messages(key: str) -> None:
    assert_invalid(T.HISTORY_PAGE, {"messages": [{**_CHAT, key: True}]}, key)
    assert_invalid(T.UPDATES, {"updates": [[1, 1, {**_CHAT, key: False}]], "head": 1}, key)
    assert_invalid(T.DEVICE_LIST, {"devices": [{**_DEV, "acked": True}]}, "acked")


def test_bool_is_not_accepted_as_a_version() -> None:
    assert_invalid(T.HELLO, {"versions": [True]}, "versions")


def test_ints_are_not_accepted_as_bools() -> None:
    sent = EXAMPLES[T.SENT].to_payload()
    assert_invalid(T.SENT, {**sent, "duplicate": 0}, "duplicate")
    assert_invalid(T.UPDATES, {"updates": [], "head": 0, "more": 0}, "more")


def test_int_bounds_are_inclusive() -> None:
    big = 2**63 - 1
    assert decode(T.ACK, {"seq": big}) == Ack(rid=42, seq=big)
    assert decode(T.ACK, {"seq": 0}) == Ack(rid=42, seq=0)
    assert decode(T.SYNC, {"since": 0, "limit": 1000}) == Sync(rid=42, since=0, limit=1000)
    assert decode(T.HISTORY, {"with": "b", "limit": 200}) == History(
        rid=42, with_user="b", limit=200
    )
    assert decode(T.CLOSE, {"code": 0xFFFF}) == Close(rid=42, code=0xFFFF)
    hello = decode(T.HELLO, {"versions": list(range(1, 17))})
    assert isinstance(hello, Hello) and len(hello.versions) == 16


def test_string_bounds_are_inclusive() -> None:
    assert decode(T.SEND, {"to": "b", "cmid": "c" * 64, "text": "t"}) == Send(
        rid=42, to="b", cmid="c" * 64, text="t"
    )
    assert decode(T.HELLO, {"versions": [1], "client": "é" * 128}) == Hello(
        rid=42, versions=(1,), client="é" * 128
    )
    assert decode(T.ERROR, {"code": 1, "message": "m" * 1024}) == Error(
        rid=42, code=1, message="m" * 1024
    )


def test_limits_argument_is_honoured() -> None:
    small = Limits(max_cmid_len=4, max_sync_page=10, max_history_page=5, max_frame_size=100)
    assert decode(T.SEND, {"to": "b", "cmid": "abcd", "text": "t"}, limits=small)
    assert_invalid(T.SEND, {"to": "b", "cmid": "abcde", "text": "t"}, "cmid", limits=small)
    assert_invalid(T.SEND, {"to": "b", "cmid": "a", "text": "t" * 101}, "text", limits=small)
    assert_invalid(T.SYNC, {"since": 0, "limit": 11}, "limit", limits=small)
    assert_invalid(T.HISTORY, {"with": "b", "limit": 6}, "limit", limits=small)


def test_numbers_accept_int_and_float() -> None:
    err = decode(T.ERROR, {"code": 2007, "retry_after": 3})
    assert isinstance(err, Error) and err.retry_after == 3.0 and type(err.retry_after) is float


@pytest.mark.parametrize(
    ("msg_type", "payload"),
    [
        (T.ERROR, {"code": 4001, "retry_after": math.nan}),
        (T.WELCOME, {"version": 1, "server": "s", "time": 0, "heartbeat": math.nan}),
    ],
)
def test_nan_is_not_a_non_negative_number(msg_type: int, payload: dict[str, Any]) -> None:
    assert_invalid(msg_type, payload)


# --------------------------------------------------------------------------- name rules


@pytest.mark.parametrize(
    "name", ["abc", "a" * 32, "0ab", "a1_.-x", "9__", "a-b", "al.ice", "z" + "9" * 31]
)
def test_valid_usernames(name: str) -> None:
    assert validate_username(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "a",
        "ab",
        "a" * 33,
        "Abc",
        "abC",
        "_abc",
        ".abc",
        "-abc",
        "ab c",
        "abc\n",
        "\nabc",
        "äbc",
        "ab/c",
        "ab@c",
        "ab\u0131",
        "ａbc",
        "abc\x00",
    ],
)
def test_invalid_usernames(name: str) -> None:
    assert not validate_username(name)


@pytest.mark.parametrize("device", ["a", "A", "0", "a" * 64, "Phone:1.2_3-x", "X-", "a::"])
def test_valid_devices(device: str) -> None:
    assert validate_device(device)


@pytest.mark.parametrize(
    "device", ["", "a" * 65, "_a", ":a", "-a", ".a", "a b", "a/b", "a\n", "é", "a\u0660"]
)
def test_invalid_devices(device: str) -> None:
    assert not validate_device(device)


_LOWER = string.ascii_lowercase + string.digits
_USER_ALPHABET = _LOWER + "_.-" + "A Zé\n/"
_DEVICE_OK = string.ascii_letters + string.digits
_DEVICE_ALPHABET = _DEVICE_OK + "_.:-" + " é\n/@"


@settings(max_examples=200, deadline=None, database=None)
@given(st.text(alphabet=_USER_ALPHABET, max_size=40))
def test_username_rule_matches_the_brief(name: str) -> None:
    expected = 3 <= len(name) <= 32 and name[0] in _LOWER and all(c in _LOWER + "_.-" for c in name)
    assert validate_username(name) is expected


@settings(max_examples=200, deadline=None, database=None)
@given(st.text(alphabet=_DEVICE_ALPHABET, max_size=70))
def test_device_rule_matches_the_brief(device: str) -> None:
    expected = (
        1 <= len(device) <= 64
        and device[0] in _DEVICE_OK
        and all(c in _DEVICE_OK + "_.:-" for c in device)
    )
    assert validate_device(device) is expected


def test_password_bounds() -> None:
    assert (MIN_PASSWORD_LEN, MAX_PASSWORD_LEN) == (8, 1024)


# --------------------------------------------------------------------------- SPEC.md details


def test_spec_nil_for_an_optional_field_is_invalid() -> None:
    assert_invalid(T.CLOSE, {"code": 1000, "reason": None}, "reason")
    assert_invalid(T.HELLO, {"versions": [1], "client": None}, "client")
    assert_invalid(T.ERROR, {"code": 1, "retry_after": None}, "retry_after")
    assert_invalid(T.HISTORY, {"with": "b", "after": None}, "after")
    assert_invalid(T.UPDATES, {"updates": [], "head": 0, "resync": None}, "resync")
    assert_invalid(T.DEVICE_LIST, {"devices": [{**_DEV, "online": None}]}, "online")


@pytest.mark.parametrize(
    ("msg_type", "payload", "field"),
    [
        (T.SEND, {"to": "b", "cmid": "c", "text": "t", "meta": None}, "meta"),
        (T.ERROR, {"code": 1, "data": None}, "data"),
        (
            T.WELCOME,
            {"version": 1, "server": "s", "time": 0, "heartbeat": 1.0, "limits": None},
            "limits",
        ),
        (T.HISTORY_PAGE, {"messages": [{**_CHAT, "meta": None}]}, "meta"),
    ],
    ids=["send-meta", "error-data", "welcome-limits", "message-meta"],
)
def test_spec_nil_for_an_optional_map_is_invalid(
    msg_type: int, payload: dict[str, Any], field: str
) -> None:
    assert_invalid(msg_type, payload, field)


def test_spec_always_sent_fields_may_be_absent() -> None:
    dev = {k: v for k, v in _DEV.items() if k != "online"}
    dl = decode(T.DEVICE_LIST, {"devices": [dev]})
    assert isinstance(dl, DeviceList) and dl.devices[0].online is False
    assert (
        decode(T.WELCOME, {"version": 1, "server": "s", "time": 0, "heartbeat": 1.0}).limits == {}
    )  # type: ignore[attr-defined]


_SENT = {"id": 1, "conv": 1, "pos": 1, "ts": 1, "seq": 1, "cmid": "c"}


@pytest.mark.parametrize(
    ("msg_type", "payload", "field"),
    [
        (T.SENT, {**_SENT, "pos": 0}, "pos"),
        (T.SENT, {**_SENT, "seq": 0}, "seq"),
        (T.HISTORY_PAGE, {"messages": [{**_CHAT, "pos": 0}]}, "pos"),
    ],
    ids=["sent-pos", "sent-seq", "message-pos"],
)
def test_spec_positions_and_seqs_start_at_one(
    msg_type: int, payload: dict[str, Any], field: str
) -> None:
    assert_invalid(msg_type, payload, field)


# --------------------------------------------------------------------------- group messages


def test_group_message_map_has_group_instead_of_to() -> None:
    wire = GMSG.to_wire()
    assert list(wire) == ["id", "conv", "pos", "from", "group", "ts", "cmid", "text", "event"]
    assert ChatMessage.from_wire(wire, 1) == GMSG
    text_msg = ChatMessage(
        id=11,
        conv=12,
        pos=3,
        sender="bob",
        to="",
        ts=1,
        cmid="b-1",
        text="hi",
        group=12,
        meta={"k": 1},
    )
    assert list(text_msg.to_wire()) == [
        "id",
        "conv",
        "pos",
        "from",
        "group",
        "ts",
        "cmid",
        "text",
        "meta",
    ]
    assert ChatMessage.from_wire(text_msg.to_wire(), 1) == text_msg


def test_direct_message_map_keeps_the_core_key_order() -> None:
    assert list(MSG.to_wire()) == ["id", "conv", "pos", "from", "to", "ts", "cmid", "text", "meta"]


def test_a_group_message_may_also_carry_to_which_is_read_but_not_written() -> None:
    # forward compatibility: unknown or extra keys do not make the map invalid
    msg = ChatMessage.from_wire({**_GCHAT, "to": "x"}, 1)
    assert msg.group == 12 and msg.to == "x"


def test_empty_event_map_is_kept() -> None:
    msg = ChatMessage.from_wire({**_GCHAT, "event": {}}, 1)
    assert msg.event == {} and "event" in msg.to_wire()


def test_spec_nil_event_is_invalid() -> None:
    """SPEC 1.6: nil for an optional field is invalid, for `event` as for `meta`."""
    assert_invalid(T.HISTORY_PAGE, {"messages": [{**_GCHAT, "event": None}]}, "event")


@pytest.mark.parametrize("cmid", ["#", "#event:12", "#anything"])
def test_a_cmid_starting_with_hash_is_reserved(cmid: str) -> None:
    """SPEC 8.1: the server stores its own timeline events under '#'-prefixed ids; a client
    cmid there could collide with one and fail a whole group commit."""
    assert_invalid(T.SEND, {"to": "b", "cmid": cmid, "text": "t"}, "cmid")
    assert decode(T.SEND, {"to": "b", "cmid": "a#", "text": "t"}).cmid == "a#"
