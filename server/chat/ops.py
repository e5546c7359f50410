"""Write operations as plain data, with their outcomes.

A handler builds an operation from a request and submits it to the store; the store plans
it inside a group commit by the rules (rules/), which fill in its outcome: `result` or
`pos` and friends, the `pushes` for live sessions, or `error`. After the commit, the
fan-out answers it and pushes. An operation names the session that asked by an opaque
key (`session`), never by the live connection: the store passes no connection around.

Ops are built per request: slotted, no per-instance dictionaries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from liaotian.protocol import ErrorCode

from .ledger import WalletPolicy
from .model import BotView, ChannelMember, ChannelState, GroupState
from .policy import DEFAULT_POLICY, Policy


class Refused(Exception):
    """Raised by a rule: the operation is answered with this error and nothing it staged
    is kept. `retry_after` and `data` travel with the ERROR (RATE_LIMITED, LIMIT_REACHED)."""

    def __init__(
        self,
        code: ErrorCode,
        message: str = "",
        *,
        retry_after: float | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message or code.explanation)
        self.code = code
        self.message = message or code.explanation
        self.retry_after = retry_after
        self.data = data


def limit_reached(setting: str, value: int, message: str) -> Refused:
    """3009 LIMIT_REACHED for a per-user bound: data {"limit": setting name, "max": value}."""
    return Refused(ErrorCode.LIMIT_REACHED, message, data={"limit": setting, "max": value})


@dataclass(slots=True, eq=False)
class Push:
    """An update-log entry to push to the live sessions of `user` after the commit."""

    user: int
    seq: int
    kind: int
    data: bytes  # the encoded data map


# ---------------------------------------------------------------------------- SEND


@dataclass(slots=True, eq=False)
class SendRequest:
    """One SEND (1:1 when `group` is None); planned by rules/send.py."""

    sender_id: int
    sender_name: str
    to_name: str
    cmid: str
    text: str
    meta: dict[str, Any]
    session: int  # the reply key: the asking session (0: nobody to answer)
    rid: int
    group: int | None = None
    media: dict[str, Any] | None = None  # a media message: the message map's media map
    blob_refs: tuple[bytes, ...] = ()  # the blobs it references (rules/media.py)
    result: SendResult | None = None
    error: ErrorCode | None = None
    error_message: str = ""
    pushes: list[Push] = field(default_factory=list)  # a task's reward (rules/tasks.py)
    rewards: WalletPolicy | None = None  # set when a SEND completes tasks (on_message)
    bots: BotView | None = None  # group sends: bots in privacy mode see only what is theirs


@dataclass(frozen=True, slots=True)
class SendResult:
    id: int
    conv: int
    pos: int
    ts: int
    sender_seq: int
    cmid: str
    duplicate: bool = False
    recipient_id: int = 0
    recipient_seq: int = 0
    body: bytes = b""  # the encoded message map (empty for duplicates: nothing to deliver)
    fanout: tuple[tuple[int, int], ...] = ()  # group sends: (member, seq), sender excluded

    def as_duplicate(self) -> SendResult:
        """The answer to a retry: the original acknowledgement, marked as a duplicate."""
        return SendResult(
            id=self.id,
            conv=self.conv,
            pos=self.pos,
            ts=self.ts,
            sender_seq=self.sender_seq,
            cmid=self.cmid,
            duplicate=True,
        )


# ---------------------------------------------------------------------------- other writes


@dataclass(slots=True, eq=False, kw_only=True)
class Op:
    """A write other than SEND: an actor's request, answered OK (with `pos` if set) or
    by the frame its handler registers for the type, or with `error`."""

    actor: int
    session: int = 0  # the reply key: the asking session (0: nobody to answer)
    rid: int = 0
    policy: Policy = DEFAULT_POLICY
    # outcome
    pos: int = 0  # the group timeline position of the change (group operations)
    error: ErrorCode | None = None
    error_message: str = ""
    error_retry_after: float | None = None
    error_data: dict[str, Any] | None = None
    pushes: list[Push] = field(default_factory=list)
    rows_charged: int = 0  # update-log rows charged to the actor's budget (policy.py)


# groups (rules/groups.py)


@dataclass(slots=True, eq=False, kw_only=True)
class CreateGroup(Op):
    name: str
    topic: str = ""
    members: tuple[str, ...] = ()
    # outcome
    group: GroupState | None = None
    names: dict[int, str] = field(default_factory=dict)  # member -> username


@dataclass(slots=True, eq=False, kw_only=True)
class AddMembers(Op):
    group: int
    users: tuple[str, ...]


@dataclass(slots=True, eq=False, kw_only=True)
class RemoveMember(Op):
    group: int
    user: str


@dataclass(slots=True, eq=False, kw_only=True)
class LeaveGroup(Op):
    group: int


@dataclass(slots=True, eq=False, kw_only=True)
class UpdateGroup(Op):
    group: int
    name: str | None = None
    topic: str | None = None


@dataclass(slots=True, eq=False, kw_only=True)
class SetRole(Op):
    group: int
    user: str
    role: str  # "member" or "admin"


@dataclass(slots=True, eq=False, kw_only=True)
class TransferGroup(Op):
    group: int
    user: str


# contacts, blocking and privacy (rules/contacts.py)


@dataclass(slots=True, eq=False, kw_only=True)
class RelationOp(Op):
    """A change of the actor's relation to `user`."""

    user: str


