"""What a running interface holds: settings, the open store, and the heavy parts
(template miner, knowledge base, anomaly models), each built lazily once."""

from __future__ import annotations

import threading
from functools import cached_property

from rca.config import Settings
from rca.store import Store, open_store


class Runtime:
    def __init__(self, settings: Settings, store: Store | None = None, read_only: bool = False):
        self.settings = settings
        self._store = store
        self._read_only = read_only
        self._lock = threading.Lock()

    @property
    def store(self) -> Store:
        if self._store is None:
            with self._lock:
                if self._store is None:
                    self._store = open_store(self.settings, read_only=self._read_only)
        return self._store

    @cached_property
    def templates(self):
        from rca.templates.miner import LogTemplates

        return LogTemplates.load(self.store, self.settings)

    @cached_property
    def kb(self):
        from rca.kb.base import KnowledgeBase

        return KnowledgeBase(self.store, self.settings)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
