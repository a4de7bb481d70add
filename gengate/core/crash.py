"""Named crash points for durability tests: `GENGATE_CRASH_AT=<point>` makes the process exit(137) there.

Points: after_task_commit (task row committed, before the upstream call), after_upstream_accept
(upstream accepted, before its id is stored), during_poll, before_ledger (terminal state decided,
before the transaction with its ledger entry commits), during_rehost. Off unless the variable is set.
"""

from __future__ import annotations

import os
import sys

POINTS = frozenset({"after_task_commit", "after_upstream_accept", "during_poll", "before_ledger",
                    "during_rehost"})
_ARMED = os.environ.get("GENGATE_CRASH_AT", "")


def crash_point(name: str) -> None:
    if _ARMED and _ARMED == name:
        sys.stderr.write(f"gengate: GENGATE_CRASH_AT={name}: exiting now\n")
        sys.stderr.flush()
        os._exit(137)
