"""Group commit: concurrent requests share one store transaction.

Every OTLP request must be durably stored before it is acknowledged, and a
commit costs milliseconds whatever its size. So the thread that gets the
commit lock takes every batch queued so far and stores them together
(leader/follower); the others find theirs done when they get the lock. If a
merged commit fails, its batches are retried one by one so that only the bad
one fails.
"""

from __future__ import annotations

import threading

from rca.ingest.batch import Batch
from rca.interfaces.ingestion import store_batch


class _Ticket:
    __slots__ = ("batch", "done", "counts", "error")

    def __init__(self, batch: Batch):
        self.batch = batch
        self.done = False
        self.counts: dict[str, int] | None = None
        self.error: BaseException | None = None


class GroupCommitter:
    def __init__(self, runtime):
        self.runtime = runtime
        self._queue_lock = threading.Lock()
        self._commit_lock = threading.Lock()
        self._pending: list[_Ticket] = []
        self.n_commits = 0

    def store(self, batch: Batch) -> dict[str, int]:
        """Store ``batch`` durably (possibly together with others); returns rows stored per table."""
        ticket = _Ticket(batch)
        with self._queue_lock:
            self._pending.append(ticket)
        with self._commit_lock:
            if not ticket.done:
                with self._queue_lock:
                    tickets, self._pending = self._pending, []
                self._commit(tickets)
        if ticket.error is not None:
            raise ticket.error
        return ticket.counts or {}

    def _commit(self, tickets: list[_Ticket]) -> None:
        try:
            if len(tickets) == 1:
                tickets[0].counts = store_batch(self.runtime, tickets[0].batch)
            else:
                merged = Batch()
                for t in tickets:
                    merged.extend(t.batch)
                store_batch(self.runtime, merged)
                for t in tickets:
                    t.counts = t.batch.counts()
            self.n_commits += 1
        except Exception as exc:  # noqa: BLE001 - handed to the waiting request, never swallowed
            if len(tickets) == 1:
                tickets[0].error = exc
            else:
                for t in tickets:
                    self._commit([t])
        finally:
            for t in tickets:
                t.done = True
