"""Alerts: pure rules (``rules``), the market view they read (``market_state``), the
threshold index (``index``), firing and quotas, and the checks every write path makes
(``manage``). Importable without a broker; the Celery task that drives evaluation is
``tasks.alerts.evaluate``."""
