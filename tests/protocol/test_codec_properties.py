"""Property tests of the message codec: every type round-trips through the wire, the
pre-encoded fan-out helpers are byte-identical to the dataclass encoders, and no payload
makes decoding raise anything but ProtocolError."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from liaotian.protocol import (
    MESSAGE_CLASSES,
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
    FrameReader,
    Hello,
    History,
    HistoryPage,
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
    encode_history_frame,
    encode_update,
    encode_updates_frame,
    unpack_body,
)

T = MessageType
SETTINGS = settings(max_examples=40, deadline=None, database=None)
MAX_INT64 = 2**63 - 1

rids = st.integers(0, 2**32 - 1)
u63 = st.integers(0, MAX_INT64)
bounded = st.integers(0, 0xFFFF)


def text(max_size: int) -> st.SearchStrategy[str]:
    return st.text(max_size=min(max_size, 24))


scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.binary(max_size=8)
)
values = st.recursive(
    scalars,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
    max_leaves=8,
)
maps = st.dictionaries(st.text(max_size=8), values, max_size=4)
# float fields decode ints as floats: generate floats so re-encoding is byte-identical
non_negative = st.floats(min_value=0, allow_nan=False, allow_infinity=False)

chat_messages = st.builds(
    ChatMessage,
    id=u63,
    conv=u63,
    pos=st.integers(1, MAX_INT64),
    sender=text(256),
    to=text(256),
    ts=u63,
    cmid=text(256),
    text=st.text(max_size=40),
    meta=maps,
)
updates = st.one_of(
    st.builds(
        Update,
        seq=st.integers(1, MAX_INT64),
        kind=st.just(UpdateKind.MESSAGE),
        message=chat_messages,
    ),
    st.builds(
        Update,
        seq=st.integers(1, MAX_INT64),
        kind=st.integers(-(2**63), MAX_INT64).filter(lambda k: k != 1),
        data=maps,
    ),
)
devices = st.builds(
    DeviceInfo, device=text(256), created=u63, last_seen=u63, online=st.booleans(), acked=u63
)


@st.composite
def histories(draw: st.DrawFn) -> History:
    before = after = None
    match draw(st.sampled_from(["none", "before", "after"])):
        case "before":
            before = draw(u63)
        case "after":
            after = draw(u63)
    return History(
        rid=draw(rids),
        with_user=draw(text(256)),
        before=before,
        after=after,
        limit=draw(st.none() | st.integers(1, 200)),
    )


STRATEGIES: dict[int, st.SearchStrategy[Message]] = {
    T.HELLO: st.builds(
        Hello,
        rid=rids,
        versions=st.lists(st.integers(1, 0xFFFF), min_size=1, max_size=16).map(tuple),
        client=text(128),
    ),
    T.WELCOME: st.builds(
        Welcome,
        rid=rids,
        version=bounded,
        server=text(128),
        time=u63,
        heartbeat=non_negative,
        limits=maps,
    ),
    T.PING: st.builds(Ping, rid=rids),
    T.PONG: st.builds(Pong, rid=rids, time=u63),
    T.CLOSE: st.builds(Close, rid=rids, code=bounded, reason=text(256)),
    T.ERROR: st.builds(
        Error,
        rid=rids,
        code=bounded,
        message=text(1024),
        retry_after=st.none() | non_negative,
        data=maps,
    ),
    T.REGISTER: st.builds(Register, rid=rids, username=text(256), password=text(4096)),
    T.REGISTERED: st.builds(Registered, rid=rids, user=text(256)),
    T.LOGIN: st.builds(Login, rid=rids, username=text(256), password=text(4096), device=text(256)),
    T.AUTH: st.builds(Auth, rid=rids, token=text(256)),
    T.AUTHENTICATED: st.builds(
        Authenticated,
        rid=rids,
        user=text(256),
        device=text(256),
        head=u63,
        acked=u63,
        token=st.none() | st.text(max_size=40),
    ),
    T.LOGOUT: st.builds(Logout, rid=rids),
    T.LOGGED_OUT: st.builds(LoggedOut, rid=rids),
    T.LIST_DEVICES: st.builds(ListDevices, rid=rids),
    T.DEVICE_LIST: st.builds(
        DeviceList, rid=rids, devices=st.lists(devices, max_size=4).map(tuple)
    ),
    T.REVOKE_DEVICE: st.builds(RevokeDevice, rid=rids, device=text(256)),
    T.DEVICE_REVOKED: st.builds(DeviceRevoked, rid=rids, device=text(256)),
    T.SEND: st.builds(
        Send,
        rid=rids,
        to=text(256),
        cmid=st.text(min_size=1, max_size=64),
        text=st.text(max_size=60),
        meta=maps,
    ),
    T.SENT: st.builds(
        Sent,
        rid=rids,
        id=u63,
        conv=u63,
        pos=st.integers(1, MAX_INT64),
        ts=u63,
        seq=st.integers(1, MAX_INT64),
        cmid=text(256),
        duplicate=st.booleans(),
    ),
    T.SYNC: st.builds(Sync, rid=rids, since=u63, limit=st.none() | st.integers(1, 1000)),
    T.UPDATES: st.builds(
        Updates,
        rid=rids,
        updates=st.lists(updates, max_size=4).map(tuple),
        head=u63,
        more=st.booleans(),
        resync=st.booleans(),
    ),
    T.ACK: st.builds(Ack, rid=rids, seq=u63),
    T.HISTORY: histories(),
    T.HISTORY_PAGE: st.builds(
        HistoryPage,
        rid=rids,
        messages=st.lists(chat_messages, max_size=4).map(tuple),
        more=st.booleans(),
    ),
}


def test_every_message_type_has_a_strategy() -> None:
    assert set(STRATEGIES) == set(MESSAGE_CLASSES)


def through_the_wire(frame: bytes) -> Message:
    reader = FrameReader()
    bodies = reader.feed(frame)
    assert len(bodies) == 1 and reader.buffered == 0
    return decode_message(*unpack_body(bodies[0]))


@pytest.mark.parametrize(
    "msg_type", sorted(STRATEGIES), ids=[MessageType(t).name for t in sorted(STRATEGIES)]
)
@SETTINGS
@given(data=st.data())
def test_every_message_round_trips(msg_type: int, data: st.DataObject) -> None:
    msg = data.draw(STRATEGIES[msg_type])
    decoded = through_the_wire(msg.encode())
    assert type(decoded) is MESSAGE_CLASSES[msg_type]
    assert decoded == msg
    assert decoded.encode() == msg.encode()  # canonical: re-encoding gives the same bytes


# --------------------------------------------------------------------------- fan-out encoders


def pre_encoded(u: Update) -> bytes:
    data = u.message.encode() if u.message is not None else msgpack.packb(u.data)
    return encode_update(u.seq, u.kind, data)


def test_encode_update_matches_update_to_wire() -> None:
    u = Update(
        seq=7,
        kind=UpdateKind.MESSAGE,
        message=ChatMessage(id=1, conv=2, pos=3, sender="a", to="b", ts=4, cmid="c", text="t"),
    )
    assert pre_encoded(u) == msgpack.packb(u.to_wire())


@settings(max_examples=80, deadline=None, database=None)
@given(rids, st.lists(updates, max_size=20), u63, st.booleans(), st.booleans())
def test_encode_updates_frame_is_byte_identical(
    rid: int, ups: list[Update], head: int, more: bool, resync: bool
) -> None:
    fast = encode_updates_frame(rid, [pre_encoded(u) for u in ups], head, more=more, resync=resync)
    slow = Updates(rid=rid, updates=tuple(ups), head=head, more=more, resync=resync).encode()
    assert fast == slow
    assert through_the_wire(fast) == Updates(
        rid=rid, updates=tuple(ups), head=head, more=more, resync=resync
    )


@settings(max_examples=80, deadline=None, database=None)
@given(rids, st.lists(chat_messages, max_size=20), st.booleans())
def test_encode_history_frame_is_byte_identical(
    rid: int, msgs: list[ChatMessage], more: bool
) -> None:
    fast = encode_history_frame(rid, [m.encode() for m in msgs], more)
    slow = HistoryPage(rid=rid, messages=tuple(msgs), more=more).encode()
    assert fast == slow
    assert through_the_wire(fast) == HistoryPage(rid=rid, messages=tuple(msgs), more=more)


@pytest.mark.parametrize("n", [0, 15, 16, 0xFFFF, 0x10000])
def test_fan_out_encoders_at_array_header_boundaries(n: int) -> None:
    ups = [Update(seq=i + 1, kind=2, data={}) for i in range(n)]
    assert (
        encode_updates_frame(0, [pre_encoded(u) for u in ups], n)
        == Updates(rid=0, updates=tuple(ups), head=n).encode()
    )
    msg = ChatMessage(id=1, conv=1, pos=1, sender="a", to="b", ts=1, cmid="c", text="")
    enc = msg.encode()
    assert (
        encode_history_frame(5, [enc] * n, True)
        == HistoryPage(rid=5, messages=(msg,) * n, more=True).encode()
    )


# --------------------------------------------------------------------------- robustness


@settings(max_examples=200, deadline=None, database=None)
@given(
    st.sampled_from(sorted(MESSAGE_CLASSES)),
    rids,
    st.dictionaries(
        st.sampled_from(
            [
                "versions",
                "client",
                "version",
                "server",
                "time",
                "heartbeat",
                "limits",
                "code",
                "reason",
                "message",
                "retry_after",
                "data",
                "username",
                "password",
                "user",
                "device",
                "token",
                "head",
                "acked",
                "devices",
                "to",
                "cmid",
                "text",
                "meta",
                "id",
                "conv",
                "pos",
                "ts",
                "seq",
                "duplicate",
                "since",
                "limit",
                "updates",
                "more",
                "resync",
                "with",
                "before",
                "after",
                "messages",
                "junk",
            ]
        ),
        values,
        max_size=6,
    ),
)
def test_decoding_any_payload_raises_only_protocol_error(
    msg_type: int, rid: int, payload: dict[str, Any]
) -> None:
    payload = unpack_body(msgpack.packb([msg_type, rid, payload]))[2]  # as the wire gives it
    try:
        msg = decode_message(msg_type, rid, payload)
    except ProtocolError as exc:
        assert exc.code == ErrorCode.INVALID_FIELD
        assert exc.rid == rid
    else:
        assert msg.rid == rid
        msg.encode()  # whatever was accepted can be sent back out


@settings(max_examples=150, deadline=None, database=None)
@given(
    st.sampled_from(sorted(MESSAGE_CLASSES)),
    rids,
    st.lists(st.sampled_from(["updates", "messages", "devices"]), min_size=1, max_size=1),
    st.lists(values | st.lists(values, min_size=3, max_size=3), max_size=3),
)
def test_decoding_any_nested_list_raises_only_protocol_error(
    msg_type: int, rid: int, key: list[str], items: list[Any]
) -> None:
    payload = unpack_body(msgpack.packb([msg_type, rid, {key[0]: items, "head": 1}]))[2]
    try:
        decode_message(msg_type, rid, payload)
    except ProtocolError as exc:
        assert exc.code == ErrorCode.INVALID_FIELD


@settings(max_examples=60, deadline=None, database=None)
@given(chat_messages)
def test_encode_message_map_is_the_canonical_message_encoding(msg: ChatMessage) -> None:
    from liaotian.protocol.messages import encode_message_map

    raw = encode_message_map(
        msg.id, msg.conv, msg.pos, msg.sender, msg.to, msg.ts, msg.cmid, msg.text, msg.meta
    )
    assert raw == msg.encode() == msgpack.packb(msg.to_wire())
    assert encode_message_map(
        msg.id, msg.conv, msg.pos, msg.sender, msg.to, msg.ts, msg.cmid, msg.text, None
    ) == msgpack.packb({k: v for k, v in msg.to_wire().items() if k != "meta"})
