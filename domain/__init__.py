"""What hyperwatch means by an alert and a notification, apart from how it is scheduled.

``domain.alerts``: rules, the market view and threshold index, and the checks every write
path (CLI, API) makes. ``domain.notify``: channels, signing, the SSRF guard and the delivery
retry policy. ``domain.archive``: importing Hyperliquid's historical archive files. Celery
tasks (``tasks``) and processes (``workers``) build on these; nothing here imports from them.
"""
