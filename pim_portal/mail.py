"""Mail helper: every notification is HTML and plain text, rendered from a template trio."""

import logging
import zoneinfo
from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.db.models.functions import Lower
from django.template.loader import render_to_string
from django.utils import timezone

logger = logging.getLogger(__name__)


def absolute_url(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def _zones_by_address(addresses: list[str]) -> dict[str, str]:
    """The time zone of each address that belongs to a user (one query)."""
    # Addresses come lower-cased; a stored address may have capitals in its local part.
    rows = (
        get_user_model()
        .objects.alias(email_lower=Lower("email"))
        .filter(email_lower__in=addresses)
        .values_list("email", "time_zone")
    )
    return {email.lower(): tz for email, tz in rows if tz}


def _zone(name: str | None):
    try:
        return zoneinfo.ZoneInfo(name) if name else None
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def send_templated_mail(*, template: str, recipients: Iterable[str], context: dict) -> int:
    """Render `<template>_subject.txt`, `.txt` and `.html` and send one mail per recipient.

    Dates are rendered in each recipient's own time zone when the address is a user's.
    Returns the number of mails sent. Recipients are de-duplicated and blanks dropped.
    """
    addresses = sorted({address.strip().lower() for address in recipients if address})
    if not addresses:
        return 0
    context = {"site_url": settings.SITE_URL, **context}
    zones = _zones_by_address(addresses)
    sent = 0
    for address in addresses:
        zone = _zone(zones.get(address)) or timezone.get_default_timezone()
        with timezone.override(zone):
            subject = render_to_string(f"{template}_subject.txt", context)
            subject = subject.strip().replace("\n", " ")
            text = render_to_string(f"{template}.txt", context)
            html = render_to_string(f"{template}.html", context)
        message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, [address])
        message.attach_alternative(html, "text/html")
        try:
            sent += message.send()
        except OSError:
            logger.exception("Could not send %r to %s", subject, address)
    return sent
