"""Framing: length prefix, FrameReader splitting, and unpack_body's shape and safety checks."""

from __future__ import annotations

import struct
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from liaotian.protocol import (
    DEFAULT_LIMITS,
    ErrorCode,
    FrameReader,
    FrameTooLarge,
    Limits,
    ProtocolError,
    encode_frame,
    pack_frame,
    unpack_body,
)
from liaotian.protocol.frames import HEADER_SIZE, pack_body

SETTINGS = settings(max_examples=150, deadline=None, database=None)
MAX_UINT32 = 2**32 - 1


def prefix(n: int) -> bytes:
    return struct.pack(">I", n)


# Values msgpack round-trips to an equal Python value with raw=False, use_list=True.
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.binary(max_size=12)
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)
payloads = st.dictionaries(st.text(max_size=8), values, max_size=5)
frame_parts = st.tuples(
    st.integers(min_value=1, max_value=0xFFFF),
    st.integers(min_value=0, max_value=MAX_UINT32),
    payloads,
)


# --------------------------------------------------------------------------- round trips


def test_single_frame_round_trip() -> None:
    payload = {"to": "bob", "cmid": "c-1", "text": "你好", "meta": {"k": [1, 2.5, None]}}
    frame = pack_frame(30, 7, payload)
    assert frame[:HEADER_SIZE] == prefix(len(frame) - HEADER_SIZE)
    reader = FrameReader()
    bodies = reader.feed(frame)
    assert len(bodies) == 1
    assert reader.buffered == 0
    assert unpack_body(bodies[0]) == (30, 7, payload)


def test_encode_frame_and_pack_frame_agree() -> None:
    body = pack_body(3, 9, {})
    assert encode_frame(body) == prefix(len(body)) + body
    assert pack_frame(3, 9, {}) == encode_frame(body)


def test_partial_frame_is_buffered_until_complete() -> None:
    frame = pack_frame(3, 1, {"x": "y" * 40})
    reader = FrameReader()
    assert reader.feed(frame[:2]) == []
    assert reader.buffered == 2
    assert reader.feed(frame[2:10]) == []
    assert reader.buffered == 10
    assert reader.feed(frame[10:]) == [frame[HEADER_SIZE:]]
    assert reader.buffered == 0
    assert reader.feed(b"") == []


def test_several_frames_in_one_chunk_come_out_in_order() -> None:
    frames = [pack_frame(t, r, {"n": r}) for t, r in [(1, 1), (3, 2), (30, 3), (34, 0)]]
    reader = FrameReader()
    bodies = reader.feed(b"".join(frames))
    assert [unpack_body(b) for b in bodies] == [
        (1, 1, {"n": 1}),
        (3, 2, {"n": 2}),
        (30, 3, {"n": 3}),
        (34, 0, {"n": 0}),
    ]


@SETTINGS
@given(frame_parts)
def test_random_frame_round_trips(parts: tuple[int, int, dict[str, Any]]) -> None:
    msg_type, rid, payload = parts
    frame = pack_frame(msg_type, rid, payload)
    reader = FrameReader()
    bodies = reader.feed(frame)
    assert len(bodies) == 1 and reader.buffered == 0
    assert unpack_body(bodies[0]) == (msg_type, rid, payload)


STREAM_FRAMES = [
    (1, 1, {"versions": [1], "client": "t/1"}),
    (3, 2, {}),
    (30, 3, {"to": "bob", "cmid": "x" * 20, "text": "é" * 30, "meta": {"a": [1, 2]}}),
    (34, 0, {"seq": 2**40}),
    (35, 4, {"with": "carol", "before": 17, "limit": 50}),
]


def test_stream_split_at_every_boundary_decodes_the_same() -> None:
    stream = b"".join(pack_frame(*f) for f in STREAM_FRAMES)
    for cut in range(len(stream) + 1):
        reader = FrameReader()
        bodies = reader.feed(stream[:cut]) + reader.feed(stream[cut:])
        assert [unpack_body(b) for b in bodies] == STREAM_FRAMES, cut
        assert reader.buffered == 0


def test_stream_fed_byte_by_byte_decodes_the_same() -> None:
    stream = b"".join(pack_frame(*f) for f in STREAM_FRAMES)
    reader = FrameReader()
    bodies: list[bytes] = []
    for i in range(len(stream)):
        bodies += reader.feed(stream[i : i + 1])
    assert [unpack_body(b) for b in bodies] == STREAM_FRAMES
    assert reader.buffered == 0


