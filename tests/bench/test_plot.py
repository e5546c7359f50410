"""bench/plot.py: the charts of a bench result, from a document shaped like bench's JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image

from bench import plot


def _run(scale: float, *, group: bool = True) -> dict[str, Any]:
    lat = {
        "p50_ms": 1.0 * scale,
        "p90_ms": 2.0 * scale,
        "p99_ms": 5.0 * scale,
        "achieved_rate": 3000.0,
    }
    d: dict[str, Any] = {
        "throughput": {"msgs_per_s": 15000.0 * scale},
        "relay": {"msgs_per_s": 60000.0},
        "latency": lat,
    }
    if group:
        d["group_throughput"] = {
            "messages_per_s": 1300.0,
            "deliveries_per_s": 130000.0,
            "push_deliveries_per_s": 25000.0,
            "members": 100,
            "online": 20,
            "senders": 10,
        }
        d["group_latency"] = dict(lat)
    return {"details": d}


def _doc(*, group: bool = True) -> dict[str, Any]:
    return {
        "date": "2026-12-03T13:15:54+00:00",
        "quick": True,
        "runs": 2,
        "machine": {
            "nproc": 2,
            "cpu_model": "AMD EPYC",
            "python": "3.11.7",
            "sqlite": "3.40.1",
            "git": {"commit": "abc1234", "dirty": False},
        },
        "per_run": [_run(1.0, group=group), _run(1.2, group=group)],
    }


def test_writes_one_png_per_phase_that_ran(tmp_path: Path) -> None:
    written = plot.plot(_doc(), tmp_path / "charts")
    assert [p.name for p in written] == list(plot.CHARTS)
    for p in written:
        with Image.open(p) as im:
            assert im.format == "PNG"
            assert im.size[0] > 500 and im.size[1] > 300


def test_a_bench_without_the_group_phase_has_no_group_chart(tmp_path: Path) -> None:
    written = plot.plot(_doc(group=False), tmp_path)
    assert [p.name for p in written] == ["throughput.png", "latency.png"]
    assert not (tmp_path / "group.png").exists()


def test_footer_names_machine_commit_and_mode() -> None:
    f = plot._footer(_doc())
    assert "AMD EPYC" in f and "abc1234" in f and "quick bench, 2 run(s)" in f


def test_command_line_reads_a_result_file(tmp_path: Path, capsys: Any) -> None:
    src = tmp_path / "r.json"
    src.write_text(json.dumps(_doc()))
    assert plot.main([str(src), str(tmp_path / "out")]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    assert plot.main([str(tmp_path / "missing.json"), str(tmp_path)]) == 2
    assert "cannot read" in capsys.readouterr().err
