"""Alert and notification fixtures (defined in ``tests/integration/alerts/fixtures.py``)."""

from tests.integration.alerts.fixtures import (  # noqa: F401 - registered as fixtures
    alert_settings,
    app,
    receiver,
    redis_client,
    worker,
)
