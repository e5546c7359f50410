"""Known bugs of this project, re-introduced one at a time to show the simulation finds them.

Filled in once the chat core and the memory store are merged (see README.md)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

MUTATIONS: dict[str, Callable[[], AbstractContextManager[None]]] = {}
