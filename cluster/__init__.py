"""`podium up`: a whole Podium on this machine, as supervised child processes."""

from cluster.local import ClusterSettings, LocalCluster
from cluster.processes import ProcessFailed

__all__ = ["ClusterSettings", "LocalCluster", "ProcessFailed"]