@settings(max_examples=80, deadline=None, database=None)
@given(st.lists(frame_parts, min_size=1, max_size=6), st.data())
def test_random_chunkings_decode_the_same(frames: list[Any], data: st.DataObject) -> None:
    stream = b"".join(pack_frame(*f) for f in frames)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    reader = FrameReader()
    bodies: list[bytes] = []
    start = 0
    for cut in [*cuts, len(stream)]:
        bodies += reader.feed(stream[start:cut])
        start = cut
    assert [unpack_body(b) for b in bodies] == frames
    assert reader.buffered == 0


# --------------------------------------------------------------------------- size limit


def test_oversized_prefix_is_refused_right_after_the_four_prefix_bytes() -> None:
    reader = FrameReader(max_frame_size=100)
    assert reader.error is None
    assert reader.feed(prefix(101)) == []  # no body byte fed at all
    exc = reader.error
    assert isinstance(exc, FrameTooLarge) and isinstance(exc, ProtocolError)
    assert exc.code == ErrorCode.FRAME_TOO_LARGE
    assert (exc.size, exc.limit) == (101, 100)
    assert reader.buffered == 0  # nothing of the oversized frame is kept


def test_oversized_prefix_byte_by_byte_is_refused_on_the_fourth_byte() -> None:
    reader = FrameReader(max_frame_size=100)
    head = prefix(0xFFFFFFFF)
    for i in range(3):
        assert reader.feed(head[i : i + 1]) == []
        assert reader.error is None
    assert reader.feed(head[3:4]) == []
    assert isinstance(reader.error, FrameTooLarge)


def test_stream_is_dead_after_an_oversized_prefix() -> None:
    reader = FrameReader(max_frame_size=100)
    reader.feed(prefix(101))
    error = reader.error
    assert reader.feed(pack_frame(3, 1, {})) == []  # cannot resync: nothing more comes out
    assert reader.error is error
    assert reader.buffered == 0


def test_default_limit_is_one_mib() -> None:
    assert DEFAULT_LIMITS.max_frame_size == 1024 * 1024
    reader = FrameReader()
    reader.feed(prefix(1024 * 1024 + 1))
    assert isinstance(reader.error, FrameTooLarge)
    reader = FrameReader()
    assert reader.feed(prefix(1024 * 1024)) == []  # exactly the limit is fine
    assert reader.error is None
    assert reader.buffered == 4


def test_frame_of_exactly_the_limit_is_accepted() -> None:
    body = pack_body(3, 1, {"p": "x" * 50})
    reader = FrameReader(max_frame_size=len(body))
    assert reader.feed(encode_frame(body)) == [body]
    assert reader.error is None
    smaller = FrameReader(max_frame_size=len(body) - 1)
    assert smaller.feed(encode_frame(body)) == []
    assert isinstance(smaller.error, FrameTooLarge)


def test_frames_before_an_oversized_prefix_are_returned() -> None:
    reader = FrameReader(max_frame_size=100)
    good = [pack_frame(3, 1, {}), pack_frame(3, 2, {"k": "v"})]
    bodies = reader.feed(b"".join(good) + prefix(5000) + b"body")
    assert bodies == [g[HEADER_SIZE:] for g in good]
    assert isinstance(reader.error, FrameTooLarge) and reader.error.size == 5000


@SETTINGS
@given(st.binary(max_size=64), st.integers(1, 64))
def test_random_bytes_never_raise(data: bytes, limit: int) -> None:
    reader = FrameReader(max_frame_size=limit)
    bodies = reader.feed(data)
    assert all(len(b) <= limit for b in bodies)
    consumed = sum(HEADER_SIZE + len(b) for b in bodies)
    if reader.error is None:
        assert consumed + reader.buffered == len(data)
    else:
        assert reader.error.size > limit
        assert reader.buffered == 0 and consumed + HEADER_SIZE <= len(data)


# --------------------------------------------------------------------------- unpack_body


def assert_malformed(body: bytes, limits: Limits = DEFAULT_LIMITS, rid: int = 0) -> None:
    with pytest.raises(ProtocolError) as info:
        unpack_body(body, limits)
    assert info.value.code == ErrorCode.MALFORMED_FRAME
    assert info.value.rid == rid


def test_zero_length_body() -> None:
    assert FrameReader().feed(prefix(0)) == [b""]
    assert_malformed(b"")


