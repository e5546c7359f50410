"""The sans-I/O connection: bytes in, typed events out; sending only queues bytes.

Used by both ends. The I/O layer feeds `receive_data(data, now)` and `receive_eof()`,
pulls events with `next_event()` (one at a time, so a server can pause between a LOGIN and
the frames pipelined behind it), writes `data_to_send()`, and calls `handle_timer(now)`
at `get_timer()`. The core never reads the clock and never raises for the peer's mistakes:
a bad frame becomes a `ProtocolViolation` event (the server side also queues the ERROR
answer itself), a fatal one a `ConnectionTerminated` event after the CLOSE frame is queued.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from .base import CLIENT_TYPES, ONE_WAY_CLIENT_TYPES, SERVER_TYPES, Message, MessageType
from .codes import CloseCode, ErrorCode
from .errors import LocalProtocolError, ProtocolError
from .frames import FrameReader, peek_header, unpack_body
from .limits import DEFAULT_LIMITS, Limits
from .messages import Close, Error, Hello, Ping, Welcome
from .registry import MESSAGE_CLASSES, decode_message
from .state import CLIENT_MAY_SEND, SERVER_MAY_SEND, Role, State, next_state, refusal_code

SUPPORTED_VERSIONS: tuple[int, ...] = (1,)


@dataclass(frozen=True, slots=True)
class ProtocolViolation:
    """The peer sent a frame that broke the protocol; on the server it was answered."""

    code: ErrorCode
    message: str
    rid: int


@dataclass(frozen=True, slots=True)
class ConnectionTerminated:
    """The connection is over. `code` is None when the peer vanished without a CLOSE."""

    code: int | None
    reason: str
    by_peer: bool


Event = Message | ProtocolViolation | ConnectionTerminated


@dataclass(frozen=True, slots=True)
class _Fatal:
    """Queued behind the frames that arrived before it: fail the connection here."""

    code: CloseCode
    reason: str


_EOF = _Fatal(CloseCode.NORMAL, "end of stream")


class Connection:
    """One end of a liaotian connection."""

    def __init__(
        self,
        role: Role,
        *,
        limits: Limits = DEFAULT_LIMITS,
        versions: tuple[int, ...] = SUPPORTED_VERSIONS,
        now: float = 0.0,
    ) -> None:
        self.role = role
        self.limits = limits
        self.versions = versions
        self.state = State.AWAIT_HELLO
        self.version: int | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        # A server accepts only small frames until the connection is authenticated (SPEC 2.4)
        self._reader = FrameReader(
            self._frame_limit(State.AWAIT_HELLO) if role is Role.SERVER else limits.max_frame_size
        )
        self._preauth_frames = 0  # frames taken from a client before AUTHENTICATED
        self._incoming: deque[bytes | bytearray | ConnectionTerminated | _Fatal] = deque()
        self._input_done = False  # EOF or an unrecoverable framing error was seen
        self._out: list[bytes] = []
        self._parted = False  # _out holds a media chunk's parts: see buffers_to_send()
        self._pending: set[int] = set()  # request ids awaiting an answer
        self._next_rid = 0
        self._errors = 0
        self._now = now
        self._created = now
        self._last_rx = now
        self._last_tx = now
        self._heartbeat = limits.heartbeat_interval
        self._inbound: frozenset[int] = CLIENT_TYPES if role is Role.SERVER else SERVER_TYPES
        self._may_receive = CLIENT_MAY_SEND if role is Role.SERVER else SERVER_MAY_SEND
        self._may_send = SERVER_MAY_SEND if role is Role.SERVER else CLIENT_MAY_SEND

    # ------------------------------------------------------------------ input

    def receive_data(self, data: bytes, now: float | None = None) -> None:
        if now is not None:
            self._now = now
            if data:
                self._last_rx = now
        if self.state is State.CLOSED or self._input_done or not data:
            return
        reader = self._reader
        self._incoming.extend(reader.feed(data))
        if reader.error is not None:
            self._input_done = True
            self._incoming.append(_Fatal(CloseCode.FRAME_TOO_LARGE, reader.error.message))

    def receive_eof(self) -> None:
        """The peer finished sending. Frames already received are still delivered first."""
        if self.state is State.CLOSED or self._input_done:
            return
        self._input_done = True
        if self._reader.buffered:
            self._incoming.append(
                _Fatal(CloseCode.PROTOCOL_ERROR, "truncated frame before end of stream")
            )
        else:
            self._incoming.append(_EOF)

    def next_event(self) -> Event | None:
        """The next event, or None until more data arrives."""
        while self._incoming:
            item = self._incoming.popleft()
            if isinstance(item, _Fatal):  # (a type() test would not narrow for mypy)
                if self.state is State.CLOSED:
                    continue
                if item is _EOF:
                    self.state = State.CLOSED
                    self.close_code = None
                    return ConnectionTerminated(None, item.reason, by_peer=True)
                self._fail(item.code, item.reason)
                continue  # the ConnectionTerminated queued by close() comes next
            if not isinstance(item, bytes | bytearray):
                return item
            if self.state is State.CLOSED:
                continue  # frames after a close are ignored
            if self.role is Role.SERVER and self.state is not State.AUTHENTICATED:
                self._preauth_frames += 1
                if self._preauth_frames > self.limits.max_preauth_frames:
                    self.close(CloseCode.PROTOCOL_ERROR, "too many frames before authentication")
                    continue
            try:
                msg = self._decode(item)
            except ProtocolError as exc:
                return self._violation(exc)
            if msg.TYPE == MessageType.CLOSE:
                assert isinstance(msg, Close)
                self.state = State.CLOSED
                self.close_code, self.close_reason = msg.code, msg.reason
                self._free_input()
                return ConnectionTerminated(msg.code, msg.reason, by_peer=True)
            return msg
        return None

    def events_received(self) -> Iterator[Event]:
        while (event := self.next_event()) is not None:
            yield event

    def _decode(self, body: bytes | bytearray) -> Message:
        if self.role is Role.SERVER and self.state is not State.AUTHENTICATED:
            # type and state are checked from the header before the payload is decoded, so a
            # frame that is refused anyway costs no decoding (SPEC 4.5)
            head = peek_header(body)
            if head is not None:
                self._check_type(*head)
            msg_type, rid, payload = unpack_body(body, self.limits)
        else:
            # once authenticated nearly every frame is accepted: decode first, and read the
            # header only when the body is malformed, so a wrong type or state still takes
            # precedence over a malformed payload (SPEC 4.5) at no cost to good frames
            try:
                msg_type, rid, payload = unpack_body(body, self.limits)
            except ProtocolError:
                head = peek_header(body) if self.role is Role.SERVER else None
                if head is not None:
                    self._check_type(*head)
                raise
        self._check_type(msg_type, rid)
        msg = decode_message(msg_type, rid, payload, self.limits)
        if self.role is Role.SERVER:
            self._accept_request(msg)
        else:
            self._accept_answer(msg)
        return msg

    def _check_type(self, msg_type: int, rid: int) -> None:
        if msg_type not in self._inbound:
            what = "known" if msg_type in MESSAGE_CLASSES else "defined"
            raise ProtocolError(
                ErrorCode.UNKNOWN_TYPE,
                f"type {msg_type} is not a {what} {self._peer_name} message",
                rid,
            )
        if msg_type not in self._may_receive[self.state]:
            code = refusal_code(self.state, msg_type)
            raise ProtocolError(
                code, f"{MessageType(msg_type).name} not allowed now: {code.explanation}", rid
            )

    def _frame_limit(self, state: State) -> int:
        """The largest client frame body the server accepts in `state`."""
        if state is State.AUTHENTICATED:
            return self.limits.max_frame_size
        return min(self.limits.max_preauth_frame_size, self.limits.max_frame_size)

    @property
    def _peer_name(self) -> str:
        return "client" if self.role is Role.SERVER else "server"

    def _accept_request(self, msg: Message) -> None:
        rid = msg.rid
        if msg.TYPE in ONE_WAY_CLIENT_TYPES:
            return
        if rid == 0:
            raise ProtocolError(ErrorCode.INVALID_FIELD, "requests need a rid of 1 or more")
        if rid in self._pending:
            raise ProtocolError(ErrorCode.DUPLICATE_REQUEST_ID, f"rid {rid} is in use", rid)
        if len(self._pending) >= self.limits.max_inflight_requests:
            raise ProtocolError(
                ErrorCode.RATE_LIMITED,
                f"more than {self.limits.max_inflight_requests} requests in flight",
                rid,
            )
        if isinstance(msg, Hello):
            common = set(msg.versions) & set(self.versions)
            if not common:
                raise ProtocolError(ErrorCode.UNSUPPORTED_VERSION, "no common version", rid)
            self.version = max(common)
        self._pending.add(rid)

    def _accept_answer(self, msg: Message) -> None:
        if isinstance(msg, Welcome) and msg.version not in self.versions:
            raise ProtocolError(
                ErrorCode.UNSUPPORTED_VERSION,
                f"server chose version {msg.version}, not offered",
                msg.rid,
            )
        rid = msg.rid
        if rid:
            if rid not in self._pending and msg.TYPE != MessageType.ERROR:
                raise ProtocolError(ErrorCode.BAD_STATE, f"answer to unknown rid {rid}", rid)
            self._pending.discard(rid)
        self.state = next_state(self.state, msg.TYPE)
        if isinstance(msg, Welcome):
            self.version = msg.version
            if msg.heartbeat > 0:
                self._heartbeat = msg.heartbeat

    def _violation(self, exc: ProtocolError) -> ProtocolViolation:
        event = ProtocolViolation(exc.code, exc.message, exc.rid)
        if self.role is Role.CLIENT:
            self._fail(CloseCode.PROTOCOL_ERROR, exc.message)
            return event
        if exc.code < 2000:  # malformed input counts; refusals (auth, load) do not
            self._errors += 1
        data = (
            {"versions": list(self.versions)} if exc.code == ErrorCode.UNSUPPORTED_VERSION else {}
        )
        # If the rid belongs to a request still in progress (a duplicate), the answer must
        # not settle that request's rid.
        self._write(
            Error(rid=exc.rid, code=int(exc.code), message=exc.message, data=data),
            settle=exc.rid not in self._pending,
        )
        if exc.code == ErrorCode.UNSUPPORTED_VERSION:
            self.close(CloseCode.UNSUPPORTED_VERSION, "no common protocol version")
        elif self._errors > self.limits.max_protocol_errors:
            self.close(CloseCode.PROTOCOL_ERROR, "too many protocol errors")
        return event

    def _fail(self, code: CloseCode, reason: str) -> None:
        self.close(code, reason)

    # ------------------------------------------------------------------ output

    def next_rid(self) -> int:
        """A fresh request id (client side)."""
        self._next_rid = self._next_rid % 0xFFFFFFFF + 1
        return self._next_rid

    def send(self, msg: Message) -> bool:
        """Queue a message. Returns False (and queues nothing) once the connection is closed.

        Raises LocalProtocolError if this side may not send it in the current state.
        """
        if self.state is State.CLOSED:
            return False
        msg_type = int(msg.TYPE)
        if msg_type not in self._may_send[self.state]:
            raise LocalProtocolError(
                f"{self.role.value} may not send {msg.TYPE.name} in state {self.state.value}"
            )
        if msg_type == MessageType.CLOSE:
            assert isinstance(msg, Close)
            self.close(msg.code, msg.reason)
            return True
        self._write(msg)
        if self.role is Role.SERVER:
            self.state = next_state(self.state, msg_type)
            self._reader.limit = self._frame_limit(self.state)
        elif msg.rid and msg_type not in ONE_WAY_CLIENT_TYPES:
            self._pending.add(msg.rid)
        return True

    def send_frame(self, frame: bytes, msg_type: int, rid: int = 0) -> bool:
        """Queue an already-encoded frame (server fan-out). Same checks as send()."""
        if self.state is State.CLOSED:
            return False
        if msg_type not in self._may_send[self.state]:
            raise LocalProtocolError(
                f"{self.role.value} may not send type {msg_type} in state {self.state.value}"
            )
        if rid:
            self._pending.discard(rid)
        self._out.append(frame)
        self._last_tx = self._now
        return True

    def send_now(self, msg_type: int) -> bool:
        """The caller writes an already-encoded frame of `msg_type` to the socket itself,
        right now (one frame shared by many connections: the channels' news). True if it
        may: send_frame's checks pass and nothing is queued that it would overtake; the
        frame counts as sent (keepalive). False: use send_frame instead."""
        if self.state is State.CLOSED or self._out or msg_type not in self._may_send[self.state]:
            return False
        self._last_tx = self._now
        return True

    def _write(self, msg: Message, settle: bool = True) -> None:
        if self.role is Role.SERVER and msg.rid and settle:
            self._pending.discard(msg.rid)
        if msg.PARTS:
            self._out.extend(msg.encode_parts())
            self._parted = True
        else:
            self._out.append(msg.encode())
        self._last_tx = self._now

    def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Queue a CLOSE frame and end the connection. Idempotent."""
        if self.state is State.CLOSED:
            return
        self._out.append(Close(rid=0, code=int(code), reason=reason).encode())
        self.state = State.CLOSED
        self.close_code, self.close_reason = int(code), reason
        self._free_input()
        self._incoming.append(ConnectionTerminated(int(code), reason, by_peer=False))

    def _free_input(self) -> None:
        """Nothing more is read once closed: drop a partial frame and queued frames now."""
        self._input_done = True
        self._reader.clear()
        if any(isinstance(item, bytes | bytearray) for item in self._incoming):
            self._incoming = deque(
                item for item in self._incoming if not isinstance(item, bytes | bytearray)
            )

    def data_to_send(self) -> bytes:
        if not self._out:
            return b""
        out = b"".join(self._out) if len(self._out) > 1 else self._out[0]
        self._out.clear()
        self._parted = False
        return out

    def buffers_to_send(self) -> list[bytes]:
        """What `data_to_send()` would return, as buffers to write in order (writelines):
        one joined buffer, except while a media chunk is queued, whose bytes are left as
        they are rather than copied into the join (they are most of what goes out)."""
        out = self._out
        if not out:
            return []
        if not self._parted:
            data = b"".join(out) if len(out) > 1 else out[0]
            out.clear()
            return [data]
        self._out = []
        self._parted = False
        return out

    @property
    def closed(self) -> bool:
        return self.state is State.CLOSED

    @property
    def pending_requests(self) -> int:
        return len(self._pending)

    # ------------------------------------------------------------------ time

    def get_timer(self) -> float | None:
        """When handle_timer should next run, on the caller's clock; None if never."""
        if self.state is State.CLOSED:
            return None
        deadline = self._last_rx + self.limits.idle_timeout
        if self.role is Role.SERVER:
            if self.state is not State.AUTHENTICATED:
                deadline = min(deadline, self._created + self.limits.auth_timeout)
        elif self.state is not State.AWAIT_HELLO:
            deadline = min(deadline, self._last_tx + self._heartbeat)
        return deadline

    def handle_timer(self, now: float) -> None:
        self._now = now
        if self.state is State.CLOSED:
            return
        if (
            self.role is Role.SERVER
            and self.state is not State.AUTHENTICATED
            and now >= self._created + self.limits.auth_timeout
        ):
            self.close(CloseCode.AUTH_TIMEOUT, "not authenticated in time")
        elif now >= self._last_rx + self.limits.idle_timeout:
            self.close(CloseCode.IDLE_TIMEOUT, "nothing received in time")
        elif (
            self.role is Role.CLIENT
            and self.state is not State.AWAIT_HELLO
            and now >= self._last_tx + self._heartbeat
        ):
            self.send(Ping(rid=self.next_rid()))
