"""The exception tree for liaotian. Every error knows its wire code.

    LiaotianError
    ├── ProtocolError            a frame or state-machine violation (ErrorCode in .code)
    │   ├── FrameTooLarge        length prefix above the limit (closes the connection)
    │   └── LocalProtocolError   this side tried to send something the state forbids
    ├── RequestError             the peer answered a request with an ERROR frame
    └── ConnectionClosed         the connection ended (CloseCode in .close_code)

Servers raise `RequestError` subclasses from handlers; one handler turns any of them into an
ERROR frame. Internal exception text never reaches the peer.
"""

from __future__ import annotations

from typing import Any

from .codes import CloseCode, ErrorCode


class LiaotianError(Exception):
    """Base class of every error this package raises."""


class ProtocolError(LiaotianError):
    """The bytes or the order of frames broke the protocol."""

    def __init__(self, code: ErrorCode, message: str = "", rid: int = 0) -> None:
        super().__init__(message or code.explanation)
        self.code = code
        self.message = message or code.explanation
        self.rid = rid


class FrameTooLarge(ProtocolError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(ErrorCode.FRAME_TOO_LARGE, f"frame of {size} bytes exceeds {limit}")
        self.size = size
        self.limit = limit


class LocalProtocolError(LiaotianError):
    """This side misused the connection (a bug in the caller, never the peer's fault)."""


class RequestError(LiaotianError):
    """A request was refused; `code` is the ErrorCode sent or received on the wire."""

    code: ErrorCode = ErrorCode.INTERNAL_ERROR

    def __init__(
        self,
        code: ErrorCode | None = None,
        message: str = "",
        *,
        retry_after: float | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        if code is not None:
            self.code = code
        self.message = message or self.code.explanation
        self.retry_after = retry_after
        self.data = data or {}
        super().__init__(f"{int(self.code)} {self.code.name}: {self.message}")


class ConnectionClosed(LiaotianError):
    """The connection is closed; `close_code` says why (None if it simply dropped)."""

    def __init__(self, close_code: CloseCode | None = None, reason: str = "") -> None:
        self.close_code = close_code
        self.reason = reason
        text = f"{int(close_code)} {close_code.name}" if close_code is not None else "dropped"
        super().__init__(f"connection closed ({text}){': ' + reason if reason else ''}")
