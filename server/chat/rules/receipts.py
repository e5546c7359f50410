"""Read markers, receipts and the chat list.

Read state is one "read up to position N" marker per user and conversation, moving only
forward. Moving it adds a READ entry to the reader's own log (their other devices follow)
and, in a direct conversation, to the other participant's log (the sender learns it was
read) if the reader's privacy shows it to them. Group markers are not fanned out: members
ask with GET_RECEIPTS, so a large group reading does not become a storm of updates.
Delivered positions are derived from the positions devices acknowledged.

Who sees a user's positions is that user's privacy `receipts` (SPEC.md 18.5): read
positions go to the viewers it allows; delivered positions, which move when a device
connects, also need the user's presence privacy to allow the viewer. Hidden positions are
answered as 0 ("nothing yet"), so neither the setting nor a block shows.

The chat list counts a conversation's messages after the reader's marker (or, in a group,
after their join point) as unread.
"""

from __future__ import annotations

import msgpack
from liaotian.protocol import ErrorCode, UpdateKind

from ..model import Social
from ..ops import MarkRead, Refused
from ..plan import Needs, Plan
from .contacts import shows

_packb = msgpack.packb


def shows_read(owner: Social, viewer: int) -> bool:
    """Whether `viewer` may see the read positions of the user whose settings are `owner`."""
    return shows(owner, owner.receipts, viewer)


def shows_delivered(owner: Social, viewer: int) -> bool:
    """Delivered positions move when a device connects: presence privacy applies too."""
    return shows(owner, owner.receipts, viewer) and shows(owner, owner.presence, viewer)


def unread_after(read_pos: int, joined_pos: int) -> int:
    """The position after which a conversation's messages count as unread for a reader:
    their read marker, or the position before they joined (groups; 1 for direct)."""
    return max(read_pos, joined_pos - 1)


def needs(op: MarkRead, n: Needs, plan: Plan) -> None:
    n.convs.add(op.conv)
    n.users.add(op.actor)
    if op.peer is not None:
        n.users.add(op.peer)
        n.social.add(op.actor)


def mark_read(plan: Plan, op: MarkRead) -> None:
    """The handler checked membership and that the marker moves forward."""
    if op.read_pos > plan.last_pos(op.conv):
        raise Refused(ErrorCode.INVALID_FIELD, "pos is beyond the conversation's end")
    data = _packb({"conv": op.conv, "user": plan.username(op.actor), "pos": op.read_pos})
    plan.log(op.actor, UpdateKind.READ, data)
    peer = op.peer
    if peer is not None and peer != op.actor and shows_read(plan.social_ro(op.actor), peer):
        plan.log(peer, UpdateKind.READ, data)
    plan.set_read_marker(op.actor, op.conv, op.read_pos)
