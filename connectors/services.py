"""Changes to connectors and their mappings: each checked at its door, audited, one transaction.

Administrators (`can_manage_connectors`: Global Administrators and Privileged Role
Administrators) make them. A mapping is checked against the target before it is saved (a
group or role that does not exist is refused with the target's own words), and once saved its
connector is reconciled by a worker, which grants whoever holds the role already.
"""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from assignments import authz
from assignments.models import Role, Scope
from audit import log as audit_log
from connectors import provisioning
from connectors.models import Connector, DriftFinding, Mapping
from connectors.targets import TargetError
from pim_portal import jobs
from pim_portal.actor import Actor, user_of

CONNECTION_FIELDS = (
    "display_name",
    "kind",
    "enabled",
    "host",
    "port",
    "username",
    "secret_ref",
    "options",
    "timeout",
)


def _authorize(actor: Actor) -> None:
    if not authz.grants_for(actor).can_manage_connectors():
        raise PermissionDenied(
            "Only Global Administrators and Privileged Role Administrators manage connectors."
        )


def _snapshot(connector: Connector) -> dict:
    """What the audit log keeps of a connector: the secret's reference, never a secret."""
    return {"name": connector.name, **{f: getattr(connector, f) for f in CONNECTION_FIELDS}}


def _mapping_snapshot(mapping: Mapping) -> dict:
    return {
        "connector": mapping.connector.name,
        "role": mapping.role.name,
        "scope": mapping.scope.path,
        "target": mapping.target,
        "enforce": mapping.enforce,
    }


def connector_create(actor: Actor, *, name: str, **fields) -> Connector:
    """A new connector. It changes nothing in its target until it has mappings."""
    _authorize(actor)
    with transaction.atomic():
        connector = Connector.objects.create(name=name, created_by=user_of(actor), **fields)
        audit_log.record(
            action="pim.connector.created",
            actor=actor,
            target=connector,
            after=_snapshot(connector),
        )
    return connector


def connector_update(actor: Actor, *, connector: Connector, **fields) -> Connector:
    """Change the connection; enabling it (or pointing it elsewhere) reconciles it."""
    _authorize(actor)
    with transaction.atomic():
        connector = Connector.objects.select_for_update().get(pk=connector.pk)
        before = _snapshot(connector)
        for field, value in fields.items():
            setattr(connector, field, value)
        connector.save()
        after = _snapshot(connector)
        if after == before:
            return connector
        audit_log.record(
            action="pim.connector.updated",
            actor=actor,
            target=connector,
            before=before,
            after=after,
        )
        if connector.enabled:
            jobs.enqueue("connectors.tasks.reconcile", connector.pk)
    return connector


def connector_delete(actor: Actor, *, connector: Connector) -> None:
    """Delete a connector and its mappings. Members it put in its targets stay there: the
    portal no longer manages that system (say so on the confirmation page)."""
    _authorize(actor)
    with transaction.atomic():
        before = _snapshot(connector)
        audit_log.record(
            action="pim.connector.deleted",
            actor=actor,
            target=connector,
            before=before,
            message=f"{connector.mappings.count()} mappings deleted with it.",
        )
        connector.delete()


def connector_test(actor: Actor, *, connector: Connector) -> list[str]:
    """Connect, sign in and look up every mapping's object. The problems found (none: it
    works). Reads only; audited as a use of the connection."""
    _authorize(actor)
    problems = []
    try:
        with provisioning.open_target(connector) as target:
            for mapping in connector.mappings.all():
                try:
                    target.check_object(mapping.target)
                except TargetError as error:
                    problems.append(f"{mapping.target}: {error}")
    except TargetError as error:
        problems.append(str(error))
    Connector.objects.filter(pk=connector.pk).update(last_error="; ".join(problems)[:2000])
    audit_log.record(
        action="pim.connector.tested",
        actor=actor,
        target=connector,
        after={"problems": problems},
    )
    return problems


def _check_object(connector: Connector, target: str) -> None:
    """ValidationError (on the target field) unless the object exists in the target."""
    if not connector.enabled:
        return  # nothing is read from a disabled connector; enabling it reconciles
    try:
        with provisioning.open_target(connector) as client:
            client.check_object(target)
    except TargetError as error:
        raise ValidationError({"target": str(error)}) from None


