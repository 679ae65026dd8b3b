"""The shared runtime floor: what every process needs and no process owns.

Metrics (``metrics``, ``metrics_export``), Redis clients and the one key registry
(``redis_clients``, ``keys``), the broker transport seam (``transport``), heartbeat,
lifecycle, observability, health checks, the one clock type (``clock``) and the one retry
schedule (``retry``), and the Hyperliquid protocol helpers (``hyperliquid``). Layers (a
test holds them): ``workers`` (processes) → ``tasks`` (Celery tasks) → ``domain`` (alerts,
notifications) → ``runtime`` → ``models`` → ``settings``/``events``. Nothing here imports
from a layer above it.
"""
