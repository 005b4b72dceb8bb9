"""Which model a job uses: ``NAME`` or ``NAME:VERSION``, as Triton names them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from podium.core.errors import InvalidArgument

# A Triton model name is a folder name of the repository: portable and never hidden.
MODEL_NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: str = ""  # "": the newest the server has

    @classmethod
    def parse(cls, text: str, default_name: str) -> ModelRef:
        """``"name"``, ``"name:3"`` or ``""`` (the default model); InvalidArgument otherwise."""
        name, _, version = (text or default_name).partition(":")
        if not MODEL_NAME_PATTERN.fullmatch(name) or (version and not version.isdigit()):
            raise InvalidArgument(f"model {text!r} is not NAME or NAME:VERSION (a name of letters, digits, _ . -)")
        return cls(name, version)

    def __str__(self) -> str:
        return f"{self.name}:{self.version}" if self.version else self.name
