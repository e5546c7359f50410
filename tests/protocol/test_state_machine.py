"""The Connection state machine, both roles, driven without sockets: a `Pair` (conftest.py)
moves the bytes each side queued to the other."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgpack
import pytest
from liaotian.protocol import (
    DEFAULT_LIMITS,
    SUPPORTED_VERSIONS,
    Ack,
    Auth,
    Authenticated,
    ChatMessage,
    Close,
    CloseCode,
    Connection,
    ConnectionTerminated,
    DeviceList,
    DeviceRevoked,
    Error,
    ErrorCode,
    Hello,
    History,
    HistoryPage,
    Limits,
    ListDevices,
    LocalProtocolError,
    LoggedOut,
    Login,
    Logout,
    MessageType,
    Ping,
    Pong,
    ProtocolViolation,
    Register,
    Registered,
    RevokeDevice,
    Role,
    Send,
    Sent,
    State,
    Sync,
    Update,
    UpdateKind,
    Updates,
    Welcome,
    decode_message,
    encode_frame,
    encode_update,
    encode_updates_frame,
    pack_frame,
    unpack_body,
)
from liaotian.protocol.bots import BOT_CLASSES
from liaotian.protocol.channels import CHANNEL_CLASSES
from liaotian.protocol.media import (
    MEDIA_CLASSES,
    BlobData,
    Download,
    UploadBegin,
    UploadCancel,
    UploadChunk,
    UploadDone,
    UploadFinish,
    UploadStatus,
)
from liaotian.protocol.nearby import NEARBY_CLASSES
from liaotian.protocol.shop import SHOP_CLASSES
from liaotian.protocol.social import (
    SOCIAL_CLASSES,
    Block,
    ContactAccept,
    ContactCancel,
    ContactDecline,
    ContactList,
    ContactRemove,
    ContactRequest,
    ConversationList,
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
    GroupRemove,
    GroupSetRole,
    GroupTransfer,
    GroupUpdate,
    ListContacts,
    ListConversations,
    ListGroups,
    Ok,
    Presence,
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
from liaotian.protocol.wallet import WALLET_CLASSES

if TYPE_CHECKING:  # helpers come from conftest.py fixtures; imported for annotations only
    from conftest import Pair

T = MessageType
Decode = Callable[..., list[Any]]
CHAT = ChatMessage(
    id=1,
    conv=1,
    pos=1,
    sender="alice",
    to="bob",
    ts=1_700_000_000_500,
    cmid="c-1",
    text="hello bob",
)


def server_after_hello(now: float = 0.0, limits: Limits = DEFAULT_LIMITS) -> Connection:
    server = Connection(Role.SERVER, limits=limits, now=now)
    server.receive_data(Hello(rid=1, versions=(1,)).encode())
    assert list(server.events_received()) == [Hello(rid=1, versions=(1,))]
    server.send(Welcome(rid=1, version=1, server="s", time=0, heartbeat=30.0))
    server.data_to_send()
    assert server.state is State.CONNECTED
    return server


def authenticated_server(limits: Limits = DEFAULT_LIMITS) -> Connection:
    server = server_after_hello(limits=limits)
    server.receive_data(Auth(rid=2, token="t").encode())
    assert list(server.events_received()) == [Auth(rid=2, token="t")]
    server.send(Authenticated(rid=2, user="alice", device="d", head=0, acked=0))
    server.data_to_send()
    assert server.state is State.AUTHENTICATED
    return server


def refusal(server: Connection, frame: bytes, decode: Decode) -> tuple[ProtocolViolation, Error]:
    """Feed one bad frame; return the violation event and the ERROR the server queued."""
    server.receive_data(frame)
    events = list(server.events_received())
    assert len(events) >= 1 and isinstance(events[0], ProtocolViolation), events
    out = decode(server.data_to_send())
    assert isinstance(out[0], Error), out
    violation, error = events[0], out[0]
    assert error.code == violation.code
    assert error.rid == violation.rid
    return violation, error


# --------------------------------------------------------------------------- happy path


def test_happy_path(make_pair: type[Pair]) -> None:
    pair = make_pair()
    c, s = pair.client, pair.server
    assert c.state is s.state is State.AWAIT_HELLO

    rid = c.next_rid()
    assert rid >= 1
    hello = Hello(rid=rid, versions=(1,), client="tests/1")
    assert pair.request(hello) == [hello]
    assert s.version == 1
    assert s.state is State.AWAIT_HELLO  # moves when WELCOME is sent, not before
    assert s.pending_requests == 1 and c.pending_requests == 1
    welcome = Welcome(
        rid=rid,
        version=1,
        server="liaotian/0.1.0",
        time=1_700_000_000_000,
        heartbeat=30.0,
        limits=DEFAULT_LIMITS.advertised(),
    )
    assert pair.answer(welcome) == [welcome]
    assert c.state is s.state is State.CONNECTED
    assert c.version == 1
    assert c.pending_requests == s.pending_requests == 0

    reg = Register(rid=c.next_rid(), username="alice", password="password1")
    assert pair.request(reg) == [reg]
    assert pair.answer(Registered(rid=reg.rid, user="alice")) == [
        Registered(rid=reg.rid, user="alice")
    ]

    login = Login(rid=c.next_rid(), username="alice", password="password1", device="laptop")
    assert pair.request(login) == [login]
    auth = Authenticated(rid=login.rid, user="alice", device="laptop", head=0, acked=0, token="tok")
    assert pair.answer(auth) == [auth]
    assert c.state is s.state is State.AUTHENTICATED

    send = Send(rid=c.next_rid(), to="bob", cmid="c-1", text="hello bob")
    assert pair.request(send) == [send]
    sent = Sent(rid=send.rid, id=1, conv=1, pos=1, ts=CHAT.ts, seq=1, cmid="c-1")
    assert pair.answer(sent) == [sent]

    sync = Sync(rid=c.next_rid(), since=0)
    assert pair.request(sync) == [sync]
    page = Updates(
        rid=sync.rid,
        updates=(Update(seq=1, kind=UpdateKind.MESSAGE, message=CHAT),),
        head=1,
        more=False,
    )
    assert pair.answer(page) == [page]

    # a live push (rid 0) sent through the pre-encoded fan-out path
    push = encode_updates_frame(0, [encode_update(2, 1, CHAT.encode())], 2)
    assert s.send_frame(push, T.UPDATES)
    assert pair.to_client() == [
        Updates(rid=0, updates=(Update(seq=2, kind=1, message=CHAT),), head=2)
    ]

    assert c.send(Ack(rid=0, seq=2))
    assert pair.to_server() == [Ack(rid=0, seq=2)]
    assert s.pending_requests == 0  # ACK is one-way: nothing to answer

    hist = History(rid=c.next_rid(), with_user="bob", before=5, limit=10)
    assert pair.request(hist) == [hist]
    assert pair.answer(HistoryPage(rid=hist.rid, messages=(CHAT,))) == [
        HistoryPage(rid=hist.rid, messages=(CHAT,))
    ]

    ping = Ping(rid=c.next_rid())
    assert pair.request(ping) == [ping]
    assert pair.answer(Pong(rid=ping.rid, time=5)) == [Pong(rid=ping.rid, time=5)]

    assert c.pending_requests == s.pending_requests == 0
    c.close(CloseCode.NORMAL, "bye")
    assert c.closed and c.close_code == 1000
    assert list(c.events_received()) == [ConnectionTerminated(1000, "bye", by_peer=False)]
    assert pair.to_server() == [ConnectionTerminated(1000, "bye", by_peer=True)]
    assert s.closed and s.close_code == 1000 and s.close_reason == "bye"
    assert s.data_to_send() == b""  # CLOSE is one-way: no answer


def test_auth_with_token_and_logout_return_to_connected(make_pair: type[Pair]) -> None:
    pair = make_pair()
    pair.handshake()
    auth = Auth(rid=pair.client.next_rid(), token="tok")
    assert pair.request(auth) == [auth]
    ok = Authenticated(rid=auth.rid, user="alice", device="d", head=3, acked=1)
    assert pair.answer(ok) == [ok]
    lst = ListDevices(rid=pair.client.next_rid())
    assert pair.request(lst) == [lst]
    assert pair.answer(DeviceList(rid=lst.rid, devices=())) == [DeviceList(rid=lst.rid, devices=())]
    out = Logout(rid=pair.client.next_rid())
    assert pair.request(out) == [out]
    assert pair.answer(LoggedOut(rid=out.rid)) == [LoggedOut(rid=out.rid)]
    assert pair.client.state is pair.server.state is State.CONNECTED


def test_pipelined_requests_come_out_one_event_at_a_time(make_pair: type[Pair]) -> None:
    pair = make_pair()
    pair.login()
    c, s = pair.client, pair.server
    msgs = [Send(rid=c.next_rid(), to="bob", cmid=f"c{i}", text="x") for i in range(3)]
    for m in msgs:
        c.send(m)
    s.receive_data(c.data_to_send())
    assert s.next_event() == msgs[0]
    assert s.pending_requests == 1  # the rest are decoded only when asked for
    assert [s.next_event(), s.next_event(), s.next_event()] == [msgs[1], msgs[2], None]
    assert s.pending_requests == 3


def test_error_answers_a_request_and_frees_its_rid(make_pair: type[Pair], decode: Decode) -> None:
    pair = make_pair()
    pair.login()
    send = Send(rid=pair.client.next_rid(), to="nobody", cmid="c", text="x")
    pair.request(send)
    err = Error(rid=send.rid, code=ErrorCode.UNKNOWN_USER, message="no such user")
    assert pair.answer(err) == [err]
    assert pair.client.pending_requests == pair.server.pending_requests == 0
    assert pair.request(send) == [send]  # the rid may be reused once answered


def test_unsupported_version_end_to_end(make_pair: type[Pair]) -> None:
    pair = make_pair()
    hello = Hello(rid=pair.client.next_rid(), versions=(2, 3))
    events = pair.request(hello)
    assert events == [
        ProtocolViolation(ErrorCode.UNSUPPORTED_VERSION, "no common version", hello.rid),
        ConnectionTerminated(
            CloseCode.UNSUPPORTED_VERSION, "no common protocol version", by_peer=False
        ),
    ]
    client_events = pair.to_client()
    assert len(client_events) == 2
    err, term = client_events
    assert isinstance(err, Error) and err.code == 1005 and err.rid == hello.rid
    assert err.data == {"versions": list(SUPPORTED_VERSIONS)}
    assert term == ConnectionTerminated(4004, "no common protocol version", by_peer=True)
    assert pair.client.closed and pair.client.close_code == 4004


def test_highest_common_version_is_chosen() -> None:
    server = Connection(Role.SERVER, versions=(1, 2, 3))
    server.receive_data(Hello(rid=1, versions=(2, 9, 1)).encode())
    assert isinstance(server.next_event(), Hello)
    assert server.version == 2


# --------------------------------------------------------------------------- server refusals


def test_request_before_hello_is_bad_state(decode: Decode) -> None:
    server = Connection(Role.SERVER)
    for msg in (
        Login(rid=1, username="a", password="b", device="d"),
        Ping(rid=2),
        Sync(rid=3, since=0),
        Ack(rid=0, seq=1),
    ):
        violation, err = refusal(server, msg.encode(), decode)
        assert violation.code == ErrorCode.BAD_STATE == err.code
        assert err.rid == msg.rid
    assert server.state is State.AWAIT_HELLO and not server.closed


def test_hello_twice_is_bad_state(decode: Decode) -> None:
    server = server_after_hello()
    _, err = refusal(server, Hello(rid=7, versions=(1,)).encode(), decode)
    assert (err.code, err.rid) == (ErrorCode.BAD_STATE, 7)


@pytest.mark.parametrize(
    "msg",
    [
        Send(rid=5, to="b", cmid="c", text="t"),
        Sync(rid=5, since=0),
        Ack(rid=0, seq=1),
        History(rid=5, with_user="b"),
        Logout(rid=5),
        ListDevices(rid=5),
        Send(rid=5, to="", cmid="c", text="t", group=3),
        History(rid=5, with_user="", group=3),
        GroupCreate(rid=5, name="g", members=()),
        Read(rid=5, conv=1, pos=1),
        ListConversations(rid=5),
        Typing(rid=0, typing=True, to="b"),
        GetPresence(rid=5, users=("b",)),
        ContactRequest(rid=5, user="b"),
        Block(rid=5, user="b"),
        SetPrivacy(rid=5, messages="contacts"),
    ],
)
def test_session_request_before_auth_is_not_authenticated(msg: Any, decode: Decode) -> None:
    server = server_after_hello()
    _, err = refusal(server, msg.encode(), decode)
    assert (err.code, err.rid) == (ErrorCode.NOT_AUTHENTICATED, msg.rid)
    assert server.pending_requests == 0


@pytest.mark.parametrize(
    "msg",
    [
        Login(rid=9, username="a", password="p", device="d"),
        Auth(rid=9, token="t"),
        Register(rid=9, username="a", password="p"),
    ],
)
def test_account_request_after_auth_is_already_authenticated(msg: Any, decode: Decode) -> None:
    server = authenticated_server()
    _, err = refusal(server, msg.encode(), decode)
    assert (err.code, err.rid) == (ErrorCode.ALREADY_AUTHENTICATED, 9)
    assert server.state is State.AUTHENTICATED


@pytest.mark.parametrize(
    ("msg_type", "code"),
    [
        (int(MessageType.REGISTER), ErrorCode.ALREADY_AUTHENTICATED),
        (int(MessageType.WELCOME), ErrorCode.UNKNOWN_TYPE),
        (777, ErrorCode.UNKNOWN_TYPE),
    ],
)
def test_after_auth_type_and_state_outrank_a_malformed_payload(
    msg_type: int, code: ErrorCode, decode: Decode
) -> None:
    """SPEC 4.5 step 1 holds after authentication too (the server decodes first there and
    reads the header only when the body is malformed): a payload that is not a map, or a
    map with a bin key, is answered by the type or state refusal, not 1001."""
    server = authenticated_server()
    for payload in (b"\x01", b"\x81\xc4\x01kx"):  # not a map; a map with a bin key
        body = b"\x93" + msgpack.packb(msg_type) + b"\x09" + payload
        _, err = refusal(server, len(body).to_bytes(4, "big") + body, decode)
        assert (err.code, err.rid) == (code, 9)
    assert server.state is State.AUTHENTICATED


@pytest.mark.parametrize("msg_type", [7, 21, 99, 1000, 0xFFFF])
def test_unknown_type(msg_type: int, decode: Decode) -> None:
    server = server_after_hello()
    _, err = refusal(server, pack_frame(msg_type, 4, {}), decode)
    assert (err.code, err.rid) == (ErrorCode.UNKNOWN_TYPE, 4)


@pytest.mark.parametrize(
    "msg",
    [
        Welcome(rid=4, version=1, server="s", time=0, heartbeat=1.0),
        Pong(rid=4, time=1),
        Error(rid=4, code=1),
        Sent(rid=4, id=1, conv=1, pos=1, ts=1, seq=1, cmid="c"),
        Updates(rid=4, updates=(), head=0),
        Authenticated(rid=4, user="u", device="d", head=0, acked=0),
        Ok(rid=4),
        GroupInfo(rid=4, group=1, name="g", topic="", owner="o", created=0, pos=1, members=()),
        TypingNotice(rid=4, user="b", typing=True, ttl=6.0),
        Presence(rid=4, user="b", online=True, last_seen=0),
        Privacy(rid=4, presence="contacts", profile="everyone", messages="everyone"),
    ],
)
def test_server_only_type_sent_by_a_client_is_unknown_type(msg: Any, decode: Decode) -> None:
    server = authenticated_server()
    _, err = refusal(server, msg.encode(), decode)
    assert (err.code, err.rid) == (ErrorCode.UNKNOWN_TYPE, 4)


def test_rid_zero_on_a_request_is_invalid_field(decode: Decode) -> None:
    server = authenticated_server()
    for msg in (Send(rid=0, to="b", cmid="c", text="t"), Ping(rid=0), Sync(rid=0, since=0)):
        _, err = refusal(server, msg.encode(), decode)
        assert (err.code, err.rid) == (ErrorCode.INVALID_FIELD, 0)
    server = Connection(Role.SERVER)
    _, err = refusal(server, Hello(rid=0, versions=(1,)).encode(), decode)
    assert err.code == ErrorCode.INVALID_FIELD


def test_one_way_frames_accept_rid_zero() -> None:
    server = authenticated_server()
    typing = Typing(rid=0, typing=True, group=4)
    server.receive_data(
        Ack(rid=0, seq=3).encode() + typing.encode() + Close(rid=0, code=1000).encode()
    )
    assert list(server.events_received()) == [
        Ack(rid=0, seq=3),
        typing,
        ConnectionTerminated(1000, "", by_peer=True),
    ]
    assert server.data_to_send() == b""


def test_typing_is_one_way(make_pair: type[Pair], decode: Decode) -> None:
    """SPEC 20: TYPING is never answered; it takes no rid slot on either side, and its
    failures come back as ERROR with rid 0."""
    pair = make_pair()
    pair.login()
    for i in range(3):  # never outstanding, so rid 0 may repeat
        typing = Typing(rid=0, typing=bool(i % 2), to="bob")
        assert pair.request(typing) == [typing]
    assert pair.client.pending_requests == pair.server.pending_requests == 0
    assert pair.server.data_to_send() == b""
    err = Error(rid=0, code=ErrorCode.UNKNOWN_USER)
    assert pair.answer(err) == [err]
    assert not pair.client.closed
    # pushes caused by someone else's typing, presence changes and updates use rid 0 too
    for push in (
        TypingNotice(rid=0, user="bob", typing=True, ttl=6.0),
        TypingNotice(rid=0, user="bob", typing=False, ttl=6.0, group=4),
        Presence(rid=0, user="bob", online=False, last_seen=5),
    ):
        assert pair.answer(push) == [push]
    assert not pair.client.closed


def test_typing_with_both_or_neither_target_passes_the_codec() -> None:
    """Exactly-one-of to/group is the server's check for TYPING (ERROR 1003, rid 0), not the
    codec's: the server application receives the frame."""
    server = authenticated_server()
    both = Typing(rid=0, typing=True, to="bob", group=4)
    neither = Typing(rid=0, typing=False)
    server.receive_data(both.encode() + neither.encode())
    assert list(server.events_received()) == [both, neither]
    assert server.data_to_send() == b""


