"""The stored message and the update-log entry: maps nested in messages of both families.

UPDATES and HISTORY_PAGE (messages.py) and CONVERSATION_LIST (social.py) carry message maps,
so ChatMessage lives here, below both, and neither message module imports the other. Both
come with the encoders the server's fan-out uses to encode a stored message once for
every reader (encode_message_map, encode_update).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .base import MAX_INT64, UpdateKind
from .codec import AnyOf, Record, bad, packb, record, values_encoder, wire

MEDIA_KINDS = ("image", "voice", "file", "track")


@record(not_map=("media", "must be a map"))
class SendMedia(Record):
    """SEND's `media` (SPEC.md 27.5): what only the sender knows about an uploaded blob.

    Everything measurable (size, type, dimensions, duration) the server reads from the
    blob itself and puts in the stored message's `media` map instead.
    """

    kind: str = wire(choices=MEDIA_KINDS)
    blob: bytes = wire(min=32, max=32)  # the blob's SHA-256
    name: str | None = wire(default=None, max=255)  # image, file: the file name
    title: str | None = wire(default=None, max=256)  # track
    artist: str | None = wire(default=None, max=256)  # track
    clip: tuple[int, ...] | None = wire(default=None, min_items=2, max_items=2)  # [start, end] ms
    cover: bytes | None = wire(default=None, min=32, max=32)  # track: an image blob


@record(
    not_map=("message", "must be a map"),
    wire_order=(
        "id",
        "conv",
        "pos",
        "sender",
        "to",
        "group",
        "ts",
        "cmid",
        "text",
        "meta",
        "media",
        "event",
        "edited",
    ),
    rules=(AnyOf("to", "group"),),
)
class ChatMessage(Record):
    """A stored message as every reader sees it (in UPDATES and HISTORY_PAGE).

    SPEC.md 8.2: id, conv, pos, from, then `to` (direct) or `group`, ts, cmid, text, then
    meta, media, event and edited when present. A group message may also carry `to`: read, never
    written.
    """

    id: int  # server-assigned, unique
    conv: int  # conversation id
    pos: int = wire(lo=1)  # position in the conversation: 1, 2, 3, ...
    sender: str = wire("from")
    to: str = wire(absent="", unless="group")  # recipient username ("" in a group)
    ts: int  # server time of commit, ms since epoch
    cmid: str  # the sender's client message id
    text: str = wire(max=1 << 30)  # the frame size bounds it
    meta: dict[str, Any] = wire(default_factory=dict, omit="empty")
    group: int | None = None  # the group (group conversations; then conv == group)
    event: dict[str, Any] | None = None  # group timeline events (SPEC.md 17.4)
    media: dict[str, Any] | None = None  # a media message: the server's map (SPEC.md 27.5)
    edited: int | None = None  # a bot's edit replaced text and meta at this time (SPEC.md 26.3)

    def encode(self) -> bytes:
        """The msgpack map, encoded once and reused for every reader."""
        return packb(self.to_wire())


_message_map = values_encoder(ChatMessage)


def encode_message_map(
    id: int,
    conv: int,
    pos: int,
    sender: str,
    to: str,
    ts: int,
    cmid: str,
    text: str,
    meta: dict[str, Any] | None,
    group: int | None = None,
    event: dict[str, Any] | None = None,
    media: dict[str, Any] | None = None,
    edited: int | None = None,
) -> bytes:
    """The canonical encoding of a message map (the same bytes as ChatMessage.encode())."""
    return packb(
        _message_map(id, conv, pos, sender, to, ts, cmid, text, meta, group, event, media, edited)
    )


@dataclass(frozen=True, slots=True)
class Update:
    """One entry of a user's update log: [seq, kind, data] on the wire.

    The one nested value that is an array, not a map, and whose data's shape depends on its
    kind, so its codec is written out; a message's `tuple[Update, ...]` field uses it as it
    uses a compiled record's.
    """

    seq: int
    kind: int
    message: ChatMessage | None = None
    data: dict[str, Any] = field(default_factory=dict)  # raw data of kinds this side lacks

    def to_wire(self) -> list[Any]:
        if self.message is not None:
            return [self.seq, self.kind, self.message.to_wire()]
        return [self.seq, self.kind, self.data]

    @classmethod
    def from_wire(cls, v: Any, rid: int) -> Update:
        if not isinstance(v, list) or len(v) != 3:
            raise bad("updates", "must hold [seq, kind, data] arrays", rid)
        seq, kind, data = v
        if type(seq) is not int or not 0 < seq <= MAX_INT64:
            raise bad("updates", "seq must be a positive integer", rid)
        if type(kind) is not int or not isinstance(data, dict):
            raise bad("updates", "kind must be an integer and data a map", rid)
        if kind == UpdateKind.MESSAGE:
            return cls(seq=seq, kind=kind, message=ChatMessage.from_wire(data, rid))
        return cls(seq=seq, kind=kind, data=data)


def encode_update(seq: int, kind: int, data: bytes) -> bytes:
    """An update from an already-encoded data map: the per-reader cost of a fan-out."""
    return b"\x93" + packb(seq) + packb(kind) + data
