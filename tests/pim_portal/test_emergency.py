"""Break-glass: an emergency access sign-in is recorded, audited, mailed to every Global
Administrator, and followed up by an administrator who sees all the account did."""

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit import log as audit_log
from audit.models import AuditEvent
from pim_portal import emergency
from pim_portal.models import EmergencyAccessUse
from tests.factories import PASSWORD, assign, make_group, make_user

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ADDRESS = "203.0.113.7"
MFA_PASSED = "pim.security.signin_mfa_passed"  # the account holds a role: sign-in MFA


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def breakglass(db):
    """An emergency access account, a permanent Global Administrator as they usually are."""
    user = make_user("breakglass", display_name="Break Glass", is_emergency_access=True)
    assign(user, "Global Administrator", permanent=True)
    return user


@pytest.fixture
def group_admin(db):
    """Grace: a Global Administrator through the group Tier 0."""
    user = make_user("grace", display_name="Grace Group")
    assign(make_group("Tier 0", user), "Global Administrator", permanent=True)
    return user


def sign_in(user, client=None) -> Client:
    """Password, then (the account is a Global Administrator: sign-in MFA) a code."""
    from binascii import unhexlify

    from django_otp.oath import totp
    from django_otp.plugins.otp_totp.models import TOTPDevice

    client = client or Client()
    response = client.post(
        reverse("login"), {"username": user.username, "password": PASSWORD}, REMOTE_ADDR=ADDRESS
    )
    assert response.status_code == 302, response.content
    if response["Location"] == reverse("login_code"):
        device, _ = TOTPDevice.objects.get_or_create(
            user=user, confirmed=True, defaults={"name": "Phone"}
        )
        TOTPDevice.objects.filter(pk=device.pk).update(last_t=-1)  # signs in again this step
        code = f"{totp(unhexlify(device.key)):06d}"
        response = client.post(reverse("login_code"), {"code": code}, REMOTE_ADDR=ADDRESS)
        assert response.status_code == 302, response.content
    return client


def sign_out(client: Client) -> None:
    assert client.post(reverse("logout"), REMOTE_ADDR=ADDRESS).status_code == 302


def url(name: str, *args) -> str:
    return reverse(f"emergency:{name}", args=args)


def close(client: Client, use, justification="Tenant locked out: SSO certificate expired."):
    return client.post(url("use_close", use.pk), {"justification": justification})


@pytest.fixture
def ended_use(clock, breakglass):
    """A session of the emergency account, from T0 for 20 minutes, signed out."""
    client = sign_in(breakglass)
    clock.shift(timedelta(minutes=20))
    sign_out(client)
    return EmergencyAccessUse.objects.get()


# The sign-in ----------------------------------------------------------------------------------


def test_emergency_sign_in_opens_a_follow_up(clock, breakglass):
    client = sign_in(breakglass)

    use = EmergencyAccessUse.objects.get()
    assert (use.user, use.signed_in_at, use.ip) == (breakglass, T0, ADDRESS)
    assert use.session_key == client.session.session_key
    assert use.is_open and use.signed_out_at is None


def test_emergency_sign_in_is_audited_with_high_importance(clock, breakglass):
    sign_in(breakglass)

    event = AuditEvent.objects.get(action=emergency.USED)
    assert event.actor == breakglass
    assert event.target_id == str(EmergencyAccessUse.objects.get().pk)
    assert event.message.startswith("HIGH IMPORTANCE: emergency access account Break Glass")
    assert (event.ip, event.after["importance"]) == (ADDRESS, "high")


