"""The operator side of ``podium``: export, build-engine, models, up, demo, bench; and ``main``.

``ops.main`` is the ``podium`` entry point: it joins these commands with the client
commands of ``podium.cli`` and reports every ``PodiumError`` in one place.
"""
