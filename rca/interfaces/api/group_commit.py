"""Group commit: concurrent requests share one store transaction.

Every OTLP request must be durably stored before it is acknowledged, and a
commit costs milliseconds whatever its size. So requests queue their decoded
batch and wait; one of them (the leader) takes every batch queued so far and
stores them together, then wakes the others. Requests are counted from their
arrival (``incoming``) until their batch is queued, so a leader lingers (at
most ``LINGER_S``) for batches still being read or decoded instead of
committing without them; with none on the way it commits at once. If a merged
commit fails, its batches are retried one by one so that only the bad one fails.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Callable

from rca.ingest.batch import Batch
from rca.interfaces.ingestion import store_batch

LINGER_S = 0.01  # the longest a leader waits for requests still being read or decoded


class _Ticket:
    __slots__ = ("batch", "done", "counts", "error")

    def __init__(self, batch: Batch):
        self.batch = batch
        self.done = False
        self.counts: dict[str, int] | None = None
        self.error: BaseException | None = None


class _Arrival:
    """One request counted by ``GroupCommitter.incoming``."""

    __slots__ = ("committer", "counted")

    def __init__(self, committer: "GroupCommitter"):
        self.committer = committer
        self.counted = True

    def leave(self) -> None:
        c = self.committer
        with c._cond:
            if self.counted:
                self.counted = False
                c._n_coming -= 1
                c._cond.notify_all()

    def decode_and_store(self, decode: Callable[[], Batch]) -> tuple[Batch, dict[str, int]]:
        """Decode the request and store its batch durably; returns (batch, rows stored per table)."""
        try:
            batch = decode()
        except BaseException:
            self.leave()
            raise
        ticket = _Ticket(batch)
        c = self.committer
        with c._cond:
            if self.counted:
                self.counted = False
                c._n_coming -= 1
            c._queue(ticket)
        if ticket.error is not None:
            raise ticket.error
        return batch, ticket.counts or {}


class GroupCommitter:
    def __init__(self, runtime, linger_s: float = LINGER_S):
        self.runtime = runtime
        self.linger_s = linger_s
        self._cond = threading.Condition()
        self._pending: list[_Ticket] = []
        self._n_coming = 0  # requests that arrived and have not queued their batch (or failed) yet
        self._committing = False
        self.n_commits = 0

    @contextmanager
    def incoming(self):
        """Count a request from its arrival (before its body is read) until it queues its batch or fails:
        a commit that starts meanwhile lingers briefly for it. Yields ``store``-like
        ``decode_and_store(decode)``: decode (in the caller's thread) and store durably."""
        arrival = _Arrival(self)
        with self._cond:
            self._n_coming += 1
        try:
            yield arrival.decode_and_store
        finally:
            arrival.leave()

    def store(self, batch: Batch) -> dict[str, int]:
        """Store ``batch`` durably (possibly together with others); returns rows stored per table."""
        ticket = _Ticket(batch)
        with self._cond:
            self._queue(ticket)
        if ticket.error is not None:
            raise ticket.error
        return ticket.counts or {}

    def _queue(self, ticket: _Ticket) -> None:
        """(Lock held.) Queue ``ticket`` and return once it is committed, leading the commit if none is running."""
        self._pending.append(ticket)
        self._cond.notify_all()
        while not ticket.done:
            if self._committing:
                self._cond.wait()
                continue
            self._committing = True
            try:
                self._linger()
                tickets, self._pending = self._pending, []
                self._cond.release()
                try:
                    self._commit(tickets)
                finally:
                    self._cond.acquire()
            finally:
                self._committing = False
                self._cond.notify_all()

    def _linger(self) -> None:
        """(Lock held.) Wait up to ``linger_s`` while other requests are still on their way."""
        deadline = time.monotonic() + self.linger_s
        while self._n_coming > 0:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._cond.wait(left)

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
