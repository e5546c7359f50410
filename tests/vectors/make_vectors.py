"""Build the liaotian protocol v1 test vectors with liaotian.protocol's own encoders.

    python tests/vectors/make_vectors.py             # (re)write protocol_v1.json next to this file
    python tests/vectors/make_vectors.py --check     # exit 1 if protocol_v1.json is out of date
    python tests/vectors/make_vectors.py --markdown  # print the SPEC.md "Test vectors" entries

Every vector is an object {name, direction, type, rid, payload, hex}: `payload` is the JSON
form of the frame's msgpack payload map (a msgpack bin value is written {"$bin": "<hex>"})
and `hex` the complete frame (4-byte length prefix and body). All values are fixed, so the
output is deterministic.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import msgpack
from liaotian.protocol import (
    DEFAULT_LIMITS,
    Ack,
    Auth,
    Authenticated,
    ChatMessage,
    Close,
    CloseCode,
    Connection,
    DeviceInfo,
    DeviceList,
    DeviceRevoked,
    Error,
    ErrorCode,
    Hello,
    History,
    HistoryPage,
    ListDevices,
    LoggedOut,
    Login,
    Logout,
    Message,
    MessageType,
    Ping,
    Pong,
    Register,
    Registered,
    RevokeDevice,
    Role,
    Send,
    Sent,
    Sync,
    Update,
    UpdateKind,
    Updates,
    Welcome,
    encode_history_frame,
    encode_update,
    encode_updates_frame,
    unpack_body,
)
from liaotian.protocol import bots as B
from liaotian.protocol import nearby as N
from liaotian.protocol import shop as S
from liaotian.protocol import wallet as W
from liaotian.protocol.channels import (
    ChannelBan,
    ChannelComment,
    ChannelCreate,
    ChannelDelete,
    ChannelFetch,
    ChannelFind,
    ChannelFound,
    ChannelFoundEntry,
    ChannelHit,
    ChannelHits,
    ChannelInfo,
    ChannelJoin,
    ChannelLeave,
    ChannelLike,
    ChannelLikes,
    ChannelMemberEntry,
    ChannelMemberList,
    ChannelMembers,
    ChannelNews,
    ChannelPage,
    ChannelPin,
    ChannelPost,
    ChannelPosted,
    ChannelPostEntry,
    ChannelRead,
    ChannelSearch,
    ChannelSetRole,
    ChannelTransfer,
    ChannelUpdate,
    GetChannel,
)
from liaotian.protocol.frames import FrameReader
from liaotian.protocol.media import (
    BlobData,
    Download,
    UploadBegin,
    UploadCancel,
    UploadChunk,
    UploadDone,
    UploadFinish,
    UploadStatus,
)
from liaotian.protocol.messages import CLIENT_TYPES
from liaotian.protocol.records import SendMedia
from liaotian.protocol.social import (
    Block,
    ContactAccept,
    ContactCancel,
    ContactDecline,
    ContactList,
    ContactRemove,
    ContactRequest,
    ConversationList,
    ConversationSummary,
    GetGroup,
    GetPresence,
    GetPrivacy,
    GetProfile,
    GetReceipts,
    GroupAdd,
    GroupCreate,
    GroupInfo,
    GroupLeave,
    GroupList,
    GroupMember,
    GroupRemove,
    GroupSetRole,
    GroupSummary,
    GroupTransfer,
    GroupUpdate,
    ListContacts,
    ListConversations,
    ListGroups,
    Marker,
    Ok,
    Presence,
    PresenceEntry,
    PresenceList,
    Privacy,
    Profile,
    Read,
    Receipts,
    SetPrivacy,
    SetProfile,
    Typing,
    TypingNotice,
    Unblock,
)

OUT = Path(__file__).with_name("protocol_v1.json")

C2S = "client->server"
S2C = "server->client"

# Fixed values. The token has the shape of a real one (32 random bytes, base64url without
# padding: 43 characters) but is derived from a constant so the vectors never change.
TOKEN = "F-g2gviXW6B9r0px5SOAhy-wNOE-jyzgeVBdHtddvz8"
PASSWORD = "correct horse battery staple"
T0 = 1_700_000_000_000  # ms since the Unix epoch: 2023-11-14T22:13:20Z


def _msg(
    id: int,
    pos: int,
    sender: str,
    to: str,
    ts: int,
    cmid: str,
    text: str,
    meta: dict[str, Any] | None = None,
) -> ChatMessage:
    return ChatMessage(
        id=id, conv=7, pos=pos, sender=sender, to=to, ts=ts, cmid=cmid, text=text, meta=meta or {}
    )


BOB_41 = _msg(1001, 11, "bob", "alice", T0 + 1_000, "b-17", "hi alice")
ALICE_42 = _msg(1002, 12, "alice", "bob", T0 + 2_000, "c-0001", "hello bob", {"lang": "en"})
BOB_43 = _msg(1003, 13, "bob", "alice", T0 + 3_000, "b-18", "how are you?")
HIST_9 = _msg(995, 9, "alice", "bob", T0 - 60_000, "c-0000", "see you tomorrow")
HIST_10 = _msg(997, 10, "bob", "alice", T0 - 30_000, "b-16", "ok", {"reply_to": 9})

# The social layer: group 12 ("Trip"), created by alice with bob and carol; dave is added.
GROUP = 12
T1 = T0 + 10_000  # the group's creation


def _gmsg(
    id: int,
    pos: int,
    sender: str,
    ts: int,
    cmid: str,
    text: str,
    event: dict[str, Any] | None = None,
) -> ChatMessage:
    """A group timeline entry: "group" instead of "to"; events have empty text and cmid."""
    return ChatMessage(
        id=id,
        conv=GROUP,
        pos=pos,
        sender=sender,
        to="",
        ts=ts,
        cmid=cmid,
        text=text,
        group=GROUP,
        event=event,
    )


G_CREATED = _gmsg(
    1004,
    1,
    "alice",
    T1,
    "",
    "",
    {"type": "created", "name": "Trip", "users": ["alice", "bob", "carol"]},
)
G_ADDED = _gmsg(1005, 2, "alice", T1 + 1_000, "", "", {"type": "added", "users": ["dave"]})
G_TEXT = _gmsg(1006, 3, "alice", T1 + 2_000, "c-0002", "who is driving?")


# The wallet (SPEC.md 25): alice pays bob, sends a red packet into group 12, bob claims.
T2 = T1 + 60_000
PAY_501 = W.TransferEntry(
    id=501, sender="alice", to="bob", amount=30, code="pay", phase="posted", ts=T2, memo="lunch"
)
PACKET_502 = W.TransferEntry(
    id=502,
    sender="alice",
    to="*escrow",
    amount=100,
    code="red_packet",
    phase="pending",
    ts=T2 + 1_000,
    expires=T2 + 1_000 + 86_400_000,
    ref=1,
)
CLAIM_503 = W.TransferEntry(
    id=503,
    sender="*escrow",
    to="bob",
    amount=42,
    code="claim",
    phase="posted",
    ts=T2 + 2_000,
    ref=1,
)
# Bots (SPEC.md 26)
BOT_TOKEN = "Yb3t9Q0k8vJXr2mWc6LhTzA1sNd5pGfE4uHiKoR7wUe"
MENU = (B.CommandEntry(name="menu", description="choose a drink"), B.CommandEntry(name="help"))
BUTTONS = {"buttons": [[{"text": "Tea", "data": "tea"}, {"text": "Coffee", "data": "coffee"}]]}
AGAIN = {"buttons": [[{"text": "Again", "data": "again"}]]}
MENU_EDITED = ChatMessage(
    id=2001,
    conv=9,
    pos=2,
    sender="menubot",
    to="alice",
    ts=T2 + 9_500,
    cmid="m-0001",
    text="alice chose coffee",
    meta=AGAIN,
    edited=T2 + 9_900,
)

FCODE = W.ItemEntry(
    code="7QXK2M4RJH5WNB3D", kind="fcode", source="task:checkin", created=T2 + 3_000
)
# The shop (SPEC.md 30): beanery's flat white, alice's order of two, paid by transfer 601.
T3 = T2 + 600_000
FLAT_WHITE = S.ProductEntry(
    id=7, merchant="beanery", title="Flat white", description="oat milk", price=12, stock=48
)
ORDER_9 = S.OrderEntry(
    id=9,
    product=7,
    buyer="alice",
    merchant="beanery",
    qty=2,
    amount=24,
    state="placed",
    pending=601,
    created=T3,
    updated=T3,
    title="Flat white",
)
ORDER_601 = W.TransferEntry(
    id=601,
    sender="alice",
    to="beanery",
    amount=24,
    code="order",
    phase="pending",
    ts=T3,
    expires=T3 + 86_400_000,
    ref=9,
    memo="Flat white",
)
# Media (SPEC.md 27): alice uploads an 11-byte file, resumes a larger upload, sends the
# file to bob, receives an image from bob and downloads part of her file.
HELLO = b"hello world"
SHA = hashlib.sha256(HELLO).digest()
BIG = hashlib.sha256(b"\x00" * 100_000).digest()
IMAGE = hashlib.sha256(b"beach.jpg").digest()  # stand-ins: only their SHA-256s travel
THUMB = hashlib.sha256(b"beach.jpg thumbnail").digest()
AUDIO = hashlib.sha256(b"moon river.ogg").digest()
DAY_MS = 86_400_000
# WELCOME limits.media: the reference server's defaults with a 1 MiB frame
MEDIA_LIMITS = {
    "max_blob_size": 104_857_600,
    "min_chunk_size": 16_384,
    "max_chunk_size": 524_288,
    "max_chunks": 8192,
    "max_uploads": 4,
    "upload_bytes_per_day": 1_073_741_824,
    "download_bytes_per_day": 4_294_967_296,
    "max_download_chunk": 524_288,
    "upload_ttl": 86_400.0,
}
IMAGE_MSG = ChatMessage(
    id=1010,
    conv=7,
    pos=15,
    sender="bob",
    to="alice",
    ts=T0 + 7_000,
    cmid="b-19",
    text="the beach",
    media={
        "kind": "image",
        "blob": IMAGE,
        "size": 48_213,
        "type": "image/jpeg",
        "w": 1200,
        "h": 800,
        "thumb": {"blob": THUMB, "w": 320, "h": 213, "type": "image/jpeg"},
        "name": "beach.jpg",
    },
)


def _updates_frame(
    rid: int,
    updates: list[tuple[int, ChatMessage]],
    head: int,
    *,
    more: bool = False,
    resync: bool = False,
) -> bytes:
    """Build UPDATES the way a server fans out, and check it against the dataclass encoder."""
    frame: bytes = encode_updates_frame(
        rid,
        [encode_update(seq, UpdateKind.MESSAGE, m.encode()) for seq, m in updates],
        head,
        more=more,
        resync=resync,
    )
    typed = Updates(
        rid=rid,
        updates=tuple(Update(seq=s, kind=UpdateKind.MESSAGE, message=m) for s, m in updates),
        head=head,
        more=more,
        resync=resync,
    )
    assert frame == typed.encode(), "encode_updates_frame disagrees with Updates.encode"
    return frame


def _updates_raw(rid: int, updates: list[Update], head: int) -> bytes:
    """UPDATES with entries of any kind, built the fan-out way and checked like above."""
    frame: bytes = encode_updates_frame(
        rid,
        [
            encode_update(
                u.seq,
                u.kind,
                u.message.encode() if u.message is not None else msgpack.packb(u.data),
            )
            for u in updates
        ],
        head,
    )
    assert frame == Updates(rid=rid, updates=tuple(updates), head=head).encode()
    return frame


def _history_frame(rid: int, messages: list[ChatMessage], more: bool) -> bytes:
    frame: bytes = encode_history_frame(rid, [m.encode() for m in messages], more)
    assert frame == HistoryPage(rid=rid, messages=tuple(messages), more=more).encode()
    return frame


def _unsupported_version_frames() -> tuple[bytes, bytes]:
    """What a server Connection itself queues for a HELLO offering only version 2."""
    server = Connection(Role.SERVER)
    server.receive_data(Hello(rid=1, versions=(2,), client="future-client/9.0").encode())
    server.next_event()
    frames = FrameReader().feed(server.data_to_send())
    assert len(frames) == 2
    error, close = (len(b).to_bytes(4, "big") + b for b in frames)
    return error, close


def _frames() -> list[tuple[str, bytes]]:
    """(name, frame) in the order of a plausible session."""
    err_version, close_version = _unsupported_version_frames()

    def m(name: str, msg: Message) -> tuple[str, bytes]:
        return name, msg.encode()

    return [
        # connection 1: handshake, registration, first login of device "laptop"
        m("hello", Hello(rid=1, versions=(1,), client="liaotian-example/1.0")),
        m(
            "welcome",
            Welcome(
                rid=1,
                version=1,
                server="liaotian/0.1.0",
                time=T0,
                heartbeat=DEFAULT_LIMITS.heartbeat_interval,
                limits=DEFAULT_LIMITS.advertised(),
            ),
        ),
        m("register", Register(rid=2, username="alice", password=PASSWORD)),
        m("registered", Registered(rid=2, user="alice")),
        m("login", Login(rid=3, username="alice", password=PASSWORD, device="laptop")),
        m(
            "authenticated_login",
            Authenticated(rid=3, user="alice", device="laptop", head=0, acked=0, token=TOKEN),
        ),
        m(
            "error_bad_credentials",
            Error(
                rid=3, code=ErrorCode.BAD_CREDENTIALS, message=ErrorCode.BAD_CREDENTIALS.explanation
            ),
        ),
        m(
            "error_throttled",
            Error(
                rid=3,
                code=ErrorCode.THROTTLED,
                message=ErrorCode.THROTTLED.explanation,
                retry_after=42.5,
            ),
        ),
        # connection 2 (after HELLO/WELCOME as above): resume with the token
        m("auth", Auth(rid=2, token=TOKEN)),
        m(
            "authenticated_auth",
            Authenticated(rid=2, user="alice", device="laptop", head=41, acked=40),
        ),
        m("sync", Sync(rid=3, since=40, limit=100)),
        ("updates_sync_page", _updates_frame(3, [(41, BOB_41)], head=41)),
        m("send", Send(rid=4, to="bob", cmid="c-0001", text="hello bob", meta={"lang": "en"})),
        m("sent", Sent(rid=4, id=1002, conv=7, pos=12, ts=ALICE_42.ts, seq=42, cmid="c-0001")),
        m(
            "sent_duplicate",
            Sent(
                rid=5,
                id=1002,
                conv=7,
                pos=12,
                ts=ALICE_42.ts,
                seq=42,
                cmid="c-0001",
                duplicate=True,
            ),
        ),
        ("updates_push", _updates_frame(0, [(43, BOB_43)], head=43)),
        m("ack", Ack(rid=0, seq=43)),
        m(
            "error_invalid_cursor_ack",
            Error(
                rid=0, code=ErrorCode.INVALID_CURSOR, message=ErrorCode.INVALID_CURSOR.explanation
            ),
        ),
        ("updates_resync", _updates_frame(6, [], head=43, resync=True)),
        m("history", History(rid=7, with_user="bob", before=11, limit=2)),
        ("history_page", _history_frame(7, [HIST_9, HIST_10], more=True)),
        m("ping", Ping(rid=8)),
        m("pong", Pong(rid=8, time=T0 + 4_000)),
        m("list_devices", ListDevices(rid=9)),
        m(
            "device_list",
            DeviceList(
                rid=9,
                devices=(
                    DeviceInfo(
                        device="laptop",
                        created=T0 + 500,
                        last_seen=T0 + 4_000,
                        online=True,
                        acked=43,
                    ),
                    DeviceInfo(
                        device="phone",
                        created=T0 - 86_400_000,
                        last_seen=T0 - 3_600_000,
                        online=False,
                        acked=40,
                    ),
                ),
            ),
        ),
        m("revoke_device", RevokeDevice(rid=10, device="phone")),
        m("device_revoked", DeviceRevoked(rid=10, device="phone")),
        m(
            "error_rate_limited",
            Error(
                rid=11,
                code=ErrorCode.RATE_LIMITED,
                message=ErrorCode.RATE_LIMITED.explanation,
                retry_after=1.0,
            ),
        ),
        m("logout", Logout(rid=12)),
        m("logged_out", LoggedOut(rid=12)),
        m("close_logged_out", Close(rid=0, code=CloseCode.LOGGED_OUT, reason="logged out")),
        m(
            "close_going_away",
            Close(rid=0, code=CloseCode.GOING_AWAY, reason="server shutting down"),
        ),
        m("close_normal", Close(rid=0, code=CloseCode.NORMAL)),
        # a HELLO offering only version 2, and what the server Connection answers
        m("hello_unsupported", Hello(rid=1, versions=(2,), client="future-client/9.0")),
        ("error_unsupported_version", err_version),
        ("close_unsupported_version", close_version),
        # connection 3 (after HELLO/WELCOME/AUTH as above): the social layer.
        # Groups (SPEC.md 17): alice creates group 12 with bob and carol, adds dave, writes.
        m("group_create", GroupCreate(rid=20, name="Trip", members=("bob", "carol"))),
        m(
            "group_info",
            GroupInfo(
                rid=20,
                group=GROUP,
                name="Trip",
                topic="",
                owner="alice",
                created=T1,
                pos=1,
                members=(
                    GroupMember(user="alice", role="owner", joined=T1),
                    GroupMember(user="bob", role="member", joined=T1),
                    GroupMember(user="carol", role="member", joined=T1),
                ),
            ),
        ),
        m("group_add", GroupAdd(rid=21, group=GROUP, users=("dave",))),
        m("ok_pos", Ok(rid=21, pos=2)),
        ("updates_group_event", _updates_frame(0, [(44, G_ADDED)], head=44)),
        m("send_group", Send(rid=22, to="", group=GROUP, cmid="c-0002", text="who is driving?")),
        m(
            "sent_group",
            Sent(rid=22, id=1006, conv=GROUP, pos=3, ts=G_TEXT.ts, seq=45, cmid="c-0002"),
        ),
        m("history_group", History(rid=23, with_user="", group=GROUP, after=0, limit=3)),
        ("history_page_group", _history_frame(23, [G_CREATED, G_ADDED, G_TEXT], more=False)),
        m("get_group", GetGroup(rid=24, group=GROUP)),
        # Receipts and read state (SPEC.md 18): alice reads the direct conversation 7 up to
        # pos 13; bob's read marker for alice's message 12 arrives as an update of kind 2.
        m("read", Read(rid=25, conv=7, pos=13)),
        m("ok", Ok(rid=25)),
        (
            "updates_read",
            _updates_raw(
                0,
                [Update(seq=46, kind=UpdateKind.READ, data={"conv": 7, "user": "bob", "pos": 12})],
                head=46,
            ),
        ),
        m("get_receipts", GetReceipts(rid=26, conv=GROUP)),
        m(
            "receipts",
            Receipts(
                rid=26,
                conv=GROUP,
                read=(
                    Marker(user="bob", pos=3),
                    Marker(user="carol", pos=2),
                    Marker(user="dave", pos=0),
                ),
                delivered=(
                    Marker(user="bob", pos=3),
                    Marker(user="carol", pos=3),
                    Marker(user="dave", pos=2),
                ),
            ),
        ),
        # The chat list (SPEC.md 19)
        m("list_conversations", ListConversations(rid=27, limit=2)),
        m(
            "conversation_list",
            ConversationList(
                rid=27,
                more=True,
                conversations=(
                    ConversationSummary(
                        conv=GROUP,
                        kind="group",
                        name="Trip",
                        ts=G_TEXT.ts,
                        unread=0,
                        read=0,
                        last=G_TEXT,
                        group=GROUP,
                    ),
                    ConversationSummary(
                        conv=7,
                        kind="direct",
                        name="bob",
                        ts=BOB_43.ts,
                        unread=0,
                        read=13,
                        last=BOB_43,
                        peer="bob",
                    ),
                ),
            ),
        ),
        # Typing (SPEC.md 20): one-way, rid 0
        m("typing", Typing(rid=0, typing=True, to="bob")),
        m("typing_notice", TypingNotice(rid=0, user="bob", typing=True, ttl=6.0)),
        m("typing_group", Typing(rid=0, typing=False, group=GROUP)),
        # Group administration: a topic, bob becomes admin, dave leaves the group, bob becomes
        # the owner (alice becomes an admin), then alice lists her groups and leaves.
        m("group_update", GroupUpdate(rid=28, group=GROUP, topic="Lisbon, May 3-7")),
        m("group_set_role", GroupSetRole(rid=29, group=GROUP, user="bob", role="admin")),
        m("group_remove", GroupRemove(rid=30, group=GROUP, user="dave")),
        m("group_transfer", GroupTransfer(rid=31, group=GROUP, user="bob")),
        m("list_groups", ListGroups(rid=32)),
        m(
            "group_list",
            GroupList(
                rid=32,
                groups=(
                    GroupSummary(
                        group=GROUP, name="Trip", topic="Lisbon, May 3-7", role="admin", members=3
                    ),
                ),
            ),
        ),
        m("list_groups_page", ListGroups(rid=47, limit=1, after=GROUP - 1)),
        m(
            "group_list_more",
            GroupList(
                rid=47,
                more=True,
                groups=(
                    GroupSummary(
                        group=GROUP, name="Trip", topic="Lisbon, May 3-7", role="admin", members=3
                    ),
                ),
            ),
        ),
        m("group_leave", GroupLeave(rid=33, group=GROUP)),
        # Presence (SPEC.md 21)
        m("presence", Presence(rid=0, user="bob", online=False, last_seen=T0 + 60_000)),
        m("get_presence", GetPresence(rid=34, users=("bob", "carol"))),
        m(
            "presence_list",
            PresenceList(
                rid=34,
                presence=(
                    PresenceEntry(user="bob", online=False, last_seen=T0 + 60_000),
                    PresenceEntry(user="carol", online=True, last_seen=T0 - 7_200_000),
                ),
            ),
        ),
        # Contacts and blocking (SPEC.md 22)
        m("contact_request", ContactRequest(rid=35, user="carol")),
        (
            "updates_contact",
            _updates_raw(
                0,
                [
                    Update(
                        seq=47, kind=UpdateKind.CONTACT, data={"event": "accepted", "user": "carol"}
                    )
                ],
                head=47,
            ),
        ),
        m("contact_accept", ContactAccept(rid=36, user="dave")),
        m("contact_decline", ContactDecline(rid=37, user="grace")),
        m("contact_cancel", ContactCancel(rid=38, user="erin")),
        m("contact_remove", ContactRemove(rid=39, user="frank")),
        m("block", Block(rid=40, user="mallory")),
        m("unblock", Unblock(rid=41, user="oscar")),
        m("list_contacts", ListContacts(rid=42)),
        m(
            "contact_list",
            ContactList(
                rid=42,
                contacts=("bob", "carol", "dave"),
                incoming=("heidi",),
                outgoing=("ivan",),
                blocked=("mallory",),
            ),
        ),
        # Profiles and privacy (SPEC.md 23)
        m("set_profile", SetProfile(rid=43, display_name="Alice", status="on holiday")),
        m("get_profile", GetProfile(rid=44, user="bob")),
        m("profile", Profile(rid=44, user="bob", display_name="Bob B.", status="")),
        m("set_privacy", SetPrivacy(rid=45, presence="nobody")),
        m("set_privacy_groups", SetPrivacy(rid=48, groups="nobody")),
        m("set_privacy_receipts", SetPrivacy(rid=49, receipts="nobody")),
        m("get_privacy", GetPrivacy(rid=46)),
        m(
            "privacy",
            Privacy(
                rid=46,
                presence="nobody",
                profile="everyone",
                messages="everyone",
                groups="contacts",
                receipts="nobody",
            ),
        ),
        # Errors of the social layer, each answering some request with that rid
        m(
            "error_not_allowed",
            Error(rid=50, code=ErrorCode.NOT_ALLOWED, message=ErrorCode.NOT_ALLOWED.explanation),
        ),
        m(
            "error_not_member",
            Error(rid=51, code=ErrorCode.NOT_MEMBER, message=ErrorCode.NOT_MEMBER.explanation),
        ),
        m(
            "error_forbidden",
            Error(rid=52, code=ErrorCode.FORBIDDEN, message=ErrorCode.FORBIDDEN.explanation),
        ),
        # Channels (SPEC.md 24)
        m(
            "channel_create",
            ChannelCreate(
                rid=60, name="xiaomi", about="the forum", rules="be kind", open=False, slow_mode=30
            ),
        ),
        m(
            "channel_info",
            ChannelInfo(
                rid=60,
                channel=12,
                name="xiaomi",
                about="the forum",
                rules="be kind",
                owner="alice",
                created=T0,
                open=False,
                members_post=False,
                slow_mode=30,
                members=1,
                pos=0,
                pins=(),
                role="owner",
                read=0,
                invite="Zm9ydW0tMTItc2VjcmV0",
            ),
        ),
        m("get_channel", GetChannel(rid=61, channel=12)),
        m("channel_join", ChannelJoin(rid=62, channel=12, invite="Zm9ydW0tMTItc2VjcmV0")),
        m("channel_leave", ChannelLeave(rid=63, channel=12)),
        m("channel_update", ChannelUpdate(rid=64, channel=12, members_post=True, new_invite=True)),
        m("channel_set_role", ChannelSetRole(rid=65, channel=12, user="bob", role="admin")),
        m("channel_ban", ChannelBan(rid=66, channel=12, user="mallory")),
        m(
            "channel_post",
            ChannelPost(rid=67, channel=12, cmid="01HF7Z-post-1", text="Welcome to the forum"),
        ),
        m("channel_posted", ChannelPosted(rid=67, channel=12, pos=1, n=0, id=1, ts=T0 + 1000)),
        m("channel_comment", ChannelComment(rid=68, channel=12, post=1, text="Glad to be here")),
        m("channel_like", ChannelLike(rid=69, channel=12, post=1)),
        m("channel_likes", ChannelLikes(rid=69, channel=12, post=1, likes=1)),
        m("channel_pin", ChannelPin(rid=70, channel=12, post=1)),
        m("channel_delete", ChannelDelete(rid=71, channel=12, post=1, n=1)),
        m("channel_read", ChannelRead(rid=72, channel=12, pos=1)),
        m("channel_fetch", ChannelFetch(rid=73, channel=12, after=0, limit=50)),
        m(
            "channel_page",
            ChannelPage(
                rid=73,
                channel=12,
                posts=(
                    ChannelPostEntry(
                        pos=1,
                        id=1,
                        author="alice",
                        ts=T0 + 1000,
                        text="Welcome to the forum",
                        likes=1,
                        comments=1,
                        liked=True,
                    ),
                ),
            ),
        ),
        m("channel_search", ChannelSearch(rid=74, channel=12, query="forum")),
        m(
            "channel_hits",
            ChannelHits(
                rid=74,
                channel=12,
                hits=(
                    ChannelHit(
                        post=1, n=0, id=1, author="alice", ts=T0 + 1000, text="Welcome to the forum"
                    ),
                ),
            ),
        ),
        m("channel_news", ChannelNews(rid=0, channel=12, pos=1)),
        m(
            "error_slow_mode",
            Error(
                rid=75,
                code=ErrorCode.SLOW_MODE,
                message=ErrorCode.SLOW_MODE.explanation,
                retry_after=12.5,
            ),
        ),
        m("channel_transfer", ChannelTransfer(rid=76, channel=12, user="bob")),
        m("channel_members", ChannelMembers(rid=77, channel=12, limit=2)),
        m(
            "channel_member_list",
            ChannelMemberList(
                rid=77,
                channel=12,
                members=(
                    ChannelMemberEntry(user="alice", role="admin"),
                    ChannelMemberEntry(user="bob", role="owner"),
                ),
                next=2,
            ),
        ),
        m("channel_find", ChannelFind(rid=78, name="forum")),
        m(
            "channel_found",
            ChannelFound(
                rid=78,
                channels=(
                    ChannelFoundEntry(channel=12, name="forum", about="all things", members=2),
                ),
            ),
        ),
        # The wallet (SPEC.md 25), on connection 3: alice's balance; she pays bob; her
        # devices see the change as an update of kind 4 WALLET; a red packet of 100 coins
        # in three random shares into group 12, of which bob claims one; the history; the
        # daily check-in task and the item it granted, given to bob.
        m("get_wallet", W.GetWallet(rid=60)),
        m("wallet", W.Wallet(rid=60, balance=1000, pending_out=0, pending_in=0)),
        m("pay", W.Pay(rid=61, to="bob", amount=30, key="p-0001", memo="lunch")),
        m(
            "paid",
            W.Paid(
                rid=61, transfer=PAY_501, conv=7, pos=14, balance=970, pending_out=0, pending_in=0
            ),
        ),
        m(
            "paid_duplicate",
            W.Paid(
                rid=71,
                transfer=PAY_501,
                conv=7,
                pos=14,
                balance=970,
                pending_out=0,
                pending_in=0,
                duplicate=True,
            ),
        ),
        (
            "updates_wallet",
            _updates_raw(
                0,
                [
                    Update(
                        seq=48,
                        kind=UpdateKind.WALLET,
                        data={
                            "event": "transfer",
                            "transfer": PAY_501.to_wire(),
                            "balance": 970,
                            "pending_out": 0,
                            "pending_in": 0,
                        },
                    )
                ],
                head=48,
            ),
        ),
        m(
            "red_packet_send",
            W.RedPacketSend(
                rid=62,
                to="",
                group=GROUP,
                amount=100,
                count=3,
                key="rp-0001",
                memo="gong xi fa cai",
            ),
        ),
        m(
            "red_packet_sent",
            W.RedPacketSent(
                rid=62,
                packet=1,
                conv=GROUP,
                pos=4,
                expires=T2 + 1_000 + 86_400_000,
                transfer=PACKET_502,
                balance=970,
                pending_out=100,
                pending_in=0,
            ),
        ),
        m("red_packet_claim", W.RedPacketClaim(rid=63, packet=1)),
        m(
            "red_packet_claimed",
            W.RedPacketClaimed(rid=63, packet=1, amount=42, transfer=503, left=2),
        ),
        m("get_red_packet", W.GetRedPacket(rid=64, packet=1)),
        m(
            "red_packet",
            W.RedPacket(
                rid=64,
                packet=1,
                sender="alice",
                conv=GROUP,
                amount=100,
                count=3,
                split="random",
                expires=T2 + 1_000 + 86_400_000,
                state="open",
                claims=(W.ClaimEntry(user="bob", amount=42),),
                memo="gong xi fa cai",
            ),
        ),
        m("list_transfers", W.ListTransfers(rid=65, limit=2)),
        m("transfer_list", W.TransferList(rid=65, transfers=(PACKET_502, PAY_501), more=True)),
        m("check_in", W.CheckIn(rid=66, key="ci-20231114")),
        m(
            "checked_in",
            W.CheckedIn(
                rid=66,
                tasks=(W.TaskDone(task="checkin", reward=10, transfer=504, item=FCODE.code),),
                balance=980,
                pending_out=100,
                pending_in=0,
            ),
        ),
        m("list_tasks", W.ListTasks(rid=67)),
        m(
            "task_list",
            W.TaskList(
                rid=67,
                tasks=(
                    W.TaskEntry(
                        name="checkin",
                        trigger="checkin",
                        reward=10,
                        period=86_400_000,
                        cap=1,
                        done=1,
                        item="fcode",
                    ),
                    W.TaskEntry(
                        name="first_message",
                        trigger="message",
                        reward=5,
                        period=86_400_000,
                        cap=1,
                        done=0,
                    ),
                ),
            ),
        ),
        m("list_items", W.ListItems(rid=68)),
        m("item_list", W.ItemList(rid=68, items=(FCODE,))),
        m("item_gift", W.ItemGift(rid=69, code=FCODE.code, to="bob", key="g-0001")),
        m("item_redeem", W.ItemRedeem(rid=70, code="M2PA6YQ3TC7VKD4H")),
        m("item_done", W.ItemDone(rid=69, item=FCODE)),
        m("set_privacy_coins", SetPrivacy(rid=72, coins="everyone")),
        m(
            "register_invite",
            Register(rid=2, username="dave", password=PASSWORD, invite="Q4TWZ7HK2PMA6NXC"),
        ),
        m(
            "error_insufficient_funds",
            Error(rid=73, code=ErrorCode.INSUFFICIENT_FUNDS, message="available 880, needed 5000"),
        ),
        m(
            "error_idempotency_mismatch",
            Error(
                rid=74,
                code=ErrorCode.IDEMPOTENCY_MISMATCH,
                message=ErrorCode.IDEMPOTENCY_MISMATCH.explanation,
            ),
        ),
        m(
            "error_packet_empty",
            Error(rid=75, code=ErrorCode.PACKET_EMPTY, message=ErrorCode.PACKET_EMPTY.explanation),
        ),
        # Bots (SPEC.md 26), in alice's session: she creates menubot and lists her bots;
        # the bot (its own connection) declares its commands and sends a message with
        # buttons into their direct conversation 9; alice presses one; the bot gets the
        # callback, answers it and edits the message; alice rotates the token, lets the
        # bots of group 12 see everything, reads the bot's profile and deletes it.
        m("bot_create", B.BotCreate(rid=80, name="menubot")),
        m(
            "bot_info",
            B.BotInfo(rid=80, name="menubot", owner="alice", created=T2 + 9_000, token=BOT_TOKEN),
        ),
        m("list_bots", B.ListBots(rid=81)),
        m(
            "bot_list",
            B.BotList(
                rid=81, bots=(B.BotEntry(name="menubot", created=T2 + 9_000, commands=MENU),)
            ),
        ),
        m("set_commands", B.SetCommands(rid=2, commands=MENU)),
        m("get_commands", B.GetCommands(rid=82, bot="menubot")),
        m("command_list", B.CommandList(rid=82, bot="menubot", commands=MENU)),
        m(
            "send_buttons",
            Send(rid=3, to="alice", cmid="m-0001", text="tea or coffee?", meta=BUTTONS),
        ),
        m("press", B.Press(rid=83, conv=9, pos=2, data="coffee")),
        m("pressed", B.Pressed(rid=83, callback=4242)),
        (
            "updates_callback",
            _updates_raw(
                0,
                [
                    Update(
                        seq=3,
                        kind=UpdateKind.CALLBACK,
                        data={
                            "callback": 4242,
                            "from": "alice",
                            "conv": 9,
                            "pos": 2,
                            "id": 2001,
                            "data": "coffee",
                        },
                    )
                ],
                head=3,
            ),
        ),
        m("answer_callback", B.AnswerCallback(rid=4, callback=4242, text="one coffee coming")),
        (
            "updates_callback_answer",
            _updates_raw(
                0,
                [
                    Update(
                        seq=52,
                        kind=UpdateKind.CALLBACK_ANSWER,
                        data={
                            "callback": 4242,
                            "bot": "menubot",
                            "conv": 9,
                            "pos": 2,
                            "text": "one coffee coming",
                            "alert": False,
                        },
                    )
                ],
                head=52,
            ),
        ),
        m(
            "bot_edit",
            B.BotEdit(rid=5, conv=9, pos=2, text="alice chose coffee", meta=AGAIN),
        ),
        (
            "updates_message_edited",
            _updates_raw(
                0,
                [
                    Update(
                        seq=53,
                        kind=UpdateKind.MESSAGE_EDITED,
                        data={
                            "conv": 9,
                            "pos": 2,
                            "id": 2001,
                            "from": "menubot",
                            "text": "alice chose coffee",
                            "meta": AGAIN,
                            "edited": T2 + 9_900,
                        },
                    )
                ],
                head=53,
            ),
        ),
        # the edit is stored: history shows the message as edited, with `edited`
        ("history_page_edited", _history_frame(89, [MENU_EDITED], more=False)),
        # after a restart the bot asks which presses still wait for its answer
        m("pending_callbacks", B.PendingCallbacks(rid=6, limit=100)),
        m(
            "callback_list",
            B.CallbackList(
                rid=6,
                callbacks=(
                    B.CallbackEntry(
                        callback=4243, sender="bob", conv=12, pos=5, id=2002, data="tea", group=12
                    ),
                ),
                more=False,
            ),
        ),
        m("bot_token", B.BotToken(rid=84, name="menubot")),
        m("group_bots", B.GroupBots(rid=85, group=GROUP, see_all=True)),
        m(
            "profile_bot",
            Profile(rid=86, user="menubot", display_name="", status="", bot=True),
        ),
        m("bot_delete", B.BotDelete(rid=87, name="menubot")),
        m(
            "error_no_such_button",
            Error(
                rid=88,
                code=ErrorCode.NO_SUCH_BUTTON,
                message=ErrorCode.NO_SUCH_BUTTON.explanation,
            ),
        ),
        # connection 4 (after HELLO/WELCOME/AUTH): media (SPEC.md 27). A server with media
        # advertises its media limits in WELCOME.
        m(
            "welcome_media",
            Welcome(
                rid=1,
                version=1,
                server="liaotian/0.1.0",
                time=T0,
                heartbeat=DEFAULT_LIMITS.heartbeat_interval,
                limits={**DEFAULT_LIMITS.advertised(), "media": MEDIA_LIMITS},
            ),
        ),
        # an 11-byte file in one chunk (the last chunk may be shorter than chunk_size)
        m(
            "upload_begin",
            UploadBegin(
                rid=60,
                size=len(HELLO),
                sha256=SHA,
                media_type="text/plain",
                chunk_size=16_384,
                name="hello.txt",
            ),
        ),
        m(
            "upload_status",
            UploadStatus(
                rid=60,
                upload=7,
                size=len(HELLO),
                chunk_size=16_384,
                held=(),
                expires=T0 + 8_000 + DAY_MS,
            ),
        ),
        m("upload_chunk", UploadChunk(rid=61, upload=7, offset=0, data=HELLO)),
        m("ok_chunk", Ok(rid=61)),
        m("upload_finish", UploadFinish(rid=62, upload=7)),
        m("upload_done", UploadDone(rid=62, blob=SHA, size=len(HELLO), media_type="text/plain")),
        # resuming an upload begun on an earlier connection: its first three chunks are held
        m(
            "upload_begin_resume",
            UploadBegin(
                rid=63,
                size=100_000,
                sha256=BIG,
                media_type="application/octet-stream",
                chunk_size=16_384,
                name="zeros.bin",
            ),
        ),
        m(
            "upload_status_resume",
            UploadStatus(
                rid=63,
                upload=5,
                size=100_000,
                chunk_size=16_384,
                held=(0, 49_152),
                expires=T0 + 9_000 + DAY_MS,
            ),
        ),
        m("upload_cancel", UploadCancel(rid=64, upload=5)),
        # the file to bob, as a message with a caption
        m(
            "send_file",
            Send(
                rid=65,
                to="bob",
                cmid="c-0003",
                text="the notes",
                media=SendMedia(kind="file", blob=SHA, name="hello.txt"),
            ),
        ),
        # a song track with a clip and a cover image
        m(
            "send_track",
            Send(
                rid=68,
                to="bob",
                cmid="c-0004",
                text="",
                media=SendMedia(
                    kind="track", blob=AUDIO, title="Moon River", clip=(30_000, 60_000), cover=IMAGE
                ),
            ),
        ),
        # bob's photo arrives: the server's media map, with its thumbnail
        ("updates_media", _updates_frame(0, [(50, IMAGE_MSG)], head=50)),
        m("download", Download(rid=66, blob=SHA, offset=6, length=524_288)),
        m("blob_data", BlobData(rid=66, blob=SHA, offset=6, size=len(HELLO), data=b"world")),
        m(
            "error_hash_mismatch",
            Error(
                rid=62, code=ErrorCode.HASH_MISMATCH, message=ErrorCode.HASH_MISMATCH.explanation
            ),
        ),
        m(
            "error_unknown_blob",
            Error(rid=67, code=ErrorCode.UNKNOWN_BLOB, message=ErrorCode.UNKNOWN_BLOB.explanation),
        ),
        # People and merchants nearby (SPEC.md 29), on connection 3: alice shares her
        # position (People's Square, Shanghai, in microdegrees) for an hour, finds bob
        # within 500 m and a merchant within 1 km, says hello to bob, stops.
        m("nearby_share", N.NearbyShare(rid=80, lat=31_230_400, lon=121_473_700, ttl=3600)),
        m(
            "nearby_shared",
            N.NearbyShared(rid=80, cell="89309959d73ffff", expires=1_700_003_600_000),
        ),
        m(
            "nearby_query",
            N.NearbyQuery(rid=81, lat=31_230_400, lon=121_473_700, radius=5000, limit=20),
        ),
        m(
            "nearby_list",
            N.NearbyList(
                rid=81,
                entries=(N.NearbyEntry(user="bob", name="Bob B.", within=500, hello=True),),
            ),
        ),
        m(
            "nearby_query_merchants",
            N.NearbyQuery(
                rid=82, lat=31_230_400, lon=121_473_700, kind="merchants", category="coffee"
            ),
        ),
        m(
            "nearby_list_merchants",
            N.NearbyList(
                rid=82,
                entries=(
                    N.NearbyEntry(
                        user="beanery",
                        name="The Beanery",
                        within=1000,
                        hello=True,
                        category="coffee",
                        hours="8-20",
                        lat=31_233_000,
                        lon=121_476_000,
                    ),
                ),
                next=(1000 << 40) | 9,
            ),
        ),
        m("nearby_hello", N.NearbyHello(rid=83, user="bob", note="hi from the square")),
        m("nearby_stop", N.NearbyStop(rid=84)),
        m("set_privacy_nearby", SetPrivacy(rid=85, nearby="nobody")),
        m(
            "merchant_set",
            N.MerchantSet(
                rid=86,
                name="The Beanery",
                category="coffee",
                lat=31_233_000,
                lon=121_476_000,
                hours="8-20",
            ),
        ),
        m("get_merchant", N.GetMerchant(rid=87, user="beanery")),
        m(
            "merchant",
            N.Merchant(
                rid=87,
                user="beanery",
                name="The Beanery",
                category="coffee",
                hours="8-20",
                lat=31_233_000,
                lon=121_476_000,
            ),
        ),
        m(
            "error_implausible_move",
            Error(rid=88, code=ErrorCode.IMPLAUSIBLE_MOVE, message="moved 1068 km in 60 s"),
        ),
        m(
            "error_not_merchant",
            Error(rid=86, code=ErrorCode.NOT_MERCHANT, message=ErrorCode.NOT_MERCHANT.explanation),
        ),
        m(
            "error_not_nearby",
            Error(rid=83, code=ErrorCode.NOT_NEARBY, message=ErrorCode.NOT_NEARBY.explanation),
        ),
        # The shop (SPEC.md 30), on connection 3: beanery (a merchant) adds a product; alice
        # lists its catalogue, sends the card to bob, orders two (the coins are held by
        # transfer 601), beanery lists its orders, accepts (holding them by 603 until the
        # fulfilment deadline) and fulfils (posting 603).
        m(
            "product_add",
            S.ProductAdd(
                rid=90, title="Flat white", price=12, stock=50, description="oat milk", key="a-1"
            ),
        ),
        m("product_info", S.ProductInfo(rid=90, product=FLAT_WHITE)),
        m("product_stock", S.ProductStock(rid=91, product=7, stock=50)),
        m("list_products", S.ListProducts(rid=92, merchant="beanery")),
        m("product_list", S.ProductList(rid=92, products=(FLAT_WHITE,))),
        m("get_product", S.GetProduct(rid=93, product=7)),
        m("product_card", S.ProductCard(rid=94, product=7, to="bob")),
        m("order_place", S.OrderPlace(rid=95, product=7, key="o-0001", qty=2)),
        m("order_info", S.OrderInfo(rid=95, order=ORDER_9, transfer=ORDER_601)),
        m("list_orders", S.ListOrders(rid=96, merchant=True)),
        m("order_list", S.OrderList(rid=96, orders=(ORDER_9,))),
        m("order_step", S.OrderStep(rid=97, order=9, step="accept", key="s-1")),
        # accepting holds the coins until the fulfilment deadline (7 days): 601 voided (602)
        # and the same amount held again by 603 in the accept's commit (SPEC.md 30.2)
        m(
            "order_info_accepted",
            S.OrderInfo(
                rid=97,
                order=S.OrderEntry(
                    id=9,
                    product=7,
                    buyer="alice",
                    merchant="beanery",
                    qty=2,
                    amount=24,
                    state="accepted",
                    pending=603,
                    created=T3,
                    updated=T3 + 30_000,
                    title="Flat white",
                ),
                transfer=W.TransferEntry(
                    id=603,
                    sender="alice",
                    to="beanery",
                    amount=24,
                    code="order",
                    phase="pending",
                    ts=T3 + 30_000,
                    expires=T3 + 30_000 + 7 * 86_400_000,
                    ref=9,
                    memo="Flat white",
                ),
            ),
        ),
        m(
            "order_info_fulfilled",
            S.OrderInfo(
                rid=98,
                order=S.OrderEntry(
                    id=9,
                    product=7,
                    buyer="alice",
                    merchant="beanery",
                    qty=2,
                    amount=24,
                    state="fulfilled",
                    pending=603,
                    created=T3,
                    updated=T3 + 60_000,
                    title="Flat white",
                ),
                transfer=W.TransferEntry(
                    id=604,
                    sender="alice",
                    to="beanery",
                    amount=24,
                    code="order",
                    phase="post",
                    ts=T3 + 60_000,
                    pending_id=603,
                    ref=9,
                ),
            ),
        ),
        m(
            "error_out_of_stock",
            Error(rid=99, code=ErrorCode.OUT_OF_STOCK, message="0 left", data={"stock": 0}),
        ),
        m(
            "error_unknown_order",
            Error(
                rid=100, code=ErrorCode.UNKNOWN_ORDER, message=ErrorCode.UNKNOWN_ORDER.explanation
            ),
        ),
    ]


# Which side sends each vector (CLOSE is the one type both sides send).
_CLIENT_CLOSES = {"close_normal"}


def _jsonable(v: Any) -> Any:
    if isinstance(v, bytes):
        return {"$bin": v.hex()}
    if isinstance(v, dict):
        assert all(type(k) is str for k in v), v
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    assert v is None or type(v) in (bool, int, float, str), f"not JSON-representable: {v!r}"
    return v


def build() -> list[dict[str, Any]]:
    out = []
    for name, frame in _frames():
        (body,) = FrameReader().feed(frame)
        assert len(body) + 4 == len(frame)
        msg_type, rid, payload = unpack_body(body)
        if msg_type == MessageType.CLOSE:
            direction = C2S if name in _CLIENT_CLOSES else S2C
        else:
            direction = C2S if msg_type in CLIENT_TYPES else S2C
        out.append(
            {
                "name": name,
                "direction": direction,
                "type": msg_type,
                "rid": rid,
                "payload": _jsonable(payload),
                "hex": frame.hex(),
            }
        )
    names = [v["name"] for v in out]
    assert len(set(names)) == len(names), "vector names must be unique"
    assert {v["type"] for v in out} == {int(t) for t in MessageType}, "a type has no vector"
    return out


def render_json(vectors: list[dict[str, Any]]) -> str:
    return json.dumps(vectors, indent=2, ensure_ascii=False) + "\n"


def render_markdown(vectors: list[dict[str, Any]]) -> str:
    lines: list[str] = []
    for v in vectors:
        frame = bytes.fromhex(v["hex"])
        arrow = "client → server" if v["direction"] == C2S else "server → client"
        lines.append(f"#### `{v['name']}`")
        lines.append("")
        lines.append(
            f"{MessageType(v['type']).name} ({v['type']}), {arrow}, rid {v['rid']}, "
            f"frame {len(frame)} bytes (body {len(frame) - 4})."
        )
        lines.append("")
        lines.append("```json")
        lines.append(json.dumps(v["payload"], ensure_ascii=False))
        lines.append("```")
        lines.append("")
        lines.append("```")
        h = v["hex"]
        lines.extend(h[i : i + 64] for i in range(0, len(h), 64))
        lines.append("```")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if the JSON file is stale")
    ap.add_argument("--markdown", action="store_true", help="print the SPEC.md vector entries")
    args = ap.parse_args(argv)
    vectors = build()
    text = render_json(vectors)
    if args.markdown:
        sys.stdout.write(render_markdown(vectors))
        return 0
    if args.check:
        if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT} is out of date: run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {len(vectors)} vectors to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
