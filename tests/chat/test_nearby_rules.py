"""The nearby rules without a store or a socket (chat/rules/nearby.py): snapping, buckets,
search cells, expiry bounds, implausible moves, the order and paging of results, hellos,
and the trilateration attack that must learn nothing finer than the cell."""

from __future__ import annotations

import math
import random

import h3
import pytest
from liaotian.protocol import ErrorCode
from liaotian.server.chat.model import Social
from liaotian.server.chat.ops import Refused
from liaotian.server.chat.rules import nearby as rules

HERE = (31_230_400, 121_473_700)
NOW = 1_700_000_000_000


def e6(lat: float, lon: float) -> tuple[int, int]:
    return round(lat * 1e6), round(lon * 1e6)


def candidate(uid: int, point: tuple[int, int]) -> rules.Candidate:
    return rules.Candidate(uid, f"u{uid}", "", rules.snap(*point).cell)


def offset(point: tuple[int, int], north_m: float, east_m: float) -> tuple[int, int]:
    lat, lon = point[0] / 1e6, point[1] / 1e6
    dlat = north_m / 111_320.0
    dlon = east_m / (111_320.0 * math.cos(math.radians(lat)))
    return e6(lat + dlat, lon + dlon)


def test_snapping_keeps_a_cell_of_about_a_tenth_of_a_square_kilometre() -> None:
    spot = rules.snap(*HERE)
    assert h3.get_resolution(h3.int_to_str(spot.cell)) == rules.RES_CELL
    assert 0.05 < h3.cell_area(h3.int_to_str(spot.cell), "km^2") < 0.2
    assert spot.index == rules.parent(spot.cell)
    # every point of a cell keeps the same cell
    near = offset(HERE, 10, 10)
    assert (
        rules.snap(*near).cell == spot.cell
        or h3.grid_distance(h3.int_to_str(rules.snap(*near).cell), h3.int_to_str(spot.cell)) == 1
    )
    with pytest.raises(Refused):
        rules.snap(91_000_000, 0)


def test_distances_are_buckets() -> None:
    assert [rules.bucket(d) for d in (0, 499, 500, 999, 1500, 4999, 5000, 7200)] == [
        500,
        500,
        1000,
        1000,
        2000,
        5000,
        5000,
        8000,
    ]


def test_search_cells_cover_the_radius() -> None:
    """Every cell whose centre is within the radius is filed under a searched cell (here,
    near the poles' distortion, and at the radius' edge)."""
    rng = random.Random(1)
    for origin in (HERE, e6(64.1, -21.9), e6(-54.8, -68.3), e6(0.5, 179.9)):
        cells = set(rules.search_cells(*origin, 5000))
        assert len(cells) < 60  # the query reads a few dozen index ranges, not the map
        here = (origin[0] / 1e6, origin[1] / 1e6)
        for _ in range(8000):
            angle, dist = rng.uniform(0, 2 * math.pi), 5000 * math.sqrt(rng.random())
            p = offset(origin, dist * math.cos(angle), dist * math.sin(angle))
            p = (p[0], max(-180_000_000, min(180_000_000, p[1])))
            spot = rules.snap(*p)
            if rules.distance_m(here, rules.centre(spot.cell)) <= 5000:
                assert spot.index in cells


def test_ttl_defaults_to_an_hour_and_is_capped_at_a_day() -> None:
    s = rules.share(None, 1, *HERE, rules.DEFAULT_TTL_S, NOW)
    assert s.expires == NOW + 3_600_000 and s.moved == NOW
    assert rules.share(None, 1, *HERE, 86_400, NOW).expires == NOW + 86_400_000
    for bad in (59, 86_401):
        with pytest.raises(Refused) as err:
            rules.share(None, 1, *HERE, bad, NOW)
        assert err.value.code == ErrorCode.INVALID_FIELD


