"""Provisioning: make each mapping's target object match who holds its role, user by user.

A `Provisioning` row is due (`due_at <= now`) when something may have changed for its user in
its mapping: an activation or an assignment made, ended, cut short or removed, a group joined
or left, an account deactivated, a failure's retry, or simply the time of an end or a
scheduled start, which the row carries from its last sync. The time engine
(`pim_portal.timekeeper`) sends workers here as soon as a row is due, so a revocation follows
the end within seconds; `sync_batch` claims due rows (`SELECT ... FOR UPDATE SKIP LOCKED`, so
two workers never take the same row), and for each one reads the target, acts, and records:

- the user belongs (an active assignment in force, account active): make them a member;
- the user does not belong, and the portal put them there: take them out.

Every grant and revoke reads the target before it changes it, which makes it idempotent: a
worker killed after acting and before its transaction committed leaves the row due; the next
worker finds the target already right, and only records the state (and audits the
transition, once, since the first never committed). A target that cannot be reached fails
the rest of its rows in the batch at once, each retried with backoff; a revocation that
cannot be applied is said loudly: a failed state, an audit event (a webhook), a mail to the
administrators and a security alert.
"""

import logging
from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Min, Q
from django.urls import reverse
from django.utils import timezone

from assignments import authz
from assignments.models import RoleRequest
from audit import log as audit_log
from connectors import secrets
from connectors.models import Connector, Provisioning, ProvisioningState
from connectors.queries import Holding, holdings
from connectors.targets import Connection, Target, TargetError, TargetUnavailable, kind
from pim_portal import jobs
from pim_portal.actor import Actor
from pim_portal.mail import absolute_url, send_templated_mail

logger = logging.getLogger(__name__)

State = ProvisioningState
GRANT, REVOKE = "grant", "revoke"
# States in which the portal has (or may have) put the user in the target.
HELD_BY_US = (State.PROVISIONED, State.PENDING_DEPROVISIONING)


def actor_for(connector: Connector) -> Actor:
    """The system, acting for this connector (the audit log names it)."""
    return Actor.system(f"connector {connector.name}")


def open_target(connector: Connector) -> Target:
    """The connector's target, not yet connected (use it as a context manager)."""
    return kind(connector.kind)(
        Connection(
            host=connector.host,
            port=connector.port,
            username=connector.username,
            secret=secrets.resolve(connector.secret_ref),
            options=dict(connector.options or {}),
            timeout=connector.timeout,
        )
    )


def backoff(attempts: int) -> timedelta:
    """5 s, 10 s, 20 s ... doubling, at most CONNECTOR_RETRY_MAX_SECONDS (10 minutes)."""
    ceiling = settings.CONNECTOR_RETRY_MAX_SECONDS
    return timedelta(seconds=min(5 * 2 ** max(attempts - 1, 0), ceiling))


def _claim(queryset, limit: int) -> list[Provisioning]:
    if connection.features.has_select_for_update_skip_locked:
        queryset = queryset.select_for_update(skip_locked=True, of=("self",))
    return list(
        queryset.select_related(
            "mapping__connector", "mapping__role", "mapping__scope", "user"
        ).order_by("due_at", "pk")[:limit]
    )


def due(now: datetime):
    return Provisioning.objects.filter(due_at__lte=now)


def next_due() -> datetime | None:
    return Provisioning.objects.filter(due_at__isnull=False).aggregate(d=Min("due_at"))["d"]


class _Outcome:
    """What one batch did: rows to save, audit events to write, failures to mail about."""

    def __init__(self):
        self.events: list[dict] = []
        self.failed_revokes: list[int] = []
        self.request_of: dict[int, int] = {}


