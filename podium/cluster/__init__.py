"""`podium up`: a whole Podium on this machine, as supervised child processes."""

from podium.cluster.local import LocalCluster
from podium.cluster.processes import ProcessFailed
from podium.cluster.settings import ClusterSettings

__all__ = [
    "ClusterSettings",
    "LocalCluster",
    "ProcessFailed",
    "processes",
    "triton",
]
