"""Production-like local systems with injected, labelled faults (``rca simulate``)."""

from rca.simulate.faults import FAULT_KINDS, Fault
from rca.simulate.suite import SuiteResult, run_suite, simulate_suite
from rca.simulate.topology import Topology, builtin_topologies, load_topology

__all__ = ["FAULT_KINDS", "Fault", "SuiteResult", "Topology", "builtin_topologies", "load_topology", "run_suite",
           "simulate_suite"]
