"""`client.nearby`: people and merchants nearby (SPEC.md 29).

    await client.nearby.share(31.2304, 121.4737)           # for 1 h (ttl: seconds)
    async for e in client.nearby.people(31.2304, 121.4737): # nearest bucket first
        print(e.user, e.within, e.hello)
    await client.nearby.hello("bob", "hi from the café")    # a contact request with a note
    await client.nearby.stop()
    shops = await client.nearby.merchants(31.23, 121.47, category="coffee")

Positions are given in degrees and sent as microdegrees. The server keeps only a coarse
cell of a person's position and tells distances as buckets (`within`, metres); merchants'
entries carry their exact location. Refusals raise RequestError: IMPLAUSIBLE_MOVE,
NOT_NEARBY, NOT_MERCHANT, RATE_LIMITED (queries, moves and hellos are limited).
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator

from liaotian.protocol.nearby import (
    GetMerchant,
    Merchant,
    MerchantSet,
    NearbyEntry,
    NearbyHello,
    NearbyList,
    NearbyQuery,
    NearbyShare,
    NearbyShared,
    NearbyStop,
)
from liaotian.protocol.social import Ok

from .facade import Facade

__all__ = ["Nearby", "e6"]


def e6(degrees: float) -> int:
    """Degrees as the wire's microdegrees."""
    return round(degrees * 1_000_000)


class Nearby(Facade):
    __slots__ = ()

    async def share(self, lat: float, lon: float, ttl: int = 3600) -> NearbyShared:
        """Share my position for `ttl` seconds (60..86400); moving it again replaces it."""
        return await self._ask(
            NearbyShare(rid=0, lat=e6(lat), lon=e6(lon), ttl=ttl), NearbyShared, retry=True
        )

    async def stop(self) -> None:
        """Stop sharing now."""
        await self._ask(NearbyStop(rid=0), Ok, retry=True)

    async def page(
        self,
        lat: float,
        lon: float,
        *,
        radius: int = 5000,
        kind: str = "people",
        category: str | None = None,
        limit: int = 20,
        after: int | None = None,
    ) -> tuple[builtins.list[NearbyEntry], int | None]:
        """One page of results and the cursor of the next (None: no more)."""
        got = await self._ask(
            NearbyQuery(
                rid=0,
                lat=e6(lat),
                lon=e6(lon),
                radius=radius,
                kind=kind,
                category=category,
                limit=limit,
                after=after,
            ),
            NearbyList,
            retry=True,
        )
        return builtins.list(got.entries), got.next

    async def people(
        self, lat: float, lon: float, *, radius: int = 5000, page_size: int = 20
    ) -> AsyncIterator[NearbyEntry]:
        """Everyone discoverable within `radius` metres, nearest bucket first."""
        after: int | None = None
        while True:
            entries, after = await self.page(lat, lon, radius=radius, limit=page_size, after=after)
            for e in entries:
                yield e
            if after is None:
                return

    async def merchants(
        self,
        lat: float,
        lon: float,
        *,
        radius: int = 5000,
        category: str | None = None,
        limit: int = 50,
    ) -> builtins.list[NearbyEntry]:
        """Merchants within `radius` metres (of `category`), nearest bucket first."""
        entries, _next = await self.page(
            lat, lon, radius=radius, kind="merchants", category=category, limit=limit
        )
        return entries

    async def hello(self, user: str, note: str = "") -> None:
        """Say hello to someone found nearby: a contact request carrying `note`."""
        await self._ask(NearbyHello(rid=0, user=user, note=note), Ok, retry=False)

    async def set_merchant(
        self, name: str, category: str, lat: float, lon: float, hours: str = ""
    ) -> Merchant:
        """My merchant profile (a merchant account's; NOT_MERCHANT otherwise)."""
        return await self._ask(
            MerchantSet(rid=0, name=name, category=category, lat=e6(lat), lon=e6(lon), hours=hours),
            Merchant,
            retry=True,
        )

    async def merchant(self, user: str) -> Merchant:
        """A merchant's public profile."""
        return await self._ask(GetMerchant(rid=0, user=user), Merchant, retry=True)
