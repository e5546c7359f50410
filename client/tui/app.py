"""`ChatApp`: the full-screen Textual app of `liaotian chat`.

    ┌ liaotian · Alice (alice) · connected ───────────────────────────┐
    │ ● Bob  (2)        │ Bob (bob) · online                          │
    │   Bob: are you…   │ ──── Today ────                             │
    │ # trip            │ 10:41 Bob: hello                            │
    │   you: who is d…  │ 10:42 Alice: hi  (read)                     │
    │                   │ Bob is typing…                              │
    │                   │ [Message Bob — Enter to send              ] │
    └─────────────────────────────────────────────────────────────────┘

Keys: Enter on the chat list opens a chat (or a channel: `≡`), Enter in the message line
sends (posts, in a channel), Escape goes back to the list, Tab moves between them,
PageUp/PageDown scroll the conversation (PageUp at the top loads older messages), Ctrl+B
goes to the buttons of the newest bot message (arrows or Tab between them, Enter presses;
a click does too), Ctrl+S saves the newest photo, voice note, file or track of the open
chat into the download directory (`/download DIR` in the message line saves it into DIR),
Ctrl+Q quits.

The app draws; `ChatController` decides what there is to draw. Redraws are coalesced: a
change schedules one redraw on the app's next turn.
"""

from __future__ import annotations

import logging
import os
from datetime import date
from typing import ClassVar

from liaotian.protocol import LiaotianError
from rich.text import Text
from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Button, Footer, Input, OptionList, Static
from textual.widgets.option_list import Option

from ..client import Client
from ..terminal import safe
from .controller import ChatController
from .names import Target
from .render import chat_prompt, conversation, status_line, title, typing_line

__all__ = ["ChatApp"]


class _ToApp(logging.Handler):
    """The client library's warnings as notifications, instead of stderr lines that would
    tear the full-screen display."""

    def __init__(self, app: ChatApp) -> None:
        super().__init__(logging.WARNING)
        self.app = app

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.app.note(record.getMessage(), severity="warning")
        except Exception:  # pragma: no cover - never let logging break the app
            self.handleError(record)


