"""Personas of the Users and Groups pages, on top of tests/conftest.py's: a User
Administrator and a Global Reader."""

from binascii import unhexlify
from datetime import UTC, datetime

import pytest
import time_machine
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.factories import assign, make_user

T0 = datetime(2026, 3, 2, 9, 0, 10, tzinfo=UTC)  # 10 s into a 30 s TOTP step


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def user_admin(db):
    """Uma: a permanent active User Administrator (users.manage, nothing else)."""
    user = make_user("uma", display_name="Uma Useradmin")
    assign(user, "User Administrator", permanent=True)
    return user


@pytest.fixture
def global_reader(db):
    user = make_user("greta", display_name="Greta Reader")
    assign(user, "Global Reader", permanent=True)
    return user


def phone_of(user, name="Phone") -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name=name, confirmed=True)


def code_for(device: TOTPDevice) -> str:
    """The device's code now (the clock is frozen by time-machine in these tests)."""
    return f"{totp(unhexlify(device.key)):06d}"


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"
