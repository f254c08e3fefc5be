"""A local simulator of the Flink OpenAPI (ListDeployments, ListJobs, GetLineageInfo).

It speaks the real wire format, verifies ACS3 signatures like the gateway, serves a generated
workspace that changes over time, and can inject faults. Used by the demo, the tests and the
benchmarks; `lineage-exporter simulate` runs it as a server.
"""

from exporter.simulator.server import Faults, Simulator
from exporter.simulator.world import World, WorldSize

__all__ = ["Faults", "Simulator", "World", "WorldSize"]
