"""Signals other apps listen to; assignments knows nothing of who listens.

`request_submitted` is sent after commit when a request starts waiting for approval, with
`request_id`. `request_canceled` is sent after commit when a request that was waiting for
approval is canceled, with `request_id` and `actor_id`. The approvals app listens to both to
tell the approvers.
"""

from django.dispatch import Signal

request_submitted = Signal()
request_canceled = Signal()


def group_membership_changed(sender, instance, action, reverse, pk_set, **kwargs):
    """m2m_changed of User.groups, either side: members who left lose the activations made
    from their group's eligibility. `clear` is seen before it happens, to know who leaves."""
    from django.contrib.auth.models import Group

    from assignments.selfservice import activations_end_on_leaving_group

    if action == "pre_clear":
        members = instance.user_set if reverse else instance.groups
        instance._pim_left = set(members.values_list("pk", flat=True))
        return
    if action == "post_clear":
        left = getattr(instance, "_pim_left", set())
    elif action == "post_remove":
        left = set(pk_set or ())
    else:
        return
    if not left:
        return
    if isinstance(instance, Group):
        activations_end_on_leaving_group(user_ids=left, group_ids=[instance.pk])
    else:
        activations_end_on_leaving_group(user_ids=[instance.pk], group_ids=left)
