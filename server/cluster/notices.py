"""What nodes tell each other, as bytes: pure functions, no I/O (tested without NATS).

A notice goes to one user's subject, `<prefix>.u.<uid>`. Every node subscribes to the
subjects of the users connected to it, so NATS's own interest graph is the directory of
who is where: a notice for a user nobody holds is dropped by NATS at no cost to any node,
a node that dies loses its subscriptions with its connection, and no table of locations
can go stale.

Payloads are small msgpack arrays, encoded once per notice:

* `[0, head]`: the user's update log reaches at least `head`. A hint only: the receiving
  node reads what each session of the user has not been sent from the store (the log is
  the truth), so a lost, late or repeated notice changes nothing but latency.
* `[1, type, frame]`: an ephemeral frame (presence, typing) for every connection of the
  user, as the originating node encoded it; never stored, so at most once.
* `[2]`: a probe, sent as a NATS request: "is this user connected to you?". A node that
  holds the user answers; no answer (NATS's "no responders") means nowhere else.

Channels' news goes to one subject per channel, `<prefix>.c.<conv>`, which a node hears
while at least one member of the channel is connected to it:

* `[3, pos]`: the channel's newest post is at `pos` (CHANNEL_NEWS, SPEC.md 24): the
  receiving node tells its online members as if the post were its own, coalesced the
  same way. At most once, like the frame it stands for.
"""

from __future__ import annotations

from typing import Any

import msgpack

from ..chat.ops import SendRequest

HINT = 0
FRAME = 1
PROBE = 2
NEWS = 3

_packb = msgpack.packb
PROBE_PAYLOAD: bytes = _packb([PROBE])


def user_subject(prefix: str, uid: int) -> str:
    return f"{prefix}.u.{uid}"


def uid_of_subject(prefix: str, subject: str) -> int | None:
    """The user id of a user subject of this prefix, else None."""
    head = prefix + ".u."
    if not subject.startswith(head):
        return None
    tail = subject[len(head) :]
    return int(tail) if tail.isdigit() else None


def channel_subject(prefix: str, conv: int) -> str:
    return f"{prefix}.c.{conv}"


def conv_of_subject(prefix: str, subject: str) -> int | None:
    """The channel of a channel subject of this prefix, else None."""
    head = prefix + ".c."
    if not subject.startswith(head):
        return None
    tail = subject[len(head) :]
    return int(tail) if tail.isdigit() else None


def news(pos: int) -> bytes:
    out: bytes = _packb([NEWS, pos])
    return out


def hint(head: int) -> bytes:
    out: bytes = _packb([HINT, head])
    return out


def is_hint(payload: bytes) -> bool:
    """Without decoding: whether a payload is a HINT ([0, head], a fixarray of two)."""
    return payload[:2] == b"\x92\x00"


def frame(msg_type: int, data: bytes) -> bytes:
    out: bytes = _packb([FRAME, msg_type, data])
    return out


def decode(payload: bytes) -> tuple[int, Any, Any]:
    """(kind, a, b): (HINT, head, None), (FRAME, type, frame bytes), (PROBE, None, None)
    or (NEWS, pos, None).
    ValueError for anything else (a node of another version: ignored by the caller)."""
    try:
        v = msgpack.unpackb(payload)
    except Exception as exc:
        raise ValueError("not a notice") from exc
    if type(v) is not list or not v or type(v[0]) is not int:
        raise ValueError("not a notice")
    kind = v[0]
    if kind == HINT and len(v) == 2 and type(v[1]) is int:
        return HINT, v[1], None
    if kind == FRAME and len(v) == 3 and type(v[1]) is int and type(v[2]) is bytes:
        return FRAME, v[1], v[2]
    if kind == PROBE:
        return PROBE, None, None
    if kind == NEWS and len(v) == 2 and type(v[1]) is int:
        return NEWS, v[1], None
    raise ValueError(f"unknown notice kind {kind}")


def heads_of(ops: list[Any]) -> dict[int, int]:
    """Every user whose update log one commit extended -> the highest seq it wrote there.

    One notice per user per commit, however many of the commit's operations touched the
    user: notices are batched by commit, not sent per entry.
    """
    heads: dict[int, int] = {}
    get = heads.get
    for req in ops:
        if req.error is not None:
            continue
        if type(req) is SendRequest:
            res = req.result
            if res is None or res.duplicate:
                continue
            if res.sender_seq and res.sender_seq > get(req.sender_id, 0):
                heads[req.sender_id] = res.sender_seq
            if res.recipient_id and res.recipient_seq > get(res.recipient_id, 0):
                heads[res.recipient_id] = res.recipient_seq
            for uid, seq in res.fanout:
                if seq > get(uid, 0):
                    heads[uid] = seq
        for p in getattr(req, "pushes", ()) or ():
            if p.seq > get(p.user, 0):
                heads[p.user] = p.seq
    return heads
