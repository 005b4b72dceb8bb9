"""JobOptions: what a client asks of a job, declared once.

The client API takes it (``PodiumClient.submit_*``), the ``podium submit`` flags are made
from its fields (``podium.cli.job_flags``), the wire form is ``JobSpec``, converted in one
place (``podium.core.proto.options``), the gateway checks it, and the job record (``Job``)
and so the Redis hash carry its fields. A new option is a field here and a field of
``JobSpec`` in podium.proto; ``tests/unit/test_job_options.py`` holds the two equal.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field

from podium.core.errors import InvalidArgument

DEFAULT_TOP_K = 5  # classes per image when a job asks for 0 (the gateway's PODIUM_DEFAULT_TOP_K)


def _option(default: object, help: str, metavar: str | None = None, flag: bool = True, **checks: object):
    """A field with its command-line help (and typer's ``checks``, e.g. ``min``); ``flag=False``:
    no `podium submit` flag (the client sets it)."""
    return field(default=default, metadata={"help": help, "metavar": metavar, "flag": flag, "checks": checks})


@dataclass(frozen=True)
class JobOptions:
    """What a client asks of a job (0 / empty: the gateway's default)."""

    top_k: int = _option(0, f"Classes per image (0: the gateway's default, {DEFAULT_TOP_K})", min=0)
    name: str = _option("", "A name for the job")
    model: str = _option("", "NAME or NAME:VERSION of the model in Triton (default: the gateway's, newest version)")
    explain: bool = _option(False, "Add each image's class activation map (where the model found its top-1 class)")
    source: str = _option("", "Where the images came from (the client sets it: the folder)", flag=False)
    webhook: str = _option(
        "", "POST the job's end as JSON to this http(s) URL (retried; signed if the gateway has a secret)"
    )
    max_failed: str = _option("", "End the job as FAILED once more than N (or P%) of its images fail", "N|P%")
    job_key: str = _option(
        "", "Idempotent, resumable upload: run again with the same KEY after a break to finish the same job", "KEY"
    )
    incremental: str = _option(
        "",
        "A delta job (--server-path, s3:// or --manifest): classify only what is new or changed since "
        "the last completed job of this NAME; the others' results are carried over",
        "NAME",
    )

    @classmethod
    def of(cls, values: Mapping[str, object]) -> JobOptions:
        """Options from keyword values; a name that is no option is refused with the list of those that are."""
        unknown = set(values) - set(option_names())
        if unknown:
            raise InvalidArgument(
                f"not options of a job: {', '.join(sorted(unknown))}", hint=f"options: {', '.join(option_names())}"
            )
        return cls(**values)  # type: ignore[arg-type]

    @classmethod
    def from_text(cls, params: Mapping[str, str]) -> JobOptions:
        """Options from text values (a query string, a form): each option given, parsed by its type."""
        types = typing.get_type_hints(cls)
        values: dict[str, object] = {}
        for name in option_names():
            if name not in params:
                continue
            text = params[name]
            if types[name] is bool:
                values[name] = text in ("1", "true", "on")
            elif types[name] is int:
                try:
                    values[name] = int(text or 0)
                except ValueError:
                    raise InvalidArgument(f"{name} must be a whole number") from None
            else:
                values[name] = text
        return cls(**values)  # type: ignore[arg-type]


def option_names() -> list[str]:
    return [option.name for option in dataclasses.fields(JobOptions)]