def test_invalid_field_is_answered_with_the_frame_rid(decode: Decode) -> None:
    server = authenticated_server()
    _, err = refusal(server, pack_frame(T.SEND, 12, {"to": "b", "cmid": "", "text": "t"}), decode)
    assert (err.code, err.rid) == (ErrorCode.INVALID_FIELD, 12)
    assert "cmid" in err.message


def test_malformed_body_is_answered_with_rid_zero(decode: Decode) -> None:
    server = authenticated_server()
    for body in (b"", b"\xc1", msgpack.packb([1, 2]), msgpack.packb({"a": 1})):
        _, err = refusal(server, encode_frame(body), decode)
        assert (err.code, err.rid) == (ErrorCode.MALFORMED_FRAME, 0)
    _, err = refusal(server, encode_frame(msgpack.packb([30, 8, []])), decode)
    assert (err.code, err.rid) == (ErrorCode.MALFORMED_FRAME, 8)


@pytest.mark.parametrize(
    "payload",
    [
        {b"to": "b", "cmid": "c1", "text": "t"},  # a bin key at the top of the payload
        {"to": "b", "cmid": "c1", "text": "t", "meta": {b"k": 1}},  # nested in a map
        {"to": "b", "cmid": "c1", "text": "t", "meta": {"a": [{b"": 1}]}},  # in an array
    ],
    ids=["top-level", "nested", "empty-in-array"],
)
def test_bin_map_key_is_malformed(payload: dict[Any, Any], decode: Decode) -> None:
    """SPEC 1.3: map keys MUST be str. A bin key, at any depth, is ERROR 1001 with rid 0
    (like any other decoding failure), and the connection goes on with the next frame."""
    server = authenticated_server()
    _, err = refusal(server, encode_frame(msgpack.packb([int(T.SEND), 9, payload])), decode)
    assert (err.code, err.rid) == (ErrorCode.MALFORMED_FRAME, 0)
    ok = Send(rid=10, to="b", cmid="c1", text="t", meta={"k": "zażółć"})
    server.receive_data(ok.encode())
    assert list(server.events_received()) == [ok]


