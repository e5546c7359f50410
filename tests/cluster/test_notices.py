"""The notices nodes exchange, and which users a commit concerns: bytes and plain data,
no NATS (server/cluster/notices.py)."""

from __future__ import annotations

import pytest
from liaotian.client.addresses import Addresses, parse_address
from liaotian.protocol import UpdateKind, encode_update
from liaotian.server.chat.ops import Push, SendRequest, SendResult
from liaotian.server.cluster import notices
from liaotian.server.cluster.catchup import seq_of


def test_round_trip() -> None:
    assert notices.decode(notices.hint(12)) == (notices.HINT, 12, None)
    assert notices.is_hint(notices.hint(1 << 40))
    assert notices.decode(notices.frame(30, b"\x00\x01")) == (notices.FRAME, 30, b"\x00\x01")
    assert not notices.is_hint(notices.frame(30, b""))
    assert notices.decode(notices.PROBE_PAYLOAD)[0] == notices.PROBE
    assert notices.decode(notices.news(42)) == (notices.NEWS, 42, None)
    assert not notices.is_hint(notices.news(42))
    for bad in (b"", b"\xc1", b"\x90", b"\x92\x07\x01", b"\x92\x00\xa1x", b"\x91\x03"):
        with pytest.raises(ValueError):
            notices.decode(bad)


def test_subjects() -> None:
    assert notices.user_subject("lt.a", 7) == "lt.a.u.7"
    assert notices.uid_of_subject("lt.a", "lt.a.u.7") == 7
    assert notices.uid_of_subject("lt.a", "lt.b.u.7") is None
    assert notices.uid_of_subject("lt.a", "lt.a.u.x") is None
    assert notices.channel_subject("lt.a", 9) == "lt.a.c.9"
    assert notices.conv_of_subject("lt.a", "lt.a.c.9") == 9
    assert notices.conv_of_subject("lt.a", "lt.a.u.9") is None
    assert notices.uid_of_subject("lt.a", "lt.a.c.9") is None


def _send(sender: int, result: SendResult | None, error: object = None) -> SendRequest:
    req = SendRequest.__new__(SendRequest)
    req.sender_id, req.result, req.error, req.pushes = sender, result, error, []
    return req


def test_heads_one_per_user_per_commit() -> None:
    direct = SendResult(1, 9, 1, 0, sender_seq=4, cmid="a", recipient_id=2, recipient_seq=7)
    later = SendResult(2, 9, 2, 0, sender_seq=5, cmid="b", recipient_id=2, recipient_seq=8)
    group = SendResult(3, 10, 1, 0, sender_seq=9, cmid="c", fanout=((2, 9), (3, 1)))
    dup = SendResult(1, 9, 1, 0, sender_seq=4, cmid="a", duplicate=True)
    failed = _send(1, None, error=3001)
    ops = [_send(1, direct), _send(1, later), _send(4, group), _send(1, dup), failed]

    class Other:
        error = None
        pushes = (Push(5, 3, int(UpdateKind.CONTACT), b""),)

    assert notices.heads_of([*ops, Other()]) == {1: 5, 2: 9, 4: 9, 3: 1, 5: 3}


def test_seq_of_an_encoded_update() -> None:
    for seq in (1, 127, 128, 65_536, 1 << 40):
        assert seq_of(encode_update(seq, int(UpdateKind.MESSAGE), b"\x80")) == seq


def test_client_addresses() -> None:
    assert parse_address("h:1", 7420) == ("h", 1)
    assert parse_address("h", 7420) == ("h", 7420)
    assert parse_address("[::1]:9", 7420) == ("::1", 9)
    assert parse_address("::1", 7420) == ("::1", 7420)
    assert parse_address(("h", 2), 7420) == ("h", 2)
    for bad in (":1", "h:x", "h:0", "h:70000"):
        with pytest.raises(ValueError):
            parse_address(bad, 7420)
    ring = Addresses(["a:1", ("b", 2)], 7420)
    assert ring.current == ("a", 1)
    assert [ring.advance(), ring.advance()] == [("b", 2), ("a", 1)]
    with pytest.raises(ValueError):
        Addresses([], 7420)
