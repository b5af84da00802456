"""Signal handlers: identity changes made in the core reach assignments here."""

from django.contrib.auth.models import Group

from assignments.services.groups import activations_end_on_leaving_group


def group_membership_changed(sender, instance, action, reverse, pk_set, **kwargs):
    """m2m_changed of User.groups, either side: members who left lose the activations made
    from their group's eligibility. `clear` is seen before it happens, to know who leaves."""
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