class ChatApp(App[int]):
    """`liaotian chat` on a started `Client` (reconnecting, syncing); opens `target`
    (a direct chat or a group) at once when given."""

    TITLE = "liaotian chat"
    CSS = """
    #status { height: 1; background: $panel; padding: 0 1; }
    #body { height: 1fr; }
    #chats { width: 34; height: 1fr; }
    #right { width: 1fr; }
    #title { height: 1; background: $boost; padding: 0 1; }
    #log { height: 1fr; padding: 0 1; }
    #typing { height: 1; padding: 0 1; color: $text-muted; }
    #buttons { height: auto; padding: 0 1; }
    #buttons .button-row { height: 1; }
    #buttons Button { margin: 0 1 0 0; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "chats", "Chats"),
        Binding("pageup", "page_up", "Older", priority=True),
        Binding("pagedown", "page_down", "Newer", priority=True),
        Binding("ctrl+s", "download", "Save media", priority=True),
        Binding("ctrl+b", "buttons", "Buttons", priority=True),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(
        self, client: Client, target: Target | None = None, *, download_dir: str = "."
    ) -> None:
        super().__init__()
        self.client = client
        self.target = target
        self.download_dir = download_dir
        self.ctl = ChatController(client, on_change=self._changed, on_note=self.note)
        self._redraw_due = False
        self._shown_chats: list[tuple[str, Content]] = []
        self._shown_log: Content | None = None
        # the buttons bar: (position, rows) of the bot message whose buttons it shows
        self._shown_buttons: tuple[int, list[list[tuple[str, str]]]] | None = None
        self._button_data: dict[str, tuple[int, str]] = {}  # widget id -> (pos, data)
        self._loading_older = False
        self._log_handler = _ToApp(self)

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Static(id="status", markup=False)
        with Horizontal(id="body"):
            yield OptionList(id="chats", markup=False)
            with Vertical(id="right"):
                yield Static(id="title", markup=False)
                with VerticalScroll(id="log"):
                    yield Static(id="messages", markup=False)
                yield Static(id="typing", markup=False)
                yield Vertical(id="buttons")
                yield Input(placeholder="choose a chat on the left and press Enter", id="compose")
        yield Footer()

    async def on_mount(self) -> None:
        logging.getLogger("liaotian").addHandler(self._log_handler)
        self.set_interval(1.0, self._tick)
        self.watch(self.query_one("#log", VerticalScroll), "scroll_y", self._scrolled, init=False)
        self.redraw()
        self.query_one("#chats", OptionList).focus()
        self.run_worker(self._start(), name="start", exclusive=False)

    async def on_unmount(self) -> None:
        logging.getLogger("liaotian").removeHandler(self._log_handler)
        await self.ctl.close()

    async def _start(self) -> None:
        await self.ctl.load()
        # events from here on: they count on top of the list just loaded
        self.run_worker(self._events(), name="events")
        if self.target is not None:
            self.query_one("#compose", Input).focus()
            await self.ctl.open(self.target)

    async def _events(self) -> None:
        try:
            await self.ctl.run()
        except LiaotianError as exc:  # ConnectionClosed (logged out elsewhere, ...)
            # a rich Text, so the message is not read as markup
            self.exit(return_code=1, message=Text(f"liaotian chat: {safe(exc)}"))
        else:
            self.exit(return_code=0)  # the client was closed

    # ------------------------------------------------------------------ drawing

    def note(self, text: str, severity: str = "information") -> None:
        self.notify(
            safe(text), markup=False, severity="warning" if severity == "warning" else "information"
        )

    def _changed(self) -> None:
        if not self._redraw_due:
            self._redraw_due = True
            self.call_later(self.redraw)

    def _tick(self) -> None:
        if self.ctl.conv is not None and self.ctl.conv.typing:
            self._changed()  # typing notices expire

    def redraw(self) -> None:
        """Draw everything from the controller's state."""
        self._redraw_due = False
        ctl, names = self.ctl, self.ctl.names
        self.query_one("#status", Static).update(status_line(ctl.me, names, ctl.state, ctl.detail))
        self._draw_chats()
        conv = ctl.conv
        title_w = self.query_one("#title", Static)
        if conv is None:
            title_w.update(Content.styled("no chat open", "dim"))
            self.query_one("#typing", Static).update(Content(""))
            self._draw_buttons(None)
            return
        entry = ctl.chats.find(conv.target)
        if conv.target.channel is not None:
            channel = conv.target.channel
            title_w.update(
                title(
                    names.channel(channel),
                    False,
                    names,
                    members=ctl.channel_members.get(channel),
                    channel=True,
                )
            )
            placeholder = (
                f"Post to {safe(names.channel(channel))} (Enter to send)"
                if conv.can_post
                else "Only the channel's admins post here"
            )
        elif conv.target.group is not None:
            summary = ctl.groups.get(conv.target.group)
            title_w.update(
                title(
                    names.group(conv.target.group),
                    True,
                    names,
                    members=summary.members if summary else None,
                )
            )
            placeholder = f"Message {safe(names.group(conv.target.group))} (Enter to send)"
        else:
            peer = conv.target.peer or ""
            title_w.update(
                title(
                    peer,
                    False,
                    names,
                    online=ctl.online.get(peer),
                    last_seen=ctl.last_seen_text(peer),
                )
            )
            placeholder = f"Message {safe(names.person(peer))} (Enter to send)"
        self.query_one("#compose", Input).placeholder = placeholder
        if entry is not None:
            self._highlight(entry.conv)
        today = date.today()
        content = conversation(conv.rows(ctl.me, today), names, ctl.me, loading=not conv.loaded)
        self._draw_log(content)
        self.query_one("#typing", Static).update(typing_line(ctl.typing_now(), names))
        self._draw_buttons(conv.buttons())

    def _draw_buttons(self, shown: tuple[int, list[list[tuple[str, str]]]] | None) -> None:
        """The buttons of the newest bot message, a row of Button widgets per row; the
        labels are Content (plain text, made safe), never markup."""
        if shown == self._shown_buttons:
            return
        self._shown_buttons = shown
        bar = self.query_one("#buttons", Vertical)
        bar.remove_children()
        self._button_data = {}
        if shown is None:
            return
        pos, rows = shown
        widgets = []
        n = 0
        for row in rows:
            cells = []
            for text, data in row:
                n += 1
                key = f"press-{pos}-{n}"
                self._button_data[key] = (pos, data)
                cells.append(Button(Content(safe(text)), id=key, compact=True))
            widgets.append(Horizontal(*cells, classes="button-row"))
        bar.mount_all(widgets)

    def _draw_chats(self) -> None:
        ctl = self.ctl
        labels = ctl.chats.labels()
        prompts = []
        for e in ctl.chats.ordered():
            online = ctl.online.get(e.peer) if e.peer else None
            prompts.append((str(e.conv), chat_prompt(e, labels[e.conv], ctl.names, ctl.me, online)))
        if len(prompts) == len(self._shown_chats) and all(
            k1 == k2 and p1.is_same(p2)
            for (k1, p1), (k2, p2) in zip(prompts, self._shown_chats, strict=True)
        ):
            return
        self._shown_chats = prompts
        chats = self.query_one("#chats", OptionList)
        current = chats.highlighted_option
        chats.set_options(Option(p, id=key) for key, p in prompts)
        if current is not None and current.id is not None:
            self._highlight(int(current.id))

    def _highlight(self, conv: int) -> None:
        chats = self.query_one("#chats", OptionList)
        try:
            index = chats.get_option_index(str(conv))
        except LookupError:
            return
        if chats.highlighted != index:
            chats.highlighted = index

    def _draw_log(self, content: Content) -> None:
        if self._shown_log is not None and content.is_same(self._shown_log):
            return
        self._shown_log = content
        log = self.query_one("#log", VerticalScroll)
        at_end = log.scroll_y >= log.max_scroll_y - 1
        height = log.virtual_size.height
        self.query_one("#messages", Static).update(content)
        if self._loading_older:
            # keep the lines that were on screen where they were
            def keep() -> None:
                log.scroll_to(y=log.virtual_size.height - height + log.scroll_y, animate=False)

            self.call_after_refresh(keep)
        elif at_end:
            self.call_after_refresh(log.scroll_end, animate=False)

    # ------------------------------------------------------------------ input

    @on(OptionList.OptionSelected, "#chats")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        if event.option_id is None:
            return
        entry = self.ctl.chats.entries.get(int(event.option_id))
        if entry is None:
            return
        self._shown_log = None
        self.query_one("#compose", Input).focus()
        self.run_worker(self.ctl.open(entry.target), name="open", group="open", exclusive=True)

    @on(Input.Submitted, "#compose")
    def _submitted(self, event: Input.Submitted) -> None:
        text = event.value
        if not text.strip():
            return
        if self.ctl.conv is None:
            self.note("open a chat first: choose one on the left and press Enter")
            return
        event.input.value = ""
        command, _sp, rest = text.strip().partition(" ")
        if command == "/download":  # not a message: save the newest media (to DIR)
            self._download(os.path.expanduser(rest.strip()) or self.download_dir)
            return
        log = self.query_one("#log", VerticalScroll)
        self.call_after_refresh(log.scroll_end, animate=False)
        self.run_worker(self.ctl.send(text), name="send")

    @on(Input.Changed, "#compose")
    def _typed(self, event: Input.Changed) -> None:
        if self.ctl.conv is not None:
            self.run_worker(self.ctl.typed(bool(event.value)), name="typing", exit_on_error=False)

    def action_download(self) -> None:
        if self.ctl.conv is None:
            self.note("open a chat first: choose one on the left and press Enter")
            return
        self._download(self.download_dir)

    def _download(self, directory: str) -> None:
        if not os.path.isdir(directory):
            self.note(f"not a directory: {directory}")
            return
        self.run_worker(self.ctl.download(directory), name="download", exit_on_error=False)

    @on(Button.Pressed, "#buttons Button")
    def _pressed(self, event: Button.Pressed) -> None:
        found = self._button_data.get(event.button.id or "")
        if found is not None:
            pos, data = found
            self.run_worker(self.ctl.press(pos, data), name="press")

    def action_buttons(self) -> None:
        """Ctrl+B: to the first button of the newest bot message (if there is one)."""
        buttons = self.query("#buttons Button")
        if buttons:
            buttons.first().focus()
        else:
            self.note("no buttons here")

    def action_chats(self) -> None:
        self.query_one("#chats", OptionList).focus()

    def action_page_up(self) -> None:
        log = self.query_one("#log", VerticalScroll)
        if log.scroll_y <= 0:
            self._older()
        else:
            log.scroll_page_up(animate=False)

    def action_page_down(self) -> None:
        self.query_one("#log", VerticalScroll).scroll_page_down(animate=False)

    def _scrolled(self, old: float, new: float) -> None:
        if new <= 0 < old:
            self._older()

    def _older(self) -> None:
        conv = self.ctl.conv
        if self._loading_older or conv is None or not conv.more_before:
            return
        self._loading_older = True

        async def load() -> None:
            try:
                await self.ctl.older()
                self.redraw()
            finally:
                self._loading_older = False

        self.run_worker(load(), name="older")
