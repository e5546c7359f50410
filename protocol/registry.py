"""Type number -> message class, and decode_message: the one module that knows every family.

messages.py (core), social.py (the social layer), media.py, channels.py, wallet.py, bots.py,
nearby.py and shop.py know nothing of each other; this module imports them all, checks that
together they cover every MessageType exactly once, and decodes a payload with the decoder
codec.message compiled for its class.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .base import Message, MessageType
from .bots import BOT_CLASSES
from .channels import CHANNEL_CLASSES
from .codes import ErrorCode
from .errors import ProtocolError
from .limits import DEFAULT_LIMITS, Limits
from .media import MEDIA_CLASSES
from .messages import CORE_CLASSES
from .nearby import NEARBY_CLASSES
from .shop import SHOP_CLASSES
from .social import SOCIAL_CLASSES
from .wallet import WALLET_CLASSES

__all__ = ["MESSAGE_CLASSES", "decode_message"]


def _registry() -> dict[int, type[Message]]:
    table: dict[int, type[Message]] = {}
    for cls in (
        *CORE_CLASSES,
        *SOCIAL_CLASSES,
        *MEDIA_CLASSES,
        *CHANNEL_CLASSES,
        *WALLET_CLASSES,
        *NEARBY_CLASSES,
        *SHOP_CLASSES,
        *BOT_CLASSES,
    ):
        number = int(cls.TYPE)
        if number in table:
            raise RuntimeError(f"{cls.__name__} and {table[number].__name__} share type {number}")
        table[number] = cls
    missing = {int(t) for t in MessageType} - set(table)
    if missing:
        raise RuntimeError(f"no message class for types {sorted(missing)}")
    return table


MESSAGE_CLASSES: dict[int, type[Message]] = _registry()

_Decoder = Callable[[int, dict[str, Any], Limits], Message]
# The compiled decoders themselves (from_payload is a staticmethod): one call per frame.
_DECODERS: dict[int, _Decoder] = {t: c.from_payload for t, c in MESSAGE_CLASSES.items()}


def decode_message(
    msg_type: int, rid: int, payload: dict[str, Any], limits: Limits = DEFAULT_LIMITS
) -> Message:
    """The typed message of a decoded body (see frames.unpack_body): UNKNOWN_TYPE for a type
    number no class has, INVALID_FIELD for a payload of the wrong shape."""
    decode = _DECODERS.get(msg_type)
    if decode is None:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown message type {msg_type}", rid)
    return decode(rid, payload, limits)
