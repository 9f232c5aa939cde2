"""Property-based tests of the REST and OpenAI-compatible API (issue 11) with schemathesis: for
every operation of the OpenAPI schema, requests generated from it (sent with an admin's key) never
produce a server error (5xx): every bad input gets a 4xx with a message."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from app.accounts import Accounts
from app.api import create_app


@pytest.fixture
def app_and_key(service, pdf_factory):
    service.create_collection("alpha")
    service.ingest("alpha", [pdf_factory("keeper.pdf", ["The lighthouse keeper lit the lamp every evening."])])
    accounts = Accounts(service.sessions)
    accounts.create_user("ann", "correct horse", role="admin")
    return create_app(service, max_upload_mb=1), accounts.new_api_key("ann")


def test_no_generated_request_makes_a_server_error(app_and_key):
    app, key = app_and_key
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14  # every route is in the schema, /v1 included
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=8, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def check(case) -> None:
            case.call_and_validate(headers={"Authorization": f"Bearer {key}"}, checks=[not_a_server_error])

        check()
