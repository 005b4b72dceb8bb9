"""Print the requirements of the engine-builder image, one per line, from pyproject.toml.

The engine builder runs ``podium build-engine``: it reads the exported ONNX model and
builds a TensorRT plan with the TensorRT of the NGC image it runs in. It needs the
project's ``export`` extra without the PyTorch side of it (the checkpoint was already
exported on the host), so this prints that extra minus NOT_NEEDED. Deriving the list
here, instead of copying it into the Dockerfile, keeps pyproject.toml the one place
where dependencies are declared. (cuda-python, whose version follows the image's CUDA,
is added by docker/engine-builder.Dockerfile.)

    python3 deploy/docker/engine_requirements.py [pyproject.toml] > requirements.txt
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

EXTRA = "export"
# Gigabytes of CUDA wheels the engine build has no use for: exporting a checkpoint
# (torch, torchvision) and making sample photos (scikit-image) happen elsewhere.
NOT_NEEDED = frozenset({"torch", "torchvision", "scikit-image"})


def requirement_name(requirement: str) -> str:
    """The normalised distribution name of a PEP 508 requirement string."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if not match:
        raise ValueError(f"not a requirement: {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def engine_requirements(pyproject: Path) -> list[str]:
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    extra = data["project"]["optional-dependencies"][EXTRA]
    return [req for req in extra if requirement_name(req) not in NOT_NEEDED]


def main(argv: list[str]) -> int:
    pyproject = Path(argv[0]) if argv else Path("pyproject.toml")
    print("\n".join(engine_requirements(pyproject)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
