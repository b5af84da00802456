"""The audit log's pages: who sees which events, the filters, keyset pages, an event's page."""

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit import log as audit_log
from audit.models import AuditEvent, ChainVerification
from tests.conftest import signed_in
from tests.factories import role

pytestmark = pytest.mark.django_db

LIST = "audit:event_list"
PROD = "/managementGroups/contoso/subscriptions/prod/"


def event(action="pim.request.activated", **fields) -> AuditEvent:
    """One event, written as the services write theirs."""
    return audit_log.record(action=action, **fields)


def many(count: int, **fields) -> list[AuditEvent]:
    return [event(message=f"event {n}", **fields) for n in range(count)]


def shown_ids(response) -> list[int]:
    return [int(pk) for pk in re.findall(r'data-event="(\d+)"', response.content.decode())]


def get(client, url_name=LIST, **query):
    return client.get(reverse(url_name), query)


def follow_older(client, url: str) -> list[list[int]]:
    """Every page from `url` on, following "Older" until the last: the ids on each page."""
    pages = []
    while url:
        response = client.get(url)
        assert response.status_code == 200
        pages.append(shown_ids(response))
        found = re.search(r'rel="next" href="([^"]+)"', response.content.decode())
        url = reverse(LIST) + found.group(1).replace("&amp;", "&") if found else ""
    return pages


# Who sees what -----------------------------------------------------------------------------


def test_security_reader_sees_every_event(security_reader, tree):
    written = [
        event(scope="/"),
        event(scope=tree["other_sub"].path),
        event(action="pim.security.signin_failed"),
    ]
    response = get(signed_in(security_reader))
    assert response.status_code == 200
    assert set(shown_ids(response)) >= {e.pk for e in written}


def test_owner_of_production_sees_only_events_at_or_below_production(resource_owner, tree):
    at_prod = event(scope=tree["sub"].path)
    below = event(scope=tree["vm"].path)
    beside = event(scope=tree["other_sub"].path)
    above = event(scope=tree["mg"].path)
    directory = event(scope="/")
    unscoped = event(action="pim.security.signin_failed")
    shown = shown_ids(get(signed_in(resource_owner)))
    assert set(shown) == {at_prod.pk, below.pk}
    assert not {beside.pk, above.pk, directory.pk, unscoped.pk} & set(shown)


def test_owners_reach_is_the_exact_path_not_one_spelled_in_other_case(resource_owner, tree):
    # SQLite's LIKE ignores case: the reach must not.
    shouting = event(scope=tree["sub"].path.upper())
    look_alike = event(scope=tree["sub"].path.replace("prod", "Prod"))
    shown = shown_ids(get(signed_in(resource_owner)))
    assert not {shouting.pk, look_alike.pk} & set(shown)


def test_owner_is_told_which_scopes_the_log_covers(resource_owner, tree):
    response = get(signed_in(resource_owner))
    assert PROD in response.content.decode()
    assert 'id="audit-reach"' in response.content.decode()


def test_eligible_user_is_refused_the_audit_log(eligible_user):
    response = get(signed_in(eligible_user))
    assert response.status_code == 403
    refusal = AuditEvent.objects.filter(action="pim.security.forbidden").get()
    assert refusal.message == "view the audit log"
    assert refusal.actor == eligible_user


def test_outsider_is_refused_the_audit_log(outsider):
    assert get(signed_in(outsider)).status_code == 403
    assert AuditEvent.objects.get(action="pim.security.forbidden").message == "view the audit log"


def test_my_audit_shows_what_the_user_did_and_what_was_done_to_their_account(eligible_user, pra):
    did = event(actor=eligible_user)
    done_to = event(action="pim.security.signin_failed", target=eligible_user)
    someone_else = event(actor=pra)
    about_someone_else = event(action="pim.security.signin_failed", target=pra)
    response = get(signed_in(eligible_user), "my_audit")
    assert response.status_code == 200
    shown = shown_ids(response)
    assert set(shown) == {did.pk, done_to.pk}
    assert not {someone_else.pk, about_someone_else.pk} & set(shown)


