"""SPEC.md section 25 (the wallet) against protocol/wallet.py and the wallet's core: every
message has its section `NAME (type), C→S|S→C` under 25.8 whose field table matches the
declarations (keys in wire order, required/optional/always sent, types, lengths, choices,
ranges, array sizes), every nested map has its table, and the names the core puts on the
wire (transfer codes, packet states, task triggers) are the ones the codec allows."""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from typing import Any

import pytest
from liaotian.protocol import Message
from liaotian.protocol.wallet import (
    PACKET_STATES,
    SPLITS,
    TASK_TRIGGERS,
    TRANSFER_CODES,
    WALLET_CLASSES,
    ClaimEntry,
    ItemEntry,
    TaskDone,
    TaskEntry,
    TransferEntry,
)
from liaotian.server.chat import ledger
from test_vectors import _field_rows, _section_titled

ENTRY_HEADINGS: dict[type, str] = {
    TransferEntry: "Transfer map",
    ClaimEntry: "Claim map",
    TaskDone: "Task result map",
    TaskEntry: "Task map",
    ItemEntry: "Item map",
}


def _type_name(kind: Any) -> str:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        (kind,) = [a for a in typing.get_args(kind) if a is not type(None)]
        origin = typing.get_origin(kind)
    if origin is tuple:
        item = typing.get_args(kind)[0]
        return "array of str" if item is str else f"array of {_type_name(item)}"
    if kind in ENTRY_HEADINGS:
        heading = ENTRY_HEADINGS[kind]
        return heading[0].lower() + heading[1:]
    return {int: "integer", str: "str", bool: "boolean"}[kind]


def _check(what: str, cls: Any, body: list[str]) -> None:
    specs = cls._specs
    rows = _field_rows(body)
    if not specs:
        assert rows is None and any("Empty payload `{}`" in line for line in body), what
        return
    assert rows is not None, f"{what}: no field table"
    assert [r[0] for r in rows] == [f"`{key}`" for _, key, *_ in specs], what
    for row, (name, key, kind, meta, required) in zip(rows, specs, strict=True):
        _, mtype, req, constraints, _meaning = row
        where = f"{what}.{key}"
        assert mtype.startswith(_type_name(kind)), (where, mtype)
        default = next(f.default for f in dataclasses.fields(cls) if f.name == name)
        if required or req.startswith("required unless"):  # `to` beside `group`, as SEND's
            assert req.startswith("required"), (where, req)
        elif default is None:
            assert req.startswith("optional"), (where, req)
        else:
            assert req.startswith("always sent"), (where, req)
        plain = constraints.replace(",", "")
        if "choices" in meta:
            listed = re.findall(r'`"([^"`]*)"`', constraints)
            assert tuple(listed) == tuple(meta["choices"]), (where, constraints)
        elif "max" in meta:
            if "min" in meta:
                assert f"{meta['min']} .. {meta['max']} characters" in plain, (where, plain)
            else:
                assert f"decoder cap {meta['max']} characters" in plain, (where, plain)
        if "lo" in meta or "hi" in meta:
            assert f"{meta.get('lo', 0)} .. {meta['hi']}" in plain, (where, plain)
        if "max_items" in meta:
            assert f"at most {meta['max_items']} elements" in plain, (where, plain)


@pytest.mark.parametrize("cls", WALLET_CLASSES, ids=lambda c: c.__name__)
def test_spec_documents_every_wallet_message(cls: type[Message]) -> None:
    direction = "C→S" if cls.FROM_CLIENT else "S→C"
    number, body = _section_titled(f"{cls.TYPE.name} ({int(cls.TYPE)}), {direction}")
    assert number.startswith("25.8."), number
    _check(cls.TYPE.name, cls, body)


@pytest.mark.parametrize("cls", list(ENTRY_HEADINGS), ids=lambda c: c.__name__)
def test_spec_documents_every_wallet_map(cls: type) -> None:
    number, body = _section_titled(ENTRY_HEADINGS[cls])
    assert number.startswith("25.8."), number
    _check(cls.__name__, cls, body)


def test_the_core_speaks_the_codes_the_codec_allows() -> None:
    assert set(ledger.CODE_NAMES.values()) == set(TRANSFER_CODES)
    assert set(ledger.PACKET_STATES.values()) == set(PACKET_STATES)
    assert set(ledger.SPLIT_NAMES.values()) == set(SPLITS)
    assert ledger.TRIGGERS == TASK_TRIGGERS
