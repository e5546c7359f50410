"""After a commit: answer every operation of it and push what it wrote to live sessions.

The store hands over each commit's operations in order (`committed`, its on_committed);
each names the session that asked by its id (`session`), looked up here among the live
connections. The answers and pushes are gathered per connection and written in one pass,
in seq order with the SENT answers: a connection gets one UPDATES frame per run of pushes.

The hot path allocates no task per message: a message map is encoded once (by the rule,
and that same blob is what sync and history read back), an update header once per user.
Only connections that are live (their first SYNC is complete) get pushes, each update at
most once (`sent_upto`); a connection that is not live reads them with its next SYNC.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from liaotian.protocol import (
    Error,
    ErrorCode,
    MessageType,
    UpdateKind,
    encode_update,
    encode_updates_frame,
    pack_frame,
)
from liaotian.protocol.social import Ok

from .chat.ops import SendRequest, SendResult
from .net.peer import Peer
from .ops.counters import Counters

_UPDATES = int(MessageType.UPDATES)
_SENT = int(MessageType.SENT)
_ERROR = int(MessageType.ERROR)
_OK = int(MessageType.OK)
_WITH_EXTRAS = frozenset((ErrorCode.RATE_LIMITED, ErrorCode.LIMIT_REACHED, ErrorCode.SLOW_MODE))
Answer = Callable[[Any], tuple[bytes, int]]  # an operation -> (its answer frame, type)
Out = dict[Peer, list[Any]]


class InOrder(Protocol):
    """How pushes are made when other nodes write to the same logs (server/cluster/):
    only the next entry of each connection's stream; the rest is read from the log."""

    def push(self, out: Out, c: Peer, seq: int, upd: bytes) -> None: ...
    def sent(self, c: Peer, seq: int) -> None:
        """`c` was answered SENT for its own entry `seq` (it gets no push of it)."""


def ok_answer(op: Any) -> tuple[bytes, int]:
    """OK, with the group timeline position of the change if it has one."""
    return Ok(rid=op.rid, pos=op.pos or None).encode(), _OK