def test_my_audit_filters_like_the_log(eligible_user):
    activated = event(actor=eligible_user)
    event(actor=eligible_user, action="pim.request.deactivated")
    response = get(signed_in(eligible_user), "my_audit", action="pim.request.activated")
    assert shown_ids(response) == [activated.pk]


def test_event_outside_the_owners_reach_is_not_found(resource_owner, tree):
    directory = event(scope="/")
    url = reverse("audit:event_detail", args=[directory.pk])
    response = signed_in(resource_owner).get(url)
    assert response.status_code == 404
    refusal = AuditEvent.objects.filter(action="pim.security.forbidden").latest("id")
    assert refusal.message == f"view audit event {directory.pk}"


def test_owner_opens_an_event_in_their_reach(resource_owner, tree):
    below = event(scope=tree["rg"].path)
    url = reverse("audit:event_detail", args=[below.pk])
    assert signed_in(resource_owner).get(url).status_code == 200


def test_a_user_opens_their_own_event(eligible_user):
    own = event(actor=eligible_user)
    url = reverse("audit:event_detail", args=[own.pk])
    assert signed_in(eligible_user).get(url).status_code == 200


def test_someone_elses_event_is_not_found_for_an_eligible_user(eligible_user, pra):
    other = event(actor=pra)
    url = reverse("audit:event_detail", args=[other.pk])
    assert signed_in(eligible_user).get(url).status_code == 404
    refusal = AuditEvent.objects.filter(action="pim.security.forbidden").latest("id")
    assert refusal.message == f"view audit event {other.pk}"


def test_an_event_that_does_not_exist_is_not_found(security_reader):
    url = reverse("audit:event_detail", args=[999_999])
    assert signed_in(security_reader).get(url).status_code == 404


def test_the_pages_take_get_only(security_reader):
    client = signed_in(security_reader)
    assert client.post(reverse(LIST)).status_code == 405
    assert client.post(reverse("my_audit")).status_code == 405


# What a row shows --------------------------------------------------------------------------


def test_time_is_shown_in_the_viewers_time_zone(security_reader):
    security_reader.time_zone = "Europe/Berlin"
    security_reader.save()
    with time_machine.travel(datetime(2026, 7, 1, 10, 0, tzinfo=UTC), tick=False):
        event()
    content = get(signed_in(security_reader)).content.decode()
    assert "2026-07-01 12:00 CEST" in content


def test_a_row_shows_actor_activity_target_principal_role_scope_and_message(security_reader, pra):
    event(
        actor=pra,
        target=pra,
        principal="Erin Eligible",
        role="Owner",
        scope=PROD,
        message="Deploying the hotfix",
    )
    content = get(signed_in(security_reader)).content.decode()
    for text in ("Pat Admin", "Role activated", "Erin Eligible", "Owner", PROD, "Deploying the"):
        assert text in content


@pytest.mark.parametrize(
    "action",
    [
        "pim.security.forbidden",
        "pim.security.signin_failed",
        "pim.request.refused",
        "pim.security.signin_locked",
    ],
)
def test_refused_failed_and_locked_actions_read_as_failures(security_reader, action):
    event(action=action)
    content = get(signed_in(security_reader), action=action).content.decode()
    assert "Failure" in content.split('id="audit-events"')[1]


def test_other_actions_read_as_successes(security_reader):
    event(action="pim.request.approved")
    content = get(signed_in(security_reader)).content.decode().split('id="audit-events"')[1]
    assert "Success" in content
    assert "Failure" not in content


# The chain's status ------------------------------------------------------------------------


def test_chain_status_says_not_verified_yet(security_reader):
    assert "Not verified yet" in get(signed_in(security_reader)).content.decode()


def test_chain_status_names_the_last_verified_event(security_reader):
    security_reader.time_zone = "UTC"
    security_reader.save()
    at = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
    ChainVerification.objects.create(ran_at=at, ok=True, checked=42, up_to_seq=42, up_to_at=at)
    content = get(signed_in(security_reader)).content.decode()
    assert "Verified up to event 42 at 2026-03-02 08:30 UTC" in content


