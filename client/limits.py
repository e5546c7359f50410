"""The limits a server advertises in WELCOME (SPEC.md 5), as a `liaotian.protocol.Limits`.

A client MUST stay within the values a server enforces, which may differ from the defaults
of SPEC.md 14.1; for a key that is missing it assumes the default. `ClientConnection` starts
with the defaults (WELCOME is small) and adopts `limits_from_welcome(welcome.limits)` once
it has the server's: a larger `max_frame_size` lets larger pages through, a smaller
`max_text_len` is checked before a send goes out, `max_inflight_requests` bounds the
requests in flight.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from liaotian.protocol import DEFAULT_LIMITS, Limits

__all__ = ["ADVERTISED", "limits_from_welcome"]

log = logging.getLogger("liaotian.client")

# WELCOME.limits keys (SPEC.md 5) and the type each value must have to be adopted.
ADVERTISED: dict[str, type] = {
    "max_frame_size": int,
    "max_text_len": int,
    "max_meta_size": int,
    "max_cmid_len": int,
    "max_sync_page": int,
    "max_history_page": int,
    "idle_timeout": float,
    "auth_timeout": float,
    "max_inflight_requests": int,
}


def limits_from_welcome(advertised: Mapping[str, Any], base: Limits = DEFAULT_LIMITS) -> Limits:
    """`base` with the values a server advertised in WELCOME.limits (SPEC.md 5).

    Keys this client does not know are ignored, and so is a value of the wrong type or not
    above 0 (logged): a missing key keeps the default, as SPEC.md asks. Integers are
    accepted for the durations.
    """
    changes: dict[str, Any] = {}
    for key, kind in ADVERTISED.items():
        if key not in advertised:
            continue
        value = advertised[key]
        ok = type(value) is int or (kind is float and type(value) is float)
        if not ok or value <= 0:
            log.warning("liaotian: ignoring the server's limit %s=%r", key, value)
            continue
        changes[key] = kind(value)
    return dataclasses.replace(base, **changes) if changes else base
