"""Several nodes serving one user base: routing between them over NATS (docs/cluster.md).

`notices` (the bytes nodes exchange, pure), `catchup` (each session's stream kept
gap-free from the log), `bus` (the NATS connection), `node` (the wiring of the three
into one node). The composition root builds them only when `cluster_nats` is set.
"""

from __future__ import annotations

from .bus import NatsBus
from .node import ClusterNode

__all__ = ["ClusterNode", "NatsBus"]
