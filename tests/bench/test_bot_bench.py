"""bench/bots.py runs end to end on a tiny load: a bot process on the Bot framework answers
every command and every press, and the four figures are in the JSON."""

from __future__ import annotations

import json
from pathlib import Path

from bench import bots


def test_the_bot_bench_measures_commands_and_presses(tmp_path: Path) -> None:
    out = tmp_path / "b.json"
    args = ["--rounds", "10", "--users", "2", "--warmup", "1", "--json", str(out)]
    assert bots.main(args) == 0
    got = json.loads(out.read_text())
    assert got["commands"] == got["presses"] == 10 and got["users"] == 2
    for key in ("bot_command_ms_p50", "bot_command_ms_p99", "bot_press_ms_p50", "bot_press_ms_p99"):
        assert isinstance(got[key], float) and got[key] > 0, key
    assert got["bot_command_ms_p50"] <= got["bot_command_ms_p99"]


def test_no_bots_skips_them() -> None:
    from bench.__main__ import build_parser
    from bench.runner import Options

    a = build_parser().parse_args(["--no-bots"])
    assert Options.make(bots=False if a.no_bots else None).bots is False
    assert Options.make().bots is True
