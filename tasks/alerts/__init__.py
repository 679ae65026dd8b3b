"""Alert evaluation: pure rules (``rules``), the market view they read (``market_state``) and
the threshold index (``index``). Importable without a broker; the Celery task that drives
them lives beside them and is the only part that does I/O."""
