"""The client commands of ``podium``: they talk to a gateway and import nothing of the server side.

``register`` adds them to a Typer app; ``podium.cli.main`` builds the full ``podium`` command
from them and the operator commands.
"""

from __future__ import annotations

import typer

from podium.cli import jobs, model
from podium.cli.failures import reported


def register(app: typer.Typer) -> None:
    commands = (
        jobs.submit,
        jobs.status,
        jobs.jobs,
        jobs.results,
        jobs.cancel,
        jobs.delete,
        model.classes,
        model.classify,
    )
    for command in commands:
        app.command()(reported(command))


__all__ = [
    "failures",
    "options",
    "progress",
    "register",
]
