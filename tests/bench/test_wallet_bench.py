"""bench/wallet.py runs end to end on a tiny load: the four keys are there and the ledger
it leaves behind has no invariant violation; `python -m bench` carries them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import report, runner, wallet
from bench.__main__ import build_parser


def test_the_wallet_bench_runs_and_finds_no_violation(tmp_path: Path) -> None:
    out = tmp_path / "w.json"
    assert (
        wallet.main(
            [
                "--users",
                "10",
                "--members",
                "6",
                "--shares",
                "4",
                "--packets",
                "2",
                "--duration",
                "0.5",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    assert result["wallet_transfers_per_s"] > 0 and result["red_packet_claims_per_s"] > 0
    assert result["red_packet_claim_ms_p99"] > 0
    assert result["wallet_invariant_violations"] == 0 and result["problems"] == []


def test_python_m_bench_carries_the_wallet_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """`python -m bench` puts the four keys in its run (and its JSON's top level, through
    report.METRICS); a violation is a failure; `--no-wallet` turns the phase off."""
    fake = {
        "wallet_transfers_per_s": 1.0,
        "red_packet_claims_per_s": 2.0,
        "red_packet_claim_ms_p99": 3.0,
        "wallet_invariant_violations": 1,
        "problems": [],
        "server_exit_code": 0,
    }
    monkeypatch.setattr(wallet, "measure", lambda quick: fake)
    run: dict[str, Any] = {"details": {}}
    failures: list[str] = []
    runner.wallet_figures(run, True, failures)
    assert {k: run[k] for k in runner.WALLET_KEYS} == {k: fake[k] for k in runner.WALLET_KEYS}
    assert len(failures) == 1 and run["details"]["wallet"] is fake
    keys = {k for k, _u, _d in report.METRICS}
    assert set(runner.WALLET_KEYS) <= keys
    assert build_parser().parse_args(["--no-wallet"]).no_wallet
    assert runner.Options.make(quick=True, wallet=False).wallet is False
