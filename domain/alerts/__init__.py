"""Alerts: what an alert is (``definition``: kinds, the validated ``AlertRule``,
``parse_rule``), how one is judged against the market (``judgement``: ``evaluate``,
``should_rearm``; pure) and how a fired one is worded (``wording``). Rules read a
``view.MarketView``: the in-memory ``market_state.MarketState`` or the view the alert workers
share through Redis (``shared_state``). Also the threshold index (``index``) and each
worker's book of it (``book``), firing and quotas (``firing``, ``tiers``), the coins an alert
may name (``coins``) and the checks every write path makes (``manage``). Importable without
a broker; the Celery task that drives evaluation is ``tasks.alerts.evaluate``."""
