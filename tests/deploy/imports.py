"""Which project modules a module pulls in, read from the source (nothing is imported).

Used to prove that code an image runs does not import what the image leaves out: the
engine builder has no torch. Every import statement counts, also those inside functions,
because a lazy import still fails when its function runs.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def module_path(name: str) -> Path | None:
    """The source file of a project module or package, or None for third-party ones."""
    base = REPO_ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_names(path: Path, module: str) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            found.append((source, node.lineno))
            # `from package import module` imports the submodule too.
            found += [(f"{source}.{alias.name}", node.lineno) for alias in node.names]
    return found


def forbidden_imports(entry_modules: list[str], forbidden: set[str]) -> dict[str, list[str]]:
    """forbidden top-level name -> ["module:line", ...] over everything the entries pull in."""
    seen: set[str] = set()
    pending = list(entry_modules)
    hits: dict[str, list[str]] = {}
    while pending:
        module = pending.pop()
        path = module_path(module)
        if module in seen or path is None:
            continue
        seen.add(module)
        parts = module.split(".")
        pending += [".".join(parts[:n]) for n in range(1, len(parts))]  # parent packages run first
        for name, line in _imported_names(path, module):
            top = name.split(".")[0]
            where = f"{path.relative_to(REPO_ROOT)}:{line}"
            if top in forbidden and where not in hits.get(top, []):
                hits.setdefault(top, []).append(where)
            elif module_path(name) is not None:
                pending.append(name)
    return hits
