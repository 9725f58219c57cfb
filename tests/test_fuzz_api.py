"""The JSON API against its OpenAPI document (ASVS 4.1.1, 13.4.5, 16.5.1): Schemathesis fuzzes
every documented operation in-process (WSGI, no server, no network) with valid and invalid
inputs; no input makes a 5xx, and every answer matches the document (status, content type,
body schema). The document must describe every /api/ route there is.
"""

from __future__ import annotations

import contextvars

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from dashboard.openapi import document

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


OPERATIONS = [(path, method) for path, item in document()["paths"].items() for method in item]


@pytest.fixture
def api_schema(app, login, make_bot, simulator):
    make_bot(id="sharp-bot", name="sharp-bot", account_identifier="client_sharp")
    make_bot(id="other-bot", name="other-bot", account_identifier="client_other",
             config='{"deep": {"list": [1, 2, {"x": null}]}}')
    simulator.seed_bot("sharp-bot")
    login.as_admin()

    def isolated(environ, start_response):
        # Each call in an empty context, as in production (see conftest.IsolatedClient).
        return contextvars.Context().run(app, environ, start_response)

    served = login.client.get("/api/openapi.json").get_json()
    assert served == document()  # fuzz what is served
    schema = schemathesis.openapi.from_dict(served)
    schema.app = isolated
    return schema, login.client.get_cookie("session").value


# (Schemathesis' own pytest plugin, schema.parametrize(), does not run under pytest 9 yet:
# it sets Node._nodeid. The strategies are driven by Hypothesis directly instead.)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                         ids=["valid", "invalid"])
@pytest.mark.parametrize(("path", "method"), OPERATIONS)
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
@given(data=st.data())
def test_the_api_matches_its_document_and_never_fails(api_schema, path, method, mode, data):
    schema, cookie = api_schema
    operation = schema[path][method]
    case = data.draw(operation.as_strategy(generation_mode=mode))
    response = case.call(cookies={"session": cookie})
    checks = CHECKS if mode == GenerationMode.POSITIVE else [not_a_server_error]
    case.validate_response(response, checks=checks)


def test_every_api_route_is_documented(session_app):
    documented = {path.replace("{", "<").replace("}", ">") for path in document()["paths"]}
    routes = {rule.rule for rule in session_app.url_map.iter_rules()
              if rule.rule.startswith("/api/")}
    assert routes == documented


def test_the_document_is_for_logged_in_users_only(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 401
    assert response.get_json() == {"error": "authentication required"}
