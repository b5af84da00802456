"""Rules about what happened: a burst of failed sign-ins or MFA codes, an emergency access
account used, the audit chain's verification failed."""

from collections import defaultdict
from datetime import datetime, timedelta

from django.db.models import Count

from alerts.rules.base import AFFECTED_LIMIT, Finding, item, plural, safe_reverse
from audit.models import AuditEvent, ChainVerification
from pim_portal.humanize import duration_words
from pim_portal.models import EmergencyAccessUse

SIGNIN_FAILED = "pim.security.signin_failed"
MFA_FAILED = "pim.security.mfa_failed"


def failed_signin_burst(thresholds: dict, now: datetime) -> list[Finding]:
    """At least `count` failed sign-ins and wrong MFA codes, all accounts together (a password
    spray tries many), within the last `minutes`."""
    window = timedelta(minutes=thresholds["minutes"])
    rows = (
        AuditEvent.objects.filter(
            action__in=[SIGNIN_FAILED, MFA_FAILED], created_at__gt=now - window, created_at__lte=now
        )
        .order_by()
        .values_list("action", "target_id", "target_repr")
        .annotate(n=Count("id"))
    )
    per_account: dict[tuple, dict] = defaultdict(lambda: {SIGNIN_FAILED: 0, MFA_FAILED: 0})
    for action, target_id, target_repr, n in rows:
        per_account[(target_id, target_repr)][action] += n
    total = sum(sum(counts.values()) for counts in per_account.values())
    if total < thresholds["count"]:
        return []
    affected = []
    ordered = sorted(per_account.items(), key=lambda entry: (-sum(entry[1].values()), entry[0]))
    for (target_id, target_repr), counts in ordered[:AFFECTED_LIMIT]:
        parts = []
        if counts[SIGNIN_FAILED]:
            parts.append(plural(counts[SIGNIN_FAILED], "failed sign-in"))
        if counts[MFA_FAILED]:
            parts.append(plural(counts[MFA_FAILED], "wrong MFA code"))
        who = target_repr or "unknown usernames"
        affected.append(
            item(f"{who}: {', '.join(parts)}", "", int(target_id) if target_id.isdigit() else None)
        )
    return [
        Finding(
            key="",
            title=f"{total} failed sign-ins and MFA codes in {duration_words(window)}",
            description=(
                f"{total} sign-ins failed or MFA codes were wrong within the last "
                f"{duration_words(window)} (the settings allow fewer than "
                f"{thresholds['count']}). Someone may be guessing passwords or codes."
            ),
            affected=affected,
            total=len(per_account) if len(per_account) > AFFECTED_LIMIT else None,
        )
    ]


def emergency_access_used(thresholds: dict, now: datetime) -> list[Finding]:
    """One alert per sign-in of an emergency access account whose follow-up is still open."""
    uses = (
        EmergencyAccessUse.objects.filter(closed_at__isnull=True)
        .select_related("user")
        .order_by("signed_in_at", "pk")
    )
    return [
        Finding(
            key=str(use.pk),
            title=f"Emergency access account {use.user} used",
            description=(
                f"The emergency access (break-glass) account {use.user} "
                f"({use.user.username}) signed in. Check that it was needed, review "
                "everything it did during the session, and close the follow-up with a "
                "justification."
            ),
            affected=[
                item(
                    f"Sign-in of {use.user} ({use.user.username})",
                    safe_reverse("emergency:use_detail", use.pk),
                    use.pk,
                )
            ],
        )
        for use in uses
    ]


def audit_chain_broken(thresholds: dict, now: datetime) -> list[Finding]:
    """The latest verification of the audit log's chain and signed checkpoints failed."""
    latest = ChainVerification.objects.order_by("-ran_at", "-pk").first()
    if latest is None or latest.ok:
        return []
    return [
        Finding(
            key="",
            title="The audit log failed verification",
            description=(
                "The latest verification of the audit log's hash chain and signed "
                f"checkpoints failed: {latest.problem or 'no details recorded'}. Events may "
                "have been changed, removed or rewritten."
            ),
            affected=[
                item(
                    f"Verification: {latest.problem or 'failed'}"[:300],
                    safe_reverse("audit:event_list"),
                )
            ],
        )
    ]
