"""The social layer's messages (SPEC.md 17-23): registration, field checks derived from the
field metadata of protocol/social.py, optional fields, nested entries and update kinds."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest
from liaotian.protocol import (
    MESSAGE_CLASSES,
    ErrorCode,
    Message,
    MessageType,
    ProtocolError,
    Update,
    UpdateKind,
    Updates,
    decode_message,
)
from liaotian.protocol.bots import BOT_CLASSES
from liaotian.protocol.channels import CHANNEL_CLASSES
from liaotian.protocol.media import MEDIA_CLASSES
from liaotian.protocol.messages import (
    CLIENT_TYPES,
    CORE_CLASSES,
    ONE_WAY_CLIENT_TYPES,
    SERVER_TYPES,
)
from liaotian.protocol.nearby import NEARBY_CLASSES
from liaotian.protocol.shop import SHOP_CLASSES
from liaotian.protocol.social import (
    SOCIAL_CLASSES,
    SOCIAL_CLIENT_TYPES,
    SOCIAL_SERVER_TYPES,
    ContactList,
    ConversationList,
    ConversationSummary,
    GetPresence,
    GroupAdd,
    GroupCreate,
    GroupInfo,
    GroupList,
    GroupMember,
    GroupUpdate,
    ListConversations,
    ListGroups,
    Ok,
    PresenceList,
    Receipts,
    SetPrivacy,
    SetProfile,
    Typing,
    TypingNotice,
)
from liaotian.protocol.wallet import WALLET_CLASSES

T = MessageType

# What social.md says, written out (not derived from social.py).
CLIENT_SENT = {
    T.GROUP_CREATE,
    T.GET_GROUP,
    T.GROUP_ADD,
    T.GROUP_REMOVE,
    T.GROUP_LEAVE,
    T.GROUP_UPDATE,
    T.GROUP_SET_ROLE,
    T.GROUP_TRANSFER,
    T.LIST_GROUPS,
    T.READ,
    T.GET_RECEIPTS,
    T.LIST_CONVERSATIONS,
    T.TYPING,
    T.GET_PRESENCE,
    T.CONTACT_REQUEST,
    T.CONTACT_ACCEPT,
    T.CONTACT_DECLINE,
    T.CONTACT_CANCEL,
    T.CONTACT_REMOVE,
    T.LIST_CONTACTS,
    T.BLOCK,
    T.UNBLOCK,
    T.SET_PROFILE,
    T.GET_PROFILE,
    T.SET_PRIVACY,
    T.GET_PRIVACY,
}
SERVER_SENT = {
    T.OK,
    T.GROUP_INFO,
    T.GROUP_LIST,
    T.RECEIPTS,
    T.CONVERSATION_LIST,
    T.TYPING_NOTICE,
    T.PRESENCE,
    T.PRESENCE_LIST,
    T.CONTACT_LIST,
    T.PROFILE,
    T.PRIVACY,
}


def decode(msg_type: int, payload: dict[str, Any], rid: int = 42) -> Message:
    return decode_message(msg_type, rid, payload)


def assert_invalid(msg_type: int, payload: dict[str, Any], field: str, rid: int = 42) -> None:
    with pytest.raises(ProtocolError) as info:
        decode(msg_type, payload, rid)
    assert info.value.code == ErrorCode.INVALID_FIELD
    assert info.value.rid == rid
    assert repr(field) in info.value.message, info.value.message


# --------------------------------------------------------------------------- registration


def _upper_snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()


@pytest.mark.parametrize("cls", SOCIAL_CLASSES, ids=lambda c: c.__name__)
def test_every_social_class_has_a_message_type_and_is_registered(cls: type[Message]) -> None:
    assert isinstance(cls.TYPE, MessageType)
    assert MessageType(int(cls.TYPE)) is cls.TYPE
    assert MESSAGE_CLASSES[int(cls.TYPE)] is cls
    assert cls.TYPE.name == _upper_snake(cls.__name__)
    assert issubclass(cls, Message) and dataclasses.is_dataclass(cls)
    assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
    assert cls.FROM_CLIENT is (cls.TYPE in CLIENT_SENT)
    assert (int(cls.TYPE) in CLIENT_TYPES) is cls.FROM_CLIENT
    assert (int(cls.TYPE) in SERVER_TYPES) is not cls.FROM_CLIENT


def test_social_classes_are_exactly_the_new_message_types() -> None:
    core = {int(c.TYPE) for c in CORE_CLASSES}
    social = [int(c.TYPE) for c in SOCIAL_CLASSES]
    assert len(set(social)) == len(social) == len(SOCIAL_CLASSES)
    assert not core & set(social)
    # the rest are the feature families after the social layer: media (90-97), channels
    # (110-139), the wallet (150-170), bots (180-199), nearby (200-208) and the shop (210-221)
    features = {
        int(c.TYPE)
        for c in (
            *MEDIA_CLASSES,
            *CHANNEL_CLASSES,
            *WALLET_CLASSES,
            *BOT_CLASSES,
            *NEARBY_CLASSES,
            *SHOP_CLASSES,
        )
    }
    assert not (core | set(social)) & features
    assert core | set(social) | features == {int(t) for t in MessageType} == set(MESSAGE_CLASSES)
    assert {int(t) for t in CLIENT_SENT} == SOCIAL_CLIENT_TYPES
    assert {int(t) for t in SERVER_SENT} == SOCIAL_SERVER_TYPES


def test_social_type_numbers() -> None:
    ranges = {
        "OK": [7],
        "GROUP": list(range(40, 51)),
        "RECEIPTS AND CHAT LIST": list(range(55, 60)),
        "TYPING AND PRESENCE": list(range(60, 65)),
        "CONTACTS": list(range(70, 79)),
        "PROFILES": list(range(80, 86)),
    }
    expected = sorted(n for r in ranges.values() for n in r)
    assert sorted(int(c.TYPE) for c in SOCIAL_CLASSES) == expected
    assert (T.OK, T.GROUP_CREATE, T.READ, T.TYPING, T.CONTACT_REQUEST, T.SET_PROFILE) == (
        7,
        40,
        55,
        60,
        70,
        80,
    )


def test_typing_is_the_only_new_one_way_type() -> None:
    assert {T.ACK, T.CLOSE, T.TYPING} == ONE_WAY_CLIENT_TYPES


def test_update_kinds() -> None:
    assert (UpdateKind.MESSAGE, UpdateKind.READ, UpdateKind.CONTACT) == (1, 2, 3)


def test_read_and_contact_updates_keep_their_data() -> None:
    ups = decode(
        T.UPDATES,
        {
            "updates": [
                [5, 2, {"conv": 7, "user": "bob", "pos": 12}],
                [6, 3, {"event": "request", "user": "carol"}],
            ],
            "head": 6,
        },
    )
    assert isinstance(ups, Updates)
    assert ups.updates == (
        Update(seq=5, kind=UpdateKind.READ, data={"conv": 7, "user": "bob", "pos": 12}),
        Update(seq=6, kind=UpdateKind.CONTACT, data={"event": "request", "user": "carol"}),
    )
    assert ups.updates[0].message is None


# --------------------------------------------------------------------------- optional fields


def test_optional_fields_take_their_defaults() -> None:
    assert decode(T.OK, {}) == Ok(rid=42)
    assert decode(T.GROUP_CREATE, {"name": "g", "members": []}) == GroupCreate(
        rid=42, name="g", members=(), topic=""
    )
    assert decode(T.LIST_CONVERSATIONS, {}) == ListConversations(rid=42)
    assert decode(T.CONVERSATION_LIST, {"conversations": []}) == ConversationList(
        rid=42, conversations=(), more=False
    )
    assert decode(T.SET_PROFILE, {}) == SetProfile(rid=42)
    assert decode(T.SET_PRIVACY, {}) == SetPrivacy(rid=42)
    assert decode(T.LIST_GROUPS, {"anything": 1}) == ListGroups(rid=42)
    assert decode(T.LIST_GROUPS, {"limit": 500, "after": 7}) == ListGroups(
        rid=42, limit=500, after=7
    )


def test_optional_fields_are_omitted_on_the_wire() -> None:
    assert Ok(rid=1).to_payload() == {}
    assert Ok(rid=1, pos=0).to_payload() == {"pos": 0}
    assert ListConversations(rid=1).to_payload() == {}
    assert SetProfile(rid=1, status="").to_payload() == {"status": ""}
    assert Typing(rid=0, typing=True, to="b").to_payload() == {"typing": True, "to": "b"}
    assert TypingNotice(rid=0, user="b", typing=False, ttl=6.0).to_payload() == {
        "user": "b",
        "typing": False,
        "ttl": 6.0,
    }
    summary = ConversationSummary(conv=1, kind="direct", name="b", ts=1, unread=0, read=0)
    assert summary.to_wire() == {
        "conv": 1,
        "kind": "direct",
        "name": "b",
        "ts": 1,
        "unread": 0,
        "read": 0,
    }


def test_always_sent_fields() -> None:
    # defaults that are not None are written: "always sent"
    assert GroupCreate(rid=1, name="g", members=()).to_payload() == {
        "name": "g",
        "members": [],
        "topic": "",
    }
    assert ConversationList(rid=1, conversations=()).to_payload() == {
        "conversations": [],
        "more": False,
    }


def test_wire_key_order_follows_the_field_order() -> None:
    info = GroupInfo(
        rid=1,
        group=1,
        name="n",
        topic="t",
        owner="o",
        created=2,
        pos=3,
        members=(GroupMember(user="o", role="owner", joined=2),),
    )
    assert list(info.to_payload()) == [
        "group",
        "name",
        "topic",
        "owner",
        "created",
        "pos",
        "members",
    ]
    assert list(info.to_payload()["members"][0]) == ["user", "role", "joined"]


def test_ttl_accepts_an_integer_and_reads_a_float() -> None:
    notice = decode(T.TYPING_NOTICE, {"user": "b", "typing": True, "ttl": 6})
    assert isinstance(notice, TypingNotice) and notice.ttl == 6.0 and type(notice.ttl) is float


def test_codec_does_not_check_what_the_server_checks() -> None:
    # TYPING: exactly one of to / group is checked by the server (ERROR 1003, rid 0)
    assert decode(T.TYPING, {"typing": True}, rid=0) == Typing(rid=0, typing=True)
    assert decode(T.TYPING, {"typing": True, "to": "b", "group": 1}, rid=0) == Typing(
        rid=0, typing=True, to="b", group=1
    )
    # GROUP_UPDATE with neither name nor topic reaches the server (which answers 1003)
    assert decode(T.GROUP_UPDATE, {"group": 1}) == GroupUpdate(rid=42, group=1)
    # usernames are not checked against the username rules by the codec
    assert decode(T.GROUP_ADD, {"group": 1, "users": ["Not A User!"]}) == GroupAdd(
        rid=42, group=1, users=("Not A User!",)
    )


def test_bounds_are_inclusive() -> None:
    assert decode(T.GROUP_CREATE, {"name": "n" * 64, "members": [], "topic": "t" * 256})
    assert decode(T.GROUP_CREATE, {"name": "n", "members": ["u"] * 10_000})
    assert decode(T.GROUP_UPDATE, {"group": 1, "name": "é" * 64, "topic": ""})
    assert decode(T.SET_PROFILE, {"display_name": "d" * 64, "status": "s" * 256})
    assert decode(T.GET_PRESENCE, {"users": ["u"] * 100}) == GetPresence(rid=42, users=("u",) * 100)
    assert decode(T.GET_PRESENCE, {"users": ["u" * 256]})
    assert decode(T.LIST_CONVERSATIONS, {"limit": 1})
    assert decode(T.LIST_CONVERSATIONS, {"limit": 100})
    assert decode(T.READ, {"conv": 2**63 - 1, "pos": 0})
    assert decode(T.GROUP_ADD, {"group": 0, "users": ["u"]})


# --------------------------------------------------------------------------- invalid fields

_MEMBER = {"user": "a", "role": "owner", "joined": 1}
_INFO = {
    "group": 1,
    "name": "g",
    "topic": "",
    "owner": "a",
    "created": 1,
    "pos": 1,
    "members": [_MEMBER],
}
_SUMMARY = {"group": 1, "name": "g", "topic": "", "role": "member", "members": 2}
_CONV = {"conv": 1, "kind": "direct", "name": "b", "ts": 1, "unread": 0, "read": 0}
_CHAT = {"id": 1, "conv": 1, "pos": 1, "from": "a", "to": "b", "ts": 1, "cmid": "c", "text": "t"}
_ENTRY = {"user": "b", "online": True, "last_seen": 0}
_CONTACTS = {"contacts": [], "incoming": [], "outgoing": [], "blocked": []}

INVALID: list[tuple[int, dict[str, Any], str]] = [
    (T.OK, {"pos": -1}, "pos"),
    (T.OK, {"pos": None}, "pos"),
    (T.OK, {"pos": "2"}, "pos"),
    # GROUP_CREATE: name 1..64 characters, members an array of str, topic <= 256
    (T.GROUP_CREATE, {"members": []}, "name"),
    (T.GROUP_CREATE, {"name": "g"}, "members"),
    (T.GROUP_CREATE, {"name": "", "members": []}, "name"),
    (T.GROUP_CREATE, {"name": "n" * 65, "members": []}, "name"),
    (T.GROUP_CREATE, {"name": 5, "members": []}, "name"),
    (T.GROUP_CREATE, {"name": "g", "members": "bob"}, "members"),
    (T.GROUP_CREATE, {"name": "g", "members": [1]}, "members"),
    (T.GROUP_CREATE, {"name": "g", "members": ["u" * 257]}, "members"),
    (T.GROUP_CREATE, {"name": "g", "members": ["u"] * 10_001}, "members"),
    (T.GROUP_CREATE, {"name": "g", "members": [], "topic": "t" * 257}, "topic"),
    (T.GROUP_CREATE, {"name": "g", "members": [], "topic": None}, "topic"),
    # GROUP_INFO and its member maps
    (T.GROUP_INFO, {k: v for k, v in _INFO.items() if k != "owner"}, "owner"),
    (T.GROUP_INFO, {**_INFO, "name": "n" * 65}, "name"),
    (T.GROUP_INFO, {**_INFO, "topic": "t" * 257}, "topic"),
    (T.GROUP_INFO, {**_INFO, "pos": -1}, "pos"),
    (T.GROUP_INFO, {**_INFO, "members": {}}, "members"),
    (T.GROUP_INFO, {**_INFO, "members": ["alice"]}, "GroupMember"),
    (T.GROUP_INFO, {**_INFO, "members": [{**_MEMBER, "role": "boss"}]}, "role"),
    (T.GROUP_INFO, {**_INFO, "members": [{**_MEMBER, "role": "Owner"}]}, "role"),
    (T.GROUP_INFO, {**_INFO, "members": [{"user": "a", "role": "admin"}]}, "joined"),
    (T.GROUP_INFO, {**_INFO, "members": [{**_MEMBER, "joined": True}]}, "joined"),
    (T.GET_GROUP, {}, "group"),
    (T.GET_GROUP, {"group": -1}, "group"),
    (T.GET_GROUP, {"group": 1.0}, "group"),
    # GROUP_ADD: 1.. users
    (T.GROUP_ADD, {"group": 1, "users": []}, "users"),
    (T.GROUP_ADD, {"group": 1}, "users"),
    (T.GROUP_ADD, {"users": ["b"]}, "group"),
    (T.GROUP_ADD, {"group": 1, "users": ["u"] * 10_001}, "users"),
    (T.GROUP_ADD, {"group": 1, "users": [None]}, "users"),
    (T.GROUP_REMOVE, {"group": 1}, "user"),
    (T.GROUP_REMOVE, {"group": 1, "user": "u" * 257}, "user"),
    (T.GROUP_LEAVE, {}, "group"),
    # GROUP_UPDATE: name 1..64 when present, topic <= 256
    (T.GROUP_UPDATE, {"name": "x"}, "group"),
    (T.GROUP_UPDATE, {"group": 1, "name": ""}, "name"),
    (T.GROUP_UPDATE, {"group": 1, "name": "n" * 65}, "name"),
    (T.GROUP_UPDATE, {"group": 1, "name": None}, "name"),
    (T.GROUP_UPDATE, {"group": 1, "topic": "t" * 257}, "topic"),
    (T.GROUP_UPDATE, {"group": 1, "topic": 0}, "topic"),
    # GROUP_SET_ROLE: admin or member only (ownership moves with GROUP_TRANSFER)
    (T.GROUP_SET_ROLE, {"group": 1, "user": "b", "role": "owner"}, "role"),
    (T.GROUP_SET_ROLE, {"group": 1, "user": "b", "role": "ADMIN"}, "role"),
    (T.GROUP_SET_ROLE, {"group": 1, "user": "b"}, "role"),
    (T.GROUP_SET_ROLE, {"group": 1, "role": "admin"}, "user"),
    (T.GROUP_TRANSFER, {"group": 1}, "user"),
    (T.GROUP_LIST, {}, "groups"),
    (T.GROUP_LIST, {"groups": [{**_SUMMARY, "role": "guest"}]}, "role"),
    (T.GROUP_LIST, {"groups": [{**_SUMMARY, "members": -1}]}, "members"),
    (T.GROUP_LIST, {"groups": [{**_SUMMARY, "name": "n" * 65}]}, "name"),
    (T.GROUP_LIST, {"groups": [1]}, "GroupSummary"),
    # receipts
    (T.READ, {"conv": 1}, "pos"),
    (T.READ, {"pos": 1}, "conv"),
    (T.READ, {"conv": 1, "pos": -1}, "pos"),
    (T.READ, {"conv": 1, "pos": False}, "pos"),
    (T.GET_RECEIPTS, {}, "conv"),
    (T.RECEIPTS, {"conv": 1, "read": []}, "delivered"),
    (T.RECEIPTS, {"conv": 1, "read": [{"user": "b"}], "delivered": []}, "pos"),
    (T.RECEIPTS, {"conv": 1, "read": [], "delivered": [{"pos": 1}]}, "user"),
    (T.RECEIPTS, {"conv": 1, "read": ["b"], "delivered": []}, "Marker"),
    # the chat list
    (T.LIST_GROUPS, {"limit": 0}, "limit"),
    (T.LIST_GROUPS, {"limit": 501}, "limit"),
    (T.LIST_GROUPS, {"after": -1}, "after"),
    (T.LIST_CONVERSATIONS, {"limit": 0}, "limit"),
    (T.LIST_CONVERSATIONS, {"limit": 101}, "limit"),
    (T.LIST_CONVERSATIONS, {"limit": None}, "limit"),
    (T.LIST_CONVERSATIONS, {"before_ts": -1}, "before_ts"),
    (T.LIST_CONVERSATIONS, {"before_conv": "7"}, "before_conv"),
    (T.CONVERSATION_LIST, {}, "conversations"),
    (T.CONVERSATION_LIST, {"conversations": [], "more": 1}, "more"),
    (T.CONVERSATION_LIST, {"conversations": [{**_CONV, "kind": "forum"}]}, "kind"),
    (T.CONVERSATION_LIST, {"conversations": [{**_CONV, "name": "n" * 257}]}, "name"),
    (T.CONVERSATION_LIST, {"conversations": [{**_CONV, "unread": -1}]}, "unread"),
    (T.CONVERSATION_LIST, {"conversations": [{**_CONV, "peer": None}]}, "peer"),
    (T.CONVERSATION_LIST, {"conversations": [{**_CONV, "group": "1"}]}, "group"),
    (T.CONVERSATION_LIST, {"conversations": [{**_CONV, "last": []}]}, "message"),
    (T.CONVERSATION_LIST, {"conversations": [{**_CONV, "last": {**_CHAT, "pos": 0}}]}, "pos"),
    (
        T.CONVERSATION_LIST,
        {"conversations": [{k: v for k, v in _CONV.items() if k != "read"}]},
        "read",
    ),
    # typing
    (T.TYPING, {"to": "b"}, "typing"),
    (T.TYPING, {"typing": 1, "to": "b"}, "typing"),
    (T.TYPING, {"typing": True, "to": None}, "to"),
    (T.TYPING, {"typing": True, "to": "u" * 257}, "to"),
    (T.TYPING, {"typing": True, "group": -5}, "group"),
    (T.TYPING_NOTICE, {"user": "b", "typing": True}, "ttl"),
    (T.TYPING_NOTICE, {"user": "b", "typing": True, "ttl": -1.0}, "ttl"),
    (T.TYPING_NOTICE, {"user": "b", "typing": True, "ttl": "6"}, "ttl"),
    (T.TYPING_NOTICE, {"user": "b", "typing": True, "ttl": float("inf")}, "ttl"),
    (T.TYPING_NOTICE, {"user": "b", "typing": "yes", "ttl": 6.0}, "typing"),
    # presence
    (T.PRESENCE, {"user": "b", "online": True}, "last_seen"),
    (T.PRESENCE, {"user": "b", "online": 1, "last_seen": 0}, "online"),
    (T.GET_PRESENCE, {"users": []}, "users"),
    (T.GET_PRESENCE, {"users": ["u"] * 101}, "users"),
    (T.GET_PRESENCE, {}, "users"),
    (T.GET_PRESENCE, {"users": [b"bob"]}, "users"),
    (T.PRESENCE_LIST, {"presence": [{**_ENTRY, "online": None}]}, "online"),
    (T.PRESENCE_LIST, {"presence": [{**_ENTRY, "last_seen": -1}]}, "last_seen"),
    (T.PRESENCE_LIST, {"presence": {}}, "presence"),
    # contacts and blocking
    (T.CONTACT_REQUEST, {}, "user"),
    (T.CONTACT_ACCEPT, {"user": 1}, "user"),
    (T.CONTACT_DECLINE, {"user": None}, "user"),
    (T.CONTACT_CANCEL, {"user": "u" * 257}, "user"),
    (T.CONTACT_REMOVE, {"user": ["b"]}, "user"),
    (T.BLOCK, {}, "user"),
    (T.UNBLOCK, {"user": b"b"}, "user"),
    (T.CONTACT_LIST, {k: v for k, v in _CONTACTS.items() if k != "blocked"}, "blocked"),
    (T.CONTACT_LIST, {**_CONTACTS, "incoming": ["u" * 257]}, "incoming"),
    (T.CONTACT_LIST, {**_CONTACTS, "outgoing": [7]}, "outgoing"),
    # profiles and privacy
    (T.SET_PROFILE, {"display_name": "d" * 65}, "display_name"),
    (T.SET_PROFILE, {"status": "s" * 257}, "status"),
    (T.SET_PROFILE, {"status": None}, "status"),
    (T.GET_PROFILE, {}, "user"),
    (T.PROFILE, {"user": "b", "display_name": "d"}, "status"),
    (T.PROFILE, {"user": "b", "display_name": "d" * 65, "status": ""}, "display_name"),
    (T.SET_PRIVACY, {"presence": "friends"}, "presence"),
    (T.SET_PRIVACY, {"profile": "Everyone"}, "profile"),
    (T.SET_PRIVACY, {"messages": "nobody"}, "messages"),
    (T.SET_PRIVACY, {"messages": None}, "messages"),
    (T.SET_PRIVACY, {"groups": "friends"}, "groups"),
    (T.PRIVACY, {"presence": "contacts", "profile": "everyone"}, "messages"),
    (T.PRIVACY, {"presence": "all", "profile": "everyone", "messages": "everyone"}, "presence"),
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


def test_every_social_type_has_an_invalid_case() -> None:
    with_fields = {int(c.TYPE) for c in SOCIAL_CLASSES if c._specs}  # type: ignore[attr-defined]
    assert with_fields <= {t for t, _, _ in INVALID}


@pytest.mark.parametrize(
    "cls",
    [c for c in SOCIAL_CLASSES if c._specs],  # type: ignore[attr-defined]
    ids=lambda c: c.__name__,
)
def test_every_required_field_is_required(cls: type[Message]) -> None:
    """Built from the field metadata: dropping any required key is an invalid field."""
    specs = cls._specs  # type: ignore[attr-defined]
    sample = _minimal_payload(cls)
    assert decode(int(cls.TYPE), sample).TYPE == cls.TYPE
    for _name, key, _kind, _meta, required in specs:
        if required:
            assert_invalid(int(cls.TYPE), {k: v for k, v in sample.items() if k != key}, key)


def _minimal_payload(cls: type[Message]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for _name, key, kind, meta, required in cls._specs:  # type: ignore[attr-defined]
        if not required:
            continue
        if kind is int:
            out[key] = meta.get("lo", 0)
        elif kind is bool:
            out[key] = False
        elif kind is float:
            out[key] = 1.0
        elif kind is str:
            out[key] = meta["choices"][0] if "choices" in meta else "x" * meta.get("min", 0)
        else:  # arrays
            out[key] = ["u"] * meta.get("min_items", 0)
    return out


# --------------------------------------------------------------------------- array sizes


@pytest.mark.parametrize(
    ("msg_type", "payload"),
    [
        (T.CONTACT_LIST, {**_CONTACTS, "contacts": ["u"] * 10_001}),
        (T.GROUP_LIST, {"groups": [_SUMMARY] * 10_001}),
        (T.PRESENCE_LIST, {"presence": [_ENTRY] * 10_001}),
    ],
    ids=["contact_list", "group_list", "presence_list"],
)
def test_more_than_10000_items_without_max_items_is_an_invalid_field(
    msg_type: int, payload: dict[str, Any]
) -> None:
    """Arrays without their own max_items are capped at 10,000 (the default max_array_len),
    also when a larger decoder limit lets such a frame through."""
    key = next(iter(k for k, v in payload.items() if len(v) > 10_000))
    assert_invalid(msg_type, payload, key)


def test_group_info_members_and_lists_round_trip_in_order() -> None:
    payload = {**_INFO, "members": [_MEMBER, {**_MEMBER, "user": "b", "role": "member"}]}
    info = decode(T.GROUP_INFO, payload)
    assert isinstance(info, GroupInfo)
    assert [m.user for m in info.members] == ["a", "b"]
    assert info.to_payload() == payload
    lst = decode(T.CONTACT_LIST, {**_CONTACTS, "contacts": ["b", "a"]})
    assert isinstance(lst, ContactList) and lst.contacts == ("b", "a")  # order is the sender's
    assert isinstance(decode(T.GROUP_LIST, {"groups": [_SUMMARY]}), GroupList)
    assert isinstance(decode(T.RECEIPTS, {"conv": 1, "read": [], "delivered": []}), Receipts)
    assert isinstance(decode(T.PRESENCE_LIST, {"presence": [_ENTRY]}), PresenceList)


def test_unknown_keys_inside_entries_are_ignored() -> None:
    info = decode(T.GROUP_INFO, {**_INFO, "members": [{**_MEMBER, "nick": "A"}]})
    assert isinstance(info, GroupInfo)
    assert info.members == (GroupMember(user="a", role="owner", joined=1),)
    conv = decode(
        T.CONVERSATION_LIST,
        {"conversations": [{**_CONV, "pinned": True, "last": {**_CHAT, "x": 1}}]},
    )
    assert isinstance(conv, ConversationList) and conv.conversations[0].last is not None
