"""A user's authenticator apps: add, remove, and an administrator's reset. Each one audited.

Possession rules: the first authenticator is added with its own first code; every further one
also needs a current code from one the user already has, so a stolen session alone cannot
plant a second factor. Removing one needs a current code from any of the user's devices. An
administrator who has lost track of a user's phone resets them all (audited) instead.
"""

from django.core.exceptions import ValidationError
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit import log as audit_log
from pim_portal import mfa
from pim_portal.actor import Actor

ENROLLED = "pim.security.mfa_enrolled"
ENROL_REFUSED = "pim.security.mfa_enrol_refused"
REMOVED = "pim.security.mfa_removed"
REMOVE_REFUSED = "pim.security.mfa_remove_refused"
RESET = "pim.security.mfa_reset"


def _refuse(*, action: str, user, target, field: str, code: str, message: str, why: str):
    """Audit a refusal (outside any transaction, so it stays) and raise it on its field."""
    audit_log.record(action=action, actor=user, target=target, message=why)
    raise ValidationError({field: ValidationError(message, code=code)})


def _device_state(device: TOTPDevice) -> dict:
    return {"device": device.pk, "name": device.name}


def authenticator_add(
    *, user, key: str, name: str, code: str, current_code: str = ""
) -> TOTPDevice:
    """Save the authenticator whose secret is `key`, confirmed by its first `code`.

    A user who already has an authenticator must also give a current code from one of them.
    """
    name = (name or "").strip() or mfa.DEFAULT_DEVICE_NAME
    device = mfa.unsaved_device(user, key, name)
    # The new app's code first: it has no side effects, so a typo there does not use up the
    # existing device's code (which cannot be used twice).
    step = mfa.first_code_step(device, code)
    if step is None:
        _refuse(
            action=ENROL_REFUSED,
            user=user,
            target=user,
            field="code",
            code="new_code_wrong",
            message="That code is not right. Check the time on your phone and retry.",
            why=f"Adding authenticator {name!r}: the new app's code was wrong.",
        )
    if mfa.has_device(user) and not mfa.verify_code(user, current_code):
        _refuse(
            action=ENROL_REFUSED,
            user=user,
            target=user,
            field="current_code",
            code="current_code_wrong",
            message="Enter a current code from an authenticator you already have.",
            why=f"Adding authenticator {name!r}: no valid code from an existing authenticator.",
        )
    with transaction.atomic():
        device.confirmed = True
        device.last_t = step  # the confirming code cannot be replayed
        device.save()
        # Unconfirmed devices left by the old enrolment page (which made one on every visit).
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        audit_log.record(
            action=ENROLLED,
            actor=user,
            target=user,
            after=_device_state(device),
            message=f"Authenticator {name!r} added.",
        )
    return device


def authenticator_remove(*, user, device_id: int, code: str) -> TOTPDevice:
    """Remove one of the user's authenticators, given a current code from any of them."""
    device = mfa.confirmed_devices(user).get(pk=device_id)  # DoesNotExist for another's
    if not mfa.verify_code(user, code):
        _refuse(
            action=REMOVE_REFUSED,
            user=user,
            target=user,
            field="code",
            code="code_wrong",
            message="That code is not right. Enter a current code from one of your authenticators.",
            why=f"Removing authenticator {device.name!r}: the code was wrong.",
        )
    with transaction.atomic():
        before = _device_state(device)
        device.delete()
        audit_log.record(
            action=REMOVED,
            actor=user,
            target=user,
            before=before,
            message=f"Authenticator {before['name']!r} removed.",
        )
    return device


def authenticators_reset(*, actor: Actor, user) -> int:
    """An administrator removes all of a user's authenticators (a lost phone). Audited.

    Authorization is the caller's: only the Django admin (superusers) offers it.
    """
    actor = Actor.of(actor)
    with transaction.atomic():
        devices = list(TOTPDevice.objects.select_for_update().filter(user=user))
        TOTPDevice.objects.filter(pk__in=[device.pk for device in devices]).delete()
        audit_log.record(
            action=RESET,
            actor=actor,
            target=user,
            before={"devices": [_device_state(d) for d in devices if d.confirmed]},
            after={"devices": []},
            message=f"All authenticators of {user} removed by an administrator.",
        )
    return sum(1 for device in devices if device.confirmed)
