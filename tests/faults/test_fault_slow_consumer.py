"""A slow consumer: a live recipient that stops reading while others send to it heavily.

With max_outbound_buffer=256 KiB and write_timeout=1 s the server must cut it off (it leaves
the hub; "slow consumer" in the log), keep every message in its update log for its next
SYNC, and meanwhile keep serving everybody else: another pair's send->delivery latency is
measured without and with the slow consumer and must stay bounded (generously: p99 below
500 ms; the figures are printed).
"""

from __future__ import annotations

import asyncio
import logging
import time

from faultkit import Opened, percentile, send_window, server_conns, wait_for
from liaotian.protocol import Sent
from liaotian.server.testing import run_server
from rawclient import RawClient, messages_of

BIG = 1 << 26  # per-user send byte budget high enough that the heavy sender is not throttled


async def latencies(sender: RawClient, receiver: RawClient, n: int, label: str) -> list[float]:
    """`sender` sends n messages to `receiver`, one after another (each waits for its
    SENT); a message's latency is from writing its SEND to its push arriving."""
    written: dict[str, float] = {}
    arrived: dict[str, float] = {}

    async def read() -> None:
        while len(arrived) < n:
            push = await receiver.next_updates(timeout=10)
            now = time.perf_counter()
            for u in push.updates:
                arrived[u.message.cmid] = now

    reader = asyncio.ensure_future(read())
    try:
        for i in range(n):
            msg = sender.send_msg(receiver.user, "ping", cmid=f"{label}-{i}")
            written[msg.cmid] = time.perf_counter()
            await sender.write(msg)
            assert isinstance(await sender.answer(msg.rid), Sent)
        await asyncio.wait_for(reader, 10)
    finally:
        reader.cancel()
    return [arrived[c] - written[c] for c in written]


async def test_slow_consumer_is_cut_off_keeps_its_log_and_others_stay_fast(
    tmp_path, opened: Opened, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="liaotian.conn")
    async with run_server(
        tmp_path,
        max_outbound_buffer=256 * 1024,
        write_timeout=1.0,
        send_bytes_burst=BIG,
        send_bytes_rate=BIG,
    ) as srv:
        alice = await opened.user(srv, "alice", register=True)  # the heavy sender
        carol = await opened.user(srv, "carol", register=True, rcvbuf=4096)  # stops reading
        dave = await opened.user(srv, "dave", register=True)
        erin = await opened.user(srv, "erin", register=True)
        (slow,) = server_conns(srv, "carol")
        assert carol.token

        baseline = await latencies(dave, erin, 150, "calm")

        text = "s" * 48_000
        heavy_sent: list[Sent] = []

        async def heavy() -> None:  # ~23 MB for carol, in pipelined windows of 8
            for _ in range(60):
                answers = await send_window(alice, "carol", [text] * 8)
                assert all(isinstance(a, Sent) for a in answers), answers
                heavy_sent.extend(answers)

        load = asyncio.ensure_future(heavy())
        loaded: list[float] = []
        try:  # every sample is taken while the heavy load runs
            for r in range(100):
                loaded += await latencies(dave, erin, 10, f"loaded{r}")
                if load.done():
                    break
            await asyncio.wait_for(load, 30)
        finally:
            load.cancel()
        assert len(heavy_sent) == 480

        # carol was disconnected as a slow consumer: the hub no longer lists her
        await wait_for(lambda: slow not in server_conns(srv), "the slow consumer to be cut")
        assert server_conns(srv, "carol") == []
        assert any("slow consumer" in r.getMessage() for r in caplog.records)

        # everything is in her log: her next connection gets it all by SYNC
        back = await opened.resume(srv, carol.token)
        log = messages_of(await back.sync_all(0))
        assert [u.message.id for u in log] == [s.id for s in heavy_sent]
        assert [u.message.pos for u in log] == list(range(1, len(heavy_sent) + 1))

        p99_calm, p99_loaded = percentile(baseline, 99), percentile(loaded, 99)
        print(
            f"send->delivery latency p50/p99: without slow consumer "
            f"{percentile(baseline, 50) * 1000:.1f}/{p99_calm * 1000:.1f} ms, with "
            f"{percentile(loaded, 50) * 1000:.1f}/{p99_loaded * 1000:.1f} ms "
            f"({len(baseline)}/{len(loaded)} samples; {len(heavy_sent)} x "
            f"{len(text) // 1000} kB sent to the slow consumer)"
        )
        assert p99_calm < 0.5
        assert p99_loaded < 0.5
