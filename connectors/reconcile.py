"""Reconciliation: read every mapping's target object and compare it with the desired state.

Every few minutes (CONNECTOR_RECONCILE_MINUTES) and on demand. For each mapping:

- users who belong but are not members (a grant lost in the target, a row never made): their
  rows are made due, and provisioning grants them;
- members the portal put there who no longer belong: their rows are made due, and
  provisioning takes them out (a revocation that was missed);
- members nobody explains (no in-force assignment, not put there by the portal): **access
  granted outside PIM**. Each is a `DriftFinding`, with who (the portal user when the account
  is one of ours) and since when it was first seen; the security alerts list them; when the
  mapping enforces, the member is taken out at once (audited). A finding is resolved when the
  member is gone, or when an assignment comes to explain it.

Reconciliation takes no row lock while it reads the target: the changes it decides go
through the same due rows as any other, or (enforcement) are idempotent removals.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from audit import log as audit_log
from connectors.models import Connector, DriftFinding, Mapping, Provisioning
from connectors.provisioning import HELD_BY_US, REVOKE, actor_for, mark_due, open_target
from connectors.queries import desired_users
from connectors.targets import Target, TargetError, TargetUnavailable

logger = logging.getLogger(__name__)


@dataclass
class Result:
    """What one reconciliation found and did, for the page's message and the task's result."""

    mappings: int = 0
    to_grant: int = 0
    to_revoke: int = 0
    drift_found: int = 0
    drift_removed: int = 0
    errors: list[str] = field(default_factory=list)

    def merge(self, other: "Result") -> None:
        self.mappings += other.mappings
        self.to_grant += other.to_grant
        self.to_revoke += other.to_revoke
        self.drift_found += other.drift_found
        self.drift_removed += other.drift_removed
        self.errors += other.errors


def reconcile_connector(connector: Connector, *, now: datetime | None = None) -> Result:
    """Reconcile every mapping of the connector. Errors are recorded on the connector and its
    mappings, and returned; nothing raises for a target that is down."""
    now = now or timezone.now()
    result = Result()
    mappings = list(connector.mappings.select_related("role", "scope"))
    if not connector.enabled:
        return result
    try:
        with open_target(connector) as target:
            for mapping in mappings:
                result.merge(_reconcile_mapping(target, mapping, now))
    except TargetError as error:
        message = str(error)
        result.errors.append(message)
        Connector.objects.filter(pk=connector.pk).update(last_error=message)
        return result
    Connector.objects.filter(pk=connector.pk).update(
        last_reconciled_at=now, last_error="; ".join(result.errors)[:2000]
    )
    return result


def _reconcile_mapping(target: Target, mapping: Mapping, now: datetime) -> Result:
    result = Result(mappings=1)
    try:
        target.check_object(mapping.target)
        key_of = target.account_key
        members = {key_of(a): a for a in target.members(mapping.target)}
        wanted = {}
        for user in desired_users(mapping, now):
            account = target.account_of(user)
            if account is not None:
                wanted[key_of(account)] = user
            else:
                wanted[f"user:{user.pk}"] = user  # no account: its row says why it failed
    except TargetUnavailable:
        raise
    except TargetError as error:
        message = f"{mapping.target}: {error}"
        result.errors.append(message)
        Mapping.objects.filter(pk=mapping.pk).update(last_error=str(error)[:2000])
        return result
    ours = {
        key_of(row.account): row
        for row in Provisioning.objects.filter(mapping=mapping).exclude(account="")
    }
    missing = [user.pk for key, user in wanted.items() if key not in members]
    missing += [
        user.pk
        for key, user in wanted.items()
        if key in members and (key not in ours or ours[key].state not in HELD_BY_US)
    ]
    stale = [
        row.user_id
        for key, row in ours.items()
        if key in members and key not in wanted and _was_ours(row)
    ]
    unexplained = [
        members[key]
        for key in members
        if key not in wanted and not (key in ours and _was_ours(ours[key]))
    ]
    with transaction.atomic():
        mark_due({(mapping.pk, user) for user in missing + stale}, at=now)
        result.to_grant, result.to_revoke = len(set(missing)), len(stale)
        found, removed = _drift(target, mapping, unexplained, set(members), now)
        result.drift_found, result.drift_removed = found, removed
        Mapping.objects.filter(pk=mapping.pk).update(last_reconciled_at=now, last_error="")
    return result


def _was_ours(row: Provisioning) -> bool:
    return row.state in HELD_BY_US or (row.state == "failed" and row.failed_operation == REVOKE)


def _drift(target: Target, mapping: Mapping, unexplained: list[str], members, now) -> tuple:
    """Record members nobody explains, remove them when the mapping enforces, and resolve the
    findings that no longer hold. (new findings, removed members)."""
    key_of = target.account_key
    open_findings = {
        key_of(f.account): f for f in DriftFinding.objects.filter(mapping=mapping, resolved_at=None)
    }
    actor = actor_for(mapping.connector)
    users = _users_of(target, unexplained)
    events, found, removed = [], 0, 0
    for account in unexplained:
        finding = open_findings.pop(key_of(account), None)
        if finding is None:
            finding = DriftFinding.objects.create(
                mapping=mapping,
                account=account,
                user=users.get(account),
                first_seen_at=now,
                last_seen_at=now,
            )
            found += 1
            events.append(_event("pim.connector.drift_found", finding, actor))
        else:
            DriftFinding.objects.filter(pk=finding.pk).update(last_seen_at=now)
        if mapping.enforce:
            try:
                target.revoke(mapping.target, account)
            except TargetError as error:
                logger.warning("Could not remove %s from %s: %s", account, mapping.target, error)
                continue
            DriftFinding.objects.filter(pk=finding.pk).update(
                resolved_at=now, resolution="removed", last_seen_at=now
            )
            removed += 1
            events.append(_event("pim.connector.drift_removed", finding, actor))
    for account_key, finding in open_findings.items():
        # Gone from the target, or now explained by an assignment: either way, no longer drift.
        resolution = "gone" if account_key not in members else "explained"
        DriftFinding.objects.filter(pk=finding.pk).update(resolved_at=now, resolution=resolution)
    audit_log.record_many(events)
    return found, removed


def _users_of(target: Target, accounts: list[str]) -> dict:
    """The portal users the accounts belong to, where the target can tell."""
    names = {}
    for account in accounts:
        try:
            username = target.username_of(account)
        except TargetError:
            username = None
        if username:
            names[account] = username
    by_name = {
        u.get_username().lower(): u
        for u in get_user_model().objects.filter(username__in=list(names.values()))
    }
    return {a: by_name.get(n.lower()) for a, n in names.items() if n.lower() in by_name}


def _event(action: str, finding: DriftFinding, actor) -> dict:
    mapping = finding.mapping
    return {
        "action": action,
        "actor": actor,
        "target": finding,
        "principal": finding.user.get_username() if finding.user else finding.account,
        "role": mapping.role.name,
        "scope": mapping.scope.path,
        "after": {
            "connector": mapping.connector.name,
            "mapping": mapping.pk,
            "target": mapping.target,
            "account": finding.account,
            "user": finding.user.get_username() if finding.user else None,
        },
    }
