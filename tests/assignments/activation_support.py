"""Helpers shared by the activation tests: role settings, TOTP devices and codes, and
activating a user's eligible assignment through the service."""

from datetime import timedelta

from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from assignments import queries, services
from assignments.models import Assignment, RolePolicy
from tests.factories import role

PRA = "Privileged Role Administrator"
HOUR = timedelta(hours=1)


def eligible_for(user, role_name: str = PRA) -> Assignment:
    return queries.eligible_assignments(user).get(role__name=role_name)


def activate(user, role_name: str = PRA, **kw):
    """Activate the user's eligibility for the role: an hour, with a justification."""
    kw.setdefault("duration", HOUR)
    kw.setdefault("justification", "Incident 42")
    return services.request_activate(actor=user, eligible=eligible_for(user, role_name), **kw)


def set_policy(role_name: str, scope=None, **settings) -> RolePolicy:
    """Change the role's settings (at a scope: an override there) and return them."""
    policy, _ = RolePolicy.objects.update_or_create(
        role=role(role_name), scope=scope, defaults=settings
    )
    return policy


def relax(role_name: str, **settings) -> RolePolicy:
    """Settings that ask for nothing but what `settings` turn back on."""
    values = {
        "require_mfa_on_activation": False,
        "require_justification_on_activation": False,
        "require_ticket_on_activation": False,
        "require_approval": False,
    }
    values.update(settings)
    return set_policy(role_name, **values)


def make_device(user) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="Phone", confirmed=True)


def code_for(device: TOTPDevice) -> str:
    """The code the user's phone shows now (time is whatever time_machine says)."""
    device.refresh_from_db()
    value = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits)
    return f"{value:0{device.digits}d}"
