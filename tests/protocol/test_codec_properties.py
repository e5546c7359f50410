"""Property tests of the message codec: every type round-trips through the wire, the
pre-encoded fan-out helpers are byte-identical to the dataclass encoders, and no payload
makes decoding raise anything but ProtocolError."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from channel_strategies import CHANNEL_STRATEGIES
from hypothesis import given, settings
from hypothesis import strategies as st
from liaotian.protocol import (
    MESSAGE_CLASSES,
    Ack,
    Auth,
    Authenticated,
    ChatMessage,
    Close,
    DeviceInfo,
    DeviceList,
    DeviceRevoked,
    Error,
    ErrorCode,
    FrameReader,
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
    ProtocolError,
    Register,
    Registered,
    RevokeDevice,
    Send,
    Sent,
    Sync,
    Update,
    UpdateKind,
    Updates,
    Welcome,
    decode_message,
    encode_history_frame,
    encode_update,
    encode_updates_frame,
    unpack_body,
)
from liaotian.protocol import bots as B
from liaotian.protocol import nearby as N
from liaotian.protocol import shop as SH
from liaotian.protocol import wallet as W
from liaotian.protocol.media import (
    MEDIA_KINDS,
    BlobData,
    Download,
    UploadBegin,
    UploadCancel,
    UploadChunk,
    UploadDone,
    UploadFinish,
    UploadStatus,
)
from liaotian.protocol.records import SendMedia
from liaotian.protocol.social import (
    ROLES,
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

T = MessageType
SETTINGS = settings(max_examples=40, deadline=None, database=None)
MAX_INT64 = 2**63 - 1

rids = st.integers(0, 2**32 - 1)
u63 = st.integers(0, MAX_INT64)
bounded = st.integers(0, 0xFFFF)


def text(max_size: int) -> st.SearchStrategy[str]:
    return st.text(max_size=min(max_size, 24))


scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.binary(max_size=8)
)
values = st.recursive(
    scalars,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
    max_leaves=8,
)
maps = st.dictionaries(st.text(max_size=8), values, max_size=4)
# float fields decode ints as floats: generate floats so re-encoding is byte-identical
non_negative = st.floats(min_value=0, allow_nan=False, allow_infinity=False)

direct_messages = st.builds(
    ChatMessage,
    id=u63,
    conv=u63,
    pos=st.integers(1, MAX_INT64),
    sender=text(256),
    to=text(256),
    ts=u63,
    cmid=text(256),
    text=st.text(max_size=40),
    meta=maps,
)
# group timeline entries: "group" instead of "to" (to is "" then), perhaps an event map
group_messages = st.builds(
    ChatMessage,
    id=u63,
    conv=u63,
    pos=st.integers(1, MAX_INT64),
    sender=text(256),
    to=st.just(""),
    ts=u63,
    cmid=text(256),
    text=st.text(max_size=40),
    meta=maps,
    group=u63,
    event=st.none() | maps,
)
# media messages (SPEC.md 27.5): the server's media map beside the text
media_messages = st.builds(
    ChatMessage,
    id=u63,
    conv=u63,
    pos=st.integers(1, MAX_INT64),
    sender=text(256),
    to=text(256),
    ts=u63,
    cmid=text(256),
    text=st.text(max_size=40),
    meta=maps,
    media=maps,
)
chat_messages = direct_messages | group_messages | media_messages
updates = st.one_of(
    st.builds(
        Update,
        seq=st.integers(1, MAX_INT64),
        kind=st.just(UpdateKind.MESSAGE),
        message=chat_messages,
    ),
    st.builds(
        Update,
        seq=st.integers(1, MAX_INT64),
        kind=st.integers(-(2**63), MAX_INT64).filter(lambda k: k != 1),
        data=maps,
    ),
)
devices = st.builds(
    DeviceInfo, device=text(256), created=u63, last_seen=u63, online=st.booleans(), acked=u63
)


@st.composite
def histories(draw: st.DrawFn) -> History:
    before = after = None
    match draw(st.sampled_from(["none", "before", "after"])):
        case "before":
            before = draw(u63)
        case "after":
            after = draw(u63)
    group = draw(st.none() | u63)
    return History(
        rid=draw(rids),
        with_user=draw(text(256)) if group is None else "",
        before=before,
        after=after,
        limit=draw(st.none() | st.integers(1, 200)),
        group=group,
    )


@st.composite
def sends(draw: st.DrawFn) -> Send:
    group = draw(st.none() | u63)
    return Send(
        rid=draw(rids),
        to=draw(text(256)) if group is None else "",
        # a client's cmid must not start with "#" (reserved for the server's event rows)
        cmid=draw(st.text(min_size=1, max_size=64).filter(lambda c: not c.startswith("#"))),
        text=draw(st.text(max_size=60)),
        meta=draw(maps),
        group=group,
    )


def opt_text(max_size: int, min_size: int = 0) -> st.SearchStrategy[str | None]:
    return st.none() | st.text(min_size=min_size, max_size=min(max_size, 24))


def tuples(
    elements: st.SearchStrategy[Any], min_size: int = 0, max_size: int = 4
) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.lists(elements, min_size=min_size, max_size=max_size).map(tuple)


users = text(256)
visibility = st.sampled_from(["everyone", "contacts", "nobody"])
message_policy = st.sampled_from(["everyone", "contacts"])
members = st.builds(GroupMember, user=users, role=st.sampled_from(ROLES), joined=u63)
group_summaries = st.builds(
    GroupSummary,
    group=u63,
    name=text(64),
    topic=text(256),
    role=st.sampled_from(ROLES),
    members=u63,
)
markers = st.builds(Marker, user=users, pos=u63)
conversation_summaries = st.builds(
    ConversationSummary,
    conv=u63,
    kind=st.sampled_from(["direct", "group"]),
    name=text(256),
    ts=u63,
    unread=u63,
    read=u63,
    last=st.none() | chat_messages,
    peer=st.none() | users,
    group=st.none() | u63,
)
presence_entries = st.builds(PresenceEntry, user=users, online=st.booleans(), last_seen=u63)


def user_request(cls: type[Message]) -> st.SearchStrategy[Message]:
    return st.builds(cls, rid=rids, user=users)


sha256s = st.binary(min_size=32, max_size=32)
chunks = st.binary(max_size=64)
send_media = st.builds(
    SendMedia,
    kind=st.sampled_from(MEDIA_KINDS),
    blob=sha256s,
    name=st.none() | text(255),
    title=st.none() | text(256),
    artist=st.none() | text(256),
    clip=st.none() | st.tuples(u63, u63),
    cover=st.none() | sha256s,
)


@st.composite
def media_sends(draw: st.DrawFn) -> Send:
    return Send(
        rid=draw(rids),
        to=draw(text(256)),
        cmid=draw(st.text(min_size=1, max_size=64)),
        text=draw(st.text(max_size=60)),
        meta=draw(maps),
        media=draw(send_media),
    )


MEDIA_STRATEGIES: dict[int, st.SearchStrategy[Message]] = {
    T.UPLOAD_BEGIN: st.builds(
        UploadBegin,
        rid=rids,
        size=u63,
        sha256=sha256s,
        media_type=text(127),
        chunk_size=u63,
        name=text(255),
    ),
    T.UPLOAD_STATUS: st.builds(
        UploadStatus,
        rid=rids,
        upload=u63,
        size=u63,
        chunk_size=u63,
        held=st.lists(u63, max_size=6).map(tuple),
        expires=u63,
    ),
    T.UPLOAD_CHUNK: st.builds(UploadChunk, rid=rids, upload=u63, offset=u63, data=chunks),
    T.UPLOAD_FINISH: st.builds(UploadFinish, rid=rids, upload=u63),
    T.UPLOAD_DONE: st.builds(
        UploadDone, rid=rids, blob=sha256s, size=u63, media_type=text(127), info=maps
    ),
    T.UPLOAD_CANCEL: st.builds(UploadCancel, rid=rids, upload=u63),
    T.DOWNLOAD: st.builds(Download, rid=rids, blob=sha256s, offset=u63, length=u63),
    T.BLOB_DATA: st.builds(BlobData, rid=rids, blob=sha256s, offset=u63, size=u63, data=chunks),
}

SOCIAL_STRATEGIES: dict[int, st.SearchStrategy[Message]] = {
    T.OK: st.builds(Ok, rid=rids, pos=st.none() | u63),
    T.GROUP_CREATE: st.builds(
        GroupCreate,
        rid=rids,
        name=st.text(min_size=1, max_size=24),
        members=tuples(users),
        topic=text(256),
    ),
    T.GROUP_INFO: st.builds(
        GroupInfo,
        rid=rids,
        group=u63,
        name=text(64),
        topic=text(256),
        owner=users,
        created=u63,
        pos=u63,
        members=tuples(members),
    ),
    T.GET_GROUP: st.builds(GetGroup, rid=rids, group=u63),
    T.GROUP_ADD: st.builds(GroupAdd, rid=rids, group=u63, users=tuples(users, min_size=1)),
    T.GROUP_REMOVE: st.builds(GroupRemove, rid=rids, group=u63, user=users),
    T.GROUP_LEAVE: st.builds(GroupLeave, rid=rids, group=u63),
    T.GROUP_UPDATE: st.builds(
        GroupUpdate, rid=rids, group=u63, name=opt_text(64, min_size=1), topic=opt_text(256)
    ),
    T.GROUP_SET_ROLE: st.builds(
        GroupSetRole, rid=rids, group=u63, user=users, role=st.sampled_from(["admin", "member"])
    ),
    T.GROUP_TRANSFER: st.builds(GroupTransfer, rid=rids, group=u63, user=users),
    T.LIST_GROUPS: st.builds(ListGroups, rid=rids),
    T.GROUP_LIST: st.builds(GroupList, rid=rids, groups=tuples(group_summaries)),
    T.READ: st.builds(Read, rid=rids, conv=u63, pos=u63),
    T.GET_RECEIPTS: st.builds(GetReceipts, rid=rids, conv=u63),
    T.RECEIPTS: st.builds(
        Receipts, rid=rids, conv=u63, read=tuples(markers), delivered=tuples(markers)
    ),
    T.LIST_CONVERSATIONS: st.builds(
        ListConversations,
        rid=rids,
        limit=st.none() | st.integers(1, 100),
        before_ts=st.none() | u63,
        before_conv=st.none() | u63,
    ),
    T.CONVERSATION_LIST: st.builds(
        ConversationList,
        rid=rids,
        conversations=tuples(conversation_summaries, max_size=3),
        more=st.booleans(),
    ),
    # the codec does not check that exactly one of to/group is present (the server does)
    T.TYPING: st.builds(
        Typing, rid=rids, typing=st.booleans(), to=st.none() | users, group=st.none() | u63
    ),
    T.TYPING_NOTICE: st.builds(
        TypingNotice,
        rid=rids,
        user=users,
        typing=st.booleans(),
        ttl=non_negative,
        group=st.none() | u63,
    ),
    T.PRESENCE: st.builds(Presence, rid=rids, user=users, online=st.booleans(), last_seen=u63),
    T.GET_PRESENCE: st.builds(GetPresence, rid=rids, users=tuples(users, 1, 100)),
    T.PRESENCE_LIST: st.builds(PresenceList, rid=rids, presence=tuples(presence_entries)),
    T.CONTACT_REQUEST: user_request(ContactRequest),
    T.CONTACT_ACCEPT: user_request(ContactAccept),
    T.CONTACT_DECLINE: user_request(ContactDecline),
    T.CONTACT_CANCEL: user_request(ContactCancel),
    T.CONTACT_REMOVE: user_request(ContactRemove),
    T.LIST_CONTACTS: st.builds(ListContacts, rid=rids),
    T.CONTACT_LIST: st.builds(
        ContactList,
        rid=rids,
        contacts=tuples(users),
        incoming=tuples(users),
        outgoing=tuples(users),
        blocked=tuples(users),
    ),
    T.BLOCK: user_request(Block),
    T.UNBLOCK: user_request(Unblock),
    T.SET_PROFILE: st.builds(SetProfile, rid=rids, display_name=opt_text(64), status=opt_text(256)),
    T.GET_PROFILE: user_request(GetProfile),
    T.PROFILE: st.builds(
        Profile,
        rid=rids,
        user=users,
        display_name=text(64),
        status=text(256),
        bot=st.none() | st.just(True),
    ),
    T.SET_PRIVACY: st.builds(
        SetPrivacy,
        rid=rids,
        presence=st.none() | visibility,
        profile=st.none() | visibility,
        messages=st.none() | message_policy,
    ),
    T.GET_PRIVACY: st.builds(GetPrivacy, rid=rids),
    T.PRIVACY: st.builds(
        Privacy, rid=rids, presence=visibility, profile=visibility, messages=message_policy
    ),
}


# the wallet (protocol/wallet.py)
amounts = st.integers(1, W.MAX_AMOUNT)
keys = st.text(min_size=1, max_size=24)
transfer_entries = st.builds(
    W.TransferEntry,
    id=u63,
    sender=users,
    to=users,
    amount=u63,
    code=st.sampled_from(W.TRANSFER_CODES),
    phase=st.sampled_from(W.TRANSFER_PHASES),
    ts=u63,
    pending_id=st.none() | u63,
    expires=st.none() | u63,
    ref=st.none() | u63,
    memo=opt_text(256),
)
item_entries = st.builds(
    W.ItemEntry,
    code=text(32),
    kind=text(32),
    source=text(96),
    created=u63,
    redeemed=st.none() | u63,
)
balances = {"balance": u63, "pending_out": u63, "pending_in": u63}


@st.composite
def packet_sends(draw: st.DrawFn) -> W.RedPacketSend:
    group = draw(st.none() | u63)
    return W.RedPacketSend(
        rid=draw(rids),
        to=draw(users) if group is None else "",
        amount=draw(amounts),
        count=draw(st.integers(1, 1000)),
        key=draw(keys),
        split=draw(st.sampled_from(W.SPLITS)),
        memo=draw(text(256)),
        group=group,
    )


WALLET_STRATEGIES: dict[int, st.SearchStrategy[Message]] = {
    T.GET_WALLET: st.builds(W.GetWallet, rid=rids),
    T.WALLET: st.builds(W.Wallet, rid=rids, **balances),
    T.LIST_TRANSFERS: st.builds(
        W.ListTransfers, rid=rids, limit=st.none() | st.integers(1, 200), before=st.none() | u63
    ),
    T.TRANSFER_LIST: st.builds(
        W.TransferList, rid=rids, transfers=tuples(transfer_entries), more=st.booleans()
    ),
    T.PAY: st.builds(W.Pay, rid=rids, to=users, amount=amounts, key=keys, memo=text(256)),
    T.PAID: st.builds(
        W.Paid,
        rid=rids,
        transfer=transfer_entries,
        conv=u63,
        pos=u63,
        duplicate=st.booleans(),
        **balances,
    ),
    T.RED_PACKET_SEND: packet_sends(),
    T.RED_PACKET_SENT: st.builds(
        W.RedPacketSent,
        rid=rids,
        packet=u63,
        conv=u63,
        pos=u63,
        expires=u63,
        transfer=transfer_entries,
        duplicate=st.booleans(),
        **balances,
    ),
    T.RED_PACKET_CLAIM: st.builds(W.RedPacketClaim, rid=rids, packet=u63),
    T.RED_PACKET_CLAIMED: st.builds(
        W.RedPacketClaimed,
        rid=rids,
        packet=u63,
        amount=u63,
        transfer=u63,
        left=u63,
        duplicate=st.booleans(),
    ),
    T.GET_RED_PACKET: st.builds(W.GetRedPacket, rid=rids, packet=u63),
    T.RED_PACKET: st.builds(
        W.RedPacket,
        rid=rids,
        packet=u63,
        sender=users,
        conv=u63,
        amount=u63,
        count=u63,
        split=st.sampled_from(W.SPLITS),
        expires=u63,
        state=st.sampled_from(W.PACKET_STATES),
        claims=tuples(st.builds(W.ClaimEntry, user=users, amount=u63)),
        memo=opt_text(256),
    ),
    T.CHECK_IN: st.builds(W.CheckIn, rid=rids, key=st.none() | keys),
    T.CHECKED_IN: st.builds(
        W.CheckedIn,
        rid=rids,
        duplicate=st.booleans(),
        tasks=tuples(
            st.builds(
                W.TaskDone, task=text(64), reward=u63, transfer=st.none() | u63, item=opt_text(32)
            )
        ),
        **balances,
    ),
    T.LIST_TASKS: st.builds(W.ListTasks, rid=rids),
    T.TASK_LIST: st.builds(
        W.TaskList,
        rid=rids,
        tasks=tuples(
            st.builds(
                W.TaskEntry,
                name=text(64),
                trigger=st.sampled_from(W.TASK_TRIGGERS),
                reward=u63,
                period=u63,
                cap=u63,
                done=u63,
                item=opt_text(32),
            )
        ),
    ),
    T.LIST_ITEMS: st.builds(W.ListItems, rid=rids),
    T.ITEM_LIST: st.builds(W.ItemList, rid=rids, items=tuples(item_entries)),
    T.ITEM_GIFT: st.builds(W.ItemGift, rid=rids, code=text(32), to=users, key=st.none() | keys),
    T.ITEM_REDEEM: st.builds(W.ItemRedeem, rid=rids, code=text(32), key=st.none() | keys),
    T.ITEM_DONE: st.builds(W.ItemDone, rid=rids, item=item_entries, duplicate=st.booleans()),
}

# people and merchants nearby (protocol/nearby.py)
lats = st.integers(-90_000_000, 90_000_000)
lons = st.integers(-180_000_000, 180_000_000)
nearby_entries = st.builds(
    N.NearbyEntry,
    user=users,
    name=text(64),
    within=u63,
    hello=st.booleans(),
    avatar=st.none() | st.binary(max_size=32),
    category=opt_text(32),
    hours=opt_text(120),
    lat=st.none() | lats,
    lon=st.none() | lons,
)
NEARBY_STRATEGIES: dict[int, st.SearchStrategy[Message]] = {
    T.NEARBY_SHARE: st.builds(
        N.NearbyShare, rid=rids, lat=lats, lon=lons, ttl=st.integers(60, N.MAX_TTL)
    ),
    T.NEARBY_SHARED: st.builds(N.NearbyShared, rid=rids, cell=text(16), expires=u63),
    T.NEARBY_STOP: st.builds(N.NearbyStop, rid=rids),
    T.NEARBY_QUERY: st.builds(
        N.NearbyQuery,
        rid=rids,
        lat=lats,
        lon=lons,
        radius=st.integers(100, N.MAX_RADIUS),
        kind=st.sampled_from(N.KINDS),
        category=opt_text(32),
        limit=st.integers(1, 50),
        after=st.none() | u63,
    ),
    T.NEARBY_LIST: st.builds(
        N.NearbyList,
        rid=rids,
        entries=st.lists(nearby_entries, max_size=5).map(tuple),
        next=st.none() | u63,
    ),
    T.NEARBY_HELLO: st.builds(N.NearbyHello, rid=rids, user=users, note=text(120)),
    T.MERCHANT_SET: st.builds(
        N.MerchantSet,
        rid=rids,
        name=st.text(min_size=1, max_size=24),
        category=st.text(min_size=1, max_size=24),
        lat=lats,
        lon=lons,
        hours=text(120),
    ),
    T.GET_MERCHANT: st.builds(N.GetMerchant, rid=rids, user=users),
    T.MERCHANT: st.builds(
        N.Merchant,
        rid=rids,
        user=users,
        name=text(64),
        category=text(32),
        hours=text(120),
        lat=lats,
        lon=lons,
    ),
}

product_entries = st.builds(
    SH.ProductEntry,
    id=u63,
    merchant=users,
    title=text(64),
    description=text(1000),
    price=u63,
    stock=u63,
    image=st.none() | st.binary(max_size=32),
    requires=opt_text(32),
)
order_entries = st.builds(
    SH.OrderEntry,
    id=u63,
    product=u63,
    buyer=users,
    merchant=users,
    qty=u63,
    amount=u63,
    state=st.sampled_from(SH.ORDER_STATES),
    pending=u63,
    created=u63,
    updated=u63,
    title=opt_text(64),
)
SHOP_STRATEGIES: dict[int, st.SearchStrategy[Message]] = {
    T.PRODUCT_ADD: st.builds(
        SH.ProductAdd,
        rid=rids,
        title=st.text(min_size=1, max_size=24),
        price=amounts,
        stock=st.integers(0, SH.MAX_STOCK),
        description=text(1000),
        image=st.none() | st.binary(max_size=32),
        requires=st.none() | st.text(min_size=1, max_size=24),
        key=st.none() | keys,
    ),
    T.PRODUCT_INFO: st.builds(
        SH.ProductInfo, rid=rids, product=product_entries, duplicate=st.booleans()
    ),
    T.PRODUCT_STOCK: st.builds(
        SH.ProductStock, rid=rids, product=u63, stock=st.integers(0, SH.MAX_STOCK)
    ),
    T.LIST_PRODUCTS: st.builds(SH.ListProducts, rid=rids, merchant=users),
    T.PRODUCT_LIST: st.builds(
        SH.ProductList, rid=rids, products=st.lists(product_entries, max_size=4).map(tuple)
    ),
    T.GET_PRODUCT: st.builds(SH.GetProduct, rid=rids, product=u63),
    T.PRODUCT_CARD: st.builds(SH.ProductCard, rid=rids, product=u63, to=users),
    T.ORDER_PLACE: st.builds(
        SH.OrderPlace,
        rid=rids,
        product=u63,
        key=keys,
        qty=st.integers(1, 100),
        code=opt_text(32),
    ),
    T.ORDER_INFO: st.builds(
        SH.OrderInfo,
        rid=rids,
        order=order_entries,
        transfer=st.none() | transfer_entries,
        duplicate=st.booleans(),
    ),
    T.ORDER_STEP: st.builds(
        SH.OrderStep,
        rid=rids,
        order=u63,
        step=st.sampled_from(SH.ORDER_STEPS),
        key=st.none() | keys,
    ),
    T.LIST_ORDERS: st.builds(
        SH.ListOrders, rid=rids, merchant=st.booleans(), limit=st.integers(1, 200)
    ),
    T.ORDER_LIST: st.builds(
        SH.OrderList, rid=rids, orders=st.lists(order_entries, max_size=4).map(tuple)
    ),
}
# bots (protocol/bots.py)
command_entries = st.builds(
    B.CommandEntry, name=st.text(min_size=1, max_size=32), description=text(256)
)
commands = st.lists(command_entries, max_size=4).map(tuple)
BOT_STRATEGIES: dict[int, st.SearchStrategy[Message]] = {
    T.BOT_CREATE: st.builds(B.BotCreate, rid=rids, name=users),
    T.BOT_INFO: st.builds(
        B.BotInfo, rid=rids, name=users, owner=users, created=u63, token=st.none() | text(64)
    ),
    T.LIST_BOTS: st.builds(B.ListBots, rid=rids),
    T.BOT_LIST: st.builds(
        B.BotList,
        rid=rids,
        bots=tuples(st.builds(B.BotEntry, name=users, created=u63, commands=commands)),
    ),
    T.BOT_TOKEN: st.builds(B.BotToken, rid=rids, name=users),
    T.BOT_DELETE: st.builds(B.BotDelete, rid=rids, name=users),
    T.SET_COMMANDS: st.builds(B.SetCommands, rid=rids, commands=commands, bot=users),
    T.GET_COMMANDS: st.builds(B.GetCommands, rid=rids, bot=users),
    T.COMMAND_LIST: st.builds(B.CommandList, rid=rids, bot=users, commands=commands),
    T.PRESS: st.builds(B.Press, rid=rids, conv=u63, pos=st.integers(1, 1 << 40), data=text(64)),
    T.PRESSED: st.builds(B.Pressed, rid=rids, callback=u63),
    T.ANSWER_CALLBACK: st.builds(
        B.AnswerCallback, rid=rids, callback=u63, text=text(200), alert=st.booleans()
    ),
    T.BOT_EDIT: st.builds(
        B.BotEdit,
        rid=rids,
        conv=u63,
        pos=st.integers(1, 1 << 40),
        text=text(256),
        meta=maps,
    ),
    T.GROUP_BOTS: st.builds(B.GroupBots, rid=rids, group=u63, see_all=st.booleans()),
    T.PENDING_CALLBACKS: st.builds(B.PendingCallbacks, rid=rids, limit=st.integers(1, 1000)),
    T.CALLBACK_LIST: st.builds(
        B.CallbackList,
        rid=rids,
        callbacks=st.lists(
            st.builds(
                B.CallbackEntry,
                callback=u63,
                sender=users,
                conv=u63,
                pos=u63,
                id=u63,
                data=text(64),
                group=st.none() | u63,
            ),
            max_size=3,
        ).map(tuple),
        more=st.booleans(),
    ),
}


STRATEGIES: dict[int, st.SearchStrategy[Message]] = {
    T.HELLO: st.builds(
        Hello,
        rid=rids,
        versions=st.lists(st.integers(1, 0xFFFF), min_size=1, max_size=16).map(tuple),
        client=text(128),
    ),
    T.WELCOME: st.builds(
        Welcome,
        rid=rids,
        version=bounded,
        server=text(128),
        time=u63,
        heartbeat=non_negative,
        limits=maps,
    ),
    T.PING: st.builds(Ping, rid=rids),
    T.PONG: st.builds(Pong, rid=rids, time=u63),
    T.CLOSE: st.builds(Close, rid=rids, code=bounded, reason=text(256)),
    T.ERROR: st.builds(
        Error,
        rid=rids,
        code=bounded,
        message=text(1024),
        retry_after=st.none() | non_negative,
        data=maps,
    ),
    T.REGISTER: st.builds(Register, rid=rids, username=text(256), password=text(4096)),
    T.REGISTERED: st.builds(Registered, rid=rids, user=text(256)),
    T.LOGIN: st.builds(Login, rid=rids, username=text(256), password=text(4096), device=text(256)),
    T.AUTH: st.builds(Auth, rid=rids, token=text(256)),
    T.AUTHENTICATED: st.builds(
        Authenticated,
        rid=rids,
        user=text(256),
        device=text(256),
        head=u63,
        acked=u63,
        token=st.none() | st.text(max_size=40),
    ),
    T.LOGOUT: st.builds(Logout, rid=rids),
    T.LOGGED_OUT: st.builds(LoggedOut, rid=rids),
    T.LIST_DEVICES: st.builds(ListDevices, rid=rids),
    T.DEVICE_LIST: st.builds(
        DeviceList, rid=rids, devices=st.lists(devices, max_size=4).map(tuple)
    ),
    T.REVOKE_DEVICE: st.builds(RevokeDevice, rid=rids, device=text(256)),
    T.DEVICE_REVOKED: st.builds(DeviceRevoked, rid=rids, device=text(256)),
    T.SEND: sends() | media_sends(),
    T.SENT: st.builds(
        Sent,
        rid=rids,
        id=u63,
        conv=u63,
        pos=st.integers(1, MAX_INT64),
        ts=u63,
        seq=st.integers(1, MAX_INT64),
        cmid=text(256),
        duplicate=st.booleans(),
    ),
    T.SYNC: st.builds(Sync, rid=rids, since=u63, limit=st.none() | st.integers(1, 1000)),
    T.UPDATES: st.builds(
        Updates,
        rid=rids,
        updates=st.lists(updates, max_size=4).map(tuple),
        head=u63,
        more=st.booleans(),
        resync=st.booleans(),
    ),
    T.ACK: st.builds(Ack, rid=rids, seq=u63),
    T.HISTORY: histories(),
    T.HISTORY_PAGE: st.builds(
        HistoryPage,
        rid=rids,
        messages=st.lists(chat_messages, max_size=4).map(tuple),
        more=st.booleans(),
    ),
    **SOCIAL_STRATEGIES,
    **MEDIA_STRATEGIES,
    **CHANNEL_STRATEGIES,
    **WALLET_STRATEGIES,
    **NEARBY_STRATEGIES,
    **SHOP_STRATEGIES,
    **BOT_STRATEGIES,
}


def test_every_message_type_has_a_strategy() -> None:
    assert set(STRATEGIES) == set(MESSAGE_CLASSES)


def through_the_wire(frame: bytes) -> Message:
    reader = FrameReader()
    bodies = reader.feed(frame)
    assert len(bodies) == 1 and reader.buffered == 0
    return decode_message(*unpack_body(bodies[0]))


@pytest.mark.parametrize(
    "msg_type", sorted(STRATEGIES), ids=[MessageType(t).name for t in sorted(STRATEGIES)]
)
@SETTINGS
@given(data=st.data())
def test_every_message_round_trips(msg_type: int, data: st.DataObject) -> None:
    msg = data.draw(STRATEGIES[msg_type])
    decoded = through_the_wire(msg.encode())
    assert type(decoded) is MESSAGE_CLASSES[msg_type]
    assert decoded == msg
    assert decoded.encode() == msg.encode()  # canonical: re-encoding gives the same bytes


# --------------------------------------------------------------------------- fan-out encoders


def pre_encoded(u: Update) -> bytes:
    data = u.message.encode() if u.message is not None else msgpack.packb(u.data)
    return encode_update(u.seq, u.kind, data)


def test_encode_update_matches_update_to_wire() -> None:
    u = Update(
        seq=7,
        kind=UpdateKind.MESSAGE,
        message=ChatMessage(id=1, conv=2, pos=3, sender="a", to="b", ts=4, cmid="c", text="t"),
    )
    assert pre_encoded(u) == msgpack.packb(u.to_wire())


@settings(max_examples=80, deadline=None, database=None)
@given(rids, st.lists(updates, max_size=20), u63, st.booleans(), st.booleans())
def test_encode_updates_frame_is_byte_identical(
    rid: int, ups: list[Update], head: int, more: bool, resync: bool
) -> None:
    fast = encode_updates_frame(rid, [pre_encoded(u) for u in ups], head, more=more, resync=resync)
    slow = Updates(rid=rid, updates=tuple(ups), head=head, more=more, resync=resync).encode()
    assert fast == slow
    assert through_the_wire(fast) == Updates(
        rid=rid, updates=tuple(ups), head=head, more=more, resync=resync
    )


@settings(max_examples=80, deadline=None, database=None)
@given(rids, st.lists(chat_messages, max_size=20), st.booleans())
def test_encode_history_frame_is_byte_identical(
    rid: int, msgs: list[ChatMessage], more: bool
) -> None:
    fast = encode_history_frame(rid, [m.encode() for m in msgs], more)
    slow = HistoryPage(rid=rid, messages=tuple(msgs), more=more).encode()
    assert fast == slow
    assert through_the_wire(fast) == HistoryPage(rid=rid, messages=tuple(msgs), more=more)


@pytest.mark.parametrize("n", [0, 15, 16, 0xFFFF, 0x10000])
def test_fan_out_encoders_at_array_header_boundaries(n: int) -> None:
    ups = [Update(seq=i + 1, kind=2, data={}) for i in range(n)]
    assert (
        encode_updates_frame(0, [pre_encoded(u) for u in ups], n)
        == Updates(rid=0, updates=tuple(ups), head=n).encode()
    )
    msg = ChatMessage(id=1, conv=1, pos=1, sender="a", to="b", ts=1, cmid="c", text="")
    enc = msg.encode()
    assert (
        encode_history_frame(5, [enc] * n, True)
        == HistoryPage(rid=5, messages=(msg,) * n, more=True).encode()
    )


# --------------------------------------------------------------------------- robustness


@settings(max_examples=200, deadline=None, database=None)
@given(
    st.sampled_from(sorted(MESSAGE_CLASSES)),
    rids,
    st.dictionaries(
        st.sampled_from(
            [
                "versions",
                "client",
                "version",
                "server",
                "time",
                "heartbeat",
                "limits",
                "code",
                "reason",
                "message",
                "retry_after",
                "data",
                "username",
                "password",
                "user",
                "device",
                "token",
                "head",
                "acked",
                "devices",
                "to",
                "cmid",
                "text",
                "meta",
                "id",
                "conv",
                "pos",
                "ts",
                "seq",
                "duplicate",
                "since",
                "limit",
                "updates",
                "more",
                "resync",
                "with",
                "before",
                "after",
                "messages",
                "group",
                "event",
                # the social layer's keys
                "name",
                "members",
                "topic",
                "owner",
                "created",
                "users",
                "role",
                "joined",
                "groups",
                "read",
                "delivered",
                "conversations",
                "kind",
                "unread",
                "last",
                "peer",
                "before_ts",
                "before_conv",
                "typing",
                "ttl",
                "online",
                "last_seen",
                "presence",
                "contacts",
                "incoming",
                "outgoing",
                "blocked",
                "display_name",
                "status",
                "profile",
                "junk",
            ]
        ),
        values,
        max_size=6,
    ),
)
def test_decoding_any_payload_raises_only_protocol_error(
    msg_type: int, rid: int, payload: dict[str, Any]
) -> None:
    payload = unpack_body(msgpack.packb([msg_type, rid, payload]))[2]  # as the wire gives it
    try:
        msg = decode_message(msg_type, rid, payload)
    except ProtocolError as exc:
        assert exc.code == ErrorCode.INVALID_FIELD
        assert exc.rid == rid
    else:
        assert msg.rid == rid
        msg.encode()  # whatever was accepted can be sent back out


@settings(max_examples=150, deadline=None, database=None)
@given(
    st.sampled_from(sorted(MESSAGE_CLASSES)),
    rids,
    st.lists(
        st.sampled_from(
            [
                "updates",
                "messages",
                "devices",
                "members",
                "users",
                "groups",
                "read",
                "delivered",
                "conversations",
                "presence",
                "contacts",
                "incoming",
                "outgoing",
                "blocked",
            ]
        ),
        min_size=1,
        max_size=1,
    ),
    st.lists(values | st.lists(values, min_size=3, max_size=3), max_size=3),
)
def test_decoding_any_nested_list_raises_only_protocol_error(
    msg_type: int, rid: int, key: list[str], items: list[Any]
) -> None:
    payload = unpack_body(msgpack.packb([msg_type, rid, {key[0]: items, "head": 1}]))[2]
    try:
        decode_message(msg_type, rid, payload)
    except ProtocolError as exc:
        assert exc.code == ErrorCode.INVALID_FIELD


@settings(max_examples=60, deadline=None, database=None)
@given(chat_messages)
def test_encode_message_map_is_the_canonical_message_encoding(msg: ChatMessage) -> None:
    from liaotian.protocol.messages import encode_message_map

    raw = encode_message_map(
        msg.id,
        msg.conv,
        msg.pos,
        msg.sender,
        msg.to,
        msg.ts,
        msg.cmid,
        msg.text,
        msg.meta,
        msg.group,
        msg.event,
        msg.media,
    )
    assert raw == msg.encode() == msgpack.packb(msg.to_wire())
    assert encode_message_map(
        msg.id,
        msg.conv,
        msg.pos,
        msg.sender,
        msg.to,
        msg.ts,
        msg.cmid,
        msg.text,
        None,
        msg.group,
        msg.event,
        msg.media,
    ) == msgpack.packb({k: v for k, v in msg.to_wire().items() if k != "meta"})


@settings(max_examples=60, deadline=None, database=None)
@given(chat_messages)
def test_message_map_key_order(msg: ChatMessage) -> None:
    """SPEC.md 8.2: id, conv, pos, from, to|group, ts, cmid, text, meta?, media?, event?"""
    keys = list(msgpack.unpackb(msg.encode()))
    middle = ["to"] if msg.group is None else ["group"]
    tail = (
        (["meta"] if msg.meta else [])
        + (["media"] if msg.media is not None else [])
        + (["event"] if msg.event is not None else [])
    )
    assert keys == ["id", "conv", "pos", "from", *middle, "ts", "cmid", "text", *tail]


@settings(max_examples=60, deadline=None, database=None)
@given(direct_messages)
def test_direct_message_bytes_are_those_of_the_core_protocol(msg: ChatMessage) -> None:
    """The social layer leaves the encoding of a direct message map unchanged."""
    core = {
        "id": msg.id,
        "conv": msg.conv,
        "pos": msg.pos,
        "from": msg.sender,
        "to": msg.to,
        "ts": msg.ts,
        "cmid": msg.cmid,
        "text": msg.text,
    }
    if msg.meta:
        core["meta"] = msg.meta
    assert msg.encode() == msgpack.packb(core)
