"""No path through the ORM changes or deletes an audit event, and the admin offers none."""

import pytest
from django.contrib import admin
from django.db import IntegrityError, models, transaction

from audit import log as audit_log
from audit.models import AppendOnlyError, AuditEvent

pytestmark = pytest.mark.django_db

MANAGERS = ["objects", "_default_manager", "_base_manager"]


@pytest.fixture(params=["unsealed", "sealed"])
def events(request):
    """Two events, as written (no place in the chain yet) or after the sealer linked them."""
    for n in (1, 2):
        audit_log.record(action="pim.test.event", message=f"event {n}")
    if request.param == "sealed":
        assert audit_log.seal() == 2
    return list(AuditEvent.objects.order_by("id"))


def _unchanged() -> bool:
    return list(AuditEvent.objects.order_by("id").values_list("message", flat=True)) == [
        "event 1",
        "event 2",
    ]


def test_base_manager_is_the_guarded_one():
    assert AuditEvent._base_manager is AuditEvent.objects
    assert AuditEvent._default_manager is AuditEvent.objects


@pytest.mark.parametrize("manager", MANAGERS)
def test_update_through_every_manager_raises(events, manager):
    with pytest.raises(AppendOnlyError, match="never updated"):
        getattr(AuditEvent, manager).all().update(message="changed")
    assert _unchanged()


@pytest.mark.parametrize("manager", MANAGERS)
def test_delete_through_every_manager_raises(events, manager):
    with pytest.raises(AppendOnlyError, match="never deleted"):
        getattr(AuditEvent, manager).all().delete()
    assert _unchanged()


@pytest.mark.parametrize("manager", MANAGERS)
def test_bulk_update_through_every_manager_raises(events, manager):
    for event in events:
        event.message = "changed"
    with pytest.raises(AppendOnlyError, match="never updated"):
        getattr(AuditEvent, manager).bulk_update(events, ["message"])
    assert _unchanged()


def test_delete_through_a_plain_queryset_raises(events):
    # The refusal comes from pre_delete, inside the deletion's own transaction: it rolls back.
    with pytest.raises(AppendOnlyError, match="never deleted"), transaction.atomic():
        models.QuerySet(model=AuditEvent).delete()
    assert _unchanged()


def test_update_through_a_plain_queryset_is_refused_by_the_database(events):
    # A plain QuerySet has no model hook before its UPDATE; the trigger is the guard there.
    with (
        pytest.raises(IntegrityError, match="audit events are append-only"),
        transaction.atomic(),
    ):
        models.QuerySet(model=AuditEvent).update(message="changed")
    assert _unchanged()


def test_bulk_update_through_a_plain_queryset_is_refused_by_the_database(events):
    for event in events:
        event.message = "changed"
    with (
        pytest.raises(IntegrityError, match="audit events are append-only"),
        transaction.atomic(),
    ):
        models.QuerySet(model=AuditEvent).bulk_update(events, ["message"])
    assert _unchanged()


# The admin ---------------------------------------------------------------------------------


@pytest.fixture
def superuser_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw-Root-123")
    client.force_login(user)
    return client


def test_admin_lists_events_without_a_delete_action(events, superuser_client):
    response = superuser_client.get("/admin/audit/auditevent/")
    assert response.status_code == 200
    assert response.context["cl"].result_count == 2
    model_admin = admin.site._registry[AuditEvent]
    assert "delete_selected" not in model_admin.get_actions(response.wsgi_request)


def test_admin_change_page_is_read_only(events, superuser_client):
    url = f"/admin/audit/auditevent/{events[0].pk}/change/"
    page = superuser_client.get(url)
    assert page.status_code == 200
    assert not page.context["has_change_permission"]
    response = superuser_client.post(url, {"message": "changed"})
    assert response.status_code == 403
    assert _unchanged()


def test_admin_refuses_to_delete_an_event(events, superuser_client):
    response = superuser_client.post(
        f"/admin/audit/auditevent/{events[0].pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 403
    assert _unchanged()


def test_admin_refuses_to_add_an_event(superuser_client):
    assert superuser_client.get("/admin/audit/auditevent/add/").status_code == 403
