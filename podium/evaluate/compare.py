"""``podium compare A B``: two evaluations of the same images, side by side.

This is how a user decides whether INT8, fast decoding or a TensorRT engine is good enough
on their own photographs: each accuracy with its interval, the difference, how often the
two agree on the top-1, and the images whose answer flipped (right in one, wrong in the other).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from podium.core.errors import InvalidArgument, NotFound
from podium.evaluate.files import REPORT_JSON


@dataclass(frozen=True)
class Flip:
    path: str
    true: str
    a: str
    b: str


@dataclass
class Comparison:
    a: dict
    b: dict
    common: int
    agreement: float  # top-1 answers equal, over the common images
    fixed: list[Flip] = field(default_factory=list)  # wrong in A, right in B
    broken: list[Flip] = field(default_factory=list)  # right in A, wrong in B
    changed: list[Flip] = field(default_factory=list)  # wrong in both, but differently

    @property
    def difference(self) -> float:
        return self.b["accuracy"] - self.a["accuracy"]


def read_report(path: Path) -> dict:
    """A report.json, or the report.json of an evaluation folder."""
    path = Path(path)
    path = path / REPORT_JSON if path.is_dir() else path
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFound(
            f"no evaluation report at {path}", hint="write one with `podium evaluate DIR --report OUT`"
        ) from None
    except ValueError as exc:
        raise InvalidArgument(f"{path} is not a report.json: {exc}") from None
    if "predictions" not in report:
        raise InvalidArgument(f"{path} has no per-image predictions; evaluate again with this version of Podium")
    return report


def compare_reports(a: dict, b: dict) -> Comparison:
    answers_a = {p["path"]: p for p in a["predictions"]}
    answers_b = {p["path"]: p for p in b["predictions"]}
    common = sorted(answers_a.keys() & answers_b.keys())
    if not common:
        raise InvalidArgument("the two reports share no image: compare evaluations of the same folder")
    comparison = Comparison(a, b, len(common), 0.0)
    same = 0
    for path in common:
        one, other = answers_a[path], answers_b[path]
        same += one["predicted"] == other["predicted"]
        flip = Flip(path, one["true"], one["predicted"], other["predicted"])
        right_a, right_b = one["predicted"] == one["true"], other["predicted"] == other["true"]
        if right_b and not right_a:
            comparison.fixed.append(flip)
        elif right_a and not right_b:
            comparison.broken.append(flip)
        elif not right_a and one["predicted"] != other["predicted"]:
            comparison.changed.append(flip)
    comparison.agreement = same / len(common)
    return comparison