def sync_batch(now: datetime, limit: int) -> int:
    """Sync up to `limit` due rows, in one transaction. How many it took."""
    with transaction.atomic():
        batch = _claim(due(now), limit)
        if not batch:
            return 0
        outcome = _Outcome()
        held = holdings(batch, now)
        vias = {h.via.pk for h in held.values() if h.via is not None}
        vias |= {row.via_assignment_id for row in batch if row.via_assignment_id}
        outcome.request_of = dict(
            RoleRequest.objects.filter(result_assignment__in=vias).values_list(
                "result_assignment", "pk"
            )
        )
        by_connector: dict[int, list[Provisioning]] = defaultdict(list)
        for row in batch:
            by_connector[row.mapping.connector_id].append(row)
        for rows in by_connector.values():
            _sync_connector(rows, held, now, outcome)
        _save(batch)
        audit_log.record_many(outcome.events)
        if outcome.failed_revokes:
            jobs.enqueue("connectors.provisioning.mail_failed_revokes", outcome.failed_revokes)
    return len(batch)


SAVED_FIELDS = (
    "state",
    "failed_operation",
    "error",
    "attempts",
    "account",
    "via_assignment_id",
    "due_at",
    "changed_at",
    "synced_at",
    "failing_since",
)


def _save(batch: list[Provisioning]) -> None:
    """Write what the batch changed: one UPDATE per set of equal values (Django's bulk_update
    builds a CASE per field and row, which cost more than the whole sync)."""
    groups: dict[tuple, list[int]] = defaultdict(list)
    for row in batch:
        groups[tuple(getattr(row, f) for f in SAVED_FIELDS)].append(row.pk)
    for values, pks in groups.items():
        Provisioning.objects.filter(pk__in=pks).update(
            **dict(zip(SAVED_FIELDS, values, strict=True))
        )


def _sync_connector(rows: list[Provisioning], held, now, outcome: _Outcome) -> None:
    connector = rows[0].mapping.connector
    if not connector.enabled:
        for row in rows:
            row.due_at = None  # a disabled connector changes nothing; enabling it reconciles
        return
    try:
        target = open_target(connector)
        target.open()
    except TargetError as error:
        for row in rows:
            _failed(row, held[row.pk], str(error), now, outcome)
        return
    try:
        unavailable = None
        for row in rows:
            if unavailable is not None:
                _failed(row, held[row.pk], unavailable, now, outcome)
                continue
            try:
                _sync_row(target, row, held[row.pk], now, outcome)
            except TargetUnavailable as error:
                unavailable = str(error)
                _failed(row, held[row.pk], unavailable, now, outcome)
            except TargetError as error:
                _failed(row, held[row.pk], str(error), now, outcome)
    finally:
        target.close()


def _sync_row(target: Target, row: Provisioning, holding: Holding, now, outcome) -> None:
    mapping = row.mapping
    before = row.state
    if holding.in_force:
        account = target.account_of(row.user)
        if account is None:
            raise TargetError(
                f"{row.user.get_username()} has no account in {mapping.connector}, so they "
                f"cannot be added to {mapping.target}."
            )
        target.grant(mapping.target, account)  # reads first: nothing when already there
        row.account = account
        row.via_assignment = holding.via
        _settle(row, State.PROVISIONED, holding, now)
        if before != State.PROVISIONED:
            outcome.events.append(_event("pim.connector.granted", row, outcome))
        return
    account = row.account or target.account_of(row.user)
    was_ours = before in HELD_BY_US or (before == State.FAILED and row.failed_operation == REVOKE)
    if account and was_ours:
        target.revoke(mapping.target, account)  # reads first: nothing when already gone
    if holding.via is not None:
        row.via_assignment = holding.via  # the scheduled one that will put them in
    if was_ours:
        _settle(row, State.DEPROVISIONED, holding, now)
        outcome.events.append(_event("pim.connector.revoked", row, outcome))
    elif holding.next_change is not None:
        # Not in force yet (a scheduled activation): nothing to do until it starts.
        _settle(row, State.PENDING_PROVISIONING, holding, now)
    else:
        # Never put in, and nothing will: an activation canceled before it started.
        _settle(row, State.DEPROVISIONED, holding, now)


def _settle(row: Provisioning, state: str, holding: Holding, now) -> None:
    if row.state != state:
        row.changed_at = now
    row.state = state
    row.error = row.failed_operation = ""
    row.attempts = 0
    row.failing_since = None
    row.synced_at = now
    row.due_at = holding.next_change


