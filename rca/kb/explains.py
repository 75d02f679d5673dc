"""Stored explain results (what feedback refers to): table `explains`."""

from __future__ import annotations

import json
import time
from typing import Any

from rca.errors import InvalidInput, NotFound

EXPLAINS_DDL = (
    "CREATE TABLE IF NOT EXISTS explains (id VARCHAR PRIMARY KEY, created_ns BIGINT, query JSON, result JSON)"
)


def create_explains_table(store) -> None:
    store.execute(EXPLAINS_DDL)


def save_explain(store, result: dict[str, Any], query: dict[str, Any] | None = None) -> str:
    """Store ``result`` ({"id", "hypotheses": [...], "fingerprint": {...}}); returns its id. Re-saving replaces."""
    if not isinstance(result, dict) or not isinstance(result.get("id"), str) or not result["id"]:
        raise InvalidInput("an explain result needs a string id")
    if not isinstance(result.get("hypotheses", []), list):
        raise InvalidInput("explain result hypotheses must be a list")
    create_explains_table(store)
    store.execute(
        "INSERT INTO explains VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET query = excluded.query, "
        "result = excluded.result",
        [result["id"], time.time_ns(), json.dumps(query or {}, default=str), json.dumps(result, default=str)],
    )
    return result["id"]


def load_explain(store, explain_id: str) -> dict[str, Any]:
    """The stored result dict plus ``created_ns`` and ``query``; NotFound for an unknown id."""
    create_explains_table(store)
    df = store.query("SELECT created_ns, query, result FROM explains WHERE id = ?", [explain_id])
    if df.empty:
        raise NotFound(f"explain {explain_id} not found", {"explain_id": explain_id})
    row = df.iloc[0]
    result = json.loads(row["result"])
    result.setdefault("hypotheses", [])
    result.setdefault("fingerprint", {})
    result["created_ns"] = int(row["created_ns"])
    result["query"] = json.loads(row["query"]) if row["query"] else {}
    return result