def test_chain_status_shows_the_latest_failure(security_reader):
    now = timezone.now()
    ChainVerification.objects.create(ran_at=now - timedelta(days=1), ok=True, up_to_seq=3)
    ChainVerification.objects.create(ran_at=now, ok=False, problem="event #4 was modified")
    content = get(signed_in(security_reader)).content.decode()
    assert "Verification failed: event #4 was modified" in content
    assert "alert-danger" in content


# Filters -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "period, days_back_shown",
    [("24h", [0]), ("7d", [0, 3]), ("30d", [0, 3, 20]), ("90d", [0, 3, 20, 60])],
)
def test_date_presets_show_only_events_in_their_period(security_reader, period, days_back_shown):
    now = timezone.now()
    written = {}
    for days in (0, 3, 20, 60, 120):
        with time_machine.travel(now - timedelta(days=days, minutes=1), tick=False):
            written[days] = event().pk
    with time_machine.travel(now, tick=False):
        shown = shown_ids(get(signed_in(security_reader), period=period))
    assert set(shown) == {written[days] for days in days_back_shown}


def test_custom_dates_are_days_in_the_viewers_time_zone(security_reader):
    security_reader.time_zone = "Europe/Berlin"
    security_reader.save()
    at = {}
    # 22:30 UTC on 1 July is 00:30 on 2 July in Berlin; 21:59 UTC on 2 July is 23:59 there.
    for name, moment in {
        "before": datetime(2026, 7, 1, 21, 59, tzinfo=UTC),
        "first": datetime(2026, 7, 1, 22, 30, tzinfo=UTC),
        "last": datetime(2026, 7, 2, 21, 59, tzinfo=UTC),
        "after": datetime(2026, 7, 2, 22, 0, tzinfo=UTC),
    }.items():
        with time_machine.travel(moment, tick=False):
            at[name] = event().pk
    response = get(signed_in(security_reader), **{"from": "2026-07-02", "to": "2026-07-02"})
    assert set(shown_ids(response)) == {at["first"], at["last"]}


def test_custom_from_date_alone_shows_everything_since(security_reader):
    with time_machine.travel(datetime(2026, 1, 1, 12, tzinfo=UTC), tick=False):
        old = event()
    with time_machine.travel(datetime(2026, 2, 1, 12, tzinfo=UTC), tick=False):
        new = event()
    shown = shown_ids(get(signed_in(security_reader), **{"from": "2026-01-15"}))
    assert new.pk in shown and old.pk not in shown


def test_actor_filter_matches_part_of_the_actors_name(security_reader, pra, outsider):
    by_pat = event(actor=pra)
    event(actor=outsider)
    assert shown_ids(get(signed_in(security_reader), actor="pat ad")) == [by_pat.pk]


def test_actor_id_filter_shows_one_users_events(security_reader, pra, outsider):
    by_pat = event(actor=pra)
    event(actor=outsider)
    assert shown_ids(get(signed_in(security_reader), actor_id=pra.pk)) == [by_pat.pk]


def test_action_filter_shows_one_activity(security_reader):
    approved = event(action="pim.request.approved")
    event(action="pim.request.denied")
    assert shown_ids(get(signed_in(security_reader), action="pim.request.approved")) == [
        approved.pk
    ]


def test_all_failures_filter_shows_every_failure_and_nothing_else(security_reader):
    failures = [
        event(action="pim.security.signin_failed"),
        event(action="pim.security.forbidden"),
        event(action="pim.request.refused"),
        event(action="pim.security.signin_locked"),
    ]
    event(action="pim.request.approved")
    shown = shown_ids(get(signed_in(security_reader), action="failures"))
    assert set(shown) == {e.pk for e in failures} | set(
        AuditEvent.objects.filter(action="pim.security.forbidden").values_list("pk", flat=True)
    )
    assert all(
        a.endswith(("failed", "forbidden", "refused", "locked"))
        for a in AuditEvent.objects.filter(pk__in=shown).values_list("action", flat=True)
    )


