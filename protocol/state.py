"""Connection states and the one table of what each side may send in each.

    AWAIT_HELLO --WELCOME--> CONNECTED --AUTHENTICATED--> AUTHENTICATED
                                 ^                              |
                                 +---------LOGGED_OUT-----------+
    any state --CLOSE (either side), EOF, fatal error--> CLOSED

Transitions happen when the server's frame that causes them is sent (server side) or
received (client side), so both ends move at the same point of the byte stream.
"""

from __future__ import annotations

from enum import Enum

from .base import MessageType as T
from .bots import BOT_CLIENT_TYPES, BOT_SERVER_TYPES
from .channels import CHANNEL_CLASSES
from .codes import ErrorCode
from .media import MEDIA_CLIENT_TYPES, MEDIA_SERVER_TYPES
from .nearby import NEARBY_CLASSES
from .shop import SHOP_CLASSES
from .social import SOCIAL_CLIENT_TYPES, SOCIAL_SERVER_TYPES
from .wallet import WALLET_CLIENT_TYPES, WALLET_SERVER_TYPES


class Role(Enum):
    CLIENT = "client"
    SERVER = "server"


class State(Enum):
    AWAIT_HELLO = "await_hello"
    CONNECTED = "connected"
    AUTHENTICATED = "authenticated"
    CLOSED = "closed"


_CHANNEL_CLIENT = {int(c.TYPE) for c in CHANNEL_CLASSES if c.FROM_CLIENT}
_CHANNEL_SERVER = {int(c.TYPE) for c in CHANNEL_CLASSES if not c.FROM_CLIENT}
_LATER = (
    *NEARBY_CLASSES,
    *SHOP_CLASSES,
)  # families after the wallet: every message needs a session
_LATER_CLIENT = {int(c.TYPE) for c in _LATER if c.FROM_CLIENT}
_LATER_SERVER = {int(c.TYPE) for c in _LATER if not c.FROM_CLIENT}
_ANYTIME_CLIENT = {T.PING, T.CLOSE}
_ACCOUNT = {T.REGISTER, T.LOGIN, T.AUTH}
_SESSION = {
    T.LOGOUT,
    T.LIST_DEVICES,
    T.REVOKE_DEVICE,
    T.SEND,
    T.SYNC,
    T.ACK,
    T.HISTORY,
    *SOCIAL_CLIENT_TYPES,
    *MEDIA_CLIENT_TYPES,
    *_CHANNEL_CLIENT,
    *WALLET_CLIENT_TYPES,
    *_LATER_CLIENT,
    *BOT_CLIENT_TYPES,
}

# What a client may send (and so what a server accepts) in each state.
CLIENT_MAY_SEND: dict[State, frozenset[int]] = {
    State.AWAIT_HELLO: frozenset({T.HELLO, T.CLOSE}),
    State.CONNECTED: frozenset(_ANYTIME_CLIENT | _ACCOUNT),
    State.AUTHENTICATED: frozenset(_ANYTIME_CLIENT | _SESSION),
    State.CLOSED: frozenset(),
}

_ANSWERS = {T.PONG, T.ERROR, T.CLOSE}
# What a server may send (and so what a client accepts) in each state.
SERVER_MAY_SEND: dict[State, frozenset[int]] = {
    State.AWAIT_HELLO: frozenset({T.WELCOME, T.ERROR, T.CLOSE}),
    State.CONNECTED: frozenset(_ANSWERS | {T.REGISTERED, T.AUTHENTICATED}),
    State.AUTHENTICATED: frozenset(
        _ANSWERS
        | {T.LOGGED_OUT, T.DEVICE_LIST, T.DEVICE_REVOKED, T.SENT, T.UPDATES, T.HISTORY_PAGE}
        | SOCIAL_SERVER_TYPES
        | MEDIA_SERVER_TYPES
        | _CHANNEL_SERVER
        | WALLET_SERVER_TYPES
        | _LATER_SERVER
        | BOT_SERVER_TYPES
    ),
    State.CLOSED: frozenset(),
}

# Frames that move the state machine; the server sends all of them but CLOSE.
TRANSITIONS: dict[tuple[State, int], State] = {
    (State.AWAIT_HELLO, T.WELCOME): State.CONNECTED,
    (State.CONNECTED, T.AUTHENTICATED): State.AUTHENTICATED,
    (State.AUTHENTICATED, T.LOGGED_OUT): State.CONNECTED,
}


def refusal_code(state: State, msg_type: int) -> ErrorCode:
    """The error a server answers for a client frame its state does not allow."""
    if state is State.CONNECTED and msg_type in _SESSION:
        return ErrorCode.NOT_AUTHENTICATED
    if state is State.AUTHENTICATED and msg_type in _ACCOUNT:
        return ErrorCode.ALREADY_AUTHENTICATED
    return ErrorCode.BAD_STATE


def next_state(state: State, msg_type: int) -> State:
    if msg_type == T.CLOSE:
        return State.CLOSED
    return TRANSITIONS.get((state, msg_type), state)
