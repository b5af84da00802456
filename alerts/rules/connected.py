"""Alerts about the connected systems (connectors): access found there that no assignment
explains, and ended access the portal could not take away there."""

from datetime import datetime

from alerts.rules.base import Finding, cut, item, plural, safe_reverse
from connectors.models import DriftFinding, Provisioning, ProvisioningState


def _where(mapping) -> str:
    return f"{mapping.target} in {mapping.connector} ({mapping.role} at {mapping.scope})"


def granted_outside_pim(thresholds: dict, now: datetime) -> list[Finding]:
    """Open drift findings: members of a mapped object that no in-force assignment explains."""
    open_findings = DriftFinding.objects.filter(resolved_at=None).select_related(
        "user", "mapping__connector", "mapping__role", "mapping__scope"
    )
    rows, total = cut(open_findings.order_by("mapping__connector__name", "account", "pk"))
    if not rows:
        return []
    count = total or len(rows)
    return [
        Finding(
            key="",
            title=f"{plural(count, 'member')} found in connected systems without an assignment",
            description="These accounts are members of groups or roles that the portal manages, "
            "but no active assignment in force explains them: someone added them in the target "
            "system itself, outside PIM.",
            affected=[
                item(
                    f"{f.user.get_username() if f.user else f.account} in {_where(f.mapping)}, "
                    f"since {f.first_seen_at:%Y-%m-%d %H:%M} UTC",
                    safe_reverse("connectors:mapping_detail", f.mapping_id),
                    f.pk,
                )
                for f in rows
            ],
            total=total,
        )
    ]


def revoke_failed(thresholds: dict, now: datetime) -> list[Finding]:
    """Ended access that a connector could not remove from its target (still held there)."""
    failing = Provisioning.objects.filter(
        state=ProvisioningState.FAILED, failed_operation="revoke"
    ).select_related("user", "mapping__connector", "mapping__role", "mapping__scope")
    rows, total = cut(failing.order_by("failing_since", "pk"))
    if not rows:
        return []
    count = total or len(rows)
    return [
        Finding(
            key="",
            title=f"{plural(count, 'ended access', 'ended accesses')} not removed in connected "
            "systems",
            description="These people's assignments have ended in the portal, but a connector "
            "could not take them out of the target system, where they still hold the access.",
            affected=[
                item(
                    f"{row.user.get_username()} in {_where(row.mapping)}: {row.error}",
                    safe_reverse("connectors:connector_detail", row.mapping.connector_id),
                    row.pk,
                )
                for row in rows
            ],
            total=total,
        )
    ]