def _failed(row: Provisioning, holding: Holding, message: str, now, outcome: _Outcome) -> None:
    operation = GRANT if holding.in_force else REVOKE
    if operation == REVOKE and not (
        row.state in HELD_BY_US or (row.state == State.FAILED and row.failed_operation == REVOKE)
    ):
        # Nothing of ours to take out: a failure to look is no failure to revoke.
        row.due_at = holding.next_change
        row.synced_at = now
        if row.state == State.FAILED:
            _settle(row, State.DEPROVISIONED, holding, now)
        return
    first = row.state != State.FAILED or row.failed_operation != operation
    row.attempts = row.attempts + 1 if not first else 1
    row.failing_since = row.failing_since if not first else now
    if first:
        row.changed_at = now
    row.state = State.FAILED
    row.failed_operation = operation
    row.error = message[:2000]
    row.synced_at = now
    row.due_at = now + backoff(row.attempts)
    row.via_assignment = holding.via or row.via_assignment
    if first:
        outcome.events.append(
            _event("pim.connector.provisioning_failed", row, outcome, message=message)
        )
        if operation == REVOKE:
            outcome.failed_revokes.append(row.pk)


def _event(action: str, row: Provisioning, outcome: _Outcome, message: str = "") -> dict:
    mapping = row.mapping
    via = row.via_assignment_id
    return {
        "action": action,
        "actor": actor_for(mapping.connector),
        "target": row,
        "principal": row.user.get_username(),
        "role": mapping.role.name,
        "scope": mapping.scope.path,
        "role_request_id": outcome.request_of.get(via) if via else None,
        "after": {
            "connector": mapping.connector.name,
            "connector_name": str(mapping.connector),
            "mapping": mapping.pk,
            "target": mapping.target,
            "account": row.account,
            "state": row.state,
            "operation": row.failed_operation or "",
        },
        "message": message,
    }


def mark_due(pairs, *, at: datetime | None = None) -> int:
    """Make the (mapping id, user id) pairs due at `at` (now), creating rows that do not exist
    yet. Set-based: per mapping one read, one update and one insert. How many pairs."""
    at = at or timezone.now()
    users_of: dict[int, set[int]] = defaultdict(set)
    for mapping, user in pairs:
        users_of[mapping].add(user)
    for mapping, users in users_of.items():
        for chunk in _chunks(sorted(users)):
            rows = Provisioning.objects.filter(mapping=mapping, user__in=chunk)
            existing = set(rows.values_list("user", flat=True))
            rows.filter(Q(due_at__isnull=True) | Q(due_at__gt=at)).update(due_at=at)
            Provisioning.objects.bulk_create(
                [
                    Provisioning(mapping_id=mapping, user_id=u, due_at=at)
                    for u in chunk
                    if u not in existing
                ],
                ignore_conflicts=True,  # another worker made it meanwhile: it is due either way
            )
    return sum(len(users) for users in users_of.values())


def _chunks(items: list, size: int = 500):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def retry_failed(connector: Connector) -> int:
    """Every failed row of the connector due now (an administrator's "Retry now")."""
    return Provisioning.objects.filter(mapping__connector=connector, state=State.FAILED).update(
        due_at=timezone.now()
    )


def mail_failed_revokes(provisioning_ids: list[int]) -> int:
    """A worker's job: tell the administrators that access could not be taken away."""
    rows = list(
        Provisioning.objects.filter(pk__in=provisioning_ids, state=State.FAILED).select_related(
            "mapping__connector", "mapping__role", "mapping__scope", "user"
        )
    )
    if not rows:
        return 0
    recipients = [u.email for u in authz.directory_administrators() if u.email]
    by_connector: dict[int, list[Provisioning]] = defaultdict(list)
    for row in rows:
        by_connector[row.mapping.connector_id].append(row)
    sent = 0
    for connector_rows in by_connector.values():
        connector = connector_rows[0].mapping.connector
        sent += send_templated_mail(
            template="connectors/mail/revoke_failed",
            recipients=recipients,
            context={
                "connector": connector,
                "rows": connector_rows,
                "link": absolute_url(reverse("connectors:connector_detail", args=[connector.pk])),
            },
        )
    return sent
