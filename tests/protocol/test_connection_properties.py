"""Property tests of the server-side state machine.

Random sequences of well-formed and broken client frames are fed to a server Connection,
and a small fake server application answers (some of) the accepted requests. An independent
model written from the design brief predicts, for every frame, whether it is accepted or
refused and with which code; the Connection must agree, never raise, answer every refusal
with an ERROR frame it queues itself, and go silent once it has closed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgpack
from hypothesis import event, given, settings
from hypothesis import strategies as st
from liaotian.protocol import (
    Authenticated,
    ChatMessage,
    Close,
    Connection,
    ConnectionTerminated,
    DeviceList,
    DeviceRevoked,
    Error,
    ErrorCode,
    HistoryPage,
    Limits,
    LocalProtocolError,
    LoggedOut,
    Message,
    MessageType,
    Pong,
    ProtocolError,
    ProtocolViolation,
    Registered,
    Role,
    Sent,
    State,
    Updates,
    Welcome,
    decode_message,
    encode_frame,
    pack_frame,
    unpack_body,
)
from liaotian.protocol.social import Ok

T = MessageType
Decode = Callable[..., list[Any]]

# ---- the model, from the brief (deliberately not imported from state.py) -------------------

ACCOUNT = {T.REGISTER, T.LOGIN, T.AUTH}
# the social layer (social.md): every new client message is a session request
SOCIAL_REQUESTS = {
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
SOCIAL_ANSWERS = {
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
CHANNEL_REQUESTS = {
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
}
CHANNEL_ANSWERS = {
    T.CHANNEL_MEMBER_LIST,
    T.CHANNEL_FOUND,
    T.CHANNEL_INFO,
    T.CHANNEL_POSTED,
    T.CHANNEL_LIKES,
    T.CHANNEL_PAGE,
    T.CHANNEL_HITS,
    T.CHANNEL_NEWS,
}
WALLET_REQUESTS = {
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
}
WALLET_ANSWERS = {
    T.WALLET,
    T.TRANSFER_LIST,
    T.PAID,
    T.RED_PACKET_SENT,
    T.RED_PACKET_CLAIMED,
    T.RED_PACKET,
    T.CHECKED_IN,
    T.TASK_LIST,
    T.ITEM_LIST,
    T.ITEM_DONE,
}
BOT_REQUESTS = {
    T.BOT_CREATE,
    T.LIST_BOTS,
    T.BOT_TOKEN,
    T.BOT_DELETE,
    T.SET_COMMANDS,
    T.GET_COMMANDS,
    T.PRESS,
    T.ANSWER_CALLBACK,
    T.BOT_EDIT,
    T.GROUP_BOTS,
    T.PENDING_CALLBACKS,
}
BOT_ANSWERS = {T.BOT_INFO, T.BOT_LIST, T.COMMAND_LIST, T.PRESSED, T.CALLBACK_LIST}
MEDIA_REQUESTS = {T.UPLOAD_BEGIN, T.UPLOAD_CHUNK, T.UPLOAD_FINISH, T.UPLOAD_CANCEL, T.DOWNLOAD}
MEDIA_ANSWERS = {T.UPLOAD_STATUS, T.UPLOAD_DONE, T.BLOB_DATA}
NEARBY_REQUESTS = {
    T.NEARBY_SHARE,
    T.NEARBY_STOP,
    T.NEARBY_QUERY,
    T.NEARBY_HELLO,
    T.MERCHANT_SET,
    T.GET_MERCHANT,
}
NEARBY_ANSWERS = {T.NEARBY_SHARED, T.NEARBY_LIST, T.MERCHANT}
SHOP_REQUESTS = {
    T.PRODUCT_ADD,
    T.PRODUCT_STOCK,
    T.LIST_PRODUCTS,
    T.GET_PRODUCT,
    T.PRODUCT_CARD,
    T.ORDER_PLACE,
    T.ORDER_STEP,
    T.LIST_ORDERS,
}
SHOP_ANSWERS = {T.PRODUCT_INFO, T.PRODUCT_LIST, T.ORDER_INFO, T.ORDER_LIST}
SESSION = {
    T.LOGOUT,
    T.LIST_DEVICES,
    T.REVOKE_DEVICE,
    T.SEND,
    T.SYNC,
    T.ACK,
    T.HISTORY,
    *SOCIAL_REQUESTS,
    *CHANNEL_REQUESTS,
    *WALLET_REQUESTS,
    *BOT_REQUESTS,
    *MEDIA_REQUESTS,
    *NEARBY_REQUESTS,
    *SHOP_REQUESTS,
}
CLIENT_MAY_SEND = {
    State.AWAIT_HELLO: {T.HELLO, T.CLOSE},
    State.CONNECTED: {T.PING, T.CLOSE} | ACCOUNT,
    State.AUTHENTICATED: {T.PING, T.CLOSE} | SESSION,
}
CLIENT_TYPES = {T.HELLO} | CLIENT_MAY_SEND[State.CONNECTED] | CLIENT_MAY_SEND[State.AUTHENTICATED]
KNOWN_TYPES = {int(t) for t in MessageType}  # never drawn as "unknown"
ONE_WAY = {T.ACK, T.CLOSE, T.TYPING}
ANSWERS = {T.PONG, T.ERROR, T.CLOSE}
SERVER_MAY_SEND = {
    State.AWAIT_HELLO: {T.WELCOME, T.ERROR, T.CLOSE},
    State.CONNECTED: ANSWERS | {T.REGISTERED, T.AUTHENTICATED},
    State.AUTHENTICATED: ANSWERS
    | {T.LOGGED_OUT, T.DEVICE_LIST, T.DEVICE_REVOKED, T.SENT, T.UPDATES, T.HISTORY_PAGE}
    | SOCIAL_ANSWERS
    | CHANNEL_ANSWERS
    | WALLET_ANSWERS
    | BOT_ANSWERS
    | MEDIA_ANSWERS
    | NEARBY_ANSWERS
    | SHOP_ANSWERS,
}


# SPEC 2.4: these count towards max_protocol_errors; "not now" refusals (2001, 2008, 4001) don't
FRAME_ERRORS = {1001, 1002, 1003, 1004, 1005, 1007}


def refusal_code(state: State, t: int) -> ErrorCode:
    if state is State.CONNECTED and t in SESSION:
        return ErrorCode.NOT_AUTHENTICATED
    if state is State.AUTHENTICATED and t in ACCOUNT:
        return ErrorCode.ALREADY_AUTHENTICATED
    return ErrorCode.BAD_STATE


@dataclass
class Model:
    limits: Limits
    state: State = State.AWAIT_HELLO
    pending: set[int] = field(default_factory=set)
    errors: int = 0
    closed: bool = False
    close_code: int | None = None

    preauth_frames: int = 0

    def frame_limit(self) -> int:
        """SPEC 2.4: until AUTHENTICATED only frames of max_preauth_frame_size are accepted."""
        if self.state is State.AUTHENTICATED:
            return self.limits.max_frame_size
        return min(self.limits.max_preauth_frame_size, self.limits.max_frame_size)

    def predict(self, body: bytes) -> tuple[str, Any]:
        """('ok', msg) | ('bad', (code, rid)) | ('close', Close msg) | ('preauth', None)."""
        if self.state is not State.AUTHENTICATED:  # SPEC 4.5 step 1
            self.preauth_frames += 1
            if self.preauth_frames > self.limits.max_preauth_frames:
                return "preauth", None
        head = header(body)  # SPEC 4.5 step 2: type and state from the header first
        if head is not None:
            t, rid = head
            if t not in CLIENT_TYPES:
                return "bad", (ErrorCode.UNKNOWN_TYPE, rid)
            if t not in CLIENT_MAY_SEND[self.state]:
                return "bad", (refusal_code(self.state, t), rid)
        try:
            t, rid, payload = unpack_body(body, self.limits)
        except ProtocolError as exc:  # frames layer, tested in test_frames.py
            return "bad", (ErrorCode.MALFORMED_FRAME, exc.rid)
        if t not in CLIENT_TYPES:
            return "bad", (ErrorCode.UNKNOWN_TYPE, rid)
        if t not in CLIENT_MAY_SEND[self.state]:
            return "bad", (refusal_code(self.state, t), rid)
        try:  # payload validation, tested in test_messages.py
            msg = decode_message(t, rid, payload, self.limits)
        except ProtocolError as exc:
            return "bad", (exc.code, exc.rid)
        if t == T.CLOSE:
            return "close", msg
        if t in ONE_WAY:
            return "ok", msg
        if rid == 0:
            return "bad", (ErrorCode.INVALID_FIELD, 0)
        if rid in self.pending:
            return "bad", (ErrorCode.DUPLICATE_REQUEST_ID, rid)
        if len(self.pending) >= self.limits.max_inflight_requests:
            return "bad", (ErrorCode.RATE_LIMITED, rid)
        if t == T.HELLO and not set(msg.versions) & {1}:
            return "bad", (ErrorCode.UNSUPPORTED_VERSION, rid)
        return "ok", msg


def header(body: bytes) -> tuple[int, int] | None:
    """The type and rid of a body that starts as [int type 1..65535, int rid 0..2**32-1, ...]."""
    unpacker = msgpack.Unpacker()
    unpacker.feed(body)
    try:
        if unpacker.read_array_header() != 3:
            return None
        t, rid = unpacker.unpack(), unpacker.unpack()
    except Exception:
        return None
    if type(t) is int and type(rid) is int and 0 < t <= 0xFFFF and 0 <= rid <= 2**32 - 1:
        return t, rid
    return None


# ---- frames --------------------------------------------------------------------------------

CHAT = ChatMessage(id=1, conv=1, pos=1, sender="a", to="b", ts=1, cmid="c", text="t")
VALID: dict[int, dict[str, Any]] = {
    T.HELLO: {"versions": [1], "client": "prop/1"},
    T.PING: {},
    T.CLOSE: {"code": 1000, "reason": "bye"},
    T.REGISTER: {"username": "alice", "password": "password1"},
    T.LOGIN: {"username": "alice", "password": "password1", "device": "d1"},
    T.AUTH: {"token": "tok"},
    T.LOGOUT: {},
    T.LIST_DEVICES: {},
    T.REVOKE_DEVICE: {"device": "d2"},
    T.SEND: {"to": "bob", "cmid": "c1", "text": "hi", "future": 1},
    T.SYNC: {"since": 0, "limit": 10},
    T.ACK: {"seq": 3},
    T.HISTORY: {"with": "bob", "after": 2},
    T.GROUP_CREATE: {"name": "trip", "members": ["bob"]},
    T.GET_GROUP: {"group": 3},
    T.GROUP_ADD: {"group": 3, "users": ["carol"]},
    T.GROUP_REMOVE: {"group": 3, "user": "carol"},
    T.GROUP_LEAVE: {"group": 3},
    T.GROUP_UPDATE: {"group": 3, "topic": ""},
    T.GROUP_SET_ROLE: {"group": 3, "user": "bob", "role": "admin"},
    T.GROUP_TRANSFER: {"group": 3, "user": "bob"},
    T.LIST_GROUPS: {},
    T.READ: {"conv": 3, "pos": 1},
    T.GET_RECEIPTS: {"conv": 3},
    T.LIST_CONVERSATIONS: {"limit": 5},
    T.TYPING: {"typing": True, "group": 3},
    T.GET_PRESENCE: {"users": ["bob"]},
    T.CONTACT_REQUEST: {"user": "bob"},
    T.CONTACT_ACCEPT: {"user": "bob"},
    T.CONTACT_DECLINE: {"user": "bob"},
    T.CONTACT_CANCEL: {"user": "bob"},
    T.CONTACT_REMOVE: {"user": "bob"},
    T.LIST_CONTACTS: {},
    T.BLOCK: {"user": "eve"},
    T.UNBLOCK: {"user": "eve"},
    T.SET_PROFILE: {"status": "away"},
    T.GET_PROFILE: {"user": "bob"},
    T.SET_PRIVACY: {"presence": "nobody"},
    T.GET_PRIVACY: {},
    T.CHANNEL_CREATE: {"name": "f"},
    T.GET_CHANNEL: {"channel": 1},
    T.CHANNEL_JOIN: {"channel": 1},
    T.CHANNEL_LEAVE: {"channel": 1},
    T.CHANNEL_UPDATE: {"channel": 1, "slow_mode": 5},
    T.CHANNEL_SET_ROLE: {"channel": 1, "user": "bob", "role": "admin"},
    T.CHANNEL_BAN: {"channel": 1, "user": "bob", "ban": True},
    T.CHANNEL_POST: {"channel": 1, "cmid": "c1", "text": "hi"},
    T.CHANNEL_COMMENT: {"channel": 1, "post": 1, "text": "hi"},
    T.CHANNEL_LIKE: {"channel": 1, "post": 1, "like": True},
    T.CHANNEL_PIN: {"channel": 1, "post": 1, "pin": True},
    T.CHANNEL_DELETE: {"channel": 1, "post": 1, "n": 0},
    T.CHANNEL_READ: {"channel": 1, "pos": 1},
    T.CHANNEL_FETCH: {"channel": 1},
    T.CHANNEL_SEARCH: {"channel": 1, "query": "x"},
    T.GET_WALLET: {},
    T.LIST_TRANSFERS: {"limit": 5},
    T.PAY: {"to": "bob", "amount": 1, "key": "k1"},
    T.RED_PACKET_SEND: {"group": 1, "amount": 3, "count": 2, "key": "k2"},
    T.RED_PACKET_CLAIM: {"packet": 1},
    T.GET_RED_PACKET: {"packet": 1},
    T.CHECK_IN: {"key": "k3"},
    T.LIST_TASKS: {},
    T.LIST_ITEMS: {},
    T.ITEM_GIFT: {"code": "ABCD", "to": "bob"},
    T.ITEM_REDEEM: {"code": "ABCD"},
    T.BOT_CREATE: {"name": "abot"},
    T.LIST_BOTS: {},
    T.BOT_TOKEN: {"name": "abot"},
    T.BOT_DELETE: {"name": "abot"},
    T.SET_COMMANDS: {"commands": [{"name": "help"}]},
    T.GET_COMMANDS: {"bot": "abot"},
    T.PRESS: {"conv": 1, "pos": 1, "data": "x"},
    T.ANSWER_CALLBACK: {"callback": 1},
    T.BOT_EDIT: {"conv": 1, "pos": 1, "text": "t"},
    T.GROUP_BOTS: {"group": 1, "see_all": True},
    T.PENDING_CALLBACKS: {"limit": 100},
    T.CHANNEL_TRANSFER: {"channel": 12, "user": "bob"},
    T.CHANNEL_MEMBERS: {"channel": 12, "limit": 2},
    T.CHANNEL_FIND: {"name": "forum"},
    T.UPLOAD_BEGIN: {
        "size": 11,
        "sha256": bytes(32),
        "type": "text/plain",
        "name": "hello.txt",
        "chunk_size": 16384,
    },
    T.UPLOAD_CHUNK: {"upload": 7, "offset": 0, "data": b"hello world"},
    T.UPLOAD_FINISH: {"upload": 7},
    T.UPLOAD_CANCEL: {"upload": 5},
    T.DOWNLOAD: {"blob": bytes(32), "offset": 6, "length": 524288},
    T.NEARBY_SHARE: {"lat": 31230400, "lon": 121473700, "ttl": 3600},
    T.NEARBY_STOP: {},
    T.NEARBY_QUERY: {"lat": 31230400, "lon": 121473700, "radius": 5000, "kind": "people"},
    T.NEARBY_HELLO: {"user": "bob", "note": "hi"},
    T.MERCHANT_SET: {"name": "Beanery", "category": "coffee", "lat": 31233000, "lon": 121476000},
    T.GET_MERCHANT: {"user": "beanery"},
    T.PRODUCT_ADD: {"title": "Flat white", "price": 12, "stock": 50, "key": "a-1"},
    T.PRODUCT_STOCK: {"product": 7, "stock": 50},
    T.LIST_PRODUCTS: {"merchant": "beanery"},
    T.GET_PRODUCT: {"product": 7},
    T.PRODUCT_CARD: {"product": 7, "to": "bob"},
    T.ORDER_PLACE: {"product": 7, "key": "o-0001", "qty": 2},
    T.ORDER_STEP: {"order": 9, "step": "accept", "key": "s-1"},
    T.LIST_ORDERS: {"merchant": True, "limit": 50},
    # server types a misbehaving client might send
    T.WELCOME: {"version": 1, "server": "s", "time": 0, "heartbeat": 1.0},
    T.UPDATES: {"updates": [], "head": 0},
    T.ERROR: {"code": 1001},
    T.OK: {},
    T.TYPING_NOTICE: {"user": "bob", "typing": True, "ttl": 6.0},
}
INVALID: dict[int, dict[str, Any]] = {
    T.HELLO: {"versions": []},
    T.CLOSE: {"code": "x"},
    T.REGISTER: {"username": 1, "password": "x"},
    T.LOGIN: {},
    T.AUTH: {"token": None},
    T.REVOKE_DEVICE: {},
    T.SEND: {"to": "b", "cmid": "", "text": "t"},
    T.SYNC: {"since": -1},
    T.ACK: {"seq": True},
    T.HISTORY: {"with": "b", "before": 1, "after": 2},
    T.GROUP_CREATE: {"name": "", "members": []},
    T.GROUP_ADD: {"group": 3, "users": []},
    T.GROUP_SET_ROLE: {"group": 3, "user": "bob", "role": "owner"},
    T.READ: {"conv": 3},
    T.LIST_CONVERSATIONS: {"limit": 101},
    T.TYPING: {"to": "bob"},
    T.GET_PRESENCE: {"users": ["u"] * 101},
    T.BLOCK: {"user": 7},
    T.SET_PRIVACY: {"messages": "nobody"},
}
BAD_BODIES = [
    b"",
    b"\xc1",
    msgpack.packb([1, 2]),
    msgpack.packb({"type": 1}),
    msgpack.packb(["x", 1, {}]),
    msgpack.packb([30, 5, []]),
    msgpack.packb([30, -1, {}]),
    b"\x91" * 3000 + b"\xc0",
    b"\x93\x01\x01\x81\xa1x\xd6\xff\x00\x00\x00\x01",
]


@st.composite
def client_frame(draw: st.DrawFn, model: Model) -> bytes:
    kind = draw(
        st.sampled_from(
            ["allowed"] * 8
            + ["message"] * 2
            + ["invalid", "unsupported", "unknown", "bad_body", "garbage"]
        )
    )
    if kind == "bad_body":
        return encode_frame(draw(st.sampled_from(BAD_BODIES)))
    if kind == "garbage":
        return encode_frame(draw(st.binary(max_size=24)))
    choices = ["fresh", "fresh", "zero"]
    pending = sorted(model.pending)
    if pending:
        choices.append("pending")
    how = draw(st.sampled_from(choices))
    if how == "zero":
        rid = 0
    elif how == "pending":
        rid = draw(st.sampled_from(pending))
    else:
        rid = draw(st.integers(1, 40) | st.integers(1, 2**32 - 1))
        while rid in model.pending:  # make it fresh, deterministically
            rid = rid % (2**32 - 1) + 1
    if kind == "unknown":
        t = draw(
            (
                st.sampled_from([8, 9, 21, 29, 37, 39, 51, 65, 79, 86]) | st.integers(87, 0xFFFF)
            ).filter(lambda t: t not in CLIENT_TYPES and t not in KNOWN_TYPES)
        )  # a type the protocol defines is known, even one this model does not list
        return pack_frame(t, rid, {})
    if kind == "unsupported":
        return pack_frame(
            T.HELLO,
            rid,
            {"versions": draw(st.lists(st.integers(2, 0xFFFF), min_size=1, max_size=3))},
        )
    if kind == "invalid":
        t = draw(st.sampled_from(sorted(INVALID)))
        return pack_frame(t, rid, INVALID[t])
    if kind == "allowed":  # steer towards frames the current state accepts
        t = draw(st.sampled_from(sorted(CLIENT_MAY_SEND[model.state] - {T.CLOSE})))
    else:
        t = draw(st.sampled_from(sorted(VALID)))
    return pack_frame(t, rid, VALID[t])


def natural_answer(msg: Message) -> Message:
    rid = msg.rid
    return {
        T.HELLO: lambda: Welcome(rid=rid, version=1, server="s", time=0, heartbeat=30.0),
        T.PING: lambda: Pong(rid=rid, time=0),
        T.REGISTER: lambda: Registered(rid=rid, user="alice"),
        T.LOGIN: lambda: Authenticated(
            rid=rid, user="alice", device="d1", head=0, acked=0, token="tok"
        ),
        T.AUTH: lambda: Authenticated(rid=rid, user="alice", device="d1", head=0, acked=0),
        T.LOGOUT: lambda: LoggedOut(rid=rid),
        T.LIST_DEVICES: lambda: DeviceList(rid=rid, devices=()),
        T.REVOKE_DEVICE: lambda: DeviceRevoked(rid=rid, device="d2"),
        T.SEND: lambda: Sent(rid=rid, id=1, conv=1, pos=1, ts=1, seq=1, cmid="c1"),
        T.SYNC: lambda: Updates(rid=rid, updates=(), head=0),
        T.HISTORY: lambda: HistoryPage(rid=rid, messages=(CHAT,)),
    }.get(msg.TYPE, lambda: Ok(rid=rid))()  # the social requests: OK is a possible answer


TRANSITIONS = {
    (State.AWAIT_HELLO, T.WELCOME): State.CONNECTED,
    (State.CONNECTED, T.AUTHENTICATED): State.AUTHENTICATED,
    (State.AUTHENTICATED, T.LOGGED_OUT): State.CONNECTED,
}

limits_strategy = st.builds(
    Limits,
    max_inflight_requests=st.integers(1, 4),
    max_protocol_errors=st.sampled_from([0, 1, 3, 10, 1000]),
    max_frame_size=st.sampled_from([64, 1024 * 1024]),
    max_preauth_frame_size=st.sampled_from([48, 8192]),
    max_preauth_frames=st.sampled_from([2, 5, 32]),
)


@settings(max_examples=150, deadline=None, database=None)
@given(limits=limits_strategy, data=st.data())
def test_random_frame_sequences_against_the_model(
    limits: Limits, data: st.DataObject, decode: Decode
) -> None:
    server = Connection(Role.SERVER, limits=limits)
    model = Model(limits)
    outstanding: list[Message] = []  # accepted requests the fake app has not answered yet

    for _ in range(data.draw(st.integers(1, 40), label="steps")):
        if model.closed:
            frame = data.draw(client_frame(model), label="frame after close")
            server.receive_data(frame)
            assert list(server.events_received()) == []
            assert server.data_to_send() == b""
            assert server.send(Pong(rid=0, time=0)) is False
            continue

        # the fake application answers one outstanding request, sometimes
        if outstanding and data.draw(st.booleans(), label="answer one"):
            req = outstanding.pop(data.draw(st.integers(0, len(outstanding) - 1)))
            answer = natural_answer(req)
            if answer.TYPE in SERVER_MAY_SEND[model.state]:
                assert server.send(answer)
                model.state = TRANSITIONS.get((model.state, answer.TYPE), model.state)
            else:
                try:
                    server.send(answer)
                except LocalProtocolError:
                    pass
                else:
                    raise AssertionError(f"{answer} sent in state {model.state}")
                assert server.send(Error(rid=req.rid, code=ErrorCode.INTERNAL_ERROR))
                answer = Error(rid=req.rid, code=ErrorCode.INTERNAL_ERROR)
            model.pending.discard(req.rid)
            assert decode(server.data_to_send()) == [answer]

        frame = data.draw(client_frame(model), label="frame")
        if len(frame) - 4 > model.frame_limit():
            verdict, detail = "too_large", None
        else:
            verdict, detail = model.predict(frame[4:])
        event(verdict if verdict != "bad" else f"bad {detail[0].name}")
        server.receive_data(frame)
        events = list(server.events_received())
        out = decode(server.data_to_send())

        if verdict == "ok":
            assert events == [detail]
            assert out == []
            if detail.TYPE not in ONE_WAY:
                model.pending.add(detail.rid)
                outstanding.append(detail)
        elif verdict == "close":
            assert events == [ConnectionTerminated(detail.code, detail.reason, by_peer=True)]
            assert out == []
            model.closed = True
        elif verdict == "preauth":  # SPEC 2.4: too many frames before AUTHENTICATED
            assert [(type(e), e.code) for e in events] == [(ConnectionTerminated, 1002)]
            assert [(type(m), m.code) for m in out] == [(Close, 1002)]
            model.closed = True
        elif verdict == "too_large":
            assert [type(e) for e in events] == [ConnectionTerminated]
            assert events[0].code == 1009
            assert [(type(m), m.code) for m in out] == [(Close, 1009)]
            model.closed = True
        else:
            code, rid = detail
            if code in FRAME_ERRORS:  # SPEC 2.4: only errors about the frame count
                model.errors += 1
            assert isinstance(events[0], ProtocolViolation), (frame, events)
            assert (events[0].code, events[0].rid) == (code, rid)
            assert isinstance(out[0], Error)
            assert (out[0].code, out[0].rid) == (code, rid)
            if code == ErrorCode.UNSUPPORTED_VERSION:
                assert out[0].data == {"versions": [1]}
                close_code: int | None = 4004
            elif model.errors > limits.max_protocol_errors:
                close_code = 1002
            else:
                close_code = None
            if close_code is None:
                assert len(events) == 1 and len(out) == 1
            else:
                assert [type(e) for e in events[1:]] == [ConnectionTerminated]
                assert events[1].code == close_code and not events[1].by_peer
                assert [(type(m), m.code) for m in out[1:]] == [(Close, close_code)]
                model.closed = True
            # a refusal never settles a request still in flight (SPEC 3.3): pending unchanged

        assert server.closed is model.closed
        if not model.closed:
            assert server.state is model.state
            assert server.pending_requests == len(model.pending)


@settings(max_examples=150, deadline=None, database=None)
@given(
    chunks=st.lists(st.binary(max_size=40), max_size=12),
    max_frame=st.sampled_from([16, 64, 1 << 20]),
    eof=st.booleans(),
)
def test_arbitrary_bytes_never_raise(
    chunks: list[bytes], max_frame: int, eof: bool, decode: Decode
) -> None:
    for role in Role:
        conn = Connection(role, limits=Limits(max_frame_size=max_frame))
        for chunk in chunks:
            conn.receive_data(chunk, now=1.0)
            for ev in conn.events_received():
                assert isinstance(ev, Message | ProtocolViolation | ConnectionTerminated)
        if eof:
            conn.receive_eof()
            events = list(conn.events_received())
            assert all(isinstance(e, ConnectionTerminated) for e in events)
        out = decode(conn.data_to_send())
        # a server answers with ERROR (and perhaps a final CLOSE); a client only ever closes
        allowed = (Error, Close) if role is Role.SERVER else (Close,)
        assert all(isinstance(m, allowed) for m in out)
        assert sum(isinstance(m, Close) for m in out) <= 1
        if conn.closed:
            assert conn.get_timer() is None


def test_the_model_covers_every_type_the_protocol_defines() -> None:
    """A type added to the protocol and not to this model would only ever be drawn as a
    frame the model cannot judge: every type is a client type with a valid payload or a
    type the server may send (CLOSE is both)."""
    server = set().union(*SERVER_MAY_SEND.values())
    for t in MessageType:
        assert t in CLIENT_TYPES or t in server, f"{t.name} is not in the model"
        if t in CLIENT_TYPES:
            assert t in VALID, f"{t.name} has no valid payload in the model"
