"""Codes, errors and limits: the numbers on the wire never change meaning."""

from __future__ import annotations

import pytest
from liaotian.protocol import (
    DEFAULT_LIMITS,
    CloseCode,
    ConnectionClosed,
    ErrorCode,
    FrameTooLarge,
    LiaotianError,
    Limits,
    LocalProtocolError,
    ProtocolError,
    RequestError,
)

ERROR_CODES = {
    "MALFORMED_FRAME": 1001,
    "UNKNOWN_TYPE": 1002,
    "INVALID_FIELD": 1003,
    "BAD_STATE": 1004,
    "UNSUPPORTED_VERSION": 1005,
    "FRAME_TOO_LARGE": 1006,
    "DUPLICATE_REQUEST_ID": 1007,
    "NOT_AUTHENTICATED": 2001,
    "BAD_CREDENTIALS": 2002,
    "USERNAME_TAKEN": 2003,
    "INVALID_USERNAME": 2004,
    "WEAK_PASSWORD": 2005,
    "INVALID_TOKEN": 2006,
    "THROTTLED": 2007,
    "ALREADY_AUTHENTICATED": 2008,
    "INVALID_DEVICE": 2009,
    "UNKNOWN_DEVICE": 2010,
    "UNKNOWN_USER": 3001,
    "MESSAGE_TOO_LARGE": 3002,
    "INVALID_CURSOR": 3003,
    "NOT_ALLOWED": 3004,
    "NOT_MEMBER": 3005,
    "GROUP_FULL": 3006,
    "FORBIDDEN": 3007,
    "CONFLICT": 3008,
    "LIMIT_REACHED": 3009,
    # media (SPEC.md 27)
    "UNKNOWN_UPLOAD": 3101,
    "BLOB_TOO_LARGE": 3102,
    "BAD_CHUNK_SIZE": 3103,
    "CHUNK_OUT_OF_RANGE": 3104,
    "CHUNK_MISALIGNED": 3105,
    "CHUNK_SIZE_MISMATCH": 3106,
    "TOO_MANY_BYTES": 3107,
    "UPLOAD_INCOMPLETE": 3108,
    "HASH_MISMATCH": 3109,
    "UPLOAD_NOT_RECEIVING": 3110,
    "UNKNOWN_BLOB": 3111,
    "BAD_RANGE": 3112,
    "NOT_AN_IMAGE": 3113,
    "IMAGE_TOO_LARGE": 3114,
    "NOT_AUDIO": 3115,
    "AUDIO_TOO_LONG": 3116,
    "BAD_CLIP": 3117,
    "BANNED": 3050,
    "INVALID_INVITE": 3051,
    "NOT_FOUND": 3052,
    "SLOW_MODE": 3053,
    "INSUFFICIENT_FUNDS": 3201,
    "IDEMPOTENCY_MISMATCH": 3202,
    "PACKET_EMPTY": 3203,
    "PACKET_EXPIRED": 3204,
    "ITEM_UNAVAILABLE": 3205,
    "TASK_DONE": 3206,
    "IMPLAUSIBLE_MOVE": 3301,
    "NOT_MERCHANT": 3302,
    "NOT_NEARBY": 3303,
    "UNKNOWN_PRODUCT": 3310,
    "OUT_OF_STOCK": 3311,
    "UNKNOWN_ORDER": 3312,
    "UNKNOWN_BOT": 3501,
    "BOTS_ONLY": 3502,
    "UNKNOWN_CALLBACK": 3503,
    "NO_SUCH_BUTTON": 3504,
    "RATE_LIMITED": 4001,
    "INTERNAL_ERROR": 5001,
    "UNAVAILABLE": 5002,
    "INSUFFICIENT_STORAGE": 5003,
}
CLOSE_CODES = {
    "NORMAL": 1000,
    "GOING_AWAY": 1001,
    "PROTOCOL_ERROR": 1002,
    "FRAME_TOO_LARGE": 1009,
    "INTERNAL_ERROR": 1011,
    "AUTH_TIMEOUT": 4000,
    "IDLE_TIMEOUT": 4001,
    "LOGGED_OUT": 4002,
    "SLOW_CONSUMER": 4003,
    "UNSUPPORTED_VERSION": 4004,
    "TOO_MANY_CONNECTIONS": 4005,
}


