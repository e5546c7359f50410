"""The wallet's operator commands (`liaotian-server admin mint|grant|wallet-report`) on a
running server (through its admin socket) and on a stopped server's database: minting is
the one way coins are made, it needs a reason, a key makes it happen once, and the report
checks every invariant of the ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from liaotian.client import Client, register
from liaotian.server.ops import admin_cli
from liaotian.server.ops.admin import AdminError
from liaotian.server.testing import RunningServer, run_server

PASSWORD = "correct horse battery"


async def admin(srv: RunningServer, command: str, **args: Any) -> Any:
    return await admin_cli.run(srv.config, command, args)


async def test_mint_grant_and_report_on_a_running_server(tmp_path: Path) -> None:
    async with run_server(tmp_path) as srv:
        await register(srv.host, srv.port, "alice", PASSWORD)
        with pytest.raises(AdminError, match="memo is required"):
            await admin(srv, "mint", to="alice", amount=5, memo="")
        with pytest.raises(AdminError, match="UNKNOWN_USER"):
            await admin(srv, "mint", to="nobody", amount=5, memo="x")
        first = await admin(srv, "mint", to="alice", amount=500, memo="launch bonus", key="m1")
        again = await admin(srv, "mint", to="alice", amount=500, memo="launch bonus", key="m1")
        assert again == first and first["transfer"]["from"] == "*issuance"
        await admin(srv, "mint", to="*rewards", amount=1000, memo="reward budget")
        item = await admin(srv, "grant", to="alice", kind="fcode")
        async with Client(
            srv.host, srv.port, username="alice", password=PASSWORD, device="d"
        ) as alice:
            assert (await alice.wallet()).balance == 500
            assert [i.code for i in await alice.wallet.items()] == [item["item"]["code"]]
        report = await admin(srv, "wallet_report", tasks="[]")
        assert report["ok"] and report["violations"] == 0
        assert (report["minted"], report["held_by_users"]) == (1500, 500)


async def test_mint_and_report_on_a_stopped_server(tmp_path: Path) -> None:
    async with run_server(tmp_path) as srv:
        await register(srv.host, srv.port, "bob", PASSWORD)
        config = srv.config
    stopped = RunningServer(config)  # not started: the commands open the database
    minted = await admin(stopped, "mint", to="bob", amount=7, memo="apology")
    assert minted["transfer"]["amount"] == 7
    report = await admin(stopped, "wallet_report", tasks=config.wallet_tasks)
    assert report["ok"] and report["held_by_users"] == 7 and report["transfers"] == 1
