"""Connectors (targets and mappings, provisioning, drift) and webhooks."""

from connectors.models.targets import (
    Connector,
    DriftFinding,
    Mapping,
    Provisioning,
    ProvisioningState,
)
from connectors.models.webhooks import *  # noqa: F403  (the webhook models)

__all__ = ["Connector", "DriftFinding", "Mapping", "Provisioning", "ProvisioningState"]
