"""Every event names who acted: a user, the system for a stated reason, or (old callers) none."""

import pytest

from audit import log as audit_log
from audit.log import verify_chain
from audit.models import AuditEvent
from pim_portal.actor import Actor
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def _stored(**kw) -> AuditEvent:
    event = audit_log.record(action="pim.test.event", **kw)
    return AuditEvent.objects.get(pk=event.pk)


def test_event_by_a_user_points_at_them_and_keeps_their_name():
    ann = make_user("ann")
    event = _stored(actor=ann)
    assert (event.actor, event.actor_name) == (ann, "Ann")


def test_event_by_the_actor_of_a_user_points_at_the_user():
    ann = make_user("ann")
    event = _stored(actor=Actor.of(ann))
    assert (event.actor, event.actor_name) == (ann, "Ann")


def test_event_by_the_system_names_its_reason():
    event = _stored(actor=Actor.system("scheduler"))
    assert (event.actor, event.actor_name) == (None, "system (scheduler)")


def test_event_with_no_actor_is_by_the_unnamed_system():
    event = _stored(actor=None)
    assert (event.actor, event.actor_name) == (None, "system")
    assert str(event) == "(unsealed) pim.test.event by system"
    audit_log.seal()
    assert str(AuditEvent.objects.get(pk=event.pk)) == "#1 pim.test.event by system"


def test_user_and_actor_of_the_user_write_the_same_columns():
    ann = make_user("ann")
    by_user, by_actor = _stored(actor=ann), _stored(actor=Actor.of(ann))
    assert (by_user.actor_id, by_user.actor_name) == (by_actor.actor_id, by_actor.actor_name)


def test_chain_verifies_with_every_kind_of_actor():
    ann = make_user("ann")
    for actor in (None, ann, Actor.of(ann), Actor.system("access review #12")):
        audit_log.record(action="pim.test.event", actor=actor)
    assert verify_chain() == (4, None)