def test_duplicate_in_flight_rid(decode: Decode) -> None:
    server = authenticated_server()
    first = Send(rid=5, to="b", cmid="c1", text="t")
    server.receive_data(first.encode())
    assert list(server.events_received()) == [first]
    _, err = refusal(server, Send(rid=5, to="b", cmid="c2", text="t").encode(), decode)
    assert (err.code, err.rid) == (ErrorCode.DUPLICATE_REQUEST_ID, 5)


def test_duplicate_rid_refusal_keeps_the_original_in_flight(decode: Decode) -> None:
    # regression: the 1007 answer used to settle (discard) the original request's rid
    server = authenticated_server()
    server.receive_data(Send(rid=5, to="b", cmid="c1", text="t").encode())
    list(server.events_received())
    refusal(server, Send(rid=5, to="b", cmid="c2", text="t").encode(), decode)
    assert server.pending_requests == 1  # the first SEND is still unanswered
    # a third use of rid 5 must be refused too
    _, err = refusal(server, Send(rid=5, to="b", cmid="c3", text="t").encode(), decode)
    assert err.code == ErrorCode.DUPLICATE_REQUEST_ID


def test_refused_frame_reusing_an_in_flight_rid_keeps_it_in_flight(decode: Decode) -> None:
    server = authenticated_server()
    server.receive_data(Sync(rid=8, since=0).encode())
    list(server.events_received())
    _, err = refusal(server, Auth(rid=8, token="t").encode(), decode)
    assert err.code == ErrorCode.ALREADY_AUTHENTICATED
    assert server.pending_requests == 1


def test_inflight_limit_cannot_be_bypassed_with_duplicate_rids() -> None:
    limits = Limits(max_inflight_requests=2, max_protocol_errors=1000)
    server = authenticated_server(limits)
    accepted = 0
    for i in range(10):
        # each SEND below is a real request the server app will process and answer
        server.receive_data(Send(rid=1, to="b", cmid=f"c{i}", text="t").encode())
        accepted += sum(isinstance(e, Send) for e in server.events_received())
    assert accepted <= 2


