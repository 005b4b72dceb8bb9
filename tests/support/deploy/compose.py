"""Compose files read the way Docker Compose reads them, as far as these tests need.

- YAML anchors and merge keys (PyYAML resolves both).
- ``!reset`` and ``!override`` (Compose >= 2.24), which only override files use.
- Merging several files: mappings merge, sequences append, except the attributes the
  Compose specification overrides (command, entrypoint, healthcheck.test).
- ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}`` interpolation from a given mapping.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

_RESET = object()


class _Override:
    def __init__(self, value: Any) -> None:
        self.value = value


class ComposeLoader(yaml.SafeLoader):
    """SafeLoader plus Compose's two merge tags."""


def _construct_reset(loader: ComposeLoader, node: yaml.Node) -> object:
    return _RESET


def _construct_override(loader: ComposeLoader, node: yaml.Node) -> _Override:
    if isinstance(node, yaml.MappingNode):
        return _Override(loader.construct_mapping(node, deep=True))
    if isinstance(node, yaml.SequenceNode):
        return _Override(loader.construct_sequence(node, deep=True))
    return _Override(loader.construct_scalar(node))


ComposeLoader.add_constructor("!reset", _construct_reset)
ComposeLoader.add_constructor("!override", _construct_override)

# Attributes whose value in a later file replaces the earlier one instead of appending.
_REPLACED = {("command",), ("entrypoint",), ("healthcheck", "test")}


def load(path: Path) -> dict:
    with path.open(encoding="utf-8") as f:
        return yaml.load(f, Loader=ComposeLoader)  # a SafeLoader subclass: no arbitrary objects


def merge(base: Any, override: Any, path: tuple[str, ...] = ()) -> Any:
    """Merge ``override`` into ``base`` by the Compose specification's rules."""
    if override is _RESET:
        return _RESET
    if isinstance(override, _Override):
        return copy.deepcopy(override.value)
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            result = merge(base.get(key), value, (*path, key)) if key in base else _resolve(value)
            if result is _RESET:
                merged.pop(key, None)
            else:
                merged[key] = result
        return merged
    if isinstance(base, list) and isinstance(override, list) and path[-2:] not in _REPLACED:
        return base + _resolve(override)
    return _resolve(override)


def _resolve(value: Any) -> Any:
    """A value from one file alone: drop !reset entries, unwrap !override."""
    if isinstance(value, _Override):
        return value.value
    if isinstance(value, dict):
        return {k: _resolve(v) for k, v in value.items() if v is not _RESET}
    if isinstance(value, list):
        return [_resolve(v) for v in value if v is not _RESET]
    return value


def load_merged(*paths: Path) -> dict:
    merged: Any = {}
    for path in paths:
        merged = merge(merged, load(path))
    return merged


_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: Any, variables: Mapping[str, str]) -> Any:
    """Replace ${...} everywhere in ``value``; ``:?`` with the variable unset raises."""
    if isinstance(value, dict):
        return {k: interpolate(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, variables) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        current = variables.get(name)
        unset = current is None or (op is not None and op.startswith(":") and current == "")
        if op in (":?", "?") and unset:
            raise KeyError(f"required variable {name} is not set: {arg}")
        if op in (":-", "-") and unset:
            return arg
        return current or ""

    return _VARIABLE.sub(substitute, value.replace("$$", "\x00")).replace("\x00", "$")


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as both Compose's env_file and kustomize's envs read them."""
    result: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"{path}: line without '=': {line!r}")
        result[key.strip()] = value
    return result


def service_environment(compose_file: Path, service: dict) -> dict[str, str]:
    """The variables a container gets: env_file entries, then ``environment`` over them."""
    env: dict[str, str] = {}
    env_files = service.get("env_file", [])
    for entry in [env_files] if isinstance(env_files, str | dict) else env_files:
        name = entry if isinstance(entry, str) else entry["path"]
        env.update(read_env_file(compose_file.parent / name))
    environment = service.get("environment", {})
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) if "=" in item else (item, "") for item in environment)
    env.update({k: "" if v is None else str(v) for k, v in environment.items()})
    return env
