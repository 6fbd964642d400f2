"""Storage: DuckDB for events (events.py), SQLite for everything small and mutable (meta.py)."""
