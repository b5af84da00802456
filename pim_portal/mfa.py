"""TOTP second factor (django-otp): enrolment and one-code checks at each sensitive step."""

import segno
from django_otp.plugins.otp_totp.models import TOTPDevice


def confirmed_devices(user):
    return TOTPDevice.objects.filter(user=user, confirmed=True)


def has_device(user) -> bool:
    return confirmed_devices(user).exists()


def verify_code(user, code: str) -> bool:
    """True when the code is valid for one of the user's devices and was not used before.

    django-otp refuses a code from a time step already used (replay) and throttles guessing.
    """
    code = (code or "").strip().replace(" ", "")
    if not code.isdigit():
        return False
    return any(device.verify_token(code) for device in confirmed_devices(user))


def pending_device(user) -> TOTPDevice:
    """The unconfirmed device being enrolled (one per user), created on first use."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    return device


def qr_svg(device: TOTPDevice) -> str:
    return segno.make(device.config_url, error="m").svg_inline(scale=5)