def test_role_filter_shows_that_roles_events(security_reader):
    owner = event(role="Owner")
    event(role="Contributor")
    assert shown_ids(get(signed_in(security_reader), role="Owner")) == [owner.pk]


def test_scope_filter_shows_the_scope_and_below_but_not_beside(security_reader, tree):
    at = event(scope=tree["sub"].path)
    below = event(scope=tree["vm"].path)
    event(scope=tree["other_sub"].path)
    event(scope="/")
    shown = shown_ids(get(signed_in(security_reader), scope=tree["sub"].path))
    assert set(shown) == {at.pk, below.pk}


def test_scope_filter_does_not_take_a_sibling_that_shares_the_name(security_reader, tree):
    prod = event(scope=tree["sub"].path)
    event(scope=tree["sub"].path.rstrip("/") + "2/")  # /…/prod2/ is not below /…/prod/
    assert shown_ids(get(signed_in(security_reader), scope=tree["sub"].path)) == [prod.pk]


def test_principal_filter_matches_part_of_the_principals_name(security_reader):
    erin = event(principal="Erin Eligible")
    event(principal="Pat Admin")
    assert shown_ids(get(signed_in(security_reader), principal="eligib")) == [erin.pk]


def test_request_filter_shows_the_requests_events(security_reader):
    first = event(role_request_id=7)
    second = event(role_request_id=7, action="pim.request.approved")
    event(role_request_id=8)
    assert shown_ids(get(signed_in(security_reader), request="7")) == [second.pk, first.pk]


def test_filters_combine(security_reader, tree):
    match = event(role="Owner", scope=tree["vm"].path, action="pim.request.approved")
    event(role="Owner", scope=tree["vm"].path, action="pim.request.denied")
    event(role="Reader", scope=tree["vm"].path, action="pim.request.approved")
    response = get(
        signed_in(security_reader),
        role="Owner",
        scope=tree["sub"].path,
        action="pim.request.approved",
    )
    assert shown_ids(response) == [match.pk]


@pytest.mark.parametrize(
    "query",
    [
        {"actor_id": "abc"},
        {"request": "99999999999999999999999"},
        {"from": "2026-13-45", "to": "yesterday"},
        {"from": "9999-12-31", "to": "9999-12-31"},
        {"older": "x", "newer": "-1"},
        {"period": "forever"},
        {"principal": "a\x00b", "actor": "\x00"},
        {"scope": "'; drop table"},
    ],
)
def test_values_that_do_not_parse_are_ignored_not_a_server_error(security_reader, query):
    event()
    assert get(signed_in(security_reader), **query).status_code == 200


def test_filters_survive_in_the_page_links(security_reader):
    many(60, role="Owner")
    content = get(signed_in(security_reader), role="Owner").content.decode()
    older = re.search(r'rel="next" href="([^"]+)"', content).group(1)
    assert "role=Owner" in older


def test_filters_survive_in_the_export_links(security_reader):
    content = get(signed_in(security_reader), role="Owner", older="5").content.decode()
    export = re.search(r'href="([^"]+)" id="export-csv"', content).group(1)
    assert export == reverse("audit:export_csv") + "?role=Owner"


def test_no_matching_event_says_so(security_reader):
    content = get(signed_in(security_reader), role="Nobody").content.decode()
    assert "No event matches these filters." in content


def test_empty_my_audit_says_so(outsider):
    content = get(signed_in(outsider), "my_audit").content.decode()
    assert "Nothing recorded for you yet." in content


# Keyset pages ------------------------------------------------------------------------------


def test_pages_show_every_event_once_newest_first(security_reader):
    written = [e.pk for e in many(120, role="Owner")]
    pages = follow_older(signed_in(security_reader), reverse(LIST) + "?role=Owner")
    assert [len(page) for page in pages] == [50, 50, 20]
    assert [pk for page in pages for pk in page] == written[::-1]


