"""Group membership: a member who leaves a group loses what its eligibility gave them."""

from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from assignments.models import Assignment
from assignments.services.administration import end_now
from audit import log as audit_log
from pim_portal.actor import Actor

GROUP_MEMBERSHIP = Actor.system("group membership")


def activations_end_on_leaving_group(*, user_ids, group_ids) -> int:
    """A member who leaves a group loses the activations made from that group's eligibility.

    Called whenever group membership shrinks, however it was changed. Returns how many ended.
    """
    now = timezone.now()
    ended = 0
    with transaction.atomic():
        activations = (
            Assignment.objects.select_for_update(of=("self",))
            .not_ended(now)
            .active()
            .filter(principal_user__in=user_ids, activated_from__principal_group__in=group_ids)
            .with_related()
            .select_related("activated_from__principal_group")
        )
        for activation in activations:
            group = activation.activated_from.principal_group
            if Group.objects.filter(pk=group.pk, user=activation.principal_user_id).exists():
                continue  # still a member (removed and added back in one change)
            before = activation.snapshot()
            end_now(activation, actor=GROUP_MEMBERSHIP, now=now)
            audit_log.record(
                action="pim.assignment.removed",
                actor=GROUP_MEMBERSHIP,
                target=activation,
                principal=activation.principal_name,
                role=activation.role.name,
                scope=activation.scope.path,
                before=before,
                after=activation.snapshot(),
                message=f"{activation.principal_name} left the group {group}, whose eligibility "
                "this activation was made from.",
            )
            ended += 1
    return ended
