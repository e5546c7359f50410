"""The method names `Client` had before the feature facades, kept so existing code runs.

Each is a one-line delegation to a facade and stays supported; new code may use either
spelling. `client.groups()`, `client.contacts()` and `client.presence(users)` need no entry
here: the facades themselves are callable.

| old | new |
|---|---|
| `send_group`, `history_group` | `groups.send`, `groups.history` |
| `create_group`, `group_info`, `groups_page` | `groups.create`, `.info`, `.page` |
| `add_members`, `remove_member`, `leave_group` | `groups.add`, `.remove`, `.leave` |
| `update_group`, `set_role`, `transfer_group` | `groups.update`, `.set_role`, `.transfer` |
| `contact_request/accept/decline/cancel/remove` | `contacts.request/accept/...` |
| `block`, `unblock` | `contacts.block`, `contacts.unblock` |
| `profile`, `set_profile`, `privacy`, `set_privacy` | `account.profile`, ... |
| `devices`, `revoke_device`, `logout` | `account.devices`, `.revoke_device`, `.logout` |
| `typing`, `typing_renew/_rate/_burst` | `presence.typing`, `presence.throttle.*` |
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from liaotian.protocol import DeviceInfo, HistoryPage, Sent
from liaotian.protocol.social import GroupInfo, GroupSummary, Privacy, Profile

from .account import Account
from .contacts import Contacts
from .groups import Groups
from .presence import Presence
from .session import DEFAULT, TimeoutArg

__all__ = ["CompatMethods"]


class CompatMethods:
    """Mixed into `Client`: the pre-facade methods, delegating."""

    groups: Groups
    contacts: Contacts
    account: Account
    presence: Presence

    # ------------------------------------------------------------------ groups

    async def send_group(
        self,
        group: int,
        text: str,
        meta: dict[str, Any] | None = None,
        cmid: str | None = None,
        *,
        timeout: TimeoutArg = DEFAULT,
    ) -> Sent:
        """`groups.send()`."""
        return await self.groups.send(group, text, meta, cmid, timeout=timeout)

    async def history_group(
        self,
        group: int,
        before: int | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> HistoryPage:
        """`groups.history()`."""
        return await self.groups.history(group, before, after, limit)

    async def create_group(self, name: str, members: Iterable[str], topic: str = "") -> GroupInfo:
        """`groups.create()`."""
        return await self.groups.create(name, members, topic)

    async def group_info(self, group: int) -> GroupInfo:
        """`groups.info()`."""
        return await self.groups.info(group)

    async def groups_page(
        self, *, limit: int | None = None, after: int | None = None
    ) -> tuple[list[GroupSummary], bool]:
        """`groups.page()`."""
        return await self.groups.page(limit=limit, after=after)

    async def add_members(self, group: int, users: str | Iterable[str]) -> int:
        """`groups.add()`."""
        return await self.groups.add(group, users)

    async def remove_member(self, group: int, user: str) -> int:
        """`groups.remove()`."""
        return await self.groups.remove(group, user)

    async def leave_group(self, group: int) -> int:
        """`groups.leave()`."""
        return await self.groups.leave(group)

    async def update_group(
        self, group: int, name: str | None = None, topic: str | None = None
    ) -> int:
        """`groups.update()`."""
        return await self.groups.update(group, name, topic)

    async def set_role(self, group: int, user: str, role: str) -> int:
        """`groups.set_role()`."""
        return await self.groups.set_role(group, user, role)

    async def transfer_group(self, group: int, user: str) -> int:
        """`groups.transfer()`."""
        return await self.groups.transfer(group, user)

    # ------------------------------------------------------------------ contacts

    async def contact_request(self, user: str) -> None:
        """`contacts.request()`."""
        await self.contacts.request(user)

    async def contact_accept(self, user: str) -> None:
        """`contacts.accept()`."""
        await self.contacts.accept(user)

    async def contact_decline(self, user: str) -> None:
        """`contacts.decline()`."""
        await self.contacts.decline(user)

    async def contact_cancel(self, user: str) -> None:
        """`contacts.cancel()`."""
        await self.contacts.cancel(user)

    async def contact_remove(self, user: str) -> None:
        """`contacts.remove()`."""
        await self.contacts.remove(user)

    async def block(self, user: str) -> None:
        """`contacts.block()`."""
        await self.contacts.block(user)

    async def unblock(self, user: str) -> None:
        """`contacts.unblock()`."""
        await self.contacts.unblock(user)

    # ------------------------------------------------------------------ account

    async def profile(self, user: str | None = None) -> Profile:
        """`account.profile()`."""
        return await self.account.profile(user)

    async def set_profile(self, display_name: str | None = None, status: str | None = None) -> None:
        """`account.set_profile()`."""
        await self.account.set_profile(display_name, status)

    async def privacy(self) -> Privacy:
        """`account.privacy()`."""
        return await self.account.privacy()

    async def set_privacy(
        self,
        presence: str | None = None,
        profile: str | None = None,
        messages: str | None = None,
        groups: str | None = None,
        *,
        receipts: str | None = None,
    ) -> None:
        """`account.set_privacy()`."""
        await self.account.set_privacy(presence, profile, messages, groups, receipts=receipts)

    async def devices(self) -> list[DeviceInfo]:
        """`account.devices()`."""
        return await self.account.devices()

    async def revoke_device(self, device: str) -> None:
        """`account.revoke_device()`."""
        await self.account.revoke_device(device)

    async def logout(self) -> None:
        """`account.logout()`."""
        await self.account.logout()

    # ------------------------------------------------------------------ typing

    async def typing(
        self, to: str | None = None, group: int | None = None, typing: bool = True
    ) -> bool:
        """`presence.typing()`."""
        return await self.presence.typing(to, group, typing)

    @property
    def typing_renew(self) -> float:
        """`presence.throttle.renew`."""
        return self.presence.throttle.renew

    @typing_renew.setter
    def typing_renew(self, value: float) -> None:
        self.presence.throttle.renew = value

    @property
    def typing_rate(self) -> float:
        """`presence.throttle.rate`."""
        return self.presence.throttle.rate

    @typing_rate.setter
    def typing_rate(self, value: float) -> None:
        self.presence.throttle.rate = value

    @property
    def typing_burst(self) -> float:
        """`presence.throttle.burst`."""
        return self.presence.throttle.burst

    @typing_burst.setter
    def typing_burst(self, value: float) -> None:
        self.presence.throttle.burst = value
