"""The bots' rules (chat/rules/bots.py) without a socket or a database: names, commands,
mentions, who of a group's members a message is hidden from (privacy mode), buttons."""

from __future__ import annotations

from typing import Any

import pytest
from liaotian.server.chat.model import BotView
from liaotian.server.chat.rules.bots import (
    check_buttons,
    has_button,
    hidden_members,
    mentions,
    parse_command,
    valid_bot_name,
    valid_command_name,
)


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("xiaobot", True),
        ("my_helper.bot", True),
        ("bot", False),  # too short to be a username
        ("ab", False),
        ("alice", False),
        ("Helpbot", False),
        ("x" * 30 + "bot", False),  # 33 characters
    ],
)
def test_a_bot_name_is_a_username_ending_in_bot(name: str, ok: bool) -> None:
    assert valid_bot_name(name) is ok


def test_command_names() -> None:
    assert valid_command_name("help") and valid_command_name("set_2")
    assert not valid_command_name("") and not valid_command_name("Help")
    assert not valid_command_name("a-b") and not valid_command_name("x" * 33)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("/help", ("help", None, "")),
        ("/help  me  ", ("help", None, "me")),
        ("/Start@xiaobot Hangzhou", ("start", "xiaobot", "Hangzhou")),
        ("/help@x", None),  # not a username after @
        ("/ help", None),
        ("help", None),
        ("/path/to/file", None),
        ("", None),
    ],
)
def test_parse_command(text: str, parsed: Any) -> None:
    assert parse_command(text) == parsed


def test_mentions_are_whole_names() -> None:
    assert mentions("hi @xiaobot", "xiaobot")
    assert mentions("@xiaobot, hi", "xiaobot")
    assert mentions("@xiaobotx @xiaobot", "xiaobot")
    assert not mentions("@xiaobotx", "xiaobot")
    assert not mentions("@xiaobot.y", "xiaobot")
    assert not mentions("xiaobot", "xiaobot")


def test_privacy_mode_hides_what_is_not_for_the_bot() -> None:
    view = BotView(names={10: "abot", 11: "bbot"})
    members = [1, 2, 10, 11]
    assert hidden_members(view, 5, members, 1, "hello") == {10, 11}
    assert hidden_members(view, 5, members, 1, "/help") == set()  # a command for every bot
    assert hidden_members(view, 5, members, 1, "/help@abot") == {11}
    assert hidden_members(view, 5, members, 1, "hey @bbot") == {10}
    assert hidden_members(view, 5, members, 10, "hello") == {11}  # never the sender
    view.open_groups.add(5)
    assert hidden_members(view, 5, members, 1, "hello") == set()
    assert hidden_members(BotView(), 5, members, 1, "hello") == set()


def test_buttons_are_rows_of_text_and_data() -> None:
    good = [
        [{"text": "Yes", "data": "y"}, {"text": "No", "data": "n"}],
        [{"text": "?", "data": "q"}],
    ]
    assert check_buttons(good) is None
    for bad in (
        [],
        "x",
        [[]],
        [[{"text": "Yes"}]],
        [[{"text": "", "data": "y"}]],
        [[{"text": "Yes", "data": "y" * 65}]],
        [[{"text": "Yes", "data": "y", "url": "http://x"}]],
        [[{"text": "a", "data": "b"}]] * 9,
        [[{"text": "a", "data": "b"}] * 9],
    ):
        assert check_buttons(bad) is not None, bad
    assert has_button({"buttons": good}, "q")
    assert not has_button({"buttons": good}, "z")
    assert not has_button({}, "y") and not has_button(None, "y")
    assert not has_button({"buttons": [[{"text": "a"}]]}, "a")
