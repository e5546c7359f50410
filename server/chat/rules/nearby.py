"""People and merchants nearby (SPEC.md 29): what a share keeps, who a query finds, and
how far they are said to be.

Privacy first (Telegram's People Nearby was trilaterated from exact distances): a person's
position is snapped to an H3 cell of resolution 9 (~0.1 km², ~200 m across) before the
store sees it, and nothing finer is ever kept. Distances are measured from the query
point to the *centre of the cell* and answered as buckets (< 500 m, < 1 km, < 2 km,
< 5 km, then whole kilometres), and the order inside a bucket is by user id, not by
distance. So every answer is a function of the cell alone: two positions in one cell are
indistinguishable to any number of queries from anywhere, and a trilateration can at best
find the cell (tests/chat/test_nearby_rules.py attacks it).

Why H3 and not an R*Tree: the cell is the privacy unit anyway, so it doubles as the index
key. Each share is also filed under its resolution-7 parent (~5 km², ~1.4 km across); a
query covers its disk with a few dozen such parents (`search_cells`) and reads only the
shares filed under them (an index range per parent: SQLite's B-tree, and PostgreSQL's
later, with no extension), so its cost grows with the people near the point, not with
everyone sharing. The same index serves merchants, filed by their exact location's cells.

Abuse: shares expire (1 h by default, 24 h at most); a move faster than an airliner is
refused (`check_move`), also from the district of a share that ended (`LastSeen`, kept
by the store for a day); hellos are limited per UTC day (counted by the store, so a
restart forgives none); queries and moves are rate-limited by the handler, in memory.

Pure: no clock (times are passed in), no store; h3 is pure computation, through its
integer API (cells are kept as integers; the string API's conversions made `snap` 4x and
`centre` 2.5x slower, and a query calls `centre` per candidate).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import h3
from h3.api import basic_int as h3i
from liaotian.protocol import ErrorCode

from ..model import VIS_CONTACTS, VIS_EVERYONE, Social
from ..ops import Refused

RES_CELL = 9  # what is kept of a person's position: ~0.105 km² hexagons
RES_INDEX = 7  # what shares are filed under: ~5.2 km² hexagons
RES_LAST = 5  # what is kept of an ended share, for the next share's jump check: ~250 km²
LAST_KEEP_MS = 86_400_000  # how long: by then 300 m/s allows any move on Earth
BUCKETS = (500, 1_000, 2_000, 5_000)  # metres; beyond: whole kilometres
MAX_SPEED = 300.0  # m/s: faster than any airliner is implausible
MOVE_SLACK = 3_000.0  # metres any move may make (cells, GPS noise, a fresh fix)
EXPIRY_SLACK = 20  # a refresh rewrites the expiry only to gain more than ttl / EXPIRY_SLACK
DEFAULT_TTL_S = 3_600
MAX_TTL_S = 86_400
MIN_TTL_S = 60
# the index cell's smallest centre-to-centre spacing, with margin for H3's distortion
_INDEX_STEP = h3.average_hexagon_edge_length(RES_INDEX, "m") * math.sqrt(3) * 0.7
# how far from its index cell's centre a cell centre filed under it may lie: the index
# cell's circumradius (its edge) with margin for H3's distortion and for children that
# stick out of their parent, plus a stored cell's own size
_REACH = 1.6 * h3.average_hexagon_edge_length(RES_INDEX, "m") + 2 * h3.average_hexagon_edge_length(
    RES_CELL, "m"
)
# how far from its area's centre an ended share's cell may have been, with margin
_LAST_REACH = 1.6 * h3.average_hexagon_edge_length(RES_LAST, "m")
DAY_MS = 86_400_000
CURSOR_SHIFT = 40  # cursor = bucket << 40 | user id


@dataclass(frozen=True, slots=True)
class Spot:
    """A position as it is kept: its cell and the index cell it is filed under."""

    cell: int
    index: int


@dataclass(frozen=True, slots=True)
class Share:
    """A user's live share: kept until `expires` (ms); `moved` is when its cell was set."""

    user: int
    cell: int
    index: int
    expires: int
    moved: int


@dataclass(frozen=True, slots=True)
class LastSeen:
    """What the store keeps of a share that stopped or expired, for LAST_KEEP_MS and only
    for the jump check of the user's next share: the resolution-5 cell around its cell
    (a district, not a street) and when that cell was set."""

    area: int
    at: int