def test_an_implausible_move_is_refused_a_plausible_one_is_not() -> None:
    s = rules.share(None, 1, *HERE, 3600, NOW)
    beijing = e6(39.9042, 116.4074)  # ~1,070 km
    with pytest.raises(Refused) as err:
        rules.share(s, 1, *beijing, 3600, NOW + 60_000)
    assert err.value.code == ErrorCode.IMPLAUSIBLE_MOVE
    # by plane, after four hours: fine
    assert rules.share(s, 1, *beijing, 3600, NOW + 4 * 3_600_000).cell != s.cell
    # a walk across the street: fine at once
    moved = rules.share(s, 1, *offset(HERE, 400, 0), 3600, NOW + 1000)
    assert moved.moved == NOW + 1000
    # an expired share (not yet swept) still anchors the next one, by its district
    gone = rules.Share(1, s.cell, s.index, NOW, NOW)
    with pytest.raises(Refused):
        rules.share(gone, 1, *beijing, 3600, NOW + 1)
    assert rules.share(gone, 1, *offset(HERE, 20_000, 0), 3600, NOW + 1).cell != s.cell
    # ... for a day, after which nothing is left of it
    later = NOW + rules.LAST_KEEP_MS
    assert rules.share(gone, 1, *beijing, 3600, later).cell == rules.snap(*beijing).cell


def test_what_is_left_of_a_stopped_share_anchors_the_next_one() -> None:
    """Stopping and sharing again (or a restart: the store keeps LastSeen) does not make a
    teleport plausible; the district kept is coarse (resolution 5), not the cell."""
    s = rules.share(None, 1, *HERE, 3600, NOW)
    last = rules.last_seen(s)
    assert h3.get_resolution(h3.int_to_str(last.area)) == rules.RES_LAST
    assert h3.cell_area(h3.int_to_str(last.area), "km^2") > 100
    beijing = e6(39.9042, 116.4074)
    with pytest.raises(Refused) as err:
        rules.share(None, 1, *beijing, 3600, NOW + 60_000, last)
    assert err.value.code == ErrorCode.IMPLAUSIBLE_MOVE
    assert rules.share(None, 1, *beijing, 3600, NOW + 4 * 3_600_000, last).cell != s.cell
    # anywhere in the district is fine at once
    assert rules.share(None, 1, *offset(HERE, 5_000, 5_000), 3600, NOW + 1, last).moved == NOW + 1
    # no share and nothing left: no anchor
    assert rules.share(None, 1, *beijing, 3600, NOW + 1).cell == rules.snap(*beijing).cell


