"""The OpenAPI document: public, JSON, valid OpenAPI 3, documenting both endpoints and the
bearer scheme."""

import json

from django.core.management import call_command
from django.test import Client
from drf_spectacular.validation import validate_schema

OPENAPI = "/api/v1/openapi.json"


def test_the_document_is_public_json_with_both_paths(db):
    response = Client().get(OPENAPI)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi+json")
    document = json.loads(response.content)
    assert document["info"]["title"] == "PIM Portal API" and document["info"]["version"] == "1"
    assert set(document["paths"]) == {"/api/v1/access", "/api/v1/access/batch"}
    assert set(document["paths"]["/api/v1/access"]) == {"get"}
    assert set(document["paths"]["/api/v1/access/batch"]) == {"post"}


def test_the_document_is_valid_openapi(db):
    validate_schema(json.loads(Client().get(OPENAPI).content))


def test_the_document_names_the_bearer_scheme_on_each_operation(db):
    document = json.loads(Client().get(OPENAPI).content)
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for operations in document["paths"].values():
        for operation in operations.values():
            assert operation["security"] == [{"bearerAuth": []}]


def test_the_access_operation_documents_its_parameters_and_errors(db):
    document = json.loads(Client().get(OPENAPI).content)
    get = document["paths"]["/api/v1/access"]["get"]
    assert {(p["name"], p.get("required", False)) for p in get["parameters"]} == {
        ("principal", True),
        ("role", True),
        ("scope", False),
    }
    assert set(get["responses"]) == {"200", "400", "401", "403", "404"}
    answer = document["components"]["schemas"]["AccessAnswer"]["properties"]
    assert {"principal", "role", "scope", "inForce", "eligible", "assignments", "until"} <= set(
        answer
    )


def test_the_schema_command_finds_no_warnings(tmp_path):
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "openapi.yaml")
    )
    assert "/api/v1/access/batch" in (tmp_path / "openapi.yaml").read_text()