def last_seen(s: Share) -> LastSeen:
    return LastSeen(int(h3i.cell_to_parent(s.cell, RES_LAST)), s.moved)


@dataclass(frozen=True, slots=True)
class Candidate:
    """What the store found under the searched index cells (its privacy filter applied:
    see store/contract.NearbyStore): `cell` is the person's cell, or for a merchant the
    cell of its exact location, given in `lat`/`lon` (microdegrees)."""

    user: int
    username: str
    name: str
    cell: int
    category: str = ""
    hours: str = ""
    lat: int | None = None
    lon: int | None = None


@dataclass(frozen=True, slots=True)
class Found:
    candidate: Candidate
    within: int  # the bucket, metres
    hello: bool


def degrees(e6: int) -> float:
    return e6 / 1_000_000


def check_point(lat_e6: int, lon_e6: int) -> None:
    if not (-90_000_000 <= lat_e6 <= 90_000_000 and -180_000_000 <= lon_e6 <= 180_000_000):
        raise Refused(ErrorCode.INVALID_FIELD, "lat must be within ±90°, lon within ±180°")


def snap(lat_e6: int, lon_e6: int) -> Spot:
    """The cell kept for a position, and its index cell."""
    check_point(lat_e6, lon_e6)
    cell = int(h3i.latlng_to_cell(degrees(lat_e6), degrees(lon_e6), RES_CELL))
    return Spot(cell, parent(cell))


def parent(cell: int) -> int:
    return int(h3i.cell_to_parent(cell, RES_INDEX))


def index_of(lat_e6: int, lon_e6: int) -> int:
    """The index cell of an exact position (a merchant's)."""
    return snap(lat_e6, lon_e6).index


def cell_hex(cell: int) -> str:
    return str(h3.int_to_str(cell))


def centre(cell: int) -> tuple[float, float]:
    lat, lon = h3i.cell_to_latlng(cell)
    return float(lat), float(lon)


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(h3.great_circle_distance(a, b, "m"))


def bucket(d: float) -> int:
    """The distance bucket (metres) a distance is told as."""
    for b in BUCKETS:
        if d < b:
            return b
    return math.ceil(d / 1000.0) * 1000


def search_cells(lat_e6: int, lon_e6: int, radius: int) -> list[int]:
    """The index cells that cover the disk of `radius` metres around the point: the rings
    around the point's index cell far enough to cover it, less the cells whose centre is
    farther than the radius plus `_REACH` (no cell centre filed under them can be within
    the radius), which halves what a 5 km query reads."""
    check_point(lat_e6, lon_e6)
    here = (degrees(lat_e6), degrees(lon_e6))
    origin = h3i.latlng_to_cell(here[0], here[1], RES_INDEX)
    k = math.ceil(radius / _INDEX_STEP) + 1
    reach = radius + _REACH
    return sorted(
        int(c)
        for c in h3i.grid_disk(origin, k)
        if h3.great_circle_distance(here, h3i.cell_to_latlng(c), "m") <= reach
    )


def ttl_ms(ttl_s: int | None) -> int:
    ttl = DEFAULT_TTL_S if ttl_s is None else ttl_s
    if not MIN_TTL_S <= ttl <= MAX_TTL_S:
        raise Refused(ErrorCode.INVALID_FIELD, f"ttl must be {MIN_TTL_S}..{MAX_TTL_S} seconds")
    return ttl * 1000


def check_move(prev: Share | None, spot: Spot, now: int, last: LastSeen | None = None) -> None:
    """Refuse a move faster than MAX_SPEED (with MOVE_SLACK): positions are someone's,
    not a probe an attacker slides around the map. The anchor is the live share's cell;
    without one, what is left of the last share (`last`, or an expired `prev` not yet
    swept): its area, with the area's size added to the slack, for LAST_KEEP_MS. So
    stopping and sharing again does not make a teleport plausible, and a restart does
    not either (the store keeps both)."""
    if prev is not None and prev.expires > now:
        if prev.cell == spot.cell:
            return
        there, since, slack = centre(prev.cell), prev.moved, MOVE_SLACK
    else:
        if prev is not None:
            last = last_seen(prev)
        if last is None or now - last.at >= LAST_KEEP_MS:
            return
        there, since, slack = centre(last.area), last.at, MOVE_SLACK + _LAST_REACH
    d = distance_m(there, centre(spot.cell))
    elapsed = max(now - since, 0) / 1000.0
    if d > slack + MAX_SPEED * elapsed:
        raise Refused(
            ErrorCode.IMPLAUSIBLE_MOVE,
            f"moved {d / 1000:.0f} km in {elapsed:.0f} s; stop sharing and share again later",
        )


