"""Stable numeric codes carried on the wire.

`ErrorCode` travels in an ERROR frame and answers one request (or, with request id 0,
a frame whose request id could not be read). `CloseCode` travels in a CLOSE frame and
ends the connection. Both tables are reproduced in SPEC.md; a number, once published,
never changes meaning.
"""

from __future__ import annotations

from enum import IntEnum


class ErrorCode(IntEnum):
    """Why one request failed. The connection stays open unless a CLOSE follows."""

    # 1xxx: the frame itself
    MALFORMED_FRAME = 1001  # body is not msgpack, or not [type, rid, map]
    UNKNOWN_TYPE = 1002  # type number not defined in this protocol version
    INVALID_FIELD = 1003  # a field is missing, of the wrong type, or out of range
    BAD_STATE = 1004  # message not allowed in the connection's current state
    UNSUPPORTED_VERSION = 1005  # hello offered no version this server speaks
    FRAME_TOO_LARGE = 1006  # length prefix above the negotiated maximum
    DUPLICATE_REQUEST_ID = 1007  # rid already used by a request still in progress
    # 2xxx: accounts and sessions
    NOT_AUTHENTICATED = 2001  # request needs a logged-in session
    BAD_CREDENTIALS = 2002  # unknown username or wrong password (deliberately not told apart)
    USERNAME_TAKEN = 2003
    INVALID_USERNAME = 2004  # breaks the username rules in SPEC.md
    WEAK_PASSWORD = 2005  # shorter than the minimum, or longer than the maximum
    INVALID_TOKEN = 2006  # unknown, revoked or expired session token
    THROTTLED = 2007  # too many failed logins; retry_after says when to try again
    ALREADY_AUTHENTICATED = 2008
    INVALID_DEVICE = 2009  # device id breaks the device-id rules
    UNKNOWN_DEVICE = 2010  # no such device on this account
    # 3xxx: messaging
    UNKNOWN_USER = 3001  # recipient does not exist
    MESSAGE_TOO_LARGE = 3002  # text or metadata above its limit
    INVALID_CURSOR = 3003  # sync position ahead of the user's log
    NOT_ALLOWED = 3004  # the recipient does not accept this from you (blocked, contacts only)
    NOT_MEMBER = 3005  # not a member of that group or conversation, or it does not exist
    GROUP_FULL = 3006  # the group is at its size limit
    FORBIDDEN = 3007  # your role in the group does not allow this
    CONFLICT = 3008  # the request contradicts the current state (already a contact, ...)
    LIMIT_REACHED = 3009  # a per-user bound (groups, contacts, devices, ...) is reached
    # 31xx: media (SPEC.md 27)
    UNKNOWN_UPLOAD = 3101  # no such upload of yours (never existed, expired, done, cancelled)
    BLOB_TOO_LARGE = 3102  # the declared size is above max_blob_size
    BAD_CHUNK_SIZE = 3103  # not a power of two in range, or too many chunks
    CHUNK_OUT_OF_RANGE = 3104  # the chunk's offset is outside the declared size
    CHUNK_MISALIGNED = 3105  # the chunk's offset is not a multiple of the chunk size
    CHUNK_SIZE_MISMATCH = 3106  # the chunk is not the upload's chunk size (not the last one)
    TOO_MANY_BYTES = 3107  # the chunk runs past the declared size
    UPLOAD_INCOMPLETE = 3108  # finish before every byte was sent
    HASH_MISMATCH = 3109  # the bytes do not hash to the declared SHA-256: nothing stored
    UPLOAD_NOT_RECEIVING = 3110  # the upload is being verified: no chunks, no second finish
    UNKNOWN_BLOB = 3111  # no such blob, or not yours to read (deliberately not told apart)
    BAD_RANGE = 3112  # offset past the blob's end, or length out of range
    NOT_AN_IMAGE = 3113  # an image message (or a track's cover) whose blob is no image
    IMAGE_TOO_LARGE = 3114  # the image has too many pixels or bytes to inspect
    NOT_AUDIO = 3115  # a voice note or track whose blob is not audio the server reads
    AUDIO_TOO_LONG = 3116  # longer than the kind allows
    BAD_CLIP = 3117  # the track's clip is not inside the audio, or too short
    # 305x: channels
    BANNED = 3050  # you are banned from that channel
    INVALID_INVITE = 3051  # the channel's invitation token is wrong or was replaced
    NOT_FOUND = 3052  # no such post or comment in that channel (or it is deleted)
    SLOW_MODE = 3053  # the channel's slow mode: retry_after says when you may post again
    # 32xx: the wallet
    INSUFFICIENT_FUNDS = 3201  # the account's available balance is below the amount
    IDEMPOTENCY_MISMATCH = 3202  # the idempotency key was used with other parameters
    PACKET_EMPTY = 3203  # every share of the red packet is claimed
    PACKET_EXPIRED = 3204  # the red packet expired; its rest went back to the sender
    ITEM_UNAVAILABLE = 3205  # no such item of yours, or it is redeemed
    TASK_DONE = 3206  # the task is done as often as it pays in this period
    # 33xx: nearby and the shop (SPEC.md 29, 30)
    IMPLAUSIBLE_MOVE = 3301  # the position moved farther than anyone travels in the time
    NOT_MERCHANT = 3302  # the account is not a merchant account (or has no profile yet)
    NOT_NEARBY = 3303  # that user is not discoverable near you now
    UNKNOWN_PRODUCT = 3310  # no such product
    OUT_OF_STOCK = 3311  # fewer units left than ordered; data {"stock": left}
    UNKNOWN_ORDER = 3312  # no such open order of yours (or it is closed)
    # 35xx: bots (SPEC.md 26)
    UNKNOWN_BOT = 3501  # no such bot of yours (or no such bot, for its commands)
    BOTS_ONLY = 3502  # only a bot may do this (answer a callback, edit its message)
    UNKNOWN_CALLBACK = 3503  # no such callback of this bot, or it is answered or too old
    NO_SUCH_BUTTON = 3504  # that message is no bot's, or has no button with that data
    # 4xxx: load
    RATE_LIMITED = 4001  # retry_after says when to try again
    # 5xxx: the server
    INTERNAL_ERROR = 5001  # the server failed; the request may be retried
    UNAVAILABLE = 5002  # the server is shutting down; reconnect and retry
    INSUFFICIENT_STORAGE = 5003  # the server's media disk is (nearly) full

    @property
    def explanation(self) -> str:
        return _ERROR_TEXT[self]


