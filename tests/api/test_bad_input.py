"""Bad input is a 400 naming the parameter (or a 404, 405, 413), in the API's error shape:
never a 500, never an HTML page."""

import json

import pytest

from tests.api.conftest import ACCESS, BATCH, ApiClient, error_of, make_token


@pytest.fixture
def api(pra):
    return ApiClient(make_token(pra).secret)


def assert_error(response, status: int, target: str | None, contains: str = ""):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    error = error_of(response)
    assert error.get("target") == target, error
    assert contains in error["message"], error
    assert error["innerError"]["request-id"] == response["X-Request-ID"]
    return error


@pytest.mark.parametrize(
    ("params", "target", "message"),
    [
        ({"role": "Reader"}, "principal", "principal is required."),
        ({"principal": "pat"}, "role", "role is required."),
        ({"principal": "", "role": "Reader"}, "principal", "principal is empty."),
        ({"principal": "   ", "role": "Reader"}, "principal", "principal is empty."),
        ({"principal": "pat", "role": ""}, "role", "role is empty."),
        ({"principal": "pat", "role": "Reader", "scope": ""}, "scope", "scope is empty."),
        (
            {"principal": "pat", "role": "Reader", "scope": "subscriptions/x"},
            "scope",
            "scope must be a path starting with / or an id.",
        ),
        ({"principal": "pat\x00", "role": "Reader"}, "principal", "Null characters"),
        ({"principal": "x" * 1001, "role": "Reader"}, "principal", "longer than 1000"),
        ({"principal": "group:", "role": "Reader"}, "principal", "names no group"),
    ],
)
def test_a_missing_or_malformed_parameter_is_400_naming_it(api, tree, params, target, message):
    error = assert_error(api.get(ACCESS, params), 400, target, message)
    assert error["code"] == "invalidRequest"


def test_a_repeated_parameter_is_400(api):
    response = api.client.get(
        f"{ACCESS}?principal=pat&principal=sam&role=Reader", headers=api.headers
    )
    response.json_body = json.loads(response.content)
    assert_error(response, 400, "principal", "given more than once")


@pytest.mark.parametrize(
    "value", ["0", "-1", "99999999999999999999999999", "1e5", "１２", "../../etc", "%00"]
)
def test_garbage_ids_are_404s_or_400s_never_500s(api, tree, value):
    for params in (
        {"principal": value, "role": "Reader"},
        {"principal": "pat", "role": value},
        {"principal": "pat", "role": "Reader", "scope": value},
    ):
        response = api.get(ACCESS, params)
        assert response.status_code in (400, 404), (params, response.content)
        assert "error" in response.json_body


@pytest.mark.parametrize(
    ("body", "target", "message"),
    [
        ({}, "requests", "requests is required"),
        ({"requests": None}, "requests", "must be a list"),
        ({"requests": {"principal": "pat"}}, "requests", "must be a list"),
        ({"requests": "pat"}, "requests", "must be a list"),
        ([], "requests", "The body must be a JSON object"),
        ('"just a string"', "requests", "The body must be a JSON object"),
        ("12", "requests", "The body must be a JSON object"),
    ],
)
def test_a_batch_of_the_wrong_shape_is_400(api, body, target, message):
    assert_error(api.post(BATCH, body), 400, target, message)


def test_a_batch_past_the_maximum_is_400(api, settings):
    settings.API_BATCH_MAX = 100
    response = api.batch(*[{"principal": "pat", "role": "Reader"}] * 101)
    assert_error(response, 400, "requests", "at most 100 questions, not 101")


@pytest.mark.parametrize(
    ("item", "target", "message"),
    [
        ({"principal": 12, "role": "Reader"}, "principal", "principal must be a string."),
        ({"principal": True, "role": "Reader"}, "principal", "principal must be a string."),
        ({"principal": None, "role": "Reader"}, "principal", "not null"),
        ({"principal": ["pat"], "role": "Reader"}, "principal", "principal must be a string."),
        ({"principal": "pat", "role": {"name": "Reader"}}, "role", "role must be a string."),
        ({"principal": "pat", "role": "Reader", "scope": 3.5}, "scope", "scope must be a string."),
        ({"principal": "pat", "role": "Reader", "id": "x" * 101}, "id", "longer than 100"),
    ],
)
def test_a_batch_item_of_the_wrong_type_is_400_in_its_place(api, item, target, message):
    response = api.batch({"principal": "pat", "role": "Reader"}, item)
    assert response.status_code == 200
    first, second = response.json_body["responses"]
    assert first["status"] == 200
    assert second["status"] == 400
    assert second["body"]["error"]["target"] == target
    assert message in second["body"]["error"]["message"]


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b'{"requests": [NaN]}',
        b"\xff\xfe\x00garbage",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"requests": [{"principal": "pat", "role": "Reader"}',
    ],
)
def test_a_body_that_is_not_json_is_400(api, raw):
    assert_error(api.post(BATCH, raw), 400, None, "The body is not valid JSON")


def test_a_lone_surrogate_is_400(api):
    raw = b'{"requests": [{"principal": "\\ud800", "role": "Reader"}]}'
    (item,) = api.post(BATCH, raw).json_body["responses"]
    assert item["status"] == 400 and item["body"]["error"]["target"] == "principal"


def test_a_body_of_another_type_is_415(api):
    response = api.post(BATCH, "principal=pat", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert error_of(response)["code"] == "notSupported"


def test_a_body_too_large_is_413(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = {"requests": [{"principal": "pat", "role": "Reader"}] * 50}
    response = api.post(BATCH, body)
    assert response.status_code == 413
    assert error_of(response)["message"] == "The body is larger than 1000 bytes."


def test_an_empty_body_is_400(api):
    assert_error(api.post(BATCH, b""), 400, "requests", "requests is required")


def test_a_wrong_method_is_405_in_the_api_shape(api):
    response = api.post(ACCESS, {"principal": "pat"})
    assert response.status_code == 405
    assert error_of(response)["code"] == "notAllowed"
    response = api.get(BATCH)
    assert response.status_code == 405


def test_an_accept_header_for_html_still_gets_json(api):
    response = api.access("pat", "Reader", headers={"Accept": "text/html"})
    assert response.status_code == 200 and response["Content-Type"] == "application/json"


def test_an_unknown_api_path_is_a_json_404(api):
    for path in ("/api/v1/nothing", "/api/v2/access", "/api/v1/access/"):
        response = api.get(path)
        assert response.status_code == 404, path
        assert error_of(response)["code"] == "itemNotFound"
    assert "no trailing slash" in error_of(api.get("/api/v1/access/"))["message"]


def test_an_unknown_api_path_without_a_token_is_a_json_404_not_a_sign_in_page(db):
    response = ApiClient(None).get("/api/v1/nothing")
    assert response.status_code == 404 and "error" in response.json_body


def test_a_token_with_odd_bytes_is_401_not_500(db):
    for header in ("Bearer \u00e9\u00e9", "Bearer " + "x" * 10_000, "Bearer", "bearer  "):
        response = ApiClient(None).get(
            ACCESS, {"principal": "x", "role": "y"}, headers={"Authorization": header}
        )
        assert response.status_code == 401, header
