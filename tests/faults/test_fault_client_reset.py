"""The client library right after a connection reset.

When a socket is torn down under the client (a reset: the server died with unread data, a
write failed), asyncio marks the transport closing at once but calls connection_lost only
on a later turn of the event loop; until the client's reader task runs, the client still
counts as live. A send(), or a request the client retries after a lost connection
(history(), groups(), ...), made in that window must still complete: reconnect, then
answer. crash_soak.py ran into this at a SIGKILL; here the window is forced
deterministically by aborting the client's transport right before the call.

Each case runs in a subprocess with a hard timeout, because a spinning event loop cannot
be interrupted from inside (no timeout fires) and would hang the test session.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

SCENARIO = r"""
import asyncio, sys
import liaotian.client as lt
from liaotian.server.testing import run_server

PW = "password one"

async def main(workdir, call):
    async with run_server(workdir) as srv:
        for name in ("alice", "bob"):
            await lt.register(srv.host, srv.port, name, PW)
        async with lt.connect(srv.host, srv.port, username="alice", password=PW,
                              device="d", backoff=lt.Backoff(0.05, 0.2)) as alice:
            first = await alice.send("bob", "before the reset")
            # the socket dies; its connection_lost callback is only scheduled
            alice._session.conn._stream.transport.abort()
            if call == "send":
                sent = await asyncio.wait_for(alice.send("bob", "after the reset"), 5)
                assert sent.pos == first.pos + 1
            else:
                page = await asyncio.wait_for(alice.history("bob"), 5)
                assert [m.text for m in page.messages] == ["before the reset"]
    print("OK", flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


@pytest.mark.parametrize("call", ["send", "history"])
def test_request_right_after_a_reset_completes(tmp_path, call: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", SCENARIO, str(tmp_path), call],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=8)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise AssertionError(
            f"client.{call}() after a reset never returned within 8 s "
            "(its own 5 s timeout could not fire either): the event loop "
            "is livelocked"
        ) from None
    assert proc.returncode == 0 and "OK" in out, err[-3000:]
