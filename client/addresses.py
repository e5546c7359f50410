"""The servers a client may use: one address, or the nodes of a cluster (docs/cluster.md).

Every node of a cluster serves every user, so a client that loses its node resumes on
another with the same token and cursor: AUTH, then SYNC from the cursor, exactly as after
a reconnect to the same server (SPEC.md 10.4). `Addresses` only decides which node to try
next; the session does the rest.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["Address", "Addresses", "parse_address"]

Address = tuple[str, int]


def parse_address(value: str | Address, default_port: int) -> Address:
    """`(host, port)`, `"host:port"`, `"[v6]:port"` or `"host"` (the default port)."""
    if isinstance(value, tuple):
        return str(value[0]), int(value[1])
    text = value.strip()
    port = ""
    if text.startswith("["):  # [::1]:7420
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:  # a bare name, or a bare IPv6 address
        host = text
    if not host:
        raise ValueError(f"no host in address {value!r}")
    try:
        number = int(port) if port else default_port
    except ValueError:
        raise ValueError(f"bad port in address {value!r}") from None
    if not 0 < number < 65536:
        raise ValueError(f"bad port in address {value!r}")
    return host, number


class Addresses:
    """The nodes, in the order given; `current` is the one in use. After a lost
    connection or a failed attempt the next one is tried (`advance`), round the ring."""

    def __init__(self, items: Iterable[str | Address], default_port: int) -> None:
        self.items = [parse_address(a, default_port) for a in items]
        if not self.items:
            raise ValueError("no server address given")
        self._at = 0

    def __len__(self) -> int:
        return len(self.items)

    @property
    def current(self) -> Address:
        return self.items[self._at]

    def advance(self) -> Address:
        self._at = (self._at + 1) % len(self.items)
        return self.current
