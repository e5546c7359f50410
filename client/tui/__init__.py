"""`liaotian chat`: a full-screen terminal chat app on the client library (Textual).

    names.py       which chat `--with` / `--group` mean; what to call users and groups
    model.py       the chat list (unread counts) and the open conversation, as plain data
    render.py      the model as Textual `Content` (peer text made safe, never markup)
    controller.py  Client requests and events -> model (no terminal)
    app.py         the Textual app: layout, keys, redraws

Only the `liaotian chat` command imports this package, so the other commands do not pay
for importing Textual.
"""

from __future__ import annotations

from ..client import Client
from .app import ChatApp
from .controller import ChatController, resolve_target
from .names import Names, Target, TargetError, resolve_group

__all__ = [
    "ChatApp",
    "ChatController",
    "Names",
    "Target",
    "TargetError",
    "resolve_group",
    "resolve_target",
    "run_chat",
]


async def run_chat(
    client: Client,
    with_user: str | None = None,
    group: str | None = None,
    download_dir: str = ".",
) -> int:
    """Resolve the conversation to open (before the screen is taken, so a wrong name is an
    ordinary error message), then run the app until the user quits. Returns the exit
    status (0, or 1 when the session ended, e.g. logged out elsewhere)."""
    target = await resolve_target(client, with_user, group)
    app = ChatApp(client, target, download_dir=download_dir)
    await app.run_async()
    return app.return_code or 0
