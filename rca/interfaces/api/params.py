"""What several routers need: query-string times, simple SQL filters, and JSON-safe rows."""

from __future__ import annotations

import json
from typing import Any

from rca.errors import InvalidInput


def query_time(value: Any, what: str) -> int | None:
    """A time parameter (ISO 8601, Unix seconds, or relative) -> Unix ns; 400 naming the parameter if bad."""
    if value is None or value == "":
        return None
    from rca.timeutil import parse_time

    try:
        return parse_time(value)
    except InvalidInput as exc:
        raise InvalidInput(f"{what}: {exc.message}", {"parameter": what}) from None


def filters(equals: dict[str, Any], time_col: str, start_ns: int | None, end_ns: int | None
            ) -> tuple[str, list]:
    """A WHERE condition and its parameters: column = value for each given value, and a time range."""
    where, params = [], []
    for col, val in equals.items():
        if val is not None and val != "":
            if isinstance(val, (list, tuple)):
                where.append(f"{col} IN ({', '.join('?' for _ in val)})")
                params += list(val)
            else:
                where.append(f"{col} = ?")
                params.append(val)
    if start_ns is not None:
        where.append(f"{time_col} >= ?")
        params.append(start_ns)
    if end_ns is not None:
        where.append(f"{time_col} < ?")
        params.append(end_ns)
    return " AND ".join(where) or "TRUE", params


def records(df, json_columns: tuple[str, ...] = ()) -> list[dict]:
    """DataFrame rows as plain JSON-safe dicts: NaN -> None, numpy scalars -> Python, JSON text parsed."""
    import pandas as pd

    out = []
    for row in df.to_dict(orient="records"):
        clean = {k: (None if v is None or (isinstance(v, float) and pd.isna(v)) else
                     v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for k in json_columns:
            if isinstance(clean.get(k), str):
                clean[k] = json.loads(clean[k])
        out.append(clean)
    return out
