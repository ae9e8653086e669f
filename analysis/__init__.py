"""DuckDB-backed analysis functions behind the notebooks."""