class FanOut:
    def __init__(
        self,
        sessions: dict[int, Peer],
        of_user: Callable[[int], Sequence[Peer]],
        cached_head: Callable[[int], int | None],
        counters: Counters | None = None,
    ) -> None:
        self._sessions = sessions  # session id -> live connection (the hub's index)
        # the operator's counts (ops/counters.py): frames written here, by type, and pushes
        self.counters = counters if counters is not None else Counters()
        self._of_user = of_user
        self._cached_head = cached_head
        self._answers: dict[type, Answer] = {}
        # None on a single node: every entry is committed here, pushed in seq order
        self.in_order: InOrder | None = None

    def answer_with(self, op_type: type, answer: Answer) -> None:
        """Answer operations of `op_type` with this frame instead of OK."""
        self._answers[op_type] = answer

    def committed(self, ops: list[Any]) -> None:
        """After a commit: answer every op, push to live connections, in seq order."""
        out: Out = {}
        of_user = self._of_user
        sessions = self._sessions
        in_order = self.in_order
        push = _push if in_order is None else in_order.push
        for req in ops:
            origin = sessions.get(req.session)
            if req.error is not None:
                if origin is not None:
                    code = req.error
                    extra: dict[str, Any] = {}
                    # from a rule's Refused (chat/ops.py); GROUP_FULL of a channel has data
                    if code in _WITH_EXTRAS or getattr(req, "error_data", None):
                        extra = {
                            "retry_after": getattr(req, "error_retry_after", None),
                            "data": getattr(req, "error_data", None) or {},
                        }
                    _part(out, origin).append(
                        (
                            Error(
                                rid=req.rid,
                                code=int(code),
                                message=req.error_message or code.explanation,
                                **extra,
                            ).encode(),
                            _ERROR,
                            req.rid,
                        )
                    )
                continue
            if type(req) is not SendRequest:
                if origin is not None:
                    frame, msg_type = self._answers.get(type(req), ok_answer)(req)
                    _part(out, origin).append((frame, msg_type, req.rid))
                for p in req.pushes:
                    targets = of_user(p.user)
                    if targets:
                        upd = encode_update(p.seq, p.kind, p.data)
                        for c in targets:
                            if c.live and p.seq > c.sent_upto:
                                push(out, c, p.seq, upd)
                continue
            res = req.result
            assert res is not None
            if origin is not None:
                _part(out, origin).append((_sent_frame(req.rid, res), _SENT, req.rid))
                if in_order is not None and not res.duplicate:
                    in_order.sent(origin, res.sender_seq)
            if res.duplicate:
                continue
            if res.fanout or not res.recipient_id:  # a group send, even to a group of one
                self._fan_out(out, res, req.sender_id, origin, push)
            targets = of_user(res.recipient_id) if res.recipient_id else ()
            if targets:
                upd = encode_update(res.recipient_seq, UpdateKind.MESSAGE, res.body)
                for c in targets:
                    if c.live and c is not origin and res.recipient_seq > c.sent_upto:
                        push(out, c, res.recipient_seq, upd)
            if res.recipient_id and res.recipient_id != req.sender_id:
                targets = of_user(req.sender_id)
                if len(targets) > 1 or (targets and origin is None):
                    upd = encode_update(res.sender_seq, UpdateKind.MESSAGE, res.body)
                    for c in targets:
                        if c.live and c is not origin and res.sender_seq > c.sent_upto:
                            push(out, c, res.sender_seq, upd)
            if req.pushes:  # a task's reward, planned with the send (chat/rules/tasks.py)
                for p in req.pushes:
                    targets = of_user(p.user)
                    if targets:
                        upd = encode_update(p.seq, p.kind, p.data)
                        for c in targets:
                            if c.live and p.seq > c.sent_upto:
                                push(out, c, p.seq, upd)
        cached_head = self._cached_head
        counted = self.counters.frames_out
        pushes = 0
        for c, parts in out.items():
            head = cached_head(c.user_id) or c.sent_upto
            conn = c.conn
            for p in parts:
                if type(p) is tuple:
                    conn.send_frame(*p)
                    counted[p[1]] += 1
                else:
                    conn.send_frame(encode_updates_frame(0, p, head), _UPDATES)
                    pushes += 1
            c.flush()
        self.counters.pushes += pushes

    def _fan_out(
        self,
        out: Out,
        res: SendResult,
        sender: int,
        origin: Peer | None,
        push: Callable[[Out, Peer, int, bytes], None],
    ) -> None:
        """A group message: one encoded body, a per-member update header, one frame part per
        live connection; the sender's other connections get the sender's entry."""
        of_user = self._of_user
        body = res.body
        for uid, seq in res.fanout:
            targets = of_user(uid)
            if targets:
                upd = encode_update(seq, UpdateKind.MESSAGE, body)
                for c in targets:
                    if c.live and seq > c.sent_upto:
                        push(out, c, seq, upd)
        targets = of_user(sender)
        if len(targets) > 1 or (targets and origin is None):
            upd = encode_update(res.sender_seq, UpdateKind.MESSAGE, body)
            for c in targets:
                if c.live and c is not origin and res.sender_seq > c.sent_upto:
                    push(out, c, res.sender_seq, upd)


def _sent_frame(rid: int, res: SendResult) -> bytes:
    """SENT without building the dataclass: the same bytes as Sent(...).encode()."""
    frame: bytes = pack_frame(
        _SENT,
        rid,
        {
            "id": res.id,
            "conv": res.conv,
            "pos": res.pos,
            "ts": res.ts,
            "seq": res.sender_seq,
            "cmid": res.cmid,
            "duplicate": res.duplicate,
        },
    )
    return frame


def _part(out: Out, c: Peer) -> list[Any]:
    parts = out.get(c)
    if parts is None:
        parts = out[c] = []
    return parts


def _push(out: Out, c: Peer, seq: int, upd: bytes) -> None:
    parts = _part(out, c)
    if parts and type(parts[-1]) is list:
        parts[-1].append(upd)
    else:
        parts.append([upd])
    c.sent_upto = seq
