"""One Settings object: environment (RCA_*), then defaults. Passed in, never read at import."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path


def _default_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "rca"


@dataclass(frozen=True)
class Settings:
    """Where rca keeps its data and how its server listens.

    Build with ``Settings.from_env()``; override fields with ``settings.with_(...)``.
    """

    home: Path = field(default_factory=_default_home)
    host: str = "127.0.0.1"
    port: int = 4318
    max_body_bytes: int = 20 * 1024 * 1024
    # drain3
    drain_sim_th: float = 0.4
    drain_depth: int = 4
    drain_max_children: int = 100
    # anomaly
    random_state: int = 0
    min_samples_per_operation: int = 50
    # knowledge base
    kb_top_k: int = 3

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        kwargs: dict[str, object] = {}
        if env.get("RCA_HOME"):
            kwargs["home"] = Path(env["RCA_HOME"]).expanduser()
        if env.get("RCA_HOST"):
            kwargs["host"] = env["RCA_HOST"]
        if env.get("RCA_PORT"):
            kwargs["port"] = int(env["RCA_PORT"])
        if env.get("RCA_MAX_BODY_BYTES"):
            kwargs["max_body_bytes"] = int(env["RCA_MAX_BODY_BYTES"])
        return cls(**kwargs)

    def with_(self, **changes: object) -> "Settings":
        return replace(self, **changes)

    @property
    def db_path(self) -> Path:
        return self.home / "rca.duckdb"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def kb_index_path(self) -> Path:
        return self.home / "kb.faiss"