def test_emergency_sign_in_mails_every_global_administrator_once(
    clock, breakglass, global_admin, group_admin, pra, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        sign_in(breakglass)

    recipients = Counter(address for message in mail.outbox for address in message.to)
    assert recipients == {
        "breakglass@example.com": 1,
        "gina@example.com": 1,
        "grace@example.com": 1,
    }


def test_the_mail_says_who_signed_in_and_links_the_follow_up(
    clock, breakglass, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        sign_in(breakglass)

    message = mail.outbox[0]
    use = EmergencyAccessUse.objects.get()
    assert message.subject == (
        "HIGH: emergency access account Break Glass signed in at 2026-03-02 09:00 UTC"
    )
    assert f"From: {ADDRESS}" in message.body
    assert f"{settings.SITE_URL}/emergency/{use.pk}/" in message.body


def test_an_ended_global_administrator_is_not_mailed(
    clock, breakglass, django_capture_on_commit_callbacks
):
    former = make_user("fred")
    assign(former, "Global Administrator", start=T0 - timedelta(days=2), end=T0)

    with django_capture_on_commit_callbacks(execute=True):
        sign_in(breakglass)

    assert [message.to for message in mail.outbox] == [["breakglass@example.com"]]


def test_a_normal_sign_in_opens_no_follow_up(clock, global_admin):
    sign_in(global_admin)

    assert not EmergencyAccessUse.objects.exists()
    assert not AuditEvent.objects.filter(action=emergency.USED).exists()


def test_sign_out_is_recorded(ended_use):
    assert ended_use.signed_out_at == T0 + timedelta(minutes=20)
    event = AuditEvent.objects.get(action=emergency.ENDED)
    assert (event.actor_id, event.target_id) == (ended_use.user_id, str(ended_use.pk))


def test_the_absolute_session_timeout_records_the_sign_out(clock, breakglass, settings):
    settings.SESSION_ABSOLUTE_TIMEOUT = 20 * 60  # within the idle timeout
    client = sign_in(breakglass)
    client.get(reverse("account"))  # the session's clock starts at its first page
    clock.shift(timedelta(minutes=20, seconds=1))

    client.get(reverse("account"))

    assert EmergencyAccessUse.objects.get().signed_out_at == T0 + timedelta(minutes=20, seconds=1)


# The follow-up page ---------------------------------------------------------------------------


def _event(actor, action: str):
    return audit_log.record(action=action, actor=actor, message=action)


def test_the_follow_up_lists_the_sessions_events_and_not_others(
    clock, breakglass, global_admin, pra
):
    clock.move_to(T0 - timedelta(hours=1))
    before = _event(breakglass, "pim.assignment.created")
    clock.move_to(T0)
    client = sign_in(breakglass)
    clock.shift(timedelta(minutes=5))
    during = _event(breakglass, "pim.assignment.removed")
    _event(global_admin, "pim.policy.updated")  # someone else, meanwhile
    clock.shift(timedelta(minutes=5))
    sign_out(client)
    clock.shift(timedelta(minutes=5))
    after = _event(breakglass, "pim.role.changed")
    use = EmergencyAccessUse.objects.get()

    page = sign_in(pra).get(url("use_detail", use.pk))

    shown = [event.action for event, _, _ in page.context["rows"]]
    assert shown == [emergency.USED, MFA_PASSED, "pim.assignment.removed", emergency.ENDED]
    assert during.pk in [event.pk for event, _, _ in page.context["rows"]]
    assert before.pk not in [event.pk for event, _, _ in page.context["rows"]]
    assert after.pk not in [event.pk for event, _, _ in page.context["rows"]]


def test_a_session_without_a_sign_out_lists_events_no_longer_than_a_session_lasts(
    clock, breakglass, pra
):
    sign_in(breakglass)
    longest = settings.SESSION_ABSOLUTE_TIMEOUT + settings.SESSION_COOKIE_AGE
    clock.shift(timedelta(seconds=longest - 1))
    _event(breakglass, "pim.assignment.created")
    clock.shift(timedelta(seconds=2))
    _event(breakglass, "pim.assignment.removed")  # a later session's, as far as this one goes
    use = EmergencyAccessUse.objects.get()

    page = sign_in(pra).get(url("use_detail", use.pk))

    assert [event.action for event, _, _ in page.context["rows"]] == [
        emergency.USED,
        MFA_PASSED,  # the code step that signed the session in
        "pim.assignment.created",
    ]
    assert "Not recorded: the session timed out" in page.content.decode()


def test_an_open_session_lists_its_events_until_now(clock, breakglass, pra):
    sign_in(breakglass)
    clock.shift(timedelta(minutes=10))
    _event(breakglass, "pim.assignment.created")
    use = EmergencyAccessUse.objects.get()

    page = sign_in(pra).get(url("use_detail", use.pk))

    assert [event.action for event, _, _ in page.context["rows"]] == [
        emergency.USED,
        MFA_PASSED,  # the code step that signed the session in
        "pim.assignment.created",
    ]
    assert "the session may still be going on" in page.content.decode()


def test_the_events_page_in_order_by_keyset(clock, breakglass, pra, monkeypatch):
    monkeypatch.setattr(emergency, "EVENTS_PAGE", 3)
    client = sign_in(breakglass)
    for number in range(5):
        _event(breakglass, f"pim.test.event_{number}")
    sign_out(client)
    use = EmergencyAccessUse.objects.get()
    viewer = sign_in(pra)

    pages = [viewer.get(url("use_detail", use.pk))]
    while pages[-1].context["more"]:
        after = pages[-1].context["next_after"]
        pages.append(viewer.get(url("use_detail", use.pk), {"after": after}))

    assert [[event.action for event, _, _ in page.context["rows"]] for page in pages] == [
        [emergency.USED, MFA_PASSED, "pim.test.event_0"],
        ["pim.test.event_1", "pim.test.event_2", "pim.test.event_3"],
        ["pim.test.event_4", emergency.ENDED],
    ]


def test_the_list_shows_open_follow_ups_first(clock, breakglass, pra):
    older = emergency.emergency_use_open(user=breakglass, at=T0 - timedelta(days=2))
    closed = emergency.emergency_use_open(user=breakglass, at=T0 - timedelta(days=1))
    EmergencyAccessUse.objects.filter(pk=closed.pk).update(closed_at=T0, closed_by=pra)
    newest = emergency.emergency_use_open(user=breakglass, at=T0)

    page = sign_in(pra).get(url("use_list"))

    assert [use.pk for use in page.context["uses"]] == [newest.pk, older.pk, closed.pk]


def test_the_list_filters_by_follow_up_status(clock, breakglass, pra):
    emergency.emergency_use_open(user=breakglass, at=T0 - timedelta(days=1))
    closed = emergency.emergency_use_open(user=breakglass, at=T0)
    EmergencyAccessUse.objects.filter(pk=closed.pk).update(closed_at=T0, closed_by=pra)

    page = sign_in(pra).get(url("use_list"), {"status": "closed"})

    assert [use.pk for use in page.context["uses"]] == [closed.pk]


def test_the_list_has_an_empty_state(pra):
    page = sign_in(pra).get(url("use_list"))

    assert "No emergency access account has signed in." in page.content.decode()


def test_a_security_reader_sees_the_follow_up_without_the_form(ended_use, security_reader):
    page = sign_in(security_reader).get(url("use_detail", ended_use.pk))

    assert page.status_code == 200
    assert page.context["form"] is None


def test_someone_without_a_directory_role_gets_no_follow_up_page(ended_use, outsider):
    client = sign_in(outsider)

    assert client.get(url("use_list")).status_code == 403
    assert client.get(url("use_detail", ended_use.pk)).status_code == 404


# Closing the follow-up ------------------------------------------------------------------------


def test_closing_needs_a_justification(ended_use, pra):
    response = close(sign_in(pra), ended_use, justification="  ")

    assert response.status_code == 400
    assert response.context["form"].errors["justification"] == [
        "Say why this use of emergency access was justified."
    ]
    ended_use.refresh_from_db()
    assert ended_use.is_open


def test_closing_records_who_when_and_why(clock, ended_use, pra):
    clock.shift(timedelta(hours=1))

    response = close(sign_in(pra), ended_use)

    assert response.status_code == 302
    ended_use.refresh_from_db()
    assert (ended_use.closed_by, ended_use.closed_at) == (pra, T0 + timedelta(minutes=80))
    assert ended_use.justification == "Tenant locked out: SSO certificate expired."


def test_closing_is_audited(ended_use, pra):
    close(sign_in(pra), ended_use)

    event = AuditEvent.objects.get(action=emergency.REVIEWED)
    assert (event.actor, event.target_id) == (pra, str(ended_use.pk))
    assert event.after["justification"] == "Tenant locked out: SSO certificate expired."
    assert "closed: Tenant locked out" in event.message


def test_a_closed_follow_up_shows_who_closed_it_when_and_why(ended_use, pra, security_reader):
    close(sign_in(pra), ended_use)

    page = sign_in(security_reader).get(url("use_detail", ended_use.pk)).content.decode()

    assert "by Pat Admin" in page
    assert "Tenant locked out: SSO certificate expired." in page
    assert "Follow-up closed" in page


def test_the_account_cannot_close_the_follow_up_of_its_own_session(ended_use, breakglass):
    client = sign_in(breakglass)  # a new session: another use to follow up

    response = close(client, ended_use)

    assert response.status_code == 403
    assert [str(m) for m in response.context["messages"]] == [
        "Nobody closes the follow-up of their own emergency access session."
    ]
    ended_use.refresh_from_db()
    assert ended_use.is_open


def test_a_security_reader_cannot_close_a_follow_up(ended_use, security_reader):
    response = close(sign_in(security_reader), ended_use)

    assert response.status_code == 403
    assert [str(m) for m in response.context["messages"]] == [
        "Only a Privileged Role Administrator or Global Administrator closes the follow-up "
        "of an emergency access session."
    ]
    assert AuditEvent.objects.filter(action="pim.security.forbidden").exists()


def test_closing_while_the_session_goes_on_is_refused(clock, breakglass, pra):
    sign_in(breakglass)
    use = EmergencyAccessUse.objects.get()

    response = close(sign_in(pra), use)

    assert response.status_code == 400
    assert response.context["form"].non_field_errors() == [
        "The session is still going on: close the follow-up once it has ended, so that the "
        "review covers everything the account did."
    ]


def test_a_session_that_expired_without_a_sign_out_can_be_closed(clock, breakglass, pra):
    sign_in(breakglass)  # never signs out
    clock.shift(timedelta(seconds=settings.SESSION_COOKIE_AGE))  # idle: the session expires

    assert close(sign_in(pra), EmergencyAccessUse.objects.get()).status_code == 302


def test_a_follow_up_closed_meanwhile_is_not_closed_twice(ended_use, pra, global_admin):
    close(sign_in(global_admin), ended_use)

    response = close(sign_in(pra), ended_use, justification="Me too.")

    assert response.status_code == 302
    ended_use.refresh_from_db()
    assert ended_use.closed_by == global_admin
    assert AuditEvent.objects.filter(action=emergency.REVIEWED).count() == 1


# Who may mark emergency access accounts (the Django admin asks) ------------------------------


def test_only_a_global_administrator_or_superuser_may_mark_emergency_access(
    global_admin, group_admin, pra
):
    root = make_user("root", is_superuser=True)

    assert [emergency.may_set_emergency_access(u) for u in (global_admin, group_admin, root)] == [
        True,
        True,
        True,
    ]
    assert not emergency.may_set_emergency_access(pra)


# Query counts -------------------------------------------------------------------------------


def _queries(client, path) -> int:
    client.get(path)  # warm: the content types' cache, the session
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200
    return len(captured)


def test_the_list_query_count_does_not_grow_with_uses(clock, breakglass, pra):
    client = sign_in(pra)

    def make(count: int) -> None:
        for number in range(count):
            use = emergency.emergency_use_open(user=breakglass, ip=f"198.51.100.{number + 1}")
            if number % 2:
                EmergencyAccessUse.objects.filter(pk=use.pk).update(closed_at=T0, closed_by=pra)

    make(2)
    few = _queries(client, url("use_list"))
    make(18)
    many = _queries(client, url("use_list"))

    assert EmergencyAccessUse.objects.count() == 20
    assert many == few


def test_the_detail_query_count_does_not_grow_with_events(clock, breakglass, pra):
    use = emergency.emergency_use_open(user=breakglass)
    client = sign_in(pra)

    def make(count: int) -> None:
        for number in range(count):
            _event(breakglass, f"pim.test.event_{number}")

    make(1)  # with the sign-in's own event: 2
    few = _queries(client, url("use_detail", use.pk))
    make(18)
    many = _queries(client, url("use_detail", use.pk))

    assert emergency.session_events(use).count() == 20
    assert many == few
