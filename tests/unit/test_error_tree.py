"""One error root: every exception class the project defines derives from PodiumError."""

from __future__ import annotations

import importlib
import inspect

from podium.core import errors
from podium.core.errors import PodiumError, Status
from tests.unit.test_layers import project_modules

# Modules that cannot be imported here: entry points that run at import, and the model file
# that only Triton's Python backend can import.
NOT_IMPORTABLE = ("__main__", "celery_entry", "triton_python_model", "deploy.docker.")


def project_exceptions() -> list[type[BaseException]]:
    found = []
    for name, _ in project_modules():
        if any(part in name for part in NOT_IMPORTABLE):
            continue
        module = importlib.import_module(name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == name:
                found.append(value)
    return found


def test_every_exception_class_derives_from_the_root():
    classes = project_exceptions()
    assert len(classes) >= 15, [c.__name__ for c in classes]
    strays = [f"{c.__module__}.{c.__qualname__}" for c in classes if not issubclass(c, PodiumError)]
    assert strays == []


def test_every_class_has_a_status_and_the_root_draws_the_tree():
    for cls in project_exceptions():
        assert isinstance(cls.status, Status), cls
        if cls.__module__ != "podium.core.errors":
            assert cls.__name__ in errors.__doc__ or cls.__bases__[0].__name__ in errors.__doc__, cls