@SETTINGS
@given(st.binary(max_size=200))
def test_garbage_bodies_only_ever_raise_protocol_error(body: bytes) -> None:
    try:
        msg_type, rid, payload = unpack_body(body)
    except ProtocolError as exc:
        assert exc.code == ErrorCode.MALFORMED_FRAME
        assert type(exc) is ProtocolError
    else:
        assert type(msg_type) is int and 0 < msg_type <= 0xFFFF
        assert type(rid) is int and 0 <= rid <= MAX_UINT32
        assert isinstance(payload, dict)


@SETTINGS
@given(values)
def test_arbitrary_msgpack_values_only_ever_raise_protocol_error(value: Any) -> None:
    for body in (msgpack.packb(value), msgpack.packb([1, 1, value]), msgpack.packb([value, 1, {}])):
        try:
            unpack_body(body)
        except ProtocolError as exc:
            assert exc.code == ErrorCode.MALFORMED_FRAME


@pytest.mark.parametrize(
    "body",
    [
        b"\x91" * 5000 + b"\xc0",  # 5000 nested arrays
        b"\x81\xa1a" * 5000 + b"\xc0",  # 5000 nested maps
        b"\x93\x01\x01\x81\xa1x" + b"\x91" * 5000 + b"\xc0",  # deep inside the payload
    ],
    ids=["arrays", "maps", "in-payload"],
)
def test_deep_nesting_is_malformed(body: bytes) -> None:
    assert_malformed(body)


@pytest.mark.parametrize(
    "ext",
    [
        b"\xd4\x01\x00",  # fixext 1, type 1
        b"\xd5\x05\x00\x00",  # fixext 2
        b"\xc7\x03\x10abc",  # ext 8
        b"\xc7\x00\x02",  # ext 8 of length 0
        b"\xd6\xff\x00\x00\x00\x01",  # timestamp 32
        msgpack.packb(msgpack.Timestamp(1, 5)),  # timestamp 64
        msgpack.packb(msgpack.Timestamp(-1, 0)),  # timestamp 96
    ],
    ids=["fixext1", "fixext2", "ext8", "ext8-empty", "ts32", "ts64", "ts96"],
)
def test_ext_types_and_timestamps_are_malformed(ext: bytes) -> None:
    assert_malformed(ext)  # as the whole body
    assert_malformed(b"\x93\x01\x01\x81\xa1t" + ext)  # as a payload value
    assert_malformed(b"\x93\x01\x01\x81\xa1t\x92\x01" + ext)  # nested in an array
    assert_malformed(b"\x93" + ext + b"\x01\x80")  # as the type


@pytest.mark.parametrize(
    "body",
    [
        pack_body(1, 1, {b"k": 1}),  # bin key at the top of the payload
        pack_body(1, 1, {"a": {b"k": 1}}),  # nested map
        pack_body(1, 1, {"a": [1, [{"b": 2, b"k": 1}]]}),  # map inside nested arrays
        pack_body(1, 1, {"a": {"b": {"c": {b"": None}}}}),  # empty bin key, deep
        b"\x93\x01\x01\x81\xc6\x00\x00\x00\x01k\x01",  # bin 32 key
        b"\x93\x01\x01\x81\xc5\x00\x01k\x01",  # bin 16 key
    ],
    ids=["top", "nested", "in-arrays", "empty-deep", "bin32", "bin16"],
)
def test_bin_map_keys_are_malformed_at_every_depth(body: bytes) -> None:
    assert_malformed(body)


def test_bin_values_and_bin_lead_bytes_in_str_still_decode() -> None:
    """Only bin keys are refused: a bin value is decoded (a field check refuses it where a
    str is expected, 1003), and str/int bytes 0xc4..0xc6 that look like a bin do not count."""
    payload = {"text": "zażółć gęślą jaźń", "meta": {"b": b"\x00bin", "n": 0xC4C5C6}}
    assert unpack_body(pack_body(30, 0xC6, payload)) == (30, 0xC6, payload)


@SETTINGS
@given(payloads, st.binary(max_size=4), st.data())
def test_a_bin_key_anywhere_is_malformed(
    payload: dict[str, Any], key: bytes, data: st.DataObject
) -> None:
    """Put a bin key into a random map of a random payload: always malformed."""
    maps: list[dict[Any, Any]] = []
    todo: list[Any] = [payload]
    for o in todo:
        if isinstance(o, dict):
            maps.append(o)
            todo.extend(o.values())
        elif isinstance(o, list):
            todo.extend(o)
    data.draw(st.sampled_from(maps))[key] = 1
    assert_malformed(pack_body(30, 1, payload))


