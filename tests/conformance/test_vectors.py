"""Conformance: the published test vectors and SPEC.md against liaotian.protocol.

For every vector in tests/vectors/protocol_v1.json: decoding the hex gives the stated type,
rid and payload; re-encoding the typed message gives the same bytes; a Connection of the
receiving role, in a state where the message is allowed, turns the bytes into that event.
Then SPEC.md's tables (message types, state table, error and close codes, limits, update
kinds), the field tables of the social layer (sections 16-23, against the field metadata of
protocol/social.py), its cross references and its vector section are parsed and compared
with the code, so the two cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import types
import typing
from pathlib import Path
from typing import Any

import pytest
from liaotian.protocol import (
    DEFAULT_LIMITS,
    SUPPORTED_VERSIONS,
    Authenticated,
    ChatMessage,
    CloseCode,
    Connection,
    ConnectionTerminated,
    ErrorCode,
    FrameReader,
    Hello,
    Limits,
    Login,
    Message,
    MessageType,
    Ping,
    ProtocolViolation,
    Role,
    State,
    UpdateKind,
    Welcome,
    decode_message,
    unpack_body,
)
from liaotian.protocol.media import MEDIA_CLASSES
from liaotian.protocol.messages import CLIENT_TYPES, SERVER_TYPES
from liaotian.protocol.records import SendMedia
from liaotian.protocol.social import (
    CONTACT_EVENTS,
    SOCIAL_CLASSES,
    ConversationSummary,
    GroupMember,
    GroupSummary,
    Marker,
    PresenceEntry,
)
from liaotian.protocol.state import CLIENT_MAY_SEND, SERVER_MAY_SEND, refusal_code

ROOT = Path(__file__).resolve().parents[2]
VECTORS_FILE = ROOT / "tests" / "vectors" / "protocol_v1.json"
SPEC_FILE = ROOT / "SPEC.md"
VECTORS: list[dict[str, Any]] = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))
IDS = [v["name"] for v in VECTORS]
LIVE_STATES = (State.AWAIT_HELLO, State.CONNECTED, State.AUTHENTICATED)
SETUP_RID = 4_000_000_000  # never used by a vector


def _tagged(v: Any) -> Any:
    """A form that compares types strictly (1 != 1.0 != True) and lists == tuples; a bin
    value is bytes decoded and {"$bin": hex} in the vector file."""
    if isinstance(v, bytes):
        return ("bin", v)
    if isinstance(v, dict) and set(v) == {"$bin"}:
        return ("bin", bytes.fromhex(v["$bin"]))
    if isinstance(v, dict):
        return ("map", {k: _tagged(x) for k, x in v.items()})
    if isinstance(v, list | tuple):
        return ("array", [_tagged(x) for x in v])
    return (type(v).__name__, v)


def _frame(v: dict[str, Any]) -> bytes:
    return bytes.fromhex(v["hex"])


def _decode(v: dict[str, Any]) -> tuple[int, int, dict[str, Any], Message]:
    reader = FrameReader()
    bodies = reader.feed(_frame(v))
    assert len(bodies) == 1 and reader.buffered == 0
    msg_type, rid, payload = unpack_body(bodies[0])
    return msg_type, rid, payload, decode_message(msg_type, rid, payload)


# --------------------------------------------------------------------------- the vectors


def test_vector_file_is_current() -> None:
    spec = importlib.util.spec_from_file_location(
        "make_vectors", ROOT / "tests" / "vectors" / "make_vectors.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.render_json(module.build()) == VECTORS_FILE.read_text(encoding="utf-8")


def test_vectors_cover_every_message_type() -> None:
    assert {v["type"] for v in VECTORS} == {int(t) for t in MessageType}
    assert len(set(IDS)) == len(IDS)


@pytest.mark.parametrize("v", VECTORS, ids=IDS)
def test_decode(v: dict[str, Any]) -> None:
    msg_type, rid, payload, msg = _decode(v)
    assert msg_type == v["type"] == int(msg.TYPE)
    assert rid == v["rid"] == msg.rid
    assert _tagged(payload) == _tagged(v["payload"])
    frame = _frame(v)
    assert int.from_bytes(frame[:4], "big") == len(frame) - 4
    allowed = CLIENT_TYPES if v["direction"] == "client->server" else SERVER_TYPES
    assert v["direction"] in ("client->server", "server->client")
    assert msg_type in allowed


@pytest.mark.parametrize("v", VECTORS, ids=IDS)
def test_reencode(v: dict[str, Any]) -> None:
    *_, msg = _decode(v)
    assert msg.encode() == _frame(v)


def _first_state(table: dict[State, frozenset[int]], msg_type: int) -> State:
    for state in LIVE_STATES:
        if msg_type in table[state]:
            return state
    raise AssertionError(f"type {msg_type} is never allowed")


def _server_in(state: State) -> Connection:
    conn = Connection(Role.SERVER)
    if state is not State.AWAIT_HELLO:
        conn.receive_data(Hello(rid=SETUP_RID, versions=(1,)).encode())
        assert isinstance(conn.next_event(), Hello)
        conn.send(Welcome(rid=SETUP_RID, version=1, server="t", time=0, heartbeat=30.0))
    if state is State.AUTHENTICATED:
        conn.receive_data(Login(rid=SETUP_RID, username="u", password="p" * 8, device="d").encode())
        assert isinstance(conn.next_event(), Login)
        conn.send(Authenticated(rid=SETUP_RID, user="u", device="d", head=0, acked=0))
    assert conn.state is state and conn.pending_requests == 0
    conn.data_to_send()
    return conn


def _client_in(state: State, rid: int, msg_type: int) -> Connection:
    """A client in `state` with `rid` outstanding (an answer needs a request to answer)."""
    conn = Connection(Role.CLIENT)
    if state is not State.AWAIT_HELLO:
        conn.send(Hello(rid=SETUP_RID, versions=(1,)))
        conn.receive_data(
            Welcome(rid=SETUP_RID, version=1, server="t", time=0, heartbeat=30.0).encode()
        )
        assert isinstance(conn.next_event(), Welcome)
    if state is State.AUTHENTICATED:
        conn.send(Login(rid=SETUP_RID, username="u", password="p" * 8, device="d"))
        conn.receive_data(
            Authenticated(rid=SETUP_RID, user="u", device="d", head=0, acked=0).encode()
        )
        assert isinstance(conn.next_event(), Authenticated)
    assert conn.state is state and conn.pending_requests == 0
    if rid and msg_type != MessageType.ERROR:
        conn.send(Hello(rid=rid, versions=(1,)) if state is State.AWAIT_HELLO else Ping(rid=rid))
    conn.data_to_send()
    return conn


@pytest.mark.parametrize("v", VECTORS, ids=IDS)
def test_connection_yields_event(v: dict[str, Any]) -> None:
    *_, msg = _decode(v)
    if v["direction"] == "client->server":
        state = _first_state(CLIENT_MAY_SEND, v["type"])
        conn = _server_in(state)
    else:
        state = _first_state(SERVER_MAY_SEND, v["type"])
        conn = _client_in(state, v["rid"], v["type"])
    frame = _frame(v)
    # Split the frame in two reads: the connection must reassemble it.
    conn.receive_data(frame[:3], now=1.0)
    assert conn.next_event() is None
    conn.receive_data(frame[3:], now=1.0)
    event = conn.next_event()
    if isinstance(msg, Hello) and not set(msg.versions) & set(SUPPORTED_VERSIONS):
        # The one refusal among the vectors: the server answers with the next two vectors.
        assert event == ProtocolViolation(
            ErrorCode.UNSUPPORTED_VERSION, "no common version", msg.rid
        )
        by_name = {x["name"]: x for x in VECTORS}
        expected = _frame(by_name["error_unsupported_version"]) + _frame(
            by_name["close_unsupported_version"]
        )
        assert conn.data_to_send() == expected
        assert conn.closed
        return
    if v["type"] == MessageType.CLOSE:
        assert event == ConnectionTerminated(
            v["payload"]["code"], v["payload"]["reason"], by_peer=True
        )
        assert conn.closed
    else:
        assert event == msg
        assert not conn.closed
    assert conn.next_event() is None
    assert conn.data_to_send() == b""  # accepted: no ERROR, no CLOSE queued


# --------------------------------------------------------------------------- SPEC.md


SPEC = SPEC_FILE.read_text(encoding="utf-8")


def _table(header_start: str) -> list[list[str]]:
    """The body rows of the Markdown table whose header line starts with `header_start`."""
    lines = SPEC.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(header_start):
            rows = []
            for row in lines[i + 2 :]:
                if not row.startswith("|"):
                    break
                rows.append([c.strip().strip("`") for c in row.strip().strip("|").split("|")])
            assert rows, f"table {header_start!r} is empty"
            return rows
    raise AssertionError(f"SPEC.md has no table starting {header_start!r}")


def test_spec_message_table() -> None:
    rows = _table("| Type | Name |")
    found = {int(r[0]): r for r in rows}
    assert len(found) == len(rows), "a type number is listed twice"
    assert {n: r[1] for n, r in found.items()} == {int(t): t.name for t in MessageType}
    for n, r in found.items():
        direction = r[2]
        if n in CLIENT_TYPES and n in SERVER_TYPES:
            assert direction == "both", r
        elif n in CLIENT_TYPES:
            assert direction == "C→S", r
        else:
            assert direction == "S→C", r


@pytest.mark.parametrize(
    ("header", "table", "role"),
    [
        ("| Client sends |", CLIENT_MAY_SEND, "client"),
        ("| Server sends |", SERVER_MAY_SEND, "server"),
    ],
)
def test_spec_state_table(header: str, table: dict[State, frozenset[int]], role: str) -> None:
    rows = _table(header)
    types = CLIENT_TYPES if role == "client" else SERVER_TYPES
    assert {r[0] for r in rows} == {MessageType(t).name for t in types}
    for r in rows:
        t = int(MessageType[r[0]])
        for state, cell in zip(LIVE_STATES, r[1:4], strict=True):
            if t in table[state]:
                assert cell == "yes", (r, state)
            elif role == "client":
                code = refusal_code(state, t)
                assert cell == f"{int(code)} {code.name}", (r, state)
            else:
                assert cell == "no", (r, state)


def test_spec_error_codes() -> None:
    rows = _table("| Code | Error |")
    assert {int(r[0]): r[1] for r in rows} == {int(c): c.name for c in ErrorCode}
    assert len(rows) == len(ErrorCode)


def test_spec_close_codes() -> None:
    rows = _table("| Code | Close |")
    assert {int(r[0]): r[1] for r in rows} == {int(c): c.name for c in CloseCode}
    assert len(rows) == len(CloseCode)
    for r in rows:
        assert r[3] == ("yes" if CloseCode(int(r[0])).reconnect else "no"), r


def test_spec_limits_table() -> None:
    rows = _table("| Limits field |")
    by_name = {r[0]: r for r in rows}
    fields = {f.name: f.default for f in dataclasses.fields(Limits)}
    assert set(by_name) == set(fields)
    advertised = DEFAULT_LIMITS.advertised()
    for name, default in fields.items():
        r = by_name[name]
        assert r[1].split()[0].replace(",", "") == repr(default), r
        assert r[2] == ("yes" if name in advertised else "no"), r


def test_spec_contains_every_vector() -> None:
    flat = re.sub(r"\s+", "", SPEC)
    for v in VECTORS:
        assert f"`{v['name']}`" in SPEC, v["name"]
        assert v["hex"] in flat, v["name"]


# --------------------------------------------------------------------------- SPEC.md: social


def test_spec_update_kinds_table() -> None:
    rows = _table("| Kind | Name |")
    assert {int(r[0]): r[1] for r in rows} == {int(k): k.name for k in UpdateKind}


def test_spec_contact_events_table() -> None:
    rows = _table("| `event` | Meaning for the receiving user |")
    events = [r[0].strip('"') for r in rows]
    assert len(set(events)) == len(events)
    # the five events sent to the other party, and "changed" in the actor's own log
    # (server/services/contacts.py; protocol.social.CONTACT_EVENTS does not list it)
    assert set(events) == {*CONTACT_EVENTS, "changed"}


_HEADING = re.compile(r"^#{2,4} (\d+(?:\.\d+)*)\.? (.+)$")
_MSG_HEADING = re.compile(r"^([A-Z_]+) \((\d+)\), (C→S|S→C|both directions)$")
# the nested maps of the social layer and the heading of their field table
ENTRY_HEADINGS: dict[type, str] = {
    GroupMember: "Group member map",
    GroupSummary: "Group summary map",
    Marker: "Marker map",
    ConversationSummary: "Conversation summary map",
    PresenceEntry: "Presence entry map",
}


def _sections() -> dict[str, tuple[str, list[str]]]:
    """Heading number -> (heading title, the lines up to the next heading)."""
    out: dict[str, tuple[str, list[str]]] = {}
    current: list[str] = []
    for line in SPEC.splitlines():
        m = _HEADING.match(line)
        if m:
            current = []
            assert m.group(1) not in out, f"section {m.group(1)} appears twice"
            out[m.group(1)] = (m.group(2), current)
        else:
            current.append(line)
    return out


SECTIONS = _sections()


def _section_titled(title: str) -> tuple[str, list[str]]:
    found = [(n, body) for n, (t, body) in SECTIONS.items() if t == title]
    assert len(found) == 1, f"SPEC.md needs exactly one section titled {title!r}: {found}"
    return found[0]


def _field_rows(body: list[str]) -> list[list[str]] | None:
    for i, line in enumerate(body):
        if line.startswith("| Key | msgpack type | Req. | Constraints | Meaning |"):
            rows = []
            for row in body[i + 2 :]:
                if not row.startswith("|"):
                    break
                rows.append([c.strip() for c in row.strip().strip("|").split("|")])
            return rows
    return None


def _type_name(kind: Any) -> str:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        (kind,) = [a for a in typing.get_args(kind) if a is not type(None)]
        origin = typing.get_origin(kind)
    if origin is tuple:
        item = typing.get_args(kind)[0]
        if item is str:
            return "array of str"
        heading = ENTRY_HEADINGS[item]  # "Group member map" -> "array of group member map"
        return f"array of {heading[0].lower()}{heading[1:]}"
    return {
        int: "integer",
        str: "str",
        bool: "boolean",
        float: "float",
        ChatMessage: "message map (8.2)",
    }[kind]


def _check_field_table(what: str, cls: Any, body: list[str]) -> None:
    specs = cls._specs
    rows = _field_rows(body)
    if not specs:
        assert rows is None, f"{what}: has no fields but a field table"
        assert any("Empty payload `{}`" in line for line in body), what
        return
    assert rows is not None, f"{what}: no field table"
    assert [r[0] for r in rows] == [f"`{key}`" for _, key, *_ in specs], what
    for row, (name, key, kind, meta, required) in zip(rows, specs, strict=True):
        _, mtype, req, constraints, meaning = row
        where = f"{what}.{key}"
        assert mtype.startswith(_type_name(kind)), (where, mtype)
        default = next(f.default for f in dataclasses.fields(cls) if f.name == name)
        if required:
            assert req == "required", (where, req)
        elif default is None:
            assert req.startswith("optional"), (where, req)
        else:
            assert req.startswith("always sent"), (where, req)
        plain = constraints.replace(",", "")
        if "choices" in meta:
            assert constraints.startswith("one of "), (where, constraints)
            listed = re.findall(r'`"([^"`]*)"`', constraints)
            assert tuple(listed) == tuple(meta["choices"]), (where, constraints)
        elif "max" in meta:
            if "min" in meta:
                assert f"{meta['min']} .. {meta['max']} characters" in plain, (where, constraints)
            else:
                assert f"decoder cap {meta['max']} characters" in plain, (where, constraints)
        if "lo" in meta or "hi" in meta:
            assert f"{meta.get('lo', 0)} .. {meta['hi']}" in plain, (where, constraints)
        if "min_items" in meta:
            assert f"{meta['min_items']} .. {meta['max_items']} elements" in plain, where
        elif "max_items" in meta:
            assert f"at most {meta['max_items']} elements" in plain, (where, constraints)
        assert meaning, where


@pytest.mark.parametrize("cls", SOCIAL_CLASSES, ids=lambda c: c.__name__)
def test_spec_documents_every_social_message(cls: type[Message]) -> None:
    """Each social message has one section `NAME (type), C→S|S→C` whose field table matches
    the field metadata of protocol/social.py: keys in wire order, required/optional/always
    sent, types, lengths, choices, ranges and array sizes."""
    direction = "C→S" if cls.FROM_CLIENT else "S→C"
    number, body = _section_titled(f"{cls.TYPE.name} ({int(cls.TYPE)}), {direction}")
    assert int(number.split(".")[0]) in range(16, 24), number
    _check_field_table(cls.TYPE.name, cls, body)


@pytest.mark.parametrize("cls", list(ENTRY_HEADINGS), ids=lambda c: c.__name__)
def test_spec_documents_every_social_entry_map(cls: type) -> None:
    _, body = _section_titled(ENTRY_HEADINGS[cls])
    _check_field_table(cls.__name__, cls, body)


def test_spec_message_sections_are_unique() -> None:
    seen: dict[str, str] = {}
    for number, (title, _) in SECTIONS.items():
        m = _MSG_HEADING.match(title)
        if m:
            assert m.group(1) not in seen, (number, seen.get(m.group(1)))
            seen[m.group(1)] = number
            assert int(MessageType[m.group(1)]) == int(m.group(2)), title
    assert set(seen) == {t.name for t in MessageType}


def test_spec_cross_references_resolve() -> None:
    """Every `section N[.M]`, `sections N–M` and `(N.M)` reference names an existing heading,
    and the test vectors are section 28 (later sections, 29 on, are appended after it)."""
    tops = [n for n in SECTIONS if "." not in n]
    numbers = [str(i) for i in range(1, len(tops) + 1)]
    assert tops == numbers[: len(tops)], tops
    assert SECTIONS["28"][0] == "Test vectors"
    contents = re.findall(r"^(\d+)\. (.+)$", SPEC.split("\n---\n", 1)[0], re.M)
    assert [n for n, _ in contents] == tops
    for n, title in contents:  # the contents line may say more than the heading
        assert title.startswith(SECTIONS[n][0]), (n, title)
    refs: set[str] = set()
    refs |= set(re.findall(r"\bsections? (\d+(?:\.\d+)*)", SPEC))
    for a, b in re.findall(r"\bsections (\d+)[–-](\d+)", SPEC):
        refs |= {a, b}
    refs |= set(re.findall(r"\((\d+\.\d+(?:\.\d+)?)\)", SPEC))
    refs |= set(re.findall(r"\bsections? \d+(?:\.\d+)*(?:,| and) (\d+(?:\.\d+)*)", SPEC))
    missing = sorted(r for r in refs if r not in SECTIONS)
    assert not missing, missing


# --------------------------------------------------------------------------- SPEC.md: media


def _media_type_name(kind: Any) -> str:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        (kind,) = [a for a in typing.get_args(kind) if a is not type(None)]
        origin = typing.get_origin(kind)
    if origin is tuple:
        return "array of " + _media_type_name(typing.get_args(kind)[0])
    if origin is dict:
        return "map"
    return {int: "integer", str: "str", bool: "boolean", float: "float", bytes: "bin"}[kind]


def _check_media_table(what: str, cls: Any, body: list[str]) -> None:
    """Like the social tables: keys in wire order, required or not, types, bounds; a bin's
    bounds in bytes."""
    rows = _field_rows(body)
    assert rows is not None, f"{what}: no field table"
    fields = [f for f in dataclasses.fields(cls) if f.name != "rid"]
    assert [r[0] for r in rows] == [f"`{key}`" for _, key, *_ in cls._specs], what
    for row, (name, key, kind, meta, required) in zip(rows, cls._specs, strict=True):
        _, mtype, req, constraints, meaning = row
        where = f"{what}.{key}"
        assert mtype == _media_type_name(kind), (where, mtype)
        if required:
            assert req == "required", (where, req)
        else:
            default = next(f.default for f in fields if f.name == name)
            assert req.startswith("optional" if default is None else "always sent"), (where, req)
        plain = constraints.replace(",", "")
        if _media_type_name(kind) == "bin" and "max" in meta:
            assert f"{meta['max']} bytes" in plain, (where, constraints)
        elif "choices" in meta:
            assert re.findall(r'`"([^"`]*)"`', constraints) == list(meta["choices"]), where
        elif "max" in meta:
            assert f"decoder cap {meta['max']} characters" in plain, (where, constraints)
        if "min_items" in meta and meta["min_items"] == meta.get("max_items"):
            assert f"{meta['min_items']} elements" in plain, (where, constraints)
        assert meaning, where


@pytest.mark.parametrize("cls", MEDIA_CLASSES, ids=lambda c: c.__name__)
def test_spec_documents_every_media_message(cls: type[Message]) -> None:
    direction = "C→S" if cls.FROM_CLIENT else "S→C"
    number, body = _section_titled(f"{cls.TYPE.name} ({int(cls.TYPE)}), {direction}")
    assert number.startswith("27."), number
    _check_media_table(cls.TYPE.name, cls, body)


def test_spec_documents_send_media() -> None:
    """SEND's `media` (records.SendMedia): the first table of section 27.5."""
    _, body = _section_titled("Media messages")
    _check_media_table("SendMedia", SendMedia, body)


def test_spec_welcome_media_limits_are_the_defaults() -> None:
    from liaotian.server.media.limits import MediaLimits

    advertised = MediaLimits().advertised(DEFAULT_LIMITS.max_frame_size)
    rows = _table("| `limits.media` key |")
    assert [r[0] for r in rows] == list(advertised)
    for r in rows:
        assert r[1].split()[0] == repr(advertised[r[0]]), r
    by_name = {v["name"]: v for v in VECTORS}
    assert by_name["welcome_media"]["payload"]["limits"]["media"] == advertised
