"""The bot lines of the `liaotian` CLI (client/bot_cli.py): buttons under a message say how
to press them; the bots' events are `(bot)` lines; the parsers take the documented forms."""

from __future__ import annotations

from liaotian.client.bot_cli import fmt_bot_event, fmt_buttons
from liaotian.client.bot_events import CallbackAnswered, CallbackQuery, MessageEdited
from liaotian.client.cli import build_parser, fmt_message
from liaotian.protocol import ChatMessage

BUTTONS = {"buttons": [[{"text": "Tea", "data": "tea"}, {"text": "Co\x1b[31mffee", "data": "c"}]]}


def msg(meta: dict[str, object]) -> ChatMessage:
    return ChatMessage(
        id=1, conv=9, pos=2, sender="menubot", to="alice", ts=0, cmid="m", text="hi", meta=meta
    )


def test_buttons_are_shown_with_how_to_press_them_and_made_safe() -> None:
    line = fmt_buttons(msg(BUTTONS))
    assert line is not None and "[Tea] tea" in line and "liaotian press 9 2 DATA" in line
    assert "\x1b" not in line
    assert fmt_buttons(msg({})) is None and fmt_buttons(msg({"buttons": "x"})) is None
    shown = fmt_message(msg(BUTTONS))
    assert shown.splitlines()[1].strip().startswith("buttons:")


def test_bot_events_are_bot_lines() -> None:
    assert fmt_bot_event(CallbackAnswered(1, 5, "menubot", 9, 2, "done")) == (
        "(bot) menubot notice: done"
    )
    edited = fmt_bot_event(MessageEdited(2, 9, 2, 1, "menubot", "v2"))
    assert edited is not None and "edited #2" in edited and "v2" in edited
    pressed = fmt_bot_event(CallbackQuery(3, 5, "alice", 9, 2, 1, "tea"))
    assert pressed == "(bot) alice pressed tea under #2"
    assert fmt_bot_event(object()) is None


def test_the_bot_commands_parse() -> None:
    p = build_parser()
    a = p.parse_args(["bot", "commands", "menubot", "help=what I do", "menu="])
    assert (a.command, a.bot_command, a.name, a.set) == (
        "bot",
        "commands",
        "menubot",
        ["help=what I do", "menu="],
    )
    a = p.parse_args(["press", "9", "2", "tea"])
    assert (a.conv, a.pos, a.data) == (9, 2, "tea")
    a = p.parse_args(["bot", "privacy", "12", "off"])
    assert (a.group_id, a.mode) == (12, "off")