def test_inflight_limit_is_rate_limited(decode: Decode) -> None:
    limits = Limits(max_inflight_requests=3)
    server = authenticated_server(limits)
    for rid in (10, 11, 12):
        server.receive_data(Ping(rid=rid).encode())
        assert list(server.events_received()) == [Ping(rid=rid)]
    assert server.pending_requests == 3
    _, err = refusal(server, Ping(rid=13).encode(), decode)
    assert (err.code, err.rid) == (ErrorCode.RATE_LIMITED, 13)
    # one-way ACK is not a request and is still accepted
    server.receive_data(Ack(rid=0, seq=1).encode())
    assert list(server.events_received()) == [Ack(rid=0, seq=1)]
    # answering one frees a slot
    server.send(Pong(rid=10, time=1))
    decode(server.data_to_send())
    server.receive_data(Ping(rid=13).encode())
    assert list(server.events_received()) == [Ping(rid=13)]


def test_default_inflight_limit_is_256(decode: Decode) -> None:
    server = authenticated_server()
    server.receive_data(b"".join(Ping(rid=r).encode() for r in range(1, 258)))
    events = list(server.events_received())
    assert all(isinstance(e, Ping) for e in events[:256])
    assert isinstance(events[256], ProtocolViolation)
    assert events[256].code == ErrorCode.RATE_LIMITED
    (err,) = decode(server.data_to_send())
    assert (err.code, err.rid) == (ErrorCode.RATE_LIMITED, 257)


def test_unsupported_version_sends_error_then_close(decode: Decode) -> None:
    server = Connection(Role.SERVER)
    server.receive_data(Hello(rid=3, versions=(7, 8)).encode())
    events = list(server.events_received())
    assert events[0] == ProtocolViolation(ErrorCode.UNSUPPORTED_VERSION, "no common version", 3)
    assert events[1] == ConnectionTerminated(4004, "no common protocol version", by_peer=False)
    err, close = decode(server.data_to_send())
    assert isinstance(err, Error) and err.code == 1005 and err.rid == 3
    assert err.data == {"versions": [1]}
    assert isinstance(close, Close) and close.code == 4004 and close.rid == 0
    assert server.closed and server.close_code == CloseCode.UNSUPPORTED_VERSION


@pytest.mark.parametrize("max_errors", [0, 1, 3, 10])
def test_too_many_protocol_errors_closes_with_protocol_error(
    max_errors: int, decode: Decode
) -> None:
    server = authenticated_server(Limits(max_protocol_errors=max_errors))
    for i in range(max_errors):  # tolerated
        refusal(server, pack_frame(99, i + 1, {}), decode)
        assert not server.closed
    server.receive_data(pack_frame(99, 50, {}))
    events = list(server.events_received())
    assert isinstance(events[0], ProtocolViolation)
    assert events[1] == ConnectionTerminated(1002, "too many protocol errors", by_peer=False)
    err, close = decode(server.data_to_send())
    assert (err.code, err.rid) == (ErrorCode.UNKNOWN_TYPE, 50)
    assert isinstance(close, Close) and close.code == CloseCode.PROTOCOL_ERROR
    assert server.closed and server.get_timer() is None
    # and nothing more is read or written
    server.receive_data(Ping(rid=60).encode())
    assert list(server.events_received()) == []
    assert server.data_to_send() == b""


def test_oversized_prefix_closes_with_frame_too_large(decode: Decode) -> None:
    server = server_after_hello(limits=Limits(max_frame_size=64))
    server.receive_data(b"\x00\x00\x00\x41")  # 65: just the prefix, no body
    events = list(server.events_received())
    assert len(events) == 1 and isinstance(events[0], ConnectionTerminated)
    assert events[0].code == CloseCode.FRAME_TOO_LARGE and not events[0].by_peer
    (close,) = decode(server.data_to_send())
    assert isinstance(close, Close) and close.code == 1009
    assert server.closed and server.close_code == 1009
    server.receive_data(b"x" * 100)  # the body that follows is never read
    assert list(server.events_received()) == [] and server.data_to_send() == b""


def test_oversized_prefix_with_default_limit(decode: Decode) -> None:
    server = Connection(Role.SERVER)
    server.receive_data((1024 * 1024 + 1).to_bytes(4, "big"))
    assert [e.code for e in server.events_received()] == [1009]  # type: ignore[union-attr]
    assert [m.code for m in decode(server.data_to_send())] == [1009]


def test_truncated_frame_then_eof_closes_with_protocol_error(decode: Decode) -> None:
    server = server_after_hello()
    server.receive_data(Ping(rid=4).encode()[:-1])
    assert list(server.events_received()) == []
    server.receive_eof()
    events = list(server.events_received())
    assert len(events) == 1 and isinstance(events[0], ConnectionTerminated)
    assert events[0].code == CloseCode.PROTOCOL_ERROR
    (close,) = decode(server.data_to_send())
    assert isinstance(close, Close) and close.code == 1002
    assert server.closed


def test_clean_eof_terminates_without_a_code() -> None:
    server = server_after_hello()
    server.receive_eof()
    assert list(server.events_received()) == [
        ConnectionTerminated(None, "end of stream", by_peer=True)
    ]
    assert server.closed and server.close_code is None
    assert server.data_to_send() == b""
    server.receive_eof()  # idempotent
    assert list(server.events_received()) == []


def test_frames_received_before_eof_are_still_delivered() -> None:
    # regression: receive_eof() used to close at once and drop frames not yet pulled
    server = authenticated_server()
    ack = Ack(rid=0, seq=7)
    server.receive_data(ack.encode())  # e.g. data_received and eof_received in one loop tick
    server.receive_eof()
    assert list(server.events_received()) == [
        ack,
        ConnectionTerminated(None, "end of stream", by_peer=True),
    ]


def test_frames_after_close_are_ignored() -> None:
    server = authenticated_server()
    tail = Ping(rid=3).encode() + pack_frame(99, 4, {}) + b"\xc1\xc1"
    server.receive_data(Close(rid=0, code=1000, reason="done").encode() + tail)
    assert list(server.events_received()) == [ConnectionTerminated(1000, "done", by_peer=True)]
    server.receive_data(tail)
    assert list(server.events_received()) == []
    assert server.data_to_send() == b""
    assert server.send(Pong(rid=3, time=0)) is False
    assert server.send_frame(b"junk", T.UPDATES) is False
    assert server.data_to_send() == b""


def test_close_is_idempotent(decode: Decode) -> None:
    server = authenticated_server()
    server.close(CloseCode.GOING_AWAY, "restart")
    server.close(CloseCode.INTERNAL_ERROR, "again")
    (close,) = decode(server.data_to_send())
    assert close == Close(rid=0, code=1001, reason="restart")
    assert list(server.events_received()) == [ConnectionTerminated(1001, "restart", by_peer=False)]
    assert server.close_code == 1001


def test_send_close_message_closes(decode: Decode) -> None:
    server = authenticated_server()
    assert server.send(Close(rid=0, code=4002, reason="logged out"))
    assert server.closed
    assert decode(server.data_to_send()) == [Close(rid=0, code=4002, reason="logged out")]


# --------------------------------------------------------------------------- local misuse


