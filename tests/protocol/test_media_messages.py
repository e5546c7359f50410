"""Media messages (SPEC.md 27): bin fields, SEND's media map, the message map's media key."""

from __future__ import annotations

import hashlib
from typing import Any

import msgpack
import pytest
from liaotian.protocol import (
    ChatMessage,
    ErrorCode,
    MessageType,
    ProtocolError,
    Send,
    SendMedia,
    decode_message,
    unpack_body,
)
from liaotian.protocol.media import (
    MEDIA_CLASSES,
    MEDIA_CLIENT_TYPES,
    MEDIA_SERVER_TYPES,
    BlobData,
    UploadBegin,
    UploadChunk,
    UploadStatus,
)
from liaotian.protocol.messages import encode_message_map

T = MessageType
SHA = hashlib.sha256(b"hello world").digest()


def _payload(msg: Any) -> dict[str, Any]:
    return unpack_body(msg.encode()[4:])[2]


def _refused(msg_type: int, payload: dict[str, Any]) -> str:
    with pytest.raises(ProtocolError) as info:
        decode_message(msg_type, 9, payload)
    assert info.value.code == ErrorCode.INVALID_FIELD and info.value.rid == 9
    return info.value.message


def test_types_and_directions() -> None:
    assert [int(c.TYPE) for c in MEDIA_CLASSES] == list(range(90, 98))
    assert {90, 92, 93, 95, 96} == MEDIA_CLIENT_TYPES
    assert {91, 94, 97} == MEDIA_SERVER_TYPES


def test_hashes_and_chunks_travel_as_bin() -> None:
    begin = UploadBegin(rid=1, size=11, sha256=SHA, media_type="text/plain", chunk_size=16384)
    raw = begin.encode()
    assert b"\xc4\x20" + SHA in raw  # bin 8 with 32 bytes
    assert _payload(begin) == {
        "size": 11,
        "sha256": SHA,
        "type": "text/plain",
        "name": "",
        "chunk_size": 16384,
    }
    chunk = UploadChunk(rid=2, upload=1, offset=0, data=b"hello world")
    assert b"\xc4\x0bhello world" in chunk.encode()


@pytest.mark.parametrize("bad", [SHA.hex(), SHA[:31], SHA + b"x", 5, None, [1] * 32])
def test_a_hash_must_be_32_bytes_of_bin(bad: Any) -> None:
    payload = {"size": 1, "sha256": bad, "type": "a/b", "chunk_size": 16384}
    assert "'sha256'" in _refused(T.UPLOAD_BEGIN, payload)
    assert "'blob'" in _refused(T.DOWNLOAD, {"blob": bad, "offset": 0, "length": 1})


def test_chunk_data_is_bin_of_any_length() -> None:
    assert "'data'" in _refused(T.UPLOAD_CHUNK, {"upload": 1, "offset": 0, "data": "text"})
    big = b"\xff" * 600_000
    msg = decode_message(T.UPLOAD_CHUNK, 3, {"upload": 1, "offset": 0, "data": big})
    assert isinstance(msg, UploadChunk) and msg.data == big
    empty = decode_message(T.BLOB_DATA, 3, {"blob": SHA, "offset": 11, "size": 11, "data": b""})
    assert isinstance(empty, BlobData) and empty.data == b""


def test_held_ranges_are_a_flat_array() -> None:
    status = UploadStatus(
        rid=1, upload=7, size=100, chunk_size=16384, held=(0, 32, 64, 96), expires=5
    )
    assert _payload(status)["held"] == [0, 32, 64, 96]
    assert decode_message(T.UPLOAD_STATUS, 1, _payload(status)) == status


def test_send_media_round_trips_and_is_checked() -> None:
    media = SendMedia(kind="track", blob=SHA, title="Moon River", clip=(30_000, 60_000), cover=SHA)
    send = Send(rid=4, to="bob", cmid="c1", text="", media=media)
    p = _payload(send)
    assert list(p) == ["to", "cmid", "text", "media"]
    assert p["media"] == {
        "kind": "track",
        "blob": SHA,
        "title": "Moon River",
        "clip": [30_000, 60_000],
        "cover": SHA,
    }
    assert decode_message(T.SEND, 4, p) == send
    for media_map, key in (
        ({"kind": "video", "blob": SHA}, "kind"),
        ({"kind": "file"}, "blob"),
        ({"kind": "file", "blob": SHA, "clip": [1]}, "clip"),
        ({"kind": "file", "blob": SHA, "name": "x" * 256}, "name"),
        ({"kind": "file", "blob": SHA, "cover": "c" * 32}, "cover"),
    ):
        message = _refused(T.SEND, {"to": "bob", "cmid": "c", "text": "", "media": media_map})
        assert f"'{key}'" in message, message


def test_a_text_send_is_unchanged() -> None:
    """Without media, SEND encodes as it did before media existed."""
    send = Send(rid=4, to="bob", cmid="c-0001", text="hello bob", meta={"lang": "en"})
    assert list(_payload(send)) == ["to", "cmid", "text", "meta"]


def test_message_map_media_sits_between_meta_and_event() -> None:
    media = {"kind": "file", "blob": SHA, "size": 11, "type": "text/plain"}
    body = encode_message_map(1, 7, 3, "alice", "bob", 5, "c", "notes", {"a": 1}, media=media)
    assert list(msgpack.unpackb(body)) == [
        "id",
        "conv",
        "pos",
        "from",
        "to",
        "ts",
        "cmid",
        "text",
        "meta",
        "media",
    ]
    msg = ChatMessage.from_wire(msgpack.unpackb(body), 0)
    assert msg.media == media and msg.encode() == body
    plain = encode_message_map(1, 7, 3, "alice", "bob", 5, "c", "notes", None)
    assert "media" not in msgpack.unpackb(plain)
    assert ChatMessage.from_wire(msgpack.unpackb(plain), 0).media is None


# ---------------------------------------------------------------- chunks written uncopied


@pytest.mark.parametrize("n", [0, 1, 255, 256, 65535, 65536, 512 * 1024])
@pytest.mark.parametrize("rid", [0, 1, 127, 128, 65536, 0xFFFFFFFF])
def test_chunk_frames_as_parts_are_the_same_bytes(n: int, rid: int) -> None:
    data = bytes(range(256)) * (n // 256) + bytes(n % 256)
    for msg in (
        BlobData(rid=rid, blob=SHA, offset=n * 7, size=1 << 40, data=data),
        UploadChunk(rid=rid, upload=1 << 50, offset=n, data=data),
    ):
        head, body = msg.encode_parts()
        assert head + body == msg.encode()
        assert body is data  # the chunk itself, not a copy of it


def test_a_connection_hands_a_chunk_to_the_transport_uncopied() -> None:
    from liaotian.protocol import Connection, Pong, Role
    from liaotian.protocol.state import State

    conn = Connection(Role.SERVER)
    conn.state = State.AUTHENTICATED
    data = b"x" * 100_000
    chunk = BlobData(rid=0, blob=SHA, offset=0, size=len(data), data=data)
    conn.send(Pong(rid=0, time=1))
    conn.send(chunk)
    conn.send(Pong(rid=0, time=1))
    bufs = conn.buffers_to_send()
    assert any(b is data for b in bufs)
    assert (
        b"".join(bufs)
        == Pong(rid=0, time=1).encode() + chunk.encode() + Pong(rid=0, time=1).encode()
    )
    assert conn.buffers_to_send() == []
    conn.send(Pong(rid=0, time=1))
    conn.send(Pong(rid=0, time=1))
    assert conn.buffers_to_send() == [Pong(rid=0, time=1).encode() * 2]  # small frames: one join
