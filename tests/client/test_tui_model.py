"""`liaotian chat`'s logic without a terminal or a server: group names, unread bookkeeping,
day separators, receipts, typing, pending sends, and safe rendering of peer text."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from liaotian.client import ChatMessage, GroupEvent
from liaotian.client.tui import Names, Target, TargetError, resolve_group
from liaotian.client.tui.model import (
    ChatList,
    Conversation,
    DayRow,
    EventRow,
    MessageRow,
    MoreRow,
    PendingRow,
    day_label,
)
from liaotian.client.tui.render import chat_prompt, conversation, describe_event
from liaotian.protocol.social import ConversationSummary, GroupSummary, Marker

ME = "alice"
DAY1 = int(datetime(2026, 3, 2, 23, 50, tzinfo=UTC).timestamp() * 1000)
DAY2 = int(datetime(2026, 3, 3, 8, 0, tzinfo=UTC).timestamp() * 1000)
TODAY = date(2026, 3, 3)


def msg(
    conv: int,
    pos: int,
    sender: str = "bob",
    text: str = "hi",
    *,
    to: str = ME,
    group: int | None = None,
    ts: int = DAY2,
    event: dict[str, object] | None = None,
) -> ChatMessage:
    return ChatMessage(
        id=conv * 1000 + pos,
        conv=conv,
        pos=pos,
        sender=sender,
        to="" if group is not None else to,
        ts=ts,
        cmid=f"c{pos}",
        text=text,
        group=group,
        event=event,
    )


def direct(
    conv: int, peer: str, *, unread: int = 0, read: int = 0, last: int = 0, ts: int = DAY1
) -> ConversationSummary:
    return ConversationSummary(
        conv=conv,
        kind="direct",
        name=peer,
        ts=ts,
        unread=unread,
        read=read,
        last=msg(conv, last, peer) if last else None,
        peer=peer,
    )


def group(
    conv: int, name: str, *, unread: int = 0, read: int = 0, last: int = 0, ts: int = DAY1
) -> ConversationSummary:
    return ConversationSummary(
        conv=conv,
        kind="group",
        name=name,
        ts=ts,
        unread=unread,
        read=read,
        last=msg(conv, last, group=conv) if last else None,
        group=conv,
    )


# ---------------------------------------------------------------------- names


def summary(gid: int, name: str) -> GroupSummary:
    return GroupSummary(group=gid, name=name, topic="", role="member", members=3)


def test_groups_are_found_by_name_and_by_number_only_when_ambiguous() -> None:
    groups = [summary(3, "trip"), summary(5, "Work"), summary(7, "trip"), summary(9, "3")]
    assert resolve_group(groups, "Work").group == 5
    assert resolve_group(groups, "work").group == 5  # case only: still unique
    with pytest.raises(TargetError) as exc:
        resolve_group(groups, "trip")
    assert "#3" in str(exc.value) and "#7" in str(exc.value) and "--group '#3'" in str(exc.value)
    assert resolve_group(groups, "#7").group == 7
    assert resolve_group(groups, "3").group == 9  # a group named "3" wins over number 3
    assert resolve_group(groups, "5").group == 5  # no group is named "5": the number
    with pytest.raises(TargetError, match="no group named"):
        resolve_group(groups, "nowhere")
    with pytest.raises(TargetError, match="not in a group #4"):
        resolve_group(groups, "#4")
    with pytest.raises(TargetError) as exc:
        resolve_group(groups, "x\x1b[2J")
    assert "\x1b" not in str(exc.value)


def test_names_prefer_display_names_and_ask_once() -> None:
    names = Names()
    assert names.wanted(["bob", "carol", "bob"]) == ["bob", "carol"]
    assert names.wanted(["bob"]) == []
    names.set_display("bob", "Bob B")
    names.set_display("carol", "")
    assert (names.person("bob"), names.person("carol")) == ("Bob B", "carol")
    assert (names.full("bob"), names.full("carol")) == ("Bob B (bob)", "carol")
    with pytest.raises(ValueError):
        Target()


# ---------------------------------------------------------------------- the chat list


def test_unread_counts_start_from_the_server_and_rise_with_new_messages() -> None:
    chats = ChatList()
    chats.load([direct(1, "bob", unread=2, read=3, last=5), group(2, "trip", last=4)])
    assert [e.conv for e in chats.ordered()] == [2, 1]  # same ts: higher conv first
    # a replayed event for a message the list already had is not counted again
    assert chats.message(msg(1, 5), ME)
    assert chats.entries[1].unread == 2
    assert chats.message(msg(1, 6, ts=DAY2), ME)
    assert chats.entries[1].unread == 3 and chats.ordered()[0].conv == 1
    # one's own messages, timeline events and the chat on screen do not count
    chats.message(msg(1, 7, ME, to="bob"), ME)
    chats.message(msg(2, 5, group=2, event={"type": "added", "users": ["dave"]}), ME)
    chats.message(msg(2, 6, group=2), ME, viewing=2)
    assert (chats.entries[1].unread, chats.entries[2].unread) == (3, 0)
    assert chats.entries[1].last is not None and chats.entries[1].last.pos == 7
    # opening marks everything read
    assert chats.opened(1) == 7 and chats.entries[1].unread == 0
    assert chats.opened(1) == 0


def test_new_chats_and_read_markers() -> None:
    chats = ChatList()
    chats.load([direct(1, "bob", last=2, read=2)])
    assert chats.message(msg(4, 1, "carol"), ME)  # a new direct chat appears at once
    assert chats.entries[4].peer == "carol" and chats.entries[4].unread == 1
    assert chats.find(Target(peer="carol")) is chats.entries[4]
    # a group this list does not know: shown, and the caller refreshes the list
    created = {"type": "created", "name": "party", "users": ["carol", ME]}
    assert not chats.message(msg(9, 1, "carol", group=9, event=created), ME)
    assert chats.entries[9].name == "party"
    chats.message(msg(9, 2, "carol", group=9, event={"type": "renamed", "name": "fest"}), ME)
    assert chats.entries[9].name == "fest"
    chats.message(msg(1, 3), ME)
    chats.message(msg(1, 4), ME)
    assert chats.entries[1].unread == 2
    assert not chats.read(1, 3)  # read elsewhere up to 3 of 4: the caller recounts
    assert chats.read(1, 4) and chats.entries[1].unread == 0
    assert not chats.read(99, 1)


def test_labels_add_numbers_only_to_groups_sharing_a_name() -> None:
    chats = ChatList()
    chats.load([group(3, "trip"), group(7, "trip"), group(8, "work"), direct(1, "bob")])
    assert chats.labels() == {3: "trip #3", 7: "trip #7", 8: "work", 1: "bob"}


# ---------------------------------------------------------------------- a conversation


def test_rows_have_day_separators_receipts_events_and_pending_sends() -> None:
    conv = Conversation(Target(peer="bob"))
    conv.add_page(
        [msg(1, 1, ts=DAY1), msg(1, 2, ME, to="bob"), msg(1, 3, ME, to="bob")], more_before=True
    )
    conv.receipts([Marker(user="bob", pos=2)], [Marker(user="bob", pos=3)])
    pending = conv.pend("on its way")
    rows = conv.rows(ME, TODAY, UTC)
    assert rows[0] == MoreRow()
    assert rows[1] == DayRow("Yesterday") and rows[3] == DayRow("Today")
    assert isinstance(rows[2], MessageRow) and rows[2].receipt is None
    assert [r.receipt for r in rows if isinstance(r, MessageRow) and r.mine] == [
        "read",
        "delivered",
    ]
    assert rows[-1] == PendingRow(pending)
    conv.settle(pending, msg(1, 4, ME, to="bob"))
    assert conv.pending == [] and conv.newest == 4
    failed = conv.pend("refused")
    conv.settle(failed, None, "NOT_ALLOWED: blocked")
    assert conv.pending[0].error == "NOT_ALLOWED: blocked"
    conv.peer_read("bob", 4)
    assert conv.receipt(4) == "read"
    assert day_label(date(2026, 2, 24), TODAY) == "Tuesday 24 February 2026"


def test_group_receipts_and_events() -> None:
    conv = Conversation(Target(group=5))
    assert conv.conv == 5
    conv.add_page(
        [
            msg(
                5,
                1,
                "carol",
                group=5,
                event={"type": "created", "name": "t", "users": ["carol", ME, "bob"]},
            ),
            msg(5, 2, ME, group=5),
        ],
        more_before=False,
    )
    conv.receipts([Marker(user="bob", pos=2), Marker(user="carol", pos=2)], [])
    rows = conv.rows(ME, TODAY, UTC)
    assert isinstance(rows[1], EventRow) and rows[1].event.type == "created"
    assert isinstance(rows[2], MessageRow) and rows[2].receipt == "read by 2"


def test_live_messages_never_leave_a_gap() -> None:
    conv = Conversation(Target(peer="bob"))
    assert not conv.add_live(msg(1, 61))  # before the first page: kept for later
    conv.add_page([msg(1, p) for p in range(11, 61)], more_before=True)
    assert conv.newest == 61 and conv.oldest == 11
    assert not conv.add_live(msg(1, 3))  # a replay older than the page: left to paging
    assert conv.add_live(msg(1, 62)) and not conv.add_live(msg(1, 62))
    assert conv.belongs(msg(1, 70), ME) and not conv.belongs(msg(2, 1), ME)
    fresh = Conversation(Target(peer="bob"))
    assert fresh.belongs(msg(8, 1, "bob"), ME) and not fresh.belongs(msg(8, 1, "carol"), ME)


def test_typing_expires_after_its_ttl() -> None:
    conv = Conversation(Target(group=5))
    conv.typing_event("bob", True, 6.0, now=100.0)
    conv.typing_event("carol", True, 6.0, now=103.0)
    assert conv.typing_now(105.0) == ["bob", "carol"]
    assert conv.typing_now(106.0) == ["carol"]
    conv.typing_event("carol", False, 6.0, now=107.0)
    assert conv.typing_now(107.0) == []


# ---------------------------------------------------------------------- rendering


def test_peer_text_is_shown_literally() -> None:
    names = Names()
    names.set_display("bob", "[red]Bob\x1b[0m")
    conv = Conversation(Target(peer="bob"))
    attack = "x\x1b[2J [bold]not bold[/bold] \u202e\nsecond line\x07"
    conv.add_page([msg(1, 1, text=attack)], more_before=False)
    content = conversation(conv.rows(ME, TODAY, UTC), names, ME, UTC)
    plain = content.plain
    assert "[red]Bob\\x1b[0m: x\\x1b[2J [bold]not bold[/bold] \\u202e" in plain
    assert "\n      | second line\\x07" in plain  # the next line cannot pass for a message
    assert not any(ch in plain for ch in "\x1b\x07\u202e")
    # styles come from the app only, never from the text: no span covers "not bold"
    start = plain.index("not bold")
    assert all(not (span.start <= start < span.end) for span in content.spans)


def test_chat_list_entry_shows_unread_and_last_message() -> None:
    names = Names()
    chats = ChatList()
    chats.load([direct(1, "bob", unread=1000, last=3)])
    entry = chats.entries[1]
    text = chat_prompt(entry, "bob", names, ME, online=True).plain
    assert text.startswith("● bob  (999+)\n  bob: hi")
    assert chat_prompt(entry, "bob", names, ME, online=False).plain.startswith("○ bob")


def test_membership_events_read_as_sentences() -> None:
    names = Names()
    names.set_display("carol", "Carol")
    m = msg(5, 2, "carol", group=5, event={"type": "added", "users": ["bob", "dave"]})
    ev = GroupEvent.from_message(m)
    assert ev is not None
    assert describe_event(ev, names) == "Carol added bob, dave"
    left = GroupEvent.from_message(msg(5, 3, "bob", group=5, event={"type": "left"}))
    assert left is not None and describe_event(left, names) == "bob left"


def test_chat_command_takes_a_user_or_a_group_name() -> None:
    from liaotian.client.cli import build_parser

    args = build_parser().parse_args(["chat", "--group", "trip", "--user", "alice"])
    assert (args.command, args.group, args.with_user, args.user) == ("chat", "trip", None, "alice")
    assert build_parser().parse_args(["chat", "--with", "bob"]).with_user == "bob"
    assert build_parser().parse_args(["chat"]).group is None
    with pytest.raises(SystemExit):
        build_parser().parse_args(["chat", "--with", "bob", "--group", "trip"])


def test_channels_in_the_list_count_news_and_open_as_channels() -> None:
    chats = ChatList()
    chats.load(
        [
            ConversationSummary(
                conv=7, kind="channel", name="forum", ts=DAY2, unread=3, read=2, channel=7
            )
        ]
    )
    entry = chats.entries[7]
    assert entry.target == Target(channel=7) and entry.top == 5 and entry.last_pos == 5
    assert chats.find(Target(channel=7)) is entry and chats.find(Target(group=7)) is entry
    assert chats.news(7, 9) and entry.unread == 7  # newest position minus the read one
    assert chats.news(7, 9, viewing=True) and (entry.unread, entry.read) == (0, 9)
    assert not chats.news(8, 1)  # not listed: the caller reloads the list
    prompt = chat_prompt(entry, "forum", Names(), ME).plain
    assert prompt.startswith("≡ forum") and "channel, 9 posts" in prompt
    conv = Conversation(Target(channel=7))
    assert conv.conv == 7 and conv.receipt(1) == ""


def test_a_bot_message_shows_its_buttons_and_takes_edits() -> None:
    buttons = [[{"text": "Tea\x1b[2J", "data": "tea"}, {"text": "Coffee", "data": "c"}]]
    m = ChatMessage(
        id=1, conv=3, pos=4, sender="xbot", to=ME, ts=DAY2, cmid="c", text="pick",
        meta={"buttons": buttons},
    )  # fmt: skip
    conv = Conversation(Target(peer="xbot"))
    conv.add_page([m, msg(3, 5, "xbot", "later")], False)
    assert conv.buttons() == (4, [[("Tea\x1b[2J", "tea"), ("Coffee", "c")]])
    shown = conversation(conv.rows(ME, TODAY), Names(), ME).plain
    assert "[Tea\\x1b[2J]  [Coffee]" in shown and "\x1b" not in shown
    assert conv.edit(4, "done", {}, DAY2 + 1) and conv.buttons() is None
    assert "xbot: done  (edited)" in conversation(conv.rows(ME, TODAY), Names(), ME).plain
    assert not conv.edit(99, "x", {}, 1)
    bad = ChatMessage(
        id=2, conv=3, pos=6, sender="xbot", to=ME, ts=DAY2, cmid="d", text="x",
        meta={"buttons": [[{"text": 1, "data": "a"}]]},
    )  # fmt: skip
    conv.add([bad])
    assert conv.buttons() is None  # malformed buttons are not shown