_ERROR_TEXT: dict[ErrorCode, str] = {
    ErrorCode.MALFORMED_FRAME: "frame body is not a msgpack array [type, rid, map]",
    ErrorCode.UNKNOWN_TYPE: "unknown message type",
    ErrorCode.INVALID_FIELD: "a field is missing, mistyped or out of range",
    ErrorCode.BAD_STATE: "message not allowed in the current connection state",
    ErrorCode.UNSUPPORTED_VERSION: "no common protocol version",
    ErrorCode.FRAME_TOO_LARGE: "frame larger than the maximum frame size",
    ErrorCode.DUPLICATE_REQUEST_ID: "request id already in use",
    ErrorCode.NOT_AUTHENTICATED: "log in or authenticate first",
    ErrorCode.BAD_CREDENTIALS: "wrong username or password",
    ErrorCode.USERNAME_TAKEN: "username already registered",
    ErrorCode.INVALID_USERNAME: "username does not follow the rules",
    ErrorCode.WEAK_PASSWORD: "password length outside the allowed range",
    ErrorCode.INVALID_TOKEN: "session token unknown, revoked or expired",
    ErrorCode.THROTTLED: "too many failed attempts, retry later",
    ErrorCode.ALREADY_AUTHENTICATED: "connection is already authenticated",
    ErrorCode.INVALID_DEVICE: "device id does not follow the rules",
    ErrorCode.UNKNOWN_DEVICE: "no such device",
    ErrorCode.UNKNOWN_USER: "no such user",
    ErrorCode.MESSAGE_TOO_LARGE: "message text or metadata too large",
    ErrorCode.INVALID_CURSOR: "sync position is ahead of the update log",
    ErrorCode.NOT_ALLOWED: "the recipient does not accept this from you",
    ErrorCode.NOT_MEMBER: "not a member of that group or conversation",
    ErrorCode.GROUP_FULL: "the group is full",
    ErrorCode.FORBIDDEN: "your role does not allow this",
    ErrorCode.CONFLICT: "not possible in the current state",
    ErrorCode.LIMIT_REACHED: "a per-user limit is reached",
    ErrorCode.UNKNOWN_UPLOAD: "no such upload",
    ErrorCode.BLOB_TOO_LARGE: "the file is larger than the server accepts",
    ErrorCode.BAD_CHUNK_SIZE: "chunk size not accepted",
    ErrorCode.CHUNK_OUT_OF_RANGE: "chunk offset outside the file",
    ErrorCode.CHUNK_MISALIGNED: "chunk offset is not a multiple of the chunk size",
    ErrorCode.CHUNK_SIZE_MISMATCH: "chunk length differs from the upload's chunk size",
    ErrorCode.TOO_MANY_BYTES: "chunk runs past the declared size",
    ErrorCode.UPLOAD_INCOMPLETE: "parts of the file are still missing",
    ErrorCode.HASH_MISMATCH: "the bytes do not match the declared SHA-256",
    ErrorCode.UPLOAD_NOT_RECEIVING: "the upload takes no more chunks",
    ErrorCode.UNKNOWN_BLOB: "no such blob",
    ErrorCode.BAD_RANGE: "byte range outside the blob",
    ErrorCode.NOT_AN_IMAGE: "not an image",
    ErrorCode.IMAGE_TOO_LARGE: "image too large to inspect",
    ErrorCode.NOT_AUDIO: "not audio",
    ErrorCode.AUDIO_TOO_LONG: "audio too long",
    ErrorCode.BAD_CLIP: "clip is not inside the audio",
    ErrorCode.BANNED: "you are banned from that channel",
    ErrorCode.INVALID_INVITE: "invitation unknown or no longer valid",
    ErrorCode.NOT_FOUND: "no such post or comment",
    ErrorCode.SLOW_MODE: "slow mode: wait before posting again",
    ErrorCode.INSUFFICIENT_FUNDS: "the balance is too low",
    ErrorCode.IDEMPOTENCY_MISMATCH: "idempotency key reused with other parameters",
    ErrorCode.PACKET_EMPTY: "every share of the red packet is claimed",
    ErrorCode.PACKET_EXPIRED: "the red packet expired",
    ErrorCode.ITEM_UNAVAILABLE: "no such item, or it is used",
    ErrorCode.TASK_DONE: "the task is done for this period",
    ErrorCode.IMPLAUSIBLE_MOVE: "the position moved implausibly far",
    ErrorCode.NOT_MERCHANT: "not a merchant",
    ErrorCode.NOT_NEARBY: "that user is not nearby",
    ErrorCode.UNKNOWN_PRODUCT: "no such product",
    ErrorCode.OUT_OF_STOCK: "not enough left in stock",
    ErrorCode.UNKNOWN_ORDER: "no such open order",
    ErrorCode.UNKNOWN_BOT: "no such bot",
    ErrorCode.BOTS_ONLY: "only a bot may do this",
    ErrorCode.UNKNOWN_CALLBACK: "no such callback, or it is answered",
    ErrorCode.NO_SUCH_BUTTON: "no such button on a bot message",
    ErrorCode.RATE_LIMITED: "rate limit exceeded, retry later",
    ErrorCode.INTERNAL_ERROR: "internal server error",
    ErrorCode.UNAVAILABLE: "server unavailable, reconnect and retry",
    ErrorCode.INSUFFICIENT_STORAGE: "the server is short of disk space",
}


