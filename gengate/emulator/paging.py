"""Query parameters of list routes: page numbers (Vidu `page_no`/`page_size`, Kling
`pageNum`/`pageSize`) and offsets (Luma `offset`/`limit`). Anything that is not a plain decimal
in range is the provider's 400 (`ProviderError`), never a 500 further down."""

from __future__ import annotations

from typing import NamedTuple

from starlette.requests import Request

from gengate.emulator.replies import ProviderError

# Far beyond any store, and small enough that offset arithmetic stays a machine integer.
MAX_OFFSET = 10**12


class Page(NamedTuple):
    number: int  # 1-based; 0 for offset paging
    size: int
    offset: int


def int_param(request: Request, name: str, default: int, *, low: int, high: int, reason: str | None = None) -> int:
    """A query parameter as an int in `[low, high]`; absent or empty gives `default`."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    text = raw.strip()
    digits = text[1:] if text[:1] in "+-" else text
    # ASCII digits only: int() would also take full-width and Arabic-Indic digits, and "1_000".
    if digits.isascii() and digits.isdigit() and len(digits) <= 18 and low <= int(text) <= high:
        return int(text)
    wanted = f"from {low} to {high}" if high < 10**6 else f"of at least {low} (and not absurdly large)"
    raise ProviderError(400, f"{name} must be an integer {wanted}", reason)


def page_params(
    request: Request,
    number: str = "page_no",
    size: str = "page_size",
    *,
    default_size: int = 10,
    max_size: int = 100,
    reason: str | None = None,
) -> Page:
    """1-based page number and page size; a page past the end is simply empty."""
    page_size = int_param(request, size, default_size, low=1, high=max_size, reason=reason)
    page_no = int_param(request, number, 1, low=1, high=MAX_OFFSET // page_size + 1, reason=reason)
    return Page(page_no, page_size, (page_no - 1) * page_size)


def offset_params(
    request: Request,
    offset: str = "offset",
    limit: str = "limit",
    *,
    default_limit: int = 10,
    max_limit: int = 100,
    reason: str | None = None,
) -> Page:
    """An offset and a limit (Luma's `offset`/`limit`)."""
    size = int_param(request, limit, default_limit, low=1, high=max_limit, reason=reason)
    start = int_param(request, offset, 0, low=0, high=MAX_OFFSET, reason=reason)
    return Page(0, size, start)
