"""Den's OpenAPI schema, and what a fuzzer makes of it: generated requests (valid and
not) against a real Den on SQLite and on PostgreSQL never get a 5xx, and every answer
matches the schema (documented status, documented body)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import checks

from tests.den_servers import DenServer, start_den

EXAMPLES = 15  # per route: enough to find a crash, few enough to keep the suite fast
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fuzzed_den(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DenServer]:
    """A Den of the fuzzer's own (it adds users and groups with the names it makes up)."""
    db_url = None
    if request.param == "postgresql":
        from tests.postgres_server import fresh_database

        databases = fresh_database(request.getfixturevalue("postgres_url"))
        db_url = databases.__enter__()
    den = start_den(tmp_path_factory.mktemp("fuzz") / "data", db_url)
    yield den
    den.stop()
    if db_url is not None:
        databases.__exit__(None, None, None)


@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode))
def test_no_request_makes_den_fail(
    fuzzed_den: DenServer, mode: schemathesis.GenerationMode
) -> None:
    """Every operation, with generated valid (positive) or invalid (negative) input."""
    # Driven by hand: schemathesis's pytest fixtures do not run under pytest 9.
    schema = schemathesis.openapi.from_url(fuzzed_den.url + "/v1/openapi.json")
    headers = {"Authorization": f"Bearer {fuzzed_den.admin_token}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 22
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def call(case: schemathesis.Case) -> None:
            response = case.call(headers=headers)
            case.validate_response(response, checks=CHECKS)

        try:
            call()
        except Unsatisfiable:
            # Nothing to make invalid (no parameters, no body): nothing to test in this mode.
            assert mode == schemathesis.GenerationMode.NEGATIVE, operation.label


def test_every_route_documents_its_answers(den_sqlite: DenServer) -> None:
    spec = den_sqlite.request("GET", "/v1/openapi.json").body
    operations = [(m, p, op) for p, ops in spec["paths"].items() for m, op in ops.items()]
    assert len(operations) >= 22
    for method, path, op in operations:
        ok = op["responses"]["200"]["content"]["application/json"]["schema"]
        assert "$ref" in ok, (method, path)
        if path != "/v1/health":
            assert {"400", "401", "403", "404", "409", "413", "422"} <= set(op["responses"])
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