class RequestContact(RelationOp):
    __slots__ = ()


@dataclass(slots=True, eq=False, kw_only=True)
class SayHello(RelationOp):
    """A contact request from People Nearby (SPEC.md 29.3): a RequestContact carrying a
    short note the target sees with the request."""

    note: str = ""


class AcceptContact(RelationOp):
    __slots__ = ()


class DeclineContact(RelationOp):
    __slots__ = ()


class CancelContact(RelationOp):
    __slots__ = ()


class RemoveContact(RelationOp):
    __slots__ = ()


class BlockUser(RelationOp):
    __slots__ = ()


class UnblockUser(RelationOp):
    __slots__ = ()


@dataclass(slots=True, eq=False, kw_only=True)
class SetPrivacy(Op):
    presence: str | None = None  # "everyone", "contacts" or "nobody"; None: unchanged
    profile: str | None = None
    messages: str | None = None
    groups: str | None = None
    receipts: str | None = None
    coins: str | None = None  # who may send me coins
    nearby: str | None = None  # who finds my shared position ("nobody": not discoverable)


# read markers (rules/receipts.py)


@dataclass(slots=True, eq=False, kw_only=True)
class MarkRead(Op):
    conv: int
    read_pos: int
    peer: int | None = None  # the other participant of a direct conversation


# channels (rules/channels.py): `channel` is the channel's conversation id; a post is
# named by its position in the channel, a comment by its number under its post.


@dataclass(slots=True, eq=False, kw_only=True)
class CreateChannel(Op):
    name: str
    about: str = ""
    rules: str = ""
    open: bool = True
    members_post: bool = False
    slow_mode: int = 0
    invite: str = ""  # the invitation token, made by the handler (the core has no randomness)
    # outcome
    state: ChannelState | None = None
    member: ChannelMember | None = None  # the actor's row
    owner_name: str = ""


@dataclass(slots=True, eq=False, kw_only=True)
class JoinChannel(Op):
    channel: int
    invite: str = ""  # required unless the channel is open
    # outcome: the channel (its rules are shown on join)
    state: ChannelState | None = None
    member: ChannelMember | None = None  # the actor's row
    owner_name: str = ""


@dataclass(slots=True, eq=False, kw_only=True)
class LeaveChannel(Op):
    channel: int


@dataclass(slots=True, eq=False, kw_only=True)
class UpdateChannel(Op):
    """Change a channel's settings (None: unchanged); `invite` replaces the token ("":
    no token, so only open join)."""

    channel: int
    name: str | None = None
    about: str | None = None
    rules: str | None = None
    open: bool | None = None
    members_post: bool | None = None
    slow_mode: int | None = None
    invite: str | None = None
    # outcome
    state: ChannelState | None = None
    member: ChannelMember | None = None  # the actor's row
    owner_name: str = ""


