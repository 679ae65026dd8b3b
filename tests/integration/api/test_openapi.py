"""The OpenAPI document, property-tested against the running ``hyperwatch api``
(schemathesis): for generated valid and invalid requests to every operation, no answer is
a 5xx, and every answer's status, content type and body are ones the document declares.

Bounded to fit the test budget: :data:`EXAMPLES` per operation and generation mode, the same
examples every run. ``HW_API_FUZZ_EXAMPLES=500`` digs deeper, with fresh examples each run. The
caller is an enterprise subscriber (its rate limit is never reached here) with objects of
each kind, and the operators' routes are called with the admin key.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.api import ADMIN_KEY, ApiClient, ApiProcess

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("HW_API_FUZZ_EXAMPLES", "10"))
DERANDOMIZE = "HW_API_FUZZ_EXAMPLES" not in os.environ
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _exercise(operation: Any, headers: dict[str, str], mode: GenerationMode) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=DERANDOMIZE,
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        response = case.call(headers=headers, timeout=15)
        case.validate_response(response, checks=CHECKS)

    try:
        run()
    except Unsatisfiable:
        # Only in negative mode, for an operation with nothing that can be made invalid:
        # no input (GET /v1/me), or only a path string any text fits (DELETE /v1/wallets/…).
        assert mode is GenerationMode.NEGATIVE


def test_no_generated_request_gets_a_5xx_or_an_answer_outside_the_document(
    api: ApiClient, api_process: ApiProcess
) -> None:
    # Given an enterprise subscriber with a channel, an alert and a wallet
    eve = api.subscriber("eve@example.com", tier="enterprise")
    channel = api.as_(eve, "POST", "/v1/channels", json={"kind": "redis"}).json()["id"]
    api.as_(eve, "POST", "/v1/alerts", json={"kind": "price_above", "coin": "BTC",
                                             "threshold": "1", "channel_id": channel})  # fmt: skip
    api.as_(eve, "POST", "/v1/wallets", json={"address": "0x" + "ab" * 20})
    schema = schemathesis.openapi.from_url(f"{api_process.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    # Key revocation last: a revoked key still gets documented answers, but nothing else.
    operations.sort(key=lambda op: (op.path.startswith("/v1/admin"), op.method == "delete"))
    assert len(operations) >= 15

    # When every operation gets generated valid and invalid requests
    for operation in operations:
        key = ADMIN_KEY if operation.path.startswith("/v1/admin") else eve.key
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            # Then each answer is documented and none is a server error
            _exercise(operation, {"Authorization": f"Bearer {key}"}, mode)
