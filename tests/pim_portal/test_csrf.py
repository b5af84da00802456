from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from tests.factories import PASSWORD


def test_post_without_csrf_token_is_refused_and_audited(pra):
    client = Client(enforce_csrf_checks=True)
    client.login(username=pra.username, password=PASSWORD)

    response = client.post(reverse("assignments:assignment_add"), {"role": 1})

    assert response.status_code == 403
    assert b"security token" in response.content
    event = AuditEvent.objects.get(action="pim.security.csrf_failed")
    assert event.actor == pra
    assert "/assignments/add/" in event.message
