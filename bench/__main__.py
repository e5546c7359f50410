"""`python -m bench [--quick] [--json PATH] [--runs N] [--pairs N] [--duration S]`"""

from __future__ import annotations

import argparse
import sys

from . import report
from .runner import Options, log, run


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark the liaotian server against 127.0.0.1: throughput, latency, "
        "offline sync, the ratio to a raw relay, group fan-out and the memory "
        "of idle connections. See bench/README.md.",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="short smoke run (<1 min): 100 pairs, 1 s warm-up, 3 s windows, "
        "20k offline messages, a group of 100 (20 online), 2,000 idle "
        "connections, 1 run",
    )
    p.add_argument("--json", metavar="PATH", help="write the results as JSON to PATH")
    p.add_argument("--runs", type=int, help="measurement repetitions (default 3; quick 1)")
    p.add_argument("--pairs", type=int, help="sender/recipient pairs (default 500; quick 100)")
    p.add_argument(
        "--duration",
        type=float,
        metavar="S",
        help="throughput and latency window in seconds (default 10; quick 3)",
    )
    p.add_argument(
        "--warmup",
        type=float,
        metavar="S",
        help="warm-up before each throughput window (default 3; quick 1)",
    )
    p.add_argument(
        "--offline",
        type=int,
        dest="offline_messages",
        metavar="N",
        help="messages queued for the offline user (default 100000; quick 20000)",
    )
    p.add_argument("--loaders", type=int, help="load processes (default 2)")
    p.add_argument("--window", type=int, help="unacknowledged SENDs per sender (default 8)")
    p.add_argument(
        "--group-members",
        type=int,
        metavar="N",
        help="members of the fan-out group, owner included (default 500; quick "
        "100; 0 skips the group phases)",
    )
    p.add_argument(
        "--group-online",
        type=int,
        metavar="N",
        help="group members with a live connection (default 100; quick 20)",
    )
    p.add_argument(
        "--group-senders",
        type=int,
        metavar="N",
        help="online members that send to the group (default 10)",
    )
    p.add_argument(
        "--group-window",
        type=int,
        metavar="N",
        help="unacknowledged group SENDs per sender (default 4)",
    )
    p.add_argument(
        "--idle-conns",
        type=int,
        metavar="N",
        help="authenticated idle connections for the RSS measurement (default "
        "10000; quick 2000; 0 skips it)",
    )
    p.add_argument(
        "--idle-users",
        type=int,
        metavar="N",
        help="users whose tokens the idle connections AUTH with (default 100; quick 20)",
    )
    p.add_argument(
        "--retries",
        type=int,
        help="repeat phases disturbed by other busy processes, N times in total "
        "(default 3; quick 0)",
    )
    p.add_argument(
        "--quiet-wait",
        type=float,
        metavar="S",
        help="before each phase wait up to S seconds for other processes to be "
        "idle (default 5; quick 2)",
    )
    p.add_argument(
        "--profile",
        metavar="DIR",
        help="after the runs, profile the server with py-spy during an extra "
        "(unmeasured) throughput phase and an extra group fan-out phase; raw "
        "stacks and summaries go to DIR",
    )
    p.add_argument(
        "--latency-rate",
        type=float,
        metavar="N",
        help="run the latency phase at N msgs/s instead of 20%% of the measured "
        "throughput (comparisons at equal load; the issue's figure is the "
        "default)",
    )
    p.add_argument(
        "--cpu-rate",
        type=float,
        metavar="N",
        help="the paced phase of cpu_us_per_msg_at_5k runs at N msgs/s (default 5000; 0 skips it)",
    )
    p.add_argument(
        "--server-python",
        metavar="PATH",
        help="run the server with this interpreter (another worktree's venv: the build "
        "to compare against; default: this one)",
    )
    p.add_argument(
        "--server-log-level",
        metavar="LEVEL",
        help="the server's log level (default warning); with info, server.log "
        "gets a writer-statistics line every 2 s (use with --keep)",
    )
    p.add_argument(
        "--plot",
        metavar="DIR",
        help="write PNG charts (matplotlib) of throughput and latency against the "
        "raw relay of the same run into DIR (bench/plot.py)",
    )
    p.add_argument(
        "--keep", action="store_true", help="keep the temporary directory (database and logs)"
    )
    p.add_argument(
        "--no-faults", action="store_true", help="skip the crash soak and slow-consumer figures"
    )
    p.add_argument(
        "--no-nearby",
        action="store_true",
        help="skip the nearby and shop figures (bench/nearby.py)",
    )
    p.add_argument(
        "--no-media",
        action="store_true",
        help="skip the media figures (uploads, downloads, chat under media load)",
    )
    p.add_argument(
        "--no-channels",
        action="store_true",
        help="skip the channel figures (posts at 1,000 and 100,000 members, news, catch-up)",
    )
    p.add_argument(
        "--no-wallet",
        action="store_true",
        help="skip the wallet figures (transfers, red-packet claims, invariants)",
    )
    p.add_argument(
        "--no-bots",
        action="store_true",
        help="skip the bot figures (command -> reply and press -> answer round trips)",
    )
    p.add_argument(
        "--media-mib",
        type=int,
        metavar="N",
        help="the blob the media figures upload and download (default 64; quick 16)",
    )
    p.add_argument(
        "--no-pg",
        action="store_true",
        help="skip the PostgreSQL-beside-SQLite figures (bench/pg.py)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    return p


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    try:
        opts = Options.make(
            quick=a.quick,
            runs=a.runs,
            pairs=a.pairs,
            duration=a.duration,
            warmup=a.warmup,
            offline_messages=a.offline_messages,
            loaders=a.loaders,
            window=a.window,
            json=a.json,
            profile=a.profile,
            retries=a.retries,
            quiet_wait=a.quiet_wait,
            group_members=a.group_members,
            group_online=a.group_online,
            group_senders=a.group_senders,
            group_window=a.group_window,
            idle_conns=a.idle_conns,
            idle_users=a.idle_users,
            keep=a.keep or None,
            verbose=not a.quiet,
            server_log_level=a.server_log_level,
            latency_rate=a.latency_rate,
            cpu_rate=a.cpu_rate,
            server_python=a.server_python,
            faults=False if a.no_faults else None,
            media=False if a.no_media else None,
            nearby=False if a.no_nearby else None,
            channels=False if a.no_channels else None,
            wallet=False if a.no_wallet else None,
            bots=False if a.no_bots else None,
            media_mib=a.media_mib,
            pg=False if a.no_pg else None,
        )
    except ValueError as exc:
        print(f"python -m bench: {exc}", file=sys.stderr)
        return 2
    try:
        doc, status = run(opts)
    except KeyboardInterrupt:
        log("interrupted; everything was stopped")
        return 130
    print()
    print(report.format_table(doc["summary"], doc["runs"]))
    print()
    print(report.format_machine(doc["machine"]))
    rl = [r["details"]["latency"] for r in doc["per_run"]]
    if rl:
        at = (
            f"{opts.latency_rate:,.0f} msgs/s"
            if opts.latency_rate
            else f"{100 * opts.latency_fraction:.0f}% of throughput"
        )
        print(
            f"load: {opts.pairs} pairs x {opts.window} in flight over {opts.loaders} load "
            f"processes; latency at {at} "
            f"({rl[0]['samples']} samples in run 1); offline sync of "
            f"{opts.offline_messages:,} messages in pages of {opts.sync_page}"
        )
    gl = [r["details"]["group_latency"] for r in doc["per_run"] if "group_latency" in r["details"]]
    if gl:
        g = doc["setup"]["group"]
        print(
            f"group: {g['members']} members ({g['online']} online over {opts.loaders} load "
            f"processes), {g['senders']} senders x {opts.group_window} in flight; "
            f"deliveries = messages x {g['members'] - 1} update logs; latency at "
            f"{100 * opts.latency_fraction:.0f}% of the group message rate "
            f"({gl[0]['samples']} message x receiver samples in run 1)"
        )
    split = doc.get("cpu_us_per_msg_by_thread")
    if split:
        print(
            "server CPU per message by thread (us, medians): "
            + "; ".join(
                f"{k}: " + ", ".join(f"{t} {v:.1f}" for t, v in kinds.items())
                for k, kinds in split.items()
            )
        )
    idle = doc.get("idle_connections")
    if idle:
        print(
            f"idle: {idle['connections']:,} authenticated idle connections (AUTH with the "
            f"tokens of {idle['users']} users), measured once before the runs: server RSS "
            f"{idle['rss_kib_before']:,} -> {idle['rss_kib_after']:,} KiB"
        )
    if doc.get("disturbed_phases"):
        print(
            f"WARNING: {doc['disturbed_phases']} measured phase(s) ran while other processes "
            f"used >= {opts.busy_threshold} cores (up to {doc['max_other_cpu_cores']}), after "
            f"{doc['retries_used']} repeat(s): their figures are pessimistic; the last column "
            f"leaves them out"
        )
    if doc.get("profile"):
        print(f"profile: {doc['profile']['summary_file']}")
        if doc["profile"].get("group"):
            print(f"profile (group fan-out): {doc['profile']['group']['summary_file']}")
    if doc["failures"]:
        print("FAILURES:")
        for f in doc["failures"]:
            print("  " + f.splitlines()[0])
    if opts.json:
        report.write_json(opts.json, doc)
        print(f"JSON: {opts.json}")
    if a.plot:
        from . import plot

        for path in plot.plot(doc, a.plot):
            print(f"chart: {path}")
    return status


if __name__ == "__main__":
    sys.exit(main())
