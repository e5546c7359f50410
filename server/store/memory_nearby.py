"""MemoryStore's shares and merchants (contract.NearbyStore) and the shop's reads
(contract.ShopStore): the reference semantics.

The index is a dict of index cells, each a dict of the users filed under it, so a finder
reads the searched cells only, as SQLite's covering index does. Privacy and blocks are
read from the committed social state, as SQLite reads them from its tables.
"""

from __future__ import annotations

from typing import Any

from ..chat.model import VIS_CONTACTS, VIS_EVERYONE, Social
from ..chat.rules.nearby import LAST_KEEP_MS, Candidate, LastSeen, Share, last_seen
from ..chat.shop import Order, Product
from .contract import KIND_MERCHANT, MerchantProfile, StoreClosed
from .overlay import Committed


class MemoryNearby:
    """Mixed into MemoryStore."""

    state: Committed
    users: dict[int, Any]
    _accepting: bool

    def _init_nearby(self) -> None:
        self.shares: dict[int, Share] = {}
        self.share_lasts: dict[int, LastSeen] = {}  # what is left of ended shares
        self.hellos: dict[int, tuple[int, int]] = {}  # user -> (day, hellos counted)
        self.share_index: dict[int, dict[int, Share]] = {}  # index cell -> user -> share
        self.kinds: dict[int, int] = {}
        self.merchants: dict[int, MerchantProfile] = {}
        self.merchant_index: dict[int, set[int]] = {}  # index cell -> merchants

    def _check_open(self) -> None:
        if not self._accepting:
            raise StoreClosed()

    def _hides_from(self, uid: int, viewer: int) -> bool:
        s = self.state.social.get(uid) or Social()
        if viewer in s.blocked:
            return True
        if s.nearby == VIS_EVERYONE:
            return False
        return not (s.nearby == VIS_CONTACTS and viewer in s.contacts)

    def _nearby_name(self, uid: int) -> tuple[str, str]:
        u = self.users.get(uid)
        return self.state.usernames.get(uid, ""), (u.display_name if u is not None else "")

    # ------------------------------------------------------------------ shares

    async def nearby_put(self, share: Share) -> None:
        self._check_open()
        self._unfile(share.user)
        self.shares[share.user] = share
        self.share_index.setdefault(share.index, {})[share.user] = share

    async def nearby_share_of(self, uid: int) -> Share | None:
        return self.shares.get(uid)

    async def nearby_stop(self, uid: int) -> bool:
        self._check_open()
        old = self._unfile(uid)
        if old is None:
            return False
        self.share_lasts[uid] = last_seen(old)
        return True

    def _unfile(self, uid: int) -> Share | None:
        old = self.shares.pop(uid, None)
        if old is not None:
            filed = self.share_index.get(old.index)
            if filed is not None:
                filed.pop(uid, None)
                if not filed:
                    del self.share_index[old.index]
        return old

    async def nearby_people(self, viewer: int, indexes: list[int], now: int) -> list[Candidate]:
        out = []
        for index in indexes:
            for uid, s in self.share_index.get(index, {}).items():
                if s.expires <= now or self._hides_from(uid, viewer):
                    continue
                username, name = self._nearby_name(uid)
                out.append(Candidate(uid, username, name, s.cell))
        return out

    async def nearby_sweep(self, now: int, limit: int) -> int:
        due = [uid for uid, s in self.shares.items() if s.expires <= now][:limit]
        for uid in due:
            await self.nearby_stop(uid)
        for uid in [u for u, last in self.share_lasts.items() if last.at <= now - LAST_KEEP_MS]:
            del self.share_lasts[uid]
        return len(due)

    async def nearby_last(self, uid: int) -> LastSeen | None:
        return self.share_lasts.get(uid)

    async def nearby_take_hello(self, uid: int, day: int, limit: int) -> bool:
        self._check_open()
        counted_day, used = self.hellos.get(uid, (day, 0))
        used = used if counted_day == day else 0
        if used >= limit:
            return False
        self.hellos[uid] = (day, used + 1)
        return True

    # ------------------------------------------------------------------ merchants

    async def set_account_kind(self, uid: int, kind: int) -> None:
        self._check_open()
        self.kinds[uid] = kind

    async def account_kind(self, uid: int) -> int:
        return self.kinds.get(uid, 0)

    async def merchant_put(self, uid: int, profile: MerchantProfile) -> None:
        self._check_open()
        old = self.merchants.get(uid)
        if old is not None:
            self.merchant_index.get(old.index, set()).discard(uid)
        self.merchants[uid] = profile
        self.merchant_index.setdefault(profile.index, set()).add(uid)

    async def merchant_of(self, uid: int) -> MerchantProfile | None:
        if self.kinds.get(uid, 0) != KIND_MERCHANT:
            return None
        return self.merchants.get(uid)

    async def nearby_merchants(
        self, viewer: int, indexes: list[int], category: str | None
    ) -> list[Candidate]:
        out = []
        for index in indexes:
            for uid in self.merchant_index.get(index, ()):
                m = self.merchants[uid]
                if self.kinds.get(uid, 0) != KIND_MERCHANT:
                    continue
                if category is not None and m.category != category:
                    continue
                s = self.state.social.get(uid)
                if s is not None and viewer in s.blocked:
                    continue
                username, _name = self._nearby_name(uid)
                out.append(
                    Candidate(uid, username, m.name, m.cell, m.category, m.hours, m.lat, m.lon)
                )
        return out

    # ------------------------------------------------------------------ the shop's reads

    async def products_of(self, merchant: int) -> list[Product]:
        products = self.state.shop.products.values()
        return sorted((p for p in products if p.merchant == merchant), key=lambda p: p.id)

    async def product_by_id(self, pid: int) -> Product | None:
        return self.state.shop.products.get(pid)

    async def order_by_id(self, oid: int) -> Order | None:
        return self.state.shop.orders.get(oid)

    async def orders_of(self, uid: int, *, as_merchant: bool, limit: int) -> list[Order]:
        mine = [
            o
            for o in self.state.shop.orders.values()
            if (o.merchant if as_merchant else o.buyer) == uid
        ]
        return sorted(mine, key=lambda o: -o.id)[:limit]