def mapping_create(
    actor: Actor, *, connector: Connector, role: Role, scope: Scope, target: str, enforce: bool
) -> Mapping:
    """Map a role at a scope to an object in the connector's target. Refused (ValidationError)
    when the object does not exist there or the same mapping exists."""
    _authorize(actor)
    target = target.strip()
    if Mapping.objects.filter(connector=connector, role=role, scope=scope, target=target).exists():
        raise ValidationError({"target": "This role at this scope is mapped to it already."})
    _check_object(connector, target)
    with transaction.atomic():
        mapping = Mapping.objects.create(
            connector=connector,
            role=role,
            scope=scope,
            target=target,
            enforce=enforce,
            created_by=user_of(actor),
        )
        audit_log.record(
            action="pim.connector.mapping_created",
            actor=actor,
            target=mapping,
            role=role.name,
            scope=scope.path,
            after=_mapping_snapshot(mapping),
        )
        jobs.enqueue("connectors.tasks.reconcile_mapping", mapping.pk)
    return mapping


def mapping_update(actor: Actor, *, mapping: Mapping, enforce: bool) -> Mapping:
    """Switch enforcement on or off (the role, scope and object are the mapping itself: to
    change them, make another mapping)."""
    _authorize(actor)
    with transaction.atomic():
        before = _mapping_snapshot(mapping)
        mapping.enforce = enforce
        mapping.save(update_fields=["enforce"])
        audit_log.record(
            action="pim.connector.mapping_updated",
            actor=actor,
            target=mapping,
            role=mapping.role.name,
            scope=mapping.scope.path,
            before=before,
            after=_mapping_snapshot(mapping),
        )
        if enforce:
            jobs.enqueue("connectors.tasks.reconcile_mapping", mapping.pk)
    return mapping


def mapping_delete(actor: Actor, *, mapping: Mapping) -> None:
    """Delete a mapping. The members it put in the object stay there (the portal stops
    managing that object); remove them in the target, or end the assignments first."""
    _authorize(actor)
    with transaction.atomic():
        audit_log.record(
            action="pim.connector.mapping_deleted",
            actor=actor,
            target=mapping,
            role=mapping.role.name,
            scope=mapping.scope.path,
            before=_mapping_snapshot(mapping),
        )
        mapping.delete()


def connector_reconcile(actor: Actor, *, connector: Connector) -> None:
    """Reconcile now (queued for a worker): read every target object, find drift, provision."""
    _authorize(actor)
    with transaction.atomic():
        audit_log.record(action="pim.connector.reconcile_requested", actor=actor, target=connector)
        jobs.enqueue("connectors.tasks.reconcile", connector.pk)


def connector_retry(actor: Actor, *, connector: Connector) -> int:
    """Every failed grant or revocation of the connector is tried again now."""
    _authorize(actor)
    with transaction.atomic():
        count = provisioning.retry_failed(connector)
        audit_log.record(
            action="pim.connector.retry_requested",
            actor=actor,
            target=connector,
            after={"rows": count},
        )
        jobs.enqueue("connectors.tasks.provision_due")
    return count


def drift_remove(actor: Actor, *, finding_ids: list[int]) -> tuple[int, list[str]]:
    """Take the members of open drift findings out of their target objects (an alert's
    remediation, a connector page's button). (how many removed, the problems met)."""
    _authorize(actor)
    findings = list(
        DriftFinding.objects.filter(pk__in=finding_ids, resolved_at=None).select_related(
            "mapping__connector", "mapping__role", "mapping__scope", "user"
        )
    )
    removed, problems = 0, []
    by_connector: dict[int, list[DriftFinding]] = {}
    for finding in findings:
        by_connector.setdefault(finding.mapping.connector_id, []).append(finding)
    for group in by_connector.values():
        connector = group[0].mapping.connector
        try:
            with provisioning.open_target(connector) as target:
                for finding in group:
                    try:
                        target.revoke(finding.mapping.target, finding.account)
                    except TargetError as error:
                        problems.append(f"{finding.account} in {finding.mapping.target}: {error}")
                        continue
                    _resolve_removed(actor, finding)
                    removed += 1
        except TargetError as error:
            problems.append(f"{connector}: {error}")
    return removed, problems


def _resolve_removed(actor: Actor, finding: DriftFinding) -> None:
    with transaction.atomic():
        now = timezone.now()
        DriftFinding.objects.filter(pk=finding.pk).update(
            resolved_at=now, resolution="removed", last_seen_at=now
        )
        mapping = finding.mapping
        audit_log.record(
            action="pim.connector.drift_removed",
            actor=actor,
            target=finding,
            principal=finding.user.get_username() if finding.user else finding.account,
            role=mapping.role.name,
            scope=mapping.scope.path,
            after={
                "connector": mapping.connector.name,
                "mapping": mapping.pk,
                "target": mapping.target,
                "account": finding.account,
            },
        )
