"""The ``podium`` command: client commands, operator commands, and one place for failures."""

from __future__ import annotations

import typer

from bench.command import bench
from ops import local, repository, training, webhook_key
from podium import cli
from podium.cli.failures import handled, reported
from podium.cli.options import console

HELP = (
    "Podium: classify folders of images with a model served by NVIDIA Triton.\n\n"
    "Exit codes: 0 success; 1 internal error; 2 bad command line; 3 the job ended cancelled or failed "
    "(submit --wait) or a bench target failed (bench --strict); 4 invalid argument; 5 not found; "
    "6 failed precondition; 7 unavailable; 8 resource exhausted; 9 unauthenticated; 10 permission denied."
)


def build_app() -> typer.Typer:
    app = typer.Typer(help=HELP, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode="rich")
    cli.register(app)
    repository.register(app)
    local.register(app)
    training.register(app)
    webhook_key.register(app)
    app.command("bench")(reported(bench))
    return app


def main(argv: list[str] | None = None) -> None:
    with handled(console):
        build_app()(args=argv, prog_name="podium")
