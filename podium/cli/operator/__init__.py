"""The operator commands of ``podium``: export, build-engine, models, up, web, demo, train,
evaluate, compare, webhook-key; and ``python -m podium.cli.operator.gpu_check``.

``podium.cli.main`` is the ``podium`` entry point: it joins these commands with the client
commands of ``podium.cli`` and reports every ``PodiumError`` in one place.
"""

__all__ = [
    "local",
    "repository",
    "training",
    "webhook_key",
]
