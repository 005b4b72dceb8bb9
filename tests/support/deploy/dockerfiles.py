"""Dockerfiles and .dockerignore files read the way Docker's builder reads them.

Only what the tests need: instructions (with line continuations and comments), FROM
stages, COPY/ADD sources and flags, and .dockerignore matching, including ``**``, ``!``
re-inclusion and "a pattern that matches a folder matches what is in it".
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str
    line: int


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)


def instructions(path: Path) -> list[Instruction]:
    result: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # comment lines inside a continued instruction are dropped
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1])
            continue
        pending.append(stripped)
        text = " ".join(part.strip() for part in pending if part.strip())
        pending = []
        keyword, _, arguments = text.partition(" ")
        result.append(Instruction(keyword.upper(), arguments.strip(), start))
    if pending:
        raise ValueError(f"{path}: unterminated line continuation")
    return result


def stages(path: Path) -> list[Stage]:
    result: list[Stage] = []
    for ins in instructions(path):
        if ins.keyword == "FROM":
            words = [w for w in ins.arguments.split() if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            result.append(Stage(words[0], name))
        elif result:
            result[-1].instructions.append(ins)
    return result


@dataclass(frozen=True)
class Copy:
    keyword: str
    flags: dict[str, str]
    sources: list[str]
    destination: str
    line: int


def copies(path: Path) -> list[Copy]:
    result = []
    for ins in instructions(path):
        if ins.keyword not in ("COPY", "ADD"):
            continue
        args = ins.arguments
        flags: dict[str, str] = {}
        while args.startswith("--"):
            flag, _, args = args.partition(" ")
            key, _, value = flag[2:].partition("=")
            flags[key] = value
            args = args.lstrip()
        words = json.loads(args) if args.startswith("[") else shlex.split(args)
        result.append(Copy(ins.keyword, flags, words[:-1], words[-1], ins.line))
    return result


def effective_user(path: Path, target: str | None = None) -> str | None:
    """The USER a target stage (default: the last) runs as, following FROM <stage> chains."""
    by_name = {s.name: s for s in stages(path) if s.name}
    stage: Stage | None = by_name[target] if target else stages(path)[-1]
    while stage is not None:
        users = [ins.arguments for ins in stage.instructions if ins.keyword == "USER"]
        if users:
            return users[-1]
        stage = by_name.get(stage.base)
    return None


# --- .dockerignore ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Pattern:
    regex: re.Pattern
    exclude: bool


def _compile(pattern: str) -> _Pattern:
    exclude = not pattern.startswith("!")
    pattern = pattern.lstrip("!").strip()
    pattern = str(PurePosixPath(pattern.lstrip("/"))) if pattern not in (".", "") else pattern
    regex, i = "", 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            regex += "(?:.*/)?"
            i += 3
            continue
        if pattern.startswith("**", i):
            regex += ".*"
            i += 2
            continue
        if char == "*":
            regex += "[^/]*"
        elif char == "?":
            regex += "[^/]"
        elif char == "[":
            end = pattern.index("]", i)
            regex += pattern[i : end + 1].replace("[!", "[^")
            i = end
        else:
            regex += re.escape(char)
        i += 1
    return _Pattern(re.compile(f"^{regex}$"), exclude)


class DockerIgnore:
    """Which context paths a build may see, by Docker's rules: the last matching pattern
    wins, and a pattern matching a parent folder matches everything under it."""

    def __init__(self, text: str) -> None:
        lines = (line.strip() for line in text.splitlines())
        self._patterns = [_compile(line) for line in lines if line and not line.startswith("#")]

    @classmethod
    def for_build(cls, context: Path, dockerfile: Path) -> DockerIgnore:
        """The Dockerfile's own <Dockerfile>.dockerignore if there is one, else the context's."""
        for candidate in (dockerfile.with_name(dockerfile.name + ".dockerignore"), context / ".dockerignore"):
            if candidate.is_file():
                return cls(candidate.read_text(encoding="utf-8"))
        return cls("")

    def excluded(self, relative: str) -> bool:
        parts = PurePosixPath(relative).parts
        candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        verdict = False
        for pattern in self._patterns:
            if any(pattern.regex.match(c) for c in candidates):
                verdict = pattern.exclude
        return verdict

    def included_files(self, context: Path, source: str) -> list[str]:
        """Files under context/source (a file or a folder) that the build context keeps."""
        root = (context / source).resolve()
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        relative = [p.relative_to(context.resolve()).as_posix() for p in files]
        return [r for r in relative if not self.excluded(r)]
