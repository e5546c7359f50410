"""The client's side of the wallet without a server: WALLET update entries become
WalletChanged events (counted by the cursor like any entry), wallet timeline events stay
messages (not group changes), and the facade's arguments are checked locally."""

from __future__ import annotations

import pytest
from liaotian.client import Client, WalletChanged
from liaotian.client.cursor import DATA_KINDS
from liaotian.client.events import GroupChanged, MessageReceived, event_from_update
from liaotian.client.wallet import new_key
from liaotian.protocol import ChatMessage, Update, UpdateKind


def test_a_wallet_entry_is_a_wallet_changed_event() -> None:
    data = {
        "event": "transfer",
        "balance": 7,
        "pending_out": 0,
        "pending_in": 0,
        "transfer": {
            "id": 3,
            "from": "alice",
            "to": "bob",
            "amount": 3,
            "code": "pay",
            "phase": "posted",
            "ts": 1,
        },
    }
    ev = event_from_update(Update(seq=9, kind=UpdateKind.WALLET, data=data))
    assert isinstance(ev, WalletChanged) and ev.seq == 9 and ev.event == "transfer"
    assert ev.balance == 7 and ev.transfer == data["transfer"] and ev.item is None
    assert int(UpdateKind.WALLET) in DATA_KINDS
    assert event_from_update(Update(seq=10, kind=UpdateKind.WALLET, data={"x": 1})) is None


def test_wallet_timeline_events_are_messages_and_group_changes_stay_group_changes() -> None:
    def entry(event: dict[str, object], group: int | None) -> Update:
        m = ChatMessage(
            id=1,
            conv=12,
            pos=4,
            sender="alice",
            to="" if group else "bob",
            ts=1,
            cmid="",
            text="",
            group=group,
            event=event,
        )
        return Update(seq=1, kind=UpdateKind.MESSAGE, message=m)

    assert isinstance(
        event_from_update(entry({"type": "red_packet", "packet": 1}, 12)), MessageReceived
    )
    assert isinstance(
        event_from_update(entry({"type": "coins", "amount": 3}, None)), MessageReceived
    )
    assert isinstance(event_from_update(entry({"type": "renamed", "name": "x"}, 12)), GroupChanged)


async def test_the_facade_checks_its_arguments_and_makes_fresh_keys() -> None:
    c = Client("127.0.0.1", 1, username="a", password="p")
    with pytest.raises(ValueError):
        await c.wallet.red_packet(5, 1, group=1, to="bob")
    keys = {new_key() for _ in range(100)}
    assert len(keys) == 100 and all(len(k) == 22 for k in keys)
