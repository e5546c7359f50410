"""bench/wallet.py runs end to end on a tiny load: the four keys are there and the ledger
it leaves behind has no invariant violation."""

from __future__ import annotations

import json
from pathlib import Path

from bench import wallet


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
