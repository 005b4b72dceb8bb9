"""`podium submit`'s job flags, made from JobOptions' fields: an option added there is a flag here.

``with_job_options`` puts one typer option per flagged field (name, type, default, help,
metavar and checks from the field) where the command's ``options`` parameter stands, and
hands the command the ``JobOptions`` they make.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable
from typing import Annotated

import typer

from podium.core.jobs import JobOptions

JOB_OPTIONS = JobOptions()  # the default of a command's ``options`` parameter, replaced by the flags


def job_flags() -> list[dataclasses.Field]:
    return [option for option in dataclasses.fields(JobOptions) if option.metadata.get("flag", True)]


def with_job_options(command: Callable[..., None]) -> Callable[..., None]:
    """``command(..., options: JobOptions, ...)`` as a typer command with one flag per option."""
    types = typing.get_type_hints(JobOptions)
    flags = job_flags()
    generated = [
        inspect.Parameter(
            option.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=option.default,
            annotation=Annotated[
                types[option.name],
                typer.Option(
                    "--" + option.name.replace("_", "-"),  # a bool is a flag alone: --explain, no --no-explain
                    help=option.metadata["help"],
                    metavar=option.metadata["metavar"],
                    **option.metadata["checks"],
                ),
            ],
        )
        for option in flags
    ]
    signature = inspect.signature(command, eval_str=True)
    parameters = []
    for parameter in signature.parameters.values():
        if parameter.name == "options":
            parameters += generated
        else:
            parameters.append(parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY))

    @functools.wraps(command)
    def run(**values: object) -> None:
        options = JobOptions(**{option.name: values.pop(option.name) for option in flags})
        return command(options=options, **values)

    run.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    # typer reads the hints too: the real annotations of the parameters it sees, not the command's.
    run.__annotations__ = {parameter.name: parameter.annotation for parameter in parameters}
    return run
