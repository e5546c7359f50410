"""`client.account`: this user's profile, privacy settings and devices (SPEC.md 9, 22, 23).

await client.account.set_profile(display_name="Alice", status="on holiday")
bob = await client.account.profile("bob")
await client.account.set_privacy(presence="contacts", messages="contacts")
for d in await client.account.devices():
    print(d.device, d.online)
await client.account.revoke_device("old-phone")
await client.account.logout()                  # this device; the client then ends
"""

from __future__ import annotations

from liaotian.protocol import DeviceInfo, DeviceList, ListDevices
from liaotian.protocol.social import (
    MESSAGE_POLICY,
    VISIBILITY,
    GetPrivacy,
    GetProfile,
    Ok,
    Privacy,
    Profile,
    SetPrivacy,
    SetProfile,
)

from .facade import Facade

__all__ = ["Account"]


class Account(Facade):
    """Account requests of one client."""

    __slots__ = ()

    async def profile(self, user: str | None = None) -> Profile:
        """`user`'s profile (default: this user's). NOT_ALLOWED if their profile privacy
        does not include you or they blocked you; UNKNOWN_USER."""
        session = self._session
        who = user if user is not None else (session.user or session.username)
        if who is None:
            raise ValueError("no user given and the client is not logged in")
        return await self._ask(GetProfile(rid=0, user=who), Profile, retry=True)

    async def set_profile(self, display_name: str | None = None, status: str | None = None) -> None:
        """Change the display name and/or status ("" clears one; None leaves it)."""
        await self._ask(SetProfile(rid=0, display_name=display_name, status=status), Ok, retry=True)

    async def privacy(self) -> Privacy:
        """This user's privacy settings."""
        return await self._ask(GetPrivacy(rid=0), Privacy, retry=True)

    async def set_privacy(
        self,
        presence: str | None = None,
        profile: str | None = None,
        messages: str | None = None,
        groups: str | None = None,
        *,
        receipts: str | None = None,
        coins: str | None = None,
        nearby: str | None = None,
    ) -> None:
        """Who sees presence / profile / read and delivered positions ("everyone",
        "contacts", "nobody"), who may send direct messages ("everyone", "contacts"), who
        may add this user to groups, who may send them coins and who finds them nearby
        ("everyone", "contacts", "nobody"); None leaves a setting as it is."""
        for name, value, allowed in (
            ("presence", presence, VISIBILITY),
            ("profile", profile, VISIBILITY),
            ("messages", messages, MESSAGE_POLICY),
            ("groups", groups, VISIBILITY),
            ("receipts", receipts, VISIBILITY),
            ("coins", coins, VISIBILITY),
            ("nearby", nearby, VISIBILITY),
        ):
            if value is not None and value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}")
        await self._ask(
            SetPrivacy(
                rid=0,
                presence=presence,
                profile=profile,
                messages=messages,
                groups=groups,
                receipts=receipts,
                coins=coins,
                nearby=nearby,
            ),
            Ok,
            retry=True,
        )

    async def devices(self) -> list[DeviceInfo]:
        """The account's devices, with their positions and whether they are online."""
        answer = await self._ask(ListDevices(rid=0), DeviceList, retry=True)
        return list(answer.devices)

    async def revoke_device(self, device: str) -> None:
        """Revoke another device's token and disconnect it. Revoking this device is a
        logout: the client then ends."""
        await self._session.revoke_device(device, self._session.request_timeout)

    async def logout(self) -> None:
        """Revoke this device's token on the server, forget it locally, and close."""
        await self._session.logout(self._session.request_timeout)
