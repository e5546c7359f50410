"""What every message shares: type numbers and who sends each, name rules, the Message base.

The lowest of the message modules: codec.py compiles the classes, records.py, messages.py
and social.py declare them, registry.py maps type numbers to them. Nothing here imports any
of those, so the message modules import one another in one direction only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, ClassVar, TypeVar

import msgpack

from .frames import HEADER
from .limits import Limits

_packb: Callable[[Any], bytes] = msgpack.packb  # msgpack ships no type hints
MAX_INT64 = (1 << 63) - 1

USERNAME_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{2,31}")
DEVICE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
MIN_PASSWORD_LEN = 8
MAX_PASSWORD_LEN = 1024


class MessageType(IntEnum):
    HELLO = 1
    WELCOME = 2
    PING = 3
    PONG = 4
    CLOSE = 5
    ERROR = 6
    REGISTER = 10
    REGISTERED = 11
    LOGIN = 12
    AUTH = 13
    AUTHENTICATED = 14
    LOGOUT = 15
    LOGGED_OUT = 16
    LIST_DEVICES = 17
    DEVICE_LIST = 18
    REVOKE_DEVICE = 19
    DEVICE_REVOKED = 20
    SEND = 30
    SENT = 31
    SYNC = 32
    UPDATES = 33
    ACK = 34
    HISTORY = 35
    HISTORY_PAGE = 36
    # social layer (social.py)
    OK = 7
    GROUP_CREATE = 40
    GROUP_INFO = 41
    GET_GROUP = 42
    GROUP_ADD = 43
    GROUP_REMOVE = 44
    GROUP_LEAVE = 45
    GROUP_UPDATE = 46
    GROUP_SET_ROLE = 47
    GROUP_TRANSFER = 48
    LIST_GROUPS = 49
    GROUP_LIST = 50
    READ = 55
    GET_RECEIPTS = 56
    RECEIPTS = 57
    LIST_CONVERSATIONS = 58
    CONVERSATION_LIST = 59
    TYPING = 60
    TYPING_NOTICE = 61
    PRESENCE = 62
    GET_PRESENCE = 63
    PRESENCE_LIST = 64
    CONTACT_REQUEST = 70
    CONTACT_ACCEPT = 71
    CONTACT_DECLINE = 72
    CONTACT_CANCEL = 73
    CONTACT_REMOVE = 74
    LIST_CONTACTS = 75
    CONTACT_LIST = 76
    BLOCK = 77
    UNBLOCK = 78
    SET_PROFILE = 80
    GET_PROFILE = 81
    PROFILE = 82
    SET_PRIVACY = 83
    GET_PRIVACY = 84
    PRIVACY = 85
    # media (media.py)
    UPLOAD_BEGIN = 90
    UPLOAD_STATUS = 91
    UPLOAD_CHUNK = 92
    UPLOAD_FINISH = 93
    UPLOAD_DONE = 94
    UPLOAD_CANCEL = 95
    DOWNLOAD = 96
    BLOB_DATA = 97
    # channels (channels.py): 110-139
    CHANNEL_CREATE = 110
    CHANNEL_INFO = 111
    GET_CHANNEL = 112
    CHANNEL_JOIN = 113
    CHANNEL_LEAVE = 114
    CHANNEL_UPDATE = 115
    CHANNEL_SET_ROLE = 116
    CHANNEL_BAN = 117
    CHANNEL_POST = 118
    CHANNEL_POSTED = 119
    CHANNEL_COMMENT = 120
    CHANNEL_LIKE = 121
    CHANNEL_LIKES = 122
    CHANNEL_PIN = 123
    CHANNEL_DELETE = 124
    CHANNEL_READ = 125
    CHANNEL_FETCH = 126
    CHANNEL_PAGE = 127
    CHANNEL_SEARCH = 128
    CHANNEL_HITS = 129
    CHANNEL_NEWS = 130
    CHANNEL_TRANSFER = 131
    CHANNEL_MEMBERS = 132
    CHANNEL_MEMBER_LIST = 133
    CHANNEL_FIND = 134
    CHANNEL_FOUND = 135
    # the wallet (wallet.py): 150-170
    GET_WALLET = 150
    WALLET = 151
    LIST_TRANSFERS = 152
    TRANSFER_LIST = 153
    PAY = 154
    PAID = 155
    RED_PACKET_SEND = 156
    RED_PACKET_SENT = 157
    RED_PACKET_CLAIM = 158
    RED_PACKET_CLAIMED = 159
    GET_RED_PACKET = 160
    RED_PACKET = 161
    CHECK_IN = 162
    CHECKED_IN = 163
    LIST_TASKS = 164
    TASK_LIST = 165
    LIST_ITEMS = 166
    ITEM_LIST = 167
    ITEM_GIFT = 168
    ITEM_REDEEM = 169
    ITEM_DONE = 170
    # nearby (nearby.py): 200-209
    NEARBY_SHARE = 200
    NEARBY_SHARED = 201
    NEARBY_STOP = 202
    NEARBY_QUERY = 203
    NEARBY_LIST = 204
    NEARBY_HELLO = 205
    MERCHANT_SET = 206
    GET_MERCHANT = 207
    MERCHANT = 208
    # the shop (shop.py): 210-239
    PRODUCT_ADD = 210
    PRODUCT_INFO = 211
    PRODUCT_STOCK = 212
    LIST_PRODUCTS = 213
    PRODUCT_LIST = 214
    GET_PRODUCT = 215
    PRODUCT_CARD = 216
    ORDER_PLACE = 217
    ORDER_INFO = 218
    ORDER_STEP = 219
    LIST_ORDERS = 220
    ORDER_LIST = 221
    # bots (bots.py): 180-199
    BOT_CREATE = 180
    BOT_INFO = 181
    LIST_BOTS = 182
    BOT_LIST = 183
    BOT_TOKEN = 184
    BOT_DELETE = 185
    SET_COMMANDS = 186
    GET_COMMANDS = 187
    COMMAND_LIST = 188
    PRESS = 189
    PRESSED = 190
    ANSWER_CALLBACK = 191
    BOT_EDIT = 192
    GROUP_BOTS = 193
    PENDING_CALLBACKS = 194
    CALLBACK_LIST = 195


class UpdateKind(IntEnum):
    MESSAGE = 1  # a message map (a group event is a message map with an "event" map)
    READ = 2  # {conv, user, pos}: a read-up-to marker moved
    CONTACT = 3  # {event, user}: a contact request or contact-list change
    WALLET = 4  # {event, ...}: the user's balance or items changed (wallet.py)
    CHANNEL = 10  # {event, channel, name}: the user joined, left or was banned from a channel
    CALLBACK = 23  # to a bot: a user pressed a button of its message (bots.py)
    CALLBACK_ANSWER = 24  # to the presser: the bot's notice answering the press
    MESSAGE_EDITED = 25  # to a conversation's members: a bot edited its message


T = MessageType
# Who sends what: the one table of directions. Every type not listed is sent by the server;
# CLOSE is the one type both sides send. A message class's FROM_CLIENT is read from here.
_FROM_CLIENT = frozenset(
    {
        T.HELLO,
        T.PING,
        T.CLOSE,
        T.REGISTER,
        T.LOGIN,
        T.AUTH,
        T.LOGOUT,
        T.LIST_DEVICES,
        T.REVOKE_DEVICE,
        T.SEND,
        T.SYNC,
        T.ACK,
        T.HISTORY,
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
        T.UPLOAD_BEGIN,
        T.UPLOAD_CHUNK,
        T.UPLOAD_FINISH,
        T.UPLOAD_CANCEL,
        T.DOWNLOAD,
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
        T.NEARBY_SHARE,
        T.NEARBY_STOP,
        T.NEARBY_QUERY,
        T.NEARBY_HELLO,
        T.MERCHANT_SET,
        T.GET_MERCHANT,
        T.PRODUCT_ADD,
        T.PRODUCT_STOCK,
        T.LIST_PRODUCTS,
        T.GET_PRODUCT,
        T.PRODUCT_CARD,
        T.ORDER_PLACE,
        T.ORDER_STEP,
        T.LIST_ORDERS,
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
)
CLIENT_TYPES = frozenset(int(t) for t in _FROM_CLIENT)
SERVER_TYPES = frozenset(int(t) for t in T if t not in _FROM_CLIENT) | {int(T.CLOSE)}
# Requests answered by exactly one frame with the same rid; the rest are one-way.
ONE_WAY_CLIENT_TYPES = frozenset({int(T.ACK), int(T.CLOSE), int(T.TYPING)})


def from_client(msg_type: MessageType) -> bool:
    """Whether the client sends this type (CLOSE: both sides do; this says True)."""
    return msg_type in _FROM_CLIENT


def validate_username(name: str) -> bool:
    return USERNAME_RE.fullmatch(name) is not None


def validate_device(device: str) -> bool:
    return DEVICE_RE.fullmatch(device) is not None


# --------------------------------------------------------------------------- base


M = TypeVar("M", bound="Message")


@dataclass(frozen=True, slots=True)
class Message:
    """Base of every wire message. TYPE is its number; FROM_CLIENT says which side sends it.

    `from_payload`, `to_payload` and `encode` are compiled for each class by codec.message
    from its field declarations; the bodies here are only what a class without them does.
    """

    TYPE: ClassVar[MessageType]
    FROM_CLIENT: ClassVar[bool]
    # True for the messages whose frame is best written as several buffers (a media chunk:
    # a small head, then its bytes as they are); Connection then queues `encode_parts()`.
    PARTS: ClassVar[bool] = False
    rid: int

    @classmethod
    def from_payload(cls: type[M], rid: int, p: dict[str, Any], limits: Limits) -> M:
        """Validate a decoded payload map (ProtocolError(INVALID_FIELD) if it is malformed)."""
        raise NotImplementedError(f"{cls.__name__} is not compiled by codec.message")

    def to_payload(self) -> dict[str, Any]:
        """The payload map as a peer decodes it (arrays as lists)."""
        raise NotImplementedError(f"{type(self).__name__} is not compiled by codec.message")

    def encode(self) -> bytes:
        """The complete frame: length prefix and body."""
        body = _packb((int(self.TYPE), self.rid, self.to_payload()))
        return HEADER.pack(len(body)) + body

    def encode_parts(self) -> tuple[bytes, ...]:
        """The frame as buffers whose concatenation is `encode()` (see PARTS)."""
        return (self.encode(),)
