"""Where apps above assignments add to its pages, without assignments importing them.

Provisioning status: the connectors app registers a provider in its `ready()`; the pages that
list assignments (My roles, a role's and a scope's members) ask `provisioning_statuses` for
the rows they show, in one call per page, and show what comes back next to each row.

    def provider(assignments: list[Assignment]) -> dict[int, list[ProvisioningStatus]]: ...
    extensions.register_provisioning_status(provider)
"""

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ProvisioningStatus:
    """Where an assignment is made true, and how that stands (Microsoft Graph's words)."""

    where: str  # "LDAP corp: cn=prod-owners,ou=groups,dc=contoso,dc=example"
    state: str  # pending_provisioning, provisioned, pending_deprovisioning, deprovisioned, failed
    label: str  # "Provisioned", or for a group "12 provisioned, 1 failed"
    error: str = ""


_providers: list[Callable] = []


def register_provisioning_status(provider: Callable) -> None:
    if provider not in _providers:
        _providers.append(provider)


def provisioning_statuses(assignments) -> dict[int, list[ProvisioningStatus]]:
    """{assignment pk: its statuses} for a page of assignments (empty with no provider)."""
    assignments = list(assignments)
    result: dict[int, list[ProvisioningStatus]] = {}
    if not assignments:
        return result
    for provider in _providers:
        for pk, statuses in provider(assignments).items():
            result.setdefault(pk, []).extend(statuses)
    return result
