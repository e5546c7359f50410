"""A PNG of `liaotian chat` (the Textual TUI) in a real conversation, for the README.

Starts a server on a temporary database (port 0), makes three users who chat 1:1 and in a
group, opens alice's TUI headless (Textual's Pilot), opens the group, and saves Textual's
SVG screenshot, converted to PNG by `rsvg-convert` (Debian: librsvg2-bin).

    python3 scripts/tui_screenshot.py docs/images/tui.png
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from liaotian.client import Client, register
from liaotian.client.tui import ChatApp
from liaotian.server.testing import run_server
from textual.widgets import OptionList

PASSWORD = "correct horse battery"


async def shoot(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with run_server(Path(tmp)) as srv:

            def client(user: str, device: str = "d") -> Client:
                return Client(srv.host, srv.port, username=user, password=PASSWORD, device=device)

            names = ("alice", "bob", "carol")
            for name in names:
                await register(srv.host, srv.port, name, PASSWORD)
            for i, a in enumerate(names):
                async with client(a, "setup") as ca:
                    await ca.set_profile(display_name=a.capitalize())
                    for b in names[i + 1 :]:
                        await ca.contact_request(b)
            for i, b in enumerate(names):
                async with client(b, "setup") as cb:
                    for a in names[:i]:
                        await cb.contact_accept(a)
            async with client("bob") as bob, client("carol") as carol:
                await bob.send("alice", "are you coming on Saturday?")
                trip = await carol.create_group("trip", ["alice", "bob"])
                await carol.send_group(trip.group, "the train leaves at 8:10 从北京南站")
                await bob.send_group(trip.group, "I'll bring 包子 for everyone")
                async with client("alice", "tui") as alice:
                    app = ChatApp(alice)
                    async with app.run_test(size=(100, 26)) as pilot:
                        chats = app.query_one("#chats", OptionList)
                        async with asyncio.timeout(10):
                            while chats.option_count < 2:
                                await pilot.pause(0.02)
                        chats.focus()
                        chats.highlighted = chats.get_option_index(str(trip.group))
                        await pilot.press("enter")
                        await pilot.press(*"count me in!", "enter")
                        await pilot.pause(0.5)  # let the answer and the read marker render
                        svg = Path(tmp) / "tui.svg"
                        app.save_screenshot(filename=svg.name, path=tmp)
                        converter = shutil.which("rsvg-convert")
                        if converter is None:
                            raise SystemExit(
                                "rsvg-convert not found (apt-get install librsvg2-bin)"
                            )
                        subprocess.run([converter, "-o", str(out), str(svg)], check=True)


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/images/tui.png")
    asyncio.run(shoot(out.resolve()))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
