"""People and merchants nearby, and merchant profiles (SPEC.md section 29).

Positions travel as integer microdegrees (`lat`, `lon`: degrees x 1,000,000), so the
codec needs no signed floats and every peer rounds alike. A person's position is never
stored or returned: the server snaps it to a coarse cell first, and answers distances as
buckets (`within`, metres: 500, 1000, 2000, 5000, then whole kilometres). A merchant's
location is public: its entries carry it exactly.
"""

from __future__ import annotations

from .base import Message, MessageType
from .codec import Record, message, record, wire

__all__ = [
    "KINDS",
    "MAX_HOURS",
    "MAX_NOTE",
    "MAX_RADIUS",
    "MAX_TTL",
    "NEARBY_CLASSES",
    "GetMerchant",
    "Merchant",
    "MerchantSet",
    "NearbyEntry",
    "NearbyHello",
    "NearbyList",
    "NearbyQuery",
    "NearbyShare",
    "NearbyShared",
    "NearbyStop",
]

M = MessageType
USER_MAX = 256
LAT_E6 = 90_000_000
LON_E6 = 180_000_000
MAX_TTL = 86_400  # seconds a share lasts at most (24 h)
DEFAULT_TTL = 3_600  # seconds (1 h)
MAX_RADIUS = 50_000  # metres
MAX_NOTE = 120  # characters of a hello's note
MAX_HOURS = 120  # characters of a merchant's opening hours
KINDS = ("people", "merchants")


@record()
class NearbyEntry(Record):
    """One user or merchant found nearby; `within` is the distance bucket (metres)."""

    user: str = wire(max=USER_MAX)
    name: str = wire(max=64)  # the display name ('' : none set)
    within: int
    hello: bool  # whether a NEARBY_HELLO to this user would be accepted now
    avatar: bytes | None = None  # the profile's avatar blob (SHA-256), if it has one
    category: str | None = wire(default=None, max=32)  # merchants
    hours: str | None = wire(default=None, max=MAX_HOURS)  # merchants
    lat: int | None = wire(default=None, lo=-LAT_E6, hi=LAT_E6)  # merchants: exact
    lon: int | None = wire(default=None, lo=-LON_E6, hi=LON_E6)


@message(M.NEARBY_SHARE)
class NearbyShare(Message):
    """Share (or move) my position for `ttl` seconds; answered NEARBY_SHARED."""

    lat: int = wire(lo=-LAT_E6, hi=LAT_E6)
    lon: int = wire(lo=-LON_E6, hi=LON_E6)
    ttl: int = wire(default=DEFAULT_TTL, lo=60, hi=MAX_TTL)


@message(M.NEARBY_SHARED)
class NearbyShared(Message):
    cell: str = wire(max=16)  # the cell kept instead of the position (H3, hexadecimal)
    expires: int  # ms


@message(M.NEARBY_STOP)
class NearbyStop(Message):
    """Stop sharing now (answered OK, also when nothing was shared)."""


@message(M.NEARBY_QUERY)
class NearbyQuery(Message):
    """Who is within `radius` metres of the point, nearest bucket first, paged (`after`:
    the `next` of the previous page)."""

    lat: int = wire(lo=-LAT_E6, hi=LAT_E6)
    lon: int = wire(lo=-LON_E6, hi=LON_E6)
    radius: int = wire(default=5_000, lo=100, hi=MAX_RADIUS)
    kind: str = wire(default="people", choices=KINDS)
    category: str | None = wire(default=None, max=32)  # merchants of this category only
    limit: int = wire(default=20, lo=1, hi=50)
    after: int | None = None


@message(M.NEARBY_LIST)
class NearbyList(Message):
    entries: tuple[NearbyEntry, ...] = wire(max_items=50)
    next: int | None = None  # give as `after` for the next page; absent: no more


@message(M.NEARBY_HELLO)
class NearbyHello(Message):
    """A contact request with a short note to a user found nearby (answered OK)."""

    user: str = wire(max=USER_MAX)
    note: str = wire(default="", max=MAX_NOTE)


@message(M.MERCHANT_SET)
class MerchantSet(Message):
    """A merchant account's public profile (answered MERCHANT); NOT_MERCHANT otherwise."""

    name: str = wire(min=1, max=64)
    category: str = wire(min=1, max=32)
    lat: int = wire(lo=-LAT_E6, hi=LAT_E6)
    lon: int = wire(lo=-LON_E6, hi=LON_E6)
    hours: str = wire(default="", max=MAX_HOURS)


@message(M.GET_MERCHANT)
class GetMerchant(Message):
    user: str = wire(max=USER_MAX)


@message(M.MERCHANT)
class Merchant(Message):
    user: str = wire(max=USER_MAX)
    name: str = wire(max=64)
    category: str = wire(max=32)
    hours: str = wire(max=MAX_HOURS)
    lat: int = wire(lo=-LAT_E6, hi=LAT_E6)
    lon: int = wire(lo=-LON_E6, hi=LON_E6)


NEARBY_CLASSES: tuple[type[Message], ...] = (
    NearbyShare,
    NearbyShared,
    NearbyStop,
    NearbyQuery,
    NearbyList,
    NearbyHello,
    MerchantSet,
    GetMerchant,
    Merchant,
)
