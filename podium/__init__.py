"""The Podium client: the PodiumClient Python API and the `podium` command line."""

from podium.client import PodiumClient, PodiumClientError

__all__ = ["PodiumClient", "PodiumClientError"]
