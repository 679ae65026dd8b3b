"""``hyperwatch api``: the subscriber self-service HTTP API (FastAPI on uvicorn).

A subscriber manages their own alerts, channels and tracked wallets, reads their
notifications, tier, quotas and usage, with an API key (``Authorization: Bearer hw_…``);
operators manage users and keys under ``API_ADMIN_KEY``. Every check is the CLI's
(``domain.alerts.manage``), so a refusal reads the same. Modules: ``app`` (the application
and its error handlers), ``auth`` (keys, rate limits), ``errors``, ``schemas``,
``pagination``, ``observe`` (metrics, body limit), ``routes/`` (one module per resource),
``command`` (the click command that runs uvicorn). docs/API.md is the user's page.
"""
