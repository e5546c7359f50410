"""Conformance: the published test vectors and SPEC.md against liaotian.protocol.

For every vector in tests/vectors/protocol_v1.json: decoding the hex gives the stated type,
rid and payload; re-encoding the typed message gives the same bytes; a Connection of the
receiving role, in a state where the message is allowed, turns the bytes into that event.
Then SPEC.md's tables (message types, state table, error and close codes, limits) and its
vector section are parsed and compared with the code, so the two cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest
from liaotian.protocol import (
    DEFAULT_LIMITS,
    SUPPORTED_VERSIONS,
    Authenticated,
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
    Welcome,
    decode_message,
    unpack_body,
)
from liaotian.protocol.messages import CLIENT_TYPES, SERVER_TYPES
from liaotian.protocol.state import CLIENT_MAY_SEND, SERVER_MAY_SEND, refusal_code

ROOT = Path(__file__).resolve().parents[2]
VECTORS_FILE = ROOT / "tests" / "vectors" / "protocol_v1.json"
SPEC_FILE = ROOT / "SPEC.md"
VECTORS: list[dict[str, Any]] = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))
IDS = [v["name"] for v in VECTORS]
LIVE_STATES = (State.AWAIT_HELLO, State.CONNECTED, State.AUTHENTICATED)
SETUP_RID = 4_000_000_000  # never used by a vector


def _tagged(v: Any) -> Any:
    """A form that compares types strictly (1 != 1.0 != True) and lists == tuples."""
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
        "make_vectors", ROOT / "tests" / "vectors" / "make_vectors.py")
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
        conn.receive_data(Login(rid=SETUP_RID, username="u", password="p" * 8,
                                device="d").encode())
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
        conn.receive_data(Welcome(rid=SETUP_RID, version=1, server="t", time=0,
                                  heartbeat=30.0).encode())
        assert isinstance(conn.next_event(), Welcome)
    if state is State.AUTHENTICATED:
        conn.send(Login(rid=SETUP_RID, username="u", password="p" * 8, device="d"))
        conn.receive_data(Authenticated(rid=SETUP_RID, user="u", device="d", head=0,
                                        acked=0).encode())
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
        assert event == ProtocolViolation(ErrorCode.UNSUPPORTED_VERSION, "no common version",
                                          msg.rid)
        by_name = {x["name"]: x for x in VECTORS}
        expected = _frame(by_name["error_unsupported_version"]) + _frame(
            by_name["close_unsupported_version"])
        assert conn.data_to_send() == expected
        assert conn.closed
        return
    if v["type"] == MessageType.CLOSE:
        assert event == ConnectionTerminated(v["payload"]["code"], v["payload"]["reason"],
                                             by_peer=True)
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
            for row in lines[i + 2:]:
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


@pytest.mark.parametrize(("header", "table", "role"), [
    ("| Client sends |", CLIENT_MAY_SEND, "client"),
    ("| Server sends |", SERVER_MAY_SEND, "server"),
])
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
