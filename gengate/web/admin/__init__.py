"""The operator's JSON API under `/admin/api` (interface.md "Operators and key holders"), behind the
admin token, its web UI at `/admin/` (`pages.py`, static files in `ui/`), and the key holder's OpenAI
legacy billing endpoints (`billing.py`)."""

from __future__ import annotations

from starlette.routing import Route

from gengate.web.admin import channels, keys, pages, tasks, usage


def admin_routes() -> list[Route]:
    return [*keys.routes(), *channels.routes(), *tasks.routes(), *usage.routes(), *pages.ui_routes()]
