"""Names instead of numbers: which conversation `--with` / `--group` mean, and what to call
people and groups on screen.

A group is named by its name (`--group trip`); its number (`#3`, or `3` when no group is
named "3") is needed only when several of the user's groups share the name, and the error
then lists them. People are shown by their display name when they have one, else by
username. Nothing here does I/O or touches the terminal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from liaotian.protocol.social import GroupSummary

from ..terminal import safe

__all__ = ["Names", "Target", "TargetError", "resolve_group"]


class TargetError(ValueError):
    """`--with` / `--group` names nothing, or more than one thing (a usage error)."""


@dataclass(frozen=True, slots=True)
class Target:
    """A conversation to open: a direct chat with `peer`, the group `group`, or the
    channel `channel`."""

    peer: str | None = None
    group: int | None = None
    channel: int | None = None

    def __post_init__(self) -> None:
        if [self.peer, self.group, self.channel].count(None) != 2:
            raise ValueError("a target is a peer, a group or a channel")

    @property
    def is_group(self) -> bool:
        return self.group is not None


def _as_number(query: str) -> int | None:
    text = query.strip().removeprefix("#")
    return int(text) if text.isdigit() else None


def _describe(g: GroupSummary) -> str:
    topic = f', topic "{safe(g.topic)}"' if g.topic else ""
    return f"#{g.group} ({g.members} members{topic})"


def resolve_group(groups: Sequence[GroupSummary], query: str) -> GroupSummary:
    """The group of `groups` (the user's, from LIST_GROUPS) that `query` names.

    An exact name wins, then a name equal but for case; `#N` is always the group number N,
    and a bare `N` is one when no group is named so. Raises TargetError when nothing
    matches or the name is ambiguous (listing the candidates with their numbers)."""
    exact = [g for g in groups if g.name == query]
    if not exact:
        exact = [g for g in groups if g.name.casefold() == query.casefold()]
    number = _as_number(query)
    if number is not None and (query.strip().startswith("#") or not exact):
        for g in groups:
            if g.group == number:
                return g
        if query.strip().startswith("#"):
            raise TargetError(f"you are not in a group #{number}")
    if len(exact) == 1:
        return exact[0]
    if not exact:
        raise TargetError(
            f'you are in no group named "{safe(query)}" (`liaotian group list` shows yours)'
        )
    choices = ", ".join(_describe(g) for g in exact)
    raise TargetError(
        f'{len(exact)} of your groups are named "{safe(query)}": {choices}; '
        f"pick one by number, e.g. --group '#{exact[0].group}'"
    )


class Names:
    """What to call users and groups on screen (unsafe: callers pass results through
    `safe()` before showing them, as the render module does)."""

    def __init__(self) -> None:
        self._display: dict[str, str] = {}
        self._asked: set[str] = set()
        self.groups: dict[int, str] = {}
        self.channels: dict[int, str] = {}

    def person(self, user: str) -> str:
        """The display name when the user has one (and we may see it), else the username."""
        return self._display.get(user) or user

    def full(self, user: str) -> str:
        """`Display Name (username)`, or the username alone."""
        shown = self._display.get(user)
        return f"{shown} ({user})" if shown and shown != user else user

    def set_display(self, user: str, display_name: str) -> None:
        self._asked.add(user)
        if display_name:
            self._display[user] = display_name
        else:
            self._display.pop(user, None)

    def wanted(self, users: Iterable[str]) -> list[str]:
        """Users whose profile has not been asked for yet (each is asked for once)."""
        out = [u for u in dict.fromkeys(users) if u and u not in self._asked]
        self._asked.update(out)
        return out

    def group(self, group: int) -> str:
        return self.groups.get(group) or f"#{group}"

    def channel(self, channel: int) -> str:
        return self.channels.get(channel) or f"#{channel}"