def test_client_cannot_send_what_its_state_forbids() -> None:
    client = Connection(Role.CLIENT)
    with pytest.raises(LocalProtocolError):
        client.send(Login(rid=1, username="a", password="p", device="d"))
    with pytest.raises(LocalProtocolError):
        client.send(Ping(rid=1))  # not before WELCOME
    client.send(Hello(rid=1, versions=(1,)))
    with pytest.raises(LocalProtocolError):
        client.send(Sync(rid=2, since=0))  # still waiting for WELCOME
    client.data_to_send()
    client.receive_data(Welcome(rid=1, version=1, server="s", time=0, heartbeat=1).encode())
    assert [type(e) for e in client.events_received()] == [Welcome]
    for msg in (
        Send(rid=3, to="b", cmid="c", text="t"),
        Ack(rid=0, seq=1),
        Hello(rid=3, versions=(1,)),
    ):
        with pytest.raises(LocalProtocolError):
            client.send(msg)
    assert client.data_to_send() == b""  # nothing was queued by the refused sends


def test_client_cannot_send_server_types(make_pair: type[Pair]) -> None:
    pair = make_pair()
    pair.login()
    for msg in (
        Welcome(rid=1, version=1, server="s", time=0, heartbeat=1.0),
        Pong(rid=1, time=1),
        Error(rid=1, code=1),
        Updates(rid=0, updates=(), head=0),
    ):
        with pytest.raises(LocalProtocolError):
            pair.client.send(msg)


def test_server_cannot_send_what_its_state_forbids() -> None:
    server = Connection(Role.SERVER)
    with pytest.raises(LocalProtocolError):
        server.send(Sent(rid=1, id=1, conv=1, pos=1, ts=1, seq=1, cmid="c"))
    with pytest.raises(LocalProtocolError):
        server.send(Ping(rid=1))  # a client type
    with pytest.raises(LocalProtocolError):
        server.send_frame(encode_updates_frame(0, [], 0), T.UPDATES)
    server = server_after_hello()
    with pytest.raises(LocalProtocolError):
        server.send(Updates(rid=0, updates=(), head=0))  # not before AUTHENTICATED
    with pytest.raises(LocalProtocolError):
        server.send(Welcome(rid=1, version=1, server="s", time=0, heartbeat=1.0))
    assert server.data_to_send() == b""


def test_closed_connection_send_returns_false() -> None:
    client = Connection(Role.CLIENT)
    client.close()
    assert client.send(Hello(rid=1, versions=(1,))) is False
    assert client.send(Login(rid=1, username="a", password="p", device="d")) is False


def test_next_rid_is_positive_and_increasing() -> None:
    client = Connection(Role.CLIENT)
    rids = [client.next_rid() for _ in range(5)]
    assert rids == [1, 2, 3, 4, 5]
    client._next_rid = 0xFFFFFFFF  # wraps around, never to 0
    assert client.next_rid() == 1


# --------------------------------------------------------------------------- client side


def test_client_closes_with_protocol_error_on_a_malformed_server_frame(
    make_pair: type[Pair], decode: Decode
) -> None:
    pair = make_pair()
    pair.handshake()
    pair.client.receive_data(encode_frame(b"\xc1"))
    events = list(pair.client.events_received())
    assert isinstance(events[0], ProtocolViolation)
    assert events[0].code == ErrorCode.MALFORMED_FRAME
    assert events[1] == ConnectionTerminated(1002, events[0].message, by_peer=False)
    assert pair.client.closed
    assert decode(pair.client.data_to_send()) == [Close(rid=0, code=1002, reason=events[0].message)]


@pytest.mark.parametrize(
    "frame",
    [
        Hello(rid=0, versions=(1,)).encode(),  # a client type
        pack_frame(99, 0, {}),  # undefined
        Updates(rid=0, updates=(), head=0).encode(),  # not allowed before auth
        pack_frame(T.PONG, 0, {"time": "now"}),  # invalid field
        Sent(rid=77, id=1, conv=1, pos=1, ts=1, seq=1, cmid="c").encode(),  # answer to no request
    ],
)
def test_client_closes_on_any_server_violation(
    frame: bytes, make_pair: type[Pair], decode: Decode
) -> None:
    pair = make_pair()
    pair.handshake()
    pair.client.receive_data(frame)
    events = list(pair.client.events_received())
    assert isinstance(events[0], ProtocolViolation)
    assert isinstance(events[1], ConnectionTerminated) and events[1].code == 1002
    (close,) = decode(pair.client.data_to_send())  # a client answers with CLOSE, never ERROR
    assert isinstance(close, Close) and close.code == 1002


def test_client_accepts_error_for_an_unknown_rid(make_pair: type[Pair]) -> None:
    pair = make_pair()
    pair.handshake()
    for err in (
        Error(rid=4242, code=ErrorCode.MALFORMED_FRAME),
        Error(rid=0, code=ErrorCode.INVALID_FIELD),
    ):
        pair.client.receive_data(err.encode())
        assert list(pair.client.events_received()) == [err]
    assert not pair.client.closed


def test_client_close_from_server_ends_the_client(make_pair: type[Pair]) -> None:
    pair = make_pair()
    pair.login()
    pair.server.close(CloseCode.GOING_AWAY, "shutdown")
    assert CloseCode(1001).reconnect
    assert pair.to_client() == [ConnectionTerminated(1001, "shutdown", by_peer=True)]
    assert pair.client.closed and pair.client.close_code == 1001


def test_server_push_before_close_is_delivered(make_pair: type[Pair]) -> None:
    pair = make_pair()
    pair.login()
    pair.server.send(Updates(rid=0, updates=(), head=4))
    pair.server.close(CloseCode.LOGGED_OUT, "revoked")
    assert pair.to_client() == [
        Updates(rid=0, updates=(), head=4),
        ConnectionTerminated(4002, "revoked", by_peer=True),
    ]


def test_client_eof_without_close(make_pair: type[Pair]) -> None:
    pair = make_pair()
    pair.handshake()
    pair.client.receive_eof()
    assert list(pair.client.events_received()) == [
        ConnectionTerminated(None, "end of stream", by_peer=True)
    ]


def test_pair_byte_stream_survives_arbitrary_chunking(make_pair: type[Pair]) -> None:
    pair = make_pair()
    pair.handshake()
    c, s = pair.client, pair.server
    msgs = [Register(rid=c.next_rid(), username=f"user{i}", password="password1") for i in range(4)]
    for m in msgs:
        c.send(m)
    data = c.data_to_send()
    got: list[Any] = []
    for i in range(len(data)):
        s.receive_data(data[i : i + 1])
        got += list(s.events_received())
    assert got == msgs


# --------------------------------------------------------------------------- SPEC.md tables

# Channels (SPEC.md 24), the wallet (25), bots (26), nearby (29) and the shop (30): session
# requests, answers and pushes, like the social layer's; a sample of each is its first test
# vector (SPEC.md 28), decoded.
FEATURE_CLASSES = (*CHANNEL_CLASSES, *WALLET_CLASSES, *BOT_CLASSES, *NEARBY_CLASSES, *SHOP_CLASSES)


def _vector_payloads() -> dict[int, Any]:
    path = Path(__file__).resolve().parents[1] / "vectors" / "protocol_v1.json"
    out: dict[int, Any] = {}
    for v in json.loads(path.read_text(encoding="utf-8")):
        if v["type"] in {int(c.TYPE) for c in FEATURE_CLASSES} and v["type"] not in out:
            out[v["type"]] = unpack_body(bytes.fromhex(v["hex"])[4:])[2]
    return out


FEATURE_PAYLOADS = _vector_payloads()

