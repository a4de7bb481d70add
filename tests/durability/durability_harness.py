"""The durability helpers, now `harness.durability` (plus the process harness they use); this name
is kept for the tests that import it."""

from harness.cli import base_env
from harness.durability import (
    DB_TERMINAL,
    DURABILITY_ENV,
    EMULATOR_TASK_SECONDS,
    Client,
    Reply,
    Server,
    balance,
    body,
    check_books,
    durable_env,
    events_of,
    http_session,
    key_id,
    new_server,
    price_4s,
    seed_from_env,
    servers,
    start_emulator,
    task_rows,
    until,
    wait_all_terminal,
)
from harness.processes import Emulator, GengateServer, free_port, http_json
from harness.services import Backend
from harness.vidu import TERMINAL as VIDU_TERMINAL
from harness.vidu import assert_vidu_error

__all__ = ["DB_TERMINAL", "DURABILITY_ENV", "EMULATOR_TASK_SECONDS", "VIDU_TERMINAL", "Backend", "Client", "Emulator",
           "GengateServer", "Reply", "Server", "assert_vidu_error", "balance", "base_env", "body", "check_books",
           "durable_env", "events_of", "free_port", "http_json", "http_session", "key_id", "new_server", "price_4s",
           "seed_from_env", "servers", "start_emulator", "task_rows", "until", "wait_all_terminal"]