@dataclass(slots=True, eq=False, kw_only=True)
class SetChannelRole(Op):
    channel: int
    user: str
    role: str  # "member" or "admin"


@dataclass(slots=True, eq=False, kw_only=True)
class TransferChannel(Op):
    """The owner hands the channel to the member `user` and becomes an admin."""

    channel: int
    user: str


@dataclass(slots=True, eq=False, kw_only=True)
class Post(Op):
    """A post (answered with its position in `pos`); a retry with the same cmid gets the
    first post's position and `duplicate`."""

    channel: int
    text: str
    cmid: str
    # outcome
    id: int = 0
    ts: int = 0
    duplicate: bool = False


@dataclass(slots=True, eq=False, kw_only=True)
class Comment(Op):
    channel: int
    post: int
    text: str
    # outcome: `pos` is the post's, `n` the comment's number under it
    id: int = 0
    n: int = 0
    ts: int = 0


@dataclass(slots=True, eq=False, kw_only=True)
class Like(Op):
    """Like (or with `like` False, unlike) a post; idempotent."""

    channel: int
    post: int
    like: bool = True
    # outcome
    likes: int = 0


@dataclass(slots=True, eq=False, kw_only=True)
class Pin(Op):
    channel: int
    post: int
    pin: bool = True
    # outcome
    pins: tuple[int, ...] = ()


@dataclass(slots=True, eq=False, kw_only=True)
class DeletePost(Op):
    channel: int
    post: int


@dataclass(slots=True, eq=False, kw_only=True)
class DeleteComment(Op):
    channel: int
    post: int
    n: int


@dataclass(slots=True, eq=False, kw_only=True)
class BanMember(Op):
    """Ban (or with `ban` False, unban) a user; a banned member is removed."""

    channel: int
    user: str
    ban: bool = True
    # outcome
    target: int = 0


@dataclass(slots=True, eq=False, kw_only=True)
class ReadChannel(Op):
    """Move the actor's read position in the channel forward to `read_pos`."""

    channel: int
    read_pos: int


# wallet: ledger (rules/wallet.py), red packets (rules/packets.py), tasks and items
# (rules/tasks.py). Amounts are integers; see chat/ledger.py.


@dataclass(slots=True, eq=False, kw_only=True)
class WalletOp(Op):
    """A wallet request. With an idempotency `key` (the actor's, unique per actor), a
    retry with the same parameters gets the first answer again (`duplicate`), whatever
    happened since; the same key with other parameters is refused (IDEMPOTENCY_MISMATCH).
    A refused request keeps no key: retrying it is planned afresh."""

    key: str = ""
    # outcome
    result: dict[str, Any] | None = None  # the answer map
    duplicate: bool = False


@dataclass(slots=True, eq=False, kw_only=True)
class Pay(WalletOp):
    """Coins from the actor to another user, with a memo: an event in their direct
    conversation. Privacy `coins` of the payee decides who may pay them."""

    to: str
    amount: int
    memo: str = ""


@dataclass(slots=True, eq=False, kw_only=True)
class Mint(WalletOp):
    """Issue coins from ISSUANCE to a user or a system account (an admin's; actor 0)."""

    to: str  # a username, or "*rewards"
    amount: int
    memo: str = ""  # why (kept with the transfer: the audit)


@dataclass(slots=True, eq=False, kw_only=True)
class Hold(WalletOp):
    """A pending transfer between two accounts (the actor's own account as the debit,
    or any account for the server, actor 0), timing out after `timeout_ms` (0: never)."""

    debit: int
    credit: int
    amount: int
    timeout_ms: int = 0
    memo: str = ""


@dataclass(slots=True, eq=False, kw_only=True)
class PostPending(WalletOp):
    """Post a pending transfer: `amount` of it (None: all), the rest released."""

    pending: int
    amount: int | None = None


@dataclass(slots=True, eq=False, kw_only=True)
class VoidPending(WalletOp):
    pending: int


@dataclass(slots=True, eq=False, kw_only=True)
class ExpirePending(WalletOp):
    """The server's: a pending transfer whose timeout has passed is voided (a red packet's
    is posted for what was claimed). Due when the batch's time reaches `expires`; early
    or already closed, it does nothing."""

    pending: int


