"""Finds every provider folder: its task adaptors (`adaptor.py: ADAPTORS`) and its client routes
(`routes.py: routes(ctx)`). Adding a provider is adding a folder; nothing here names one."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from types import ModuleType
from typing import Any

import gengate.providers as _pkg
from gengate.providers.base import TaskAdaptor


def _modules(name: str) -> list[ModuleType]:
    found = []
    for info in pkgutil.iter_modules(_pkg.__path__):
        if not info.ispkg:
            continue
        try:
            found.append(importlib.import_module(f"{_pkg.__name__}.{info.name}.{name}"))
        except ModuleNotFoundError as exc:
            if exc.name != f"{_pkg.__name__}.{info.name}.{name}":
                raise
    return found


def task_adaptors() -> dict[str, TaskAdaptor]:
    return {a.provider: a for m in _modules("adaptor") for a in getattr(m, "ADAPTORS", [])}


def route_factories() -> list[Callable[[Any], list[Any]]]:
    return [m.routes for m in _modules("routes") if hasattr(m, "routes")]
