"""The ``podium`` command: client commands, operator commands, and one place for failures."""

from __future__ import annotations

import typer

from podium.cli import register as register_client_commands
from podium.cli.failures import handled, reported
from podium.cli.operator import local, repository, training, webhook_key
from podium.cli.options import console
from podium.core.errors import FailedPrecondition

HELP = (
    "Podium: classify folders of images with a model served by NVIDIA Triton.\n\n"
    "Exit codes: 0 success; 1 internal error; 2 bad command line; 3 the job ended cancelled or failed "
    "(submit --wait) or a bench target failed (bench --strict); 4 invalid argument; 5 not found; "
    "6 failed precondition; 7 unavailable; 8 resource exhausted; 9 unauthenticated; 10 permission denied."
)


def build_app() -> typer.Typer:
    app = typer.Typer(help=HELP, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode="rich")
    register_client_commands(app)
    repository.register(app)
    local.register(app)
    training.register(app)
    webhook_key.register(app)
    app.command("bench")(reported(_bench_command()))
    return app


def _bench_command():
    """`podium bench` from a source checkout (bench/ beside podium/); the wheel has no bench."""
    try:
        from bench.command import bench
    except ModuleNotFoundError as missing:
        if missing.name != "bench":
            raise

        def bench() -> None:
            """Side-by-side speed figures: needs a source checkout (run `make bench` there)."""
            raise FailedPrecondition(
                "podium bench measures from a source checkout of Podium",
                hint="clone the repository and run `make bench` (or `python -m podium bench` in its root)",
            )

    return bench


def main(argv: list[str] | None = None) -> None:
    with handled(console):
        build_app()(args=argv, prog_name="podium")
