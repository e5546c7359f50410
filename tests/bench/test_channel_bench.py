"""bench/channels.py runs end to end on a tiny load: the keys are there, every online
member got every post's news, and the catch-up fetched every new post."""

from __future__ import annotations

import json
from pathlib import Path

from bench import channels


def test_the_channel_bench_runs_and_notifies_everyone(tmp_path: Path) -> None:
    out = tmp_path / "c.json"
    args = ["--members", "300", "--small", "50", "--online", "40", "--loaders", "2"]
    args += ["--notice-posts", "2", "--catch-up", "250", "--duration", "0.6", "--window", "4"]
    assert channels.main([*args, "--json", str(out)]) == 0
    got = json.loads(out.read_text())
    assert got["members_big"] == 300 and got["members_small"] == 50
    assert got["notices_received"] == got["notices_expected"] == 80
    assert got["catch_up_posts"] == 250
    for key in (
        "channel_posts_per_s_1k",
        "channel_posts_per_s_100k",
        "channel_post_notice_ms_p99",
        "channel_notices_per_s",
        "channel_catch_up_posts_per_s",
        "channel_rss_bytes_per_member",
    ):
        assert isinstance(got[key], float), key
