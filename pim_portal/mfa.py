"""TOTP second factor (django-otp): enrolment and one-code checks at each sensitive step.

A new authenticator's secret lives only in the enrolling user's session until its first code
confirms it; only then is a (confirmed) device saved. Opening a page never creates a device.
"""

import segno
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp.util import random_hex

DEFAULT_DEVICE_NAME = "Authenticator app"


def confirmed_devices(user):
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("created_at", "pk")


def has_device(user) -> bool:
    return confirmed_devices(user).exists()


def _digits(code: str | None) -> str:
    return (code or "").strip().replace(" ", "")


def verify_code(user, code: str) -> bool:
    """True when the code is valid for one of the user's devices and was not used before.

    django-otp refuses a code from a time step already used (replay) and throttles guessing.
    """
    code = _digits(code)
    if not code.isdigit():
        return False
    return any(device.verify_token(code) for device in confirmed_devices(user))


def new_secret() -> str:
    """A fresh TOTP key (hex), as django-otp would make for a device."""
    return random_hex(20)


def unsaved_device(user, key: str, name: str = DEFAULT_DEVICE_NAME) -> TOTPDevice:
    """The device a secret would become: for its QR code and key, never saved here."""
    return TOTPDevice(user=user, key=key, name=name, confirmed=False)


def first_code_step(device: TOTPDevice, code: str | None) -> int | None:
    """The time step a new (unsaved) device's code belongs to, or None when it is wrong.

    Checked without touching the database, so a wrong first code leaves no row behind.
    """
    code = _digits(code)
    if not code.isdigit():
        return None
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    if not totp.verify(int(code), device.tolerance):
        return None
    return totp.t()


def qr_svg(device: TOTPDevice) -> str:
    return segno.make(device.config_url, error="m").svg_inline(scale=5)
