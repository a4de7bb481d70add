"""The unified `/v1/tasks` client helpers, now `harness.unified`; this name is kept for the tests
that import it."""

from harness.unified import (
    PRICE_T2V_4S,
    STATUS_RANK,
    TASK_KEYS,
    UNIFIED_STATUSES,
    UNIFIED_TERMINAL,
    Answer,
    Stream,
    assert_openai_error,
    bearer,
    call,
    check_unified,
    get_task,
    read_events,
    t2v,
    wait_status,
)

__all__ = ["PRICE_T2V_4S", "STATUS_RANK", "TASK_KEYS", "UNIFIED_STATUSES", "UNIFIED_TERMINAL", "Answer", "Stream",
           "assert_openai_error", "bearer", "call", "check_unified", "get_task", "read_events", "t2v", "wait_status"]
