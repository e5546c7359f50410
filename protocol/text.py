"""Control characters: the one rule for text that names or describes someone (SPEC.md 1.5).

A *control character* here is any character that can change how a terminal or a text view
shows the text around it instead of being shown itself:

* C0 controls U+0000..U+001F (line feed, carriage return, tab and ESC included), DEL U+007F
  and the C1 controls U+0080..U+009F;
* the bidirectional formatting characters U+061C, U+200E, U+200F, U+202A..U+202E and
  U+2066..U+2069 (they reorder what follows them);
* the zero-width characters U+200B..U+200D and U+FEFF (invisible, so two different names
  can look identical);
* the line and paragraph separators U+2028 and U+2029.

The server refuses them (ERROR 1003 `INVALID_FIELD`) in profile display names and status
texts and in group names and topics (`check_field`). Message text may contain them (a
message may have several lines): a client shows them visibly, never raw (the reference CLI
uses `liaotian.client.terminal.safe`).
"""

from __future__ import annotations

import re

from .codes import ErrorCode
from .errors import RequestError

__all__ = ["CONTROL_CHARS", "check_field", "first_control", "is_control"]

# One character class for the whole rule; keep the module docstring and SPEC.md 1.5 in step.
CONTROL_CHARS = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]"
)


def is_control(ch: str) -> bool:
    """Whether one character is a control character in the sense of this module."""
    return CONTROL_CHARS.fullmatch(ch) is not None


def first_control(text: str) -> int:
    """The index of the first control character in `text`, or -1 if there is none."""
    m = CONTROL_CHARS.search(text)
    return -1 if m is None else m.start()


def check_field(name: str, value: str | None) -> None:
    """Raise RequestError(INVALID_FIELD) if the field's value holds a control character.

    `None` (an absent optional field) passes. The message names the field and the
    character's code point, so the sender can find it.
    """
    if value is None:
        return
    i = first_control(value)
    if i >= 0:
        raise RequestError(
            ErrorCode.INVALID_FIELD,
            f"{name}: control character U+{ord(value[i]):04X} at {i} is not allowed",
        )
