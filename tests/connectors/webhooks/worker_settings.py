"""Settings of the worker processes in the kill test: the portal's own, with a short webhook
timeout (so a delivery's lease, three timeouts and ten seconds, runs out sooner)."""

from pim_portal.settings import *  # noqa: F403

WEBHOOK_TIMEOUT = 1.0
