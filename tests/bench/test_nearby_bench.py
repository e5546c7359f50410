"""bench/nearby.py at a tiny scale: every figure is there, the race sells exactly its units."""

from __future__ import annotations

from bench.nearby import measure


async def test_nearby_bench_figures_and_the_race() -> None:
    got = await measure(
        positions=2_000,
        queries=20,
        updates=200,
        concurrency=50,
        buyers=30,
        units=12,
        walkers=100,
    )
    for key in (
        "nearby_query_ms_p50",
        "nearby_query_ms_p99",
        "nearby_updates_per_s",
        "nearby_jumps_per_s",
        "orders_per_s",
    ):
        assert got[key] > 0, key
    assert got["orders_succeeded"] == 12
    # walkers 42 m apart in ~350 m cells with a 3-minute expiry slack: most refreshes
    # write nothing, some do
    assert 0 < got["details"]["written_share"] < 0.8
    assert got["details"]["update_cpu_us"] > 0 and got["details"]["query_cpu_ms_p99"] > 0