def test_error_code_numbers() -> None:
    assert {c.name: int(c) for c in ErrorCode} == ERROR_CODES


def test_update_kind_numbers() -> None:
    from liaotian.protocol import UpdateKind

    assert {k.name: int(k) for k in UpdateKind} == {
        "MESSAGE": 1,
        "READ": 2,
        "CONTACT": 3,
        "WALLET": 4,
        "CHANNEL": 10,
        "CALLBACK": 23,
        "CALLBACK_ANSWER": 24,
        "MESSAGE_EDITED": 25,
    }


def test_close_code_numbers() -> None:
    assert {c.name: int(c) for c in CloseCode} == CLOSE_CODES


def test_every_code_has_an_explanation() -> None:
    for code in [*ErrorCode, *CloseCode]:
        assert isinstance(code.explanation, str) and code.explanation


def test_reconnect_codes() -> None:
    assert {int(c) for c in CloseCode if c.reconnect} == {1001, 1011, 4001, 4003, 4005}
    assert not CloseCode.LOGGED_OUT.reconnect


def test_exception_tree() -> None:
    assert issubclass(ProtocolError, LiaotianError)
    assert issubclass(FrameTooLarge, ProtocolError)
    assert issubclass(LocalProtocolError, LiaotianError)
    assert not issubclass(LocalProtocolError, ProtocolError)
    assert issubclass(RequestError, LiaotianError)
    assert issubclass(ConnectionClosed, LiaotianError)


def test_protocol_error_fields() -> None:
    exc = ProtocolError(ErrorCode.INVALID_FIELD, rid=9)
    assert (exc.code, exc.rid, exc.message) == (1003, 9, ErrorCode.INVALID_FIELD.explanation)
    assert ProtocolError(ErrorCode.BAD_STATE, "nope").message == "nope"
    big = FrameTooLarge(10, 5)
    assert (big.code, big.size, big.limit, big.rid) == (ErrorCode.FRAME_TOO_LARGE, 10, 5, 0)


def test_request_error() -> None:
    exc = RequestError(ErrorCode.THROTTLED, retry_after=3.0)
    assert exc.code == 2007 and exc.retry_after == 3.0 and exc.data == {}
    assert str(exc).startswith("2007 THROTTLED")
    assert RequestError().code == ErrorCode.INTERNAL_ERROR

    class UnknownUser(RequestError):
        code = ErrorCode.UNKNOWN_USER

    assert UnknownUser().code == ErrorCode.UNKNOWN_USER
    assert UnknownUser(message="bob?").message == "bob?"


def test_connection_closed() -> None:
    assert ConnectionClosed().close_code is None
    assert "dropped" in str(ConnectionClosed())
    exc = ConnectionClosed(CloseCode.LOGGED_OUT, "revoked")
    assert "4002 LOGGED_OUT" in str(exc) and "revoked" in str(exc)


def test_default_limits_match_the_brief() -> None:
    d = DEFAULT_LIMITS
    assert (d.max_frame_size, d.max_text_len, d.max_meta_size, d.max_cmid_len) == (
        1 << 20,
        64 * 1024,
        16 * 1024,
        64,
    )
    assert (d.max_array_len, d.max_map_len) == (10_000, 1_000)
    assert (d.max_sync_page, d.default_sync_page) == (1000, 500)
    assert (d.max_history_page, d.default_history_page) == (200, 50)
    assert (d.heartbeat_interval, d.idle_timeout, d.auth_timeout) == (30.0, 90.0, 10.0)
    assert (d.max_protocol_errors, d.max_inflight_requests) == (10, 256)


def test_advertised_limits_are_the_welcome_keys() -> None:
    assert Limits().advertised() == {
        "max_frame_size": 1 << 20,
        "max_text_len": 65536,
        "max_meta_size": 16384,
        "max_cmid_len": 64,
        "max_sync_page": 1000,
        "max_history_page": 200,
        "idle_timeout": 90.0,
        "auth_timeout": 10.0,
        "max_inflight_requests": 256,
    }
    assert Limits(max_frame_size=5).advertised()["max_frame_size"] == 5


def test_limits_are_frozen() -> None:
    with pytest.raises(AttributeError):
        DEFAULT_LIMITS.max_frame_size = 1  # type: ignore[misc]