def share(
    prev: Share | None,
    uid: int,
    lat_e6: int,
    lon_e6: int,
    ttl_s: int,
    now: int,
    last: LastSeen | None = None,
) -> Share:
    """The share a NEARBY_SHARE keeps (or IMPLAUSIBLE_MOVE).

    Returns `prev` itself when nothing needs writing: the position is in the live share's
    cell and the expiry asked for is at most ttl / EXPIRY_SLACK (3 min of an hour) later
    than the one kept. Most moves stay in the cell (~350 m across), and a client refreshes
    its share every few seconds: those refreshes cost a read, not a commit. The same slack
    keeps the expiry when only the cell changes, so the expiry index is not rewritten
    either. The answer tells the expiry kept, so it may be up to that slack short of
    now + ttl (SPEC.md 29.2); it is never later than asked."""
    spot = snap(lat_e6, lon_e6)
    ttl = ttl_ms(ttl_s)
    expires = now + ttl
    check_move(prev, spot, now, last)
    if prev is None or prev.expires <= now:
        return Share(uid, spot.cell, spot.index, expires, now)
    if 0 <= expires - prev.expires <= ttl // EXPIRY_SLACK:
        if prev.cell == spot.cell:
            return prev
        expires = prev.expires
    moved = prev.moved if prev.cell == spot.cell else now
    return Share(uid, spot.cell, spot.index, expires, moved)


def hello_day(now: int) -> int:
    """The UTC day a hello counts against (hellos are limited per user per day)."""
    return now // DAY_MS


def next_day_s(now: int) -> float:
    """Seconds until the next UTC day, when the hello limit starts over."""
    return ((now // DAY_MS + 1) * DAY_MS - now) / 1000.0


def discoverable(owner: Social, viewer: int) -> bool:
    """Privacy `nearby` of the owner (everyone, contacts, nobody), and no block either
    way... the viewer's own blocks are the caller's (`find`)."""
    if viewer in owner.blocked:
        return False
    if owner.nearby == VIS_EVERYONE:
        return True
    return owner.nearby == VIS_CONTACTS and viewer in owner.contacts


def may_hello(me: Social, viewer: int, other: int) -> bool:
    """Whether a hello (a contact request) from `viewer` to `other` would be new and
    allowed: not yourself, not a contact, not asked already, not blocked by you."""
    return (
        other != viewer
        and other not in me.contacts
        and other not in me.outgoing
        and other not in me.blocked
    )


def find(
    candidates: Iterable[Candidate],
    me: Social,
    viewer: int,
    lat_e6: int,
    lon_e6: int,
    radius: int,
    *,
    exact: bool = False,
    after: int | None = None,
    limit: int = 20,
    hello_left: bool = True,
) -> tuple[list[Found], int | None]:
    """The page of results: within `radius` of the point, nearest bucket first, then by
    user id; the cursor of the next page, if any. People are measured to their cell's
    centre; merchants (`exact`) to their location. The viewer and those the viewer
    blocked are left out (the store left out whoever hides from the viewer)."""
    here = (degrees(lat_e6), degrees(lon_e6))
    rows: list[tuple[int, Found]] = []
    for c in candidates:
        if c.user == viewer or c.user in me.blocked:
            continue
        if exact and c.lat is not None and c.lon is not None:
            there = (degrees(c.lat), degrees(c.lon))
        else:
            there = centre(c.cell)
        d = distance_m(here, there)
        if d > radius:
            continue
        within = bucket(d)
        key = within << CURSOR_SHIFT | c.user
        if after is not None and key <= after:
            continue
        hello = hello_left and may_hello(me, viewer, c.user)
        rows.append((key, Found(c, within, hello)))
    rows.sort(key=lambda r: r[0])
    page = rows[:limit]
    more = len(rows) > limit
    return [f for _k, f in page], (page[-1][0] if more and page else None)