@dataclass(slots=True, eq=False, kw_only=True)
class Correct(WalletOp):
    """A correction (the server's, actor 0): a posted transfer between two accounts,
    naming the transfer it corrects (`ref`): transfers are never changed."""

    debit: int
    credit: int
    amount: int
    ref: int = 0
    memo: str = ""


@dataclass(slots=True, eq=False, kw_only=True)
class SendPacket(WalletOp):
    """A red packet into a group (`group`) or a direct conversation (`to`)."""

    amount: int
    count: int
    split: str = "random"  # or "equal"
    memo: str = ""
    group: int | None = None
    to: str = ""
    seed: int = 0  # chosen by the server when the request arrives, kept with the packet


@dataclass(slots=True, eq=False, kw_only=True)
class ClaimPacket(WalletOp):
    """Claim a share of a red packet; a second claim gets the first one's answer."""

    packet: int


@dataclass(slots=True, eq=False, kw_only=True)
class CheckIn(WalletOp):
    """The daily check-in task (a task of the catalogue triggered by "checkin")."""


@dataclass(slots=True, eq=False, kw_only=True)
class GrantItem(WalletOp):
    """Give a new item (an invitation code, an F code) to a user (an admin's; actor 0)."""

    to: str
    kind: str


@dataclass(slots=True, eq=False, kw_only=True)
class GiftItem(WalletOp):
    """Give one of the actor's items to a contact."""

    code: str
    to: str


@dataclass(slots=True, eq=False, kw_only=True)
class RedeemItem(WalletOp):
    """Use one of the actor's items, once."""

    code: str


@dataclass(slots=True, eq=False, kw_only=True)
class UseInvite(WalletOp):
    """A new user registered with an invitation code: the code is redeemed and its owner
    completes the "invite" tasks (the REGISTER handler's, actor: the new user)."""

    code: str


@dataclass(slots=True, eq=False, kw_only=True)
class Register(WalletOp):
    """REGISTER with an invitation code (actor 0: the user does not exist yet): the new
    account, the code redeemed and its owner's "invite" rewards, all in one commit, so a
    crash can neither keep the account without its inviter's reward nor pay it twice
    (the code is redeemed once). An unusable code registers the user without a reward."""

    username: str
    password_hash: str
    code: str


# the shop (rules/shop.py; SPEC.md 30): wallet ops, so their keys make them idempotent


@dataclass(slots=True, eq=False, kw_only=True)
class AddProduct(WalletOp):
    """A product in the actor's catalogue. `merchant`: whether the actor's account is a
    merchant's, as the handler read it (an admin's setting); the rules refuse otherwise."""

    merchant: bool = False
    title: str
    description: str = ""
    price: int
    stock: int
    image: bytes = b""
    requires: str = ""  # the kind of item (an F code) a buyer gives up to order it


@dataclass(slots=True, eq=False, kw_only=True)
class SetStock(WalletOp):
    """The units of one of the actor's products available from now on (`merchant` as in
    AddProduct)."""

    merchant: bool = False
    product: int
    stock: int


@dataclass(slots=True, eq=False, kw_only=True)
class ShareProduct(WalletOp):
    """A product card: a "product" event in the direct conversation with `to`."""

    product: int
    to: str


@dataclass(slots=True, eq=False, kw_only=True)
class PlaceOrder(WalletOp):
    """Order `qty` units: the price held from the buyer for the merchant, the units taken
    from the stock, in one commit; `code`: the item a gated product takes."""

    product: int
    qty: int = 1
    code: str = ""
    timeout_ms: int = 86_400_000  # unfulfilled by then: voided, the units returned


@dataclass(slots=True, eq=False, kw_only=True)
class OrderStep(WalletOp):
    """accept, fulfil, decline (the merchant's) or cancel (the buyer's, before acceptance).
    Accepting holds the payment until `fulfil_ms` after the acceptance."""

    order: int
    step: str
    fulfil_ms: int = 7 * 86_400_000  # accepted and not fulfilled by then: voided, restocked
