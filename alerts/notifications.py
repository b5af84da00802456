"""Mail of new high alerts to the administrators, sent by a worker after the scan commits."""

from alerts.models import Alert, AlertStatus, Severity
from alerts.rules import OWNER, RESOURCES, RULES
from alerts.rules.base import safe_reverse
from assignments import authz
from assignments.models import Role, Scope
from pim_portal.mail import absolute_url, send_templated_mail


def _recipients(alert: Alert, directory: list[str]) -> list[str]:
    rule = RULES.get(alert.kind)
    addresses = list(directory)
    if rule is not None and rule.scope == RESOURCES and alert.key.isdigit():
        scope = Scope.objects.filter(pk=int(alert.key)).first()
        owner = Role.objects.filter(name=OWNER).first()
        if scope is not None and owner is not None:
            # Owners and User Access Administrators at that scope or above, as Entra mails.
            addresses += [u.email for u in authz.role_administrators(owner, scope) if u.email]
    return addresses


def notify_opened(*alert_ids: int) -> int:
    """Mail each alert that is still open and high to the administrators, once per alert and
    address. Returns the number of mails sent."""
    alerts = list(
        Alert.objects.filter(pk__in=alert_ids, status=AlertStatus.OPEN, severity=Severity.HIGH)
    )
    if not alerts:
        return 0
    directory = [u.email for u in authz.directory_administrators() if u.email]
    sent = 0
    for alert in alerts:
        rule = RULES.get(alert.kind)
        link = safe_reverse("alerts:alert_detail", alert.pk) or safe_reverse("alerts:alert_list")
        sent += send_templated_mail(
            template="alerts/mail/alert_opened",
            recipients=_recipients(alert, directory),
            context={
                "alert": alert,
                "rule_title": rule.title if rule else alert.kind,
                "affected": (alert.affected or [])[:20],
                "more": max(0, alert.affected_count - 20),
                "link": absolute_url(link) if link else "",
                "for_resource": rule is not None and rule.scope == RESOURCES,
            },
        )
    return sent