def test_decode_limits_are_enforced() -> None:
    small = Limits(max_frame_size=100, max_array_len=5, max_map_len=3)
    assert unpack_body(pack_body(1, 1, {"a": [1] * 5}), small) == (1, 1, {"a": [1] * 5})
    assert_malformed(pack_body(1, 1, {"a": [1] * 6}), small)
    assert unpack_body(pack_body(1, 1, {"a": 1, "b": 2, "c": 3}), small)[2] == {
        "a": 1,
        "b": 2,
        "c": 3,
    }
    assert_malformed(pack_body(1, 1, {"a": 1, "b": 2, "c": 3, "d": 4}), small)
    assert_malformed(pack_body(1, 1, {"s": "x" * 101}), small)
    assert_malformed(pack_body(1, 1, {"b": b"x" * 101}), small)


def test_defaults_accept_the_documented_maxima() -> None:
    assert unpack_body(pack_body(1, 1, {"a": [0] * 10_000}))[2]["a"] == [0] * 10_000
    assert_malformed(pack_body(1, 1, {"a": [0] * 10_001}))
    big_map = {str(i): i for i in range(1000)}
    assert unpack_body(pack_body(1, 1, big_map))[2] == big_map
    assert_malformed(pack_body(1, 1, {str(i): i for i in range(1001)}))


@pytest.mark.parametrize(
    ("obj", "rid"),
    [
        ([1, 2], 0),
        ([1, 2, {}, 4], 0),
        ([], 0),
        ({"type": 1, "rid": 1, "payload": {}}, 0),
        (None, 0),
        (7, 0),
        ("hello", 0),
        (["1", 5, {}], 5),
        ([1.0, 5, {}], 5),
        ([True, 5, {}], 5),
        ([None, 5, {}], 5),
        ([0, 5, {}], 5),
        ([-1, 5, {}], 5),
        ([0x10000, 5, {}], 5),
        ([1, -1, {}], 0),
        ([1, 2**32, {}], 0),
        ([1, True, {}], 0),
        ([1, 1.0, {}], 0),
        ([1, "1", {}], 0),
        ([1, 5, []], 5),
        ([1, 5, None], 5),
        ([1, 5, "map"], 5),
        ([1, 5, [["k", "v"]]], 5),
    ],
)
def test_wrong_shapes_are_malformed(obj: Any, rid: int) -> None:
    assert_malformed(msgpack.packb(obj), rid=rid)


def test_non_string_map_keys_are_malformed() -> None:
    assert_malformed(msgpack.packb([1, 1, {1: 2}]))
    assert_malformed(msgpack.packb([1, 1, {"a": {2.5: 1}}]))


def test_trailing_bytes_and_invalid_msgpack_are_malformed() -> None:
    assert_malformed(pack_body(1, 1, {}) + b"\x00")
    assert_malformed(b"\xc1")  # never-used byte
    assert_malformed(pack_body(1, 1, {"a": "b"})[:-1])  # truncated
    assert_malformed(b"\x93\x01\x01\x81\xa1s\xa2\xff\xfe")  # invalid UTF-8 string


def test_boundary_values_are_accepted() -> None:
    assert unpack_body(pack_body(1, 0, {})) == (1, 0, {})
    assert unpack_body(pack_body(0xFFFF, MAX_UINT32, {})) == (0xFFFF, MAX_UINT32, {})
    # a tuple-shaped body is the same msgpack array
    assert unpack_body(msgpack.packb((2, 3, {"k": b"\x00"}))) == (2, 3, {"k": b"\x00"})


def test_a_large_body_is_filled_in_place_across_reads() -> None:
    """A media-sized body gets its own buffer once its length is in: the bytes come out
    the same, whatever the reads, with the frames around it, and `buffered` counts it."""
    big = pack_frame(97, 5, {"data": bytes(range(256)) * 1024})  # ~256 KiB
    small = pack_frame(3, 1, {"x": 1})
    stream = small + big + small + big
    for step in (1000, 4096, 65536, 100_003, len(stream)):
        reader = FrameReader()
        out: list[bytes | bytearray] = []
        seen = 0
        for i in range(0, len(stream), step):
            out += reader.feed(stream[i : i + step])
            seen = min(i + step, len(stream))
            done = sum(len(b) + HEADER_SIZE for b in out)
            assert reader.buffered == seen - done
        assert [bytes(b) for b in out] == [f[HEADER_SIZE:] for f in (small, big, small, big)]
    reader = FrameReader()
    reader.feed(big[:70_000])
    reader.clear()
    assert reader.buffered == 0
    assert reader.feed(small) == [small[HEADER_SIZE:]]
