"""The server's log output: plain text or one JSON object per line (`log_format`), and the
periodic statistics line in operator terms.

JSON lines carry `ts` (UTC, ISO 8601, milliseconds), `level`, `logger`, `msg` (the text
line, formatted) and the structured fields a line was logged with (`event`, `conn`,
`peer`, `user`, `device`, `code`, ... see lifecycle.py and `stats_line`); an exception's
traceback is in `exc`.

No line carries secrets or message content: passwords, tokens and message text are never
passed to a logger (tests/server/test_ops_logs.py sends all three and looks for them).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..store.sqlite.admin import queue_depth
from .counters import WriterMeter
from .lifecycle import by_state

if TYPE_CHECKING:
    from .host import Host

log = logging.getLogger("liaotian.server")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# what every LogRecord has; anything else on a record came in `extra=`
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in out:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format.lower() == "json" else logging.Formatter(TEXT_FORMAT)


def configure_logging(level: str, log_format: str) -> None:
    """The root logger writes to stderr in the chosen format (replaces what was there)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


class StatsLine:
    """The periodic statistics line: what the server did since the previous one.

    `stats: 120 connections (100 authenticated), 80 users online, 1520 messages/s,
    75 commits/s, commit p99 4.1 ms, 0 writes queued, 12 KiB unread by peers`.
    messages/s and commits/s are measured over the time since the last line; the commit
    p99 (statements + COMMIT of one group commit, in the writer thread) is estimated from
    the commit-duration histogram over the same span. The writer's detailed breakdown
    follows at debug level (`writer: ...`).
    """

    def __init__(self, server: Host) -> None:
        self.server = server
        self._mark()

    def _mark(self) -> None:
        store = self.server.store
        self._at = time.monotonic()
        self._messages = store.committed_sends
        self._commits = store.batches
        meter = store.stats
        self._latency = (
            list(meter.commit_seconds.counts) if isinstance(meter, WriterMeter) else None
        )

    def line(self) -> tuple[str, dict[str, Any]]:
        """The text and its fields; starts the next interval."""
        server = self.server
        store, hub = server.store, server.hub
        elapsed = max(time.monotonic() - self._at, 1e-9)
        states, users = by_state(hub)
        meter = store.stats
        p99 = None
        if isinstance(meter, WriterMeter) and self._latency is not None:
            p99 = meter.commit_seconds.quantile(0.99, since=self._latency)
        fields: dict[str, Any] = {
            "event": "stats",
            "connections": len(hub.connections),
            "authenticated": states.get("authenticated", 0),
            "users_online": users,
            "messages_per_s": round((store.committed_sends - self._messages) / elapsed, 1),
            "commits_per_s": round((store.batches - self._commits) / elapsed, 1),
            "commit_p99_ms": None if p99 is None else round(p99 * 1000, 2),
            "queue": queue_depth(store),
            "outbound_bytes": hub.outbound,
            "seconds": round(elapsed, 3),
        }
        text = (
            f"stats: {fields['connections']} connections ({fields['authenticated']} "
            f"authenticated), {users} users online, {fields['messages_per_s']:.0f} "
            f"messages/s, {fields['commits_per_s']:.0f} commits/s, commit p99 "
            f"{'-' if p99 is None else f'{p99 * 1000:.1f} ms'}, {fields['queue']} writes "
            f"queued, {_kib(hub.outbound)} unread by peers"
        )
        self._mark()
        return text, fields

    async def run(self, interval: float) -> None:
        """Log a line every `interval` seconds until cancelled."""
        stats = self.server.store.stats
        while True:
            await asyncio.sleep(interval)
            elapsed = time.monotonic() - self._at
            text, fields = self.line()
            log.info("%s", text, extra=fields)
            if stats.batches and log.isEnabledFor(logging.DEBUG):
                log.debug("writer: %s", stats.summary(elapsed))
            stats.reset()


def _kib(n: int) -> str:
    return f"{n} B" if n < 1024 else f"{n / 1024:.0f} KiB"
