"""TOTP second factor: a current code is accepted once; replays and wrong codes are refused."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from pim_portal import mfa

T0 = datetime(2026, 3, 2, 9, 0, 10, tzinfo=UTC)

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def device(outsider):
    return TOTPDevice.objects.create(user=outsider, name="Phone", confirmed=True)


def _code(device: TOTPDevice, offset: int = 0) -> str:
    value = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=offset)
    return f"{value:0{device.digits}d}"


def test_current_code_is_accepted(clock, outsider, device):
    assert mfa.verify_code(outsider, _code(device))


def test_code_with_spaces_is_accepted(clock, outsider, device):
    code = _code(device)
    assert mfa.verify_code(outsider, f" {code[:3]} {code[3:]} ")


def test_replay_of_the_same_code_is_refused(clock, outsider, device):
    code = _code(device)
    assert mfa.verify_code(outsider, code)
    assert not mfa.verify_code(outsider, code)


def test_replay_is_refused_within_the_same_time_step(clock, outsider, device):
    code = _code(device)
    assert mfa.verify_code(outsider, code)
    clock.shift(timedelta(seconds=5))
    assert not mfa.verify_code(outsider, code)


def test_next_time_steps_code_is_accepted_after_one_was_used(clock, outsider, device):
    assert mfa.verify_code(outsider, _code(device))
    clock.shift(timedelta(seconds=device.step))
    assert mfa.verify_code(outsider, _code(device))


def test_wrong_code_is_refused(clock, outsider, device):
    wrong = f"{(int(_code(device)) + 1) % 10**device.digits:0{device.digits}d}"
    assert not mfa.verify_code(outsider, wrong)


def test_code_from_long_ago_is_refused(clock, outsider, device):
    old = _code(device)
    clock.shift(timedelta(minutes=10))
    assert not mfa.verify_code(outsider, old)


@pytest.mark.parametrize("code", ["", "   ", "abcdef", None])
def test_code_that_is_not_digits_is_refused(clock, outsider, device, code):
    assert not mfa.verify_code(outsider, code)


def test_code_of_an_unconfirmed_device_is_refused(clock, outsider):
    # Left by the old enrolment page, which saved an unconfirmed device on every visit.
    pending = TOTPDevice.objects.create(user=outsider, name="Phone", confirmed=False)
    assert not mfa.verify_code(outsider, _code(pending))


def test_code_of_another_users_device_is_refused(clock, outsider, device, approver):
    assert not mfa.verify_code(approver, _code(device))


def test_has_device_only_once_confirmed(outsider):
    pending = TOTPDevice.objects.create(user=outsider, name="Phone", confirmed=False)
    assert not mfa.has_device(outsider)
    pending.confirmed = True
    pending.save()
    assert mfa.has_device(outsider)


# A new device's first code, checked before the device exists ---------------------------------


def test_first_code_of_a_new_secret_gives_its_time_step(clock, outsider):
    device = mfa.unsaved_device(outsider, mfa.new_secret())
    assert mfa.first_code_step(device, _code(device)) == int(T0.timestamp()) // device.step


def test_wrong_first_code_of_a_new_secret_is_refused(clock, outsider):
    device = mfa.unsaved_device(outsider, mfa.new_secret())
    wrong = f"{(int(_code(device)) + 1) % 10**device.digits:06d}"
    assert mfa.first_code_step(device, wrong) is None


def test_checking_a_first_code_saves_no_device(clock, outsider):
    device = mfa.unsaved_device(outsider, mfa.new_secret())
    mfa.first_code_step(device, _code(device))
    mfa.first_code_step(device, "000000")
    assert not TOTPDevice.objects.exists()


def test_new_secrets_differ():
    assert mfa.new_secret() != mfa.new_secret()
