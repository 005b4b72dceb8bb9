"""`podium up`: a whole Podium on this machine, as supervised child processes."""

from podium.cluster.local import ClusterSettings, LocalCluster
from podium.cluster.processes import ProcessFailed

__all__ = ["ClusterSettings", "LocalCluster", "ProcessFailed"]