class CloseCode(IntEnum):
    """Why a connection ended. Numbers follow WebSocket's where the meaning matches."""

    NORMAL = 1000  # the sender is done
    GOING_AWAY = 1001  # server shutting down or restarting: reconnect with backoff
    PROTOCOL_ERROR = 1002  # the peer broke the framing or the state machine
    FRAME_TOO_LARGE = 1009  # a length prefix exceeded the maximum frame size
    INTERNAL_ERROR = 1011  # unexpected failure on the closing side
    AUTH_TIMEOUT = 4000  # not authenticated within the deadline
    IDLE_TIMEOUT = 4001  # nothing received within the idle timeout
    LOGGED_OUT = 4002  # session token revoked: do not reconnect with it
    SLOW_CONSUMER = 4003  # peer did not read its frames in time
    UNSUPPORTED_VERSION = 4004  # handshake found no common version
    TOO_MANY_CONNECTIONS = 4005  # connection limit reached

    @property
    def explanation(self) -> str:
        return _CLOSE_TEXT[self]

    @property
    def reconnect(self) -> bool:
        """Whether a client should reconnect by itself after this close."""
        return self in _RECONNECTABLE


_CLOSE_TEXT: dict[CloseCode, str] = {
    CloseCode.NORMAL: "normal closure",
    CloseCode.GOING_AWAY: "going away, reconnect",
    CloseCode.PROTOCOL_ERROR: "protocol error",
    CloseCode.FRAME_TOO_LARGE: "frame too large",
    CloseCode.INTERNAL_ERROR: "internal error",
    CloseCode.AUTH_TIMEOUT: "authentication deadline passed",
    CloseCode.IDLE_TIMEOUT: "idle timeout",
    CloseCode.LOGGED_OUT: "logged out",
    CloseCode.SLOW_CONSUMER: "slow consumer",
    CloseCode.UNSUPPORTED_VERSION: "unsupported protocol version",
    CloseCode.TOO_MANY_CONNECTIONS: "too many connections",
}

_RECONNECTABLE = frozenset(
    {
        CloseCode.GOING_AWAY,
        CloseCode.INTERNAL_ERROR,
        CloseCode.IDLE_TIMEOUT,
        CloseCode.SLOW_CONSUMER,
        CloseCode.TOO_MANY_CONNECTIONS,
    }
)
