"""schemathesis against the gateway's own OpenAPI document: no request it can
make up gets a 5xx, and every answer is one the document describes."""

from __future__ import annotations

import os

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from gateway.config import ServerConfig

EXAMPLES = int(os.environ.get("STT_GATEWAY_SCHEMA_EXAMPLES", "25"))  # per operation; the suite stays well under a minute


def test_every_operation_answers_within_its_documented_responses(registry, engine):
    from gateway.http.app import create_app

    # "testserver": the Host of the in-process client (a loopback server answers only to its own names)
    app = create_app(ServerConfig(model="tiny.en", port=0, allowed_hosts=("testserver",)), registry=registry, engine=engine)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 7  # transcriptions, translations, models: v0 and v1; dashboard models
    for operation in operations:

        # not_a_server_error, status_code_conformance, content_type_conformance,
        # response_schema_conformance and the rest of schemathesis' default
        # checks; not "schema-valid data is accepted": a schema cannot say
        # "a file that decodes as audio", and the 400 for one that does not
        # is documented.
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy())
        def check(case):
            case.call_and_validate(excluded_checks=[positive_data_acceptance])

        check()
