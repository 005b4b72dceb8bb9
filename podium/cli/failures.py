"""How the command line reports a failure: one message, a hint, a distinct exit code, no traceback.

Every command raises ``PodiumError`` (or lets one through); ``handled`` turns it into
``error: <message>`` plus a hint on stderr and the exit code of its status, in this one
place. ``reported`` applies it to a command as it is registered. A bug (any other exception) still ends with a short message and exit code 1; its
traceback is shown only with ``PODIUM_DEBUG=1``.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click
import typer
from rich.console import Console
from rich.markup import escape

from podium.core.errors import PodiumError, Status

EXIT_INTERNAL = 1
EXIT_USAGE = 2  # click's own code for a bad command line
EXIT_JOB_NOT_COMPLETED = 3  # `submit --wait` of a job that was cancelled or failed; `bench --strict`
EXIT_CODES: dict[Status, int] = {
    Status.INTERNAL: EXIT_INTERNAL,
    Status.INVALID_ARGUMENT: 4,
    Status.NOT_FOUND: 5,
    Status.FAILED_PRECONDITION: 6,
    Status.UNAVAILABLE: 7,
    Status.RESOURCE_EXHAUSTED: 8,
    Status.UNAUTHENTICATED: 9,
    Status.PERMISSION_DENIED: 10,
}
# Said when the error itself carries no hint.
HINTS: dict[Status, str] = {
    Status.UNAVAILABLE: "is `podium up` running, and is --gateway (or $PODIUM_GATEWAY) right?",
    Status.UNAUTHENTICATED: "pass --api-key KEY or set PODIUM_API_KEY",
    Status.PERMISSION_DENIED: "the gateway's operator decides what may be read and by whom",
    Status.RESOURCE_EXHAUSTED: "try again later, or split the work into smaller jobs",
    Status.INTERNAL: "this is a bug; the log of the service named above has details",
}
DEBUG_VARIABLE = "PODIUM_DEBUG"


def exit_code(status: Status) -> int:
    return EXIT_CODES[status]


def report(console: Console, error: PodiumError) -> None:
    console.print(f"[bold red]error:[/] {escape(error.message)}", highlight=False)
    hint = error.hint or HINTS.get(error.status, "")
    if hint:
        console.print(f"[dim]hint:[/] {escape(hint)}", highlight=False)


@contextmanager
def handled(console: Console) -> Iterator[None]:
    """Run a command; a PodiumError (or a bug) ends the process with its message and code."""
    try:
        yield
    except PodiumError as error:
        report(console, error)
        sys.exit(exit_code(error.status))
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)
    except (typer.Exit, click.exceptions.Exit):
        raise  # typer.Exit(code): the command chose its exit code (3: the job did not complete)
    except Exception as error:
        if os.environ.get(DEBUG_VARIABLE) == "1":
            raise
        console.print(
            f"[bold red]internal error:[/] {escape(type(error).__name__)}: {escape(str(error))}", highlight=False
        )
        console.print(f"[dim]hint:[/] run again with {DEBUG_VARIABLE}=1 for the traceback", highlight=False)
        sys.exit(EXIT_INTERNAL)


def reported(command: Callable) -> Callable:
    """``command`` with its failures reported by ``handled`` (typer still sees its signature)."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        with handled(Console(stderr=True)):
            return command(*args, **kwargs)

    return run
