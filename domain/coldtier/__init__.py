"""The cold tier: day partitions exported to Parquet before retention drops them, and
history queried over those files with DuckDB (docs/DATABASE.md#cold-tier)."""