def test_events_written_between_pages_neither_repeat_nor_skip_any(security_reader):
    written = [e.pk for e in many(70, role="Owner")]
    client = signed_in(security_reader)
    first = client.get(reverse(LIST), {"role": "Owner"})
    older = re.search(r'rel="next" href="([^"]+)"', first.content.decode()).group(1)
    many(30, role="Owner")  # new events arrive while the viewer reads page one
    second = client.get(reverse(LIST) + older.replace("&amp;", "&"))
    seen = shown_ids(first) + shown_ids(second)
    assert seen == written[::-1]
    assert 'rel="next"' not in second.content.decode()


def test_newer_leads_back_to_the_page_before(security_reader):
    many(120, role="Owner")
    client = signed_in(security_reader)
    first = client.get(reverse(LIST), {"role": "Owner"})
    older = re.search(r'rel="next" href="([^"]+)"', first.content.decode()).group(1)
    second = client.get(reverse(LIST) + older.replace("&amp;", "&"))
    newer = re.search(r'rel="prev" href="([^"]+)"', second.content.decode()).group(1)
    back = client.get(reverse(LIST) + newer.replace("&amp;", "&"))
    assert shown_ids(back) == shown_ids(first)


def test_newer_from_the_second_page_of_many_is_a_full_page(security_reader):
    written = [e.pk for e in many(160, role="Owner")]
    client = signed_in(security_reader)
    third_top = written[-101]  # the newest event on page three
    response = client.get(reverse(LIST), {"role": "Owner", "newer": third_top})
    assert shown_ids(response) == written[-51:-101:-1]


def test_pages_are_read_without_offset(security_reader):
    many(60)
    client = signed_in(security_reader)
    with CaptureQueriesContext(connection) as queries:
        older = re.search(r'rel="next" href="([^"]+)"', get(client).content.decode()).group(1)
        client.get(reverse(LIST) + older.replace("&amp;", "&"))
    events_table = AuditEvent._meta.db_table
    reads = [q["sql"] for q in queries.captured_queries if events_table in q["sql"]]
    assert reads
    assert not [sql for sql in reads if "OFFSET" in sql.upper()]


def test_text_only_filters_search_a_window_of_ids_at_a_time(security_reader, settings):
    settings.AUDIT_SCAN_WINDOW = 40
    matches = []
    for n in range(100):
        matches.append(event(principal="Erin Eligible").pk if n % 10 == 0 else None)
        if n % 10:
            event(principal="Pat Admin")
    matches = [pk for pk in matches if pk]
    client = signed_in(security_reader)
    pages = follow_older(client, reverse(LIST) + "?principal=erin")
    assert [pk for page in pages for pk in page] == matches[::-1]
    assert len(pages) >= 3  # 100+ ids searched 40 at a time
    first = client.get(reverse(LIST), {"principal": "erin"}).content.decode()
    assert "Searched events #" in first


def test_windowed_search_pages_read_only_their_window(security_reader, settings):
    settings.AUDIT_SCAN_WINDOW = 40
    many(100, principal="Pat Admin")
    client = signed_in(security_reader)
    with CaptureQueriesContext(connection) as queries:
        get(client, principal="erin")
    events_table = AuditEvent._meta.db_table
    page_reads = [
        q["sql"]
        for q in queries.captured_queries
        if events_table in q["sql"] and "LIKE" in q["sql"].upper()
    ]
    assert page_reads
    assert all("BETWEEN" in sql.upper() or ">=" in sql for sql in page_reads)


def test_newer_from_a_windowed_page_goes_back(security_reader, settings):
    settings.AUDIT_SCAN_WINDOW = 40
    matches = [event(principal="Erin Eligible").pk for _ in range(3)]
    many(100, principal="Pat Admin")
    client = signed_in(security_reader)
    pages = follow_older(client, reverse(LIST) + "?principal=erin")
    assert [pk for page in pages for pk in page] == matches[::-1]


# Query counts ------------------------------------------------------------------------------


def _queries_for(client, url_name, count, **fields) -> int:
    client.get(reverse(url_name))  # the session's first request does one-off work
    many(count, **fields)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse(url_name)).status_code == 200
    return len(queries.captured_queries)


