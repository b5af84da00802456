"""How connectors learn that the desired state may have changed: every write of assignments
(`post_save`, and `assignments_changed` for bulk writes), group membership, and accounts
turned off or on. Each queues a worker's job after the change commits, and only when a mapping
makes one of the roles concerned true somewhere; the job works out who is affected and makes
their provisioning rows due. Ends and scheduled starts need no signal: the rows carry their
times (provisioning.py)."""

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

from assignments.models import Assignment
from assignments.signals import accounts_changed as accounts_changed_signal
from assignments.signals import assignments_changed
from connectors.models import Mapping
from connectors.queries import forget_mapped_roles, mapped_role_ids
from pim_portal import jobs


def _assignments_written(assignments) -> None:
    mapped = mapped_role_ids()
    # Only active assignments make anyone a member; eligibility grants nothing until used.
    ids = [a.pk for a in assignments if a.pk and a.kind == "active" and a.role_id in mapped]
    if ids:
        jobs.enqueue("connectors.tasks.assignments_changed", ids)


def assignment_saved(sender, instance, **kwargs):
    _assignments_written([instance])


def assignments_written(sender, assignments, **kwargs):
    _assignments_written(assignments)


def user_saved(sender, instance, created, update_fields=None, **kwargs):
    """An account turned off (or on again): its access in every target follows."""
    if created or (update_fields is not None and "is_active" not in update_fields):
        return
    if mapped_role_ids():
        jobs.enqueue("connectors.tasks.users_changed", [instance.pk])


def accounts_changed(sender, user_ids, **kwargs):
    if mapped_role_ids():
        jobs.enqueue("connectors.tasks.users_changed", list(user_ids))


def group_membership_changed(sender, instance, action, reverse, pk_set, **kwargs):
    """Joined or left a group (either side of User.groups): those users' access follows."""
    if action not in ("post_add", "post_remove", "pre_clear") or not mapped_role_ids():
        return
    if action == "pre_clear":  # seen before it happens, to know who leaves
        users = list(instance.user_set.values_list("pk", flat=True)) if reverse else [instance.pk]
    else:
        users = list(pk_set or ()) if reverse else [instance.pk]
    if users:
        jobs.enqueue("connectors.tasks.users_changed", users)


def mapping_changed(sender, **kwargs):
    """However a mapping is made or deleted (a page, the admin), the roles it names are asked
    afresh, in this process at once and in the others within seconds."""
    transaction.on_commit(forget_mapped_roles)


def connect() -> None:
    User = get_user_model()
    post_save.connect(assignment_saved, sender=Assignment, dispatch_uid="connectors.assignment")
    assignments_changed.connect(assignments_written, dispatch_uid="connectors.assignments")
    post_save.connect(mapping_changed, sender=Mapping, dispatch_uid="connectors.mapping_saved")
    post_delete.connect(mapping_changed, sender=Mapping, dispatch_uid="connectors.mapping_deleted")
    post_save.connect(user_saved, sender=User, dispatch_uid="connectors.user")
    accounts_changed_signal.connect(accounts_changed, dispatch_uid="connectors.accounts")
    m2m_changed.connect(
        group_membership_changed,
        sender=User.groups.through,
        dispatch_uid="connectors.group_membership",
    )