# SPEC.md 4.3, transcribed: None = accepted, else the ERROR code the server answers.
_B, _NA, _AA = ErrorCode.BAD_STATE, ErrorCode.NOT_AUTHENTICATED, ErrorCode.ALREADY_AUTHENTICATED
CLIENT_TABLE: dict[int, tuple[ErrorCode | None, ErrorCode | None, ErrorCode | None]] = {
    T.HELLO: (None, _B, _B),
    T.PING: (_B, None, None),
    T.CLOSE: (None, None, None),
    T.REGISTER: (_B, None, _AA),
    T.LOGIN: (_B, None, _AA),
    T.AUTH: (_B, None, _AA),
    T.LOGOUT: (_B, _NA, None),
    T.LIST_DEVICES: (_B, _NA, None),
    T.REVOKE_DEVICE: (_B, _NA, None),
    T.SEND: (_B, _NA, None),
    T.SYNC: (_B, _NA, None),
    T.ACK: (_B, _NA, None),
    T.HISTORY: (_B, _NA, None),
    # the social layer: every client type is a session request (SPEC.md 4.3)
    **{int(c.TYPE): (_B, _NA, None) for c in SOCIAL_CLASSES if c.FROM_CLIENT},
    # media: session requests too (SPEC.md 4.3)
    **{int(c.TYPE): (_B, _NA, None) for c in MEDIA_CLASSES if c.FROM_CLIENT},
    **{int(c.TYPE): (_B, _NA, None) for c in FEATURE_CLASSES if c.FROM_CLIENT},
}


_SHA = bytes(32)
CLIENT_SAMPLES: dict[int, Any] = {
    T.HELLO: Hello(rid=20, versions=(1,)),
    T.PING: Ping(rid=20),
    T.CLOSE: Close(rid=0, code=1000),
    T.REGISTER: Register(rid=20, username="a", password="p"),
    T.LOGIN: Login(rid=20, username="a", password="p", device="d"),
    T.AUTH: Auth(rid=20, token="t"),
    T.LOGOUT: Logout(rid=20),
    T.LIST_DEVICES: ListDevices(rid=20),
    T.REVOKE_DEVICE: RevokeDevice(rid=20, device="d"),
    T.SEND: Send(rid=20, to="b", cmid="c", text="t"),
    T.SYNC: Sync(rid=20, since=0),
    T.ACK: Ack(rid=0, seq=0),
    T.HISTORY: History(rid=20, with_user="b"),
    T.GROUP_CREATE: GroupCreate(rid=20, name="g", members=("b",)),
    T.GET_GROUP: GetGroup(rid=20, group=1),
    T.GROUP_ADD: GroupAdd(rid=20, group=1, users=("b",)),
    T.GROUP_REMOVE: GroupRemove(rid=20, group=1, user="b"),
    T.GROUP_LEAVE: GroupLeave(rid=20, group=1),
    T.GROUP_UPDATE: GroupUpdate(rid=20, group=1, name="h"),
    T.GROUP_SET_ROLE: GroupSetRole(rid=20, group=1, user="b", role="admin"),
    T.GROUP_TRANSFER: GroupTransfer(rid=20, group=1, user="b"),
    T.LIST_GROUPS: ListGroups(rid=20),
    T.READ: Read(rid=20, conv=1, pos=1),
    T.GET_RECEIPTS: GetReceipts(rid=20, conv=1),
    T.LIST_CONVERSATIONS: ListConversations(rid=20, limit=5),
    T.TYPING: Typing(rid=0, typing=True, group=1),
    T.GET_PRESENCE: GetPresence(rid=20, users=("b",)),
    T.CONTACT_REQUEST: ContactRequest(rid=20, user="b"),
    T.CONTACT_ACCEPT: ContactAccept(rid=20, user="b"),
    T.CONTACT_DECLINE: ContactDecline(rid=20, user="b"),
    T.CONTACT_CANCEL: ContactCancel(rid=20, user="b"),
    T.CONTACT_REMOVE: ContactRemove(rid=20, user="b"),
    T.LIST_CONTACTS: ListContacts(rid=20),
    T.BLOCK: Block(rid=20, user="b"),
    T.UNBLOCK: Unblock(rid=20, user="b"),
    T.SET_PROFILE: SetProfile(rid=20, status="s"),
    T.GET_PROFILE: GetProfile(rid=20, user="b"),
    T.SET_PRIVACY: SetPrivacy(rid=20, presence="nobody"),
    T.GET_PRIVACY: GetPrivacy(rid=20),
    T.UPLOAD_BEGIN: UploadBegin(rid=20, size=1, sha256=_SHA, media_type="a/b", chunk_size=16384),
    T.UPLOAD_CHUNK: UploadChunk(rid=20, upload=1, offset=0, data=b"x"),
    T.UPLOAD_FINISH: UploadFinish(rid=20, upload=1),
    T.UPLOAD_CANCEL: UploadCancel(rid=20, upload=1),
    T.DOWNLOAD: Download(rid=20, blob=_SHA, offset=0, length=1),
    **{
        int(c.TYPE): decode_message(int(c.TYPE), 20, FEATURE_PAYLOADS[int(c.TYPE)])
        for c in FEATURE_CLASSES
        if c.FROM_CLIENT
    },
}
STATES = [State.AWAIT_HELLO, State.CONNECTED, State.AUTHENTICATED]


def _server_in(state: State) -> Connection:
    if state is State.AWAIT_HELLO:
        return Connection(Role.SERVER)
    return server_after_hello() if state is State.CONNECTED else authenticated_server()


@pytest.mark.parametrize("state", STATES, ids=[s.name for s in STATES])
@pytest.mark.parametrize("msg_type", sorted(CLIENT_TABLE), ids=lambda t: MessageType(t).name)
def test_spec_table_what_the_client_may_send(msg_type: int, state: State, decode: Decode) -> None:
    sample = CLIENT_SAMPLES[msg_type]
    expected = CLIENT_TABLE[msg_type][STATES.index(state)]
    server = _server_in(state)
    server.receive_data(sample.encode())
    events = list(server.events_received())
    out = decode(server.data_to_send())
    if expected is None and msg_type == T.CLOSE:
        assert events == [ConnectionTerminated(1000, "", by_peer=True)] and out == []
    elif expected is None:
        assert events == [sample] and out == []
    else:
        assert isinstance(events[0], ProtocolViolation)
        assert [(type(m), m.code, m.rid) for m in out] == [(Error, expected, sample.rid)]
        assert server.state is state


# SPEC.md 4.4, transcribed: the server types a client accepts in each state.
SERVER_TABLE: dict[int, tuple[bool, bool, bool]] = {
    T.WELCOME: (True, False, False),
    T.PONG: (False, True, True),
    T.CLOSE: (True, True, True),
    T.ERROR: (True, True, True),
    T.REGISTERED: (False, True, False),
    T.AUTHENTICATED: (False, True, False),
    T.LOGGED_OUT: (False, False, True),
    T.DEVICE_LIST: (False, False, True),
    T.DEVICE_REVOKED: (False, False, True),
    T.SENT: (False, False, True),
    T.UPDATES: (False, False, True),
    T.HISTORY_PAGE: (False, False, True),
    # the social layer: answers and pushes of a session only (SPEC.md 4.4)
    **{int(c.TYPE): (False, False, True) for c in SOCIAL_CLASSES if not c.FROM_CLIENT},
    **{int(c.TYPE): (False, False, True) for c in MEDIA_CLASSES if not c.FROM_CLIENT},
    **{int(c.TYPE): (False, False, True) for c in FEATURE_CLASSES if not c.FROM_CLIENT},
}


