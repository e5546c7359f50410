"""liaotian benchmark harness.

`python -m bench [--quick] [--json PATH] [--runs N] [--pairs N] [--duration S]` starts a
server (and a bare relay for comparison) as separate processes, drives them from separate
load processes over 127.0.0.1, and reports throughput, latency, offline-sync speed, the
ratio to the raw relay, group fan-out (messages, update-log deliveries and pushes per second,
latency) and the server memory per idle connection. See bench/README.md.

Modules:
    wire     -- framing helpers shared by the load generator and the relay
    load     -- the load-generator process (uvloop, asyncio.Protocol, pre-encoded frames)
    relay    -- the raw relay baseline (`python -m bench.relay --port N`)
    runner   -- orchestration: processes, phases, timeouts, clean-up
    report   -- statistics, machine information, table and JSON output
    profile  -- summarise a py-spy raw (collapsed stack) profile
"""

__all__ = ["__version__"]
__version__ = "1.0"
