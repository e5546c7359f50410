"""SPEC.md section 26 (bots) against protocol/bots.py: every message has its section
`NAME (type), C→S|S→C` under 26.4 whose field table matches the declarations (keys in wire
order, required/optional/always sent, types, lengths, ranges, array sizes), and so do the
nested maps; the update kinds and error codes of bots are in their tables."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

import pytest
from liaotian.protocol import ErrorCode, Message, UpdateKind
from liaotian.protocol.bots import BOT_CLASSES, BotEntry, CallbackEntry, CommandEntry
from test_vectors import SPEC, _field_rows, _section_titled

ENTRY_HEADINGS: dict[type, str] = {
    BotEntry: "Bot map",
    CommandEntry: "Command map",
    CallbackEntry: "Callback map",
}


def _type_name(kind: Any) -> str:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        (kind,) = [a for a in typing.get_args(kind) if a is not type(None)]
        origin = typing.get_origin(kind)
    if origin is tuple:
        item = typing.get_args(kind)[0]
        heading = ENTRY_HEADINGS[item]
        return f"array of {heading[0].lower()}{heading[1:]}"
    if origin is dict:
        return "map"
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
        field = next(f for f in dataclasses.fields(cls) if f.name == name)
        if required:
            assert req.startswith("required"), (where, req)
        elif field.default is None or field.default_factory is dict:
            assert req.startswith("optional"), (where, req)
        else:
            assert req.startswith("always sent"), (where, req)
        plain = constraints.replace(",", "")
        if "max" in meta and meta["max"] is not None:
            if "min" in meta:
                assert f"{meta['min']} .. {meta['max']} characters" in plain, (where, plain)
            else:
                assert f"decoder cap {meta['max']} characters" in plain, (where, plain)
        if "max_items" in meta and meta["max_items"] is not None:
            assert f"at most {meta['max_items']} elements" in plain, (where, plain)


@pytest.mark.parametrize("cls", BOT_CLASSES, ids=lambda c: c.__name__)
def test_spec_documents_every_bot_message(cls: type[Message]) -> None:
    direction = "C→S" if cls.FROM_CLIENT else "S→C"
    number, body = _section_titled(f"{cls.TYPE.name} ({int(cls.TYPE)}), {direction}")
    assert number.startswith("26.4."), number
    _check(cls.TYPE.name, cls, body)


@pytest.mark.parametrize("cls", list(ENTRY_HEADINGS), ids=lambda c: c.__name__)
def test_spec_documents_every_bot_map(cls: type) -> None:
    number, body = _section_titled(ENTRY_HEADINGS[cls])
    assert number.startswith("26.4."), number
    _check(cls.__name__, cls, body)


def test_the_bots_update_kinds_and_errors_are_described_in_section_26() -> None:
    section = SPEC[SPEC.index("## 26. Bots") : SPEC.index("## 27. Media")]
    for kind in (UpdateKind.CALLBACK, UpdateKind.CALLBACK_ANSWER, UpdateKind.MESSAGE_EDITED):
        assert f"| {int(kind)} `{kind.name}` |" in section, kind
    for code in (3501, 3502, 3503, 3504):
        assert f"`{code} {ErrorCode(code).name}`" in section, code
