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


def imported_names(path: Path, module: str, shallow: bool = False) -> list[tuple[str, int]]:
    """(imported module, line) of every import in ``path``; with ``shallow`` only those
    that run when the module is imported (not those inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    nodes = _module_level(tree) if shallow else ast.walk(tree)
    for node in nodes:
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


def _module_level(tree: ast.Module):
    """Statements that run at import: the module body, into if/try/with blocks, not into functions."""
    pending = list(tree.body)
    while pending:
        node = pending.pop()
        yield node
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            pending += [child for child in ast.iter_child_nodes(node) if isinstance(child, ast.stmt)]


def forbidden_imports(
    entry_modules: list[str], forbidden: set[str], shallow: frozenset[str] = frozenset()
) -> dict[str, list[str]]:
    """forbidden top-level name -> ["module:line", ...] over everything the entries pull in.

    Modules named in ``shallow`` count only with what they import at import time: a
    command-line module whose other commands import other things inside functions."""
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
        for name, line in imported_names(path, module, shallow=module in shallow):
            top = name.split(".")[0]
            where = f"{path.relative_to(REPO_ROOT)}:{line}"
            if top in forbidden and where not in hits.get(top, []):
                hits.setdefault(top, []).append(where)
            elif module_path(name) is not None:
                pending.append(name)
    return hits
