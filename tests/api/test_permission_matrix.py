"""Who may ask what: each persona's token (and none) × asking about themselves or another user,
for a directory role and a resource role → the expected status, in one table.

A token's owner may always ask about themselves; about anyone else only where they may view
the role (directory readers for directory roles; a viewer at the scope or above for resource
roles). A refusal comes before the principal is looked up: an unknown user is a 403 to those
who may not ask, so a token cannot tell which usernames exist.
"""

import pytest

from audit.models import AuditEvent
from tests.api.conftest import ApiClient, error_of, make_token
from tests.factories import make_user

NO_TOKEN = "no_token"
PROD = "/managementGroups/contoso/subscriptions/prod/"
SANDBOX = "/managementGroups/contoso/subscriptions/sandbox/"

# (column, principal — "self" is the persona's own username —, role, scope)
QUESTIONS = [
    ("self_directory", "self", "Global Administrator", "/"),
    ("self_resource", "self", "Contributor", PROD),
    ("other_directory", "stan", "Global Administrator", "/"),
    ("other_resource", "stan", "Contributor", PROD),
    ("other_resource_elsewhere", "stan", "Contributor", SANDBOX),
    ("unknown_user", "nobody-by-this-name", "Contributor", PROD),
]
COLUMNS = [column for column, *_ in QUESTIONS]

MATRIX = {
    #                  self dir, self res, other dir, other res, other elsewhere, unknown
    "outsider": (200, 200, 403, 403, 403, 403),
    "eligible_user": (200, 200, 403, 403, 403, 403),  # eligible for PRA: not in force
    "approver": (200, 200, 403, 403, 403, 403),
    "security_reader": (200, 200, 200, 200, 200, 404),
    "pra": (200, 200, 200, 200, 200, 404),
    "resource_owner": (200, 200, 403, 200, 403, 404),  # Owner of Production only
    NO_TOKEN: (401, 401, 401, 401, 401, 401),
}
MESSAGES = {
    401: "A bearer token is required",
    403: "may ask only about themselves",
    404: "No user 'nobody-by-this-name'.",
}


def _cases():
    for persona, statuses in MATRIX.items():
        assert len(statuses) == len(QUESTIONS), persona
        for question, expected in zip(QUESTIONS, statuses, strict=True):
            yield pytest.param(persona, question, expected, id=f"{persona}-{question[0]}")


@pytest.mark.parametrize(("persona", "question", "expected"), list(_cases()))
def test_api_permission_matrix(request, tree, persona, question, expected):
    make_user("stan")
    if persona == NO_TOKEN:
        api, username = ApiClient(None), "stan"
    else:
        user = request.getfixturevalue(persona)
        api, username = ApiClient(make_token(user).secret), user.username
    _, principal, role_name, scope = question

    response = api.access(username if principal == "self" else principal, role_name, scope)

    assert response.status_code == expected, response.json_body
    if expected == 200:
        assert response.json_body["role"]["displayName"] == role_name
    else:
        assert MESSAGES[expected] in error_of(response)["message"]
    if expected == 403:  # audited, as the pages' refusals are
        refusal = AuditEvent.objects.get(action="pim.security.forbidden", actor__username=username)
        assert refusal.role == role_name and refusal.scope == scope
