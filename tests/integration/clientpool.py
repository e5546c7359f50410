"""The `clients` fixture's pool of raw protocol clients, in a module of its own so tests
can name the type: importing it from `conftest` by name breaks when pytest has loaded another
directory's conftest under that name first."""

from __future__ import annotations

from typing import Any

from liaotian.server.testing import RunningServer
from rawclient import PASSWORD, RawClient


class Clients:
    """Opens raw clients and closes every one of them when the test ends."""

    def __init__(self) -> None:
        self._all: list[RawClient] = []

    async def connect(self, srv: RunningServer, **kw: Any) -> RawClient:
        c = await RawClient.connect(srv.host, srv.port, **kw)
        self._all.append(c)
        return c

    async def anonymous(self, srv: RunningServer, **kw: Any) -> RawClient:
        """Connected and past HELLO, not authenticated."""
        c = await self.connect(srv, **kw)
        await c.hello()
        return c

    async def user(
        self,
        srv: RunningServer,
        name: str,
        device: str = "d1",
        *,
        register: bool = True,
        sync: bool = True,
        password: str = PASSWORD,
        **kw: Any,
    ) -> RawClient:
        """Registered (optionally), logged in and (optionally) synced, so live."""
        c = await self.anonymous(srv, **kw)
        if register:
            await c.register(name, password)
        await c.login(name, password, device)
        if sync:
            await c.sync_all()
        return c

    async def resume(
        self, srv: RunningServer, token: str, *, sync_since: int | None = 0, **kw: Any
    ) -> RawClient:
        c = await self.anonymous(srv, **kw)
        await c.auth(token)
        if sync_since is not None:
            await c.sync_all(sync_since)
        return c

    async def register(self, srv: RunningServer, *names: str) -> None:
        """Create accounts on a throwaway connection."""
        c = await self.anonymous(srv)
        for name in names:
            await c.register(name)
        await c.close()

    async def close_all(self) -> None:
        for c in self._all:
            await c.close()
