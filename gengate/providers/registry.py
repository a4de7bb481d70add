"""Finds every provider folder: its task adaptors (`adaptor.py: ADAPTORS`, each with its shipped
`prices`), extra views of tasks (`adaptor.py: VIEWS`, name -> renderer, e.g. a `/v1/videos` video
object over any video provider), the channel providers it serves (`adaptor.py: CHANNEL_PROVIDERS`,
for folders whose channels are not task adaptors, e.g. a synchronous relay) and its client routes
(`routes.py: routes(ctx)`). Adding a provider is adding a folder; nothing here names one."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

import gengate.providers as _pkg
from gengate.core.adaptor import TaskAdaptor, TaskRenderer


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


def task_views() -> dict[str, TaskRenderer]:
    """Views a task can be created through besides its provider's own, by name (a task's `origin`)."""
    views: dict[str, TaskRenderer] = {}
    for m in _modules("adaptor"):
        views.update(getattr(m, "VIEWS", {}))
    return views


def default_prices() -> list[Mapping[str, int]]:
    return [a.prices for a in task_adaptors().values()] + [
        table for m in _modules("adaptor") for table in getattr(m, "EXTRA_PRICES", [])]


def provider_names() -> frozenset[str]:
    """Every name `channels add --provider` accepts."""
    names = set(task_adaptors())
    for m in _modules("adaptor"):
        names.update(getattr(m, "CHANNEL_PROVIDERS", ()))
    return frozenset(names)


def route_factories() -> list[Callable[[Any], list[Any]]]:
    return [m.routes for m in _modules("routes") if hasattr(m, "routes")]
