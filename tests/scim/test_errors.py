"""Bad input answers a SCIM error with the right status and scimType, never a 500, and writes
nothing."""

import pytest
from django.contrib.auth import get_user_model

from audit.models import AuditEvent
from tests.factories import make_user
from tests.scim.conftest import ScimClient, patch_body, user_payload

User = get_user_model()
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


def _error(response, status: int, scim_type: str | None = None):
    assert response.status_code == status, response.json_body
    assert response["Content-Type"] == "application/scim+json"
    body = response.json_body
    assert body["schemas"] == [ERROR_SCHEMA] and body["status"] == str(status)
    if scim_type is not None:
        assert body.get("scimType") == scim_type
    return body


def test_malformed_json_is_invalid_syntax(scim):
    _error(scim.post("Users", '{"userName": '), 400, "invalidSyntax")
    assert not User.objects.filter(username__startswith="alice").exists()


def test_a_body_that_is_not_an_object_is_refused(scim):
    _error(scim.post("Users", "[1, 2]"), 400)


def test_unknown_attributes_are_ignored(scim):
    response = scim.post("Users", user_payload(nickName="Al", favouriteColour="green"))
    assert response.status_code == 201
    assert "nickName" not in response.json_body


def test_a_wrong_type_is_refused(scim):
    body = _error(scim.post("Users", user_payload(active={"yes": 1})), 400)
    assert "active" in body["detail"]
    assert not User.objects.filter(username="alice@example.com").exists()


def test_a_user_without_user_name_is_refused(scim):
    payload = user_payload()
    del payload["userName"]
    _error(scim.post("Users", payload), 400)


def test_a_user_name_the_portal_cannot_store_is_invalid_value(scim):
    body = _error(scim.post("Users", user_payload("o'brien@example.com")), 400, "invalidValue")
    assert "userName" in body["detail"]


def test_an_email_that_is_not_one_is_invalid_value(scim):
    payload = user_payload(emails=[{"value": "not an address", "type": "work"}])
    _error(scim.post("Users", payload), 400, "invalidValue")


@pytest.mark.parametrize(
    "query",
    ["userName eq", 'userName zz "x"', '(userName eq "x"', 'nosuchattribute eq "x"'],
)
def test_a_filter_the_parser_cannot_read_is_invalid_filter(scim, query):
    _error(scim.get("Users", QUERY_STRING=f"filter={query}"), 400, "invalidFilter")


def test_a_duplicate_user_name_is_a_uniqueness_conflict(scim):
    assert scim.post("Users", user_payload()).status_code == 201
    body = _error(scim.post("Users", user_payload("ALICE@example.com")), 409, "uniqueness")
    assert "already taken" in body["detail"]
    assert User.objects.filter(username__iexact="alice@example.com").count() == 1


def test_renaming_onto_a_taken_user_name_is_a_conflict(scim):
    make_user("taken")
    user_id = scim.post("Users", user_payload()).json_body["id"]
    op = {"op": "replace", "path": "userName", "value": "taken"}
    _error(scim.patch(f"Users/{user_id}", patch_body(op)), 409, "uniqueness")
    assert User.objects.get(pk=user_id).username == "alice@example.com"


def test_an_unknown_manager_is_invalid_value(scim):
    enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    payload = user_payload()
    payload["schemas"].append(enterprise)
    payload[enterprise] = {"manager": {"value": "987654"}}
    _error(scim.post("Users", payload), 400, "invalidValue")
    assert not User.objects.filter(username="alice@example.com").exists()


def test_an_oversize_body_is_413(scim, settings):
    settings.SCIM_MAX_BODY_BYTES = 1000
    payload = user_payload(displayName="x" * 2000)
    _error(scim.post("Users", payload), 413)
    assert not User.objects.filter(username="alice@example.com").exists()


def test_a_wrong_content_type_is_415(scim):
    response = scim.post(
        "Users", "userName=alice", content_type="application/x-www-form-urlencoded"
    )
    _error(response, 415)


def test_application_json_is_accepted_too(scim):
    response = scim.post("Users", user_payload(), content_type="application/json")
    assert response.status_code == 201


def test_an_unknown_endpoint_is_404(scim):
    _error(scim.get("Widgets"), 404)


def test_an_unsupported_bulk_request_is_501(scim):
    _error(scim.post("Bulk", {"schemas": [], "Operations": []}), 501)


def test_a_refused_request_half_way_writes_nothing(scim):
    """The group is created and then a member is refused: one transaction, nothing kept."""
    before = AuditEvent.objects.count()
    response = scim.post(
        "Groups",
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Half",
            "members": [{"value": "1"}, {"value": "abc"}],
        },
    )
    _error(response, 400, "invalidValue")
    from django.contrib.auth.models import Group

    assert not Group.objects.filter(name="Half").exists()
    # Only the token's first use this minute was recorded.
    assert set(AuditEvent.objects.order_by("pk")[before:].values_list("action", flat=True)) <= {
        "pim.scim.token_used"
    }


def test_without_a_token_the_answer_is_401_with_a_challenge(db):
    response = ScimClient(None).get("Users")
    _error(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_wrong_token_is_401(db):
    body = _error(ScimClient("pim_scim_not-a-token").get("Users"), 401)
    assert body["detail"] == "The bearer token is not valid."


def test_service_provider_config_needs_no_token(db):
    assert ScimClient(None).get("ServiceProviderConfig").status_code == 200