def _server_sample(msg_type: int, rid: int) -> Any:
    if msg_type in FEATURE_PAYLOADS:
        return decode_message(msg_type, rid, FEATURE_PAYLOADS[msg_type])
    return {
        T.WELCOME: Welcome(rid=rid, version=1, server="s", time=0, heartbeat=30.0),
        T.PONG: Pong(rid=rid, time=0),
        T.CLOSE: Close(rid=0, code=1001),
        T.ERROR: Error(rid=rid, code=5001),
        T.REGISTERED: Registered(rid=rid, user="a"),
        T.AUTHENTICATED: Authenticated(rid=rid, user="a", device="d", head=0, acked=0),
        T.LOGGED_OUT: LoggedOut(rid=rid),
        T.DEVICE_LIST: DeviceList(rid=rid, devices=()),
        T.DEVICE_REVOKED: DeviceRevoked(rid=rid, device="d"),
        T.SENT: Sent(rid=rid, id=1, conv=1, pos=1, ts=1, seq=1, cmid="c"),
        T.UPDATES: Updates(rid=rid, updates=(), head=0),
        T.HISTORY_PAGE: HistoryPage(rid=rid, messages=()),
        T.OK: Ok(rid=rid, pos=3),
        T.GROUP_INFO: GroupInfo(
            rid=rid, group=1, name="g", topic="", owner="a", created=0, pos=1, members=()
        ),
        T.GROUP_LIST: GroupList(rid=rid, groups=()),
        T.RECEIPTS: Receipts(rid=rid, conv=1, read=(), delivered=()),
        T.CONVERSATION_LIST: ConversationList(rid=rid, conversations=()),
        T.TYPING_NOTICE: TypingNotice(rid=rid, user="b", typing=True, ttl=6.0),
        T.PRESENCE: Presence(rid=rid, user="b", online=True, last_seen=0),
        T.PRESENCE_LIST: PresenceList(rid=rid, presence=()),
        T.CONTACT_LIST: ContactList(rid=rid, contacts=(), incoming=(), outgoing=(), blocked=()),
        T.PROFILE: Profile(rid=rid, user="b", display_name="", status=""),
        T.PRIVACY: Privacy(rid=rid, presence="contacts", profile="everyone", messages="everyone"),
        T.UPLOAD_STATUS: UploadStatus(
            rid=rid, upload=1, size=1, chunk_size=16384, held=(), expires=0
        ),
        T.UPLOAD_DONE: UploadDone(rid=rid, blob=_SHA, size=1, media_type="a/b"),
        T.BLOB_DATA: BlobData(rid=rid, blob=_SHA, offset=0, size=1, data=b"x"),
    }[msg_type]


@pytest.mark.parametrize("state", STATES, ids=[s.name for s in STATES])
@pytest.mark.parametrize("msg_type", sorted(SERVER_TABLE), ids=lambda t: MessageType(t).name)
def test_spec_table_what_the_server_may_send(
    msg_type: int, state: State, make_pair: type[Pair], decode: Decode
) -> None:
    pair = make_pair()
    if state is State.AWAIT_HELLO:
        pair.client.send(Hello(rid=30, versions=(1,)))
        pair.to_server()
    elif state is State.CONNECTED:
        pair.handshake()
    else:
        pair.login()
    client = pair.client
    if state is not State.AWAIT_HELLO:  # rid 30 is outstanding in every state
        assert pair.request(Ping(rid=30)) == [Ping(rid=30)]
    sample = _server_sample(msg_type, 30)
    allowed = SERVER_TABLE[msg_type][STATES.index(state)]
    # the server side refuses to send it exactly when the client would refuse to receive it
    server = pair.server
    if allowed:
        server.send(sample)
        frame = server.data_to_send()
    else:
        with pytest.raises(LocalProtocolError):
            server.send(sample)
        frame = sample.encode()
    client.receive_data(frame)
    events = list(client.events_received())
    if allowed and msg_type == T.CLOSE:
        assert events == [ConnectionTerminated(1001, "", by_peer=True)]
    elif allowed:
        assert events == [sample]
        assert not client.closed
    else:
        assert isinstance(events[0], ProtocolViolation)
        assert events[1].code == CloseCode.PROTOCOL_ERROR  # type: ignore[union-attr]
        assert [m.code for m in decode(client.data_to_send())] == [1002]


def test_spec_tables_cover_every_message_type() -> None:
    assert set(CLIENT_TABLE) == set(CLIENT_SAMPLES)
    for t, sample in CLIENT_SAMPLES.items():
        assert t == sample.TYPE
    everything = {int(t) for t in MessageType}
    assert set(CLIENT_TABLE) | set(SERVER_TABLE) == everything
    assert set(CLIENT_TABLE) & set(SERVER_TABLE) == {T.CLOSE}
    for t in SERVER_TABLE:
        assert t == _server_sample(t, 30).TYPE


# --------------------------------------------------------------------------- SPEC.md details


@pytest.mark.parametrize(
    ("frame", "code", "rid"),
    [
        # 3 (state) before 4 (fields): an invalid SEND before auth is NOT_AUTHENTICATED
        (pack_frame(T.SEND, 5, {"cmid": ""}), ErrorCode.NOT_AUTHENTICATED, 5),
        # 2 (type) before 3 (state)
        (pack_frame(T.WELCOME, 5, {}), ErrorCode.UNKNOWN_TYPE, 5),
        # 4 (fields) before 5 (rid): invalid fields with rid 0 keep the frame's rid (0)
        (pack_frame(T.REGISTER, 0, {}), ErrorCode.INVALID_FIELD, 0),
    ],
)
def test_spec_order_of_checks_when_connected(
    frame: bytes, code: ErrorCode, rid: int, decode: Decode
) -> None:
    server = server_after_hello()
    _, err = refusal(server, frame, decode)
    assert (err.code, err.rid) == (code, rid)


def test_spec_order_of_checks_rid_before_version(decode: Decode) -> None:
    server = Connection(Role.SERVER)
    _, err = refusal(server, Hello(rid=0, versions=(9,)).encode(), decode)
    assert (err.code, err.rid) == (ErrorCode.INVALID_FIELD, 0)  # 5 before 6, no close
    assert not server.closed
    server.receive_data(Hello(rid=1, versions=(1,)).encode())
    assert list(server.events_received()) == [Hello(rid=1, versions=(1,))]
    _, err = refusal(server, Hello(rid=1, versions=(9,)).encode(), decode)
    assert (err.code, err.rid) == (ErrorCode.DUPLICATE_REQUEST_ID, 1)
    assert not server.closed


def test_spec_invalid_close_does_not_close(decode: Decode) -> None:
    server = authenticated_server()
    _, err = refusal(server, pack_frame(T.CLOSE, 0, {"reason": "no code"}), decode)
    assert (err.code, err.rid) == (ErrorCode.INVALID_FIELD, 0)
    assert not server.closed


def test_spec_codec_rate_limit_has_no_retry_after(decode: Decode) -> None:
    server = authenticated_server(Limits(max_inflight_requests=1))
    server.receive_data(Ping(rid=1).encode())
    list(server.events_received())
    _, err = refusal(server, Ping(rid=2).encode(), decode)
    assert err.code == ErrorCode.RATE_LIMITED and err.retry_after is None


def test_spec_codec_never_sends_1006(decode: Decode) -> None:
    server = Connection(Role.SERVER, limits=Limits(max_frame_size=10))
    server.receive_data(b"\x00\x00\x00\x0b")
    list(server.events_received())
    out = decode(server.data_to_send())
    assert [(type(m), m.code) for m in out] == [(Close, CloseCode.FRAME_TOO_LARGE)]


def test_spec_client_refuses_oversized_server_frames(make_pair: type[Pair], decode: Decode) -> None:
    pair = make_pair(Limits(max_frame_size=400), server_limits=DEFAULT_LIMITS)
    pair.handshake()
    pair.server.send(Error(rid=0, code=5001, message="x" * 1000))
    events = pair.to_client()
    assert [type(e) for e in events] == [ConnectionTerminated]
    assert events[0].code == 1009  # type: ignore[union-attr]
    assert [m.code for m in decode(pair.client.data_to_send())] == [1009]