def test_a_refresh_in_the_same_cell_keeps_the_share_so_nothing_is_written() -> None:
    s = rules.share(None, 1, *HERE, 3600, NOW)
    # within the cell, the expiry gaining less than ttl / EXPIRY_SLACK: the same share
    slack = 3_600_000 // rules.EXPIRY_SLACK
    assert rules.share(s, 1, *offset(HERE, 5, 5), 3600, NOW + slack) is s
    # the expiry gaining more: rewritten, the cell's time kept
    later = rules.share(s, 1, *HERE, 3600, NOW + slack + 1)
    assert later is not s and later.expires == NOW + slack + 1 + 3_600_000
    assert later.moved == NOW and later.cell == s.cell
    # a shorter share asked for: rewritten at once
    assert rules.share(s, 1, *HERE, 600, NOW + 1000).expires == NOW + 601_000
    # another cell: rewritten, keeping the expiry within the slack (its index untouched)
    moved = rules.share(s, 1, *offset(HERE, 600, 0), 3600, NOW + 1000)
    assert moved.cell != s.cell and moved.expires == s.expires and moved.moved == NOW + 1000
    # never later than asked, never more than the slack short of it
    for t in range(0, 3 * slack, slack // 7):
        got = rules.share(s, 1, *HERE, 3600, NOW + t)
        assert NOW + t + 3_600_000 - slack <= got.expires <= NOW + t + 3_600_000


def test_hellos_count_per_utc_day() -> None:
    day = rules.hello_day(NOW)
    assert rules.hello_day(NOW + rules.next_day_s(NOW) * 1000) == day + 1
    assert rules.hello_day(NOW + rules.next_day_s(NOW) * 1000 - 1) == day
    assert 0 < rules.next_day_s(NOW) <= 86_400


def test_results_nearest_bucket_first_then_by_id_paged_without_the_viewer_or_blocked() -> None:
    points = {
        7: offset(HERE, 1500, 0),
        3: offset(HERE, 1600, 0),
        9: offset(HERE, 200, 0),
        4: offset(HERE, 3000, 0),
        5: offset(HERE, 9000, 0),  # outside the radius
        1: HERE,  # the viewer
        6: offset(HERE, 100, 0),  # blocked by the viewer
    }
    me = Social(blocked={6}, contacts={3})
    cands = [candidate(u, p) for u, p in points.items()]
    page, after = rules.find(cands, me, 1, *HERE, 5000, limit=2)
    assert [(f.candidate.user, f.within) for f in page] == [(9, 500), (3, 2000)]
    assert [f.hello for f in page] == [True, False]  # 3 is a contact already
    page2, after2 = rules.find(cands, me, 1, *HERE, 5000, limit=2, after=after)
    assert [(f.candidate.user, f.within) for f in page2] == [(7, 2000), (4, 5000)]
    assert after2 is None


def test_privacy_nearby_and_blocks() -> None:
    assert rules.discoverable(Social(), 2)
    assert not rules.discoverable(Social(nearby=2), 2)
    assert rules.discoverable(Social(nearby=1, contacts={2}), 2)
    assert not rules.discoverable(Social(nearby=1), 2)
    assert not rules.discoverable(Social(blocked={2}), 2)
    assert not rules.may_hello(Social(outgoing={5}), 1, 5)
    assert not rules.may_hello(Social(), 1, 1)


def _answers(victim: tuple[int, int], probes: list[tuple[int, int]], radii: list[int]) -> list:
    """What an attacker learns about the victim from each probe and radius."""
    out = []
    for p in probes:
        for r in radii:
            page, _ = rules.find([candidate(2, victim)], Social(), 1, *p, r)
            out.append(page[0].within if page else None)
    return out


def test_trilateration_learns_nothing_finer_than_the_cell() -> None:
    """An attacker queries from a grid of shifted points with several radii (exactly the
    attack on exact distances). Every position inside the victim's cell answers alike, so
    no number of queries tells them apart; and fitting a position to the answers finds
    the cell's centre, not the victim."""
    victim = offset(HERE, 37, -61)
    cell = rules.snap(*victim).cell
    # positions spread over the same cell
    clat, clon = rules.centre(cell)
    same_cell = [
        p
        for p in (
            offset(e6(clat, clon), n, e) for n in range(-150, 151, 50) for e in (-150, 0, 150)
        )
        if rules.snap(*p).cell == cell
    ]
    assert len(same_cell) >= 5
    probes = [
        offset(victim, n, e) for n in range(-3000, 3001, 600) for e in range(-3000, 3001, 600)
    ]
    radii = [300, 700, 1500, 3000, 5000]
    truth = _answers(victim, probes, radii)
    for p in same_cell:
        assert _answers(p, probes, radii) == truth
    # the attacker's best fit, on a 20 m grid around the victim: positions whose exact
    # distances fall in every answered bucket
    fits = []
    for n in range(-300, 301, 20):
        for e in range(-300, 301, 20):
            guess = offset(victim, n, e)
            here = (guess[0] / 1e6, guess[1] / 1e6)
            ok = True
            for i, p in enumerate(probes):
                d = rules.distance_m((p[0] / 1e6, p[1] / 1e6), here)
                for j, r in enumerate(radii):
                    said = truth[i * len(radii) + j]
                    if (said is None) != (d > r) or (said is not None and rules.bucket(d) != said):
                        ok = False
                        break
                if not ok:
                    break
            if ok:
                fits.append(here)
    assert fits, "the cell centre itself fits"
    lat = sum(f[0] for f in fits) / len(fits)
    lon = sum(f[1] for f in fits) / len(fits)
    to_centre = rules.distance_m((lat, lon), (clat, clon))
    to_victim = rules.distance_m((lat, lon), (victim[0] / 1e6, victim[1] / 1e6))
    assert to_centre < to_victim  # it found the cell, not the person
    assert to_victim > 40  # and the person is as far from the fit as from the cell centre
