"""The task engine, one module per job, each building on the ones before it:

    base.py       wiring, transactions, moves, timings, the account and reference of a call
    views.py      ownership, lists, the view a renderer gets, webhooks queued with a change
    submit.py     create (save + reserve), slots, send the create, read what its reply proves
    reconcile.py  find the job of an ambiguous create, or prove there is none
    poll.py       what a due task needs next: poll, re-host, deadline
    cancel.py     cancel and delete on a client's request

Routes call `create`/`owned`/`view`/`list_owned`/`cancel`/`delete`; the poller calls `handle`.
Every state change goes through `tasks.move` in a transaction of its own; an upstream call is never
made inside a transaction.
"""

from gengate.core.engine.base import Tx, new_public_id
from gengate.core.engine.cancel import CancelJob


class TaskEngine(CancelJob):
    """Every job of the engine, on one object that the routes and the poller share."""


__all__ = ["TaskEngine", "Tx", "new_public_id"]