def test_spec_truncated_prefix_then_eof(decode: Decode) -> None:
    server = server_after_hello()
    server.receive_data(b"\x00\x00")
    server.receive_eof()
    assert [e.code for e in server.events_received()] == [1002]  # type: ignore[union-attr]
    assert [m.code for m in decode(server.data_to_send())] == [1002]


def test_spec_nil_token_in_authenticated_reads_as_absent(make_pair: type[Pair]) -> None:
    pair = make_pair()
    pair.handshake()
    rid = pair.client.next_rid()
    pair.request(Auth(rid=rid, token="t"))
    pair.client.receive_data(
        pack_frame(
            T.AUTHENTICATED, rid, {"user": "a", "device": "d", "head": 0, "acked": 0, "token": None}
        )
    )
    assert list(pair.client.events_received()) == [
        Authenticated(rid=rid, user="a", device="d", head=0, acked=0, token=None)
    ]


def test_spec_float32_and_int_durations_are_accepted(make_pair: type[Pair]) -> None:
    pair = make_pair()
    rid = pair.client.next_rid()
    pair.request(Hello(rid=rid, versions=(1,)))
    body = msgpack.packb(
        [2, rid, {"version": 1, "server": "s", "time": 0, "heartbeat": 2.5}], use_single_float=True
    )
    assert b"\xca" in body  # float 32
    pair.client.receive_data(encode_frame(body), now=0.0)
    (welcome,) = list(pair.client.events_received())
    assert isinstance(welcome, Welcome) and welcome.heartbeat == 2.5
    assert pair.client.get_timer() == 2.5


# --------------------------------------------------------------------------- frames before the end


def test_spec_frames_before_an_oversized_prefix_are_processed_first(decode: Decode) -> None:
    server = authenticated_server(Limits(max_frame_size=64))
    ping, ack = Ping(rid=5), Ack(rid=0, seq=1)
    server.receive_data(ping.encode() + ack.encode() + (65).to_bytes(4, "big") + b"x" * 10)
    assert server.next_event() == ping
    # the application answers before pulling the next event: the answer precedes the CLOSE
    server.send(Pong(rid=5, time=1))
    assert server.next_event() == ack
    term = server.next_event()
    assert isinstance(term, ConnectionTerminated) and term.code == 1009 and not term.by_peer
    assert server.next_event() is None
    out = decode(server.data_to_send())
    assert [type(m) for m in out] == [Pong, Close] and out[1].code == 1009
    server.receive_data(Ping(rid=6).encode())  # nothing after the oversized prefix is read
    assert list(server.events_received()) == [] and server.data_to_send() == b""


def test_spec_frames_before_a_truncated_end_are_processed_first(decode: Decode) -> None:
    server = authenticated_server()
    sync = Sync(rid=3, since=0)
    server.receive_data(sync.encode() + Ping(rid=4).encode()[:5])
    server.receive_eof()
    events = list(server.events_received())
    assert events[0] == sync
    assert isinstance(events[1], ConnectionTerminated) and events[1].code == 1002
    assert [m.code for m in decode(server.data_to_send())] == [1002]


def test_data_after_eof_is_ignored() -> None:
    server = authenticated_server()
    server.receive_eof()
    server.receive_data(Ping(rid=4).encode())
    assert list(server.events_received()) == [
        ConnectionTerminated(None, "end of stream", by_peer=True)
    ]


def test_close_frame_before_eof_wins() -> None:
    server = authenticated_server()
    server.receive_data(Close(rid=0, code=1000, reason="bye").encode())
    server.receive_eof()
    assert list(server.events_received()) == [ConnectionTerminated(1000, "bye", by_peer=True)]
    assert server.close_code == 1000


def test_client_delivers_server_frames_before_an_oversized_one(
    make_pair: type[Pair], decode: Decode
) -> None:
    pair = make_pair(Limits(max_frame_size=300), server_limits=DEFAULT_LIMITS)
    pair.handshake()
    pair.server.send(Error(rid=0, code=5001, message="short"))
    pair.server.send(Error(rid=0, code=5001, message="x" * 500))
    events = pair.to_client()
    assert isinstance(events[0], Error) and events[0].message == "short"
    assert isinstance(events[1], ConnectionTerminated) and events[1].code == 1009
    assert [m.code for m in decode(pair.client.data_to_send())] == [1009]


# --------------------------------------------------------------------------- error counting


@pytest.mark.parametrize(
    "make_refusal",
    [
        lambda: Send(rid=7, to="b", cmid="c", text="t"),  # 2001 before auth
    ],
    ids=["2001"],
)
def test_spec_not_now_refusals_do_not_count_as_protocol_errors(
    make_refusal: Any, decode: Decode
) -> None:
    server = server_after_hello(limits=Limits(max_protocol_errors=2))
    for _ in range(10):
        _, err = refusal(server, make_refusal().encode(), decode)
        assert err.code == ErrorCode.NOT_AUTHENTICATED
    assert not server.closed


def test_spec_already_authenticated_and_rate_limited_do_not_count(decode: Decode) -> None:
    server = authenticated_server(Limits(max_protocol_errors=1, max_inflight_requests=1))
    server.receive_data(Ping(rid=1).encode())
    assert list(server.events_received()) == [Ping(rid=1)]
    for i in range(5):
        _, err = refusal(server, Auth(rid=10 + i, token="t").encode(), decode)
        assert err.code == ErrorCode.ALREADY_AUTHENTICATED
        _, err = refusal(server, Ping(rid=20 + i).encode(), decode)
        assert err.code == ErrorCode.RATE_LIMITED
    assert not server.closed
    # frame errors still count: 1007 (duplicate) then 1002 (unknown type) closes
    refusal(server, Ping(rid=1).encode(), decode)
    assert not server.closed
    server.receive_data(pack_frame(99, 30, {}))
    list(server.events_received())
    assert server.closed and server.close_code == CloseCode.PROTOCOL_ERROR


@pytest.mark.parametrize(
    "frame",
    [
        encode_frame(b"\xc1"),  # 1001
        pack_frame(99, 1, {}),  # 1002
        pack_frame(T.SEND, 1, {}),  # 1003
        Hello(rid=1, versions=(1,)).encode(),  # 1004 (second HELLO)
    ],
    ids=["1001", "1002", "1003", "1004"],
)
def test_spec_frame_errors_count(frame: bytes, decode: Decode) -> None:
    server = authenticated_server(Limits(max_protocol_errors=2))
    for _ in range(2):
        refusal(server, frame, decode)
        assert not server.closed
    server.receive_data(frame)
    list(server.events_received())
    assert [type(m) for m in decode(server.data_to_send())] == [Error, Close]
    assert server.close_code == CloseCode.PROTOCOL_ERROR


# --------------------------------------------------------------------------- client version check


def test_client_refuses_a_welcome_version_it_did_not_offer(
    make_pair: type[Pair], decode: Decode
) -> None:
    pair = make_pair()
    rid = pair.client.next_rid()
    pair.request(Hello(rid=rid, versions=(1,)))
    pair.client.receive_data(
        Welcome(rid=rid, version=2, server="s", time=0, heartbeat=30.0).encode()
    )
    events = list(pair.client.events_received())
    assert isinstance(events[0], ProtocolViolation)
    assert events[0].code == ErrorCode.UNSUPPORTED_VERSION
    assert isinstance(events[1], ConnectionTerminated) and events[1].code == 1002
    assert pair.client.state is State.CLOSED and pair.client.version is None
    assert [m.code for m in decode(pair.client.data_to_send())] == [1002]
