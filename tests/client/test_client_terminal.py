"""terminal.safe() and the CLI's formatters: peer text cannot drive the terminal or forge a
line (issue 11, item 9). The character class is protocol/text.py's, shared with the server."""

from __future__ import annotations

import pytest
from liaotian.client import cli
from liaotian.client.events import ContactEvent, GroupEvent, PresenceChanged, TypingEvent
from liaotian.client.terminal import CONTINUATION, safe
from liaotian.protocol import ChatMessage, ErrorCode, RequestError
from liaotian.protocol.text import check_field, first_control, is_control

CONTROLS = [
    "\x00",
    "\x07",
    "\x08",
    "\t",
    "\n",
    "\r",
    "\x1b",
    "\x7f",
    "\x85",
    "\x9b",
    "\u061c",
    "\u200b",
    "\u200d",
    "\u200e",
    "\u200f",
    "\u2028",
    "\u2029",
    "\u202a",
    "\u202e",
    "\u2066",
    "\u2069",
    "\ufeff",
]
ALLOWED = ["a", " ", "é", "聊", "\u00a0", "\u2030", "\u2070", "😀", "\\"]


@pytest.mark.parametrize("ch", CONTROLS)
def test_every_control_character_is_escaped(ch: str) -> None:
    assert is_control(ch)
    shown = safe(f"a{ch}b")
    assert not any(is_control(c) for c in shown)
    assert shown.startswith("a\\") and shown.endswith("b")


@pytest.mark.parametrize("ch", ALLOWED)
def test_printable_characters_pass(ch: str) -> None:
    assert not is_control(ch)
    assert safe(f"a{ch}b") == f"a{ch}b"


def test_escapes_are_readable() -> None:
    assert safe("\x1b[2J\x1b[31mred") == "\\x1b[2J\\x1b[31mred"
    assert safe("\u202egnp.exe") == "\\u202egnp.exe"
    assert safe("a\tb\r\nc") == "a\\tb\\r\\nc"
    assert safe(None) == "None"


def test_multi_line_text_is_indented() -> None:
    assert safe("one\ntwo\r\nthree\rx", indent="  | ") == "one\n  | two\n  | three\\rx"


def test_a_newline_cannot_forge_a_message_line() -> None:
    forged = "hi\n[2026-12-03 07:34:00] carol -> bob: fake\x1b[2J"
    m = ChatMessage(id=1, conv=1, pos=3, sender="alice", to="bob", ts=0, cmid="c", text=forged)
    lines = cli.fmt_message(m).split("\n")
    assert lines[0].endswith("] alice -> bob: hi")
    assert lines[1] == CONTINUATION + "[2026-12-03 07:34:00] carol -> bob: fake\\x1b[2J"
    assert "\x1b" not in cli.fmt_message(m)


def test_names_from_peers_are_escaped_everywhere() -> None:
    evil = "m\x1b[31mallory\n[00:00] x"
    g = ChatMessage(
        id=1,
        conv=5,
        pos=1,
        sender=evil,
        to="",
        ts=0,
        cmid="",
        text="",
        group=5,
        event={"type": "created", "name": evil, "users": [evil, "bob"]},
    )
    ev = GroupEvent.from_message(g)
    assert ev is not None
    for line in (
        cli.fmt_message(g, {5: evil}),
        cli.describe_group_event(ev),
        cli.fmt_group(5, {5: evil}),
        cli.fmt_event(ContactEvent(seq=1, event="request", user=evil)),
        cli.fmt_event(ContactEvent(seq=1, event="\x1b{u}", user=evil)),
        cli.fmt_event(TypingEvent(evil, True, 6.0, None)),
        cli.fmt_event(PresenceChanged(evil, True, 0)),
    ):
        assert line is not None
        assert first_control(line) < 0, line


def test_server_error_messages_are_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli._fail("INVALID_FIELD: \x1b]0;pwned\x07", 1) == 1
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err and "\\x1b]0;pwned\\x07" in err


def test_check_field_names_the_field_and_the_character() -> None:
    check_field("name", None)
    check_field("name", "plain name 😀")
    with pytest.raises(RequestError) as exc:
        check_field("topic", "ok\u202eevil")
    assert exc.value.code == ErrorCode.INVALID_FIELD
    assert "topic" in exc.value.message and "U+202E" in exc.value.message
