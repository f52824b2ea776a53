"""``/openapi.json`` is valid OpenAPI 3, documents every /v1 route, and says which need a token."""

from __future__ import annotations

import re

import pytest
from openapi_spec_validator import validate

_CONVERTER = re.compile(r"<(?:[a-z_]+(?:\([^)]*\))?:)?([a-z_]+)>")
_DOCUMENTED_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


@pytest.fixture
def document(client) -> dict:
    resp = client.get("/openapi.json")
    assert resp.status_code == 200
    return resp.get_json()


def _v1_routes(app):
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/v1/"):
            path = _CONVERTER.sub(r"{\1}", rule.rule)
            for method in sorted(rule.methods & _DOCUMENTED_METHODS):
                yield rule, path, method.lower()


def test_the_document_is_valid_openapi_3(document):
    assert document["openapi"].startswith("3.")
    validate(document)


def test_every_v1_route_and_method_is_documented(app, document):
    missing = [
        f"{method.upper()} {path}"
        for _, path, method in _v1_routes(app)
        if method not in document["paths"].get(path, {})
    ]
    assert list(_v1_routes(app)), "no /v1 routes registered"
    assert missing == []


def test_the_bearer_scheme_is_documented_on_every_protected_operation(app, document):
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert scheme == {**scheme, "type": "http", "scheme": "bearer"}
    undocumented = []
    for rule, path, method in _v1_routes(app):
        view = app.view_functions[rule.endpoint]
        view_class = getattr(view, "view_class", None)
        handler = getattr(view_class, method, None) if view_class else view
        operation = document["paths"][path][method]
        protected = getattr(handler, "_idp_requires_auth", False)
        if protected != ({"bearerAuth": []} in operation.get("security", [])):
            undocumented.append(f"{method.upper()} {path}")
        if protected:
            assert "401" in operation["responses"]
    assert undocumented == []


def test_public_account_operations_need_no_token(document):
    for path in ("/v1/signup", "/v1/password-reset"):
        operation = document["paths"][path]["post"]
        assert "security" not in operation
        assert {"202", "422", "429"} <= set(operation["responses"])


def test_input_schemas_say_which_fields_are_required(document):
    schema = document["components"]["schemas"]["SignupIn"]
    assert set(schema["required"]) == {"email", "password", "business_name"}


def test_error_responses_are_documented_as_problem_details(document):
    content = document["paths"]["/v1/signup"]["post"]["responses"]["422"]["content"]
    assert list(content) == ["application/problem+json"]
    assert {"$ref": "#/components/schemas/Problem"} in content["application/problem+json"][
        "schema"
    ]["allOf"]
    problem = document["components"]["schemas"]["Problem"]
    assert {"code", "status", "title"} <= set(problem["required"])
    assert problem["properties"]["code"]["type"] == "string"


def _listed_codes(response: dict) -> set[str]:
    schema = response.get("content", {}).get("application/problem+json", {}).get("schema", {})
    return {
        code
        for member in schema.get("allOf", ())
        for code in member.get("properties", {}).get("code", {}).get("enum", ())
    }


def test_every_error_answer_lists_its_codes_and_the_problem_schema_all_of_them(document):
    every_code = set(document["components"]["schemas"]["Problem"]["properties"]["code"]["enum"])
    unlisted, unknown = [], []
    for path, item in document["paths"].items():
        operations = {m: op for m, op in item.items() if m.upper() in _DOCUMENTED_METHODS}
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status[0] in "45":
                    codes = _listed_codes(response)
                    unlisted += [] if codes else [f"{method.upper()} {path} {status}"]
                    unknown += sorted(codes - every_code)
    assert unlisted == [] and unknown == []
    # the codes a client meets on any path: an unknown route or method, a failure
    assert {"not_found", "method_not_allowed", "internal_error"} <= every_code
    sign_up = document["paths"]["/v1/signup"]["post"]["responses"]
    assert _listed_codes(sign_up["422"]) == {"invalid_input"}
    assert _listed_codes(sign_up["429"]) == {"rate_limited"}
