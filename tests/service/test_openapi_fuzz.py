"""Schema-driven fuzzing (schemathesis) of a real service from its own
OpenAPI description, with the token, positive and negative examples (at most
25 of each per operation): no request makes it answer 5xx, every error has
the one error shape, and every answer matches what the description promises
(status code, content type, body schema)."""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES_PER_OPERATION = 25


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_request_from_the_description_fails_the_service(queue_only_service, mode):
    schema = schemathesis.openapi.from_url(queue_only_service.url + "/openapi.json")
    headers = {"Authorization": f"Bearer {queue_only_service.token}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    failures = []
    for operation in operations:
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def exercise(case):
            response = case.call_and_validate(headers=headers, checks=CHECKS)
            if response.status_code >= 400:
                body = response.json()
                assert set(body) == {"error"} and body["error"]["code"] and body["error"]["message"], body

        try:
            exercise()
        except Unsatisfiable:
            # No invalid request exists for an operation without parameters or body.
            assert mode == GenerationMode.NEGATIVE and not operation.path_parameters and not operation.body
        except Exception as failure:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {failure}")
    assert not failures, "\n\n".join(failures)
