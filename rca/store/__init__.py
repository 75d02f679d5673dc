"""Storage: one small interface (`Store`) and the embedded default (DuckDB)."""

from rca.store.base import Store
from rca.schema import LOG_COLUMNS, METRIC_COLUMNS, SPAN_COLUMNS


def open_store(settings, read_only: bool = False) -> Store:
    """Open the configured store (the embedded DuckDB file by default)."""
    from rca.store.duck import DuckStore

    return DuckStore(settings.db_path, read_only=read_only)


__all__ = ["Store", "open_store", "SPAN_COLUMNS", "LOG_COLUMNS", "METRIC_COLUMNS"]
