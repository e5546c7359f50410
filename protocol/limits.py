"""Protocol limits, each with its documented default (SPEC.md, section Limits).

The server advertises the values it enforces in WELCOME; a client must stay within them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True, slots=True)
class Limits:
    max_frame_size: int = 1 * MIB  # bytes in one frame body (length prefix excluded)
    max_text_len: int = 64 * KIB  # UTF-8 bytes of a message's text
    max_meta_size: int = 16 * KIB  # msgpack bytes of a message's metadata map
    max_cmid_len: int = 64  # characters of a client message id
    max_array_len: int = 10_000  # elements of any msgpack array in a frame
    max_map_len: int = 1_000  # pairs of any msgpack map in a frame
    max_sync_page: int = 1_000  # updates in one SYNC answer
    default_sync_page: int = 500
    max_history_page: int = 200  # messages in one HISTORY answer
    default_history_page: int = 50
    heartbeat_interval: float = 30.0  # seconds: a client sends PING when idle this long
    idle_timeout: float = 90.0  # seconds without any frame from the peer before closing
    auth_timeout: float = 10.0  # seconds to authenticate after connecting
    max_protocol_errors: int = 10  # malformed frames tolerated before closing
    max_inflight_requests: int = 256  # requests awaiting an answer on one connection
    # before AUTHENTICATED (server side): HELLO, REGISTER, LOGIN and AUTH fit in a few KiB
    max_preauth_frame_size: int = 8 * KIB  # bytes in one frame body until authenticated
    max_preauth_frames: int = 32  # frames a connection may send until authenticated

    def advertised(self) -> dict[str, Any]:
        """The subset sent in WELCOME, keyed as in SPEC.md."""
        d = asdict(self)
        return {
            "max_frame_size": d["max_frame_size"],
            "max_text_len": d["max_text_len"],
            "max_meta_size": d["max_meta_size"],
            "max_cmid_len": d["max_cmid_len"],
            "max_sync_page": d["max_sync_page"],
            "max_history_page": d["max_history_page"],
            "idle_timeout": d["idle_timeout"],
            "auth_timeout": d["auth_timeout"],
            "max_inflight_requests": d["max_inflight_requests"],
        }


DEFAULT_LIMITS = Limits()
