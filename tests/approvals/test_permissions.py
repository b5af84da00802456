"""Every approvals URL × every persona × method → the expected answer, in one table.

The request is Erin's pending activation of Privileged Role Administrator, for which Alex is
the named approver. A new page without a check fails here.
"""

import pytest
from django.test import Client
from django.urls import reverse

from assignments.models import RequestStatus, RoleRequest

pytestmark = pytest.mark.django_db

PERSONAS = [
    "anonymous",
    "outsider",
    "eligible_user",  # the requester
    "approver",
    "pra",
    "global_admin",
    "security_reader",
    "resource_owner",
]
LOGIN = "login"

# url name → (method, {persona: expected status}, expected request status afterwards or None)
MATRIX = {
    "inbox": (
        "get",
        {
            "anonymous": LOGIN,
            "outsider": 200,
            "eligible_user": 200,
            "approver": 200,
            "pra": 200,
            "global_admin": 200,
            "security_reader": 200,
            "resource_owner": 200,
        },
    ),
    "request_detail": (
        "get",
        {
            "anonymous": LOGIN,
            "outsider": 404,
            "eligible_user": 200,
            "approver": 200,
            "pra": 200,
            "global_admin": 200,
            "security_reader": 404,
            "resource_owner": 404,
        },
    ),
    "decide": (
        "post",
        {
            "anonymous": LOGIN,
            "outsider": 404,
            "eligible_user": 403,
            "approver": 302,
            "pra": 403,  # named approvers replace the administrators
            "global_admin": 403,
            "security_reader": 404,
            "resource_owner": 404,
        },
    ),
    "request_cancel_admin": (
        "post",
        {
            "anonymous": LOGIN,
            "outsider": 404,
            "eligible_user": 302,
            "approver": 403,
            "pra": 302,
            "global_admin": 302,
            "security_reader": 404,
            "resource_owner": 404,
        },
    ),
    "bulk_decide": (
        "post",
        {
            "anonymous": LOGIN,
            "outsider": 302,
            "eligible_user": 302,
            "approver": 302,
            "pra": 302,
            "global_admin": 302,
            "security_reader": 302,
            "resource_owner": 302,
        },
    ),
}

# What the request's status is after each persona's POST: only the right people change it.
AFTER = {
    "decide": {"approver": RequestStatus.PROVISIONED},
    "request_cancel_admin": {
        "eligible_user": RequestStatus.CANCELED,
        "pra": RequestStatus.CANCELED,
        "global_admin": RequestStatus.CANCELED,
    },
    "bulk_decide": {"approver": RequestStatus.PROVISIONED},
}

CASES = [
    (name, persona, expected)
    for name, (_, answers) in MATRIX.items()
    for persona, expected in answers.items()
]


def _client(request, persona, client_for):
    if persona == "anonymous":
        return Client()
    return client_for(request.getfixturevalue(persona))


def _url(name, pending):
    if name in ("inbox", "bulk_decide"):
        return reverse(f"approvals:{name}")
    return reverse(f"approvals:{name}", args=[pending.pk])


def test_matrix_covers_every_approvals_url():
    from approvals.urls import urlpatterns

    assert {pattern.name for pattern in urlpatterns} == set(MATRIX)


@pytest.mark.parametrize(("name", "persona", "expected"), CASES)
def test_permission_matrix(request, pending, client_for, tree, name, persona, expected):
    method, _ = MATRIX[name]
    client = _client(request, persona, client_for)
    url = _url(name, pending)
    data = {"decision": "approve", "justification": "Matrix", "request": [pending.pk]}
    response = client.get(url) if method == "get" else client.post(url, data)
    if expected == LOGIN:
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))
    else:
        assert response.status_code == expected
    if method == "post":
        status = RoleRequest.objects.get(pk=pending.pk).status
        assert status == AFTER[name].get(persona, RequestStatus.PENDING_APPROVAL)


@pytest.mark.parametrize("name", ["decide", "request_cancel_admin", "bulk_decide"])
def test_post_only_urls_refuse_get(pending, approver, client_for, name):
    assert client_for(approver).get(_url(name, pending)).status_code == 405
