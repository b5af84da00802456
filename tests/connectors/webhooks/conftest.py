"""Fixtures of the webhook tests: a real receiver on loopback, a manager, a subscription."""

import pytest

from connectors.webhooks import services
from pim_portal.actor import Actor
from tests.connectors.webhooks.receiver import Receiver

ALL_TYPES = [
    "request.created",
    "request.approved",
    "request.denied",
    "request.lapsed",
    "request.canceled",
    "assignment.in_force",
    "assignment.ended",
    "assignment.removed",
    "provisioning.failed",
    "drift.found",
]


@pytest.fixture
def receiver():
    made = Receiver().start()
    yield made
    made.stop()


@pytest.fixture
def second_receiver():
    made = Receiver().start()
    yield made
    made.stop()


@pytest.fixture(autouse=True)
def _quick_webhooks(settings):
    """Short timeouts, so a receiver that never answers costs the test half a second."""
    settings.WEBHOOK_TIMEOUT = 0.5


@pytest.fixture
def setup_actor():
    return Actor.system("tests")


@pytest.fixture
def subscribe(db, setup_actor):
    """`subscribe(url, types=..., name=...)`: a subscription made by the service, and its
    secret: (subscription, secret)."""

    def make(url: str, *, types=None, name: str | None = None, enabled: bool = True):
        return services.subscription_create(
            setup_actor,
            name=name or f"receiver {url[-12:]}",
            url=url,
            event_types=list(types or ALL_TYPES),
            enabled=enabled,
        )

    return make
