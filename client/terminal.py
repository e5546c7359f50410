"""Text from peers, made safe to print on a terminal.

Everything the `liaotian` CLI prints that another user (or the server) chose, whether
message text, usernames, display names, status lines, group names and topics, chat-list
previews or the message of an ERROR, goes through `safe()`. It shows every control
character (the class of `liaotian.protocol.text`: C0 with ESC, DEL, C1, bidirectional
overrides and isolates, zero-width characters, U+2028/U+2029, U+FEFF) as a visible escape
such as `\\x1b` or `\\u202e`, so a peer can neither move the cursor, clear the screen,
recolour the output nor reorder what follows. A line feed either becomes `\\n` (one-line
fields) or starts a continuation line indented by `indent`, so no message can print a line
that looks like one of the CLI's own.
"""

from __future__ import annotations

from liaotian.protocol.text import CONTROL_CHARS

__all__ = ["CONTINUATION", "safe"]

CONTINUATION = "    | "  # the default prefix of a multi-line message's continuation lines

_NAMED = {"\t": "\\t", "\r": "\\r", "\n": "\\n"}


def _escape(ch: str) -> str:
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe(text: object, indent: str | None = None) -> str:
    """`text` (str() of it) with every control character shown as an escape.

    With `indent` given, a line feed (and a CR LF pair) keeps its line break and the next
    line starts with `indent`, for multi-line message text; without it the text stays on
    one line and a line feed shows as `\\n`.
    """
    s = text if isinstance(text, str) else str(text)
    if indent is not None:
        s = s.replace("\r\n", "\n")
        lines = s.split("\n")
        return ("\n" + indent).join(
            CONTROL_CHARS.sub(lambda m: _escape(m.group()), line) for line in lines
        )
    return CONTROL_CHARS.sub(lambda m: _escape(m.group()), s)
