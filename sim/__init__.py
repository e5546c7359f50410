"""Deterministic simulation of liaotian: from one seed, a real server on the in-memory
store, simulated devices, network faults and crashes, on a virtual clock, checked against
the delivery invariants after every step. See README.md in this directory.

    from liaotian.sim import SimOptions, run
    result = run(SimOptions(seed=42))
    assert result.ok, result.failure
"""

from .world import SimOptions, SimResult, run

__all__ = ["SimOptions", "SimResult", "run"]
