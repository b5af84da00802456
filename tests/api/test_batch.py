"""POST /api/v1/access/batch: many questions, answered in order, each with its own status, in
a number of queries that does not grow with the questions."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from assignments.models import AssignmentKind
from tests.api.conftest import ApiClient, make_token
from tests.factories import assign, make_group, make_user

PROD = "/managementGroups/contoso/subscriptions/prod/"


@pytest.fixture
def api(pra):
    return ApiClient(make_token(pra).secret)


def test_answers_come_in_order_each_with_its_status(api, tree):
    dana = make_user("dana")
    assign(dana, "Reader", scope=tree["sub"], permanent=True)

    response = api.batch(
        {"id": "a", "principal": "dana", "role": "Reader", "scope": PROD},
        {"principal": "nobody", "role": "Reader"},
        {"principal": "dana", "role": "Reader", "scope": "/nowhere/"},
        {"principal": "dana"},
        "not an object",
        {"id": "f", "principal": "dana", "role": "Owner", "scope": PROD},
    )

    assert response.status_code == 200
    responses = response.json_body["responses"]
    assert [(r["id"], r["status"]) for r in responses] == [
        ("a", 200),
        ("2", 404),
        ("3", 404),
        ("4", 400),
        ("5", 400),
        ("f", 200),
    ]
    assert responses[0]["body"]["inForce"] is True
    assert responses[5]["body"]["inForce"] is False
    assert responses[1]["body"]["error"]["target"] == "principal"
    assert responses[2]["body"]["error"]["target"] == "scope"
    assert responses[3]["body"]["error"] == {
        **responses[3]["body"]["error"],
        "code": "invalidRequest",
        "target": "role",
        "message": "role is required.",
    }
    assert responses[4]["body"]["error"]["message"].startswith("Each request is an object")


def test_a_batch_answers_as_the_single_endpoint_does(api, tree):
    dana = make_user("dana")
    operators = make_group("Web operators", dana)
    assign(operators, "Contributor", scope=tree["mg"], permanent=True)
    assign(dana, "Owner", scope=tree["rg"], kind=AssignmentKind.ELIGIBLE)
    questions = [
        {"principal": "dana", "role": "Contributor", "scope": PROD},
        {"principal": "dana", "role": "Owner", "scope": PROD + "resourceGroups/web/"},
        {"principal": "group:Web operators", "role": "Contributor", "scope": PROD},
        {"principal": "dana", "role": "Reader", "scope": "/"},
    ]

    batch = api.batch(*questions).json_body["responses"]

    for question, item in zip(questions, batch, strict=True):
        single = api.access(**question).json_body
        item["body"].pop("checkedAt"), single.pop("checkedAt")
        assert item["body"] == single


def test_a_forbidden_question_is_403_in_its_place_and_audited(security_reader, tree):
    from audit.models import AuditEvent

    eve = make_user("eve")
    api = ApiClient(make_token(eve).secret)

    responses = api.batch(
        {"principal": "eve", "role": "Reader", "scope": PROD},
        {"principal": "sam", "role": "Security Reader"},
        {"principal": "sam", "role": "Security Reader"},  # the same refusal: audited once
    ).json_body["responses"]

    assert [r["status"] for r in responses] == [200, 403, 403]
    assert "may ask only about themselves" in responses[1]["body"]["error"]["message"]
    refusal = AuditEvent.objects.get(action="pim.security.forbidden", actor=eve)
    assert refusal.role == "Security Reader" and refusal.principal == "sam"


def test_an_empty_batch_has_no_responses(api):
    response = api.batch()
    assert response.status_code == 200 and response.json_body == {"responses": []}


def test_a_batch_of_the_maximum_is_answered(api, tree, settings):
    settings.API_BATCH_MAX = 100
    response = api.batch(*[{"principal": "pat", "role": "Reader"}] * 100)
    assert response.status_code == 200 and len(response.json_body["responses"]) == 100


def _queries(api, body) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = api.post(body=body)
    assert response.status_code == 200
    return len(queries)


def test_the_queries_of_a_batch_do_not_grow_with_its_questions(
    api, tree, django_assert_max_num_queries
):
    people = [
        make_user(f"user{number}", email=f"user{number}@example.com") for number in range(100)
    ]
    groups = [make_group(f"Team {number}", person) for number, person in enumerate(people)]
    roles = ["Reader", "Contributor", "Owner", "Security Reader"]
    scopes = [tree["root"], tree["mg"], tree["sub"], tree["rg"], tree["vm"]]
    for number, person in enumerate(people):
        assign(person, roles[number % 4], scope=scopes[number % 5], permanent=True)
        assign(groups[number], roles[(number + 1) % 4], scope=scopes[(number + 2) % 5])
        assign(
            person, roles[(number + 2) % 4], scope=scopes[number % 5], kind=AssignmentKind.ELIGIBLE
        )
    one = _queries(api, {"requests": [{"principal": "user0", "role": "Reader", "scope": "/"}]})
    requests = [
        {
            "principal": person.username if number % 3 else person.email,
            "role": roles[number % 4],
            "scope": scopes[(number + 1) % 5].path,
        }
        for number, person in enumerate(people)
    ]

    with django_assert_max_num_queries(one + 1):  # + 1: the denials' INSERT, should one be
        response = api.post(body={"requests": requests})

    assert response.status_code == 200
    statuses = {item["status"] for item in response.json_body["responses"]}
    assert statuses == {200}