def test_audit_page_queries_do_not_grow_with_events(security_reader, pra):
    client = signed_in(security_reader)
    few = _queries_for(client, LIST, 5, actor=pra, role="Owner", scope=PROD)
    lots = _queries_for(client, LIST, 50, actor=pra, role="Owner", scope=PROD)
    assert few == lots


def test_my_audit_queries_do_not_grow_with_events(eligible_user):
    client = signed_in(eligible_user)
    few = _queries_for(client, "my_audit", 5, actor=eligible_user)
    lots = _queries_for(client, "my_audit", 50, actor=eligible_user)
    assert few == lots


# An event's page ---------------------------------------------------------------------------


def detail(client, pk):
    response = client.get(reverse("audit:event_detail", args=[pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_event_page_shows_the_keys_that_changed_and_folds_the_rest(security_reader):
    changed = event(
        action="pim.policy.updated",
        before={"max_hours": 8, "mfa": False, "approvers": ["alex"], "notes": "same"},
        after={"max_hours": 4, "mfa": True, "approvers": ["alex"], "notes": "same"},
    )
    content = detail(signed_in(security_reader), changed.pk)
    changed_table = content.split('id="changed-fields"')[1].split("</table>")[0]
    assert 'data-field="max_hours"' in changed_table and 'data-field="mfa"' in changed_table
    assert 'data-field="notes"' not in changed_table
    unchanged = content.split('id="unchanged-fields"')[1].split("</details>")[0]
    assert "2 unchanged fields" in unchanged
    assert 'data-field="approvers"' in unchanged and 'data-field="notes"' in unchanged
    assert "<del" in changed_table and "No" in changed_table and "Yes" in changed_table


def test_event_page_shows_added_and_removed_keys(security_reader):
    created = event(action="pim.assignment.created", after={"kind": "eligible"})
    content = detail(signed_in(security_reader), created.pk)
    row = content.split('data-field="kind"')[1].split("</tr>")[0]
    assert "(not set)" in row and "eligible" in row


def test_event_page_shows_dates_in_the_viewers_zone(security_reader):
    security_reader.time_zone = "Europe/Berlin"
    security_reader.save()
    moment = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
    changed = event(before={"end": moment}, after={"end": moment + timedelta(hours=2)})
    content = detail(signed_in(security_reader), changed.pk)
    assert "2026-07-01 12:00 CEST" in content and "2026-07-01 14:00 CEST" in content


def test_event_page_links_to_the_request_the_role_and_the_scope(security_reader, tree):
    owner = role("Owner")
    changed = event(role=owner.name, scope=tree["sub"].path, role_request_id=31)
    content = detail(signed_in(security_reader), changed.pk)
    assert reverse("approvals:request_detail", args=[31]) in content
    assert reverse("assignments:scope_role_detail", args=[tree["sub"].pk, owner.pk]) in content
    assert reverse("assignments:scope_detail", args=[tree["sub"].pk]) in content


def test_event_page_links_a_directory_role_to_its_page(security_reader):
    pra_role = role("Privileged Role Administrator")
    changed = event(role=pra_role.name, scope="/")
    content = detail(signed_in(security_reader), changed.pk)
    assert reverse("assignments:role_detail", args=[pra_role.pk]) in content


def test_event_page_of_a_deleted_role_names_it_without_a_link(security_reader):
    changed = event(role="Retired Role")
    content = detail(signed_in(security_reader), changed.pk)
    assert "Retired Role" in content.split('id="event-role"')[1].split("</dd>")[0]
    assert "assignments" not in content.split('id="event-role"')[1].split("</dd>")[0]


def test_event_page_shows_its_place_in_the_chain(security_reader):
    sealed = event()
    audit_log.seal()
    sealed = AuditEvent.objects.get(pk=sealed.pk)
    content = detail(signed_in(security_reader), sealed.pk)
    chain = content.split('id="event-chain"')[1]
    assert str(sealed.seq) in chain and sealed.hash in chain and sealed.prev_hash in chain


def test_event_page_says_when_the_event_is_not_sealed_yet(security_reader):
    unsealed = event()
    assert "Not sealed into the chain yet" in detail(signed_in(security_reader), unsealed.pk)
